//! `SeedNode`: the registry. Peers register, ask for the peer list, and report dead peers;
//! the seed removes a reported peer, logs who reported it and passes the notice on.

use rand::Rng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::addr::NodeAddr;
use crate::limits::{PEER_LIST_ENTRIES_MAX, SEED_CONNECTIONS_MAX};
use crate::node::{ConnId, Event, Input, Node, Outbox, Output, TimerId};
use crate::time::{Duration, Time};
use crate::vecmap::VecMap;
use crate::wire::{DeadNode, ListedPeer, Message, RegisterRefusal, Timestamp, WireError};

/// Whether a seed checks a claim before it acts on it: the one choice behind
/// [`Removal`] (a dead-node report) and [`Admission`] (a registration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// Check first: dial the address and ask for a liveness reply, within
    /// [`SeedConfig::probe_timeout`].
    #[default]
    Verify,
    /// Act at once, as the reference implementation does (for comparisons).
    Trust,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Verify => "verify",
            Policy::Trust => "trust",
        })
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "verify" => Ok(Policy::Verify),
            "trust" => Ok(Policy::Trust),
            _ => Err(format!("unknown policy {s:?}: use verify or trust")),
        }
    }
}

/// What a seed does with a dead-node report from a registered peer: `Verify` removes the
/// accused only if the check fails (a report about a live peer is dismissed, logged and
/// counted against its reporter); `Trust` removes at once.
pub type Removal = Policy;

/// What a seed does with a new registration: `Verify` lists it and answers `registered
/// successfully` only once the address answered (else `registration refused:unreachable`,
/// so made-up addresses never enter a list); `Trust` lists it at once.
pub type Admission = Policy;

/// Registrations a seed checks at once; more are answered `registration refused:busy`.
pub const ADMISSIONS_MAX: usize = 256;

/// The dial-back check of one registration.
#[derive(Debug)]
struct Admit {
    /// The registered address.
    addr: NodeAddr,
    /// The connection it registered on, answered when the check ends.
    reg: ConnId,
    /// The connection to the address, once the dial succeeded.
    probe: Option<ConnId>,
    /// When silence counts as unreachable.
    deadline: Time,
    /// A first dial was refused or closed, and the address dialed once more.
    redialed: bool,
}

/// Checks of accused peers a seed runs at once; more reports wait for a later one.
pub const PROBES_MAX: usize = 64;
/// Removals a seed has yet to tell its fellow seeds about; more are not told.
pub const FELLOW_NOTICES_MAX: usize = 1024;
/// Reports dismissed in a row after which a reporter's reports are held for [`HOLD_FOR`].
pub const DISMISSALS_MAX: u32 = 3;
/// How long the reports of a reporter whose reports keep being dismissed wait before they
/// are checked (10 s). Held, never dropped: an honest peer whose view was cut off by a
/// partition reports live neighbours dead, and its next report may be true.
pub const HOLD_FOR: Duration = Duration::from_secs(10);
/// Reports about peers this seed does not list that one reporter may have passed on to the
/// fellow seeds within [`HOLD_FOR`].
pub const HINTS_MAX: u8 = 8;
/// Removals remembered, so that later reports of a removed peer are not passed on again.
pub const RECENT_REMOVALS: usize = 1024;

/// A seed's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedConfig {
    /// Most entries in one peer list reply; a random sample is sent when more are registered.
    pub peer_list_max: usize,
    /// Malformed frames tolerated on one connection before it is closed.
    pub bad_frames_max: u32,
    /// How long a new connection may stay without a valid message before it is closed (10 s).
    pub handshake_timeout: Duration,
    /// How long a connection with nothing registered on it may stay silent after a valid
    /// message before it is closed (60 s). A registered peer's connection is not bounded: it
    /// lives while its peer does (a seed removes a dead peer, and a crashed one's connection
    /// closes).
    pub idle_timeout: Duration,
    /// Most connections open at once; more are refused with `Connection refused:busy`.
    pub connections_max: usize,
    /// Most connections open at once from one source IP (1 024); more are refused with
    /// `Connection refused:busy`, so that one host cannot take every slot.
    pub connections_per_ip_max: usize,
    /// Whether a reported peer is checked before it is removed (`verify`, the default).
    pub removal: Removal,
    /// Whether a registration is listed at once or after a dial-back check (`verify`).
    pub admission: Admission,
    /// How long the check of a reported peer may take: the dial and its liveness reply (5 s).
    pub probe_timeout: Duration,
    /// Added to `now` for wire timestamps, as a peer's (0 in the simulator).
    pub wall_offset_micros: u64,
    /// Accept a `register` whose IP is not the connection's source IP (peers behind NAT,
    /// or listening on another address than they dial from).
    pub trust_advertised_ip: bool,
    /// The seeds of `config.txt` (this one among them or not). With `verify`, a seed that
    /// removed a peer on a registered peer's report tells the others, and each checks the
    /// peer itself: every seed a dead peer registered with removes it.
    pub fellows: Vec<NodeAddr>,
    /// The wire spoken (`line`). A seed of the reference wire speaks both: each connection
    /// is read and answered in the wire its first bytes are in.
    pub wire: crate::wire::Wire,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            peer_list_max: PEER_LIST_ENTRIES_MAX,
            bad_frames_max: 3,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            connections_max: SEED_CONNECTIONS_MAX,
            connections_per_ip_max: 1024,
            removal: Removal::Verify,
            admission: Admission::Verify,
            probe_timeout: Duration::from_secs(5),
            wall_offset_micros: 0,
            trust_advertised_ip: false,
            fellows: Vec::new(),
            wire: crate::wire::Wire::Line,
        }
    }
}

/// The check of one accused peer.
#[derive(Debug)]
struct Probe {
    /// The report that started it, forwarded if the peer is removed.
    notice: DeadNode,
    /// The connection to the accused, once the dial succeeded.
    conn: Option<ConnId>,
    /// The connection closed before an answer and the accused was dialed again (a reset
    /// by a middlebox is not a death).
    redialed: bool,
    /// When silence counts as death.
    deadline: Time,
    /// A registered peer reported it (not a fellow seed): a removal is told to the fellows.
    tell_fellows: bool,
}

/// Reports of one accused peer waiting for a check.
#[derive(Debug)]
struct Pending {
    /// The reports, from distinct reporters (at most [`PENDING_REPORTERS_MAX`]): the check
    /// is due once any of them is not held, so a held spoofer's report of a peer cannot
    /// delay a true one.
    notices: Vec<DeadNode>,
    /// A registered peer reported it (not only a fellow seed).
    tell_fellows: bool,
}

/// Reporters a pending entry keeps.
pub const PENDING_REPORTERS_MAX: usize = 4;

/// What a seed remembers of a reporter whose reports it dismissed or passed on.
#[derive(Debug, Default, Clone, Copy)]
struct Reporter {
    /// Reports dismissed in a row.
    dismissed: u32,
    /// Its reports wait until then.
    held_until: Time,
    /// Reports about unlisted peers passed on to the fellow seeds since `hints_since`.
    hints: u8,
    hints_since: Time,
}

/// One connection (16 bytes, 24 with its id: a seed of a million-peer simulation holds
/// ~670 000).
#[derive(Debug)]
struct SeedConn {
    remote: NodeAddr,
    /// The listening address registered over this connection.
    peer: Option<NodeAddr>,
    /// Malformed frames so far (counted up to 255).
    bad_frames: u8,
    /// It sent a valid message: past its handshake, an idle bound applies.
    spoke: bool,
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
    index: VecMap<NodeAddr, u32>,
    /// Sorted vectors, not B-trees: a third of the memory, and in a simulation (connection
    /// ids and registered addresses both grow) every insert is an append; elsewhere an
    /// insert or removal moves the tail, microseconds at tens of thousands of entries.
    conns: VecMap<ConnId, SeedConn>,
    /// Connections that have not said anything valid yet, or have nothing registered on
    /// them, with the time they are closed at.
    handshakes: VecMap<ConnId, Time>,
    /// Connections open from each source IP.
    per_ip: VecMap<core::net::Ipv4Addr, u32>,
    /// Accused peers being checked (at most [`PROBES_MAX`]).
    probes: Vec<Probe>,
    /// Registrations being checked (at most [`ADMISSIONS_MAX`]).
    admitting: Vec<Admit>,
    /// Registered peers per IP, for fair peer lists.
    listed_ips: VecMap<core::net::Ipv4Addr, u32>,
    /// Reporters with dismissed reports.
    reporters: VecMap<NodeAddr, Reporter>,
    /// Reports waiting for a check (their reporter is held, or every check slot is taken),
    /// one per accused peer this seed lists: at most as many as it lists.
    pending: VecMap<NodeAddr, Pending>,
    /// The latest removals, oldest first (at most [`RECENT_REMOVALS`]).
    recently_removed: std::collections::VecDeque<NodeAddr>,
    /// Removals to tell fellow seeds about, while a dial to each is under way.
    to_tell: Vec<(NodeAddr, DeadNode)>,
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
            handshakes: VecMap::new(),
            per_ip: VecMap::new(),
            probes: Vec::new(),
            admitting: Vec::new(),
            reporters: VecMap::new(),
            listed_ips: VecMap::new(),
            pending: VecMap::new(),
            recently_removed: std::collections::VecDeque::new(),
            to_tell: Vec::new(),
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

    /// Connections open (peers, clients, checks of accused peers).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn connected(&mut self, conn: ConnId, remote: NodeAddr) {
        if self.conns.len() >= self.cfg.connections_max {
            self.out.refuse_busy(conn, remote, self.cfg.connections_max);
            return;
        }
        let from_ip = self.per_ip.get(&remote.ip).copied().unwrap_or(0);
        if from_ip as usize >= self.cfg.connections_per_ip_max {
            let limit = self.cfg.connections_per_ip_max;
            self.out.send(
                conn,
                Message::Refuse {
                    reason: crate::wire::RefuseReason::Busy,
                },
            );
            self.out.push(Output::Close { conn });
            self.out.event(Event::TooManyFromIp {
                from: remote,
                limit,
            });
            return;
        }
        self.per_ip.insert(remote.ip, from_ip + 1);
        let deadline = self.now + self.cfg.handshake_timeout;
        self.conns.insert(
            conn,
            SeedConn {
                remote,
                peer: None,
                bad_frames: 0,
                spoke: false,
            },
        );
        self.handshakes.insert(conn, deadline);
        self.out.arm_no_later(TimerId::Handshake, deadline);
    }

    /// A listed peer's connection closed: with checked admissions, an entry that stops
    /// answering leaves, so the seed checks the address itself, as it would a report (a
    /// reset peer answers and stays; a crashed one refuses twice and is removed).
    fn registration_lost(&mut self, peer: Option<NodeAddr>) {
        let Some(dead) = peer.filter(|p| self.index.contains_key(p)) else {
            return;
        };
        if self.cfg.admission != Admission::Verify || self.cfg.removal != Removal::Verify {
            return;
        }
        let notice = DeadNode {
            dead,
            ts: Timestamp::at(self.now, self.cfg.wall_offset_micros),
            reporter: self.addr,
        };
        self.start_probe(notice, false);
    }

    /// Forgets a connection (closed by either side).
    fn drop_conn(&mut self, conn: ConnId) -> Option<SeedConn> {
        let c = self.conns.remove(&conn)?;
        self.handshakes.remove(&conn);
        match self.per_ip.get(&c.remote.ip).copied() {
            Some(n) if n > 1 => {
                self.per_ip.insert(c.remote.ip, n - 1);
            }
            _ => {
                self.per_ip.remove(&c.remote.ip);
            }
        }
        Some(c)
    }

    /// Close connections that said nothing valid in time, or stayed silent with nothing
    /// registered on them; re-arm for the next deadline.
    fn handshake_deadlines(&mut self) {
        let now = self.now;
        let expired: Vec<ConnId> = self
            .handshakes
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for conn in expired {
            self.handshakes.remove(&conn);
            if let Some(c) = self.drop_conn(conn) {
                self.out.push(Output::Close { conn });
                let from = c.remote;
                self.out.event(if c.spoke {
                    Event::IdleTimedOut { from }
                } else {
                    Event::HandshakeTimedOut { from }
                });
            }
        }
        let overdue: Vec<NodeAddr> = self
            .probes
            .iter()
            .filter(|p| p.deadline <= now)
            .map(|p| p.notice.dead)
            .collect();
        for dead in overdue {
            self.probe_failed(dead);
        }
        while let Some(i) = self.admitting.iter().position(|a| a.deadline <= now) {
            self.admission_ends(i, false);
        }
        self.drain_pending();
        self.rearm();
    }

    /// Arms the one timer a seed uses for the next deadline: a silent new connection's, or
    /// a check's.
    fn rearm(&mut self) {
        let pending = self.handshakes.values().copied();
        let probes = self.probes.iter().map(|p| p.deadline);
        let admits = self.admitting.iter().map(|a| a.deadline);
        let holds = self.pending_holds();
        if let Some(next) = pending.chain(probes).chain(admits).chain(holds).min() {
            // A deadline already past (rearmed outside the timer) is due now.
            self.out.arm(TimerId::Handshake, next.max(self.now));
        }
    }

    fn received(&mut self, conn: ConnId, msg: Message) {
        if let Some(i) = self.probe_on(conn) {
            self.probe_answer(i, msg);
            return;
        }
        if let Some(i) = self.admit_on(conn) {
            // A liveness reply (or a `busy` refusal: something listens) admits it.
            if matches!(msg, Message::LivenessReply { .. } | Message::Refuse { .. }) {
                self.admission_ends(i, true);
                self.rearm();
            }
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            debug_assert!(false, "driver fed a message on {conn}, which is not open");
            return;
        };
        c.spoke = true;
        let from = c.peer.unwrap_or(c.remote);
        if !self.handshakes.is_empty() {
            self.handshakes.remove(&conn);
        }
        self.handle_message(conn, from, msg);
        // Nothing registered on it: it may stay silent for the idle bound, no longer.
        if self.conns.get(&conn).is_some_and(|c| c.peer.is_none()) {
            let at = self.now + self.cfg.idle_timeout;
            self.handshakes.insert(conn, at);
            self.out.arm_no_later(TimerId::Handshake, at);
        }
    }

    fn handle_message(&mut self, conn: ConnId, from: NodeAddr, msg: Message) {
        match msg {
            Message::Register { addr } => self.register(conn, addr),
            Message::PeerListRequest => self.serve_list(conn),
            Message::DeadNode(notice) => self.dead_node(conn, notice),
            Message::Degree { addr, degree } => self.degree(conn, from, addr, degree),
            other @ (Message::Registered
            | Message::RegistrationRefused { .. }
            | Message::PeerList { .. }
            | Message::Hello { .. }
            | Message::Refuse { .. }
            | Message::LivenessRequest { .. }
            | Message::LivenessReply { .. }
            | Message::Gossip(_)
            | Message::Forwarding) => {
                self.out.event(Event::UnexpectedMessage {
                    from,
                    kind: other.kind(),
                });
            }
        }
    }

    /// Why `addr` may not register on `conn`, if it may not: over TCP its IP must be the
    /// connection's source IP (unless `trust_advertised_ip`), a connection registers one
    /// address, and a live registration is refreshed only on its own connection.
    fn refusal(&self, conn: ConnId, addr: NodeAddr) -> Option<RegisterRefusal> {
        let c = self.conns.get(&conn)?;
        if !self.cfg.trust_advertised_ip && addr.ip != c.remote.ip {
            return Some(RegisterRefusal::NotYourAddress);
        }
        if c.peer.is_some_and(|p| p != addr)
            || self
                .admitting
                .iter()
                .any(|a| a.reg == conn && a.addr != addr)
        {
            return Some(RegisterRefusal::OnePerConnection);
        }
        if self
            .admitting
            .iter()
            .any(|a| a.addr == addr && a.reg != conn)
        {
            return Some(RegisterRefusal::OtherConnection);
        }
        let elsewhere = c.peer != Some(addr)
            && self.index.contains_key(&addr)
            && self.conns.values().any(|o| o.peer == Some(addr));
        elsewhere.then_some(RegisterRefusal::OtherConnection)
    }

    fn register(&mut self, conn: ConnId, addr: NodeAddr) {
        if let Some(reason) = self.refusal(conn, addr) {
            let from = self.conns.get(&conn).map_or(addr, |c| c.remote);
            self.out.send(conn, Message::RegistrationRefused { reason });
            self.out.event(Event::RegistrationRefused {
                peer: addr,
                from,
                reason,
            });
            return;
        }
        let refreshed = self.index.contains_key(&addr);
        if !refreshed && self.cfg.admission == Admission::Verify {
            if self.admitting.iter().any(|a| a.reg == conn) {
                return; // being checked: answered when the check ends
            }
            if self.admitting.len() >= ADMISSIONS_MAX {
                self.refuse_registration(conn, addr, RegisterRefusal::Busy);
                return;
            }
            let deadline = self.now + self.cfg.probe_timeout;
            self.admitting.push(Admit {
                addr,
                reg: conn,
                probe: None,
                deadline,
                redialed: false,
            });
            self.out.push(Output::Connect { addr });
            self.out.arm_no_later(TimerId::Handshake, deadline);
            return;
        }
        self.list(conn, addr, refreshed);
    }

    fn refuse_registration(&mut self, conn: ConnId, addr: NodeAddr, reason: RegisterRefusal) {
        let from = self.conns.get(&conn).map_or(addr, |c| c.remote);
        self.out.send(conn, Message::RegistrationRefused { reason });
        self.out.event(Event::RegistrationRefused {
            peer: addr,
            from,
            reason,
        });
    }

    /// Lists `addr`, registered on `conn`, and answers it.
    fn list(&mut self, conn: ConnId, addr: NodeAddr, refreshed: bool) {
        if !refreshed {
            // One registration per connection: fewer than there are connections, < 2^32.
            let pos = u32::try_from(self.peers.len()).unwrap_or(u32::MAX);
            self.index.insert(addr, pos);
            self.peers.push(ListedPeer::plain(addr));
            match self.listed_ips.get_mut(&addr.ip) {
                Some(n) => *n += 1,
                None => {
                    self.listed_ips.insert(addr.ip, 1);
                }
            }
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

    /// The registration check whose connection to the address is `conn`.
    fn admit_on(&self, conn: ConnId) -> Option<usize> {
        if self.admitting.is_empty() {
            return None;
        }
        self.admitting.iter().position(|a| a.probe == Some(conn))
    }

    /// The check of registration `i` ended: the address answered (`reached`) or not.
    fn admission_ends(&mut self, i: usize, reached: bool) {
        let a = self.admitting.swap_remove(i);
        if let Some(conn) = a.probe {
            self.out.push(Output::Close { conn });
        }
        if !self.conns.contains_key(&a.reg) {
            return; // the registering connection is gone: nothing to answer
        }
        if reached {
            // Registered after all: the idle bound of an unregistered connection ends.
            self.handshakes.remove(&a.reg);
            let refreshed = self.index.contains_key(&a.addr);
            self.list(a.reg, a.addr, refreshed);
        } else {
            self.refuse_registration(a.reg, a.addr, RegisterRefusal::Unreachable);
        }
    }

    /// A dial of a registration check failed, or its connection closed before an answer:
    /// dialed once more, then unreachable.
    fn admission_failed(&mut self, i: usize) {
        let a = &mut self.admitting[i];
        // Its connection, if any, is closed already.
        a.probe = None;
        if !a.redialed && self.now < a.deadline {
            a.redialed = true;
            let addr = a.addr;
            self.out.push(Output::Connect { addr });
        } else {
            self.admission_ends(i, false);
            self.rearm();
        }
    }

    fn serve_list(&mut self, conn: ConnId) {
        let n = self.peers.len();
        let k = self.cfg.peer_list_max;
        let peers = if n <= k {
            self.peers.clone()
        } else if self.listed_ips.len() <= 1 {
            let mut picked = sample(&mut self.rng, n, k).into_vec();
            picked.sort_unstable();
            picked.into_iter().map(|i| self.peers[i]).collect()
        } else {
            self.fair_sample(k)
        };
        self.out.event(Event::PeerListServed {
            entries: peers.len(),
            registered: n,
        });
        self.out.send(conn, Message::PeerList { peers });
    }

    /// `k` registered peers sampled fairly across source IPs: the IPs in a random order, one
    /// random peer of each in turn, so that one host that registered thousands of addresses
    /// fills at most its share of a list. It costs O(k log n), not O(n): a seed of a
    /// simulated million serves hundreds of thousands of lists. The peers of one IP are a
    /// run of `index` (sorted by address, IP first), `listed_ips` says how long.
    fn fair_sample(&mut self, k: usize) -> Vec<ListedPeer> {
        let ips = self.listed_ips.len();
        if ips == self.peers.len() {
            // One peer an IP: fair is uniform.
            let mut picked = sample(&mut self.rng, self.peers.len(), k).into_vec();
            picked.sort_unstable();
            return picked.into_iter().map(|i| self.peers[i]).collect();
        }
        // (IP's index in `listed_ips`, peers to take from it.)
        let mut take: Vec<(usize, usize)> = Vec::with_capacity(k.min(ips));
        if ips >= k {
            take.extend(sample(&mut self.rng, ips, k).into_iter().map(|g| (g, 1)));
        } else {
            // Fewer IPs than entries (so fewer than k, at most 64): whole rounds in turn.
            let mut order: Vec<usize> = (0..ips).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, self.rng.random_range(0..=i));
            }
            let sizes: Vec<usize> = order
                .iter()
                .map(|&g| self.listed_ips.get_index(g).map_or(0, |(_, &n)| n as usize))
                .collect();
            let mut counts = vec![0usize; ips];
            let mut left = k;
            while left > 0 {
                let before = left;
                for (slot, &size) in sizes.iter().enumerate() {
                    if left > 0 && counts[slot] < size {
                        counts[slot] += 1;
                        left -= 1;
                    }
                }
                if left == before {
                    break;
                }
            }
            take.extend(order.into_iter().zip(counts).filter(|&(_, n)| n > 0));
        }
        let mut picked = Vec::with_capacity(k);
        for (g, n) in take {
            let Some((&ip, &size)) = self.listed_ips.get_index(g) else {
                continue;
            };
            let size = size as usize;
            let first = NodeAddr { ip, port: 0 };
            let lo = self.index.position(&first).unwrap_or_else(|at| at);
            for o in sample(&mut self.rng, size, n.min(size)) {
                match self.index.get_index(lo + o) {
                    Some((a, &pos)) if a.ip == ip => picked.push(pos as usize),
                    _ => {}
                }
            }
        }
        picked.sort_unstable();
        picked.into_iter().map(|i| self.peers[i]).collect()
    }

    /// A dead-node report: acted on only when it comes over the connection its reporter
    /// registered on, so a client that registered nobody, or someone else, cannot remove
    /// anyone (a raw client could otherwise empty the registry with one line an entry).
    fn dead_node(&mut self, conn: ConnId, notice: DeadNode) {
        let DeadNode { dead, reporter, .. } = notice;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let from_fellow = c.peer.is_none()
            && self.cfg.removal == Removal::Verify
            && reporter != self.addr
            && reporter.ip == c.remote.ip
            && self.cfg.fellows.contains(&reporter);
        if from_fellow {
            // A fellow seed removed it: check it here too (a notice, never a verdict).
            if self.index.contains_key(&dead) {
                self.start_probe(notice, false);
            }
            return;
        }
        if c.peer != Some(reporter) {
            let from = c.peer.unwrap_or(c.remote);
            self.out.event(Event::UnexpectedMessage {
                from,
                kind: "dead node (its reporter did not register on this connection)",
            });
            return;
        }
        if !self.index.contains_key(&dead) {
            self.out
                .event(Event::DeadNodeAlreadyRemoved { dead, reporter });
            // A peer this seed never listed may be listed by a fellow seed that the
            // reporter did not register with: pass the report on, as a hint to check.
            if self.cfg.removal == Removal::Verify
                && !self.recently_removed.contains(&dead)
                && self.may_hint(reporter)
            {
                self.tell_fellows(&notice);
            }
            return;
        }
        match self.cfg.removal {
            Removal::Trust => self.remove(notice, Some(conn)),
            Removal::Verify => self.start_probe(notice, true),
        }
    }

    /// Whether `reporter` may pass one more report about an unlisted peer to the fellows.
    fn may_hint(&mut self, reporter: NodeAddr) -> bool {
        let now = self.now;
        let mut r = self.reporters.get(&reporter).copied().unwrap_or_default();
        if r.held_until > now {
            return false;
        }
        if now >= r.hints_since + HOLD_FOR {
            r.hints = 0;
            r.hints_since = now;
        }
        let ok = r.hints < HINTS_MAX;
        r.hints = r.hints.saturating_add(1);
        self.reporters.insert(reporter, r);
        ok
    }

    /// When `reporter`'s reports are held until, if they are.
    fn held_until(&self, reporter: NodeAddr) -> Option<Time> {
        self.reporters
            .get(&reporter)
            .map(|r| r.held_until)
            .filter(|t| *t > self.now)
    }

    /// The ends of the holds that pending reports wait for (entries whose reporters are all
    /// held: the first hold to end makes it due).
    fn pending_holds(&self) -> impl Iterator<Item = Time> + '_ {
        self.pending.values().filter_map(|p| {
            p.notices
                .iter()
                .map(|n| self.held_until(n.reporter))
                .collect::<Option<Vec<Time>>>()
                .and_then(|holds| holds.into_iter().min())
        })
    }

    /// The report of a pending entry whose reporter is not held, if any.
    fn due_notice(&self, p: &Pending) -> Option<usize> {
        p.notices
            .iter()
            .position(|n| self.held_until(n.reporter).is_none())
    }

    /// Starts checking the peer `notice` accuses, unless it is being checked already. A
    /// report whose reporter is held, or that finds every check slot taken, waits in
    /// `pending` (one entry per accused peer) and is checked later: never dropped.
    fn start_probe(&mut self, notice: DeadNode, tell_fellows: bool) {
        let (dead, reporter) = (notice.dead, notice.reporter);
        if let Some(p) = self.probes.iter_mut().find(|p| p.notice.dead == dead) {
            p.tell_fellows |= tell_fellows;
            self.out.event(Event::DeadReportIgnored {
                dead,
                reporter,
                why: "ignored, a check of it is under way",
            });
            return;
        }
        let why = if let Some(until) = self.held_until(reporter) {
            self.out.arm_no_later(TimerId::Handshake, until);
            Some("held, its reporter's last reports were dismissed (checked when the hold ends)")
        } else if self.probes.len() >= PROBES_MAX {
            Some("held, too many checks under way (checked when one ends)")
        } else {
            None
        };
        let Some(why) = why else {
            self.pending.remove(&dead);
            self.launch(notice, tell_fellows);
            return;
        };
        // One entry per accused, with up to four reporters; when full, a report of a
        // reporter that is not held takes the place of one that is.
        let reporter_held = self.held_until(reporter).is_some();
        let held_slot = self.pending.get(&dead).and_then(|p| {
            p.notices
                .iter()
                .position(|n| self.held_until(n.reporter).is_some())
        });
        match self.pending.get_mut(&dead) {
            None => {
                self.pending.insert(
                    dead,
                    Pending {
                        notices: vec![notice],
                        tell_fellows,
                    },
                );
            }
            Some(p) => {
                p.tell_fellows |= tell_fellows;
                let known = p.notices.iter().any(|n| n.reporter == reporter);
                if !known && p.notices.len() < PENDING_REPORTERS_MAX {
                    p.notices.push(notice);
                } else if let Some(i) = held_slot.filter(|_| !known && !reporter_held) {
                    p.notices[i] = notice;
                }
            }
        }
        self.out.event(Event::DeadReportIgnored {
            dead,
            reporter,
            why,
        });
    }

    /// Dials the accused and starts its check.
    fn launch(&mut self, notice: DeadNode, tell_fellows: bool) {
        let (dead, reporter) = (notice.dead, notice.reporter);
        let deadline = self.now + self.cfg.probe_timeout;
        self.probes.push(Probe {
            notice,
            conn: None,
            redialed: false,
            deadline,
            tell_fellows,
        });
        self.out.push(Output::Connect { addr: dead });
        self.out.arm_no_later(TimerId::Handshake, deadline);
        self.out.event(Event::DeadReportChecking { dead, reporter });
    }

    /// Starts the pending checks that may start: their reporter is no longer held and a
    /// slot is free. Reports of peers no longer listed are dropped.
    fn drain_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let due: Vec<(NodeAddr, usize)> = self
            .pending
            .iter()
            .filter_map(|(d, p)| self.due_notice(p).map(|i| (*d, i)))
            .collect();
        for (dead, i) in due {
            if self.probes.len() >= PROBES_MAX {
                break;
            }
            let Some(mut p) = self.pending.remove(&dead) else {
                continue;
            };
            let (notice, tell) = (p.notices.swap_remove(i), p.tell_fellows);
            if !self.index.contains_key(&dead) {
                continue;
            }
            if let Some(p) = self.probes.iter_mut().find(|p| p.notice.dead == dead) {
                p.tell_fellows |= tell;
                continue;
            }
            self.launch(notice, tell);
        }
        self.pending.retain(|d, _| self.index.contains_key(d));
    }

    /// The check whose connection is `conn`.
    fn probe_on(&self, conn: ConnId) -> Option<usize> {
        if self.probes.is_empty() {
            return None;
        }
        self.probes.iter().position(|p| p.conn == Some(conn))
    }

    /// Our dial to `addr` connected: if it is an accused peer, ask it for a liveness reply;
    /// if it is a fellow seed, tell it what we removed.
    fn dialed(&mut self, conn: ConnId, addr: NodeAddr) {
        if self.to_tell.iter().any(|(f, _)| *f == addr) {
            let (told, rest): (Vec<_>, Vec<_>) =
                self.to_tell.drain(..).partition(|(f, _)| *f == addr);
            self.to_tell = rest;
            for (_, notice) in told {
                self.out.send(conn, Message::DeadNode(notice));
            }
            self.out.push(Output::Close { conn });
            return;
        }
        if let Some(a) = self
            .admitting
            .iter_mut()
            .find(|a| a.addr == addr && a.probe.is_none())
        {
            a.probe = Some(conn);
            let ts = Timestamp::at(self.now, self.cfg.wall_offset_micros);
            let me = self.addr;
            self.out
                .send(conn, Message::LivenessRequest { ts, addr: me });
            return;
        }
        let Some(p) = self
            .probes
            .iter_mut()
            .find(|p| p.notice.dead == addr && p.conn.is_none())
        else {
            // A check that ended meanwhile.
            self.out.push(Output::Close { conn });
            return;
        };
        p.conn = Some(conn);
        let ts = Timestamp::at(self.now, self.cfg.wall_offset_micros);
        self.out.send(
            conn,
            Message::LivenessRequest {
                ts,
                addr: self.addr,
            },
        );
    }

    /// A message from an accused peer: a liveness reply (or a `busy` refusal) shows it alive.
    fn probe_answer(&mut self, i: usize, msg: Message) {
        match msg {
            Message::LivenessReply { .. } | Message::Refuse { .. } => {
                let p = self.probes.swap_remove(i);
                if let Some(conn) = p.conn {
                    self.out.push(Output::Close { conn });
                }
                self.dismiss(p.notice);
                self.drain_pending();
                self.rearm();
            }
            // Anything else proves nothing; the deadline decides.
            _ => {}
        }
    }

    /// The accused answered: the report was false.
    fn dismiss(&mut self, notice: DeadNode) {
        let (dead, reporter) = (notice.dead, notice.reporter);
        let mut r = self.reporters.get(&reporter).copied().unwrap_or_default();
        r.dismissed = r.dismissed.saturating_add(1);
        let dismissed = r.dismissed;
        if r.dismissed >= DISMISSALS_MAX {
            r.held_until = self.now + HOLD_FOR;
        }
        self.reporters.insert(reporter, r);
        self.out.event(Event::DeadReportDismissed {
            dead,
            reporter,
            dismissed,
        });
    }

    /// The check of `dead` failed (refused, closed, or silent past its deadline): remove it.
    fn probe_failed(&mut self, dead: NodeAddr) {
        let Some(i) = self.probes.iter().position(|p| p.notice.dead == dead) else {
            return;
        };
        let p = self.probes.swap_remove(i);
        if let Some(conn) = p.conn {
            self.out.push(Output::Close { conn });
        }
        if self.index.contains_key(&dead) {
            // A true report: its reporter's record of dismissals starts again.
            let reporter = p.notice.reporter;
            if let Some(r) = self.reporters.get_mut(&reporter) {
                r.dismissed = 0;
            }
            // The reporter knows: it is not told again.
            let from = self
                .conns
                .iter()
                .find(|(_, c)| c.peer == Some(reporter))
                .map(|(id, _)| *id);
            if p.tell_fellows {
                self.tell_fellows(&p.notice);
            }
            self.remove(p.notice, from);
        }
    }

    /// Dials every fellow seed to tell it of a removal, in our name.
    fn tell_fellows(&mut self, notice: &DeadNode) {
        let me = self.addr;
        for &f in &self.cfg.fellows {
            if f == me {
                continue;
            }
            if self.to_tell.len() >= FELLOW_NOTICES_MAX {
                break;
            }
            if !self.to_tell.iter().any(|(g, _)| *g == f) {
                self.out.push(Output::Connect { addr: f });
            }
            let told = DeadNode {
                reporter: me,
                ..notice.clone()
            };
            self.to_tell.push((f, told));
        }
    }

    /// Removes `notice.dead`, logs it, and passes the notice to every other registered peer
    /// (all but the one on `from`, the reporter's connection).
    fn remove(&mut self, notice: DeadNode, from: Option<ConnId>) {
        let (dead, reporter) = (notice.dead, notice.reporter);
        let Some(pos) = self.index.remove(&dead) else {
            return;
        };
        self.reporters.remove(&dead);
        self.pending.remove(&dead);
        if self.recently_removed.len() >= RECENT_REMOVALS {
            self.recently_removed.pop_front();
        }
        self.recently_removed.push_back(dead);
        self.peers.swap_remove(pos as usize);
        if let Some(n) = self.listed_ips.get_mut(&dead.ip) {
            *n -= 1;
            if *n == 0 {
                self.listed_ips.remove(&dead.ip);
            }
        }
        if let Some(moved) = self.peers.get(pos as usize) {
            self.index.insert(moved.addr, pos);
        }
        let targets: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| Some(**id) != from && c.peer.is_some_and(|p| p != dead))
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
                self.peers[i as usize].degree = Some(degree);
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
        c.bad_frames = c.bad_frames.saturating_add(1);
        let from = c.peer.unwrap_or(c.remote);
        let closed = u32::from(c.bad_frames) >= self.cfg.bad_frames_max.min(u8::MAX.into());
        if closed {
            self.drop_conn(conn);
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
            Input::Connected {
                conn,
                remote,
                outbound: true,
            } => self.dialed(conn, remote),
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
            Input::Closed { conn } if self.admit_on(conn).is_some() => {
                if let Some(i) = self.admit_on(conn) {
                    self.admission_failed(i);
                }
            }
            Input::Closed { conn } => match self.probe_on(conn) {
                // Closed before an answer: dialed once more, as a reset is not a death (a
                // crashed peer refuses the dial; a silent one lets the deadline pass).
                Some(i) if !self.probes[i].redialed && now < self.probes[i].deadline => {
                    let p = &mut self.probes[i];
                    p.conn = None;
                    p.redialed = true;
                    let addr = p.notice.dead;
                    self.out.push(Output::Connect { addr });
                }
                Some(i) => {
                    let dead = self.probes[i].notice.dead;
                    self.probes[i].conn = None;
                    self.probe_failed(dead);
                    self.drain_pending();
                    self.rearm();
                }
                None => {
                    let gone = self.drop_conn(conn);
                    self.registration_lost(gone.and_then(|c| c.peer));
                    // A registration being checked on it: nothing to answer any more.
                    while let Some(i) = self.admitting.iter().position(|a| a.reg == conn) {
                        let a = self.admitting.swap_remove(i);
                        if let Some(probe) = a.probe {
                            self.out.push(Output::Close { conn: probe });
                        }
                    }
                }
            },
            // A seed dials accused peers and fellow seeds.
            Input::ConnectFailed { addr } => {
                if self.to_tell.iter().any(|(f, _)| *f == addr) {
                    self.to_tell.retain(|(f, _)| *f != addr);
                } else if let Some(i) = self
                    .admitting
                    .iter()
                    .position(|a| a.addr == addr && a.probe.is_none())
                {
                    self.admission_failed(i);
                } else if let Some(p) = self.probes.iter_mut().find(|p| {
                    p.notice.dead == addr && p.conn.is_none() && !p.redialed && now < p.deadline
                }) {
                    // Refused once: dialed once more, as a reset in the handshake looks the
                    // same as a crashed peer's refusal. Two refusals remove it.
                    p.redialed = true;
                    self.out.push(Output::Connect { addr });
                } else {
                    self.probe_failed(addr);
                    self.drain_pending();
                    self.rearm();
                }
            }
            // A seed originates nothing.
            Input::Originate { .. } => {}
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

    /// A seed that lists registrations at once: the tests of its other rules register
    /// addresses nothing listens at. The dial-back check has its own tests (`admitting`).
    fn seed(cfg: SeedConfig) -> SeedNode {
        admitting(SeedConfig {
            admission: Admission::Trust,
            ..cfg
        })
    }

    /// A seed with `cfg` as given (its admission policy included).
    fn admitting(cfg: SeedConfig) -> SeedNode {
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

    /// The peer list the seed answers a `peer list` on `conn` with.
    fn ask_list(s: &mut SeedNode, conn: ConnId) -> Vec<ListedPeer> {
        s.handle(
            Time::ZERO,
            Input::Received {
                conn,
                msg: Message::PeerListRequest,
            },
        );
        drain(s)
            .into_iter()
            .find_map(|o| match o {
                Output::Send {
                    msg: Message::PeerList { peers },
                    ..
                } => Some(peers),
                _ => None,
            })
            .expect("a list")
    }

    /// A connection from `remote` opens on `conn`; the seed's outputs.
    fn inbound(s: &mut SeedNode, conn: u64, remote: &str) -> Vec<Output> {
        s.handle(
            Time::ZERO,
            Input::Connected {
                conn: ConnId::new(conn),
                remote: a(remote),
                outbound: false,
            },
        );
        drain(s)
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

    fn trusting() -> SeedConfig {
        SeedConfig {
            removal: Removal::Trust,
            ..SeedConfig::default()
        }
    }

    #[test]
    fn with_trust_a_dead_node_is_removed_logged_and_forwarded_to_other_peers() {
        let mut s = seed(trusting());
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

    /// A seed with peers 5000..5002 registered on connections 1..3, and a report from 5000
    /// (on its connection) that 5002 is dead: its outputs.
    fn reported(s: &mut SeedNode) -> Vec<Output> {
        for (c, p) in [(1, 5000), (2, 5001), (3, 5002)] {
            connect_and_register(s, c, p);
        }
        drain(s);
        report(s, Time::ZERO)
    }

    fn report(s: &mut SeedNode, now: Time) -> Vec<Output> {
        let notice = DeadNode {
            dead: a("127.0.0.1:5002"),
            ts: Timestamp::parse("10").unwrap(),
            reporter: a("127.0.0.1:5000"),
        };
        s.handle(
            now,
            Input::Received {
                conn: ConnId::new(1),
                msg: Message::DeadNode(notice),
            },
        );
        drain(s)
    }

    /// A seed with `cfg` after [`reported`], whose check's dial to the accused was refused.
    /// `addr`'s dial is refused at `at`, dialed again, and refused again; the outputs of
    /// the second refusal.
    fn refused_twice(s: &mut SeedNode, addr: NodeAddr, at: Time) -> Vec<Output> {
        s.handle(at, Input::ConnectFailed { addr });
        let outs = drain(s);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr: a } if *a == addr)),
            "dialed once more: {outs:?}"
        );
        s.handle(Time(at.0 + 1), Input::ConnectFailed { addr });
        drain(s)
    }

    /// A check whose dials are refused twice (a first refusal is dialed again).
    fn refused_check(cfg: SeedConfig) -> (SeedNode, Vec<Output>) {
        let mut s = seed(cfg);
        reported(&mut s);
        let refused = Input::ConnectFailed {
            addr: a("127.0.0.1:5002"),
        };
        s.handle(Time(1), refused.clone());
        let _ = drain(&mut s);
        s.handle(Time(2), refused);
        let outs = drain(&mut s);
        (s, outs)
    }

    fn removed(outs: &[Output]) -> bool {
        outs.iter()
            .any(|o| matches!(o, Output::Event(Event::PeerRemovedBySeed { .. })))
    }

    #[test]
    fn with_verify_a_report_is_checked_before_anyone_is_removed() {
        let mut s = seed(SeedConfig::default());
        let outs = reported(&mut s);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == a("127.0.0.1:5002")))
        );
        assert!(!removed(&outs) && sends(&outs).is_empty(), "{outs:?}");
        assert_eq!(s.registered().len(), 3);
    }

    #[test]
    fn with_verify_an_accused_that_answers_stays_and_its_reporter_is_counted_then_held() {
        let mut s = seed(SeedConfig::default());
        reported(&mut s);
        let mut now = Time::ZERO;
        let mut dismissed_at = now;
        for round in 1..=DISMISSALS_MAX {
            let probe = ConnId::new(100 + u64::from(round));
            s.handle(
                now,
                Input::Connected {
                    conn: probe,
                    remote: a("127.0.0.1:5002"),
                    outbound: true,
                },
            );
            let asked = sends(&drain(&mut s));
            assert!(
                asked.len() == 1
                    && asked[0].0 == probe
                    && asked[0].1.starts_with("Liveness Request:"),
                "{asked:?}"
            );
            s.handle(
                now,
                Input::Received {
                    conn: probe,
                    msg: Message::LivenessReply {
                        ts: Timestamp::parse("1").unwrap(),
                        to: a("127.0.0.1:8080"),
                        from: a("127.0.0.1:5002"),
                    },
                },
            );
            let outs = drain(&mut s);
            assert!(
                outs.iter()
                    .any(|o| matches!(o, Output::Close { conn } if *conn == probe))
            );
            assert!(outs.iter().any(|o| matches!(o,
                Output::Event(Event::DeadReportDismissed { dismissed, .. }) if *dismissed == round)));
            assert!(!removed(&outs));
            assert_eq!(s.registered().len(), 3, "round {round}");
            dismissed_at = now;
            now = now + Duration::from_secs(1);
            let outs = report(&mut s, now);
            let checking = outs.iter().any(|o| matches!(o, Output::Connect { .. }));
            assert_eq!(checking, round < DISMISSALS_MAX, "round {round}: {outs:?}");
        }
        // Held, not dropped: the last report waits for the hold to end, then is checked.
        let until = dismissed_at + HOLD_FOR;
        s.handle(Time(until.0 - 1), Input::Timer(TimerId::Handshake));
        let outs = drain(&mut s);
        assert!(!outs.iter().any(|o| matches!(o, Output::Connect { .. })));
        s.handle(until, Input::Timer(TimerId::Handshake));
        let outs = drain(&mut s);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == a("127.0.0.1:5002"))),
            "{outs:?}"
        );
    }

    #[test]
    fn a_held_reporters_report_does_not_delay_a_true_report_of_the_same_peer() {
        // 70 peers registered; 5000 will be held, 5001 is not.
        let mut s = seed(SeedConfig::default());
        for i in 0..70u16 {
            connect_and_register(&mut s, u64::from(i) + 1, 5000 + i);
        }
        let _ = drain(&mut s);
        let at = |port: u16| NodeAddr::new([127, 0, 0, 1].into(), port);
        let mut now = Time::ZERO;
        let mut tick = || {
            now = now + Duration::from_millis(1);
            now
        };
        let say = |s: &mut SeedNode, now: Time, conn: u64, from: u16, dead: u16| {
            let notice = DeadNode {
                dead: at(dead),
                ts: Timestamp::parse("1").unwrap(),
                reporter: at(from),
            };
            let msg = Message::DeadNode(notice);
            s.handle(
                now,
                Input::Received {
                    conn: ConnId::new(conn),
                    msg,
                },
            );
            drain(s)
        };
        // The accused `dead` answers the check on `probe`.
        let answers = |s: &mut SeedNode, now: Time, probe: u64, dead: u16| {
            let conn = ConnId::new(probe);
            let connected = Input::Connected {
                conn,
                remote: at(dead),
                outbound: true,
            };
            s.handle(now, connected);
            let _ = drain(s);
            let msg = Message::LivenessReply {
                ts: Timestamp::parse("1").unwrap(),
                to: a("127.0.0.1:8080"),
                from: at(dead),
            };
            s.handle(now, Input::Received { conn, msg });
            drain(s)
        };
        // Two of 5000's reports are dismissed; a third is being checked.
        for (k, dead) in [5002u16, 5003].into_iter().enumerate() {
            let _ = say(&mut s, tick(), 1, 5000, dead);
            let _ = answers(&mut s, tick(), 1000 + k as u64, dead);
        }
        let _ = say(&mut s, tick(), 1, 5000, 5004);
        // 5001 fills every other check slot.
        for dead in 5005..5004 + PROBES_MAX as u16 {
            let _ = say(&mut s, tick(), 2, 5001, dead);
        }
        // Both accuse 5069, which waits for a slot; 5000 is not held yet.
        for from in [5000, 5001] {
            let outs = say(&mut s, tick(), u64::from(from - 4999), from, 5069);
            assert!(!outs.iter().any(|o| matches!(o, Output::Connect { .. })));
        }
        // 5004 answers: 5000's third dismissal, and it is held. The freed slot goes to 5069
        // at once, on 5001's report.
        let outs = answers(&mut s, tick(), 1002, 5004);
        assert!(
            outs.iter().any(|o| matches!(
                o,
                Output::Event(Event::DeadReportDismissed { dismissed: 3, .. })
            )),
            "{outs:?}"
        );
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == at(5069))),
            "{outs:?}"
        );
    }

    #[test]
    fn a_flood_of_registrations_from_one_ip_fills_only_its_share_of_a_list() {
        let k = 64;
        let mut s = seed(SeedConfig {
            connections_per_ip_max: 4096,
            peer_list_max: k,
            ..SeedConfig::default()
        });
        let mut conn = 0;
        let mut join = |s: &mut SeedNode, ip: [u8; 4], port: u16| {
            conn += 1;
            let id = ConnId::new(conn);
            let remote = NodeAddr::new(ip.into(), 40000);
            s.handle(
                Time::ZERO,
                Input::Connected {
                    conn: id,
                    remote,
                    outbound: false,
                },
            );
            let addr = NodeAddr::new(ip.into(), port);
            s.handle(
                Time::ZERO,
                Input::Received {
                    conn: id,
                    msg: Message::Register { addr },
                },
            );
            id
        };
        // 2 000 made-up addresses from one host, then 20 peers from their own hosts.
        for port in 0..2000 {
            join(&mut s, [10, 9, 9, 9], 1000 + port);
        }
        let real: Vec<NodeAddr> = (1..=20u8)
            .map(|h| NodeAddr::new([192, 168, 0, h].into(), 5000))
            .collect();
        let mut last = ConnId::new(0);
        for r in &real {
            last = join(&mut s, r.ip.octets(), r.port);
        }
        let _ = drain(&mut s);
        for _ in 0..5 {
            let list = ask_list(&mut s, last);
            assert_eq!(list.len(), k);
            for r in &real {
                assert!(list.iter().any(|p| p.addr == *r), "{r} missing");
            }
        }
        // More hosts than a list has entries: one entry each of distinct hosts, so the
        // flooding host gets one at most.
        for h in 21..=120u8 {
            last = join(&mut s, [192, 168, 1, h], 5000);
        }
        let _ = drain(&mut s);
        for _ in 0..5 {
            let list = ask_list(&mut s, last);
            assert_eq!(list.len(), k);
            let mut ips: Vec<_> = list.iter().map(|p| p.addr.ip).collect();
            ips.sort_unstable();
            ips.dedup();
            assert_eq!(ips.len(), k, "one entry a host");
        }
    }

    #[test]
    fn a_registration_is_listed_only_once_the_seed_reached_its_address() {
        let mut s = admitting(SeedConfig::default());
        let peer = a("127.0.0.1:5000");
        let reg = ConnId::new(1);
        s.handle(
            Time::ZERO,
            Input::Connected {
                conn: reg,
                remote: a("127.0.0.1:40000"),
                outbound: false,
            },
        );
        s.handle(
            Time(1),
            Input::Received {
                conn: reg,
                msg: Message::Register { addr: peer },
            },
        );
        let outs = drain(&mut s);
        assert!(
            sends(&outs).is_empty(),
            "not answered before the check: {outs:?}"
        );
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == peer))
        );
        assert!(s.registered().is_empty());
        // The dial-back connects and asks for a liveness reply; the reply admits it.
        let back = ConnId::new(2);
        s.handle(
            Time(2),
            Input::Connected {
                conn: back,
                remote: peer,
                outbound: true,
            },
        );
        let asked = sends(&drain(&mut s));
        assert!(
            asked.len() == 1 && asked[0].0 == back && asked[0].1.starts_with("Liveness Request:")
        );
        let reply = Message::LivenessReply {
            ts: Timestamp::parse("1").unwrap(),
            to: a("127.0.0.1:8080"),
            from: peer,
        };
        s.handle(
            Time(3),
            Input::Received {
                conn: back,
                msg: reply,
            },
        );
        let outs = drain(&mut s);
        assert_eq!(
            sends(&outs),
            vec![(reg, "registered successfully".to_string())]
        );
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Close { conn } if *conn == back))
        );
        assert_eq!(s.registered().len(), 1);

        // A made-up address: two refused dials, refused as unreachable, never listed.
        let fake = a("127.0.0.1:5999");
        let reg2 = ConnId::new(3);
        s.handle(
            Time(4),
            Input::Connected {
                conn: reg2,
                remote: a("127.0.0.1:40001"),
                outbound: false,
            },
        );
        s.handle(
            Time(5),
            Input::Received {
                conn: reg2,
                msg: Message::Register { addr: fake },
            },
        );
        let _ = drain(&mut s);
        let outs = refused_twice(&mut s, fake, Time(6));
        assert_eq!(
            sends(&outs),
            vec![(reg2, "registration refused:unreachable".to_string())]
        );
        assert_eq!(s.registered().len(), 1, "the fake is not listed");
    }

    #[test]
    fn a_listed_peer_whose_connection_closes_is_checked_and_removed_if_it_is_gone() {
        let mut s = admitting(SeedConfig::default());
        let peer = a("127.0.0.1:5000");
        let (reg, back) = (ConnId::new(1), ConnId::new(2));
        let remote = a("127.0.0.1:40000");
        s.handle(
            Time(1),
            Input::Connected {
                conn: reg,
                remote,
                outbound: false,
            },
        );
        s.handle(
            Time(2),
            Input::Received {
                conn: reg,
                msg: Message::Register { addr: peer },
            },
        );
        s.handle(
            Time(3),
            Input::Connected {
                conn: back,
                remote: peer,
                outbound: true,
            },
        );
        let reply = Message::LivenessReply {
            ts: Timestamp::parse("1").unwrap(),
            to: a("127.0.0.1:8080"),
            from: peer,
        };
        s.handle(
            Time(4),
            Input::Received {
                conn: back,
                msg: reply,
            },
        );
        let _ = drain(&mut s);
        assert_eq!(s.registered().len(), 1);
        // Its connection closes: the seed checks the address; two refusals remove it.
        s.handle(Time(5), Input::Closed { conn: reg });
        let outs = drain(&mut s);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == peer))
        );
        assert!(removed(&refused_twice(&mut s, peer, Time(6))));
        assert!(s.registered().is_empty());

        // With registrations listed at once (the reference's rule), a closed connection
        // removes no one and is not checked.
        let mut s = seed(SeedConfig::default());
        connect_and_register(&mut s, 1, 5000);
        let _ = drain(&mut s);
        s.handle(
            Time(1),
            Input::Closed {
                conn: ConnId::new(1),
            },
        );
        let outs = drain(&mut s);
        assert!(
            !outs.iter().any(|o| matches!(o, Output::Connect { .. })),
            "{outs:?}"
        );
        assert_eq!(s.registered().len(), 1);
    }

    #[test]
    fn a_check_whose_connection_is_reset_dials_again_and_a_second_refusal_removes() {
        // Closed before an answer: dialed again, and the answer dismisses the report.
        let mut s = seed(SeedConfig::default());
        reported(&mut s);
        let accused = a("127.0.0.1:5002");
        let probe = ConnId::new(100);
        let connected = |conn| Input::Connected {
            conn,
            remote: accused,
            outbound: true,
        };
        s.handle(Time(1), connected(probe));
        let _ = drain(&mut s);
        s.handle(Time(2), Input::Closed { conn: probe });
        let outs = drain(&mut s);
        assert!(!removed(&outs), "a reset is not a death: {outs:?}");
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == accused))
        );
        let again = ConnId::new(101);
        s.handle(Time(3), connected(again));
        let _ = drain(&mut s);
        let reply = Message::LivenessReply {
            ts: Timestamp::parse("1").unwrap(),
            to: a("127.0.0.1:8080"),
            from: accused,
        };
        s.handle(
            Time(4),
            Input::Received {
                conn: again,
                msg: reply,
            },
        );
        let outs = drain(&mut s);
        assert!(!removed(&outs) && s.registered().len() == 3, "{outs:?}");

        // Refused twice: removed.
        let mut s = seed(SeedConfig::default());
        reported(&mut s);
        s.handle(Time(1), Input::ConnectFailed { addr: accused });
        let outs = drain(&mut s);
        assert!(!removed(&outs) && outs.iter().any(|o| matches!(o, Output::Connect { .. })));
        s.handle(Time(2), Input::ConnectFailed { addr: accused });
        assert!(removed(&drain(&mut s)));
    }

    #[test]
    fn a_report_about_a_peer_this_seed_never_listed_is_passed_to_the_fellows() {
        let fellow = a("10.0.0.2:8081");
        let cfg = SeedConfig {
            fellows: vec![a("127.0.0.1:8080"), fellow],
            ..SeedConfig::default()
        };
        let mut s = seed(cfg);
        connect_and_register(&mut s, 1, 5000);
        let _ = drain(&mut s);
        let notice = DeadNode {
            dead: a("127.0.0.1:5999"),
            ts: Timestamp::parse("1").unwrap(),
            reporter: a("127.0.0.1:5000"),
        };
        s.handle(
            Time(1),
            Input::Received {
                conn: ConnId::new(1),
                msg: Message::DeadNode(notice),
            },
        );
        let outs = drain(&mut s);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == fellow)),
            "{outs:?}"
        );
    }

    #[test]
    fn with_verify_an_accused_that_cannot_be_reached_is_removed_and_others_told() {
        // Refused.
        let (s, outs) = refused_check(SeedConfig::default());
        assert!(removed(&outs));
        let told: Vec<ConnId> = sends(&outs).into_iter().map(|(c, _)| c).collect();
        assert_eq!(told, vec![ConnId::new(2)], "not the reporter, not the dead");
        assert_eq!(s.registered().len(), 2);

        // Connected, then silent past the deadline.
        let mut s = seed(SeedConfig::default());
        reported(&mut s);
        let probe = ConnId::new(100);
        s.handle(
            Time(1),
            Input::Connected {
                conn: probe,
                remote: a("127.0.0.1:5002"),
                outbound: true,
            },
        );
        drain(&mut s);
        let deadline = Time::ZERO + SeedConfig::default().probe_timeout;
        s.handle(Time(deadline.0 - 1), Input::Timer(TimerId::Handshake));
        assert!(!removed(&drain(&mut s)), "not before the deadline");
        s.handle(deadline, Input::Timer(TimerId::Handshake));
        let outs = drain(&mut s);
        assert!(removed(&outs));
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Close { conn } if *conn == probe))
        );
    }

    #[test]
    fn a_verified_removal_is_told_to_the_fellow_seeds_which_check_for_themselves() {
        let fellows = vec![a("127.0.0.1:8080"), a("10.0.0.2:8081")];
        let cfg = SeedConfig {
            fellows: fellows.clone(),
            ..SeedConfig::default()
        };
        let (mut s, outs) = refused_check(cfg.clone());
        assert!(removed(&outs));
        // Not itself (8080): the other fellow, dialed and told in the seed's own name.
        let dials: Vec<NodeAddr> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Connect { addr } => Some(*addr),
                _ => None,
            })
            .collect();
        assert_eq!(dials, vec![a("10.0.0.2:8081")]);
        let link = ConnId::new(200);
        s.handle(
            Time(2),
            Input::Connected {
                conn: link,
                remote: a("10.0.0.2:8081"),
                outbound: true,
            },
        );
        let outs = drain(&mut s);
        assert_eq!(
            sends(&outs),
            vec![(link, "Dead Node:127.0.0.1:5002:10:127.0.0.1:8080".into())]
        );
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Close { conn } if *conn == link))
        );

        // The fellow's side: the notice, from the telling seed's IP, starts its own check.
        for (conn, remote, reporter, checks) in [
            (7, "127.0.0.1:45000", "127.0.0.1:8080", true),
            // Not a fellow, or not from its IP: as any unregistered report, ignored.
            (8, "127.0.0.1:45001", "127.0.0.1:9999", false),
            (9, "10.9.9.9:45002", "127.0.0.1:8080", false),
        ] {
            let fellow_cfg = SeedConfig {
                admission: Admission::Trust,
                ..cfg.clone()
            };
            let mut f = SeedNode::new(a("10.0.0.2:8081"), fellow_cfg, ChaCha8Rng::seed_from_u64(2));
            f.handle(Time::ZERO, Input::Start);
            connect_and_register(&mut f, 1, 5002);
            f.handle(
                Time(3),
                Input::Connected {
                    conn: ConnId::new(conn),
                    remote: a(remote),
                    outbound: false,
                },
            );
            drain(&mut f);
            f.handle(
                Time(3),
                Input::Received {
                    conn: ConnId::new(conn),
                    msg: Message::DeadNode(DeadNode {
                        dead: a("127.0.0.1:5002"),
                        ts: Timestamp::parse("10").unwrap(),
                        reporter: a(reporter),
                    }),
                },
            );
            let outs = drain(&mut f);
            let checking = outs
                .iter()
                .any(|o| matches!(o, Output::Connect { addr } if *addr == a("127.0.0.1:5002")));
            assert_eq!(checking, checks, "{reporter} from {remote}: {outs:?}");
            assert!(!removed(&outs), "a notice is never a verdict");
        }
    }

    #[test]
    fn a_registration_is_bound_to_its_connections_ip_and_to_its_connection() {
        let mut s = seed(SeedConfig::default());
        connect_and_register(&mut s, 1, 5000);
        let open = |s: &mut SeedNode, conn: u64, remote: &str| {
            inbound(s, conn, remote);
        };
        let register = |s: &mut SeedNode, conn: u64, addr: &str| {
            s.handle(
                Time::ZERO,
                Input::Received {
                    conn: ConnId::new(conn),
                    msg: Message::Register { addr: a(addr) },
                },
            );
            sends(&drain(s)).pop().map(|(_, m)| m).unwrap_or_default()
        };
        open(&mut s, 2, "127.0.0.1:41000");
        drain(&mut s);
        assert_eq!(
            register(&mut s, 2, "10.0.0.9:5001"),
            "registration refused:not your address"
        );
        assert_eq!(
            register(&mut s, 2, "127.0.0.1:5000"),
            "registration refused:registered on another connection"
        );
        assert_eq!(
            register(&mut s, 2, "127.0.0.1:5001"),
            "registered successfully"
        );
        assert_eq!(
            register(&mut s, 2, "127.0.0.1:5001"),
            "registered successfully",
            "a refresh"
        );
        assert_eq!(
            register(&mut s, 2, "127.0.0.1:5002"),
            "registration refused:one registration per connection"
        );
        assert_eq!(s.registered().len(), 2);
        // Once its connection is gone, a registration may move (a restarted peer).
        s.handle(
            Time::ZERO,
            Input::Closed {
                conn: ConnId::new(1),
            },
        );
        open(&mut s, 3, "127.0.0.1:41001");
        drain(&mut s);
        assert_eq!(
            register(&mut s, 3, "127.0.0.1:5000"),
            "registered successfully"
        );
        // With trust_advertised_ip, any IP.
        let mut t = seed(SeedConfig {
            trust_advertised_ip: true,
            ..SeedConfig::default()
        });
        open(&mut t, 1, "127.0.0.1:41000");
        drain(&mut t);
        assert_eq!(
            register(&mut t, 1, "10.0.0.9:5001"),
            "registered successfully"
        );
    }

    #[test]
    fn a_connection_that_spoke_once_and_registered_nothing_is_closed_at_the_idle_bound() {
        let mut s = seed(SeedConfig::default());
        connect_and_register(&mut s, 1, 5000);
        s.handle(
            Time::ZERO,
            Input::Connected {
                conn: ConnId::new(2),
                remote: a("127.0.0.1:41000"),
                outbound: false,
            },
        );
        s.handle(
            Time(1),
            Input::Received {
                conn: ConnId::new(2),
                msg: Message::PeerListRequest,
            },
        );
        drain(&mut s);
        let bound = Time(1) + SeedConfig::default().idle_timeout;
        // The handshake deadline passes: it spoke, so it stays.
        s.handle(Time(bound.0 - 1), Input::Timer(TimerId::Handshake));
        assert!(
            !drain(&mut s)
                .iter()
                .any(|o| matches!(o, Output::Close { .. }))
        );
        s.handle(bound, Input::Timer(TimerId::Handshake));
        let outs = drain(&mut s);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Close { conn } if *conn == ConnId::new(2)))
        );
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Event(Event::IdleTimedOut { .. })))
        );
        // The registered connection is not bounded.
        assert!(
            !outs
                .iter()
                .any(|o| matches!(o, Output::Close { conn } if *conn == ConnId::new(1)))
        );
        s.handle(
            bound + Duration::from_secs(3600),
            Input::Timer(TimerId::Handshake),
        );
        assert!(
            !drain(&mut s)
                .iter()
                .any(|o| matches!(o, Output::Close { .. }))
        );
    }

    #[test]
    fn one_ip_gets_at_most_its_share_of_connections() {
        let mut s = seed(SeedConfig {
            connections_per_ip_max: 2,
            ..SeedConfig::default()
        });
        let mut connect = |conn: u64, remote: &str| {
            let outs = inbound(&mut s, conn, remote);
            let refused = sends(&outs)
                .iter()
                .any(|(c, m)| *c == ConnId::new(conn) && m == "Connection refused:busy");
            (refused, outs)
        };
        assert!(!connect(1, "10.0.0.1:40001").0);
        assert!(!connect(2, "10.0.0.1:40002").0);
        let (refused, outs) = connect(3, "10.0.0.1:40003");
        assert!(refused);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Event(Event::TooManyFromIp { limit: 2, .. })))
        );
        assert!(!connect(4, "10.0.0.2:40001").0, "another host is served");
        s.handle(
            Time::ZERO,
            Input::Closed {
                conn: ConnId::new(1),
            },
        );
        drain(&mut s);
        let again = inbound(&mut s, 5, "10.0.0.1:40005");
        assert!(
            sends(&again).is_empty(),
            "a slot freed by a close is reused"
        );
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
