//! Issue 3's acceptance on loopback: the same machines over TCP, in one process, on ports the
//! OS chooses, with intervals shortened by configuration. Every wait is bounded.

use std::collections::BTreeSet;

use gossipnet_tests::real::{Cluster, SETTLE_TIMEOUT};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::report::Recorder;
use sim_core::seed::SeedConfig;
use sim_core::time::{Duration, Time};

const LIVENESS: Duration = Duration::from_millis(500);

/// Messages are originated by the test once the overlay is complete (gossip count 0), so
/// that which peer receives what does not depend on thread scheduling.
fn protocol() -> PeerConfig {
    PeerConfig {
        gossip_count: 0,
        liveness_interval: LIVENESS,
        misses_max: 3,
        handshake_timeout: Duration::from_secs(2),
        seed_retry: Duration::from_millis(100),
        // Every peer has room for every other: the overlay is complete, whatever the ports.
        topology: "capacity:16,1,10".parse().expect("valid topology"),
        ..PeerConfig::default()
    }
}

fn delivered_pairs(rec: &Recorder) -> BTreeSet<(String, NodeAddr)> {
    rec.deliveries
        .iter()
        .map(|d| (d.identity.clone(), d.receiver))
        .collect()
}

#[test]
fn eight_peers_deliver_everything_once_and_detect_a_killed_peer_within_four_rounds() {
    let mut c = Cluster::complete(11, 3, 8, &protocol(), &SeedConfig::default(), 1000);
    let peers = c.peer_addrs.clone();
    for (i, _) in peers.iter().enumerate() {
        for k in 1..=2 {
            c.peer(i).originate(format!("m{i}.{k}"));
        }
    }
    let expected = 8 * 2 * 7;
    let all =
        c.rt.wait_until(SETTLE_TIMEOUT, |rec| rec.deliveries.len() >= expected);
    c.rt.with_recorder(|rec| {
        let o = rec.outcome();
        assert!(
            all,
            "{} of {expected} deliveries: {o:?}",
            rec.deliveries.len()
        );
        assert_eq!(o.messages, 16);
        assert_eq!(o.double_deliveries, 0, "a message delivered twice: {o:?}");
        assert_eq!(delivered_pairs(rec).len(), expected);
        for m in &rec.messages {
            let got: BTreeSet<_> = rec
                .deliveries
                .iter()
                .filter(|d| d.identity == m.message.identity())
                .map(|d| d.receiver)
                .collect();
            let want: BTreeSet<_> = peers
                .iter()
                .copied()
                .filter(|p| *p != m.message.origin)
                .collect();
            assert_eq!(got, want, "receivers of {}", m.message.identity());
        }
    });

    let victim = peers[3];
    let registered_with =
        c.rt.with_recorder(|rec| rec.peers[&victim].registered_with.clone());
    let reporters: BTreeSet<NodeAddr> = peers.iter().copied().filter(|p| *p != victim).collect();
    c.kill(3);
    let detected = c.rt.wait_until(SETTLE_TIMEOUT, |rec| {
        let by: BTreeSet<_> = rec
            .detections
            .iter()
            .filter(|d| d.dead == victim)
            .map(|d| d.reporter)
            .collect();
        let removed: BTreeSet<_> = rec
            .removals
            .get(&victim)
            .into_iter()
            .flatten()
            .map(|(s, _)| *s)
            .collect();
        by == reporters && registered_with.is_subset(&removed)
    });
    let rec = c.finish();
    let down_at = rec.peers[&victim].down_at.expect("the kill is recorded");
    let window = LIVENESS.times(4);
    assert!(
        detected,
        "detections {:?}\nremovals {:?}",
        rec.detections,
        rec.removals.get(&victim)
    );
    for d in &rec.detections {
        assert_eq!(d.dead, victim, "a live peer was reported: {d:?}");
        assert!(!d.false_positive, "{d:?}");
        let took = d.reported_at.since(down_at);
        assert!(
            took <= window,
            "{} reported {victim} after {took}, more than 4 liveness intervals",
            d.reporter
        );
    }
    let removals = &rec.removals[&victim];
    for seed in &registered_with {
        let (_, at) = removals
            .iter()
            .find(|(s, _)| s == seed)
            .expect("seed removed the peer");
        let took = at.since(down_at);
        assert!(took <= window, "seed {seed} removed {victim} after {took}");
    }
    assert!(down_at > Time::ZERO);
}
