//! The event loops: a few threads, one per core, each driving many nodes over non-blocking
//! sockets (`mio`, epoll on Linux).
//!
//! A loop owns its nodes' machines, listeners and connections. Each turn it waits for
//! readiness or the next timer; reads every ready socket to `WouldBlock` into one scratch
//! buffer and decodes whole lines in place (a line longer than the 64 KiB cap is skipped to
//! its newline, never buffered); feeds the machines; fires the timers that are due; records
//! the turn's events; and only then writes: the frames a turn queued on a connection go out
//! in one `write` (or as few as the socket takes). Every bound of the thread-per-connection
//! driver it replaced stays: frames queued per connection, a write that makes no progress for
//! `write_timeout`, a dial that takes longer than `connect_timeout`, and the process's
//! descriptor budget (now one descriptor a connection).
//!
//! Overload: a 100 ms tick measures each loop's lag (how late it runs). While any loop of the
//! process lags more than [`crate::stats::LAG_HIGH_MICROS`], the driver warns once and puts
//! liveness rounds off until it recovers: a round's verdict would count the driver's own
//! lateness as the neighbours' silence and report live peers dead.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration as StdDuration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rand_chacha::ChaCha8Rng;
use sim_core::addr::NodeAddr;
use sim_core::limits::FRAME_BYTES_MAX;
use sim_core::node::{ConnId, Input, Node, Output, TimerId};
use sim_core::refwire::{self, Framer};
use sim_core::sim::{Latency, WorldEvent};
use sim_core::time::{Duration, Time};
use sim_core::wire::{Gossip, Message, Wire, WireError, decode};

use crate::fds::FdToken;
use crate::runtime::{Record, Shared};
use crate::stats::LAG_HIGH_MICROS;

/// Socket limits of the real driver.
#[derive(Clone, Copy, Debug)]
pub struct IoLimits {
    /// Frames queued for one connection before it is closed as too slow.
    pub write_queue_frames_max: usize,
    /// How long a write may make no progress before the connection is closed.
    pub write_timeout: StdDuration,
    /// How long a dial may take.
    pub connect_timeout: StdDuration,
    /// Frames one connection may hold for the latency model (sent, not yet due) before it
    /// is closed: the memory bound of `--latency` (a node sending faster than this many
    /// frames per latency on one connection).
    pub held_frames_max: usize,
}

impl Default for IoLimits {
    fn default() -> Self {
        IoLimits {
            write_queue_frames_max: 1024,
            write_timeout: StdDuration::from_secs(10),
            connect_timeout: StdDuration::from_secs(3),
            held_frames_max: 16 * 1024,
        }
    }
}

/// The waker's token; sockets take the others.
const WAKER: Token = Token(usize::MAX);
/// Bytes one `read` takes at most: the cap of a line and its newline, with room to spare.
const SCRATCH_BYTES: usize = 128 * 1024;
/// Addresses whose registration wire a loop remembers (forgotten all at once when full).
const WIRES_REMEMBERED_MAX: usize = 100_000;
/// How often a loop measures its lag and checks dials and stalled writes.
const TICK: Duration = Duration::from_millis(100);
/// Liveness rounds put off by overload come back this much later (or when it ends).
const DEFER: Duration = Duration::from_millis(500);
/// How long a loop that is told to exit keeps flushing what nodes queued before closing.
const EXIT_FLUSH: StdDuration = StdDuration::from_secs(2);

/// What a loop is told from other threads (after a wake).
pub(crate) enum Cmd {
    /// Start driving a node.
    Add {
        node: Box<dyn Node + Send>,
        addr: NodeAddr,
        listener: TcpListener,
        key: usize,
        wire: Wire,
        seed: bool,
        /// The node's latency draws (with a latency model).
        latency_rng: Option<Box<ChaCha8Rng>>,
    },
    /// A peer originates a message.
    Originate { key: usize, body: String },
    /// Stop a node (abruptly: a crash), then say so on `done`.
    Stop {
        key: usize,
        abrupt: bool,
        done: Sender<()>,
    },
    /// Fail a node silently (a fault), then say so on `done`.
    Silence { key: usize, done: Sender<()> },
    /// Reset every connection of a node (a fault: a middlebox forgot them); the node keeps
    /// running and is told each closed. Then say so on `done`.
    Reset { key: usize, done: Sender<()> },
    /// Hold every frame between the two groups and fail the dials between them, until
    /// `None` heals it; then say so on `done`.
    Partition {
        groups: Option<Arc<(BTreeSet<NodeAddr>, BTreeSet<NodeAddr>)>>,
        done: Sender<()>,
    },
    /// Flush and end the loop.
    Exit,
}

/// The way into a loop from other threads.
pub(crate) struct LoopHandle {
    tx: Sender<Cmd>,
    waker: Arc<Waker>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopHandle {
    /// Starts loop `index` of a process.
    pub(crate) fn start(index: usize, shared: Arc<Shared>, io: IoLimits) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("loop {index}"))
            .spawn(move || {
                let mut l = Loop::new(index, poll, rx, shared, io);
                l.run();
            })?;
        Ok(LoopHandle {
            tx,
            waker,
            thread: Some(thread),
        })
    }

    /// Tells the loop `cmd`; false if it has ended.
    pub(crate) fn send(&self, cmd: Cmd) -> bool {
        self.tx.send(cmd).is_ok() && self.waker.wake().is_ok()
    }
}

impl Drop for LoopHandle {
    fn drop(&mut self) {
        self.send(Cmd::Exit);
        if let Some(t) = self.thread.take() {
            // A loop that panicked has nothing left to clean up.
            let _ = t.join();
        }
    }
}

/// One connection (or a dial under way).
struct Conn {
    /// The node it belongs to (its key in the loop).
    node: usize,
    /// Its id at the node, once open.
    id: ConnId,
    stream: TcpStream,
    remote: NodeAddr,
    /// A dial under way, and when it gives up.
    dialing: Option<Time>,
    /// Accepted (not dialed).
    inbound: bool,
    /// It sent a valid frame: never evicted to make room.
    spoke: bool,
    /// The start of a line that has not ended yet (at most the cap).
    line: Vec<u8>,
    /// Bytes of an oversized line dropped so far (its newline not read yet).
    dropped: usize,
    /// How its bytes are cut into frames.
    framing: Framing,
    /// The listening address of the node at the other end, once its hello told it (an
    /// inbound connection's `remote` is the dialer's socket address).
    hello: Option<NodeAddr>,
    /// Frames waiting to be written, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// Where each waiting frame ends in `out`.
    ends: VecDeque<usize>,
    /// When the waiting bytes last moved (or began to wait).
    progress: Time,
    /// The node closed it, or stopped: write what waits, then close.
    closing: bool,
    /// Frames held for the latency model until they are due (only with a latency model: at
    /// zero latency a frame goes straight to `out`).
    hold: Option<Box<Hold>>,
    /// The socket's descriptor, counted against the budget.
    _fd: FdToken,
}

/// The frames a connection holds for the latency model, each until it is due, as the
/// simulator's link holds a message for its latency. Due times never decrease along the
/// queue (a frame is due no earlier than the one before it), so a later frame never leaves
/// before an earlier one, as on a simulated link.
struct Hold {
    /// The held frames' bytes, from `from` on.
    bytes: Vec<u8>,
    from: usize,
    /// When each held frame is due and where it ends in `bytes`. A close is an entry with
    /// no bytes: the connection closes once what came before it is written.
    queue: VecDeque<(Time, usize)>,
    /// No frame leaves before this: a dialed connection's handshake takes two one-way
    /// latencies after it connected (SYN and SYN-ACK), as in the simulator.
    open_at: Time,
    /// The latest due time given on the connection.
    last_due: Time,
    /// The due time of the release timer in the loop's heap for this connection, NEVER if
    /// none: one timer a connection at a time, for the front of the queue.
    armed: Time,
}

impl Hold {
    fn new(open_at: Time) -> Box<Self> {
        Box::new(Hold {
            bytes: Vec::new(),
            from: 0,
            queue: VecDeque::new(),
            open_at,
            last_due: open_at,
            armed: Time::NEVER,
        })
    }

    /// When a frame sent at `now` with `delay` is due: after the handshake, then the delay,
    /// and never before the frame sent before it.
    fn due(&mut self, now: Time, delay: Duration) -> Time {
        let due = (now.max(self.open_at) + delay).max(self.last_due);
        self.last_due = due;
        due
    }
}

impl Conn {
    #[allow(clippy::too_many_arguments)] // the fields a connection starts with
    fn new(
        node: usize,
        id: ConnId,
        stream: TcpStream,
        remote: NodeAddr,
        dialing: Option<Time>,
        inbound: bool,
        now: Time,
        fd: FdToken,
        framing: Framing,
        hold: Option<Box<Hold>>,
    ) -> Self {
        Conn {
            node,
            id,
            stream,
            remote,
            dialing,
            inbound,
            spoke: false,
            line: Vec::new(),
            dropped: 0,
            framing,
            hello: None,
            out: Vec::new(),
            sent: 0,
            ends: VecDeque::new(),
            progress: now,
            closing: false,
            hold,
            _fd: fd,
        }
    }

    /// Nothing waits on it: every frame written, none held.
    fn drained(&self) -> bool {
        self.sent == self.out.len() && self.hold.as_ref().is_none_or(|h| h.queue.is_empty())
    }
}

/// How a connection's bytes are cut into frames.
enum Framing {
    /// gossipnet's: one message a line.
    Line,
    /// The reference's: padded windows and a bare seed exchange ([`sim_core::refwire`]).
    Reference(Box<Framer>),
    /// Not known yet, at a seed that speaks both: the first bytes read decide. Every line
    /// peer sends its first line whole in one write, and the original never sends a newline.
    Sniff,
}

impl Framing {
    fn reference() -> Self {
        Framing::Reference(Box::default())
    }
}

enum Sock {
    Listener { node: usize, listener: TcpListener },
    Conn(Box<Conn>),
}

/// A node and what the loop keeps for it.
struct Slot {
    machine: Box<dyn Node + Send>,
    addr: NodeAddr,
    /// The wire it speaks, and whether it is a seed (which tells the wires apart).
    wire: Wire,
    seed: bool,
    /// Failed silently (a fault): it is given nothing (no frame, no timer, no connection)
    /// and writes nothing, while its connections stay open.
    silent: bool,
    listener: usize,
    /// Open connections: the socket token of each.
    conns: BTreeMap<ConnId, usize>,
    next_conn: u64,
    /// Where its latency draws come from (with a latency model): seeded from the run seed
    /// and the node's index, apart from the machine's own RNG.
    latency_rng: Option<Box<ChaCha8Rng>>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Tick,
    Node {
        key: usize,
        timer: TimerId,
    },
    /// An accept that failed for want of resources, tried again.
    Accept {
        token: usize,
    },
    /// Held frames of the connection at `token` fall due (a stale one, of a connection that
    /// is gone, finds nothing due or a connection with its own timer, and does nothing).
    Release {
        token: usize,
    },
}

struct Loop {
    index: usize,
    poll: Poll,
    rx: Receiver<Cmd>,
    shared: Arc<Shared>,
    io: IoLimits,
    nodes: BTreeMap<usize, Slot>,
    socks: Vec<Option<Sock>>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Time, u64, Due)>>,
    seq: u64,
    /// Connections with frames to write this turn.
    dirty: Vec<usize>,
    /// What the turn recorded, handed to the recorder at its end.
    records: Vec<Record>,
    actions: Vec<Output>,
    /// The last gossip encoded and its frame: a peer forwards one message to each of its
    /// neighbours, and the text is the same on every connection (formatting it once per
    /// connection was a tenth of the loops' own CPU).
    encoded: Option<(Arc<Gossip>, Vec<u8>)>,
    /// At a seed of the reference wire: the wire each address registered with.
    wires: BTreeMap<NodeAddr, Wire>,
    /// A partition in force (a fault): frames between its two groups are held.
    partition: Option<Arc<(BTreeSet<NodeAddr>, BTreeSet<NodeAddr>)>>,
    /// The one-way latency every frame a node writes is held for (`--latency`); `None` at
    /// zero latency, where nothing is held, timed or drawn.
    latency: Option<Latency>,
    scratch: Box<[u8]>,
    /// Counts of this loop not yet added to the process's (each tick and stop): atomics
    /// shared by two loops cost a cache-line transfer on every frame.
    counts: crate::stats::Counts,
    overloaded: bool,
    /// When the process last became overloaded, as this loop saw it.
    overloaded_since: Time,
    last_tick: Time,
    exiting: bool,
}

impl Loop {
    fn new(index: usize, poll: Poll, rx: Receiver<Cmd>, shared: Arc<Shared>, io: IoLimits) -> Self {
        let latency = shared.latency;
        Loop {
            index,
            poll,
            rx,
            shared,
            io,
            nodes: BTreeMap::new(),
            socks: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            dirty: Vec::new(),
            records: Vec::new(),
            actions: Vec::new(),
            encoded: None,
            wires: BTreeMap::new(),
            partition: None,
            latency,
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            counts: crate::stats::Counts::default(),
            overloaded: false,
            overloaded_since: Time::ZERO,
            last_tick: Time::ZERO,
            exiting: false,
        }
    }

    fn now(&self) -> Time {
        self.shared.clock.now()
    }

    fn push_timer(&mut self, at: Time, due: Due) {
        self.seq += 1;
        self.timers.push(Reverse((at, self.seq, due)));
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let now = self.now();
        self.push_timer(now + TICK, Due::Tick);
        let mut exit_deadline = None;
        loop {
            let timeout = self.timers.peek().map(|Reverse((at, _, _))| {
                let wait = self.shared.clock.instant(*at);
                wait.saturating_duration_since(std::time::Instant::now())
            });
            let timeout = match exit_deadline {
                Some(_) => Some(StdDuration::from_millis(20)),
                None => timeout,
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                self.note_for(None, format!("event loop {} stopped: {e}", self.index));
                return;
            }
            // Commands first (a stop must not wait behind a turn's backlog).
            self.commands();
            for ev in events.iter() {
                if self.exiting {
                    break;
                }
                match ev.token() {
                    WAKER => self.commands(),
                    Token(t) => self.ready(t, ev.is_readable(), ev.is_writable()),
                }
            }
            self.fire_due();
            self.flush_turn();
            if self.exiting {
                let deadline =
                    *exit_deadline.get_or_insert_with(|| std::time::Instant::now() + EXIT_FLUSH);
                let waiting = self.socks.iter().flatten().any(|s| match s {
                    Sock::Conn(c) => !c.drained(),
                    Sock::Listener { .. } => false,
                });
                if !waiting || std::time::Instant::now() >= deadline {
                    self.shared.stats.add(&mut self.counts);
                    return;
                }
            }
        }
    }

    // ----- sockets -----

    fn insert_sock(&mut self, s: Sock) -> usize {
        match self.free.pop() {
            Some(t) => {
                self.socks[t] = Some(s);
                t
            }
            None => {
                self.socks.push(Some(s));
                self.socks.len() - 1
            }
        }
    }

    /// Drops a socket (closing it). A connection is shut down first, so the other end sees
    /// the close at once.
    fn drop_sock(&mut self, token: usize) {
        let Some(s) = self.socks.get_mut(token).and_then(Option::take) else {
            return;
        };
        match s {
            Sock::Conn(mut c) => {
                let _ = self.poll.registry().deregister(&mut c.stream);
                let _ = c.stream.shutdown(Shutdown::Both);
                if c.dialing.is_none() {
                    self.shared.stats.connection_closed();
                }
            }
            Sock::Listener { mut listener, .. } => {
                let _ = self.poll.registry().deregister(&mut listener);
            }
        }
        self.free.push(token);
    }

    fn conn(&mut self, token: usize) -> Option<&mut Conn> {
        match self.socks.get_mut(token) {
            Some(Some(Sock::Conn(c))) => Some(c),
            _ => None,
        }
    }

    /// The open connection at `token` if it is still `who` (node, id): feeding a node can
    /// close a connection and free its token, and a dial or an accept in the same feed can
    /// take the token again.
    fn same(&mut self, token: usize, who: (usize, ConnId)) -> Option<&mut Conn> {
        self.conn(token)
            .filter(|c| c.dialing.is_none() && (c.node, c.id) == who)
    }

    fn ready(&mut self, token: usize, readable: bool, writable: bool) {
        match self.socks.get(token) {
            Some(Some(Sock::Listener { .. })) => self.accept(token),
            Some(Some(Sock::Conn(c))) => {
                if c.dialing.is_some() {
                    if writable || readable {
                        self.dial_finished(token);
                    }
                    return;
                }
                let who = (c.node, c.id);
                if writable {
                    self.write(token);
                }
                if readable && self.same(token, who).is_some() {
                    self.read(token);
                }
            }
            _ => {}
        }
    }

    fn accept(&mut self, token: usize) {
        loop {
            let Some(Some(Sock::Listener { node, listener })) = self.socks.get(token) else {
                return;
            };
            let node = *node;
            match listener.accept() {
                Ok((stream, SocketAddr::V4(a))) => {
                    let remote = NodeAddr::new(*a.ip(), a.port());
                    let fds = Arc::clone(&self.shared.fds);
                    if !fds.has_room() && !self.evict_for(node, remote) {
                        self.refuse_busy(node, stream, remote);
                        continue;
                    }
                    self.open(node, stream, remote, false);
                }
                // Listeners bind IPv4 addresses only.
                Ok((_, SocketAddr::V6(_))) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // Out of descriptors or memory: try again shortly rather than spin.
                    self.note_for(Some(node), format!("accept failed: {e}; retrying in 50 ms"));
                    let at = self.now() + Duration::from_millis(50);
                    self.push_timer(at, Due::Accept { token });
                    return;
                }
            }
        }
    }

    /// Closes the oldest inbound connection of `node` that has said nothing valid, to make
    /// room for one from `newcomer`; whether the budget then has room.
    fn evict_for(&mut self, node: usize, newcomer: NodeAddr) -> bool {
        let victim = self.nodes.get(&node).and_then(|slot| {
            slot.conns
                .iter()
                .find_map(|(id, &t)| match self.socks.get(t) {
                    Some(Some(Sock::Conn(c))) if c.inbound && !c.spoke && !c.closing => {
                        Some((*id, t))
                    }
                    _ => None,
                })
        });
        let Some((id, t)) = victim else {
            return false;
        };
        let remote = match self.conn(t) {
            Some(c) => c.remote,
            None => return false,
        };
        if let Some(slot) = self.nodes.get_mut(&node) {
            slot.conns.remove(&id);
        }
        self.drop_sock(t);
        self.shared.fds.evicted();
        let n = self.shared.fds.figures().evicted;
        if n.is_power_of_two() {
            self.note_for(
                Some(node),
                format!(
                    "descriptor budget spent: closed {remote} (silent) to serve {newcomer} ({n} so far)"
                ),
            );
        }
        self.feed(node, Input::Closed { conn: id });
        self.shared.fds.has_room()
    }

    /// Answers `busy` on an accepted socket the budget cannot serve, and drops it.
    fn refuse_busy(&mut self, node: usize, mut stream: TcpStream, remote: NodeAddr) {
        let busy = Message::Refuse {
            reason: sim_core::wire::RefuseReason::Busy,
        };
        // A fresh socket's buffer takes the line at once; if not, the refusal is lost, not
        // waited for.
        let _ = stream.write(busy.encode().as_bytes());
        let _ = stream.shutdown(Shutdown::Both);
        self.shared.fds.refused();
        let figures = self.shared.fds.figures();
        if figures.refused.is_power_of_two() {
            self.note_for(
                Some(node),
                format!(
                    "refused {remote}: busy, the descriptor budget ({} connections under a limit of {}) is spent ({} refused so far)",
                    figures.connections_max, figures.limit, figures.refused
                ),
            );
        }
    }

    /// Serves a new connection and tells the node.
    fn open(&mut self, node: usize, mut stream: TcpStream, remote: NodeAddr, outbound: bool) {
        let fd = FdToken::take(&self.shared.fds);
        let _ = stream.set_nodelay(true);
        let token = self.free.last().copied().unwrap_or(self.socks.len());
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.note_for(
                Some(node),
                format!("cannot serve connection with {remote}: {e}"),
            );
            if outbound {
                self.feed(node, Input::ConnectFailed { addr: remote });
            }
            return;
        }
        let now = self.now();
        let Some(slot) = self.nodes.get_mut(&node) else {
            return;
        };
        let id = ConnId::new(slot.next_conn);
        slot.next_conn += 1;
        let framing = self.framing_for(node, remote, !outbound);
        let hold = self.latency.map(|_| Hold::new(now));
        let conn = Conn::new(
            node, id, stream, remote, None, !outbound, now, fd, framing, hold,
        );
        let t = self.insert_sock(Sock::Conn(Box::new(conn)));
        debug_assert_eq!(t, token, "the token registered is the slot taken");
        if let Some(slot) = self.nodes.get_mut(&node) {
            slot.conns.insert(id, t);
        }
        self.shared.stats.connection_opened();
        self.feed(
            node,
            Input::Connected {
                conn: id,
                remote,
                outbound,
            },
        );
    }

    fn dial(&mut self, node: usize, addr: NodeAddr) {
        if let Some(me) = self.nodes.get(&node).map(|s| s.addr)
            && self.crosses(me, addr)
        {
            self.note_for(Some(node), format!("cannot connect to {addr}: partitioned"));
            self.feed(node, Input::ConnectFailed { addr });
            return;
        }
        if !self.shared.fds.has_room() {
            self.shared.fds.refused();
            self.note_for(
                Some(node),
                format!("cannot connect to {addr}: the descriptor budget is spent"),
            );
            self.feed(node, Input::ConnectFailed { addr });
            return;
        }
        let target = SocketAddr::from((addr.ip, addr.port));
        let mut stream = match TcpStream::connect(target) {
            Ok(s) => s,
            Err(e) => {
                self.note_for(Some(node), format!("cannot connect to {addr}: {e}"));
                self.feed(node, Input::ConnectFailed { addr });
                return;
            }
        };
        let fd = FdToken::take(&self.shared.fds);
        let token = self.free.last().copied().unwrap_or(self.socks.len());
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.note_for(Some(node), format!("cannot connect to {addr}: {e}"));
            self.feed(node, Input::ConnectFailed { addr });
            return;
        }
        let now = self.now();
        let deadline = now + Duration(self.io.connect_timeout.as_micros() as u64);
        // Its id comes when it connects.
        let id = ConnId::new(u64::MAX);
        let framing = self.framing_for(node, addr, false);
        // Its handshake's latency is set when it connects.
        let hold = self.latency.map(|_| Hold::new(now));
        let conn = Conn::new(
            node,
            id,
            stream,
            addr,
            Some(deadline),
            false,
            now,
            fd,
            framing,
            hold,
        );
        let t = self.insert_sock(Sock::Conn(Box::new(conn)));
        debug_assert_eq!(t, token, "the token registered is the slot taken");
    }

    /// A dial's socket became ready: connected, or failed.
    fn dial_finished(&mut self, token: usize) {
        let Some(c) = self.conn(token) else {
            return;
        };
        let failure = match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match c.stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == ErrorKind::NotConnected => return, // not yet
                Err(e) => Some(e),
            },
        };
        let (node, addr) = (c.node, c.remote);
        match failure {
            Some(e) => {
                self.drop_sock(token);
                self.note_for(Some(node), format!("cannot connect to {addr}: {e}"));
                self.feed(node, Input::ConnectFailed { addr });
            }
            None => {
                let now = self.now();
                let Some(slot) = self.nodes.get_mut(&node) else {
                    self.drop_sock(token);
                    return;
                };
                let id = ConnId::new(slot.next_conn);
                slot.next_conn += 1;
                slot.conns.insert(id, token);
                // With a latency model, the handshake takes two one-way latencies (SYN,
                // SYN-ACK) on top of the real one, as in the simulator: the first frame
                // leaves no earlier, so it arrives three latencies after the dial.
                let syn = draw(self.latency, slot.latency_rng.as_deref_mut());
                let syn_ack = draw(self.latency, slot.latency_rng.as_deref_mut());
                if let Some(c) = self.conn(token) {
                    c.id = id;
                    c.dialing = None;
                    c.progress = now;
                    if let (Some(h), Some(a), Some(b)) = (c.hold.as_deref_mut(), syn, syn_ack) {
                        h.open_at = now + a + b;
                        h.last_due = h.open_at;
                    }
                    let _ = c.stream.set_nodelay(true);
                }
                self.shared.stats.connection_opened();
                self.feed(
                    node,
                    Input::Connected {
                        conn: id,
                        remote: addr,
                        outbound: true,
                    },
                );
                // Bytes may have come with the connection.
                self.read(token);
            }
        }
    }

    /// Reads what the socket has, to `WouldBlock`, feeding each whole line.
    fn read(&mut self, token: usize) {
        let Some(c) = self.conn(token) else {
            return;
        };
        if c.dialing.is_some() {
            return;
        }
        let who = (c.node, c.id);
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(c) = self.same(token, who) {
            if c.closing {
                // The node is done with it: what comes now is read and dropped.
                match c.stream.read(&mut scratch) {
                    Ok(0) => {
                        self.drop_sock(token);
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            match c.stream.read(&mut scratch) {
                Ok(0) => {
                    let partial = c.line.len() + c.dropped;
                    let why = (partial > 0).then(|| {
                        format!("closed in the middle of a frame ({partial} bytes unread)")
                    });
                    self.gone(token, why);
                    break;
                }
                Ok(n) => {
                    if matches!(c.framing, Framing::Sniff) {
                        let line = scratch[..n].contains(&b'\n');
                        c.framing = if line {
                            Framing::Line
                        } else {
                            Framing::reference()
                        };
                    }
                    let reference = matches!(c.framing, Framing::Reference(_));
                    self.counts.reads += 1;
                    self.counts.bytes_in += n as u64;
                    let drained = n < scratch.len();
                    let served = if reference {
                        self.reference_frames(token, who, &scratch[..n], drained)
                    } else {
                        self.lines(token, who, &scratch[..n])
                    };
                    if !served || drained {
                        // A short read emptied the socket's queue: bytes that come after it
                        // raise a new edge, so the `WouldBlock` read is saved (it was half
                        // of all reads).
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.gone(token, Some(e.to_string()));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Feeds the whole lines of `bytes` (after what the connection holds of an earlier
    /// one); keeps the unfinished end. False once the connection is no longer served.
    fn lines(&mut self, token: usize, who: (usize, ConnId), mut bytes: &[u8]) -> bool {
        // `+ 1` for the `\r` of a `\r\n` line end; `decode` checks the exact limit.
        let cap = FRAME_BYTES_MAX + 1;
        while !bytes.is_empty() {
            let Some(c) = self.same(token, who) else {
                return false;
            };
            if c.closing {
                return false;
            }
            let (chunk, found) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len() + usize::from(found)..];
            if c.dropped > 0 || c.line.len() + chunk.len() > cap {
                c.dropped += c.line.len() + chunk.len();
                c.line = Vec::new();
            } else if !found || !c.line.is_empty() {
                c.line.extend_from_slice(chunk);
            }
            if !found {
                continue;
            }
            let frame = if c.dropped > 0 {
                let bytes = std::mem::take(&mut c.dropped);
                Err(WireError::TooLong { bytes })
            } else if c.line.is_empty() {
                // The whole line is in this read: decoded where it lies.
                decode(chunk)
            } else {
                let line = std::mem::take(&mut c.line);
                decode(&line)
            };
            c.spoke |= frame.is_ok();
            if let Ok(Message::Hello { addr }) = &frame {
                c.hello = Some(*addr);
            }
            let (node, conn) = (c.node, c.id);
            self.counts.frames_in += 1;
            let input = match frame {
                Ok(msg) => Input::Received { conn, msg },
                Err(error) => Input::Malformed { conn, error },
            };
            self.feed(node, input);
        }
        true
    }

    /// Feeds the frames of the reference wire that `bytes` complete (`drained`: the socket
    /// had no more). False once the connection is no longer served.
    fn reference_frames(
        &mut self,
        token: usize,
        who: (usize, ConnId),
        bytes: &[u8],
        drained: bool,
    ) -> bool {
        if let Some(Conn {
            framing: Framing::Reference(f),
            ..
        }) = self.same(token, who)
        {
            f.push(bytes);
        }
        loop {
            let Some(c) = self.same(token, who) else {
                return false;
            };
            if c.closing {
                return false;
            }
            let Framing::Reference(f) = &mut c.framing else {
                return false;
            };
            let Some(frame) = f.next_frame(drained) else {
                return true;
            };
            let frame = refwire::decode(&frame);
            c.spoke |= frame.is_ok();
            if let Ok(Message::Hello { addr }) = &frame {
                c.hello = Some(*addr);
            }
            let (node, conn) = (c.node, c.id);
            self.counts.frames_in += 1;
            if let Ok(Message::Register { addr }) = &frame {
                // A seed answers a check of this address on the wire it registered with.
                self.remember_wire(*addr, Wire::Reference);
            }
            let input = match frame {
                Ok(msg) => Input::Received { conn, msg },
                Err(error) => Input::Malformed { conn, error },
            };
            self.feed(node, input);
        }
    }

    /// Whether `a` and `b` are on two sides of the partition in force.
    fn crosses(&self, a: NodeAddr, b: NodeAddr) -> bool {
        self.partition.as_deref().is_some_and(|(x, y)| {
            (x.contains(&a) && y.contains(&b)) || (y.contains(&a) && x.contains(&b))
        })
    }

    /// Whether the connection at `token` is held by the partition in force.
    fn held(&self, token: usize) -> bool {
        if self.partition.is_none() {
            return false;
        }
        let Some(Some(Sock::Conn(c))) = self.socks.get(token) else {
            return false;
        };
        let Some(me) = self.nodes.get(&c.node).map(|s| s.addr) else {
            return false;
        };
        self.crosses(me, c.hello.unwrap_or(c.remote))
    }

    /// How a new connection of `node` with `remote` is framed: as its wire says; at a seed
    /// of the reference wire, an inbound one as its first bytes say and an outbound one as
    /// the wire `remote` registered with (the reference's if unknown).
    fn framing_for(&self, node: usize, remote: NodeAddr, inbound: bool) -> Framing {
        let Some(slot) = self.nodes.get(&node) else {
            return Framing::Line;
        };
        match (slot.wire, slot.seed, inbound) {
            (Wire::Line, ..) => Framing::Line,
            (Wire::Reference, false, _) => Framing::reference(),
            (Wire::Reference, true, true) => Framing::Sniff,
            (Wire::Reference, true, false) => match self.wires.get(&remote) {
                Some(Wire::Line) => Framing::Line,
                _ => Framing::reference(),
            },
        }
    }

    fn remember_wire(&mut self, addr: NodeAddr, wire: Wire) {
        if self.wires.len() >= WIRES_REMEMBERED_MAX {
            self.wires.clear();
        }
        self.wires.insert(addr, wire);
    }

    /// The connection ended from the other side (or failed): the node is told.
    fn gone(&mut self, token: usize, why: Option<String>) {
        let Some(c) = self.conn(token) else {
            return;
        };
        let (node, id, remote, closing) = (c.node, c.id, c.remote, c.closing);
        self.drop_sock(token);
        if closing {
            return;
        }
        if let Some(slot) = self.nodes.get_mut(&node) {
            slot.conns.remove(&id);
        }
        if let Some(why) = why {
            self.note_for(
                Some(node),
                format!("connection with {remote} failed: {why}"),
            );
        }
        self.feed(node, Input::Closed { conn: id });
    }

    /// Writes what waits on the connection, as much as the socket takes.
    fn write(&mut self, token: usize) {
        let now = self.now();
        let node = match self.conn(token) {
            Some(c) => c.node,
            None => return,
        };
        // With a latency model, what a node sent before it failed silently is on its way
        // (held for its latency) and arrives, as in the simulator; it sends nothing after.
        let silent = self.latency.is_none() && self.nodes.get(&node).is_some_and(|s| s.silent);
        if silent || self.held(token) {
            // What it queued stays queued: a silent node's connections carry nothing, and
            // nothing crosses a partition.
            return;
        }
        let Some(c) = self.conn(token) else {
            return;
        };
        let mut failed = None;
        let mut writes = 0u64;
        let mut moved = 0usize;
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => {
                    failed = Some("write failed: the socket took nothing".to_string());
                    break;
                }
                Ok(n) => {
                    c.sent += n;
                    moved += n;
                    writes += 1;
                    c.progress = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(format!("write failed: {e}"));
                    break;
                }
            }
        }
        while c.ends.front().is_some_and(|&end| end <= c.sent) {
            c.ends.pop_front();
        }
        let done = c.sent == c.out.len();
        if done {
            c.out.clear();
            c.sent = 0;
            if c.out.capacity() > 64 * 1024 {
                c.out = Vec::new();
            }
        } else if c.sent > c.out.len() / 2 {
            let sent = c.sent;
            c.out.drain(..sent);
            c.sent = 0;
            for e in &mut c.ends {
                *e -= sent;
            }
        }
        // A close held for the latency model waits for its turn.
        let closing = c.closing && c.hold.as_ref().is_none_or(|h| h.queue.is_empty());
        self.counts.writes += writes;
        self.counts.bytes_out += moved as u64;
        if let Some(why) = failed {
            self.gone(token, Some(why));
        } else if done && closing {
            self.drop_sock(token);
        }
    }

    // ----- nodes -----

    fn commands(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Cmd::Add {
                    node,
                    addr,
                    mut listener,
                    key,
                    wire,
                    seed,
                    latency_rng,
                } => {
                    let token = self.free.last().copied().unwrap_or(self.socks.len());
                    if let Err(e) = self.poll.registry().register(
                        &mut listener,
                        Token(token),
                        Interest::READABLE,
                    ) {
                        self.note_for(None, format!("{addr} cannot listen: {e}"));
                        continue;
                    }
                    let t = self.insert_sock(Sock::Listener {
                        node: key,
                        listener,
                    });
                    self.nodes.insert(
                        key,
                        Slot {
                            machine: node,
                            addr,
                            wire,
                            seed,
                            silent: false,
                            listener: t,
                            conns: BTreeMap::new(),
                            next_conn: 0,
                            latency_rng,
                        },
                    );
                    self.feed(key, Input::Start);
                    // Connections may have queued before the listener was registered.
                    self.accept(t);
                }
                Cmd::Originate { key, body } => self.feed(key, Input::Originate { body }),
                Cmd::Stop { key, abrupt, done } => {
                    self.stop(key, abrupt);
                    // The figures read after a stop include this loop's last counts.
                    self.shared.stats.add(&mut self.counts);
                    let _ = done.send(());
                }
                Cmd::Reset { key, done } => {
                    self.reset(key);
                    let _ = done.send(());
                }
                Cmd::Silence { key, done } => {
                    if let Some(slot) = self.nodes.get_mut(&key) {
                        slot.silent = true;
                        let node = slot.addr;
                        let e = WorldEvent::Down { node, silent: true };
                        self.records.push(Record::World(self.now(), node, e));
                    }
                    let _ = done.send(());
                }
                Cmd::Partition { groups, done } => {
                    let healed = groups.is_none();
                    self.partition = groups;
                    if healed {
                        // What was held goes out now, and a stall is counted from now: the
                        // partition's wait was no write failing (a tick between the heal
                        // and the first write closed every held connection as stalled for
                        // the partition's length).
                        let now = self.now();
                        for (t, s) in self.socks.iter_mut().enumerate() {
                            if let Some(Sock::Conn(c)) = s
                                && c.sent < c.out.len()
                            {
                                c.progress = now;
                                self.dirty.push(t);
                            }
                        }
                    }
                    let _ = done.send(());
                }
                Cmd::Exit => {
                    let keys: Vec<usize> = self.nodes.keys().copied().collect();
                    for k in keys {
                        self.stop(k, false);
                    }
                    self.exiting = true;
                }
            }
        }
    }

    /// Resets every connection of a node (a fault): it is told each closed at once. With a
    /// latency model the far ends hear of it a latency later, after the frames already on
    /// their way, as in the simulator; without, at once.
    fn reset(&mut self, key: usize) {
        let now = self.now();
        let Some(slot) = self.nodes.get_mut(&key) else {
            return;
        };
        let node = slot.addr;
        let e = WorldEvent::ConnectionsReset { node };
        self.records.push(Record::World(now, node, e));
        if self.latency.is_none() {
            let tokens: Vec<usize> = slot.conns.values().copied().collect();
            for t in tokens {
                self.gone(t, None);
            }
            return;
        }
        for (id, t) in std::mem::take(&mut slot.conns) {
            let delay = self
                .nodes
                .get_mut(&key)
                .and_then(|s| draw(self.latency, s.latency_rng.as_deref_mut()));
            self.close_after_queued(t, now, delay);
            self.feed(key, Input::Closed { conn: id });
        }
    }

    /// Stops a node: its listener closes; its connections close after what is queued on
    /// them (at once, as a crash, when `abrupt`); its dials are dropped.
    fn stop(&mut self, key: usize, abrupt: bool) {
        let Some(slot) = self.nodes.remove(&key) else {
            return;
        };
        if abrupt {
            let e = WorldEvent::Down {
                node: slot.addr,
                silent: false,
            };
            self.records.push(Record::World(self.now(), slot.addr, e));
        }
        self.drop_sock(slot.listener);
        let dials: Vec<usize> = self
            .socks
            .iter()
            .enumerate()
            .filter_map(|(t, s)| match s {
                Some(Sock::Conn(c)) if c.node == key && c.dialing.is_some() => Some(t),
                _ => None,
            })
            .collect();
        for t in dials {
            self.drop_sock(t);
        }
        let mut slot = slot;
        let now = self.now();
        for (_, t) in std::mem::take(&mut slot.conns) {
            if abrupt && self.latency.is_none() {
                self.drop_sock(t);
            } else {
                // With a latency model a crash's close travels the link too, after the
                // frames already on their way, as in the simulator.
                let delay = draw(self.latency, slot.latency_rng.as_deref_mut());
                self.close_after_queued(t, now, delay);
            }
        }
    }

    /// Closes the connection at `t` once what waits on it is written: at once if nothing
    /// does. With a latency model (`delay`), the close is held like a frame, after every
    /// frame held before it, as a close travels a simulated link.
    fn close_after_queued(&mut self, t: usize, now: Time, delay: Option<Duration>) {
        let Some(c) = self.conn(t) else {
            return;
        };
        c.closing = true;
        if let (Some(h), Some(d)) = (c.hold.as_deref_mut(), delay) {
            let due = h.due(now, d);
            h.queue.push_back((due, h.bytes.len()));
            self.arm(t, due);
        } else if c.drained() {
            self.drop_sock(t);
        } else {
            self.dirty.push(t);
        }
    }

    /// A frame (or a close) due at `due` was held on the connection at `t`: its release
    /// timer is set if none is.
    fn arm(&mut self, t: usize, due: Time) {
        let Some(h) = self.conn(t).and_then(|c| c.hold.as_deref_mut()) else {
            return;
        };
        if h.armed == Time::NEVER {
            h.armed = due;
            self.push_timer(due, Due::Release { token: t });
        }
    }

    /// The release timer of the connection at `token`, set for `at`, fired at `now`: the
    /// frames due go to its write queue, in order, and the timer is set again for the next.
    fn release(&mut self, token: usize, at: Time, now: Time) {
        let Some(c) = self.conn(token) else {
            return;
        };
        let was_empty = c.sent == c.out.len();
        let Some(h) = c.hold.as_deref_mut() else {
            return;
        };
        if h.armed == at {
            h.armed = Time::NEVER;
        }
        let mut moved = false;
        while let Some(&(due, end)) = h.queue.front() {
            if due > now {
                break;
            }
            h.queue.pop_front();
            if end > h.from {
                c.out.extend_from_slice(&h.bytes[h.from..end]);
                c.ends.push_back(c.out.len());
                h.from = end;
            }
            moved = true;
        }
        if h.queue.is_empty() {
            h.bytes.clear();
            h.from = 0;
            if h.bytes.capacity() > 64 * 1024 {
                h.bytes = Vec::new();
            }
        } else if h.from > h.bytes.len() / 2 {
            let from = std::mem::take(&mut h.from);
            h.bytes.drain(..from);
            for (_, end) in &mut h.queue {
                *end -= from;
            }
        }
        let next = h.queue.front().map(|&(due, _)| due);
        let depth = c.ends.len();
        if moved && was_empty {
            // The queue's bytes begin to wait now: a stall is counted from here, not from
            // when the frames were sent.
            c.progress = now;
        }
        if moved {
            self.dirty.push(token);
            self.counts.queue_frames_peak = self.counts.queue_frames_peak.max(depth);
        }
        if let Some(due) = next {
            self.arm(token, due);
        }
    }

    /// Feeds one input and does what the node asks, until nothing more follows from it.
    fn feed(&mut self, key: usize, input: Input) {
        // Most inputs cause no other: `pending` allocates only when one does.
        let mut next = Some(input);
        let mut pending = Vec::new();
        while let Some(input) = next.take().or_else(|| pending.pop()) {
            let now = self.now();
            let Some(slot) = self.nodes.get_mut(&key).filter(|s| !s.silent) else {
                return;
            };
            slot.machine.handle(now, input);
            let addr = slot.addr;
            while let Some(out) = slot.machine.poll_output() {
                match out {
                    Output::Event(e) => self.records.push(Record::Event(now, addr, e)),
                    other => self.actions.push(other),
                }
            }
            // The buffer is kept for the next input (an `act` that feeds another node finds
            // an empty one and allocates its own).
            let mut actions = std::mem::take(&mut self.actions);
            for out in actions.drain(..) {
                if let Some(next) = self.act(key, out, now) {
                    pending.push(next);
                }
            }
            self.actions = actions;
        }
    }

    /// Does one output; returns an input it causes at once (a connection closed because
    /// its write queue is full).
    fn act(&mut self, key: usize, out: Output, now: Time) -> Option<Input> {
        match out {
            Output::Connect { addr } => {
                self.dial(key, addr);
                None
            }
            Output::Send { conn, msg } => self.send(key, conn, &msg, now),
            Output::Close { conn } => {
                let slot = self.nodes.get_mut(&key)?;
                let t = slot.conns.remove(&conn)?;
                let delay = draw(self.latency, slot.latency_rng.as_deref_mut());
                self.close_after_queued(t, now, delay);
                None
            }
            Output::SetTimer { at, timer } => {
                self.push_timer(at, Due::Node { key, timer });
                None
            }
            Output::Event(e) => {
                debug_assert!(false, "events are split off in feed(): {e:?}");
                None
            }
        }
    }

    fn send(&mut self, key: usize, conn: ConnId, msg: &Message, now: Time) -> Option<Input> {
        let slot = self.nodes.get_mut(&key)?;
        let t = *slot.conns.get(&conn)?;
        // Drawn from the node's own stream: the same sends draw the same latencies.
        let delay = draw(self.latency, slot.latency_rng.as_deref_mut());
        let max = self.io.write_queue_frames_max;
        // Borrowed from `socks` alone: `encoded` is used with it.
        let Some(Some(Sock::Conn(c))) = self.socks.get_mut(t) else {
            return None;
        };
        let held = c.hold.as_ref().map_or(0, |h| h.queue.len());
        if c.ends.len() >= max || held >= self.io.held_frames_max {
            // Frames held for the latency model are not the peer's doing: only those due
            // and unwritten count against the write queue; the held have a bound of their own.
            let remote = c.remote;
            if let Some(slot) = self.nodes.get_mut(&key) {
                slot.conns.remove(&conn);
            }
            self.drop_sock(t);
            let why = if held >= self.io.held_frames_max {
                format!("{held} frames held for the latency model for {remote}: connection closed")
            } else {
                format!("{max} frames queued for {remote}: too slow, connection closed")
            };
            self.note_for(Some(key), why);
            return Some(Input::Closed { conn });
        }
        let reference = matches!(c.framing, Framing::Reference(_));
        self.counts.frames_out += 1;
        if let (Some(h), Some(d)) = (c.hold.as_deref_mut(), delay) {
            encode(msg, reference, &mut self.encoded, &mut h.bytes);
            let due = h.due(now, d);
            h.queue.push_back((due, h.bytes.len()));
            self.arm(t, due);
            return None;
        }
        let first = c.sent == c.out.len();
        if first {
            c.progress = now;
        }
        encode(msg, reference, &mut self.encoded, &mut c.out);
        c.ends.push_back(c.out.len());
        let depth = c.ends.len();
        if first {
            self.dirty.push(t);
        }
        self.counts.queue_frames_peak = self.counts.queue_frames_peak.max(depth);
        None
    }

    // ----- time -----

    fn fire_due(&mut self) {
        let now = self.now();
        while let Some(&Reverse((at, _, due))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match due {
                Due::Tick => self.tick(at, now),
                Due::Accept { token } => self.accept(token),
                Due::Release { token } => self.release(token, at, now),
                Due::Node {
                    key,
                    timer: TimerId::Liveness,
                } if self.overloaded => {
                    // Its verdict would count our lateness as the neighbours' silence.
                    self.shared
                        .stats
                        .liveness_deferred
                        .fetch_add(1, Ordering::Relaxed);
                    self.push_timer(
                        now + DEFER,
                        Due::Node {
                            key,
                            timer: TimerId::Liveness,
                        },
                    );
                }
                Due::Node { key, timer } => self.feed(key, Input::Timer(timer)),
            }
        }
    }

    /// The 100 ms tick: measures lag, gives up on slow dials and stalled writes.
    fn tick(&mut self, scheduled: Time, now: Time) {
        self.shared.stats.add(&mut self.counts);
        let lag = now.0.saturating_sub(scheduled.0);
        {
            let stats = &self.shared.stats;
            stats.lag.lock().unwrap_or_else(|p| p.into_inner()).add(lag);
        }
        let worst = self.shared.stats.set_lag(self.index, lag);
        let overloaded = worst > LAG_HIGH_MICROS;
        if self.index == 0 && self.overloaded {
            let span = now.0.saturating_sub(self.last_tick.0);
            self.shared
                .stats
                .overloaded_micros
                .fetch_add(span, Ordering::Relaxed);
        }
        self.last_tick = now;
        if overloaded != self.overloaded {
            self.overloaded = overloaded;
            if !overloaded && self.index == 0 {
                let since = now.0.saturating_sub(self.overloaded_since.0);
                self.note_for(
                    None,
                    format!(
                        "caught up: every event loop within {} ms again after {:.1} s overloaded",
                        LAG_HIGH_MICROS / 1000,
                        since as f64 / 1e6
                    ),
                );
            }
            if overloaded && self.index == 0 {
                // Loop 0 speaks for the process (another loop may have seen it first).
                self.overloaded_since = now;
                let n = self
                    .shared
                    .stats
                    .overload_episodes
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if n.is_power_of_two() {
                    self.note_for(
                        None,
                        format!(
                            "overloaded: an event loop runs {:.0} ms late (over {} ms); liveness rounds wait until it catches up ({n} times so far)",
                            worst as f64 / 1e3,
                            LAG_HIGH_MICROS / 1000
                        ),
                    );
                }
            }
        }
        self.push_timer(now + TICK, Due::Tick);
        let write_timeout = Duration(self.io.write_timeout.as_micros() as u64);
        let mut late_dials = Vec::new();
        let mut stalled = Vec::new();
        for (t, s) in self.socks.iter().enumerate() {
            let Some(Sock::Conn(c)) = s else { continue };
            if let Some(deadline) = c.dialing {
                if now >= deadline {
                    late_dials.push((t, c.node, c.remote, deadline));
                }
            } else if c.sent < c.out.len() && now.0 >= c.progress.0 + write_timeout.0 {
                // A silent node's writes, and those across a partition, wait on purpose.
                if !self.nodes.get(&c.node).is_some_and(|n| n.silent) && !self.held(t) {
                    stalled.push((t, (c.node, c.id)));
                }
            }
        }
        // Each acts only on the socket it found: a feed below can free a token and a dial
        // take it again.
        for (t, node, addr, deadline) in late_dials {
            let still = self
                .conn(t)
                .is_some_and(|c| (c.node, c.remote, c.dialing) == (node, addr, Some(deadline)));
            if !still {
                continue;
            }
            self.drop_sock(t);
            self.note_for(Some(node), format!("cannot connect to {addr}: timed out"));
            self.feed(node, Input::ConnectFailed { addr });
        }
        for (t, who) in stalled {
            if self.same(t, who).is_none() {
                continue;
            }
            let secs = self.io.write_timeout.as_secs_f64();
            self.gone(t, Some(format!("write failed: no progress for {secs} s")));
        }
    }

    /// Hands the turn's records to the recorder, then writes what the turn queued: a
    /// delivery is recorded before anything it causes can reach another loop.
    fn flush_turn(&mut self) {
        if !self.records.is_empty() {
            self.shared.record(&mut self.records);
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &t in &dirty {
            self.write(t);
        }
        dirty.clear();
        self.dirty = dirty;
        if !self.records.is_empty() {
            self.shared.record(&mut self.records);
        }
    }

    fn note_for(&mut self, node: Option<usize>, text: String) {
        let addr = node
            .and_then(|k| self.nodes.get(&k))
            .map_or(NodeAddr::new([0, 0, 0, 0].into(), 0), |s| s.addr);
        let now = self.now();
        self.records.push(Record::Note(now, addr, text));
    }
}

/// Appends `msg`'s frame to `out`. A gossip forwarded to many neighbours is formatted once:
/// `encoded` keeps the last one's text (formatting it once per connection was a tenth of
/// the loops' own CPU).
fn encode(
    msg: &Message,
    reference: bool,
    encoded: &mut Option<(Arc<Gossip>, Vec<u8>)>,
    out: &mut Vec<u8>,
) {
    match (msg, &*encoded) {
        _ if reference => refwire::encode(msg, out),
        (Message::Gossip(g), Some((last, frame))) if Arc::ptr_eq(g, last) => {
            out.extend_from_slice(frame);
        }
        (Message::Gossip(g), _) => {
            let mut frame = encoded.take().map(|(_, f)| f).unwrap_or_default();
            frame.clear();
            // Writing into a Vec cannot fail.
            let _ = writeln!(frame, "{msg}");
            out.extend_from_slice(&frame);
            *encoded = Some((Arc::clone(g), frame));
        }
        // Writing into a Vec cannot fail.
        _ => {
            let _ = writeln!(out, "{msg}");
        }
    }
}

/// One latency draw of a node's, with a latency model.
fn draw(model: Option<Latency>, rng: Option<&mut ChaCha8Rng>) -> Option<Duration> {
    Some(model?.sample(rng?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_due_no_sooner_than_the_one_before_it_on_its_connection() {
        let mut h = Hold::new(Time(0));
        let slow = h.due(Time(0), Duration(50));
        let fast = h.due(Time(1), Duration(5));
        let later = h.due(Time(100), Duration(5));
        assert_eq!((slow, fast, later), (Time(50), Time(50), Time(105)));
    }

    #[test]
    fn a_dialed_connection_s_first_frame_waits_for_the_handshake_then_its_latency() {
        // Connected at 10 with SYN and SYN-ACK of 20 each: the hello leaves at 50 and
        // arrives at 70, three latencies after the dial, as in the simulator.
        let mut h = Hold::new(Time(10) + Duration(40));
        assert_eq!(h.due(Time(10), Duration(20)), Time(70));
        assert_eq!(h.due(Time(80), Duration(20)), Time(100));
    }
}
