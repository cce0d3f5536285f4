//! The sans-IO contract shared by every machine and every driver (DESIGN.md).
//!
//! A driver feeds an [`Input`] with [`Node::handle`], then drains [`Node::poll_output`] until it
//! returns `None`, doing what each [`Output`] asks. Machines never touch a socket, a clock or
//! a thread, so the simulator and the TCP backend drive the very same code.

use core::fmt;
use std::sync::Arc;

use crate::addr::NodeAddr;
use crate::time::Time;
use crate::wire::{Gossip, Message, RefuseReason, RegisterRefusal, WireError};

/// A connection, named by the driver. Unique per node for the node's lifetime.
///
/// A number, held as its big-endian bytes: a byte-aligned id lets a machine's table entry
/// (an id and an 8-byte record) pack into 16 bytes, where a `u64` would pad it to 24, and a
/// simulation holds ten of those per peer. It orders as the number does.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId([u8; 8]);

impl ConnId {
    /// The connection numbered `n`.
    pub const fn new(n: u64) -> Self {
        ConnId(n.to_be_bytes())
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

impl PartialOrd for ConnId {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ConnId {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.get().cmp(&other.get())
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId::new({})", self.get())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.get())
    }
}

/// The kinds of timer a node arms. One pending deadline per kind: the node keeps its own
/// table and ignores a `Timer` input that is not due.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum TimerId {
    /// Originate the next gossip message.
    Gossip,
    /// One liveness round for all neighbours.
    Liveness,
    /// Expire old entries of the seen-set.
    SeenSweep,
    /// Close handshakes (and silent inbound connections) past their deadline.
    Handshake,
    /// Retry seeds that could not be reached.
    SeedRetry,
}

impl TimerId {
    /// Every timer kind, for tables indexed by kind.
    pub const ALL: [TimerId; 5] = [
        TimerId::Gossip,
        TimerId::Liveness,
        TimerId::SeenSweep,
        TimerId::Handshake,
        TimerId::SeedRetry,
    ];

    /// Index into a table of [`TimerId::ALL`].
    pub const fn index(self) -> usize {
        match self {
            TimerId::Gossip => 0,
            TimerId::Liveness => 1,
            TimerId::SeenSweep => 2,
            TimerId::Handshake => 3,
            TimerId::SeedRetry => 4,
        }
    }
}

/// Something that happened to a node, fed in by its driver.
#[derive(Clone, Debug)]
pub enum Input {
    /// The node boots. Feed once, first.
    Start,
    /// A connection opened: `outbound` answers an [`Output::Connect`] to `remote` (a listening
    /// address); an inbound one carries the remote's socket address, which may not be a
    /// listening address.
    Connected {
        /// The driver's name for the connection.
        conn: ConnId,
        /// The other end.
        remote: NodeAddr,
        /// Whether this node asked for it.
        outbound: bool,
    },
    /// An [`Output::Connect`] to `addr` failed.
    ConnectFailed {
        /// The address that could not be reached.
        addr: NodeAddr,
    },
    /// A whole frame arrived and decoded.
    Received {
        /// Where it came from.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// A frame arrived that did not decode.
    Malformed {
        /// Where it came from.
        conn: ConnId,
        /// What was wrong with it.
        error: WireError,
    },
    /// The other side closed or reset the connection. The connection is gone.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A timer armed with [`Output::SetTimer`] may be due. It may come late, twice, or after
    /// re-arming; the node checks its own table.
    Timer(TimerId),
    /// The application asks a peer to originate a gossip message with this body now
    /// (used by the benchmark and by a person typing into a running peer). Seeds ignore it.
    Originate {
        /// The message body; line breaks are replaced by spaces.
        body: String,
    },
}

/// Something a node wants its driver to do.
#[derive(Clone, Debug)]
pub enum Output {
    /// Open a connection to `addr`; answer later with `Connected { outbound: true }` or
    /// `ConnectFailed`.
    Connect {
        /// The listening address to dial.
        addr: NodeAddr,
    },
    /// Write `msg` on `conn` (in order after earlier sends on it). If the connection is gone,
    /// drop it: the node hears of that through `Closed`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// Close `conn` after what was already sent on it; do not feed `Closed` for it.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Feed `Timer(timer)` at `at` or later. Replaces the earlier deadline of that kind.
    SetTimer {
        /// When.
        at: Time,
        /// Which timer.
        timer: TimerId,
    },
    /// Record this; it changes nothing in the network.
    Event(Event),
}

/// The sans-IO surface of a protocol machine.
pub trait Node {
    /// Feed one input that happened at `now`.
    fn handle(&mut self, now: Time, input: Input);
    /// Drain what the node wants done, in order. Call until `None` after every `handle`.
    #[must_use]
    fn poll_output(&mut self) -> Option<Output>;
}

/// Why a neighbour was dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RemovalReason {
    /// Liveness declared it dead.
    Dead,
    /// Its handshake did not finish in time.
    HandshakeTimeout,
}

/// What happened, for logs, CSV and checks. Every output file is made from these.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A seed started listening.
    SeedStarted,
    /// A peer started; `capacity` is its neighbour limit.
    PeerStarted {
        /// Most neighbours it will keep.
        capacity: usize,
    },
    /// The peer picked these seeds to register with.
    SeedsChosen {
        /// The chosen seeds.
        seeds: Vec<NodeAddr>,
    },
    /// A seed could not be reached; `retry_in_s` is `None` when the peer gives up on it.
    SeedUnreachable {
        /// The seed.
        seed: NodeAddr,
        /// Attempts so far.
        attempt: u32,
        /// Seconds until the next try.
        retry_in_s: Option<f64>,
    },
    /// A connection to a seed closed.
    SeedLost {
        /// The seed.
        seed: NodeAddr,
    },
    /// The seed confirmed the registration.
    Registered {
        /// The seed.
        seed: NodeAddr,
    },
    /// A seed's peer list arrived.
    PeerListReceived {
        /// The seed.
        seed: NodeAddr,
        /// Entries in it.
        entries: usize,
        /// Peers known after the union.
        known: usize,
    },
    /// A neighbour link is up.
    NeighbourAdded {
        /// The neighbour.
        peer: NodeAddr,
        /// Degree after.
        degree: usize,
    },
    /// A neighbour link is gone.
    NeighbourRemoved {
        /// The neighbour.
        peer: NodeAddr,
        /// Degree after.
        degree: usize,
        /// Why.
        reason: RemovalReason,
    },
    /// A neighbour the peer asked for said no.
    ConnectionRefused {
        /// Who refused.
        peer: NodeAddr,
        /// Why.
        reason: RefuseReason,
    },
    /// The peer refused a hello.
    RefusedHello {
        /// Who asked.
        peer: NodeAddr,
        /// Why.
        reason: RefuseReason,
    },
    /// The peer created a gossip message.
    GossipOriginated {
        /// The message.
        message: Arc<Gossip>,
        /// 1 for the first message this peer originates.
        seq: u32,
        /// Neighbours it was sent to.
        sent_to: usize,
    },
    /// A gossip message arrived for the first time.
    GossipDelivered {
        /// The message.
        message: Arc<Gossip>,
        /// The neighbour it first came from.
        first_from: NodeAddr,
        /// Neighbours it was forwarded to.
        forwarded_to: usize,
    },
    /// A gossip message arrived again and was dropped.
    DuplicateDropped {
        /// The message.
        message: Arc<Gossip>,
        /// The neighbour it came from.
        from: NodeAddr,
    },
    /// A neighbour did not answer a liveness request in time (or its connection is closed).
    LivenessMissed {
        /// The neighbour.
        peer: NodeAddr,
        /// Consecutive misses.
        misses: u32,
    },
    /// The peer decided that a neighbour is dead.
    PeerDeclaredDead {
        /// The neighbour.
        peer: NodeAddr,
    },
    /// The peer sent a `Dead Node` report to a seed.
    DeadNodeReported {
        /// The dead peer.
        dead: NodeAddr,
        /// The seed told.
        seed: NodeAddr,
    },
    /// A seed passed on a `Dead Node` notice to this peer.
    DeadNodeNotice {
        /// The dead peer.
        dead: NodeAddr,
        /// Who reported it.
        reporter: NodeAddr,
    },
    /// A seed registered (or refreshed) a peer.
    PeerRegistered {
        /// The peer.
        peer: NodeAddr,
        /// Whether it was registered already.
        refreshed: bool,
    },
    /// A seed stored a registered peer's degree report.
    DegreeRecorded {
        /// The peer.
        peer: NodeAddr,
        /// Its reported neighbour count.
        degree: u32,
    },
    /// A peer told its seeds its new degree (preferential attachment).
    DegreeAdvertised {
        /// Its neighbour count.
        degree: usize,
        /// Seeds told.
        seeds: usize,
    },
    /// A seed sent its peer list.
    PeerListServed {
        /// Entries sent.
        entries: usize,
        /// Peers registered in all.
        registered: usize,
    },
    /// A seed removed a peer reported dead.
    PeerRemovedBySeed {
        /// The dead peer.
        dead: NodeAddr,
        /// Who reported it.
        reporter: NodeAddr,
        /// Peers the notice was forwarded to.
        forwarded_to: usize,
    },
    /// A seed refused a registration.
    RegistrationRefused {
        /// The address it named.
        peer: NodeAddr,
        /// The connection's remote.
        from: NodeAddr,
        /// Why.
        reason: RegisterRefusal,
    },
    /// A seed refused our registration.
    SeedRefusedRegistration {
        /// The seed.
        seed: NodeAddr,
        /// Why.
        reason: RegisterRefusal,
    },
    /// A seed checks a reported peer before it removes it (`--removal verify`).
    DeadReportChecking {
        /// The reported peer.
        dead: NodeAddr,
        /// Who reported it.
        reporter: NodeAddr,
    },
    /// The reported peer answered the seed's check: the report is dismissed.
    DeadReportDismissed {
        /// The reported peer, alive.
        dead: NodeAddr,
        /// Who reported it.
        reporter: NodeAddr,
        /// Reports of this reporter dismissed in a row (its reports are held at
        /// [`crate::seed::DISMISSALS_MAX`]).
        dismissed: u32,
    },
    /// A seed did not act on a report from a registered peer.
    DeadReportIgnored {
        /// The reported peer.
        dead: NodeAddr,
        /// Who reported it.
        reporter: NodeAddr,
        /// Why.
        why: &'static str,
    },
    /// A seed got a report about a peer it does not hold (already removed or never seen).
    DeadNodeAlreadyRemoved {
        /// The reported peer.
        dead: NodeAddr,
        /// Who reported it.
        reporter: NodeAddr,
    },
    /// A frame that did not decode; the connection closes after too many.
    MalformedFrame {
        /// The remote: its listening address when known, else its socket address.
        from: NodeAddr,
        /// What was wrong (boxed: it is rare and large, and every event is as big as the
        /// biggest).
        error: Box<WireError>,
        /// Whether the node closed the connection because of it.
        closed: bool,
    },
    /// A seed closed a connection with nothing registered on it that stayed silent past the
    /// idle bound after a valid message.
    IdleTimedOut {
        /// Its remote address.
        from: NodeAddr,
    },
    /// A connection said nothing valid before its handshake deadline and was closed.
    HandshakeTimedOut {
        /// The remote's socket address.
        from: NodeAddr,
    },
    /// A connection was refused (`Connection refused:busy`) because `limit` are open.
    TooManyConnections {
        /// The remote's socket address.
        from: NodeAddr,
        /// The node's `connections_max`.
        limit: usize,
    },
    /// A seed refused a connection (`Connection refused:busy`) because `limit` are open from
    /// its IP.
    TooManyFromIp {
        /// The remote's socket address.
        from: NodeAddr,
        /// The seed's `connections_per_ip_max`.
        limit: usize,
    },
    /// A message that makes no sense where it arrived; ignored.
    UnexpectedMessage {
        /// The remote.
        from: NodeAddr,
        /// The message kind.
        kind: &'static str,
    },
}

impl fmt::Display for Event {
    /// The description written after the timestamp in `outputfile.log`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::SeedStarted => f.write_str("Seed started"),
            Event::PeerStarted { capacity } => write!(f, "Peer started (capacity {capacity})"),
            Event::SeedsChosen { seeds } => {
                f.write_str("Chose seeds")?;
                for s in seeds {
                    write!(f, " {s}")?;
                }
                Ok(())
            }
            Event::SeedUnreachable {
                seed,
                attempt,
                retry_in_s: Some(s),
            } => {
                write!(
                    f,
                    "Seed {seed} unreachable (attempt {attempt}), retrying in {s}s"
                )
            }
            Event::SeedUnreachable {
                seed,
                attempt,
                retry_in_s: None,
            } => {
                write!(
                    f,
                    "Seed {seed} unreachable (attempt {attempt}), giving up on it"
                )
            }
            Event::SeedLost { seed } => write!(f, "Connection to seed {seed} closed"),
            Event::Registered { seed } => write!(f, "Registered with seed {seed}"),
            Event::PeerListReceived {
                seed,
                entries,
                known,
            } => {
                write!(f, "Peer list from {seed}: {entries} peers, {known} known")
            }
            Event::NeighbourAdded { peer, degree } => {
                write!(f, "Connected to neighbour {peer} (degree {degree})")
            }
            Event::NeighbourRemoved {
                peer,
                degree,
                reason,
            } => {
                let why = match reason {
                    RemovalReason::Dead => "dead",
                    RemovalReason::HandshakeTimeout => "handshake timeout",
                };
                write!(f, "Removed neighbour {peer}, {why} (degree {degree})")
            }
            Event::ConnectionRefused { peer, reason } => {
                write!(f, "Connection refused by {peer}: {}", reason.as_str())
            }
            Event::RefusedHello { peer, reason } => {
                write!(f, "Refused connection from {peer}: {}", reason.as_str())
            }
            Event::GossipOriginated {
                message,
                seq,
                sent_to,
            } => {
                let m = message.identity();
                write!(f, "Generated gossip #{seq} {m} (sent to {sent_to})")
            }
            Event::GossipDelivered {
                message,
                first_from,
                ..
            } => {
                write!(
                    f,
                    "Received gossip {} from {first_from}",
                    message.identity()
                )
            }
            Event::DuplicateDropped { message, from } => {
                write!(
                    f,
                    "Duplicate gossip {} from {from} dropped",
                    message.identity()
                )
            }
            Event::LivenessMissed { peer, misses } => {
                write!(f, "Liveness reply missing from {peer} ({misses} in a row)")
            }
            Event::PeerDeclaredDead { peer } => write!(f, "Neighbour {peer} declared dead"),
            Event::DeadNodeReported { dead, seed } => {
                write!(f, "Reported Dead Node:{dead} to seed {seed}")
            }
            Event::DeadNodeNotice { dead, reporter } => {
                write!(f, "Seed notice: Dead Node:{dead} reported by {reporter}")
            }
            Event::PeerRegistered {
                peer,
                refreshed: false,
            } => write!(f, "Registered peer {peer}"),
            Event::PeerRegistered {
                peer,
                refreshed: true,
            } => write!(f, "Refreshed peer {peer}"),
            Event::DegreeRecorded { peer, degree } => {
                write!(f, "Peer {peer} reported degree {degree}")
            }
            Event::DegreeAdvertised { degree, seeds } => {
                write!(f, "Told {seeds} seeds our degree {degree}")
            }
            Event::PeerListServed {
                entries,
                registered,
            } => {
                write!(f, "Sent peer list ({entries} of {registered} peers)")
            }
            Event::PeerRemovedBySeed {
                dead,
                reporter,
                forwarded_to,
            } => write!(
                f,
                "Dead Node:{dead} reported by {reporter}: removed, notice sent to {forwarded_to} peers"
            ),
            Event::RegistrationRefused { peer, from, reason } => write!(
                f,
                "Refused registration of {peer} from {from}: {}",
                reason.as_str()
            ),
            Event::SeedRefusedRegistration { seed, reason } => {
                write!(
                    f,
                    "Seed {seed} refused our registration: {}",
                    reason.as_str()
                )
            }
            Event::DeadReportChecking { dead, reporter } => {
                write!(f, "Dead Node:{dead} reported by {reporter}: checking it")
            }
            Event::DeadReportDismissed {
                dead,
                reporter,
                dismissed,
            } => write!(
                f,
                "Dead Node:{dead} reported by {reporter}: dismissed, it answered ({dismissed} dismissed in a row)"
            ),
            Event::DeadReportIgnored {
                dead,
                reporter,
                why,
            } => write!(f, "Dead Node:{dead} reported by {reporter}: {why}"),
            Event::DeadNodeAlreadyRemoved { dead, reporter } => {
                write!(
                    f,
                    "Dead Node:{dead} reported by {reporter}: already removed"
                )
            }
            Event::MalformedFrame {
                from,
                error,
                closed,
            } => {
                let tail = if *closed { "; connection closed" } else { "" };
                write!(f, "Malformed frame from {from}: {error}{tail}")
            }
            Event::UnexpectedMessage { from, kind } => {
                write!(f, "Unexpected {kind} message from {from}, ignored")
            }
            Event::IdleTimedOut { from } => write!(
                f,
                "Closed connection from {from}: nothing registered on it, silent past the idle bound"
            ),
            Event::HandshakeTimedOut { from } => {
                write!(
                    f,
                    "Closed connection from {from}: nothing valid before the handshake deadline"
                )
            }
            Event::TooManyFromIp { from, limit } => write!(
                f,
                "Refused connection from {from}: {limit} connections open from its IP, the limit (--connections-per-ip)"
            ),
            Event::TooManyConnections { from, limit } => {
                write!(
                    f,
                    "Refused connection from {from}: {limit} connections open, the limit"
                )
            }
        }
    }
}

/// Output queue and timer table shared by the machines: the parts of `Node` that are the
/// same for a seed and a peer.
///
/// Sized for a million nodes in one process: the queue is held behind a pointer (8 bytes
/// while there is none), lent by a pool of the thread when an output comes and given back
/// once drained, so an idle machine holds no queue.
#[derive(Debug)]
#[repr(C)]
pub struct Outbox {
    queue: Option<Box<Queue>>,
    /// Deadline of each timer kind; [`Time::NEVER`] when disarmed.
    deadlines: [Time; TimerId::ALL.len()],
}

type Queue = std::collections::VecDeque<Output>;

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            queue: None,
            deadlines: [Time::NEVER; TimerId::ALL.len()],
        }
    }
}

/// Queues kept for reuse by the outboxes of one thread, and the room a queue starts with.
const SPARE_QUEUES_MAX: usize = 8;
const QUEUE_START_CAPACITY: usize = 16;
/// Queues larger than this are given back to the allocator instead.
const SPARE_QUEUE_CAPACITY_MAX: usize = 4096;

std::thread_local! {
    /// Drained queues, lent to the next outbox that needs one: a driver drains one machine
    /// at a time, so a few queues serve a million machines, and a flood neither allocates
    /// nor grows its queue step by step. Storage, not a thread: only capacity passes through
    /// it, never an output, so it cannot change what a run does (measured on the flood
    /// workload at 10 000 peers: a fresh queue per flood instead costs a fifth of the rate).
    // Boxed in the pool too: lending a queue moves its box, allocating nothing.
    #[allow(clippy::vec_box)]
    static SPARE_QUEUES: core::cell::RefCell<Vec<Box<Queue>>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

impl Outbox {
    /// Queue an output.
    pub fn push(&mut self, out: Output) {
        match &mut self.queue {
            Some(queue) => queue.push_back(out),
            None => {
                let mut queue = SPARE_QUEUES
                    .with(|s| s.borrow_mut().pop())
                    .unwrap_or_else(|| Box::new(Queue::with_capacity(QUEUE_START_CAPACITY)));
                queue.push_back(out);
                self.queue = Some(queue);
            }
        }
    }
    /// Queue a send.
    pub fn send(&mut self, conn: ConnId, msg: Message) {
        self.push(Output::Send { conn, msg });
    }
    /// Queue an event.
    pub fn event(&mut self, e: Event) {
        self.push(Output::Event(e));
    }
    /// Refuse a new inbound connection because `limit` are open: say `busy`, close, log.
    pub fn refuse_busy(&mut self, conn: ConnId, from: NodeAddr, limit: usize) {
        let reason = RefuseReason::Busy;
        self.send(conn, Message::Refuse { reason });
        self.push(Output::Close { conn });
        self.event(Event::TooManyConnections { from, limit });
    }
    /// Arm `timer` for `at`, replacing its earlier deadline.
    pub fn arm(&mut self, timer: TimerId, at: Time) {
        self.deadlines[timer.index()] = at;
        self.push(Output::SetTimer { at, timer });
    }
    /// Arm `timer` for `at` unless it is already due at or before `at`.
    pub fn arm_no_later(&mut self, timer: TimerId, at: Time) {
        if self.deadlines[timer.index()] > at {
            self.arm(timer, at);
        }
    }
    /// Whether `timer` is due at `now` (nothing changes).
    pub fn is_due(&self, timer: TimerId, now: Time) -> bool {
        self.deadlines[timer.index()] <= now
    }
    /// Whether `timer` is due at `now`; a due timer is disarmed (the caller re-arms it).
    pub fn take_due(&mut self, timer: TimerId, now: Time) -> bool {
        let slot = &mut self.deadlines[timer.index()];
        if *slot <= now {
            *slot = Time::NEVER;
            true
        } else {
            false
        }
    }
    /// Starts loading the outbox's fields (a cache hint).
    pub fn prefetch(&self) {
        crate::prefetch::prefetch(&self.queue);
        crate::prefetch::prefetch(&self.deadlines);
    }

    /// The outputs queued, in the order [`Outbox::pop`] gives them, without taking them.
    pub fn queued(&self) -> impl Iterator<Item = &Output> {
        self.queue.iter().flat_map(|q| q.iter())
    }

    /// The next output.
    pub fn pop(&mut self) -> Option<Output> {
        let queue = self.queue.as_mut()?;
        let out = queue.pop_front();
        if queue.is_empty()
            && let Some(queue) = self.queue.take()
            && queue.capacity() <= SPARE_QUEUE_CAPACITY_MAX
        {
            SPARE_QUEUES.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < SPARE_QUEUES_MAX {
                    s.push(queue);
                }
            });
        }
        out
    }
}
