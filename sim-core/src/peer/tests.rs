//! One `PeerNode` driven alone: the harness records every output and fires the node's
//! timers in virtual time, so time-based rules are checked exactly.

use std::collections::BTreeMap;

use rand::SeedableRng;

use super::*;
use crate::wire::{DeadNode, Gossip, ListedPeer, RefuseReason, Timestamp};

fn a(s: &str) -> NodeAddr {
    s.parse().unwrap()
}

const SEEDS: [&str; 3] = ["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"];

struct Harness {
    peer: PeerNode,
    now: Time,
    timers: BTreeMap<TimerId, Time>,
    next_conn: u64,
}

impl Harness {
    fn new(port: u16, cfg: PeerConfig) -> Self {
        let seeds = SEEDS.iter().map(|s| a(s)).collect();
        let addr = NodeAddr::new([127, 0, 0, 1].into(), port);
        let peer = PeerNode::new(
            addr,
            seeds,
            cfg,
            ChaCha8Rng::seed_from_u64(9),
            DigestMemo::new(1),
        );
        Harness {
            peer,
            now: Time::ZERO,
            timers: BTreeMap::new(),
            next_conn: 100,
        }
    }

    /// A peer that originates no gossip, so only the rule under test produces outputs.
    fn quiet(port: u16) -> Self {
        Harness::new(
            port,
            PeerConfig {
                gossip_count: 0,
                ..PeerConfig::default()
            },
        )
    }

    fn feed(&mut self, input: Input) -> Vec<Output> {
        self.peer.handle(self.now, input);
        let outs: Vec<Output> = std::iter::from_fn(|| self.peer.poll_output()).collect();
        for o in &outs {
            if let Output::SetTimer { at, timer } = o {
                self.timers.insert(*timer, *at);
            }
        }
        outs
    }

    /// Fires every timer due up to `end`, in deadline order; returns all outputs.
    fn run_until(&mut self, end: Time) -> Vec<Output> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let next = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= end)
                .min_by_key(|(_, at)| **at);
            let Some((&timer, &at)) = next else {
                self.now = end;
                return all;
            };
            self.timers.remove(&timer);
            self.now = at;
            all.extend(self.feed(Input::Timer(timer)));
        }
        panic!("more than 10 000 timer firings before {end:?}: a timer loop");
    }

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId::new(self.next_conn)
    }

    /// Connects and registers with every seed the peer dials, answering with `list`.
    fn bootstrap(&mut self, list: &[&str]) -> (Vec<(NodeAddr, ConnId)>, Vec<Output>) {
        let outs = self.feed(Input::Start);
        let mut seeds = Vec::new();
        let mut all = Vec::new();
        for addr in connects(&outs) {
            let conn = self.conn();
            seeds.push((addr, conn));
            all.extend(self.feed(Input::Connected {
                conn,
                remote: addr,
                outbound: true,
            }));
            all.extend(self.feed(Input::Received {
                conn,
                msg: Message::Registered,
            }));
            let peers = list.iter().map(|s| ListedPeer::plain(a(s))).collect();
            all.extend(self.feed(Input::Received {
                conn,
                msg: Message::PeerList { peers },
            }));
        }
        (seeds, all)
    }

    /// Makes `peer` a neighbour through an inbound hello; returns the connection.
    fn inbound_neighbour(&mut self, peer: &str) -> (ConnId, Vec<Output>) {
        let conn = self.conn();
        let remote = a("127.0.0.1:40000");
        self.feed(Input::Connected {
            conn,
            remote,
            outbound: false,
        });
        let outs = self.feed(Input::Received {
            conn,
            msg: Message::Hello { addr: a(peer) },
        });
        (conn, outs)
    }
}

fn connects(outs: &[Output]) -> Vec<NodeAddr> {
    outs.iter()
        .filter_map(|o| {
            if let Output::Connect { addr } = o {
                Some(*addr)
            } else {
                None
            }
        })
        .collect()
}

fn sent(outs: &[Output]) -> Vec<(ConnId, String)> {
    outs.iter()
        .filter_map(|o| {
            if let Output::Send { conn, msg } = o {
                Some((*conn, msg.to_string()))
            } else {
                None
            }
        })
        .collect()
}

fn events(outs: &[Output]) -> Vec<&Event> {
    outs.iter()
        .filter_map(|o| {
            if let Output::Event(e) = o {
                Some(e)
            } else {
                None
            }
        })
        .collect()
}

fn gossip(body: &str, origin: &str) -> Arc<Gossip> {
    Arc::new(Gossip::new(
        Timestamp::parse("1.5").unwrap(),
        a(origin),
        body.into(),
    ))
}

#[test]
fn peer_registers_with_a_majority_of_seeds_and_asks_for_their_lists() {
    let mut h = Harness::new(5000, PeerConfig::default());
    let outs = h.feed(Input::Start);
    let dialed = connects(&outs);
    assert_eq!(dialed.len(), 2, "3 seeds: floor(3/2)+1 = 2");
    let conn = h.conn();
    let outs = h.feed(Input::Connected {
        conn,
        remote: dialed[0],
        outbound: true,
    });
    assert_eq!(
        sent(&outs),
        vec![
            (conn, "register:127.0.0.1:5000".into()),
            (conn, "peer list".into())
        ]
    );
}

#[test]
fn bootstrap_dials_known_peers_up_to_capacity_and_never_itself() {
    // Port 5099: node id 99, capacity 1.
    let mut h = Harness::new(5099, PeerConfig::default());
    let (_, outs) = h.bootstrap(&["127.0.0.1:5099", "127.0.0.1:5001", "127.0.0.1:5002"]);
    let dialed: Vec<NodeAddr> = connects(&outs)
        .into_iter()
        .filter(|d| d.port < 8000)
        .collect();
    assert_eq!(dialed.len(), 1, "capacity 1: {dialed:?}");
    assert_ne!(dialed[0], a("127.0.0.1:5099"));
    assert_eq!(h.peer.known(), 2);
}

#[test]
fn a_refused_dial_frees_its_slot_for_the_next_candidate() {
    let mut h = Harness::new(5099, PeerConfig::default());
    let (_, outs) = h.bootstrap(&["127.0.0.1:5001", "127.0.0.1:5002"]);
    let first = connects(&outs).into_iter().find(|d| d.port < 8000).unwrap();
    let conn = h.conn();
    let outs = h.feed(Input::Connected {
        conn,
        remote: first,
        outbound: true,
    });
    assert_eq!(
        sent(&outs),
        vec![(conn, "Connection with Peer:127.0.0.1:5099".into())]
    );
    let outs = h.feed(Input::Received {
        conn,
        msg: Message::Refuse {
            reason: RefuseReason::Full,
        },
    });
    let next = connects(&outs);
    assert_eq!(next.len(), 1);
    assert_ne!(next[0], first);
}

#[test]
fn a_full_peer_refuses_hellos_and_so_does_a_peer_asked_by_itself() {
    let mut h = Harness::new(5099, PeerConfig::default());
    h.bootstrap(&[]);
    let (c1, outs) = h.inbound_neighbour("127.0.0.1:5001");
    assert_eq!(
        sent(&outs),
        vec![(c1, "Connection with Peer:127.0.0.1:5099".into())]
    );
    let (c2, outs) = h.inbound_neighbour("127.0.0.1:5002");
    assert_eq!(sent(&outs), vec![(c2, "Connection refused:full".into())]);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Close { conn } if *conn == c2))
    );

    let mut h = Harness::new(5000, PeerConfig::default());
    h.bootstrap(&[]);
    let (c, outs) = h.inbound_neighbour("127.0.0.1:5000");
    assert_eq!(sent(&outs), vec![(c, "Connection refused:self".into())]);
}

#[test]
fn a_second_link_to_the_same_neighbour_is_refused_as_duplicate() {
    let mut h = Harness::new(5000, PeerConfig::default());
    h.bootstrap(&[]);
    h.inbound_neighbour("127.0.0.1:5001");
    let (c, outs) = h.inbound_neighbour("127.0.0.1:5001");
    assert_eq!(
        sent(&outs),
        vec![(c, "Connection refused:duplicate".into())]
    );
    assert_eq!(h.peer.neighbours().count(), 1);
}

#[test]
fn gossip_is_delivered_once_and_forwarded_to_every_neighbour_but_the_sender() {
    let mut h = Harness::new(5000, PeerConfig::default());
    h.bootstrap(&[]);
    let (c1, _) = h.inbound_neighbour("127.0.0.1:5001");
    let (c2, _) = h.inbound_neighbour("127.0.0.1:5002");
    let (c3, _) = h.inbound_neighbour("127.0.0.1:5003");
    let g = gossip("hello: world", "127.0.0.1:5009");
    let outs = h.feed(Input::Received {
        conn: c2,
        msg: Message::Gossip(Arc::clone(&g)),
    });
    let frame = "gmessage:1.5:127.0.0.1:5009:hello: world".to_string();
    assert_eq!(sent(&outs), vec![(c1, frame.clone()), (c3, frame)]);
    assert!(
        matches!(events(&outs)[..], [Event::GossipDelivered { first_from, forwarded_to: 2, .. }]
        if *first_from == a("127.0.0.1:5002"))
    );

    let outs = h.feed(Input::Received {
        conn: c1,
        msg: Message::Gossip(gossip("hello: world", "127.0.0.1:5009")),
    });
    assert!(sent(&outs).is_empty(), "a duplicate is not forwarded");
    assert!(matches!(
        events(&outs)[..],
        [Event::DuplicateDropped { .. }]
    ));
}

#[test]
fn peer_originates_ten_messages_at_five_second_intervals() {
    let mut h = Harness::new(5000, PeerConfig::default());
    h.bootstrap(&[]);
    let (c1, _) = h.inbound_neighbour("127.0.0.1:5001");
    let outs = h.run_until(Time(200_000_000));
    let times: Vec<Time> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                conn,
                msg: Message::Gossip(g),
            } if *conn == c1 => Some(g.ts.clone()),
            _ => None,
        })
        .map(|ts| Time((ts.as_str().parse::<f64>().unwrap() * 1e6).round() as u64))
        .collect();
    let want: Vec<Time> = (1..=10).map(|k| Time(k * 5_000_000)).collect();
    assert_eq!(times, want);
}

#[test]
fn dead_peer_is_reported_after_three_missed_replies() {
    let mut h = Harness::quiet(5000);
    let (seeds, _) = h.bootstrap(&[]);
    let (c1, _) = h.inbound_neighbour("127.0.0.1:5001");
    // Rounds at 13, 26, 39 s: requests go out and are never answered; the miss at 52 s is
    // the third in a row.
    let outs = h.run_until(Time(51_000_000));
    assert!(
        !events(&outs)
            .iter()
            .any(|e| matches!(e, Event::PeerDeclaredDead { .. }))
    );
    let requests = sent(&outs)
        .iter()
        .filter(|(c, m)| *c == c1 && m.starts_with("Liveness Request:"))
        .count();
    assert_eq!(requests, 3);
    let outs = h.run_until(Time(52_000_000));
    let reports: Vec<_> = sent(&outs)
        .into_iter()
        .filter(|(_, m)| m.starts_with("Dead Node:"))
        .collect();
    let want: Vec<_> = seeds
        .iter()
        .map(|(_, c)| (*c, "Dead Node:127.0.0.1:5001:52:127.0.0.1:5000".to_string()))
        .collect();
    assert_eq!(reports, want, "one report to every seed registered with");
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Close { conn } if *conn == c1))
    );
    assert_eq!(h.peer.neighbours().count(), 0);
}

#[test]
fn a_reply_clears_the_miss_count_and_a_closed_connection_counts_as_unanswered() {
    let mut h = Harness::quiet(5000);
    h.bootstrap(&[]);
    let (c1, _) = h.inbound_neighbour("127.0.0.1:5001");
    let reply = || Message::LivenessReply {
        ts: Timestamp::parse("13").unwrap(),
        to: a("127.0.0.1:5000"),
        from: a("127.0.0.1:5001"),
    };
    for round in 1..=5u64 {
        h.run_until(Time(round * 13_000_000));
        h.feed(Input::Received {
            conn: c1,
            msg: reply(),
        });
    }
    let outs = h.run_until(Time(66_000_000));
    assert!(
        !events(&outs)
            .iter()
            .any(|e| matches!(e, Event::LivenessMissed { .. }))
    );
    h.feed(Input::Closed { conn: c1 });
    let outs = h.run_until(Time(105_000_000));
    let misses: Vec<u32> = events(&outs)
        .iter()
        .filter_map(|e| {
            if let Event::LivenessMissed { misses, .. } = e {
                Some(*misses)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(misses, vec![1, 2, 3]);
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::PeerDeclaredDead { .. }))
    );
}

#[test]
fn a_timer_that_is_not_due_is_ignored() {
    let mut h = Harness::new(5000, PeerConfig::default());
    h.bootstrap(&[]);
    let outs = h.feed(Input::Timer(TimerId::Gossip));
    assert!(outs.is_empty(), "gossip timer fired early: {outs:?}");
    h.run_until(Time(5_000_000));
    let outs = h.feed(Input::Timer(TimerId::Gossip));
    assert!(outs.is_empty(), "gossip timer fired twice: {outs:?}");
}

#[test]
fn an_unreachable_seed_is_retried_with_growing_back_off() {
    let mut h = Harness::new(5000, PeerConfig::default());
    let outs = h.feed(Input::Start);
    let seed = connects(&outs)[0];
    let mut waits = Vec::new();
    for _ in 0..3 {
        let outs = h.feed(Input::ConnectFailed { addr: seed });
        for e in events(&outs) {
            if let Event::SeedUnreachable {
                retry_in_s: Some(s),
                ..
            } = e
            {
                waits.push(*s);
            }
        }
        let before = h.now;
        let outs = h.run_until(Time(before.0 + 10_000_000));
        assert_eq!(connects(&outs), vec![seed]);
    }
    assert_eq!(waits, vec![1.0, 2.0, 4.0]);
}

#[test]
fn a_seed_notice_forgets_the_dead_peer() {
    let mut h = Harness::new(5000, PeerConfig::default());
    let (seeds, _) = h.bootstrap(&["127.0.0.1:5001", "127.0.0.1:5002"]);
    let notice = DeadNode {
        dead: a("127.0.0.1:5002"),
        ts: Timestamp::parse("9").unwrap(),
        reporter: a("127.0.0.1:5001"),
    };
    h.feed(Input::Received {
        conn: seeds[0].1,
        msg: Message::DeadNode(notice),
    });
    assert_eq!(h.peer.known(), 1);
}

#[test]
fn an_isolated_peer_asks_its_seeds_again_and_redials_each_liveness_round() {
    let mut h = Harness::quiet(5000);
    let (seeds, outs) = h.bootstrap(&["127.0.0.1:5001"]);
    let target = a("127.0.0.1:5001");
    assert!(connects(&outs).contains(&target));
    let conn = h.conn();
    h.feed(Input::Connected {
        conn,
        remote: target,
        outbound: true,
    });
    h.feed(Input::Received {
        conn,
        msg: Message::Refuse {
            reason: RefuseReason::Full,
        },
    });
    let outs = h.run_until(Time(13_000_000));
    let asked: Vec<ConnId> = sent(&outs)
        .into_iter()
        .filter(|(_, m)| m == "peer list")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(asked, seeds.iter().map(|(_, c)| *c).collect::<Vec<_>>());
    assert_eq!(connects(&outs), vec![target]);
}

#[test]
fn a_connected_peer_does_not_ask_again() {
    let mut h = Harness::quiet(5000);
    h.bootstrap(&[]);
    h.inbound_neighbour("127.0.0.1:5001");
    let outs = h.run_until(Time(13_000_000));
    assert!(!sent(&outs).iter().any(|(_, m)| m == "peer list"));
}

#[test]
fn a_hello_takes_the_slot_of_a_dial_that_has_not_connected_yet() {
    // Capacity 1: the dial to 5001 holds the slot but has said nothing yet.
    let mut h = Harness::new(5099, PeerConfig::default());
    let (_, outs) = h.bootstrap(&["127.0.0.1:5001"]);
    assert!(connects(&outs).contains(&a("127.0.0.1:5001")));
    let (c, outs) = h.inbound_neighbour("127.0.0.1:5002");
    assert_eq!(
        sent(&outs),
        vec![(c, "Connection with Peer:127.0.0.1:5099".into())]
    );
    // The cancelled dial connects later and is closed without a hello.
    let late = h.conn();
    let outs = h.feed(Input::Connected {
        conn: late,
        remote: a("127.0.0.1:5001"),
        outbound: true,
    });
    assert!(sent(&outs).is_empty());
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Close { conn } if *conn == late))
    );
    assert_eq!(
        h.peer.neighbours().collect::<Vec<_>>(),
        vec![a("127.0.0.1:5002")]
    );
}

#[test]
fn a_dial_that_said_hello_keeps_its_slot() {
    let mut h = Harness::new(5099, PeerConfig::default());
    let (_, _) = h.bootstrap(&["127.0.0.1:5001"]);
    let dial = h.conn();
    h.feed(Input::Connected {
        conn: dial,
        remote: a("127.0.0.1:5001"),
        outbound: true,
    });
    let (c, outs) = h.inbound_neighbour("127.0.0.1:5002");
    assert_eq!(sent(&outs), vec![(c, "Connection refused:full".into())]);
}

/// What a million simulated peers cost depends on these; a field added carelessly shows here.
#[test]
fn a_peers_records_stay_compact() {
    use std::mem::size_of;
    assert_eq!(size_of::<(ConnId, Conn)>(), 16, "a connection entry");
    assert_eq!(
        size_of::<(NodeAddr, neighbours::Neighbour)>(),
        16,
        "a neighbour entry"
    );
    assert_eq!(size_of::<bootstrap::SeedLink>(), 32, "a seed link");
    assert_eq!(size_of::<crate::rng::CompactRng>(), 24, "the RNG");
    assert!(size_of::<PeerNode>() <= 376, "{}", size_of::<PeerNode>());
}

/// A list that names a peer twice (no seed writes one, a hostile one may) is taken as the
/// entries one by one: the repeat is known by then, so it is neither added nor dialed twice.
#[test]
fn a_peer_list_with_repeats_adds_each_peer_once() {
    let mut h = Harness::new(5000, PeerConfig::default());
    let list = [
        "127.0.0.1:5001",
        "127.0.0.1:5002",
        "127.0.0.1:5001",
        "127.0.0.1:5003",
        "127.0.0.1:5002",
    ];
    let (_, outs) = h.bootstrap(&list);
    assert_eq!(h.peer.known(), 3);
    let dials: Vec<NodeAddr> = connects(&outs)
        .into_iter()
        .filter(|d| !SEEDS.contains(&d.to_string().as_str()))
        .collect();
    let distinct: std::collections::BTreeSet<_> = dials.iter().collect();
    assert_eq!(
        dials.len(),
        distinct.len(),
        "each peer dialed once: {dials:?}"
    );
}
