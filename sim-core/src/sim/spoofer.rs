//! A hostile client for fault campaigns: it speaks the seed protocol, never the peer one, and
//! tries every lie a seed must see through.
//!
//! Each round (every [`Spoofing::every`] from [`Spoofing::start`] until [`Spoofing::end`]) it
//! opens two connections to every seed:
//! - on the first (kept across rounds) it registers itself, honestly, at its own address,
//!   asks for the peer list and reports every listed peer dead in its own name. A seed that
//!   trusts reports (`--removal trust`) removes live peers on its word;
//! - on the second it tries to register a listed peer's address from its own IP (the
//!   registration binding refuses it), reports a listed peer dead in another listed peer's
//!   name (the seed ignores a report its reporter did not register on the connection), and
//!   closes.
//!
//! It answers a liveness request on any inbound connection (so a seed's dial-back admits it,
//! as it would admit a hostile host that listens) and closes every inbound connection after
//! its first message, so peers that find it in a list never link to it. It is a sans-IO
//! machine like the others, driven by the simulator.

use std::collections::VecDeque;

use crate::addr::NodeAddr;
use crate::node::{ConnId, Input, Node, Output, TimerId};
use crate::time::{Duration, Time};
use crate::vecmap::VecMap;
use crate::wire::{DeadNode, ListedPeer, Message, Timestamp};

/// When and how often a spoofing client lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spoofing {
    /// Its first round.
    pub start: Time,
    /// No round starts at or after this.
    pub end: Time,
    /// Time between rounds.
    pub every: Duration,
}

impl Spoofing {
    /// The address a simulated spoofing client connects from: an IP no peer has, so the
    /// registration binding applies to it as it would to an outsider.
    pub const ADDR: NodeAddr = NodeAddr::new(std::net::Ipv4Addr::new(10, 66, 6, 6), 6666);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// Its own registration, kept: peer lists and reports in its own name.
    Own,
    /// Foreign registration and a report in another's name, then closed.
    Forge,
}

/// The machine (see the module documentation).
#[derive(Debug)]
pub struct Spoofer {
    addr: NodeAddr,
    seeds: Vec<NodeAddr>,
    plan: Spoofing,
    now: Time,
    /// Dials in flight, by seed, in the order they were made.
    dialing: VecMap<NodeAddr, VecDeque<Purpose>>,
    /// Open connections to seeds: which seed, and what for.
    conns: VecMap<ConnId, (NodeAddr, Purpose)>,
    /// The kept connection to each seed.
    own: VecMap<NodeAddr, ConnId>,
    /// Every peer some list named (never itself), in list order of first sight.
    victims: Vec<NodeAddr>,
    out: VecDeque<Output>,
}

impl Spoofer {
    /// A spoofing client at `addr` that will lie to `seeds` as `plan` says.
    pub fn new(addr: NodeAddr, seeds: Vec<NodeAddr>, plan: Spoofing) -> Self {
        Spoofer {
            addr,
            seeds,
            plan,
            now: Time::ZERO,
            dialing: VecMap::new(),
            conns: VecMap::new(),
            own: VecMap::new(),
            victims: Vec::new(),
            out: VecDeque::new(),
        }
    }

    fn send(&mut self, conn: ConnId, msg: Message) {
        self.out.push_back(Output::Send { conn, msg });
    }

    /// Reports `dead` dead on `conn`, in `reporter`'s name.
    fn accuse(&mut self, conn: ConnId, dead: NodeAddr, reporter: NodeAddr) {
        let ts = Timestamp::at(self.now, 0);
        let notice = DeadNode { dead, ts, reporter };
        self.send(conn, Message::DeadNode(notice));
    }

    fn dial(&mut self, seed: NodeAddr, purpose: Purpose) {
        if !self.dialing.contains_key(&seed) {
            self.dialing.insert(seed, VecDeque::new());
        }
        if let Some(q) = self.dialing.get_mut(&seed) {
            q.push_back(purpose);
        }
        self.out.push_back(Output::Connect { addr: seed });
    }

    fn round(&mut self) {
        if self.now >= self.plan.end {
            return;
        }
        for seed in self.seeds.clone() {
            match self.own.get(&seed).copied() {
                Some(conn) => self.send(conn, Message::PeerListRequest),
                None => self.dial(seed, Purpose::Own),
            }
            self.dial(seed, Purpose::Forge);
        }
        self.out.push_back(Output::SetTimer {
            at: self.now + self.plan.every,
            timer: TimerId::Gossip,
        });
    }

    fn connected(&mut self, conn: ConnId, remote: NodeAddr) {
        let purpose = self
            .dialing
            .get_mut(&remote)
            .and_then(|q| q.pop_front())
            .unwrap_or(Purpose::Forge);
        self.conns.insert(conn, (remote, purpose));
        match purpose {
            Purpose::Own => {
                self.own.insert(remote, conn);
                let addr = self.addr;
                self.send(conn, Message::Register { addr });
                self.send(conn, Message::PeerListRequest);
            }
            Purpose::Forge => {
                let n = self.victims.len();
                if n > 0 {
                    // Rotate through the victims round by round.
                    let k = (self.now.0 / self.plan.every.0.max(1)) as usize;
                    let (claimed, accused) = (self.victims[k % n], self.victims[(k + 1) % n]);
                    self.send(conn, Message::Register { addr: claimed });
                    self.accuse(conn, accused, claimed);
                } else {
                    self.send(conn, Message::PeerListRequest);
                }
                self.out.push_back(Output::Close { conn });
                self.conns.remove(&conn);
            }
        }
    }

    fn peer_list(&mut self, conn: ConnId, peers: &[ListedPeer]) {
        let me = self.addr;
        for p in peers.iter().map(|p| p.addr).filter(|a| *a != me) {
            if !self.victims.contains(&p) {
                self.victims.push(p);
            }
            if self.now < self.plan.end {
                self.accuse(conn, p, me);
            }
        }
    }
}

impl Node for Spoofer {
    fn handle(&mut self, now: Time, input: Input) {
        self.now = now;
        match input {
            Input::Start => self.out.push_back(Output::SetTimer {
                at: self.plan.start,
                timer: TimerId::Gossip,
            }),
            Input::Timer(_) => self.round(),
            Input::Connected {
                conn,
                remote,
                outbound: true,
            } => self.connected(conn, remote),
            Input::Connected { .. } => {} // inbound: answered below, then closed
            Input::ConnectFailed { addr } => {
                if let Some(q) = self.dialing.get_mut(&addr) {
                    q.pop_front();
                }
            }
            Input::Received {
                conn,
                msg: Message::PeerList { peers },
            } if self.conns.get(&conn).is_some_and(|c| c.1 == Purpose::Own) => {
                self.peer_list(conn, &peers);
            }
            Input::Received {
                conn,
                msg: Message::LivenessRequest { ts, addr },
            } if !self.conns.contains_key(&conn) => {
                let from = self.addr;
                let reply = Message::LivenessReply { ts, to: addr, from };
                self.send(conn, reply);
                self.out.push_back(Output::Close { conn });
            }
            Input::Received { conn, .. } | Input::Malformed { conn, .. }
                if !self.conns.contains_key(&conn) =>
            {
                self.out.push_back(Output::Close { conn });
            }
            Input::Received { .. } | Input::Malformed { .. } | Input::Originate { .. } => {}
            Input::Closed { conn } => {
                if let Some((seed, Purpose::Own)) = self.conns.remove(&conn) {
                    self.own.remove(&seed);
                }
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}
