//! The real driver's own behaviour: overload is measured, said, and kept from turning into
//! verdicts about live peers.

use std::time::Duration as StdDuration;

use net_real::{Listen, Runtime, RuntimeOptions};
use sim_core::peer::PeerConfig;
use sim_core::seed::{Admission, SeedConfig};
use sim_core::sim::{peer_rng, seed_rng};
use sim_core::time::Duration;

/// One event loop, two linked peers with 100 ms liveness rounds, and a digest that takes
/// most of a second (2 000 000 iterations), computed on the loop: the loop runs late, the
/// driver says so, puts the liveness rounds off until it catches up, and nobody is declared
/// dead.
#[test]
fn a_loop_that_runs_late_warns_and_puts_liveness_verdicts_off() {
    let rt = Runtime::new(RuntimeOptions {
        hash_iterations: 2_000_000,
        loops: 1,
        ..RuntimeOptions::default()
    });
    let seed_cfg = SeedConfig {
        admission: Admission::Trust,
        ..SeedConfig::default()
    };
    let seed = rt
        .spawn_seed(Listen::loopback(0), seed_cfg, seed_rng(3, 0))
        .expect("a seed listens");
    let cfg = PeerConfig {
        gossip_count: 0,
        liveness_interval: Duration::from_millis(100),
        misses_max: 3,
        ..PeerConfig::default()
    };
    let peers: Vec<_> = (0..2)
        .map(|i| {
            rt.spawn_peer(
                Listen::loopback(0),
                vec![seed.addr()],
                cfg.clone(),
                peer_rng(3, i),
            )
            .expect("a peer listens")
        })
        .collect();
    let linked = rt.wait_until(StdDuration::from_secs(10), |rec| {
        peers.iter().all(|p| {
            rec.peers
                .get(&p.addr())
                .is_some_and(|s| s.neighbours.len() == 1)
        })
    });
    assert!(linked, "the peers did not link");
    peers[0].originate("slow to hash".into());
    let delivered = rt.wait_until(StdDuration::from_secs(30), |rec| rec.deliveries.len() == 1);
    assert!(delivered, "the message did not arrive");
    // A few rounds after the loop caught up.
    let settled = rt.wait_until(StdDuration::from_secs(10), |rec| {
        rec.log.iter().any(|l| l.contains("caught up"))
    });
    let figures = rt.driver_figures(None);
    let rec = rt.with_recorder(|rec| {
        (
            rec.detections.len(),
            rec.log
                .iter()
                .filter(|l| l.contains("overloaded") || l.contains("caught up"))
                .cloned()
                .collect::<Vec<_>>(),
        )
    });
    drop(peers);
    drop(seed);
    assert!(settled, "no catching up logged: {:?}", rec.1);
    assert!(figures.overload_episodes >= 1, "{figures:?}");
    assert!(figures.liveness_deferred >= 1, "{figures:?}");
    assert!(figures.lag_max_ms >= 250.0, "{figures:?}");
    assert!(
        rec.1.iter().any(|l| l.contains("liveness rounds wait")),
        "{:?}",
        rec.1
    );
    assert_eq!(rec.0, 0, "a live peer was declared dead");
}
