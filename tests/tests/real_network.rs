//! Issue 3's acceptance on loopback: the same machines over TCP, in one process, on ports the
//! OS chooses, with intervals shortened by configuration. Every wait is bounded.

use std::collections::BTreeSet;

use gossipnet_tests::real::{Cluster, SETTLE_TIMEOUT, removers_of, reporters_of, twin};
use gossipnet_tests::{RUN_FIGURES, repro};
use sim_core::addr::NodeAddr;
use sim_core::digest::DigestMemo;
use sim_core::limits::HANDSHAKES_MAX;
use sim_core::peer::PeerConfig;
use sim_core::report::Recorder;
use sim_core::seed::SeedConfig;
use sim_core::sim::{Fault, SimConfig, World};
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
        reporters_of(rec, victim) == reporters
            && registered_with.is_subset(&removers_of(rec, victim))
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

    // The real run's folder gets every figure `gossipnet plot` draws, the detection
    // latency included (UNIX timestamps, read as differences).
    let dir = tempfile::tempdir().expect("a temporary folder");
    sim_core::report::write_folder(dir.path(), &rec, serde_json::json!({}))
        .expect("the run folder is written");
    let plotted = experiments::plot::plot_run(dir.path()).expect("the folder plots");
    assert_eq!(plotted.figures, RUN_FIGURES);
}

/// What a run's protocol decided, with nodes named by index so that two drivers compare.
#[derive(Debug, PartialEq)]
struct Decisions {
    /// (origin peer, body, receiver peer)
    deliveries: BTreeSet<(usize, String, usize)>,
    /// (dead peer, reporter peer)
    reports: BTreeSet<(usize, usize)>,
    /// (dead peer, seed)
    removals: BTreeSet<(usize, usize)>,
    /// (peer, seed it registered with): random choices, so equal only with equal RNGs
    registrations: BTreeSet<(usize, usize)>,
}

fn decisions(rec: &Recorder, seeds: &[NodeAddr], peers: &[NodeAddr]) -> Decisions {
    let p = |a: &NodeAddr| peers.iter().position(|x| x == a).expect("a known peer");
    let s = |a: &NodeAddr| seeds.iter().position(|x| x == a).expect("a known seed");
    Decisions {
        deliveries: rec
            .deliveries
            .iter()
            .map(|d| {
                let body = d.identity.rsplit(':').next().unwrap_or_default().to_owned();
                (p(&d.origin), body, p(&d.receiver))
            })
            .collect(),
        reports: rec
            .detections
            .iter()
            .map(|d| (p(&d.dead), p(&d.reporter)))
            .collect(),
        removals: rec
            .removals
            .iter()
            .flat_map(|(dead, by)| by.iter().map(move |(seed, _)| (p(dead), s(seed))))
            .collect(),
        registrations: rec
            .peers
            .iter()
            .flat_map(|(peer, st)| {
                st.registered_with
                    .iter()
                    .map(move |seed| (p(peer), s(seed)))
            })
            .collect(),
    }
}

#[test]
fn the_simulator_and_loopback_make_the_same_protocol_decisions() {
    let origins: Vec<usize> = (0..6).flat_map(|i| [i, i]).collect();
    same_decisions(5, 6, &origins, 2, 16);
}

/// The same comparison at 100 peers, ten of them originating, one crashed. A joining peer
/// dials at most 64 peers at once and every peer has room for all, so each peer links to
/// the 64 (or fewer) its RNG picks among those before it: the overlay is a function of the
/// RNGs and the join order, whatever the timing, and the twin joins peers far enough apart
/// (50 ms) that each settles first, as the loopback run waits for.
#[test]
fn a_hundred_peers_and_one_crash_decide_the_same_in_the_simulator_and_on_loopback() {
    let origins: Vec<usize> = (0..10).map(|k| k * 10 + 1).collect();
    same_decisions(9, 100, &origins, 37, 128);
}

/// Runs `peers_n` peers over loopback on a complete overlay (capacity `room` each), has each
/// of `origins` originate a message (`m{i}.{k}`, k counting that peer's messages), kills
/// `victim`, and checks that the simulated twin decides the same: who received what, who
/// reported whom, which seed removed whom, who registered where.
fn same_decisions(run_seed: u64, peers_n: usize, origins: &[usize], victim: usize, room: u32) {
    let cfg = PeerConfig {
        topology: format!("capacity:{room},1,10")
            .parse()
            .expect("valid topology"),
        ..protocol()
    };
    let bodies: Vec<(usize, String)> = origins
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let k = origins[..=n].iter().filter(|&&o| o == i).count();
            (i, format!("m{i}.{k}"))
        })
        .collect();
    // Real: each peer joins once the one before it has linked to all it dials, then the
    // messages, then the victim is killed.
    let linked = |rec: &Recorder, started: &[NodeAddr]| {
        let want = (started.len() - 1).min(HANDSHAKES_MAX);
        started
            .last()
            .is_some_and(|p| rec.peers.get(p).is_some_and(|s| s.neighbours.len() >= want))
    };
    let mut c = Cluster::grow(
        run_seed,
        3,
        peers_n,
        &cfg,
        &SeedConfig::default(),
        1000,
        linked,
    );
    let (seeds, peers) = (c.seed_addrs(), c.peer_addrs.clone());
    for (i, body) in &bodies {
        c.peer(*i).originate(body.clone());
    }
    let spread = c.rt.wait_until(SETTLE_TIMEOUT, |rec| {
        rec.deliveries.len() >= bodies.len() * (peers_n - 1)
    });
    assert!(spread, "the real run did not deliver everything");
    let (registered_with, neighbours) = c.rt.with_recorder(|rec| {
        let v = &rec.peers[&peers[victim]];
        (v.registered_with.len(), v.neighbours.len())
    });
    c.kill(victim);
    let settled = c.rt.wait_until(SETTLE_TIMEOUT, |rec| {
        let removed = rec.removals.get(&peers[victim]).map_or(0, Vec::len);
        rec.detections.len() >= neighbours && removed >= registered_with
    });
    assert!(settled, "the real run did not detect the kill");
    // The decisions of the run, not of its teardown (a seed that sees its peers go checks
    // and removes them).
    let r = c.rt.with_recorder(|rec| decisions(rec, &seeds, &peers));
    let _ = c.finish();

    // Simulated: the same addresses, RNGs, settings and schedule in virtual time.
    let at = |ms: u64| Time::ZERO + Duration::from_millis(ms);
    let joined = 50 * (peers_n as u64 + 1);
    let sim_cfg = SimConfig {
        duration: Duration::from_millis(joined + 3000) + LIVENESS.times(6),
        join_interval: Duration::from_millis(50),
        faults: vec![Fault::Crash {
            peer: victim,
            at: at(joined + 3000),
        }],
        ..twin(run_seed, &seeds, &peers, cfg)
    };
    let mut world = World::new(sim_cfg.clone(), DigestMemo::new(1000)).expect("valid scenario");
    for (i, body) in &bodies {
        world.originate_at(*i, at(joined + 2000), body.clone());
    }
    let mut sim = Recorder::new(0);
    world.run(&mut sim);

    let s = decisions(&sim, &seeds, &peers);
    assert_eq!(r.deliveries.len(), bodies.len() * (peers_n - 1));
    assert_eq!(r.reports.len(), neighbours, "{r:?}");
    assert!(!r.removals.is_empty());
    assert_eq!(
        r,
        s,
        "real (left) and simulated (right) runs differ\n{}",
        repro(&sim_cfg)
    );
}
