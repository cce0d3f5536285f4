//! `--hash-per-peer`: each peer of a real process hashes every gossip copy it receives
//! itself, duplicates included, as the reference's peers do; by default the process hashes
//! each distinct message once for all its peers.

use std::time::Duration as StdDuration;

use gossipnet_tests::real::overlay_complete;
use net_real::{Listen, Runtime, RuntimeOptions};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::seed::{Admission, SeedConfig};
use sim_core::sim::{peer_rng, seed_rng};

/// Four peers linked to each other (uniform:3) flood one message: the origin hashes it, its
/// three neighbours get it from the origin and then twice more from each other. Returns the
/// digests the process computed.
fn digests_of_one_flood(hash_per_peer: bool) -> u64 {
    let rt = Runtime::new(RuntimeOptions {
        hash_iterations: 10,
        hash_per_peer,
        ..RuntimeOptions::default()
    });
    let seed_cfg = SeedConfig {
        admission: Admission::Trust,
        ..SeedConfig::default()
    };
    let seed = rt
        .spawn_seed(Listen::loopback(0), seed_cfg, seed_rng(5, 0))
        .expect("a seed listens");
    let cfg = PeerConfig {
        gossip_count: 0,
        topology: "uniform:3".parse().expect("a topology"),
        ..PeerConfig::default()
    };
    let mut peers = Vec::new();
    let mut addrs: Vec<NodeAddr> = Vec::new();
    for i in 0..4 {
        let p = rt
            .spawn_peer(
                Listen::loopback(0),
                vec![seed.addr()],
                cfg.clone(),
                peer_rng(5, i),
            )
            .expect("a peer listens");
        addrs.push(p.addr());
        peers.push(p);
        let linked = rt.wait_until(StdDuration::from_secs(20), |rec| {
            overlay_complete(rec, &addrs)
        });
        assert!(linked, "peer {i} did not link to the others");
    }
    peers[0].originate("hashed by each".into());
    let flooded = rt.wait_until(StdDuration::from_secs(20), |rec| {
        let duplicates: u64 = rec.peers.values().map(|s| s.duplicates).sum();
        rec.deliveries.len() == 3 && duplicates == 6
    });
    assert!(flooded, "3 deliveries and 6 duplicates did not come");
    let computed = rt.memo_stats().computed;
    drop(peers);
    drop(seed);
    computed
}

#[test]
fn with_hash_per_peer_every_copy_is_hashed_by_its_receiver() {
    // 1 origination + 3 first copies + 6 duplicates.
    assert_eq!(digests_of_one_flood(true), 10);
}

#[test]
fn by_default_a_process_hashes_each_message_once() {
    assert_eq!(digests_of_one_flood(false), 1);
}
