//! `SeedNode`: the registry. Peers register, ask for the peer list, and report dead peers;
//! the seed removes a reported peer, logs who reported it and passes the notice on.

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::addr::NodeAddr;
use crate::limits::{PEER_LIST_ENTRIES_MAX, SEED_CONNECTIONS_MAX};
use crate::node::{ConnId, Event, Input, Node, Outbox, Output, TimerId};
use crate::time::{Duration, Time};
use crate::vecmap::VecMap;
use crate::wire::{DeadNode, ListedPeer, Message, WireError};

/// A seed's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedConfig {
    /// Most entries in one peer list reply; a random sample is sent when more are registered.
    pub peer_list_max: usize,
    /// Malformed frames tolerated on one connection before it is closed.
    pub bad_frames_max: u32,
    /// How long a new connection may stay without a valid message before it is closed (10 s).
    pub handshake_timeout: Duration,
    /// Most connections open at once; more are refused with `Connection refused:busy`.
    pub connections_max: usize,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            peer_list_max: PEER_LIST_ENTRIES_MAX,
            bad_frames_max: 3,
            handshake_timeout: Duration::from_secs(10),
            connections_max: SEED_CONNECTIONS_MAX,
        }
    }
}

/// One connection (32 bytes: a seed of a million-peer simulation holds ~670 000).
#[derive(Debug)]
struct SeedConn {
    /// Until a valid message arrives: when the connection is closed for saying nothing;
    /// [`Time::NEVER`] after.
    deadline: Time,
    remote: NodeAddr,
    /// The listening address registered over this connection.
    peer: Option<NodeAddr>,
    bad_frames: u32,
}

/// The seed machine.
pub struct SeedNode {
    addr: NodeAddr,
    cfg: SeedConfig,
    rng: ChaCha8Rng,
    out: Outbox,
    now: Time,
    /// Registered peers in registration order, for O(k) random samples, with the degree
    /// each last reported.
    peers: Vec<ListedPeer>,
    /// Position of each registered peer in `peers`.
    index: VecMap<NodeAddr, usize>,
    /// Sorted vectors, not B-trees: a third of the memory, and in a simulation (connection
    /// ids and registered addresses both grow) every insert is an append; elsewhere an
    /// insert or removal moves the tail, microseconds at tens of thousands of entries.
    conns: VecMap<ConnId, SeedConn>,
}

impl SeedNode {
    /// A seed listening at `addr`.
    pub fn new(addr: NodeAddr, cfg: SeedConfig, rng: ChaCha8Rng) -> Self {
        SeedNode {
            addr,
            cfg: SeedConfig {
                peer_list_max: cfg.peer_list_max.min(PEER_LIST_ENTRIES_MAX),
                ..cfg
            },
            rng,
            out: Outbox::default(),
            now: Time::ZERO,
            peers: Vec::new(),
            index: VecMap::new(),
            conns: VecMap::new(),
        }
    }

    /// Where the seed listens.
    pub fn addr(&self) -> NodeAddr {
        self.addr
    }

    /// The registered peers, in registration order, with their reported degrees.
    pub fn registered(&self) -> &[ListedPeer] {
        &self.peers
    }

    fn connected(&mut self, conn: ConnId, remote: NodeAddr) {
        if self.conns.len() >= self.cfg.connections_max {
            self.out.refuse_busy(conn, remote, self.cfg.connections_max);
            return;
        }
        let deadline = self.now + self.cfg.handshake_timeout;
        self.conns.insert(
            conn,
            SeedConn {
                remote,
                peer: None,
                bad_frames: 0,
                deadline,
            },
        );
        self.out.arm_no_later(TimerId::Handshake, deadline);
    }

    /// Close connections that said nothing valid in time; re-arm for the next deadline.
    fn handshake_deadlines(&mut self) {
        let now = self.now;
        let expired: Vec<(ConnId, NodeAddr)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, c)| (*id, c.remote))
            .collect();
        for (conn, from) in expired {
            self.conns.remove(&conn);
            self.out.push(Output::Close { conn });
            self.out.event(Event::HandshakeTimedOut { from });
        }
        let pending = self.conns.values().map(|c| c.deadline);
        if let Some(next) = pending.filter(|d| *d != Time::NEVER).min() {
            self.out.arm(TimerId::Handshake, next);
        }
    }

    fn received(&mut self, conn: ConnId, msg: Message) {
        let Some(c) = self.conns.get_mut(&conn) else {
            debug_assert!(false, "driver fed a message on {conn}, which is not open");
            return;
        };
        c.deadline = Time::NEVER;
        let from = c.peer.unwrap_or(c.remote);
        match msg {
            Message::Register { addr } => self.register(conn, addr),
            Message::PeerListRequest => self.serve_list(conn),
            Message::DeadNode(notice) => self.dead_node(conn, notice),
            Message::Degree { addr, degree } => self.degree(conn, from, addr, degree),
            other @ (Message::Registered
            | Message::PeerList { .. }
            | Message::Hello { .. }
            | Message::Refuse { .. }
            | Message::LivenessRequest { .. }
            | Message::LivenessReply { .. }
            | Message::Gossip(_)) => {
                self.out.event(Event::UnexpectedMessage {
                    from,
                    kind: other.kind(),
                });
            }
        }
    }

    fn register(&mut self, conn: ConnId, addr: NodeAddr) {
        let refreshed = self.index.contains_key(&addr);
        if !refreshed {
            self.index.insert(addr, self.peers.len());
            self.peers.push(ListedPeer::plain(addr));
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(addr);
        }
        self.out.send(conn, Message::Registered);
        self.out.event(Event::PeerRegistered {
            peer: addr,
            refreshed,
        });
    }

    fn serve_list(&mut self, conn: ConnId) {
        let n = self.peers.len();
        let peers = if n <= self.cfg.peer_list_max {
            self.peers.clone()
        } else {
            let mut picked = sample(&mut self.rng, n, self.cfg.peer_list_max).into_vec();
            picked.sort_unstable();
            picked.into_iter().map(|i| self.peers[i]).collect()
        };
        self.out.event(Event::PeerListServed {
            entries: peers.len(),
            registered: n,
        });
        self.out.send(conn, Message::PeerList { peers });
    }

    /// A dead-node report: acted on only when it comes over the connection its reporter
    /// registered on, so a client that registered nobody, or someone else, cannot remove
    /// anyone (a raw client could otherwise empty the registry with one line an entry).
    fn dead_node(&mut self, conn: ConnId, notice: DeadNode) {
        let DeadNode { dead, reporter, .. } = notice;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.peer != Some(reporter) {
            let from = c.peer.unwrap_or(c.remote);
            self.out.event(Event::UnexpectedMessage {
                from,
                kind: "dead node (its reporter did not register on this connection)",
            });
            return;
        }
        let Some(pos) = self.index.remove(&dead) else {
            self.out
                .event(Event::DeadNodeAlreadyRemoved { dead, reporter });
            return;
        };
        self.peers.swap_remove(pos);
        if let Some(moved) = self.peers.get(pos) {
            self.index.insert(moved.addr, pos);
        }
        let targets: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| **id != conn && c.peer.is_some_and(|p| p != dead))
            .map(|(id, _)| *id)
            .collect();
        for &t in &targets {
            self.out.send(t, Message::DeadNode(notice.clone()));
        }
        let forwarded_to = targets.len();
        self.out.event(Event::PeerRemovedBySeed {
            dead,
            reporter,
            forwarded_to,
        });
    }

    /// A registered peer's degree report: kept for the peer lists. Only the connection a peer
    /// registered over may report its degree; a report about another peer, or about a peer
    /// no longer registered (removed as dead meanwhile), is ignored.
    fn degree(&mut self, conn: ConnId, from: NodeAddr, peer: NodeAddr, degree: u32) {
        let own = self.conns.get(&conn).and_then(|c| c.peer) == Some(peer);
        match self.index.get(&peer) {
            Some(&i) if own => {
                self.peers[i].degree = Some(degree);
                self.out.event(Event::DegreeRecorded { peer, degree });
            }
            _ => self.out.event(Event::UnexpectedMessage {
                from,
                kind: "degree (not of the peer registered on this connection)",
            }),
        }
    }

    fn malformed(&mut self, conn: ConnId, error: WireError) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.bad_frames += 1;
        let from = c.peer.unwrap_or(c.remote);
        let closed = c.bad_frames >= self.cfg.bad_frames_max;
        if closed {
            self.conns.remove(&conn);
            self.out.push(Output::Close { conn });
        }
        self.out.event(Event::MalformedFrame {
            from,
            error: Box::new(error),
            closed,
        });
    }
}

impl Node for SeedNode {
    fn handle(&mut self, now: Time, input: Input) {
        debug_assert!(now >= self.now, "time went backwards");
        self.now = now;
        match input {
            Input::Start => self.out.event(Event::SeedStarted),
            Input::Connected { conn, remote, .. } => self.connected(conn, remote),
            Input::Timer(timer) => {
                if self.out.take_due(timer, now) {
                    match timer {
                        TimerId::Handshake => self.handshake_deadlines(),
                        // A seed arms no other timer.
                        TimerId::Gossip
                        | TimerId::Liveness
                        | TimerId::SeenSweep
                        | TimerId::SeedRetry => {}
                    }
                }
            }
            Input::Received { conn, msg } => self.received(conn, msg),
            Input::Malformed { conn, error } => self.malformed(conn, error),
            Input::Closed { conn } => {
                self.conns.remove(&conn);
            }
            // A seed dials nobody and originates nothing.
            Input::ConnectFailed { .. } | Input::Originate { .. } => {}
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Timestamp;
    use rand::SeedableRng;

    fn a(s: &str) -> NodeAddr {
        s.parse().unwrap()
    }

    fn seed(cfg: SeedConfig) -> SeedNode {
        let mut s = SeedNode::new(a("127.0.0.1:8080"), cfg, ChaCha8Rng::seed_from_u64(1));
        s.handle(Time::ZERO, Input::Start);
        s
    }

    fn drain(s: &mut SeedNode) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn sends(outs: &[Output]) -> Vec<(ConnId, String)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Send { conn, msg } => Some((*conn, msg.to_string())),
                _ => None,
            })
            .collect()
    }

    fn connect_and_register(s: &mut SeedNode, conn: u64, port: u16) {
        let remote = NodeAddr::new([127, 0, 0, 1].into(), 40000 + port);
        s.handle(
            Time::ZERO,
            Input::Connected {
                conn: ConnId::new(conn),
                remote,
                outbound: false,
            },
        );
        let addr = NodeAddr::new([127, 0, 0, 1].into(), port);
        s.handle(
            Time::ZERO,
            Input::Received {
                conn: ConnId::new(conn),
                msg: Message::Register { addr },
            },
        );
    }

    #[test]
    fn registration_is_confirmed_and_listed() {
        let mut s = seed(SeedConfig::default());
        drain(&mut s);
        connect_and_register(&mut s, 1, 5000);
        connect_and_register(&mut s, 2, 5001);
        s.handle(
            Time::ZERO,
            Input::Received {
                conn: ConnId::new(2),
                msg: Message::PeerListRequest,
            },
        );
        let got = sends(&drain(&mut s));
        assert_eq!(
            got,
            vec![
                (ConnId::new(1), "registered successfully".into()),
                (ConnId::new(2), "registered successfully".into()),
                (
                    ConnId::new(2),
                    "peer list:127.0.0.1#5000:127.0.0.1#5001".into()
                ),
            ]
        );
    }

    #[test]
    fn dead_node_is_removed_logged_and_forwarded_to_other_peers() {
        let mut s = seed(SeedConfig::default());
        for (c, p) in [(1, 5000), (2, 5001), (3, 5002)] {
            connect_and_register(&mut s, c, p);
        }
        drain(&mut s);
        let notice = DeadNode {
            dead: a("127.0.0.1:5002"),
            ts: Timestamp::parse("10").unwrap(),
            reporter: a("127.0.0.1:5000"),
        };
        let report = Message::DeadNode(notice.clone());
        s.handle(
            Time::ZERO,
            Input::Received {
                conn: ConnId::new(1),
                msg: report.clone(),
            },
        );
        let outs = drain(&mut s);
        assert_eq!(sends(&outs), vec![(ConnId::new(2), report.to_string())]);
        assert!(outs.iter().any(|o| matches!(o, Output::Event(Event::PeerRemovedBySeed {
            dead, reporter, forwarded_to: 1 }) if *dead == notice.dead && *reporter == notice.reporter)));
        assert_eq!(
            s.registered(),
            &[
                ListedPeer::plain(a("127.0.0.1:5000")),
                ListedPeer::plain(a("127.0.0.1:5001"))
            ]
        );

        // A second reporter of the same death, on its own connection.
        let second = Message::DeadNode(DeadNode {
            reporter: a("127.0.0.1:5001"),
            ..notice
        });
        s.handle(
            Time::ZERO,
            Input::Received {
                conn: ConnId::new(2),
                msg: second,
            },
        );
        let outs = drain(&mut s);
        assert!(sends(&outs).is_empty());
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Event(Event::DeadNodeAlreadyRemoved { .. })))
        );
    }

    #[test]
    fn a_report_not_from_its_reporters_registered_connection_removes_no_one() {
        let mut s = seed(SeedConfig::default());
        for (c, p) in [(1, 5000), (2, 5001)] {
            connect_and_register(&mut s, c, p);
        }
        // Connection 3 registers nobody; connection 2 is 5001's, not 5000's.
        s.handle(
            Time::ZERO,
            Input::Connected {
                conn: ConnId::new(3),
                remote: a("127.0.0.1:40000"),
                outbound: false,
            },
        );
        drain(&mut s);
        for (conn, reporter) in [
            (3, "6.6.6.6:666"),
            (3, "127.0.0.1:5000"),
            (2, "127.0.0.1:5000"),
        ] {
            let forged = Message::DeadNode(DeadNode {
                dead: a("127.0.0.1:5001"),
                ts: Timestamp::parse("1").unwrap(),
                reporter: a(reporter),
            });
            s.handle(
                Time::ZERO,
                Input::Received {
                    conn: ConnId::new(conn),
                    msg: forged,
                },
            );
            let outs = drain(&mut s);
            assert!(sends(&outs).is_empty(), "{conn} {reporter}: {outs:?}");
            assert!(
                outs.iter()
                    .any(|o| matches!(o, Output::Event(Event::UnexpectedMessage { .. })))
            );
        }
        assert_eq!(s.registered().len(), 2, "nobody removed");
    }

    fn list_of(outs: &[Output]) -> Vec<String> {
        outs.iter()
            .find_map(|o| match o {
                Output::Send {
                    msg: m @ Message::PeerList { .. },
                    ..
                } => Some(m.to_string()),
                _ => None,
            })
            .into_iter()
            .collect()
    }

    #[test]
    fn reported_degrees_are_listed_and_only_a_peer_reports_its_own() {
        let mut s = seed(SeedConfig::default());
        connect_and_register(&mut s, 1, 5000);
        connect_and_register(&mut s, 2, 5001);
        let report = |s: &mut SeedNode, conn: u64, port: u16, degree: u32| {
            let addr = NodeAddr::new([127, 0, 0, 1].into(), port);
            s.handle(
                Time::ZERO,
                Input::Received {
                    conn: ConnId::new(conn),
                    msg: Message::Degree { addr, degree },
                },
            );
        };
        report(&mut s, 1, 5000, 7);
        report(&mut s, 1, 5001, 30); // peer 5000 lying about 5001: ignored
        let outs = drain(&mut s);
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::UnexpectedMessage { kind, .. }) if kind.starts_with("degree")
        )));
        let ask = Input::Received {
            conn: ConnId::new(2),
            msg: Message::PeerListRequest,
        };
        s.handle(Time::ZERO, ask.clone());
        assert_eq!(
            list_of(&drain(&mut s)),
            ["peer list:127.0.0.1#5000#7:127.0.0.1#5001"]
        );
        report(&mut s, 2, 5001, 3);
        s.handle(Time::ZERO, ask);
        assert_eq!(
            list_of(&drain(&mut s)),
            ["peer list:127.0.0.1#5000#7:127.0.0.1#5001#3"]
        );
    }

    #[test]
    fn a_large_registry_is_sampled_to_the_list_limit() {
        let mut s = seed(SeedConfig {
            peer_list_max: 5,
            ..SeedConfig::default()
        });
        for p in 0..50u16 {
            connect_and_register(&mut s, u64::from(p), 5000 + p);
        }
        drain(&mut s);
        s.handle(
            Time::ZERO,
            Input::Received {
                conn: ConnId::new(0),
                msg: Message::PeerListRequest,
            },
        );
        let outs = drain(&mut s);
        let list = outs.iter().find_map(|o| match o {
            Output::Send {
                msg: Message::PeerList { peers },
                ..
            } => Some(peers.clone()),
            _ => None,
        });
        let list = list.expect("a peer list was sent");
        assert_eq!(list.len(), 5);
        let mut dedup = list.clone();
        dedup.dedup();
        assert_eq!(
            dedup, list,
            "a sample has no repeats and keeps registry order"
        );
    }

    #[test]
    fn repeated_malformed_frames_close_the_connection() {
        let mut s = seed(SeedConfig {
            bad_frames_max: 2,
            ..SeedConfig::default()
        });
        connect_and_register(&mut s, 1, 5000);
        drain(&mut s);
        let bad = || Input::Malformed {
            conn: ConnId::new(1),
            error: WireError::Empty,
        };
        s.handle(Time::ZERO, bad());
        assert!(
            !drain(&mut s)
                .iter()
                .any(|o| matches!(o, Output::Close { .. }))
        );
        s.handle(Time::ZERO, bad());
        assert!(
            drain(&mut s)
                .iter()
                .any(|o| matches!(o, Output::Close { conn } if *conn == ConnId::new(1)))
        );
    }

    fn closes(outs: &[Output]) -> Vec<ConnId> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Close { conn } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_connection_silent_past_the_deadline_is_closed_and_a_talking_one_is_not() {
        let mut s = seed(SeedConfig {
            handshake_timeout: Duration::from_secs(1),
            ..SeedConfig::default()
        });
        let remote = a("127.0.0.1:40000");
        for conn in [ConnId::new(1), ConnId::new(2)] {
            let outbound = false;
            s.handle(
                Time::ZERO,
                Input::Connected {
                    conn,
                    remote,
                    outbound,
                },
            );
        }
        let armed = drain(&mut s);
        assert!(armed.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                at: Time(1_000_000),
                timer: TimerId::Handshake
            }
        )));
        let msg = Message::PeerListRequest;
        s.handle(
            Time(500_000),
            Input::Received {
                conn: ConnId::new(2),
                msg,
            },
        );
        drain(&mut s);
        // Early and duplicate timers change nothing.
        s.handle(Time(900_000), Input::Timer(TimerId::Handshake));
        assert!(closes(&drain(&mut s)).is_empty());
        s.handle(Time(1_000_000), Input::Timer(TimerId::Handshake));
        let outs = drain(&mut s);
        assert_eq!(closes(&outs), [ConnId::new(1)]);
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::HandshakeTimedOut { from }) if *from == remote
        )));
        s.handle(Time(5_000_000), Input::Timer(TimerId::Handshake));
        assert!(
            closes(&drain(&mut s)).is_empty(),
            "the talking connection stays"
        );
    }

    #[test]
    fn past_connections_max_a_seed_refuses_with_busy() {
        let mut s = seed(SeedConfig {
            connections_max: 1,
            ..SeedConfig::default()
        });
        connect_and_register(&mut s, 1, 6000);
        drain(&mut s);
        let remote = a("127.0.0.1:40001");
        let outbound = false;
        s.handle(
            Time::ZERO,
            Input::Connected {
                conn: ConnId::new(2),
                remote,
                outbound,
            },
        );
        let outs = drain(&mut s);
        assert_eq!(
            sends(&outs),
            [(ConnId::new(2), "Connection refused:busy".to_owned())]
        );
        assert_eq!(closes(&outs), [ConnId::new(2)]);
        assert_eq!(s.registered().len(), 1);
    }
}
