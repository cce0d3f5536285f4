//! `PeerNode`: registers with a majority of seeds, keeps power-law neighbour links, floods
//! gossip once per message, and watches its neighbours with liveness rounds.
//!
//! Split by concern: [`bootstrap`] (seeds), [`neighbours`] (handshakes and slots),
//! [`gossip`] (origination, dedup, forwarding) and [`liveness`] (rounds and dead reports).

mod bootstrap;
mod gossip;
mod known;
mod liveness;
mod neighbours;

pub use gossip::originated_message;

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use crate::addr::NodeAddr;
use crate::digest::DigestMemo;
use crate::limits::CONNECTIONS_MAX;
use crate::node::{ConnId, Event, Input, Node, Outbox, Output, TimerId};
use crate::rng::CompactRng;
use crate::time::{Duration, Time};
use crate::topology::Topology;
use crate::vecmap::{VecMap, VecSet};
use crate::wire::{Message, Wire, WireError};

use bootstrap::SeedLink;
use gossip::SeenSet;
use known::Known;
use neighbours::Neighbour;

/// A peer's protocol settings. The defaults are the reference implementation's values.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerConfig {
    /// Time between two originated gossip messages (5 s).
    pub gossip_interval: Duration,
    /// Gossip messages each peer originates (10).
    pub gossip_count: u32,
    /// Time between liveness rounds (13 s).
    pub liveness_interval: Duration,
    /// Consecutive missed replies after which a neighbour is dead (3).
    pub misses_max: u32,
    /// How long a seen-set entry is kept (10 min).
    pub seen_ttl: Duration,
    /// How long a neighbour handshake may take (10 s).
    pub handshake_timeout: Duration,
    /// First back-off before an unreachable seed is tried again; doubles each time (1 s).
    pub seed_retry: Duration,
    /// Malformed frames tolerated on one connection before it is closed (3; at most 255 are
    /// counted, so a larger value acts as 255).
    pub bad_frames_max: u32,
    /// The neighbour-selection policy.
    pub topology: Topology,
    /// Most connections open at once; more inbound ones are refused with
    /// `Connection refused:busy`.
    pub connections_max: usize,
    /// Added to `now` for wire timestamps: the UNIX time of the driver's epoch, in µs
    /// (0 in the simulator, whose timestamps are seconds of virtual time).
    pub wall_offset_micros: u64,
    /// The wire spoken (`line`). On the reference wire a peer asks a seed for its list only
    /// once registered (the original reads one message a `recv`), answers each gossip with
    /// `forwarding`, re-stamps what it forwards, knows a message by its body, and names its
    /// messages `message N`.
    pub wire: Wire,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            gossip_interval: Duration::from_secs(5),
            gossip_count: 10,
            liveness_interval: Duration::from_secs(13),
            misses_max: 3,
            seen_ttl: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
            seed_retry: Duration::from_secs(1),
            bad_frames_max: 3,
            topology: Topology::default(),
            connections_max: CONNECTIONS_MAX,
            wall_offset_micros: 0,
            wire: Wire::Line,
        }
    }
}

/// What the peers of one run share: their settings, the seeds of `config.txt` and the
/// digest memo.
pub struct PeerContext {
    /// The protocol settings.
    pub cfg: PeerConfig,
    /// The seeds of `config.txt`.
    pub seeds: Vec<NodeAddr>,
    /// The dedup digests, shared by every peer of the process.
    pub memo: Arc<DigestMemo>,
}

/// What an open connection is to this peer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// A connection to one of the chosen seeds.
    Seed(NodeAddr),
    /// We dialed `NodeAddr` and sent hello; waiting for its hello or refusal.
    HelloSent(NodeAddr),
    /// Someone dialed us from this socket address; waiting for their hello.
    Inbound(NodeAddr),
    /// An established neighbour link.
    Neighbour(NodeAddr),
}

impl Role {
    /// Who is at the other end: its listening address, or for an inbound connection before
    /// its hello, its socket address.
    fn remote(self) -> NodeAddr {
        match self {
            Role::Seed(a) | Role::HelloSent(a) | Role::Inbound(a) | Role::Neighbour(a) => a,
        }
    }
}

/// An open connection that is not a neighbour link: its [`Role`] in 8 bytes (with its id, a
/// 16-byte table entry). A neighbour's connection is held by its [`Neighbour`] entry alone.
#[derive(Debug)]
struct Conn {
    remote: NodeAddr,
    kind: RoleKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum RoleKind {
    Seed,
    HelloSent,
    Inbound,
}

impl Conn {
    fn new(role: Role) -> Self {
        let (kind, remote) = match role {
            Role::Seed(a) => (RoleKind::Seed, a),
            Role::HelloSent(a) => (RoleKind::HelloSent, a),
            // Not held here (see above); never made.
            Role::Inbound(a) | Role::Neighbour(a) => (RoleKind::Inbound, a),
        };
        Conn { remote, kind }
    }

    fn role(&self) -> Role {
        let a = self.remote;
        match self.kind {
            RoleKind::Seed => Role::Seed(a),
            RoleKind::HelloSent => Role::HelloSent(a),
            RoleKind::Inbound => Role::Inbound(a),
        }
    }
}

/// The peer machine.
///
/// Its tables are sorted vectors ([`VecMap`], [`VecSet`]), iterated in the same order as the
/// B-trees they replace, and its configuration, seed list and RNG are shared or compact: a
/// simulation holds a million of these.
#[repr(C)]
pub struct PeerNode {
    // The fields a gossip or liveness message touches come first, so that they share a few
    // adjacent cache lines (the layout is fixed for that, not for any interface).
    now: Time,
    /// Settings, seed list and digest memo: one allocation shared by all peers of a run.
    ctx: Arc<PeerContext>,
    conns: VecMap<ConnId, Conn>,
    out: Outbox,
    seen: SeenSet,
    neighbours: VecMap<NodeAddr, Neighbour>,
    addr: NodeAddr,
    bootstrapped: bool,
    originated: u32,
    capacity: u32,
    rng: CompactRng,
    /// The tables of joining the overlay, held only while one of them holds something.
    joining: Option<Box<Joining>>,
    seeds: Vec<SeedLink>,
    /// Known peers, and the ones not yet tried since the last refresh (in random order).
    known: Known,
}

/// What a peer holds while it joins the overlay or refills a slot; most peers, most of the
/// time, hold none of it, and keep 8 bytes for it instead of 72.
#[derive(Debug, Default)]
struct Joining {
    /// Deadlines of connections still in their handshake.
    handshakes: VecMap<ConnId, Time>,
    /// Degrees of known peers as the seeds' lists last gave them (preferential attachment).
    degrees: VecMap<NodeAddr, u32>,
    /// Peers we asked to be neighbours and have no answer from yet.
    dialing: VecSet<NodeAddr>,
    /// Malformed frames so far on a connection that sent any (counted up to 255).
    bad_frames: VecMap<ConnId, u8>,
    /// Dead-node reports owed to a chosen seed that was not registered when they were made
    /// (its connection was reset, or it closed it, as the original's seed does after a
    /// removal): sent when it registers us again, at most [`UNREPORTED_MAX`] of them.
    unreported: Vec<(NodeAddr, crate::wire::DeadNode)>,
}

/// Reports a peer keeps for a seed while none is registered.
pub const UNREPORTED_MAX: usize = 64;

impl Joining {
    fn is_empty(&self) -> bool {
        self.handshakes.is_empty()
            && self.degrees.is_empty()
            && self.dialing.is_empty()
            && self.bad_frames.is_empty()
            && self.unreported.is_empty()
    }
}

/// Nothing of joining held.
static NOT_JOINING: Joining = Joining {
    handshakes: VecMap::new(),
    degrees: VecMap::new(),
    dialing: VecSet::new(),
    bad_frames: VecMap::new(),
    unreported: Vec::new(),
};

/// What `joining` holds (a function of the field alone, so that other fields can be borrowed
/// meanwhile).
fn joining(j: &Option<Box<Joining>>) -> &Joining {
    j.as_deref().unwrap_or(&NOT_JOINING)
}

impl PeerNode {
    /// A peer listening at `addr` that knows the seeds of `config.txt`.
    pub fn new(
        addr: NodeAddr,
        seeds: Vec<NodeAddr>,
        cfg: PeerConfig,
        rng: ChaCha8Rng,
        memo: Arc<DigestMemo>,
    ) -> Self {
        Self::with_shared(addr, seeds.into(), Arc::new(cfg), rng, memo)
    }

    /// As [`PeerNode::new`], with the seed list and settings shared with other peers.
    pub fn with_shared(
        addr: NodeAddr,
        seeds: Arc<[NodeAddr]>,
        cfg: Arc<PeerConfig>,
        rng: ChaCha8Rng,
        memo: Arc<DigestMemo>,
    ) -> Self {
        let ctx = PeerContext {
            cfg: PeerConfig::clone(&cfg),
            seeds: seeds.to_vec(),
            memo,
        };
        Self::with_context(addr, Arc::new(ctx), CompactRng::new(&rng))
    }

    /// As [`PeerNode::new`], with everything the peers of a run share in one allocation (what
    /// a simulator of a million peers uses: 8 bytes a peer).
    pub fn with_context(addr: NodeAddr, ctx: Arc<PeerContext>, rng: CompactRng) -> Self {
        let same = ctx.memo.set_identity(ctx.cfg.wire);
        debug_assert!(same, "one memo serves peers of one wire");
        // Capacities are at most `NEIGHBOURS_MAX`.
        let capacity = u32::try_from(ctx.cfg.topology.capacity(addr)).unwrap_or(u32::MAX);
        PeerNode {
            addr,
            capacity,
            rng,
            out: Outbox::default(),
            now: Time::ZERO,
            conns: VecMap::new(),
            joining: None,
            seeds: Vec::new(),
            bootstrapped: false,
            known: Known::default(),
            neighbours: VecMap::new(),
            originated: 0,
            seen: SeenSet::default(),
            ctx,
        }
    }

    /// The joining tables, to add to.
    fn joining_mut(&mut self) -> &mut Joining {
        self.joining.get_or_insert_with(Box::default)
    }

    /// Takes from the joining tables, if there are any.
    fn unjoin(&mut self, f: impl FnOnce(&mut Joining)) {
        if let Some(j) = self.joining.as_mut() {
            f(j);
        }
    }

    /// Where the peer listens.
    pub fn addr(&self) -> NodeAddr {
        self.addr
    }

    /// Most neighbours this peer keeps.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Current neighbours, in address order.
    pub fn neighbours(&self) -> impl Iterator<Item = NodeAddr> + '_ {
        self.neighbours.keys().copied()
    }

    /// Peers known from the seeds' lists.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// Starts loading the machine's own fields that any input reads or writes (a cache hint;
    /// the hot ones come first and span a few lines).
    pub fn prefetch(&self) {
        use crate::prefetch::prefetch;
        prefetch(&self.now);
        prefetch(&self.out);
        self.out.prefetch();
        prefetch(&self.seen);
        prefetch(&self.neighbours);
    }

    /// Starts loading the tables that a gossip message with memo ordinal `ord` will read
    /// (a cache hint for drivers that know what comes next; it changes nothing).
    pub fn prefetch_for_gossip(&self, ord: u64) {
        self.neighbours.prefetch();
        self.seen.prefetch(ord);
    }

    /// Starts loading the neighbour table if a gossip message with memo ordinal `ord` would
    /// be new here, so flooded on (a cache hint, best called after
    /// [`PeerNode::prefetch_for_gossip`] had time to bring the seen-set in).
    pub fn prefetch_flood(&self, ord: u64) {
        if !self.seen.contains(ord) {
            self.neighbours.prefetch();
        }
    }

    /// Starts loading the connection table that any received message reads (a cache hint).
    pub fn prefetch_for_message(&self) {
        self.conns.prefetch();
    }

    /// The outputs waiting for [`Node::poll_output`], in order, without taking them (a
    /// driver may look ahead, for example to start loading what they will touch).
    pub fn queued_outputs(&self) -> impl Iterator<Item = &Output> {
        self.out.queued()
    }

    /// Entries in the seen-set.
    pub fn seen(&self) -> usize {
        self.seen.len()
    }

    /// What `conn` is to us: a table entry, or a neighbour's link.
    fn role_of(&self, conn: ConnId) -> Option<Role> {
        if let Some(c) = self.conns.get(&conn) {
            return Some(c.role());
        }
        self.neighbour_on(conn).map(Role::Neighbour)
    }

    /// The neighbour whose open link is `conn` (a scan: a peer has tens of neighbours, and
    /// at most [`crate::limits::NEIGHBOURS_MAX`]; measured on a 10 000-peer preferential
    /// network, whose hubs hold hundreds, the scans cost about 4 % of the run).
    fn neighbour_on(&self, conn: ConnId) -> Option<NodeAddr> {
        self.neighbours
            .iter()
            .find(|(_, n)| n.conn() == Some(conn))
            .map(|(a, _)| *a)
    }

    /// Connections open: seeds, dials, handshakes and neighbour links.
    pub fn connections(&self) -> usize {
        self.open_connections()
    }

    /// Whether the connections open reach the limit. Table entries and neighbours bound
    /// them from above at the cost of two lengths; the links are counted only when that
    /// bound reaches the limit (counting them on every connection was 4 % of a large
    /// network's bootstrap).
    fn at_connection_limit(&self) -> bool {
        let max = self.ctx.cfg.connections_max;
        self.conns.len() + self.neighbours.len() >= max && self.open_connections() >= max
    }

    /// Connections open: table entries and neighbour links.
    fn open_connections(&self) -> usize {
        let links = self.neighbours.values().filter(|n| n.conn().is_some());
        self.conns.len() + links.count()
    }

    fn received(&mut self, conn: ConnId, msg: Message) {
        let Some(role) = self.role_of(conn) else {
            debug_assert!(false, "driver fed a message on {conn}, which is not open");
            return;
        };
        match (role, msg) {
            (_, Message::LivenessRequest { ts, addr }) => {
                self.out.send(
                    conn,
                    Message::LivenessReply {
                        ts,
                        to: addr,
                        from: self.addr,
                    },
                );
            }
            (Role::Seed(seed), Message::Registered) => self.registered(seed),
            (Role::Seed(seed), Message::RegistrationRefused { reason }) => {
                // Closed and retried with back-off: a refusal for a registration still live
                // on an old connection passes once the seed sees that one close.
                self.out
                    .event(Event::SeedRefusedRegistration { seed, reason });
                self.close(conn);
            }
            (Role::Seed(seed), Message::PeerList { peers }) => self.peer_list(seed, peers),
            (Role::Seed(_), Message::DeadNode(d)) => self.dead_notice(d.dead, d.reporter),
            (Role::Inbound(_), Message::Hello { addr }) => self.hello_in(conn, addr),
            (Role::HelloSent(peer), Message::Hello { .. }) => self.hello_accepted(conn, peer),
            (Role::HelloSent(peer), Message::Refuse { reason }) => self.refused(conn, peer, reason),
            (Role::Neighbour(peer), Message::Gossip(g)) => {
                if self.ctx.cfg.wire == Wire::Reference {
                    // The original answers every gossip frame, duplicates included.
                    self.out.send(conn, Message::Forwarding);
                }
                self.gossip_in(peer, g);
            }
            (Role::Neighbour(_), Message::Forwarding) => {}
            (Role::Neighbour(peer), Message::LivenessReply { .. }) => self.reply_in(peer),
            (role, other) => {
                self.out.event(Event::UnexpectedMessage {
                    from: role.remote(),
                    kind: other.kind(),
                });
            }
        }
    }

    fn connected(&mut self, conn: ConnId, remote: NodeAddr, outbound: bool) {
        if self.at_connection_limit() {
            if outbound {
                self.out.push(Output::Close { conn });
                self.dial_ended(remote);
            } else {
                self.out
                    .refuse_busy(conn, remote, self.ctx.cfg.connections_max);
            }
            return;
        }
        if !outbound {
            self.conns.insert(conn, Conn::new(Role::Inbound(remote)));
            self.expect_handshake(conn);
        } else if self.ctx.seeds.contains(&remote) {
            self.seed_connected(conn, remote);
        } else {
            self.dialed(conn, remote);
        }
    }

    fn connect_failed(&mut self, addr: NodeAddr) {
        if self.ctx.seeds.contains(&addr) {
            self.seed_failed(addr);
        } else {
            self.dial_ended(addr);
        }
    }

    /// The connection is gone (closed by the other side, or by us).
    fn conn_gone(&mut self, conn: ConnId) {
        self.unjoin(|j| {
            j.handshakes.remove(&conn);
            j.bad_frames.remove(&conn);
        });
        let role = match self.conns.remove(&conn) {
            Some(c) => c.role(),
            None => match self.neighbour_on(conn) {
                Some(peer) => Role::Neighbour(peer),
                None => return,
            },
        };
        match role {
            Role::Seed(seed) => self.seed_lost(seed),
            Role::HelloSent(peer) => self.dial_ended(peer),
            Role::Inbound(_) => {}
            Role::Neighbour(peer) => self.neighbour_disconnected(peer, conn),
        }
    }

    /// Close a connection ourselves and forget it.
    fn close(&mut self, conn: ConnId) {
        self.out.push(Output::Close { conn });
        self.conn_gone(conn);
    }

    fn malformed(&mut self, conn: ConnId, error: WireError) {
        let Some(role) = self.role_of(conn) else {
            return;
        };
        let from = role.remote();
        let bad = {
            let count = self
                .joining_mut()
                .bad_frames
                .get(&conn)
                .copied()
                .unwrap_or(0);
            let count = count.saturating_add(1);
            self.joining_mut().bad_frames.insert(conn, count);
            count
        };
        let closed = u32::from(bad) >= self.ctx.cfg.bad_frames_max.min(u8::MAX.into());
        self.out.event(Event::MalformedFrame {
            from,
            error: Box::new(error),
            closed,
        });
        if closed {
            self.close(conn);
        }
    }

    /// Whether a `Timer(timer)` input at `now` would act (the simulator's processing model
    /// asks before it queues an origination).
    pub fn timer_due(&self, timer: TimerId, now: Time) -> bool {
        self.out.is_due(timer, now)
    }

    fn timer(&mut self, timer: TimerId) {
        if !self.out.take_due(timer, self.now) {
            return; // late, duplicate or re-armed: the table says it is not due
        }
        match timer {
            TimerId::Gossip => self.originate_next(),
            TimerId::Liveness => self.liveness_round(),
            TimerId::SeenSweep => self.sweep_seen(),
            TimerId::Handshake => self.handshake_deadlines(),
            TimerId::SeedRetry => self.retry_seeds(),
        }
    }
}

impl Node for PeerNode {
    fn handle(&mut self, now: Time, input: Input) {
        debug_assert!(
            now >= self.now,
            "time went backwards: {now:?} after {:?}",
            self.now
        );
        self.now = now;
        match input {
            Input::Start => self.start(),
            Input::Connected {
                conn,
                remote,
                outbound,
            } => self.connected(conn, remote, outbound),
            Input::ConnectFailed { addr } => self.connect_failed(addr),
            Input::Received { conn, msg } => self.received(conn, msg),
            Input::Malformed { conn, error } => self.malformed(conn, error),
            Input::Closed { conn } => self.conn_gone(conn),
            Input::Timer(t) => self.timer(t),
            Input::Originate { body } => self.originate(&body),
        }
        if self.joining.as_ref().is_some_and(|j| j.is_empty()) {
            self.joining = None;
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }
}

#[cfg(test)]
mod tests;
