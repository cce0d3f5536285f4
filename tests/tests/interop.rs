//! A mixed classroom on loopback (issue 13): two seeds, one gossipnet with `--wire
//! reference` and one that behaves as the Python original does; twenty peers, half gossipnet
//! with `--wire reference` and half reference-behaving stand-ins. Every peer registers and
//! links, every body reaches every peer, and a killed peer of either kind is removed by the
//! seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration as StdDuration;

use gossipnet_tests::reference::{Endpoint, RefPeer, RefPeerConfig, RefSeed, wait_until};
use net_real::{Listen, NodeHandle, Runtime, RuntimeOptions};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::report::Recorder;
use sim_core::seed::{Admission, SeedConfig};
use sim_core::sim::{peer_rng, seed_rng};
use sim_core::time::Duration;
use sim_core::wire::Wire;

const ITERATIONS: u32 = 1000;
/// Bodies each peer originates (`message 1` .. `message 5`).
const MESSAGES: u32 = 5;
const HALF: usize = 10;
const SETTLE: StdDuration = StdDuration::from_secs(30);

/// A loopback listener on a port the OS chose whose last two digits are at most 90: the
/// original's neighbour cap, `int(40 * 1.5^(-(port % 100) / 10))`, is 0 above that, and such
/// a peer could link to no one.
fn reference_listener() -> TcpListener {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        if l.local_addr().expect("a bound address").port() % 100 <= 90 {
            return l;
        }
    }
}

fn endpoint(a: NodeAddr) -> Endpoint {
    // The reference wire writes 127.0.0.1 as `localhost`, as the original's nodes do.
    Endpoint::new("localhost", a.port)
}

/// Bodies delivered (or originated) by each gossipnet peer.
fn gossipnet_bodies(rec: &Recorder) -> BTreeMap<NodeAddr, BTreeSet<String>> {
    let mut got: BTreeMap<NodeAddr, BTreeSet<String>> = BTreeMap::new();
    for d in &rec.deliveries {
        // `TS:IP:PORT:BODY`, the body with the padding it came with.
        if let Some(body) = d.identity.splitn(4, ':').nth(3) {
            got.entry(d.receiver)
                .or_default()
                .insert(body.trim_end().to_owned());
        }
    }
    // Its origins hold a body (one body is one message: a later origin of it is not a new
    // message).
    for (i, node) in rec.origins() {
        got.entry(node)
            .or_default()
            .insert(rec.messages[i].message.body.trim_end().to_owned());
    }
    got
}

/// The ports of the peers linked, directly or not, to the peer on `from` over links with a
/// gossipnet end, as the gossipnet peers' recorded neighbours give them (every node is on
/// 127.0.0.1, so a port names it). A link between two original peers can lose frames to the
/// original's own framing (a 1 031-byte hello or a re-stamped forward that outgrows 1 024
/// bytes leaves its `recv(1024)` cutting frames in two until its buffer drains): what
/// crosses only such links is the original's to deliver, not gossipnet's.
fn component(rt: &Runtime, from: u16) -> BTreeSet<u16> {
    let mut links: BTreeMap<u16, BTreeSet<u16>> = BTreeMap::new();
    let mut link = |a: u16, b: u16| {
        links.entry(a).or_default().insert(b);
        links.entry(b).or_default().insert(a);
    };
    rt.with_recorder(|rec| {
        for (a, p) in &rec.peers {
            for n in &p.neighbours {
                link(a.port, n.port);
            }
        }
    });
    let mut seen = BTreeSet::from([from]);
    let mut todo = vec![from];
    while let Some(a) = todo.pop() {
        for &b in links.get(&a).into_iter().flatten() {
            if seen.insert(b) {
                todo.push(b);
            }
        }
    }
    seen
}

/// The bodies of stand-in `i`.
fn stand_in_bodies(i: usize) -> BTreeSet<String> {
    (1..=MESSAGES)
        .map(|k| format!("ref{i} message {k}"))
        .collect()
}

/// The body a gossipnet peer originates once the network is linked.
const PROBE: &str = "from a gossipnet peer";

/// Gossipnet peer 0 sends [`PROBE`].
fn c_probe(gpeers: &[Option<NodeHandle>]) {
    if let Some(Some(g)) = gpeers.first() {
        g.originate(PROBE.to_owned());
    }
}

#[test]
fn a_mixed_network_of_gossipnet_and_reference_nodes_links_spreads_and_removes_the_dead() {
    let rt = Runtime::new(RuntimeOptions {
        hash_iterations: ITERATIONS,
        ..RuntimeOptions::default()
    });
    let rseed = RefSeed::start("127.0.0.1:0".parse().expect("an address"))
        .expect("a stand-in seed on a loopback port");
    let seed_cfg = SeedConfig {
        wire: Wire::Reference,
        // Both seeds are in the classroom's config.txt: a removal is told to the other.
        fellows: vec![NodeAddr::new([127, 0, 0, 1].into(), rseed.addr().port())],
        admission: Admission::Trust,
        probe_timeout: Duration::from_secs(2),
        ..SeedConfig::default()
    };
    let gseed = rt
        .spawn_seed(Listen::loopback(0), seed_cfg, seed_rng(13, 0))
        .expect("a seed on a loopback port");
    let g = gseed.addr();
    let seed_addrs: Vec<SocketAddr> = vec![SocketAddr::from((g.ip, g.port)), rseed.addr()];
    let seed_nodes: Vec<NodeAddr> = vec![
        gseed.addr(),
        NodeAddr::new([127, 0, 0, 1].into(), rseed.addr().port()),
    ];

    let peer_cfg = PeerConfig {
        wire: Wire::Reference,
        gossip_interval: Duration::from_millis(400),
        gossip_count: MESSAGES,
        liveness_interval: Duration::from_millis(400),
        misses_max: 3,
        seed_retry: Duration::from_millis(100),
        handshake_timeout: Duration::from_secs(2),
        // Three links each, any number accepted: a connected overlay whatever the ports.
        topology: "uniform:3".parse().expect("a topology"),
        ..PeerConfig::default()
    };
    let mut gpeers: Vec<Option<NodeHandle>> = Vec::new();
    let mut rpeers: Vec<RefPeer> = Vec::new();
    for i in 0..HALF {
        let g = rt
            .spawn_peer(
                Listen::loopback(0),
                seed_nodes.clone(),
                peer_cfg.clone(),
                peer_rng(13, i),
            )
            .expect("a peer on a loopback port");
        gpeers.push(Some(g));
        let listener = reference_listener();
        let mut cfg = RefPeerConfig::new(seed_addrs.clone(), listener.local_addr().expect("bound"));
        cfg.list_delay = StdDuration::from_millis(30);
        cfg.first_message_delay = StdDuration::from_millis(800);
        cfg.message_interval = StdDuration::from_millis(300);
        cfg.message_count = MESSAGES;
        cfg.ping_interval = StdDuration::from_millis(400);
        cfg.iterations = ITERATIONS;
        cfg.rng_seed = i as u64;
        // Bodies of this stand-in alone (the original's are all `message N`), so that its
        // messages can be followed: one origin each.
        cfg.message_prefix = format!("ref{i} message");
        rpeers.push(RefPeer::start_on(listener, cfg).expect("a stand-in peer"));
        // Later peers learn of earlier ones: let each register before the next.
        let registered = wait_until(SETTLE, || {
            rpeers.last().is_some_and(|p| p.snapshot().bootstrapped)
        });
        assert!(registered, "stand-in peer {i} did not register");
    }
    let gaddrs: Vec<NodeAddr> = gpeers.iter().flatten().map(NodeHandle::addr).collect();

    // Every peer registers with both seeds and links.
    let linked = wait_until(SETTLE, || {
        let g_ok = rt.with_recorder(|rec| {
            gaddrs.iter().all(|a| {
                rec.peers
                    .get(a)
                    .is_some_and(|p| p.registered_with.len() == 2 && !p.neighbours.is_empty())
            })
        });
        g_ok && rpeers.iter().all(|p| {
            let s = p.snapshot();
            s.registered_seeds.len() == 2 && !s.neighbours.is_empty()
        })
    });
    let rsnap: Vec<_> = rpeers.iter().map(RefPeer::snapshot).collect();
    assert!(
        linked,
        "gossipnet peers {:?}\nstand-ins {:?}",
        rt.with_recorder(|rec| gaddrs
            .iter()
            .map(|a| rec
                .peers
                .get(a)
                .map(|p| (p.registered_with.len(), p.neighbours.len())))
            .collect::<Vec<_>>()),
        rsnap
            .iter()
            .map(|s| (s.registered_seeds.len(), s.neighbours.len()))
            .collect::<Vec<_>>()
    );
    // The two kinds link to each other: stand-ins have gossipnet neighbours and back.
    let gnames: BTreeSet<Endpoint> = gaddrs.iter().map(|&a| endpoint(a)).collect();
    assert!(
        rsnap
            .iter()
            .any(|s| s.neighbours.iter().any(|n| gnames.contains(n))),
        "no stand-in linked to a gossipnet peer"
    );

    // Every message reaches every peer. The network is connected (each peer linked to
    // earlier ones), and a message is followed from an origin that sends it once all are
    // in: the last stand-in's bodies (sent on each link it makes, after its first message
    // delay), and a body a gossipnet peer sends now. Both kinds carry both.
    c_probe(&gpeers);
    let last = HALF - 1;
    let prober = gaddrs[0].port;
    assert!(
        rt.with_recorder(|rec| rec.peers[&gaddrs[0]].neighbours.len()) > 0,
        "the prober has a neighbour"
    );
    let teller = rpeers[last].identity().port;
    // Who should hold what: the peers linked to each origin (the overlay may have more than
    // one component: peers with one slot can pair off).
    let want_of = |port: u16| -> BTreeSet<String> {
        let mut w = BTreeSet::new();
        if port != prober && component(&rt, prober).contains(&port) {
            w.insert(PROBE.to_owned());
        }
        if port != teller && component(&rt, teller).contains(&port) {
            w.extend(stand_in_bodies(last));
        }
        w
    };
    let spread = wait_until(SETTLE, || {
        let g = rt.with_recorder(gossipnet_bodies);
        gaddrs.iter().all(|a| {
            let got = g.get(a).cloned().unwrap_or_default();
            want_of(a.port).is_subset(&got)
        }) && rpeers.iter().all(|p| {
            let s = p.snapshot();
            let got: BTreeSet<String> = s.deliveries.into_iter().map(|d| d.body).collect();
            want_of(s.identity.port).is_subset(&got)
        })
    });
    let reached = component(&rt, prober).len();
    assert!(
        reached > HALF,
        "the prober reaches {reached} peers: too few to test spreading"
    );
    let missing: Vec<String> = {
        let g = rt.with_recorder(gossipnet_bodies);
        let mut m: Vec<String> = gaddrs
            .iter()
            .map(|a| {
                let got = g.get(a).cloned().unwrap_or_default();
                let want = want_of(a.port);
                format!(
                    "gossipnet {a} lacks {:?}",
                    want.difference(&got).collect::<Vec<_>>()
                )
            })
            .collect();
        m.extend(rpeers.iter().map(|p| {
            let s = p.snapshot();
            let got: BTreeSet<String> = s.deliveries.into_iter().map(|d| d.body).collect();
            let want = want_of(s.identity.port);
            format!(
                "stand-in {} ({} neighbours) lacks {:?}",
                s.identity,
                s.neighbours.len(),
                want.difference(&got).collect::<Vec<_>>()
            )
        }));
        m
    };
    let probe_log = rt.with_recorder(|rec| {
        rec.log
            .iter()
            .filter(|l| l.contains(PROBE) || l.contains(&gaddrs[0].to_string()))
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(spread, "{}\n{probe_log}", missing.join("\n"));
    // A killed peer of each kind is removed by both seeds. Each victim keeps a live
    // neighbour to notice (they are not each other's only neighbour).
    let gneighbours = rt.with_recorder(|rec| {
        gaddrs
            .iter()
            .map(|a| {
                rec.peers
                    .get(a)
                    .map(|p| p.neighbours.clone())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
    });
    let rsnap: Vec<_> = rpeers.iter().map(RefPeer::snapshot).collect();
    let rport = |i: usize| NodeAddr::new([127, 0, 0, 1].into(), rsnap[i].identity.port);
    // Victims with no neighbour in common if there are such (the original's seed closes a
    // reporter's connection after its first removal, so each is then reported by other
    // peers); the gossipnet seed also tells the stand-in seed of its removals.
    let pairs: Vec<(usize, usize)> = (1..HALF)
        .flat_map(|g| (1..HALF).map(move |r| (g, r)))
        .filter(|&(g, r)| {
            gneighbours[g].iter().any(|n| n.port != rport(r).port)
                && rsnap[r].neighbours.iter().any(|n| n.port != gaddrs[g].port)
        })
        .collect();
    let disjoint = |&(g, r): &(usize, usize)| {
        let gn: BTreeSet<u16> = gneighbours[g].iter().map(|n| n.port).collect();
        rsnap[r].neighbours.iter().all(|n| !gn.contains(&n.port))
    };
    let (gi, ri) = pairs
        .iter()
        .copied()
        .find(disjoint)
        .or_else(|| pairs.first().copied())
        .expect("two peers that are not each other's only neighbour");
    let gvictim = gaddrs[gi];
    if let Some(h) = gpeers[gi].take() {
        h.kill();
    }
    let rvictim = rpeers[ri].identity();
    rpeers[ri].kill();
    let victims = [endpoint(gvictim), rvictim.clone()];
    let rvictim_addr = NodeAddr::new([127, 0, 0, 1].into(), rvictim.port);
    let removed = wait_until(SETTLE, || {
        let at_gseed = rt.with_recorder(|rec| {
            [gvictim, rvictim_addr].iter().all(|v| {
                rec.removals
                    .get(v)
                    .is_some_and(|r| r.iter().any(|(s, _)| *s == gseed.addr()))
            })
        });
        let list = rseed.snapshot().list;
        at_gseed && victims.iter().all(|v| !list.contains(v))
    });
    // What the gossipnet side logged of the victims, for a failure's message.
    let story = rt.with_recorder(|rec| {
        let (g, r) = (gvictim.to_string(), format!("127.0.0.1:{}", rvictim.port));
        rec.log
            .iter()
            .filter(|l| (l.contains(&g) || l.contains(&r)) && !l.contains("gossip"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(
        removed,
        "victims {gvictim} (gossipnet), {rvictim} (stand-in)\nremovals at the gossipnet seed \
         {:?}\nthe stand-in seed's list {:?}\nits reports {:?}\n{story}",
        rt.with_recorder(|rec| rec.removals.clone()),
        rseed.snapshot().list,
        rseed.snapshot().dead_reports
    );
    // No live peer was removed by either seed.
    let live: Vec<Endpoint> = gaddrs
        .iter()
        .filter(|&&a| a != gvictim)
        .map(|&a| endpoint(a))
        .chain(
            rpeers
                .iter()
                .map(RefPeer::identity)
                .filter(|i| *i != rvictim),
        )
        .collect();
    let list = rseed.snapshot().list;
    for p in &live {
        assert!(list.contains(p), "the stand-in seed dropped live {p}");
    }
    rt.with_recorder(|rec| {
        for p in &live {
            let a = NodeAddr::new([127, 0, 0, 1].into(), p.port);
            assert!(
                rec.removals.get(&a).is_none_or(|r| r.is_empty()),
                "the gossipnet seed removed live {a}"
            );
        }
    });
    drop(rpeers);
    rseed.stop();
    NodeHandle::shutdown_all(gpeers.into_iter().flatten().chain([gseed]).collect());
}
