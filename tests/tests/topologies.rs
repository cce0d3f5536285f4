//! The neighbour policies beside the seed's capacity rule: `uniform:K` and `preferential:M`.
//! Both grow the overlay as peers join (each newcomer opens its links, accepts every hello);
//! they differ in whom a newcomer picks. Checked in the simulator and over loopback TCP.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration as StdDuration;

use experiments::fit::fit_with_p_value;
use gossipnet_tests::real::{Cluster, twin};
use gossipnet_tests::{repro, run};
use sim_core::addr::NodeAddr;
use sim_core::digest::DigestMemo;
use sim_core::peer::PeerConfig;
use sim_core::report::Recorder;
use sim_core::seed::SeedConfig;
use sim_core::sim::{SimConfig, World, layout};
use sim_core::time::Duration;
use sim_core::topology::Topology;
use sim_core::wire::{Message, decode};

/// A failure-free growth run: peers join every 100 ms, no gossip, one liveness round a minute.
fn growth(topology: Topology, peers: usize, seed: u64) -> SimConfig {
    SimConfig {
        seed,
        peers,
        duration: Duration::from_millis(100).times(peers as u64 + 20),
        faults: vec![],
        hash_iterations: 1,
        peer: PeerConfig {
            topology,
            gossip_count: 0,
            liveness_interval: Duration::from_secs(60),
            ..PeerConfig::default()
        },
        ..SimConfig::default()
    }
}

fn degrees(rec: &Recorder) -> Vec<u64> {
    rec.peers
        .values()
        .map(|s| s.neighbours.len() as u64)
        .collect()
}

/// Peer `i` knows the `i` peers before it (any two majorities of 3 seeds share a seed), so
/// it opens `min(k, i)` links and the overlay has exactly `sum min(k, i)` edges; every peer's
/// degree is at least the links it opened.
#[test]
fn uniform_and_preferential_peers_open_exactly_their_links() {
    for topology in [Topology::Uniform { k: 3 }, Topology::Preferential { m: 3 }] {
        let cfg = growth(topology, 200, 4);
        let (rec, _) = run(&cfg);
        let edges = rec.edges().len();
        let want: usize = (0..200).map(|i: usize| i.min(3)).sum();
        assert_eq!(edges, want, "{topology}\n{}", repro(&cfg));
        for (addr, s) in &rec.peers {
            let i = layout::peer_index(*addr).expect("a simulated peer address");
            assert!(s.neighbours.len() >= i.min(3), "{topology}: {addr} {s:?}");
        }
    }
}

/// Linear preferential attachment with growth gives P(k) ~ k^-3 (Barabási and Albert, 1999);
/// uniform attachment gives an exponential tail. On 3 000 peers the fitted exponent of the
/// preferential overlay is within 0.5 of 3 with a plausible fit (bootstrap p >= 0.05), its
/// largest hub is over twice the uniform overlay's, and the uniform overlay's tail is
/// rejected as a power law or fitted with a far steeper exponent.
#[test]
fn preferential_attachment_grows_a_power_law_and_uniform_attachment_does_not() {
    let (pref, _) = run(&growth(Topology::Preferential { m: 3 }, 3000, 1));
    let (unif, _) = run(&growth(Topology::Uniform { k: 3 }, 3000, 1));
    let (dp, du) = (degrees(&pref), degrees(&unif));
    let p = fit_with_p_value(&dp, 100, 1).expect("enough degrees to fit");
    assert!((p.fit.alpha - 3.0).abs() < 0.5, "{p:?}");
    assert!(p.p_value >= 0.05, "{p:?}");
    let (max_p, max_u) = (dp.iter().max(), du.iter().max());
    assert!(
        max_p > max_u.map(|m| 2 * m).as_ref(),
        "{max_p:?} vs {max_u:?}"
    );
    let u = fit_with_p_value(&du, 100, 1).expect("enough degrees to fit");
    assert!(u.p_value < 0.05 || u.fit.alpha > 4.0, "{u:?}");
}

/// The degrees every seed lists match the peers' own neighbour counts.
fn seeds_know_degrees(rec: &Recorder, started: &[NodeAddr]) -> bool {
    started.iter().all(|p| {
        let Some(s) = rec.peers.get(p) else {
            return false;
        };
        let d = s.neighbours.len() as u32;
        s.registered_with.iter().all(|seed| {
            let listed = rec.seed_degrees.get(seed).and_then(|m| m.get(p)).copied();
            listed.unwrap_or(0) == d
        })
    })
}

/// Asks a seed for its list on a raw TCP connection, as `nc` would.
fn listed_degrees(seed: NodeAddr) -> Vec<(NodeAddr, Option<u32>)> {
    let mut s = TcpStream::connect((seed.ip, seed.port)).expect("the seed listens");
    s.set_read_timeout(Some(StdDuration::from_secs(5)))
        .expect("a timeout is valid");
    s.write_all(b"peer list\n").expect("the seed reads");
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("the seed answers within 5 s");
    match decode(line.as_bytes()) {
        Ok(Message::PeerList { peers }) => peers.iter().map(|p| (p.addr, p.degree)).collect(),
        other => panic!("not a peer list: {line:?} -> {other:?}"),
    }
}

/// Over loopback, a preferential overlay grown one peer at a time is the overlay the
/// simulator grows with the same addresses, RNGs and settings: degrees travel in `degree:`
/// reports and peer lists, and newcomers pick the same neighbours from them. A raw client
/// then reads each seed's list and finds every peer's current degree in it.
#[test]
fn preferential_overlays_are_the_same_over_loopback_and_in_the_simulator() {
    let (run_seed, peers_n, m) = (3, 10, 2);
    let cfg = PeerConfig {
        topology: Topology::Preferential { m },
        gossip_count: 0,
        liveness_interval: Duration::from_secs(60),
        ..PeerConfig::default()
    };
    let links = |rec: &Recorder, started: &[NodeAddr]| {
        let want: usize = (0..started.len()).map(|i| i.min(m)).sum();
        rec.edges().len() == want && seeds_know_degrees(rec, started)
    };
    let c = Cluster::grow(
        run_seed,
        3,
        peers_n,
        &cfg,
        &SeedConfig::default(),
        1000,
        links,
    );
    let (seeds, peers) = (c.seed_addrs(), c.peer_addrs.clone());
    let lists: Vec<_> = seeds.iter().map(|s| listed_degrees(*s)).collect();
    let real = c.finish();
    for (seed, list) in seeds.iter().zip(&lists) {
        assert!(!list.is_empty(), "seed {seed} lists no peer");
        for (p, d) in list {
            let own = real.peers[p].neighbours.len() as u32;
            assert_eq!(
                *d,
                Some(own),
                "seed {seed} lists {p} with {d:?}, it has {own}"
            );
        }
    }

    let sim_cfg = SimConfig {
        duration: Duration::from_secs(peers_n as u64 + 5),
        join_interval: Duration::from_secs(1),
        ..twin(run_seed, &seeds, &peers, cfg)
    };
    let mut world = World::new(sim_cfg.clone(), DigestMemo::new(1000)).expect("valid scenario");
    let mut sim = Recorder::new(0);
    world.run(&mut sim);
    let (r, s): (BTreeSet<_>, BTreeSet<_>) = (
        real.edges().into_iter().collect(),
        sim.edges().into_iter().collect(),
    );
    assert_eq!(r.len(), (0..peers_n).map(|i| i.min(m)).sum::<usize>());
    assert_eq!(
        r,
        s,
        "real (left) and simulated (right) overlays differ\n{}",
        repro(&sim_cfg)
    );
}

/// A seed keeps one connection per registered peer, so its connection limit bounds the
/// network: with the peer's limit (2 112) a network stopped growing at about 3 200 peers and
/// later peers, refused `busy`, stayed alone. 3 500 peers must all register and link.
#[test]
fn networks_past_three_thousand_peers_register_and_link_everyone() {
    let mut cfg = growth(Topology::Uniform { k: 1 }, 3500, 2);
    cfg.join_interval = Duration::from_millis(10);
    cfg.duration = Duration::from_secs(60);
    let (rec, _) = run(&cfg);
    let alone: Vec<_> = rec
        .peers
        .iter()
        .filter(|(_, s)| s.neighbours.is_empty() || s.registered_with.len() != 2)
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(rec.peers.len(), 3500);
    assert!(
        alone.is_empty(),
        "{} peers alone, first {:?}",
        alone.len(),
        alone.first()
    );
}
