use super::*;

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        peers: 12,
        duration: Duration::from_secs(40),
        hash_iterations: 1,
        faults: vec![],
        ..SimConfig::default()
    }
}

#[test]
fn equal_times_keep_insertion_order() {
    let mut q = Queue::default();
    for (seq, at) in [(1, 5), (2, 3), (3, 5), (4, 3)] {
        q.push(Time(at), Entry::new(Kind::Start, 0, seq));
    }
    let order: Vec<u64> = std::iter::from_fn(|| q.pop().map(|(_, e)| e.b)).collect();
    assert_eq!(order, vec![2, 4, 1, 3]);
}

#[test]
fn derived_seeds_differ_per_stream_index_and_incarnation() {
    let base = derive_seed(7, STREAM_PEER, 3, 0);
    assert_ne!(base, derive_seed(7, STREAM_PEER, 3, 1));
    assert_ne!(base, derive_seed(7, STREAM_PEER, 4, 0));
    assert_ne!(base, derive_seed(7, STREAM_SEED, 3, 0));
    assert_ne!(base, derive_seed(8, STREAM_PEER, 3, 0));
    assert_eq!(base, derive_seed(7, STREAM_PEER, 3, 0));
}

#[test]
fn running_in_steps_gives_the_same_trace_as_running_at_once() {
    let mut a = World::new(small(3), DigestMemo::new(1)).unwrap();
    a.run(&mut ());
    let mut b = World::new(small(3), DigestMemo::new(1)).unwrap();
    for s in 1..=40 {
        b.run_until(Time(s * 1_000_000), &mut ());
    }
    assert_eq!(a.trace_digest(), b.trace_digest());
    assert!(a.stats().events_processed > 1000);
}

#[test]
fn a_crashed_peer_is_gone_and_a_restarted_one_is_back() {
    let mut cfg = small(4);
    cfg.faults = vec![
        Fault::Crash {
            peer: 1,
            at: Time(10_000_000),
        },
        Fault::Restart {
            peer: 1,
            at: Time(20_000_000),
        },
    ];
    let mut w = World::new(cfg, DigestMemo::new(1)).unwrap();
    w.run_until(Time(15_000_000), &mut ());
    assert!(w.peer(1).is_none());
    w.run_until(Time(25_000_000), &mut ());
    let p = w.peer(1).expect("restarted");
    assert!(p.neighbours().count() > 0);
}

#[test]
fn invalid_configurations_are_refused_with_a_reason() {
    let bad = SimConfig {
        seeds: 0,
        ..small(1)
    };
    assert!(
        World::new(bad, DigestMemo::new(1))
            .err()
            .unwrap()
            .contains("--seeds")
    );
    let bad = SimConfig {
        faults: vec![Fault::Crash {
            peer: 99,
            at: Time::ZERO,
        }],
        ..small(1)
    };
    assert!(
        World::new(bad, DigestMemo::new(1))
            .err()
            .unwrap()
            .contains("peer 99")
    );
}
