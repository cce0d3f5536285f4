//! The process side of real runs: one clock, one recorder and one digest memo shared by every
//! node started in the process (or, with `hash_per_peer`, a memo of each peer's own that hashes
//! every copy), and handles to start, stop and talk to those nodes.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use sim_core::addr::NodeAddr;
use sim_core::digest::{DigestMemo, MemoStats};
use sim_core::node::{Event, Node};
use sim_core::peer::{PeerConfig, PeerNode};
use sim_core::report::Recorder;
use sim_core::seed::{SeedConfig, SeedNode};
use sim_core::sim::{Latency, Observer, WorldEvent};
use sim_core::time::Time;
use sim_core::wire::Wire;

use crate::driver::{Cmd, IoLimits, LoopHandle};
use crate::stats::{DriverFigures, DriverStats};

/// Monotonic time since the process's epoch, plus the UNIX time of that epoch for the text
/// timestamps on the wire and in `outputfile.log`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
    wall_offset_micros: u64,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Clock {
            epoch: Instant::now(),
            wall_offset_micros: unix,
        }
    }

    /// Time since the epoch.
    pub fn now(&self) -> Time {
        Time(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// UNIX time of the epoch, in µs.
    pub fn wall_offset_micros(&self) -> u64 {
        self.wall_offset_micros
    }

    /// The instant `t` stands for.
    pub fn instant(&self, t: Time) -> Instant {
        self.epoch + std::time::Duration::from_micros(t.0)
    }
}

/// The ChaCha stream of a node's latency draws (its machine draws from stream 0).
const LATENCY_STREAM: u64 = 0x006c_6174_656e_6379; // "latency" in ASCII

/// What a console line is about.
#[derive(Debug)]
pub enum Happening<'a> {
    /// A node's event.
    Event(&'a Event),
    /// A node was stopped.
    World(&'a WorldEvent),
    /// Something the driver saw (a failed connection, a full write queue).
    Note(&'a str),
}

/// Receives every happening as it is recorded, for printing.
pub type Console = Box<dyn FnMut(Time, NodeAddr, &Happening<'_>) + Send>;

struct Sink {
    rec: Recorder,
    console: Option<Console>,
}

pub(crate) struct Shared {
    sink: Mutex<Sink>,
    changed: Condvar,
    pub(crate) clock: Clock,
    /// The process's descriptor budget.
    pub(crate) fds: Arc<crate::fds::FdBudget>,
    /// What the event loops did.
    pub(crate) stats: DriverStats,
    /// The one-way latency every frame is held for; `None` at zero latency.
    pub(crate) latency: Option<Latency>,
}

/// One thing a loop's turn recorded.
pub(crate) enum Record {
    Event(Time, NodeAddr, Event),
    World(Time, NodeAddr, WorldEvent),
    Note(Time, NodeAddr, String),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sink> {
        // A panicking console leaves plain data behind; keep recording.
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a loop turn's `batch`, in order (leaving it empty), and wakes waiters.
    pub(crate) fn record(&self, batch: &mut Vec<Record>) {
        let mut sink = self.lock();
        let Sink { rec, console } = &mut *sink;
        for r in batch.drain(..) {
            match r {
                Record::Event(at, node, e) => {
                    rec.event(at, node, &e);
                    if let Some(c) = console.as_mut() {
                        c(at, node, &Happening::Event(&e));
                    }
                }
                Record::World(at, node, e) => {
                    rec.world(at, &e);
                    if let Some(c) = console.as_mut() {
                        c(at, node, &Happening::World(&e));
                    }
                }
                Record::Note(at, node, text) => {
                    rec.note(at, node, &text);
                    if let Some(c) = console.as_mut() {
                        c(at, node, &Happening::Note(&text));
                    }
                }
            }
        }
        // A flight recorder's turn is on disk before the next one runs.
        rec.flush_streams();
        drop(sink);
        self.changed.notify_all();
    }

    pub(crate) fn note(&self, at: Time, node: NodeAddr, text: &str) {
        let mut sink = self.lock();
        let Sink { rec, console } = &mut *sink;
        rec.note(at, node, text);
        if let Some(c) = console.as_mut() {
            c(at, node, &Happening::Note(text));
        }
        drop(sink);
        self.changed.notify_all();
    }
}

/// How a process's nodes run.
pub struct RuntimeOptions {
    /// PBKDF2 iterations of the dedup digest.
    pub hash_iterations: u32,
    /// Each peer hashes every gossip copy it receives itself, duplicates included, as the
    /// reference's peer does ([`DigestMemo::every_copy`]); by default the process's nodes
    /// share one memo, so each distinct message is hashed once per process.
    pub hash_per_peer: bool,
    /// Prints what happens, if given.
    pub console: Option<Console>,
    /// Socket limits.
    pub io: IoLimits,
    /// Event-loop threads; 0: one per core.
    pub loops: usize,
    /// Write `outputfile.log` here as lines come (its folder is made), rather than keep it
    /// in memory to the end; kept in memory if the file cannot be made.
    pub log_file: Option<std::path::PathBuf>,
    /// One-way latency added to every frame a node writes, as `gossipnet sim --latency`
    /// models a link's: the driver holds each frame until it is due, in order on its
    /// connection, and a dialed connection's first frame two latencies more (the
    /// handshake). On top of the real network's own delay. `None` (or zero): frames go at
    /// once, with no timer and no draw.
    pub latency: Option<Latency>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            hash_iterations: sim_core::digest::ITERATIONS_DEFAULT,
            hash_per_peer: false,
            console: None,
            io: IoLimits::default(),
            loops: 0,
            log_file: None,
            latency: None,
        }
    }
}

/// Where a node listens and what address it gives others.
#[derive(Clone, Copy, Debug)]
pub struct Listen {
    /// The socket address to bind; port 0 lets the OS choose.
    pub bind: SocketAddrV4,
    /// The address announced in `register` and hellos; by default the bound one (which must
    /// then not be 0.0.0.0).
    pub advertise: Option<NodeAddr>,
}

impl Listen {
    /// Listen on `127.0.0.1:port` (0: a port the OS chooses).
    pub fn loopback(port: u16) -> Self {
        Listen {
            bind: SocketAddrV4::new([127, 0, 0, 1].into(), port),
            advertise: None,
        }
    }

    /// Binds (non-blocking), naming the address and the likely cause when that fails.
    fn bind(&self) -> io::Result<(TcpListener, NodeAddr)> {
        let listener = TcpListener::bind(self.bind).map_err(|e| {
            let hint = match e.kind() {
                io::ErrorKind::AddrInUse => {
                    "; is another seed or peer running on it? choose another port"
                }
                io::ErrorKind::AddrNotAvailable => "; that IP is not one of this machine's",
                io::ErrorKind::PermissionDenied => "; ports below 1024 need privileges",
                _ => "",
            };
            io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}{hint}", self.bind),
            )
        })?;
        let port = match listener.local_addr()? {
            SocketAddr::V4(a) => a.port(),
            SocketAddr::V6(a) => a.port(),
        };
        let addr = match self.advertise {
            Some(a) => a,
            None if self.bind.ip().is_unspecified() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "cannot announce {}: give the address other nodes reach this one at",
                        self.bind
                    ),
                ));
            }
            None => NodeAddr::new(*self.bind.ip(), port),
        };
        listener.set_nonblocking(true)?;
        Ok((listener, addr))
    }
}

/// The nodes of one process share a clock, a recorder, a digest memo and the event loops
/// that drive them (DESIGN.md, "The real backend").
pub struct Runtime {
    shared: Arc<Shared>,
    memo: Arc<DigestMemo>,
    /// With `hash_per_peer`, each peer's own memo (kept for the counters).
    peer_memos: Option<Mutex<Vec<Arc<DigestMemo>>>>,
    loops: Vec<Arc<LoopHandle>>,
    next_key: AtomicUsize,
}

impl Runtime {
    /// A runtime whose clock starts now.
    pub fn new(opts: RuntimeOptions) -> Self {
        let clock = Clock::start();
        let mut rec = Recorder::new(clock.wall_offset_micros());
        if let Some(path) = &opts.log_file {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(f) = std::fs::File::create(path) {
                rec.log_to = Some(std::io::BufWriter::with_capacity(1 << 16, f));
            }
        }
        let shared = Arc::new(Shared {
            sink: Mutex::new(Sink {
                rec,
                console: opts.console,
            }),
            changed: Condvar::new(),
            clock,
            fds: crate::fds::FdBudget::from_process(),
            stats: DriverStats::default(),
            latency: opts
                .latency
                .filter(|l| l.max() > sim_core::time::Duration(0)),
        });
        let wanted = match opts.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // A loop that cannot start leaves the others; none at all is reported at spawn.
        let loops = (0..wanted)
            .filter_map(|i| LoopHandle::start(i, Arc::clone(&shared), opts.io).ok())
            .map(Arc::new)
            .collect();
        Runtime {
            shared,
            memo: DigestMemo::new(opts.hash_iterations),
            peer_memos: opts.hash_per_peer.then(Mutex::default),
            loops,
            next_key: AtomicUsize::new(0),
        }
    }

    /// What the event loops did so far; `cpu_s` is the process's CPU time, for the cost
    /// per frame.
    pub fn driver_figures(&self, cpu_s: Option<f64>) -> DriverFigures {
        self.shared.stats.figures(self.loops.len(), cpu_s)
    }

    /// The process's descriptor budget and what it refused so far.
    pub fn descriptors(&self) -> crate::fds::FdFigures {
        self.shared.fds.figures()
    }

    /// The process clock.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Digest counters (summed over the peers' own memos with `hash_per_peer`).
    pub fn memo_stats(&self) -> MemoStats {
        let mut all = self.memo.stats();
        let Some(memos) = &self.peer_memos else {
            return all;
        };
        for m in memos.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let s = m.stats();
            all.computed += s.computed;
            all.hits += s.hits;
            all.hashing_micros += s.hashing_micros;
            all.prefetched += s.prefetched;
        }
        all
    }

    /// Starts a seed.
    pub fn spawn_seed(
        &self,
        listen: Listen,
        mut cfg: SeedConfig,
        rng: ChaCha8Rng,
    ) -> io::Result<NodeHandle> {
        let (listener, addr) = listen.bind()?;
        cfg.wall_offset_micros = self.shared.clock.wall_offset_micros();
        let wire = cfg.wire;
        let draws = self.latency_rng(&rng);
        let seed = SeedNode::new(addr, cfg, rng);
        self.spawn(listener, addr, seed, wire, true, draws)
    }

    /// Starts a peer that knows `seeds`. Its wall offset is set from the process clock.
    pub fn spawn_peer(
        &self,
        listen: Listen,
        seeds: Vec<NodeAddr>,
        mut cfg: PeerConfig,
        rng: ChaCha8Rng,
    ) -> io::Result<NodeHandle> {
        let (listener, addr) = listen.bind()?;
        cfg.wall_offset_micros = self.shared.clock.wall_offset_micros();
        let wire = cfg.wire;
        if wire == Wire::Reference {
            // Forwards come re-stamped: what the recorder can know a message by is its body.
            self.shared.lock().rec.identity_by_body = true;
        }
        let memo = match &self.peer_memos {
            None => Arc::clone(&self.memo),
            Some(memos) => {
                let own = DigestMemo::every_copy(self.memo.iterations());
                let mut memos = memos.lock().unwrap_or_else(|p| p.into_inner());
                memos.push(Arc::clone(&own));
                own
            }
        };
        let draws = self.latency_rng(&rng);
        let peer = PeerNode::new(addr, seeds, cfg, rng, memo);
        self.spawn(listener, addr, peer, wire, false, draws)
    }

    /// With a latency model, where a node's latency draws come from: the key of its own
    /// RNG (the run seed and its index) on a stream of its own, so that the draws are the
    /// same from run to run and leave the machine's choices as they are.
    fn latency_rng(&self, rng: &ChaCha8Rng) -> Option<Box<ChaCha8Rng>> {
        self.shared.latency?;
        let mut draws = ChaCha8Rng::from_seed(rng.get_seed());
        draws.set_stream(LATENCY_STREAM);
        Some(Box::new(draws))
    }

    /// Hands `node` to a loop (in turn, so that the loops share the nodes).
    fn spawn<N: Node + Send + 'static>(
        &self,
        listener: TcpListener,
        addr: NodeAddr,
        node: N,
        wire: Wire,
        seed: bool,
        latency_rng: Option<Box<ChaCha8Rng>>,
    ) -> io::Result<NodeHandle> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let Some(lp) = self.loops.get(key % self.loops.len().max(1)) else {
            return Err(io::Error::other("no event loop could be started"));
        };
        let cmd = Cmd::Add {
            node: Box::new(node),
            addr,
            listener: mio::net::TcpListener::from_std(listener),
            key,
            wire,
            seed,
            latency_rng,
        };
        if !lp.send(cmd) {
            return Err(io::Error::other("the event loop has stopped"));
        }
        Ok(NodeHandle {
            addr,
            key,
            lp: Some(Arc::clone(lp)),
        })
    }

    /// Reads the recorder as it is now.
    pub fn with_recorder<T>(&self, f: impl FnOnce(&Recorder) -> T) -> T {
        f(&self.shared.lock().rec)
    }

    /// Waits until `done` holds of the recorder, re-checking after every recorded event, for
    /// at most `timeout`. Returns whether it holds.
    pub fn wait_until(
        &self,
        timeout: std::time::Duration,
        mut done: impl FnMut(&Recorder) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut sink = self.shared.lock();
        loop {
            if done(&sink.rec) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            sink = match self.shared.changed.wait_timeout(sink, left) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Makes the recorder a flight recorder ([`Recorder::stream_journal`]): the journal goes
    /// to `path` as it is recorded, and it and the log's file are flushed at the end of
    /// every loop turn that recorded something, so that a process killed outright leaves
    /// what it recorded up to its last turn.
    pub fn stream_journal(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.shared.lock().rec.stream_journal(path)
    }

    /// Takes the recorder out (call after the nodes are stopped).
    pub fn take_recorder(&self) -> Recorder {
        let mut sink = self.shared.lock();
        let offset = sink.rec.wall_offset_micros;
        let mut rec = std::mem::replace(&mut sink.rec, Recorder::new(offset));
        rec.end_journal_stream();
        if let Some(w) = rec.log_to.as_mut()
            && std::io::Write::flush(w).is_err()
        {
            // What the buffer held is lost; say so in what is left of the log.
            rec.log_to = None;
            rec.log
                .push("outputfile.log: lines were lost in a failed write".into());
        }
        rec
    }

    /// Writes a driver note into the log (for the commands' own messages).
    pub fn note(&self, node: NodeAddr, text: &str) {
        self.shared.note(self.shared.clock.now(), node, text);
    }

    /// Records a fault the process made happen (a restart; crashes and silent failures
    /// are recorded by the driver as they take effect).
    pub fn record_world(&self, node: NodeAddr, e: WorldEvent) {
        let mut batch = vec![Record::World(self.shared.clock.now(), node, e)];
        self.shared.record(&mut batch);
    }

    /// Partitions the process's nodes (a fault): frames between `a` and `b` are held and
    /// dials between them fail until [`Runtime::heal`]; recorded as `Fault: WHAT started`.
    pub fn partition(&self, a: Vec<NodeAddr>, b: Vec<NodeAddr>, what: &str) {
        let groups = Arc::new((a.into_iter().collect(), b.into_iter().collect()));
        self.tell_loops(|done| Cmd::Partition {
            groups: Some(Arc::clone(&groups)),
            done,
        });
        let node = NodeAddr::new([0, 0, 0, 0].into(), 0);
        self.record_world(node, WorldEvent::PartitionStarted(what.to_owned()));
    }

    /// Heals the partition in force: what was held goes out (`Fault: WHAT healed`).
    pub fn heal(&self, what: &str) {
        self.tell_loops(|done| Cmd::Partition { groups: None, done });
        let node = NodeAddr::new([0, 0, 0, 0].into(), 0);
        self.record_world(node, WorldEvent::PartitionHealed(what.to_owned()));
    }

    /// Sends every loop the command `make` builds, and waits until each has done it.
    fn tell_loops(&self, make: impl Fn(std::sync::mpsc::Sender<()>) -> Cmd) {
        let (done, finished) = std::sync::mpsc::channel();
        let told = self
            .loops
            .iter()
            .filter(|lp| lp.send(make(done.clone())))
            .count();
        drop(done);
        for _ in 0..told {
            // A loop that ended drops its sender: nothing more to wait for then.
            if finished.recv().is_err() {
                break;
            }
        }
    }
}

/// A running node. Dropping the handle shuts the node down cleanly.
pub struct NodeHandle {
    addr: NodeAddr,
    key: usize,
    lp: Option<Arc<LoopHandle>>,
}

impl NodeHandle {
    /// Where the node listens (as announced).
    pub fn addr(&self) -> NodeAddr {
        self.addr
    }

    /// A function that asks this peer to originate a message, usable from another thread.
    pub fn originator(&self) -> impl Fn(String) + Send + 'static {
        let lp = self.lp.clone();
        let key = self.key;
        move |body| {
            if let Some(lp) = &lp {
                lp.send(Cmd::Originate { key, body });
            }
        }
    }

    /// Asks a peer to originate a gossip message now (seeds ignore it).
    pub fn originate(&self, body: String) {
        // A node that has stopped has no use for it.
        if let Some(lp) = &self.lp {
            lp.send(Cmd::Originate {
                key: self.key,
                body,
            });
        }
    }

    /// Closes every connection after what was queued on it, stops listening, and returns
    /// once the node is gone from its loop.
    pub fn shutdown(mut self) {
        self.stop(false);
    }

    /// Stops abruptly, as a crash would: connections are closed without flushing, and the
    /// stop is recorded as a fault (`Fault: ADDR crashed`).
    pub fn kill(mut self) {
        self.stop(true);
    }

    /// Resets every connection of the node, as a middlebox that forgot them would: both ends
    /// see them close and the node keeps running (recorded as `Fault: ADDR's connections
    /// were reset`).
    pub fn reset(&self) {
        self.tell(|key, done| Cmd::Reset { key, done });
    }

    /// Fails the node silently, as a hung process would: its connections stay open, and it
    /// reads, answers and writes nothing from now on (recorded as `Fault: ADDR failed
    /// silently`). The handle still stops it.
    pub fn silence(&self) {
        self.tell(|key, done| Cmd::Silence { key, done });
    }

    /// Sends the node's loop the command `make` builds and waits until it is done.
    fn tell(&self, make: impl FnOnce(usize, std::sync::mpsc::Sender<()>) -> Cmd) {
        let Some(lp) = &self.lp else { return };
        let (done, finished) = std::sync::mpsc::channel();
        if lp.send(make(self.key, done)) {
            // A loop that ended drops the sender: nothing to wait for then.
            let _ = finished.recv();
        }
    }

    /// Shuts `nodes` down together: every node is told before any is waited for, so that
    /// none of them goes on serving (and logging) the others' departures.
    pub fn shutdown_all(nodes: Vec<NodeHandle>) {
        let (done, stopped) = std::sync::mpsc::channel();
        let mut told = 0;
        for mut n in nodes {
            if let Some(lp) = n.lp.take()
                && lp.send(Cmd::Stop {
                    key: n.key,
                    abrupt: false,
                    done: done.clone(),
                })
            {
                told += 1;
            }
        }
        drop(done);
        for _ in 0..told {
            // A loop that ended drops its senders: nothing more to wait for then.
            if stopped.recv().is_err() {
                break;
            }
        }
    }

    fn stop(&mut self, abrupt: bool) {
        let Some(lp) = self.lp.take() else {
            return;
        };
        let (done, stopped) = std::sync::mpsc::channel();
        if lp.send(Cmd::Stop {
            key: self.key,
            abrupt,
            done,
        }) {
            // A loop that ended drops the sender: nothing to wait for then.
            let _ = stopped.recv();
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.stop(false);
    }
}
