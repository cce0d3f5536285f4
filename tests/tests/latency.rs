//! Latency shaped by the real driver (`--latency`): every frame a node writes is held for a
//! one-way latency, in order on its connection. One seed and two linked peers on loopback.

use std::time::Duration as StdDuration;

use gossipnet_tests::real::SETTLE_TIMEOUT;
use net_real::{IoLimits, NodeHandle, Runtime, RuntimeOptions};
use sim_core::peer::PeerConfig;
use sim_core::report::Recorder;
use sim_core::sim::Latency;
use sim_core::time::Duration;

/// A runtime with `latency`, a seed and two peers linked to each other (the seed lists them
/// at once; the peers originate nothing by themselves).
fn linked_pair(
    latency: Latency,
    run_seed: u64,
    io: IoLimits,
) -> (Runtime, NodeHandle, Vec<NodeHandle>) {
    let rt = Runtime::new(RuntimeOptions {
        hash_iterations: 10,
        latency: Some(latency),
        io,
        ..RuntimeOptions::default()
    });
    let cfg = PeerConfig {
        gossip_count: 0,
        ..PeerConfig::default()
    };
    let (seed, peers) = gossipnet_tests::real::linked_pair(&rt, &cfg, run_seed);
    (rt, seed, peers)
}

/// The bodies `receiver` got, in the order it got them.
fn bodies_received(rec: &Recorder, receiver: sim_core::addr::NodeAddr) -> Vec<String> {
    rec.deliveries
        .iter()
        .filter(|d| d.receiver == receiver)
        .filter_map(|d| d.message.map(|m| rec.messages[m].message.body.clone()))
        .collect()
}

#[test]
fn a_gossip_arrives_no_sooner_than_the_fixed_latency_and_not_much_later() {
    let latency = StdDuration::from_millis(50);
    let (rt, seed, peers) = linked_pair(
        Latency::Fixed(Duration::from_millis(50)),
        11,
        IoLimits::default(),
    );
    let n = 5;
    for k in 0..n {
        peers[0].originate(format!("timed {k}"));
        // Spaced out, so that each is timed on its own.
        std::thread::sleep(StdDuration::from_millis(20));
    }
    let all = rt.wait_until(SETTLE_TIMEOUT, |rec| rec.deliveries.len() == n);
    let spans: Vec<StdDuration> = rt.with_recorder(|rec| {
        rec.deliveries
            .iter()
            .filter_map(|d| {
                let m = &rec.messages[d.message?];
                Some(StdDuration::from_micros(d.at.0 - m.originated_at.0))
            })
            .collect()
    });
    NodeHandle::shutdown_all(peers);
    seed.shutdown();
    assert!(all, "{} of {n} messages arrived: {spans:?}", spans.len());
    eprintln!("origination to receipt at 50 ms latency: {spans:?}");
    // The driver holds a frame until its origination time plus the latency: never sooner.
    assert!(spans.iter().all(|s| *s >= latency), "{spans:?}");
    // Loopback and the loop's timer add a millisecond or two; a busy machine more.
    let slack = StdDuration::from_millis(40);
    let mut sorted = spans.clone();
    sorted.sort();
    assert!(
        sorted[n / 2] < latency + slack,
        "median too late: {spans:?}"
    );
}

#[test]
fn frames_keep_their_order_on_a_connection_under_uniform_latency() {
    let (rt, seed, peers) = linked_pair(
        Latency::Uniform(Duration::from_millis(1), Duration::from_millis(40)),
        12,
        IoLimits::default(),
    );
    // A burst: far more frames than milliseconds of spread, so that drawn latencies alone
    // would reorder most of them.
    let n = 300;
    for k in 0..n {
        peers[0].originate(format!("burst {k:03}"));
    }
    let receiver = peers[1].addr();
    let all = rt.wait_until(SETTLE_TIMEOUT, |rec| {
        bodies_received(rec, receiver).len() == n
    });
    let got = rt.with_recorder(|rec| bodies_received(rec, receiver));
    NodeHandle::shutdown_all(peers);
    seed.shutdown();
    assert!(all, "{} of {n} messages arrived", got.len());
    let sent: Vec<String> = (0..n).map(|k| format!("burst {k:03}")).collect();
    assert_eq!(got, sent, "the receiver's order differs from the sender's");
}

#[test]
fn frames_held_for_latency_are_neither_a_full_write_queue_nor_a_stalled_write() {
    // A write queue of 8 frames and a write that may stall 200 ms, under a latency of
    // 300 ms: a burst of 100 frames waits longer than the stall limit, and far more of them
    // than the queue holds, on a connection whose reader reads everything.
    let io = IoLimits {
        write_queue_frames_max: 8,
        write_timeout: StdDuration::from_millis(200),
        ..IoLimits::default()
    };
    let (rt, seed, peers) = linked_pair(Latency::Fixed(Duration::from_millis(300)), 13, io);
    let n = 100;
    for k in 0..n {
        peers[0].originate(format!("held {k:03}"));
    }
    let receiver = peers[1].addr();
    let all = rt.wait_until(SETTLE_TIMEOUT, |rec| {
        bodies_received(rec, receiver).len() == n
    });
    let (got, closes) = rt.with_recorder(|rec| {
        let closes: Vec<String> = rec
            .log
            .iter()
            .filter(|l| l.contains("too slow") || l.contains("no progress"))
            .cloned()
            .collect();
        (bodies_received(rec, receiver).len(), closes)
    });
    NodeHandle::shutdown_all(peers);
    seed.shutdown();
    assert!(closes.is_empty(), "{closes:?}");
    assert!(all, "{got} of {n} messages arrived");
}
