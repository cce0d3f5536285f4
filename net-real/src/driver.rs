//! One node's driver: a thread that owns the machine and turns socket activity into inputs.
//!
//! Around it: a listener thread (accepts), a reader thread per connection (frames, length
//! capped while reading), a writer thread per connection behind a bounded queue (a full queue
//! closes that connection and the node is told), and a short-lived thread per dial. Timers
//! are a deadline heap read with `recv_timeout`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::time::Duration as StdDuration;

use sim_core::addr::NodeAddr;
use sim_core::limits::FRAME_BYTES_MAX;
use sim_core::node::{ConnId, Event, Input, Node, Output, TimerId};
use sim_core::sim::WorldEvent;
use sim_core::time::Time;
use sim_core::wire::{Message, WireError, decode};

use crate::fds::FdToken;
use crate::frame::{Frame, LineReader};
use crate::runtime::Shared;

/// Socket limits of the real driver.
#[derive(Clone, Copy, Debug)]
pub struct IoLimits {
    /// Frames queued for one connection before it is closed as too slow.
    pub write_queue_frames_max: usize,
    /// How long one write may block before the connection is closed.
    pub write_timeout: StdDuration,
    /// How long a dial may take.
    pub connect_timeout: StdDuration,
}

impl Default for IoLimits {
    fn default() -> Self {
        IoLimits {
            write_queue_frames_max: 1024,
            write_timeout: StdDuration::from_secs(10),
            connect_timeout: StdDuration::from_secs(3),
        }
    }
}

/// Stack of reader, writer and dial threads: they hold a 64 KiB line at most on the heap.
const IO_THREAD_STACK_BYTES: usize = 128 * 1024;

/// What reaches a driver.
pub(crate) enum Ctl {
    Accepted(TcpStream),
    Dialed {
        addr: NodeAddr,
        result: std::io::Result<TcpStream>,
    },
    Frame {
        conn: ConnId,
        frame: Result<Message, WireError>,
    },
    Gone {
        conn: ConnId,
        why: Option<String>,
    },
    Originate(String),
    Shutdown,
    Kill,
}

struct ConnIo {
    remote: NodeAddr,
    queue: SyncSender<Vec<u8>>,
    stream: TcpStream,
    /// Accepted (not dialed).
    inbound: bool,
    /// It sent a valid frame: never evicted to make room.
    spoke: bool,
    /// The socket's descriptor, counted against the budget.
    _fd: FdToken,
}

/// Accepts connections until `stop` is set (and a connection wakes it).
pub(crate) fn spawn_listener(
    listener: TcpListener,
    tx: Sender<Ctl>,
    addr: NodeAddr,
) -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::Builder::new()
        .name(format!("listen {addr}"))
        .stack_size(IO_THREAD_STACK_BYTES)
        .spawn(move || {
            for s in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                match s {
                    Ok(stream) => {
                        if tx.send(Ctl::Accepted(stream)).is_err() {
                            return;
                        }
                    }
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin, and keep serving.
                    Err(_) => std::thread::sleep(StdDuration::from_millis(50)),
                }
            }
        })?;
    Ok(stop)
}

struct Driver<N> {
    node: N,
    addr: NodeAddr,
    shared: Arc<Shared>,
    tx: Sender<Ctl>,
    io: IoLimits,
    conns: BTreeMap<ConnId, ConnIo>,
    next_conn: u64,
    timers: BinaryHeap<Reverse<(Time, TimerId)>>,
    events: Vec<(Time, Event)>,
    actions: Vec<Output>,
}

/// The driver thread's body.
#[allow(clippy::too_many_arguments)] // one call site, in `Runtime::spawn`
pub(crate) fn run<N: Node>(
    node: N,
    addr: NodeAddr,
    shared: Arc<Shared>,
    tx: Sender<Ctl>,
    rx: Receiver<Ctl>,
    io: IoLimits,
    stop: Arc<AtomicBool>,
    wake: SocketAddr,
) {
    let mut d = Driver {
        node,
        addr,
        shared,
        tx,
        io,
        conns: BTreeMap::new(),
        next_conn: 0,
        timers: BinaryHeap::new(),
        events: Vec::new(),
        actions: Vec::new(),
    };
    d.feed(Input::Start);
    let abrupt = d.serve(&rx);
    stop.store(true, Ordering::SeqCst);
    // Wake the listener so that it sees the flag and drops the socket.
    let _ = TcpStream::connect_timeout(&wake, StdDuration::from_secs(1));
    if abrupt {
        let at = d.shared.clock.now();
        let e = WorldEvent::Down {
            node: d.addr,
            silent: false,
        };
        d.shared.world(at, d.addr, &e);
    }
    for (_, c) in std::mem::take(&mut d.conns) {
        if abrupt {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        // Otherwise dropping the queue lets the writer send what is queued, then close.
    }
}

impl<N: Node> Driver<N> {
    /// Runs until told to stop; returns whether the stop is abrupt.
    fn serve(&mut self, rx: &Receiver<Ctl>) -> bool {
        loop {
            let msg = match self.timers.peek() {
                Some(Reverse((at, _))) => {
                    let wait = self.shared.clock.instant(*at);
                    let left = wait.saturating_duration_since(std::time::Instant::now());
                    rx.recv_timeout(left)
                }
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match msg {
                Ok(Ctl::Shutdown) | Err(RecvTimeoutError::Disconnected) => return false,
                Ok(Ctl::Kill) => return true,
                Ok(m) => self.control(m),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.fire_due_timers();
        }
    }

    fn fire_due_timers(&mut self) {
        let now = self.shared.clock.now();
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.feed(Input::Timer(timer));
        }
    }

    fn control(&mut self, msg: Ctl) {
        match msg {
            Ctl::Accepted(stream) => self.accepted(stream),
            Ctl::Dialed { addr, result } => match result {
                Ok(_) if !self.shared.fds.has_room() => {
                    self.shared.fds.refused();
                    self.note(format!(
                        "connection to {addr} dropped: the descriptor budget is spent"
                    ));
                    self.feed(Input::ConnectFailed { addr });
                }
                Ok(stream) => self.open(stream, addr, true),
                Err(e) => {
                    self.note(format!("cannot connect to {addr}: {e}"));
                    self.feed(Input::ConnectFailed { addr });
                }
            },
            Ctl::Frame { conn, frame } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.spoke |= frame.is_ok();
                    let input = match frame {
                        Ok(msg) => Input::Received { conn, msg },
                        Err(error) => Input::Malformed { conn, error },
                    };
                    self.feed(input);
                }
            }
            Ctl::Gone { conn, why } => {
                if let Some(c) = self.conns.remove(&conn) {
                    let _ = c.stream.shutdown(Shutdown::Both);
                    if let Some(why) = why {
                        self.note(format!("connection with {} failed: {why}", c.remote));
                    }
                    self.feed(Input::Closed { conn });
                }
            }
            Ctl::Originate(body) => self.feed(Input::Originate { body }),
            Ctl::Shutdown | Ctl::Kill => {
                debug_assert!(false, "stop messages are handled by serve()");
            }
        }
    }

    fn accepted(&mut self, stream: TcpStream) {
        let remote = match stream.peer_addr() {
            Ok(SocketAddr::V4(a)) => NodeAddr::new(*a.ip(), a.port()),
            // Listeners bind IPv4 addresses only; a connection that is already gone is
            // nothing to serve.
            Ok(SocketAddr::V6(_)) | Err(_) => return,
        };
        if !self.shared.fds.has_room() && !self.evict_for(remote) {
            self.refuse_busy(&stream, remote);
            return;
        }
        self.open(stream, remote, false);
    }

    /// Closes the oldest inbound connection that has said nothing valid, to make room for
    /// one from `newcomer`; whether the budget then has room.
    fn evict_for(&mut self, newcomer: NodeAddr) -> bool {
        let victim = self
            .conns
            .iter()
            .find(|(_, c)| c.inbound && !c.spoke)
            .map(|(id, _)| *id);
        let Some(conn) = victim else {
            return false;
        };
        if let Some(c) = self.conns.remove(&conn) {
            let _ = c.stream.shutdown(Shutdown::Both);
            self.shared.fds.evicted();
            let n = self.shared.fds.figures().evicted;
            if n.is_power_of_two() {
                self.note(format!(
                    "descriptor budget spent: closed {} (silent) to serve {newcomer} ({n} so far)",
                    c.remote
                ));
            }
            self.feed(Input::Closed { conn });
        }
        self.shared.fds.has_room_after_eviction()
    }

    /// Answers `busy` on an accepted socket the budget cannot serve, and drops it.
    fn refuse_busy(&self, stream: &TcpStream, remote: NodeAddr) {
        let busy = Message::Refuse {
            reason: sim_core::wire::RefuseReason::Busy,
        };
        let _ = stream.set_write_timeout(Some(StdDuration::from_millis(100)));
        let _ = (&*stream).write_all(busy.encode().as_bytes());
        let _ = stream.shutdown(Shutdown::Both);
        self.shared.fds.refused();
        let figures = self.shared.fds.figures();
        if figures.refused.is_power_of_two() {
            self.note(format!(
                "refused {remote}: busy, the descriptor budget ({} connections under a limit of {}) is spent ({} refused so far)",
                figures.connections_max, figures.limit, figures.refused
            ));
        }
    }

    /// Starts the reader and writer of a new connection and tells the node.
    fn open(&mut self, stream: TcpStream, remote: NodeAddr, outbound: bool) {
        let conn = ConnId::new(self.next_conn);
        self.next_conn += 1;
        match self.start_io(conn, stream, remote, !outbound) {
            Ok(c) => {
                self.conns.insert(conn, c);
                self.feed(Input::Connected {
                    conn,
                    remote,
                    outbound,
                });
            }
            Err(e) => {
                self.note(format!("cannot serve connection with {remote}: {e}"));
                if outbound {
                    self.feed(Input::ConnectFailed { addr: remote });
                }
            }
        }
    }

    fn start_io(
        &self,
        conn: ConnId,
        stream: TcpStream,
        remote: NodeAddr,
        inbound: bool,
    ) -> std::io::Result<ConnIo> {
        let fds = &self.shared.fds;
        let fd = FdToken::take(fds);
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(self.io.write_timeout))?;
        let (queue, frames) = mpsc::sync_channel::<Vec<u8>>(self.io.write_queue_frames_max);
        let reader = (stream.try_clone()?, FdToken::take(fds));
        let writer = (stream.try_clone()?, FdToken::take(fds));
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(format!("read {remote}"))
            .stack_size(IO_THREAD_STACK_BYTES)
            .spawn(move || {
                let (s, _fd) = reader;
                read_frames(conn, s, &tx);
            })?;
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(format!("write {remote}"))
            .stack_size(IO_THREAD_STACK_BYTES)
            .spawn(move || {
                let (s, _fd) = writer;
                write_frames(conn, s, &frames, &tx);
            })?;
        Ok(ConnIo {
            remote,
            queue,
            stream,
            inbound,
            spoke: false,
            _fd: fd,
        })
    }

    /// Feeds one input and does what the node asks, until nothing more follows from it.
    fn feed(&mut self, input: Input) {
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            let now = self.shared.clock.now();
            self.node.handle(now, input);
            while let Some(out) = self.node.poll_output() {
                match out {
                    Output::Event(e) => self.events.push((now, e)),
                    other => self.actions.push(other),
                }
            }
            // Events first: the recorder then sees a delivery before anything it causes.
            self.shared.events(self.addr, &self.events);
            self.events.clear();
            for out in std::mem::take(&mut self.actions) {
                if let Some(next) = self.act(out) {
                    pending.push(next);
                }
            }
        }
    }

    /// Does one output; returns an input it causes at once (a connection closed because
    /// its write queue is full).
    fn act(&mut self, out: Output) -> Option<Input> {
        match out {
            Output::Connect { addr } => {
                self.dial(addr);
                None
            }
            Output::Send { conn, msg } => self.send(conn, &msg),
            Output::Close { conn } => {
                // Dropping the queue lets the writer finish what is queued, then close.
                self.conns.remove(&conn);
                None
            }
            Output::SetTimer { at, timer } => {
                self.timers.push(Reverse((at, timer)));
                None
            }
            Output::Event(e) => {
                debug_assert!(false, "events are split off in feed(): {e:?}");
                None
            }
        }
    }

    fn send(&mut self, conn: ConnId, msg: &Message) -> Option<Input> {
        let c = self.conns.get(&conn)?;
        match c.queue.try_send(msg.encode().into_bytes()) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => {
                let c = self.conns.remove(&conn)?;
                let _ = c.stream.shutdown(Shutdown::Both);
                let max = self.io.write_queue_frames_max;
                self.note(format!(
                    "{max} frames queued for {}: too slow, connection closed",
                    c.remote
                ));
                Some(Input::Closed { conn })
            }
            // The writer stopped on an error; its `Gone` is on the way.
            Err(TrySendError::Disconnected(_)) => None,
        }
    }

    fn dial(&self, addr: NodeAddr) {
        let tx = self.tx.clone();
        let timeout = self.io.connect_timeout;
        let target = SocketAddr::from((addr.ip, addr.port));
        let spawned = std::thread::Builder::new()
            .name(format!("dial {addr}"))
            .stack_size(IO_THREAD_STACK_BYTES)
            .spawn(move || {
                let result = TcpStream::connect_timeout(&target, timeout);
                let _ = tx.send(Ctl::Dialed { addr, result });
            });
        if let Err(e) = spawned {
            let _ = self.tx.send(Ctl::Dialed {
                addr,
                result: Err(e),
            });
        }
    }

    fn note(&self, text: String) {
        self.shared.note(self.shared.clock.now(), self.addr, &text);
    }
}

fn read_frames(conn: ConnId, stream: TcpStream, tx: &Sender<Ctl>) {
    // `+ 1` for the `\r` of a `\r\n` line end; `decode` checks the exact limit.
    let mut lines = LineReader::new(BufReader::new(stream), FRAME_BYTES_MAX + 1);
    loop {
        let frame = match lines.next_frame() {
            Ok(Frame::Line(bytes)) => decode(&bytes),
            Ok(Frame::TooLong { bytes }) => Err(WireError::TooLong { bytes }),
            Ok(Frame::End { partial: 0 }) => {
                let _ = tx.send(Ctl::Gone { conn, why: None });
                return;
            }
            Ok(Frame::End { partial }) => {
                let why = format!("closed in the middle of a frame ({partial} bytes unread)");
                let _ = tx.send(Ctl::Gone {
                    conn,
                    why: Some(why),
                });
                return;
            }
            Err(e) => {
                let why = Some(e.to_string());
                let _ = tx.send(Ctl::Gone { conn, why });
                return;
            }
        };
        if tx.send(Ctl::Frame { conn, frame }).is_err() {
            return; // the node has stopped
        }
    }
}

fn write_frames(conn: ConnId, mut stream: TcpStream, frames: &Receiver<Vec<u8>>, tx: &Sender<Ctl>) {
    for frame in frames {
        if let Err(e) = stream.write_all(&frame) {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = tx.send(Ctl::Gone {
                conn,
                why: Some(format!("write failed: {e}")),
            });
            return;
        }
    }
    // The node closed the connection (or stopped): everything queued is written.
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}
