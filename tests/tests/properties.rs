//! Properties over generated inputs: the codec round-trips and never panics, and over random
//! topologies, latencies and crash schedules every peer delivers a message at most once, a
//! crashed peer is removed by the seeds its reporters tell (at least one of its own, always;
//! every one of its own once its reporters between them registered with all of those), and a
//! live one never is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gossipnet_tests::{repro, run};
use proptest::prelude::*;
use sim_core::addr::NodeAddr;
use sim_core::sim::{Fault, Latency, SimConfig};
use sim_core::time::{Duration, Time};
use sim_core::wire::{DeadNode, Gossip, ListedPeer, Message, RefuseReason, Timestamp, decode};

fn addr() -> impl Strategy<Value = NodeAddr> {
    (any::<[u8; 4]>(), 1u16..=65535).prop_map(|(ip, port)| NodeAddr::new(ip.into(), port))
}

fn ts() -> impl Strategy<Value = Timestamp> {
    (0u64..10_000_000_000, proptest::option::of(0u32..1_000_000)).prop_map(|(s, f)| {
        let text = match f {
            Some(f) => format!("{s}.{f}"),
            None => s.to_string(),
        };
        Timestamp::parse(&text).unwrap()
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        addr().prop_map(|addr| Message::Register { addr }),
        Just(Message::Registered),
        Just(Message::PeerListRequest),
        proptest::collection::vec(
            (addr(), proptest::option::of(0u32..=1024))
                .prop_map(|(addr, degree)| ListedPeer { addr, degree }),
            0..50
        )
        .prop_map(|peers| Message::PeerList { peers }),
        (addr(), 0u32..=1024).prop_map(|(addr, degree)| Message::Degree { addr, degree }),
        addr().prop_map(|addr| Message::Hello { addr }),
        prop_oneof![
            Just(RefuseReason::Full),
            Just(RefuseReason::Duplicate),
            Just(RefuseReason::SelfConnection),
            Just(RefuseReason::Busy)
        ]
        .prop_map(|reason| Message::Refuse { reason }),
        (ts(), addr()).prop_map(|(ts, addr)| Message::LivenessRequest { ts, addr }),
        (ts(), addr(), addr()).prop_map(|(ts, to, from)| Message::LivenessReply { ts, to, from }),
        (ts(), addr(), "[^\n\r]{0,60}").prop_map(|(ts, origin, body)| Message::Gossip(Arc::new(
            Gossip::new(ts, origin, body)
        ))),
        (addr(), ts(), addr()).prop_map(|(dead, ts, reporter)| Message::DeadNode(DeadNode {
            dead,
            ts,
            reporter
        })),
    ]
}

proptest! {
    #[test]
    fn decode_of_encode_is_the_identity(m in message()) {
        let frame = m.encode();
        prop_assert!(frame.ends_with('\n') && !frame[..frame.len() - 1].contains('\n'));
        prop_assert_eq!(decode(frame.as_bytes()), Ok(m.clone()));
        let crlf = format!("{}\r\n", m);
        prop_assert_eq!(decode(crlf.as_bytes()), Ok(m));
    }

    #[test]
    fn decode_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = decode(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn decode_of_mangled_frames_never_panics(m in message(), cut in 0usize..200, junk in "[:#.0-9a-z ]{0,8}") {
        let mut frame = m.to_string();
        let at = (0..=cut.min(frame.len())).rev().find(|i| frame.is_char_boundary(*i)).unwrap_or(0);
        frame.insert_str(at, &junk);
        let _ = decode(frame.as_bytes());
        frame.truncate(at);
        let _ = decode(frame.as_bytes());
    }
}

/// A random small network with fast protocol timers and up to three crashes after every
/// peer has joined.
fn scenario() -> impl Strategy<Value = SimConfig> {
    let latency = prop_oneof![
        (1u64..80).prop_map(|ms| Latency::Fixed(Duration::from_millis(ms))),
        (1u64..40, 0u64..80).prop_map(|(lo, extra)| {
            Latency::Uniform(Duration::from_millis(lo), Duration::from_millis(lo + extra))
        }),
    ];
    (
        any::<u64>(),
        1usize..5,
        4usize..30,
        latency,
        proptest::collection::vec((any::<usize>(), 0u64..20_000), 0..4),
    )
        .prop_map(|(seed, seeds, peers, latency, crashes)| {
            let mut cfg = SimConfig {
                seed,
                seeds,
                peers,
                latency,
                duration: Duration::from_secs(60),
                hash_iterations: 1,
                join_interval: Duration::from_millis(50),
                faults: Vec::new(),
                ..SimConfig::default()
            };
            cfg.peer.liveness_interval = Duration::from_secs(2);
            cfg.peer.gossip_interval = Duration::from_secs(1);
            cfg.peer.gossip_count = 5;
            let joined = 50_000 * peers as u64 + 1_000_000;
            let mut seen = BTreeSet::new();
            for (who, ms) in crashes {
                let peer = who % peers;
                if seen.insert(peer) {
                    cfg.faults.push(Fault::Crash {
                        peer,
                        at: Time(joined + ms * 1_000),
                    });
                }
            }
            cfg
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn at_most_one_delivery_per_peer_and_message(cfg in scenario()) {
        let (rec, _) = run(&cfg);
        let mut seen = BTreeSet::new();
        for d in &rec.deliveries {
            prop_assert!(seen.insert((d.identity.clone(), d.receiver)), "{:?} twice\n{}", d, repro(&cfg));
            prop_assert_ne!(d.receiver, d.origin, "{}", repro(&cfg));
        }
    }

    #[test]
    fn crashed_peers_are_removed_by_the_seeds_told_and_live_ones_never(cfg in scenario()) {
        let (rec, _) = run(&cfg);
        let why = repro(&cfg);
        for (dead, removals) in &rec.removals {
            let state = &rec.peers[dead];
            prop_assert!(!state.up, "live peer {} removed\n{}", dead, why);
            for (seed, at) in removals {
                prop_assert!(state.down_at.is_some_and(|t| t < *at), "{} removed {} early\n{}", seed, dead, why);
            }
        }
        for d in &rec.detections {
            prop_assert!(!d.false_positive, "{:?}\n{}", d, why);
        }
        let up_at_end: BTreeMap<_, _> = rec.peers.iter().map(|(a, s)| (*a, s.up)).collect();
        for (addr, state) in rec.peers.iter().filter(|(_, s)| !s.up) {
            // Someone who held a link with it and outlived it must have found it.
            let watched = state.neighbours_at_down.iter().any(|n| up_at_end[n]);
            let reporters: BTreeSet<_> =
                rec.detections.iter().filter(|d| d.dead == *addr).map(|d| d.reporter).collect();
            if !watched {
                continue;
            }
            prop_assert!(!reporters.is_empty(), "{} was never reported\n{}", addr, why);
            let removed_by: BTreeSet<_> =
                rec.removals.get(addr).map(|r| r.iter().map(|(s, _)| *s).collect()).unwrap_or_default();
            // Reporters tell the seeds they registered with (DESIGN.md). Every seed of the
            // dead peer that one of its reporters registered with removes it; as both
            // registered with a majority of the seeds, there is always at least one.
            let told: BTreeSet<_> = reporters.iter().flat_map(|r| rec.peers[r].registered_with.iter().copied()).collect();
            let owed: BTreeSet<_> = state.registered_with.intersection(&told).copied().collect();
            prop_assert!(!owed.is_empty(), "majorities must intersect\n{}", why);
            prop_assert!(owed.is_subset(&removed_by), "{} kept by {:?}\n{}", addr, owed.difference(&removed_by).collect::<Vec<_>>(), why);
        }
    }
}

/// The case proptest found: with one surviving neighbour that shares only one seed with the
/// dead peer, the dead peer's other seed is never told. Kept as a record of the protocol's
/// limit (DESIGN.md: reports go to the reporter's seeds).
#[test]
fn a_lone_reporter_tells_only_its_own_seeds() {
    let mut cfg = SimConfig {
        seed: 2_049_706_087_348_089_433,
        seeds: 3,
        peers: 4,
        duration: Duration::from_secs(60),
        latency: Latency::Fixed(Duration::from_millis(1)),
        hash_iterations: 1,
        join_interval: Duration::from_millis(50),
        faults: vec![
            Fault::Crash {
                peer: 3,
                at: Time(1_200_000),
            },
            Fault::Crash {
                peer: 2,
                at: Time(15_330_000),
            },
        ],
        ..SimConfig::default()
    };
    cfg.peer.liveness_interval = Duration::from_secs(2);
    cfg.peer.gossip_interval = Duration::from_secs(1);
    cfg.peer.gossip_count = 5;
    let (rec, _) = run(&cfg);
    let dead = sim_core::sim::layout::peer_addr(2);
    let removed_by: BTreeSet<_> = rec.removals[&dead].iter().map(|(s, _)| *s).collect();
    let registered = &rec.peers[&dead].registered_with;
    assert!(
        !removed_by.is_empty() && removed_by.is_subset(registered),
        "{}",
        repro(&cfg)
    );
    assert!(
        removed_by.len() < registered.len(),
        "the gap closed: update README and this test"
    );
}
