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
    for m in &rec.messages {
        got.entry(m.message.origin)
            .or_default()
            .insert(m.message.body.trim_end().to_owned());
    }
    got
}

fn all_bodies() -> BTreeSet<String> {
    (1..=MESSAGES).map(|i| format!("message {i}")).collect()
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
        topology: "capacity:16,4,10".parse().expect("a topology"),
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

    // Every body reaches every peer (the network is connected: each peer linked to earlier
    // ones), under the original's identity rule: a body is one message, whoever sent it.
    let spread = wait_until(SETTLE, || {
        let g = rt.with_recorder(gossipnet_bodies);
        gaddrs
            .iter()
            .all(|a| g.get(a).is_some_and(|b| b.is_superset(&all_bodies())))
            && rpeers.iter().all(|p| {
                // Delivered, or sent as their origin: a late peer's `message 1` is its own
                // when everyone else holds theirs already (one body is one message).
                let s = p.snapshot();
                let got: BTreeSet<String> = s
                    .deliveries
                    .into_iter()
                    .map(|d| d.body)
                    .chain(s.originated)
                    .collect();
                got.is_superset(&all_bodies())
            })
    });
    assert!(
        spread,
        "gossipnet {:?}\nstand-ins {:?}",
        rt.with_recorder(gossipnet_bodies),
        rpeers
            .iter()
            .map(|p| {
                let s = p.snapshot();
                (
                    s.deliveries
                        .into_iter()
                        .map(|d| d.body)
                        .collect::<BTreeSet<_>>(),
                    s.originated,
                )
            })
            .collect::<Vec<_>>()
    );
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
    let (gi, ri) = (1..HALF)
        .flat_map(|g| (1..HALF).map(move |r| (g, r)))
        .find(|&(g, r)| {
            // The original's seed closes a reporter's connection after its first removal:
            // victims with no neighbour in common are reported by different peers.
            let gn: BTreeSet<u16> = gneighbours[g].iter().map(|n| n.port).collect();
            let rn: BTreeSet<u16> = rsnap[r].neighbours.iter().map(|n| n.port).collect();
            let g_has_other = gn.iter().any(|&p| p != rport(r).port);
            let r_has_other = rn.iter().any(|&p| p != gaddrs[g].port);
            g_has_other && r_has_other && gn.is_disjoint(&rn)
        })
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
