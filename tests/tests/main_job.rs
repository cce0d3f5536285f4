//! The main job's acceptance: 3 seeds, 40 peers, peer 4 crashes at 60 s.

use std::collections::BTreeSet;

use gossipnet_tests::{repro, run};
use sim_core::sim::{Fault, SimConfig, layout};
use sim_core::time::{Duration, Time};

/// The main job with cheap digests: the iteration count changes only how long hashing
/// takes, never what the protocol does.
fn main_job(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        hash_iterations: 1,
        ..SimConfig::default()
    }
}

#[test]
fn main_job_covers_everyone_and_detects_the_crash_within_the_liveness_window() {
    for seed in [7, 8] {
        let cfg = main_job(seed);
        let (rec, _) = run(&cfg);
        let o = rec.outcome();
        let why = repro(&cfg);
        assert_eq!(o.messages, 400, "{why}");
        assert_eq!(o.coverage, 1.0, "{o:?}\n{why}");
        assert!(o.expected_deliveries > 15_000, "{o:?}\n{why}");
        assert_eq!(o.double_deliveries, 0, "{why}");
        assert_eq!(
            o.false_positives, 0,
            "no live peer is ever reported dead\n{why}"
        );

        let crashed = layout::peer_addr(4);
        let Fault::Crash { at: crash_at, .. } = cfg.faults[0] else {
            unreachable!()
        };
        let neighbours: BTreeSet<_> = rec.peers[&crashed]
            .neighbours_at_down
            .iter()
            .copied()
            .collect();
        assert!(neighbours.len() >= 8, "{neighbours:?}\n{why}");
        let reporters: BTreeSet<_> = rec.detections.iter().map(|d| d.reporter).collect();
        assert_eq!(
            reporters, neighbours,
            "every neighbour and only they report\n{why}"
        );
        let slack = cfg.latency.max();
        for d in &rec.detections {
            assert_eq!(d.dead, crashed, "{why}");
            let after = d.reported_at.since(crash_at);
            assert!(
                after > Duration::from_secs(26) && after <= Duration::from_secs(52) + slack,
                "{} reported {after} after the crash\n{why}",
                d.reporter
            );
        }
        let registered = &rec.peers[&crashed].registered_with;
        assert_eq!(registered.len(), 2, "a majority of 3 seeds\n{why}");
        let removed_by: BTreeSet<_> = rec.removals[&crashed].iter().map(|(s, _)| *s).collect();
        assert_eq!(&removed_by, registered, "{why}");
        for (seed_addr, at) in &rec.removals[&crashed] {
            assert!(
                *at > crash_at,
                "{seed_addr} removed it before it crashed\n{why}"
            );
        }
        assert_eq!(rec.removals.len(), 1, "no other peer is removed\n{why}");
    }
}

#[test]
fn a_silent_failure_is_found_by_liveness_alone_within_four_rounds() {
    let mut cfg = main_job(3);
    cfg.faults = vec![Fault::SilentFail {
        peer: 10,
        at: Time(60_000_000),
    }];
    let (rec, _) = run(&cfg);
    let why = repro(&cfg);
    let dead = layout::peer_addr(10);
    assert!(!rec.detections.is_empty(), "{why}");
    for d in &rec.detections {
        assert_eq!(d.dead, dead, "{why}");
        let after = d.reported_at.since(Time(60_000_000));
        assert!(
            after > Duration::from_secs(26)
                && after <= Duration::from_secs(52) + Duration::from_millis(20),
            "{after}\n{why}"
        );
    }
    assert_eq!(rec.outcome().false_positives, 0, "{why}");
}

#[test]
fn a_restarted_peer_registers_again_and_gets_neighbours() {
    let mut cfg = main_job(5);
    cfg.faults = vec![
        Fault::Crash {
            peer: 2,
            at: Time(60_000_000),
        },
        Fault::Restart {
            peer: 2,
            at: Time(150_000_000),
        },
    ];
    let (rec, _) = run(&cfg);
    let why = repro(&cfg);
    let p = &rec.peers[&layout::peer_addr(2)];
    assert!(p.up, "{why}");
    assert_eq!(p.registered_with.len(), 2, "{why}");
    assert!(!p.neighbours.is_empty(), "{why}");
    assert_eq!(rec.outcome().double_deliveries, 0, "{why}");
}

#[test]
fn a_seed_crash_leaves_the_network_working_through_the_other_seeds() {
    let mut cfg = main_job(11);
    cfg.faults = vec![
        Fault::SeedCrash {
            seed: 0,
            at: Time(2_000_000),
        },
        Fault::Crash {
            peer: 30,
            at: Time(80_000_000),
        },
    ];
    let (rec, _) = run(&cfg);
    let why = repro(&cfg);
    let o = rec.outcome();
    assert_eq!(o.coverage, 1.0, "{o:?}\n{why}");
    assert_eq!(o.false_positives, 0, "{why}");
    let crashed = layout::peer_addr(30);
    let live_seeds: BTreeSet<_> = rec.peers[&crashed]
        .registered_with
        .iter()
        .copied()
        .filter(|s| rec.seeds[s])
        .collect();
    let removed_by: BTreeSet<_> = rec.removals[&crashed].iter().map(|(s, _)| *s).collect();
    assert!(!live_seeds.is_empty(), "{why}");
    assert_eq!(removed_by, live_seeds, "{why}");
}

#[test]
fn a_long_partition_makes_both_sides_report_each_other() {
    let mut cfg = main_job(13);
    cfg.faults = vec![Fault::Partition {
        a: 0..20,
        b: 20..40,
        start: Time(60_000_000),
        end: Time(200_000_000),
    }];
    let (rec, _) = run(&cfg);
    let why = repro(&cfg);
    let o = rec.outcome();
    assert!(
        o.false_positives > 0,
        "a 140 s partition outlasts 3 liveness rounds\n{why}"
    );
    for d in &rec.detections {
        let (a, b) = (
            layout::peer_index(d.dead).unwrap(),
            layout::peer_index(d.reporter).unwrap(),
        );
        assert!(
            (a < 20) != (b < 20),
            "only links across the partition fail\n{why}"
        );
    }
}
