//! The overlay the capacity rule builds: every peer gets a neighbour, none exceeds its
//! capacity, and links are held by both ends.

use std::collections::BTreeMap;

use gossipnet_tests::{repro, run};
use sim_core::sim::SimConfig;
use sim_core::time::Duration;

#[test]
fn at_a_thousand_peers_no_peer_is_left_without_a_neighbour() {
    let mut cfg = SimConfig {
        seed: 1,
        peers: 1000,
        duration: Duration::from_secs(45),
        join_interval: Duration::from_millis(20),
        hash_iterations: 1,
        faults: vec![],
        ..SimConfig::default()
    };
    cfg.peer.gossip_count = 0;
    let (rec, _) = run(&cfg);
    let why = repro(&cfg);
    let mut degree: BTreeMap<_, usize> = BTreeMap::new();
    for (a, b) in rec.edges() {
        *degree.entry(a).or_default() += 1;
        *degree.entry(b).or_default() += 1;
    }
    for (addr, state) in &rec.peers {
        let d = degree.get(addr).copied().unwrap_or(0);
        assert!(
            d >= 1,
            "{addr} (capacity {}) has no neighbour\n{why}",
            state.capacity
        );
        assert!(
            d <= state.capacity,
            "{addr} has {d} neighbours over capacity {}\n{why}",
            state.capacity
        );
        assert_eq!(
            d,
            state.neighbours.len(),
            "{addr} holds a one-sided link\n{why}"
        );
    }
}
