//! The real driver's own behaviour: overload is measured, said, and kept from turning into
//! verdicts about live peers.

use std::time::Duration as StdDuration;

use gossipnet_tests::real::linked_pair;
use net_real::{Runtime, RuntimeOptions};
use sim_core::peer::PeerConfig;
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
    let cfg = PeerConfig {
        gossip_count: 0,
        liveness_interval: Duration::from_millis(100),
        misses_max: 3,
        ..PeerConfig::default()
    };
    let (seed, peers) = linked_pair(&rt, &cfg, 3);
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

/// Frames a partition held are no stalled write: one event loop, two linked peers
/// partitioned from each other, a write timeout of 300 ms. A message is held across the
/// partition for longer than that; then the peer originates another, whose 2 000 000
/// iteration digest keeps the loop busy while the partition heals, so that the heal, the
/// loop's 100 ms tick (which looks for stalled writes) and the first write of what was held
/// fall in one turn. The link must survive and the held message arrive. (A swarm of 100
/// lost links this way at every heal and declared 134 live peers dead.)
#[test]
fn frames_held_by_a_partition_are_not_a_stalled_write_when_it_heals() {
    let mut opts = RuntimeOptions {
        hash_iterations: 2_000_000,
        loops: 1,
        ..RuntimeOptions::default()
    };
    opts.io.write_timeout = StdDuration::from_millis(300);
    let rt = Runtime::new(opts);
    let cfg = PeerConfig {
        gossip_count: 0,
        ..PeerConfig::default()
    };
    let (seed, peers) = linked_pair(&rt, &cfg, 4);
    rt.partition(vec![peers[0].addr()], vec![peers[1].addr()], "a|b");
    peers[0].originate("held".into());
    // Held for longer than the write timeout: the first message is hashed and queued (its
    // digest alone takes longer than that), and nothing arrives meanwhile.
    let held = rt.wait_until(StdDuration::from_secs(30), |rec| rec.messages.len() == 1);
    assert!(held, "the first message was not originated");
    let early = rt.wait_until(StdDuration::from_millis(600), |rec| {
        !rec.deliveries.is_empty()
    });
    assert!(!early, "a frame crossed the partition");
    // The loop hashes the second message while the heal waits for it.
    peers[0].originate("busy".into());
    rt.heal("a|b");
    let delivered = rt.wait_until(StdDuration::from_secs(30), |rec| rec.deliveries.len() == 2);
    let (stalls, degrees) = rt.with_recorder(|rec| {
        (
            rec.log
                .iter()
                .filter(|l| l.contains("no progress"))
                .cloned()
                .collect::<Vec<_>>(),
            peers
                .iter()
                .map(|p| rec.peers.get(&p.addr()).map_or(0, |s| s.neighbours.len()))
                .collect::<Vec<_>>(),
        )
    });
    drop(peers);
    drop(seed);
    assert!(stalls.is_empty(), "{stalls:?}");
    assert!(delivered, "the held message did not arrive");
    assert_eq!(degrees, [1, 1], "the link was lost");
}
