//! Properties over generated inputs: the codec round-trips and never panics, and over random
//! topologies, latencies and crash schedules every peer delivers a message at most once, a
//! crashed peer is removed by the seeds its reporters tell (at least one of its own, always;
//! every one of its own once its reporters between them registered with all of those), and a
//! live one never is. And each machine fuzzed alone: any sequence of inputs a driver may give
//! leaves it without a panic, speaking only on connections it holds, with timers in bounds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gossipnet_tests::{repro, run};
use proptest::prelude::*;
use sim_core::addr::NodeAddr;
use sim_core::digest::DigestMemo;
use sim_core::node::{ConnId, Input, Node, Output, TimerId};
use sim_core::peer::{PeerConfig, PeerNode};
use sim_core::seed::{Removal, SeedConfig, SeedNode};
use sim_core::sim::{Fault, Latency, SimConfig, peer_rng, seed_rng};
use sim_core::time::{Duration, Time};
use sim_core::wire::{
    DeadNode, Gossip, ListedPeer, Message, RefuseReason, RegisterRefusal, Timestamp, decode,
};

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
        prop_oneof![
            Just(RegisterRefusal::NotYourAddress),
            Just(RegisterRefusal::OtherConnection),
            Just(RegisterRefusal::OnePerConnection),
            Just(RegisterRefusal::Unreachable),
            Just(RegisterRefusal::Busy)
        ]
        .prop_map(|reason| Message::RegistrationRefused { reason }),
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
    fn crashed_peers_are_removed_by_all_their_seeds_and_live_ones_never(cfg in scenario()) {
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
            // Reporters tell the seeds they registered with (DESIGN.md); as both registered
            // with a majority of the seeds, one of the dead peer's seeds is told, checks it,
            // removes it and tells its fellows, which check it too: every seed of the dead
            // peer removes it (`verify`, the default).
            let told: BTreeSet<_> = reporters.iter().flat_map(|r| rec.peers[r].registered_with.iter().copied()).collect();
            let owed: BTreeSet<_> = state.registered_with.intersection(&told).copied().collect();
            prop_assert!(!owed.is_empty(), "majorities must intersect\n{}", why);
            prop_assert_eq!(&state.registered_with, &removed_by, "{} kept by some\n{}", addr, why);
        }
    }
}

/// The case proptest found: with one surviving neighbour that shares only one seed with the
/// dead peer, the dead peer's other seed is never told when seeds trust reports (the
/// reference's rule, DESIGN.md: reports go to the reporter's seeds). With `verify` (the
/// default) the seed that removed it tells its fellow seeds, each checks the peer itself, and
/// every seed it registered with removes it.
#[test]
fn a_lone_reporter_tells_only_its_own_seeds_unless_seeds_tell_each_other() {
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
    let dead = sim_core::sim::layout::peer_addr(2);
    for removal in [Removal::Trust, Removal::Verify] {
        cfg.seed_node.removal = removal;
        let (rec, _) = run(&cfg);
        let removed_by: BTreeSet<_> = rec.removals[&dead].iter().map(|(s, _)| *s).collect();
        let registered = &rec.peers[&dead].registered_with;
        assert!(
            !removed_by.is_empty() && removed_by.is_subset(registered),
            "{removal}: {}",
            repro(&cfg)
        );
        match removal {
            Removal::Trust => assert!(
                removed_by.len() < registered.len(),
                "the reference's gap closed: update README and this test"
            ),
            Removal::Verify => assert_eq!(&removed_by, registered, "{}", repro(&cfg)),
        }
    }
}

// Machines fuzzed alone: random sequences of inputs, valid, malformed and out of protocol
// order (a reply before any request, gossip before a hello, a list nobody asked for), drive
// one `SeedNode` or `PeerNode` the way a driver may: messages only on connections it was
// given, dial answers only for dials it asked for, timers when due. Whatever comes, it must
// not panic, must speak only on connections it holds, and must arm timers within bounds.

/// The addresses a fuzzed machine meets: its own, the seeds', a few peers'.
const FUZZ_ME: &str = "127.0.0.1:7000";
const FUZZ_SEEDS: [&str; 3] = ["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"];

fn pool_addr() -> impl Strategy<Value = NodeAddr> {
    (0usize..8).prop_map(|i| match i {
        0 => FUZZ_ME.parse().unwrap(),
        1..=3 => FUZZ_SEEDS[i - 1].parse().unwrap(),
        _ => NodeAddr::new([127, 0, 0, 1].into(), 7000 + i as u16),
    })
}

/// Messages between the machines of the pool, and any message at all.
fn fuzz_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => message(),
        2 => pool_addr().prop_map(|addr| Message::Hello { addr }),
        2 => pool_addr().prop_map(|addr| Message::Register { addr }),
        1 => Just(Message::Registered),
        1 => Just(Message::PeerListRequest),
        2 => proptest::collection::vec(pool_addr().prop_map(ListedPeer::plain), 0..8)
            .prop_map(|peers| Message::PeerList { peers }),
        2 => (ts(), pool_addr()).prop_map(|(ts, addr)| Message::LivenessRequest { ts, addr }),
        2 => (ts(), pool_addr(), pool_addr())
            .prop_map(|(ts, to, from)| Message::LivenessReply { ts, to, from }),
        2 => (ts(), pool_addr(), "[a-c]{0,3}")
            .prop_map(|(ts, origin, body)| Message::Gossip(Arc::new(Gossip::new(ts, origin, body)))),
        1 => (pool_addr(), ts(), pool_addr())
            .prop_map(|(dead, ts, reporter)| Message::DeadNode(DeadNode { dead, ts, reporter })),
    ]
}

/// One thing a driver may do; indices pick among what is open or pending at the time.
#[derive(Clone, Debug)]
enum Step {
    Inbound(NodeAddr),
    DialAnswer {
        pick: usize,
        ok: bool,
    },
    Receive {
        pick: usize,
        msg: Message,
    },
    Garbage {
        pick: usize,
        bytes: Vec<u8>,
    },
    Close {
        pick: usize,
    },
    /// The earliest armed timer fires (time moves to it).
    NextTimer,
    /// A timer fires whether or not it is due (a late or spurious wake-up).
    AnyTimer(usize),
    Advance(u64),
    Originate(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => pool_addr().prop_map(Step::Inbound),
        3 => (any::<usize>(), proptest::bool::weighted(0.8))
            .prop_map(|(pick, ok)| Step::DialAnswer { pick, ok }),
        8 => (any::<usize>(), fuzz_message()).prop_map(|(pick, msg)| Step::Receive { pick, msg }),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(pick, bytes)| Step::Garbage { pick, bytes }),
        1 => any::<usize>().prop_map(|pick| Step::Close { pick }),
        3 => Just(Step::NextTimer),
        1 => (0usize..5).prop_map(Step::AnyTimer),
        1 => (0u64..30_000_000).prop_map(Step::Advance),
        1 => "[a-z ]{0,10}".prop_map(Step::Originate),
    ]
}

/// The driver's side of the contract, and the checks on what the machine says.
struct Fuzz<N: Node> {
    node: N,
    now: Time,
    next_conn: u64,
    open: Vec<ConnId>,
    dials: Vec<NodeAddr>,
    /// Every dial the machine ever asked for.
    dialed: Vec<NodeAddr>,
    /// Addresses named in `register` lines fed to it.
    registered: Vec<NodeAddr>,
    timers: BTreeMap<TimerId, Time>,
}

/// The longest a machine may arm a timer ahead: the seen-set's 10 minutes is the longest
/// interval, the seed back-off the longest wait; an hour bounds both.
const TIMER_AHEAD_MAX: Duration = Duration::from_secs(3600);

impl<N: Node> Fuzz<N> {
    fn new(node: N) -> Self {
        Fuzz {
            node,
            now: Time::ZERO,
            next_conn: 1,
            open: Vec::new(),
            dials: Vec::new(),
            dialed: Vec::new(),
            registered: Vec::new(),
            timers: BTreeMap::new(),
        }
    }

    fn feed(&mut self, input: Input) -> Result<(), TestCaseError> {
        self.node.handle(self.now, input);
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Connect { addr } => {
                    self.dials.push(addr);
                    self.dialed.push(addr);
                }
                Output::Send { conn, .. } => prop_assert!(
                    self.open.contains(&conn),
                    "send on {conn}, which the machine does not hold"
                ),
                Output::Close { conn } => {
                    prop_assert!(self.open.contains(&conn), "close of {conn}, not held");
                    self.open.retain(|c| *c != conn);
                }
                Output::SetTimer { at, timer } => {
                    prop_assert!(
                        at >= self.now && at <= self.now + TIMER_AHEAD_MAX,
                        "{timer:?} armed for {at:?} at {:?}",
                        self.now
                    );
                    self.timers.insert(timer, at);
                }
                Output::Event(_) => {}
            }
        }
        Ok(())
    }

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId::new(self.next_conn)
    }

    fn step(&mut self, s: Step) -> Result<(), TestCaseError> {
        match s {
            Step::Inbound(remote) => {
                let conn = self.conn();
                self.open.push(conn);
                self.feed(Input::Connected {
                    conn,
                    remote,
                    outbound: false,
                })
            }
            Step::DialAnswer { pick, ok } if !self.dials.is_empty() => {
                let addr = self.dials.remove(pick % self.dials.len());
                if ok {
                    let conn = self.conn();
                    self.open.push(conn);
                    self.feed(Input::Connected {
                        conn,
                        remote: addr,
                        outbound: true,
                    })
                } else {
                    self.feed(Input::ConnectFailed { addr })
                }
            }
            Step::Receive { pick, msg } if !self.open.is_empty() => {
                let conn = self.open[pick % self.open.len()];
                if let Message::Register { addr } = &msg {
                    self.registered.push(*addr);
                }
                self.feed(Input::Received { conn, msg })
            }
            Step::Garbage { pick, bytes } if !self.open.is_empty() => {
                let conn = self.open[pick % self.open.len()];
                match decode(&bytes) {
                    Ok(msg) => self.feed(Input::Received { conn, msg }),
                    Err(error) => self.feed(Input::Malformed { conn, error }),
                }
            }
            Step::Close { pick } if !self.open.is_empty() => {
                let conn = self.open.remove(pick % self.open.len());
                self.feed(Input::Closed { conn })
            }
            Step::NextTimer => {
                let Some((&timer, &at)) = self.timers.iter().min_by_key(|(_, at)| **at) else {
                    return Ok(());
                };
                self.timers.remove(&timer);
                self.now = self.now.max(at);
                self.feed(Input::Timer(timer))
            }
            Step::AnyTimer(i) => self.feed(Input::Timer(TimerId::ALL[i])),
            Step::Advance(us) => {
                self.now = self.now + Duration(us);
                Ok(())
            }
            Step::Originate(body) => self.feed(Input::Originate { body }),
            // A pick among nothing: the driver has nothing to do.
            _ => Ok(()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_peer_survives_any_input_sequence(steps in proptest::collection::vec(step(), 1..120)) {
        let cfg = PeerConfig { gossip_count: 3, ..PeerConfig::default() };
        let seeds = FUZZ_SEEDS.iter().map(|s| s.parse().unwrap()).collect();
        let peer = PeerNode::new(FUZZ_ME.parse().unwrap(), seeds, cfg, peer_rng(1, 0), DigestMemo::new(1));
        let mut f = Fuzz::new(peer);
        f.feed(Input::Start)?;
        for s in steps {
            f.step(s)?;
        }
    }

    #[test]
    fn a_seed_survives_any_input_sequence(steps in proptest::collection::vec(step(), 1..120)) {
        let seed = SeedNode::new(FUZZ_SEEDS[0].parse().unwrap(), SeedConfig::default(), seed_rng(1, 0));
        let mut f = Fuzz::new(seed);
        f.feed(Input::Start)?;
        for s in steps {
            f.step(s)?;
        }
        // A seed dials only peers that registered with it (to check a report; it has no
        // fellow seeds here).
        for d in &f.dialed {
            prop_assert!(f.registered.contains(d), "a seed dialed {}, which never registered", d);
        }
    }
}
