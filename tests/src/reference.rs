//! Stand-ins for the reference program of this protocol (`seed.py` and `peer.py` of the
//! Python original), written from a description of its wire behaviour, so that tests can run
//! mixed networks without the reference's code.
//!
//! A [`RefSeed`] and a [`RefPeer`] behave on the wire as the reference does: the same bytes,
//! the same framing (none: one `read` of up to [`FRAME_BYTES`] is one frame), the same bugs
//! where they show on the wire. They are small test nodes: `std::net`, a thread per
//! connection (and per timer, as the reference), blocking sockets. Every handle records what
//! its node did ([`SeedSnapshot`], [`PeerSnapshot`], [`ReceivedFrame`], an in-memory log), and
//! stopping a handle closes its sockets and joins every thread it started.
//!
//! # Reproduced
//!
//! * Seed: `register:IP:PORT` appends `(IP, PORT)` (not deduplicated) and answers
//!   `registered successfully`; `peer list` answers `peer list:` then `:ip#port` per entry
//!   (a leading empty field); `Dead Node:dIP:dPort:ts:rIP:rPort` removes the first matching
//!   entry and then closes the *reporter's* connection (the reference's bug), or only logs
//!   when nothing matches. The first field must match exactly; anything else is ignored.
//!   Replies are neither padded nor ended by a newline; the seed never speaks unprompted and
//!   tells nobody about the dead; connections stay open.
//! * Peer bootstrap: ⌊n/2⌋+1 seeds at random, one after the other: `register:IP:PORT`, one
//!   read (the reply, unchecked: the reference compares bytes with a str), a pause
//!   ([`RefPeerConfig::list_delay`]), `peer list`, reads until a chunk whose first field is
//!   `peer list`, entries from field 2 on in an ordered union. Seed sockets stay open for
//!   `Dead Node` reports.
//! * Neighbours: the cap `int(40 * 1.5^(-(port % 100)/10))` ([`neighbour_cap`]) counted over
//!   distinct hello identities; every known peer dialled in list order until the cap (which
//!   can be overshot, since links count only once their hello arrives); an incoming
//!   connection over the cap closed at once; a dialled peer whose port ends in this peer's two
//!   digits refused; two connections between the same pair possible.
//! * Hello: both ends send `Connection with Peer:IP:PORT` padded the buggy way (the 28-char
//!   template padded, then substituted: [`hello_frame`], 1031 bytes for `localhost` and a
//!   4-digit port) and read one chunk; a later hello re-maps the connection.
//! * The pause between the hello and the start of the connection's reader, pinger and
//!   generator (the reference's `sleep(1)`, [`RefPeerConfig::first_message_delay`]).
//! * Frames: space-padded to 1024 *characters* ([`pad`]), never cut when longer; padding is
//!   never stripped before splitting on `:`; numbers are parsed after trimming whitespace.
//! * Gossip: each connection gets its own [`RefPeerConfig::message_count`] messages
//!   `gmessage:<ts>:<ip>:<port>:message <N>`; every received gossip is acknowledged with a
//!   padded `forwarding` before the duplicate check; the dedup key is the reference digest of
//!   field 4 *as received* (padding included); a first receipt is forwarded to every other
//!   connection re-stamped (`gmessage:<now>:<own ip>:<own port>:<field 4>`, padded, so longer
//!   than 1024 bytes when the new header is longer); the origin does not record its own
//!   messages, so echoes are processed once; received `forwarding` frames are ignored.
//! * Liveness: a `Liveness Request` every [`RefPeerConfig::ping_interval`] on each connection;
//!   a request is answered with `Liveness Reply:<echoed ts>:<requester>:<own>` (the echoed
//!   timestamp through a float, the requester from the hello mapping); a reply only stores its
//!   timestamp. Dead means 3 *failed sends* of requests on that connection, counted
//!   cumulatively (the reference's reset condition is never true): then `Dead Node` padded to
//!   every seed socket (errors ignored), the neighbour is forgotten and its socket closed.
//! * Errors: where the reference raises while handling a frame (a missing field, a number that
//!   does not parse, bytes that are not UTF-8, a request from a connection without mapping),
//!   the connection's reader ends, as the reference's `except: break`; a `Dead Node` frame on a
//!   peer connection ends that reader too. The seed ends the connection (see below).
//! * Timestamps are Python's `str(datetime.now().timestamp())` ([`python_timestamp`]).
//!
//! # Not reproduced, and why
//!
//! * **Busy loops on EOF.** The reference seed never checks for `b''` and spins forever on a
//!   closed connection; the reference peer spins forever (and never finishes starting) when a
//!   seed closes before answering `peer list`. Neither shows on the wire, both burn a core: a
//!   stand-in ends that connection's thread on EOF (a peer then goes on with its next seed).
//! * **The `winerror` thread death.** On Linux, any exception in the reference seed's handler
//!   raises `AttributeError` inside its `except` and the thread dies, leaving the connection
//!   unread. A stand-in seed ends the connection's thread and closes the connection.
//! * **The 1 s sleep after every frame** (at most one frame a second per connection) is
//!   [`RefPeerConfig::frame_pause`], default 0: it only slows the reference down, and tests
//!   must be fast. Set it to 1 s for the reference's pace.
//! * **The forwarder's `recv` on other neighbours' sockets.** After each forward the reference
//!   reads once from the *target's* socket in the forwarding thread, racing that socket's own
//!   reader and swallowing a random frame (or blocking). A stand-in only writes; the target's
//!   `forwarding` ack then reaches the target connection's own reader, which ignores it.
//! * **The `KeyError` path.** When the first chunk of a link is not a hello, the reference
//!   sends its hello again, carries on without a mapping and dies on `KeyError` before starting
//!   the connection's threads (the socket stays open, silent). A stand-in sends its hello again
//!   and closes the connection.
//! * **The 1 % random rejection.** The reference refuses a connection whose remote port ends
//!   in its own two digits, and for an incoming connection that port is the remote's ephemeral
//!   port, so about 1 % of incoming connections are dropped at random. A stand-in drops the
//!   check for incoming connections and keeps it for dialled ones, where the remote port is
//!   the listening port that the hello will carry, as in the reference.
//! * **Log files.** The reference writes `outputfile.log` and `freqtrack.log`; a stand-in keeps
//!   its log in memory ([`Journal::log_since`]).
//! * **Partial sends.** The reference calls `send` once per frame from several threads; a
//!   stand-in writes a whole frame under a per-connection lock, so frames never interleave
//!   (the reference's could only when a socket buffer is full).
//! * **Two links to one neighbour that dies.** The reference drops the identity from its count
//!   even when a second connection to it remains; a stand-in counts the remaining connection.
//! * **Numbers.** Ports are `u16`; the reference's `int()` takes any integer (and `5_000`). A
//!   port outside `u16` is treated as a number that does not parse. Seed config files may hold
//!   blank lines ([`parse_seed_config`] skips them; the reference fails on them).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sim_core::digest::reference_digest;

// ---------------------------------------------------------------------------------- limits

/// Characters the reference pads a frame to, and the most bytes one read takes (`recv(1024)`).
pub const FRAME_BYTES: usize = 1024;
/// Received chunks a node keeps for inspection; the oldest are dropped first.
pub const FRAMES_KEPT_MAX: usize = 10_000;
/// Log lines a node keeps; the oldest are dropped first.
pub const LOG_LINES_MAX: usize = 10_000;
/// How long a dial (to a seed or a peer) may take before it counts as failed.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a listener looks for a connection and for a stop (`accept` does not wake on one).
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// How often [`wait_until`] checks its condition.
const WAIT_POLL: Duration = Duration::from_millis(15);

// The reference's settings, the defaults of [`RefPeerConfig::new`].

/// The reference's pause between `register` and `peer list` (`sleep(2)`).
pub const LIST_DELAY: Duration = Duration::from_secs(2);
/// The reference's pause between a hello and the start of the connection's threads.
pub const FIRST_MESSAGE_DELAY: Duration = Duration::from_secs(1);
/// The reference's pause between two gossip messages of one connection.
pub const MESSAGE_INTERVAL: Duration = Duration::from_secs(5);
/// Gossip messages the reference originates on each connection.
pub const MESSAGE_COUNT: u32 = 10;
/// The reference's pause between two liveness requests of one connection.
pub const PING_INTERVAL: Duration = Duration::from_secs(13);
/// Failed request sends on one connection after which the reference reports the neighbour.
pub const FAILED_SENDS_MAX: u32 = 3;
/// Iterations of the reference digest.
pub const DIGEST_ITERATIONS: u32 = 100_000;
/// The address every reference peer advertises.
pub const ADVERTISED_IP: &str = "localhost";
/// The text before the number in a gossip body (`message 3`).
pub const MESSAGE_PREFIX: &str = "message";

// ------------------------------------------------------------------------------- the wire

/// First field of a registration (`register:IP:PORT`, unpadded).
pub const TAG_REGISTER: &str = "register";
/// The seed's answer to a registration, unpadded.
pub const REGISTERED_REPLY: &str = "registered successfully";
/// A peer list request (unpadded, the whole frame) and the first field of its answer.
pub const TAG_PEER_LIST: &str = "peer list";
/// First field of a dead-node report (padded).
pub const TAG_DEAD_NODE: &str = "Dead Node";
/// First field of the hello both ends of a link send.
pub const TAG_HELLO: &str = "Connection with Peer";
/// First field of a gossip frame.
pub const TAG_GOSSIP: &str = "gmessage";
/// The acknowledgement of every gossip frame (the whole frame, padded).
pub const TAG_ACK: &str = "forwarding";
/// First field of a liveness request.
pub const TAG_PING: &str = "Liveness Request";
/// First field of a liveness reply.
pub const TAG_PONG: &str = "Liveness Reply";

/// The hello as the reference writes it before substitution; its length sets the padding.
const HELLO_TEMPLATE: &str = "Connection with Peer:{0}:{1}";
const _: () = assert!(
    HELLO_TEMPLATE.len() == 28,
    "the reference's template is 28 chars"
);
const _: () = assert!(
    HELLO_TEMPLATE.len() < FRAME_BYTES,
    "the template is always padded"
);

/// `text` padded with spaces to [`FRAME_BYTES`] characters (not bytes: the reference pads a
/// Python `str`), and left whole when it is as long or longer.
pub fn pad(text: &str) -> String {
    let missing = FRAME_BYTES.saturating_sub(text.chars().count());
    let mut out = String::with_capacity(text.len() + missing);
    out.push_str(text);
    out.extend(std::iter::repeat_n(' ', missing));
    out
}

/// The reference's hello: the 28-char template is padded to 1024 first and substituted
/// after, so the frame is `1018 + len(ip) + len(port)` bytes (1031 for `localhost:5000`).
pub fn hello_frame(ip: &str, port: u16) -> String {
    let mut out = format!("{TAG_HELLO}:{ip}:{port}");
    out.extend(std::iter::repeat_n(' ', FRAME_BYTES - HELLO_TEMPLATE.len()));
    out
}

/// Python's `str(datetime.now().timestamp())` for a time `since_epoch` after the UNIX epoch:
/// seconds, a dot, the microseconds without trailing zeros but at least one digit
/// (`1739620800.1`, `1739620800.0`, `1739620800.000005`).
pub fn python_timestamp(since_epoch: Duration) -> String {
    let micros = format!("{:06}", since_epoch.subsec_micros());
    let decimals = micros.trim_end_matches('0');
    let decimals = if decimals.is_empty() { "0" } else { decimals };
    format!("{}.{decimals}", since_epoch.as_secs())
}

/// [`python_timestamp`] of the current wall-clock time.
pub fn now_timestamp() -> String {
    python_timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// Python's `str(x)` of a float: the shortest digits that read back as `x`, a `.0` on whole
/// numbers, and exponent form (`1e+16`, `1.5e-05`) below 1e-4 and from 1e16 on.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if x != 0.0 && !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let plain = format!("{x}");
    if plain.contains('.') {
        plain
    } else {
        plain + ".0"
    }
}

/// The reference's neighbour cap for a peer listening on `port`:
/// `int(40 * 1.5^(-(port % 100)/10))` (40 for `..00`, 8 for `..39`, 0 from `..91` on).
pub fn neighbour_cap(port: u16) -> usize {
    let node_id = f64::from(port % 100);
    // Truncation toward zero, as Python's int(); the value is in 0..=40.
    (40.0 * 1.5_f64.powf(-node_id / 10.0)) as usize
}

/// How many of `seed_count` seeds a reference peer registers with: ⌊n/2⌋+1 (all there are
/// when that is more).
pub fn seeds_to_register(seed_count: usize) -> usize {
    (seed_count / 2 + 1).min(seed_count)
}

/// A number field read as the reference's `int()`/`float()` read it: the surrounding
/// whitespace (padding) is allowed. An error says what the reference would raise on.
fn number<T: FromStr>(fields: &[&str], index: usize, what: &str) -> Result<T, String> {
    let field = text_field(fields, index, what)?;
    field.trim().parse().map_err(|_| {
        format!(
            "{what} (field {index}) is not a number: {:?}",
            field.trim_end()
        )
    })
}

/// The endpoint of fields `index` (IP) and `index + 1` (port).
fn endpoint_field(fields: &[&str], index: usize, what: &str) -> Result<Endpoint, String> {
    let ip = text_field(fields, index, what)?;
    Ok(Endpoint::new(ip, number(fields, index + 1, what)?))
}

/// A text field, or what the reference would raise on (`IndexError`).
fn text_field<'a>(fields: &[&'a str], index: usize, what: &str) -> Result<&'a str, String> {
    fields
        .get(index)
        .copied()
        .ok_or_else(|| format!("no {what} (field {index})"))
}

// --------------------------------------------------------------------------------- records

/// A node's address as the protocol carries it: an IP string (`localhost` for the reference)
/// and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// The IP string, as sent (never resolved).
    pub ip: String,
    /// The listening port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint from its parts.
    pub fn new(ip: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: ip.to_owned(),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// One chunk a node read: what the reference takes as one frame.
#[derive(Clone, Debug)]
pub struct ReceivedFrame {
    /// When it was read.
    pub at: Instant,
    /// The socket address of the other end (an ephemeral port for incoming connections).
    pub from: SocketAddr,
    /// The hello identity of the connection when it had one at the time.
    pub identity: Option<Endpoint>,
    /// The bytes of the one read, 1 to [`FRAME_BYTES`] of them.
    pub bytes: Vec<u8>,
}

/// A dead-node report as a seed received it.
#[derive(Clone, Debug)]
pub struct SeedDeadReport {
    /// The peer reported dead (fields 1 and 2).
    pub dead: Endpoint,
    /// The reporter as `ip:port` (fields 4 and 5, the padding trimmed; empty when missing).
    pub reporter: String,
    /// The report's timestamp (field 3, as sent).
    pub timestamp: String,
    /// Whether an entry was removed (else the seed only logged it).
    pub removed: bool,
    /// When the seed handled it.
    pub at: Instant,
}

/// What a seed holds and did.
#[derive(Clone, Debug)]
pub struct SeedSnapshot {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its peer list, in registration order, duplicates included.
    pub list: Vec<Endpoint>,
    /// Every dead-node report it handled, in order.
    pub dead_reports: Vec<SeedDeadReport>,
}

impl SeedSnapshot {
    /// The reports that removed an entry.
    pub fn removals(&self) -> impl Iterator<Item = &SeedDeadReport> {
        self.dead_reports.iter().filter(|r| r.removed)
    }
}

/// A gossip body a peer received for the first time (per dedup key).
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The body with its trailing whitespace trimmed (`message 3`).
    pub body: String,
    /// Field 4 as received, padding included: what the dedup key is the digest of.
    pub raw_body: String,
    /// The timestamp the immediate sender stamped (field 1).
    pub timestamp: String,
    /// The immediate sender's IP as stamped (field 2): the origin or the last forwarder.
    pub sender_ip: String,
    /// The immediate sender's port as stamped (field 3).
    pub sender_port: String,
    /// The hello identity of the connection it arrived on.
    pub from: Option<Endpoint>,
    /// When it was received.
    pub at: Instant,
}

/// A dead-node report a peer sent.
#[derive(Clone, Debug)]
pub struct DeadReport {
    /// The neighbour reported dead (its hello identity).
    pub dead: Endpoint,
    /// The report's timestamp.
    pub timestamp: String,
    /// The seeds the report was written to without an error.
    pub sent_to: Vec<SocketAddr>,
    /// When it was sent.
    pub at: Instant,
}

/// What a peer holds and did.
#[derive(Clone, Debug)]
pub struct PeerSnapshot {
    /// Its identity: the advertised IP and the listening port.
    pub identity: Endpoint,
    /// Its neighbour cap ([`neighbour_cap`]).
    pub neighbour_cap: usize,
    /// The seeds it sent `register` to, in order.
    pub registered_seeds: Vec<SocketAddr>,
    /// Whether it has been through all its chosen seeds (and started dialling).
    pub bootstrapped: bool,
    /// The peers it knows (the union of the seeds' lists, less those found dead).
    pub known_peers: Vec<Endpoint>,
    /// Its neighbours by hello identity, each once, in the order of their connections.
    pub neighbours: Vec<Endpoint>,
    /// Mapped connections (more than `neighbours` when two connections join one pair).
    pub links: usize,
    /// First receipts of gossip, in order.
    pub deliveries: Vec<Delivery>,
    /// The bodies it sent as their origin, each once (every connection sends them all).
    pub originated: BTreeSet<String>,
    /// The last liveness-reply timestamp from each neighbour (all a reply does).
    pub liveness_replies: BTreeMap<Endpoint, f64>,
    /// Dead-node reports it sent, in order.
    pub dead_reports: Vec<DeadReport>,
}

/// What a node read and logged, each bounded (the oldest go first); written by the node's
/// threads, read through its handle ([`RefSeed::journal`], [`RefPeer::journal`]).
#[derive(Default)]
pub struct Journal {
    records: Mutex<JournalRecords>,
}

#[derive(Default)]
struct JournalRecords {
    frames: VecDeque<ReceivedFrame>,
    frames_total: u64,
    log: VecDeque<String>,
    log_total: u64,
}

impl Journal {
    /// The chunks the node read (from seeds and peers alike), oldest first, at most
    /// [`FRAMES_KEPT_MAX`].
    pub fn frames(&self) -> Vec<ReceivedFrame> {
        lock(&self.records).frames.iter().cloned().collect()
    }

    /// Chunks read since the node started, including those no longer kept.
    pub fn frames_received(&self) -> u64 {
        lock(&self.records).frames_total
    }

    /// The log lines numbered `seen` and after (those still kept), and the count so far: pass
    /// that count next time to get only the new lines.
    pub fn log_since(&self, seen: u64) -> (Vec<String>, u64) {
        let records = lock(&self.records);
        let first_kept = records.log_total - records.log.len() as u64;
        let skip = usize::try_from(seen.saturating_sub(first_kept)).unwrap_or(usize::MAX);
        let lines = records.log.iter().skip(skip).cloned().collect();
        (lines, records.log_total)
    }

    fn frame(&self, frame: ReceivedFrame) {
        let mut records = lock(&self.records);
        push_bounded(&mut records.frames, frame, FRAMES_KEPT_MAX);
        records.frames_total += 1;
    }

    fn log(&self, line: String) {
        let mut records = lock(&self.records);
        push_bounded(&mut records.log, line, LOG_LINES_MAX);
        records.log_total += 1;
    }
}

/// Appends `item`, dropping the oldest when `queue` already holds `max`.
fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, max: usize) {
    if queue.len() == max {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Polls `cond` every 15 ms until it holds (true) or `timeout` has passed (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(WAIT_POLL);
    }
}

// ------------------------------------------------------------------ threads and sockets

/// A lock that outlives a panicked holder: the records stay readable after a test failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One TCP connection, shared by the threads that read, write and time it.
struct Conn {
    id: u64,
    stream: TcpStream,
    remote: SocketAddr,
    /// Held for a whole frame, so frames of several threads never interleave.
    write_lock: Mutex<()>,
}

impl Conn {
    fn send(&self, frame: &str) -> io::Result<()> {
        let _whole_frame = lock(&self.write_lock);
        (&self.stream).write_all(frame.as_bytes())
    }

    /// One read of up to [`FRAME_BYTES`]; EOF is an error (`UnexpectedEof`).
    fn read_chunk(&self, buf: &mut [u8; FRAME_BYTES]) -> io::Result<usize> {
        loop {
            match (&self.stream).read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// The threads and sockets of one node, and its stop.
///
/// Stopping shuts every socket down (which wakes every blocked read and write), wakes every
/// pause, and refuses new sockets and threads; then it waits for the threads.
struct Life {
    stopped: Mutex<bool>,
    stop_signal: Condvar,
    conns: Mutex<BTreeMap<u64, Weak<Conn>>>,
    next_conn: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Life {
    fn new() -> Life {
        Life {
            stopped: Mutex::new(false),
            stop_signal: Condvar::new(),
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        }
    }

    fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    /// Sleeps `duration`; false (at once) when the node stops.
    fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            stopped = match self.stop_signal.wait_timeout(stopped, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        false
    }

    /// Takes a socket into the node's care (so that a stop shuts it down).
    fn adopt(&self, stream: TcpStream, remote: SocketAddr) -> io::Result<Arc<Conn>> {
        let mut conns = lock(&self.conns);
        // Checked under the sockets' lock: a stop either sees this socket or refuses it.
        if self.is_stopped() {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(io::Error::other("the node is stopped"));
        }
        conns.retain(|_, conn| conn.strong_count() > 0);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            stream,
            remote,
            write_lock: Mutex::new(()),
        });
        conns.insert(id, Arc::downgrade(&conn));
        Ok(conn)
    }

    /// Runs `work` on a new thread of the node; false when the node is stopped.
    fn spawn(&self, name: String, work: impl FnOnce() + Send + 'static) -> bool {
        let mut threads = lock(&self.threads);
        if self.is_stopped() {
            return false;
        }
        threads.retain(|t| !t.is_finished());
        match thread::Builder::new().name(name).spawn(work) {
            Ok(handle) => {
                threads.push(handle);
                true
            }
            Err(_) => false,
        }
    }

    /// Stops the node (see [`Life`]) and waits for every thread it started.
    fn stop_and_join(&self) {
        *lock(&self.stopped) = true;
        self.stop_signal.notify_all();
        for conn in lock(&self.conns).values().filter_map(Weak::upgrade) {
            conn.close();
        }
        // Threads started meanwhile are joined too: spawning is refused only once stopped.
        loop {
            let threads = std::mem::take(&mut *lock(&self.threads));
            if threads.is_empty() {
                return;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }

    /// Accepts connections until the node stops; `listener` must be non-blocking.
    fn accept_loop(&self, listener: &TcpListener, mut on_conn: impl FnMut(TcpStream, SocketAddr)) {
        while !self.is_stopped() {
            match listener.accept() {
                // Accepted sockets may inherit non-blocking mode on some systems.
                Ok((stream, remote)) => {
                    if stream.set_nonblocking(false).is_ok() {
                        on_conn(stream, remote);
                    }
                }
                // WouldBlock, or out of descriptors: look again after a pause, do not spin.
                Err(_) => {
                    if !self.pause(ACCEPT_POLL) {
                        return;
                    }
                }
            }
        }
    }
}

/// A listener on `bind` in non-blocking mode, for [`Life::accept_loop`].
fn listen(bind: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The socket address to dial for a protocol address: `localhost` is 127.0.0.1, an IP is
/// itself, any other name is resolved (IPv4 first, as the reference's `AF_INET` socket).
pub fn dial_addr(ip: &str, port: u16) -> Option<SocketAddr> {
    if ip == "localhost" {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(ip) = ip.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let resolved: Vec<SocketAddr> = (ip, port).to_socket_addrs().ok()?.collect();
    let v4 = resolved.iter().find(|a| a.is_ipv4());
    v4.or(resolved.first()).copied()
}

/// The seeds of a reference config file: one `IP:PORT` a line (blank lines skipped), each
/// resolved as [`dial_addr`] does.
pub fn parse_seed_config(text: &str) -> Result<Vec<SocketAddr>, String> {
    let mut seeds = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || format!("line {}: {line:?} is not IP:PORT", index + 1);
        let (ip, port) = line.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.trim().parse().map_err(|_| bad())?;
        seeds.push(dial_addr(ip.trim(), port).ok_or_else(bad)?);
    }
    Ok(seeds)
}

/// What a reader does after a chunk it could handle.
enum Flow {
    Continue,
    Stop,
}

// ------------------------------------------------------------------------------------ seed

/// A running stand-in seed. Dropping it stops it.
pub struct RefSeed {
    node: Arc<SeedNode>,
}

struct SeedNode {
    addr: SocketAddr,
    life: Life,
    journal: Journal,
    state: Mutex<SeedState>,
}

#[derive(Default)]
struct SeedState {
    list: Vec<Endpoint>,
    dead_reports: Vec<SeedDeadReport>,
}

impl RefSeed {
    /// Starts a seed listening on `bind` (port 0: a port the OS chooses, see [`RefSeed::addr`]).
    pub fn start(bind: SocketAddr) -> io::Result<RefSeed> {
        let listener = listen(bind)?;
        let addr = listener.local_addr()?;
        let node = Arc::new(SeedNode {
            addr,
            life: Life::new(),
            journal: Journal::default(),
            state: Mutex::new(SeedState::default()),
        });
        node.journal
            .log(format!("Seed Started with Address {addr}"));
        let accepting = Arc::clone(&node);
        node.life
            .spawn(format!("refseed-{}", addr.port()), move || {
                accepting.accept(&listener);
            });
        Ok(RefSeed { node })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.node.addr
    }

    /// What it holds and did so far.
    pub fn snapshot(&self) -> SeedSnapshot {
        let state = lock(&self.node.state);
        SeedSnapshot {
            addr: self.node.addr,
            list: state.list.clone(),
            dead_reports: state.dead_reports.clone(),
        }
    }

    /// What it read and logged.
    pub fn journal(&self) -> &Journal {
        &self.node.journal
    }

    /// Closes every socket at once and waits for its threads to end. Idempotent.
    pub fn stop(&self) {
        self.node.life.stop_and_join();
    }
}

impl Drop for RefSeed {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SeedNode {
    fn accept(self: &Arc<Self>, listener: &TcpListener) {
        self.life.accept_loop(listener, |stream, remote| {
            let Ok(conn) = self.life.adopt(stream, remote) else {
                return;
            };
            let serving = Arc::clone(self);
            self.life
                .spawn(format!("refseed-{}-conn", self.addr.port()), move || {
                    serving.serve(&conn);
                });
        });
    }

    /// One connection: one read is one message, until EOF or an error the reference raises.
    fn serve(&self, conn: &Conn) {
        let mut buf = [0u8; FRAME_BYTES];
        while let Ok(n) = conn.read_chunk(&mut buf) {
            let chunk = &buf[..n];
            self.journal.frame(ReceivedFrame {
                at: Instant::now(),
                from: conn.remote,
                identity: None,
                bytes: chunk.to_vec(),
            });
            match self.on_chunk(conn, chunk) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(e) => {
                    self.journal
                        .log(format!("Error Occurred (Handling Peer module): {e}"));
                    break;
                }
            }
        }
        conn.close();
    }

    fn on_chunk(&self, conn: &Conn, chunk: &[u8]) -> Result<Flow, String> {
        let text = std::str::from_utf8(chunk).map_err(|e| format!("not UTF-8: {e}"))?;
        let fields: Vec<&str> = text.split(':').collect();
        match fields.first().copied().unwrap_or_default() {
            TAG_PEER_LIST => self.send_peer_list(conn),
            TAG_REGISTER => self.register(conn, &fields),
            TAG_DEAD_NODE => self.dead_node(&fields),
            _ => Ok(Flow::Continue),
        }
    }

    fn register(&self, conn: &Conn, fields: &[&str]) -> Result<Flow, String> {
        let peer = endpoint_field(fields, 1, "registered address")?;
        let line = format!("{peer} registered to seed with address {}", self.addr);
        lock(&self.state).list.push(peer);
        self.journal.log(line);
        conn.send(REGISTERED_REPLY).map_err(|e| e.to_string())?;
        Ok(Flow::Continue)
    }

    fn send_peer_list(&self, conn: &Conn) -> Result<Flow, String> {
        let entries: String = lock(&self.state)
            .list
            .iter()
            .map(|p| format!(":{}#{}", p.ip, p.port))
            .collect();
        conn.send(&format!("{TAG_PEER_LIST}:{entries}"))
            .map_err(|e| e.to_string())?;
        Ok(Flow::Continue)
    }

    /// Removes the first entry that matches and closes the *reporter's* connection (the
    /// reference's bug); when none matches, only logs.
    fn dead_node(&self, fields: &[&str]) -> Result<Flow, String> {
        let dead = endpoint_field(fields, 1, "dead node")?;
        let field = |i: usize| fields.get(i).copied().unwrap_or_default();
        let reporter = format!("{}:{}", field(4), field(5).trim_end());
        let mut state = lock(&self.state);
        let found = state.list.iter().position(|p| *p == dead);
        if let Some(index) = found {
            state.list.remove(index);
        }
        state.dead_reports.push(SeedDeadReport {
            dead: dead.clone(),
            reporter: reporter.clone(),
            timestamp: field(3).to_owned(),
            removed: found.is_some(),
            at: Instant::now(),
        });
        if found.is_some() {
            self.journal.log(format!(
                "Dead node {dead} removed from peer list of seed and this is reported by {reporter}"
            ));
            return Ok(Flow::Stop);
        }
        // The reference's "already removed" line reads fields 4 and 5, and raises without them.
        text_field(fields, 5, "reporter port")?;
        self.journal.log(format!(
            "Dead node {dead} already removed from peer list of seed and this is reported by {reporter}"
        ));
        Ok(Flow::Continue)
    }
}

// ------------------------------------------------------------------------------------ peer

/// What a stand-in peer is and how fast it goes. [`RefPeerConfig::new`] gives the
/// reference's settings; tests shorten the timings.
#[derive(Clone, Debug)]
pub struct RefPeerConfig {
    /// The seeds of the config file, in order.
    pub seeds: Vec<SocketAddr>,
    /// Where to listen (port 0: the OS chooses; the bound port is the peer's identity port).
    pub bind: SocketAddr,
    /// The IP string it advertises (`register`, hello, gossip, reports): `localhost`.
    pub advertised_ip: String,
    /// Pause between `register` and `peer list` on each seed: 2 s.
    pub list_delay: Duration,
    /// Pause between a hello and the start of the connection's reader, pinger and gossip
    /// generator, so the delay of the first gossip: 1 s.
    pub first_message_delay: Duration,
    /// Pause between two gossip messages of one connection: 5 s.
    pub message_interval: Duration,
    /// Gossip messages originated on each connection: 10.
    pub message_count: u32,
    /// The gossip body before its number, `message` (a test may make one peer's bodies
    /// recognisable; the reference's is always `message`).
    pub message_prefix: String,
    /// Pause before each liveness request of one connection: 13 s.
    pub ping_interval: Duration,
    /// Failed request sends on one connection that make the neighbour dead: 3.
    pub failed_sends_max: u32,
    /// Pause after each chunk a connection's reader handles: 0 (the reference: 1 s).
    pub frame_pause: Duration,
    /// Iterations of the dedup digest: 100 000.
    pub iterations: u32,
    /// Seed of the random choice of seeds.
    pub rng_seed: u64,
}

impl RefPeerConfig {
    /// The reference's settings for a peer of `seeds` listening on `bind`.
    pub fn new(seeds: Vec<SocketAddr>, bind: SocketAddr) -> RefPeerConfig {
        RefPeerConfig {
            seeds,
            bind,
            advertised_ip: ADVERTISED_IP.to_owned(),
            list_delay: LIST_DELAY,
            first_message_delay: FIRST_MESSAGE_DELAY,
            message_interval: MESSAGE_INTERVAL,
            message_count: MESSAGE_COUNT,
            message_prefix: MESSAGE_PREFIX.to_owned(),
            ping_interval: PING_INTERVAL,
            failed_sends_max: FAILED_SENDS_MAX,
            frame_pause: Duration::ZERO,
            iterations: DIGEST_ITERATIONS,
            rng_seed: 0,
        }
    }
}

/// A running stand-in peer. Dropping it kills it.
pub struct RefPeer {
    node: Arc<PeerNode>,
}

struct PeerNode {
    cfg: RefPeerConfig,
    me: Endpoint,
    addr: SocketAddr,
    cap: usize,
    life: Life,
    journal: Journal,
    state: Mutex<PeerState>,
}

#[derive(Default)]
struct PeerState {
    seed_conns: Vec<(SocketAddr, Arc<Conn>)>,
    registered_seeds: Vec<SocketAddr>,
    bootstrapped: bool,
    known: Vec<Endpoint>,
    /// Mapped connections by connection id (the reference's `socket_addr_map`).
    links: BTreeMap<u64, Link>,
    seen: BTreeSet<[u8; 64]>,
    deliveries: Vec<Delivery>,
    originated: BTreeSet<String>,
    liveness_replies: BTreeMap<Endpoint, f64>,
    dead_reports: Vec<DeadReport>,
}

struct Link {
    identity: Endpoint,
    conn: Arc<Conn>,
}

impl PeerState {
    /// Distinct hello identities of the links, in connection order (the reference counts
    /// `addr_socket_map`, keyed by identity).
    fn neighbours(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        for link in self.links.values() {
            if !out.contains(&link.identity) {
                out.push(link.identity.clone());
            }
        }
        out
    }
}

impl RefPeer {
    /// Binds `cfg.bind` and starts the peer.
    pub fn start(cfg: RefPeerConfig) -> io::Result<RefPeer> {
        let listener = TcpListener::bind(cfg.bind)?;
        RefPeer::start_on(listener, cfg)
    }

    /// Starts the peer on a listener already bound (`cfg.bind` is then unused): a test can
    /// choose among the ports the OS gives, since the port decides the cap.
    pub fn start_on(listener: TcpListener, cfg: RefPeerConfig) -> io::Result<RefPeer> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let me = Endpoint::new(&cfg.advertised_ip, addr.port());
        let node = Arc::new(PeerNode {
            cap: neighbour_cap(me.port),
            me,
            addr,
            cfg,
            life: Life::new(),
            journal: Journal::default(),
            state: Mutex::new(PeerState::default()),
        });
        node.journal.log(format!("Peer Listening on {}", node.me));
        let port = node.me.port;
        let accepting = Arc::clone(&node);
        node.life.spawn(format!("refpeer-{port}-accept"), move || {
            accepting.accept(&listener);
        });
        let booting = Arc::clone(&node);
        node.life
            .spawn(format!("refpeer-{port}-bootstrap"), move || {
                booting.bootstrap();
            });
        Ok(RefPeer { node })
    }

    /// Its identity: the advertised IP and the listening port.
    pub fn identity(&self) -> Endpoint {
        self.node.me.clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.node.addr
    }

    /// What it holds and did so far.
    pub fn snapshot(&self) -> PeerSnapshot {
        let state = lock(&self.node.state);
        PeerSnapshot {
            identity: self.node.me.clone(),
            neighbour_cap: self.node.cap,
            registered_seeds: state.registered_seeds.clone(),
            bootstrapped: state.bootstrapped,
            known_peers: state.known.clone(),
            neighbours: state.neighbours(),
            links: state.links.len(),
            deliveries: state.deliveries.clone(),
            originated: state.originated.clone(),
            liveness_replies: state.liveness_replies.clone(),
            dead_reports: state.dead_reports.clone(),
        }
    }

    /// What it read and logged.
    pub fn journal(&self) -> &Journal {
        &self.node.journal
    }

    /// Crashes it: every socket shut down both ways at once, every thread ended and joined,
    /// every socket closed. Idempotent.
    pub fn kill(&self) {
        self.node.life.stop_and_join();
        // Close (not only shut down) the sockets the records still hold: a peer writing to a
        // socket that is only shut down would not see an error on Linux.
        let mut state = lock(&self.node.state);
        state.links.clear();
        state.seed_conns.clear();
    }
}

impl Drop for RefPeer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bootstrap: seeds, peer lists, dialling.
impl PeerNode {
    fn bootstrap(self: &Arc<Self>) {
        let mut seeds = self.cfg.seeds.clone();
        seeds.shuffle(&mut ChaCha8Rng::seed_from_u64(self.cfg.rng_seed));
        seeds.truncate(seeds_to_register(self.cfg.seeds.len()));
        for seed in seeds {
            if let Err(e) = self.join_seed(seed) {
                self.journal.log(format!(
                    "Error Occurred while connecting to seed {seed}: {e}"
                ));
            }
            if self.life.is_stopped() {
                return;
            }
        }
        let known = {
            let mut state = lock(&self.state);
            state.bootstrapped = true;
            state.known.clone()
        };
        let list: Vec<String> = known.iter().map(Endpoint::to_string).collect();
        self.journal
            .log(format!("PEER ({}) gets the peer list: {list:?}", self.me));
        self.dial(&known);
    }

    /// Registers with one seed and merges its peer list; the socket stays open for reports.
    fn join_seed(&self, seed: SocketAddr) -> io::Result<()> {
        let stream = TcpStream::connect_timeout(&seed, DIAL_TIMEOUT)?;
        let conn = self.life.adopt(stream, seed)?;
        lock(&self.state).seed_conns.push((seed, Arc::clone(&conn)));
        conn.send(&format!("{TAG_REGISTER}:{}:{}", self.me.ip, self.me.port))?;
        lock(&self.state).registered_seeds.push(seed);
        self.journal
            .log(format!("Estd connection with seed with address {seed}"));
        let mut buf = [0u8; FRAME_BYTES];
        // The reply, unchecked: the reference compares it (bytes) with a str, never equal.
        self.read_recorded(&conn, &mut buf)?;
        if !self.life.pause(self.cfg.list_delay) {
            return Ok(());
        }
        conn.send(TAG_PEER_LIST)?;
        loop {
            let n = self.read_recorded(&conn, &mut buf)?;
            let text = std::str::from_utf8(&buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let fields: Vec<&str> = text.split(':').collect();
            if fields.first() == Some(&TAG_PEER_LIST) {
                return self.learn_peers(fields.get(2..).unwrap_or_default());
            }
        }
    }

    /// Adds `ip#port` entries to the known peers in order, once each; stops at the first bad
    /// entry, as the reference's exception does (the entries before it stay).
    fn learn_peers(&self, entries: &[&str]) -> io::Result<()> {
        let mut state = lock(&self.state);
        for entry in entries {
            let parts: Vec<&str> = entry.split('#').collect();
            let peer = endpoint_field(&parts, 0, "peer list entry")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if !state.known.contains(&peer) {
                state.known.push(peer);
            }
        }
        let list: Vec<String> = state.known.iter().map(Endpoint::to_string).collect();
        self.journal
            .log(format!("Peer list received from seed: {list:?}"));
        Ok(())
    }

    /// Dials every known peer but itself, in order, while under the cap.
    fn dial(self: &Arc<Self>, known: &[Endpoint]) {
        for peer in known {
            if *peer == self.me {
                continue;
            }
            if !self.can_accept() {
                self.journal.log(format!(
                    "Maximum peer limit ({}) reached. Cannot connect to more peers.",
                    self.cap
                ));
                break;
            }
            let dialled = dial_addr(&peer.ip, peer.port)
                .ok_or_else(|| io::Error::other("the address does not resolve"))
                .and_then(|addr| {
                    let stream = TcpStream::connect_timeout(&addr, DIAL_TIMEOUT)?;
                    self.life.adopt(stream, addr)
                });
            match dialled {
                Ok(conn) => self.spawn_link(conn, Some(peer.port)),
                Err(e) => self.journal.log(format!(
                    "An error occurred while connecting to peer {peer}: {e}"
                )),
            }
        }
    }

    fn accept(self: &Arc<Self>, listener: &TcpListener) {
        self.life.accept_loop(listener, |stream, remote| {
            if !self.can_accept() {
                self.journal.log(format!(
                    "Maximum peer limit ({}) reached. Rejecting new connection.",
                    self.cap
                ));
                return; // dropping `stream` closes it at once
            }
            if let Ok(conn) = self.life.adopt(stream, remote) {
                self.journal
                    .log(format!("Peer with address {remote} connected"));
                self.spawn_link(conn, None);
            }
        });
    }

    fn can_accept(&self) -> bool {
        lock(&self.state).neighbours().len() < self.cap
    }

    /// Reads one chunk and records it; EOF is an error.
    fn read_recorded(&self, conn: &Conn, buf: &mut [u8; FRAME_BYTES]) -> io::Result<usize> {
        let n = conn.read_chunk(buf)?;
        self.journal.frame(ReceivedFrame {
            at: Instant::now(),
            from: conn.remote,
            identity: self.identity_of(conn),
            bytes: buf[..n].to_vec(),
        });
        Ok(n)
    }
}

/// Neighbours: admission, hello, the connection's threads.
impl PeerNode {
    fn spawn_link(self: &Arc<Self>, conn: Arc<Conn>, dialled_port: Option<u16>) {
        let node = Arc::clone(self);
        let name = format!("refpeer-{}-link", self.me.port);
        self.life
            .spawn(name, move || node.run_link(&conn, dialled_port));
    }

    /// The reference's `handle_peer`: admission, hello, pause, then the pinger and the
    /// generator on their own threads and the reader on this one.
    fn run_link(self: &Arc<Self>, conn: &Arc<Conn>, dialled_port: Option<u16>) {
        // The reference also refuses a remote port ending in its own two digits; for an
        // incoming connection that port is ephemeral (a random 1 %), so only dials check it.
        let same_digits = dialled_port.is_some_and(|p| p % 100 == self.me.port % 100);
        if same_digits || !self.can_accept() {
            self.journal.log(format!(
                "Cannot accept new peer {}. Maximum peers reached or invalid peer.",
                conn.remote
            ));
            conn.close();
            return;
        }
        let identity = match self.greet(conn) {
            Ok(identity) => identity,
            Err(e) => {
                self.journal.log(format!("Error in handle_peer: {e}"));
                conn.close();
                return;
            }
        };
        self.journal
            .log(format!("New peer connection established with {identity}"));
        if !self.life.pause(self.cfg.first_message_delay) {
            return;
        }
        let port = self.me.port;
        let (pinger, pinged) = (Arc::clone(self), Arc::clone(conn));
        self.life.spawn(format!("refpeer-{port}-ping"), move || {
            pinger.ping(&pinged);
        });
        let (origin, target) = (Arc::clone(self), Arc::clone(conn));
        self.life.spawn(format!("refpeer-{port}-gossip"), move || {
            origin.originate(&target);
        });
        self.read_link(conn);
    }

    /// Both ends send the hello first, then read one chunk, which must be the other's hello.
    fn greet(&self, conn: &Arc<Conn>) -> Result<Endpoint, String> {
        let hello = hello_frame(&self.me.ip, self.me.port);
        conn.send(&hello).map_err(|e| e.to_string())?;
        let mut buf = [0u8; FRAME_BYTES];
        let n = self
            .read_recorded(conn, &mut buf)
            .map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(&buf[..n]).map_err(|e| format!("not UTF-8: {e}"))?;
        let fields: Vec<&str> = text.split(':').collect();
        if fields.first() != Some(&TAG_HELLO) {
            // The reference sends its hello again and goes on without a mapping (KeyError).
            let _ = conn.send(&hello);
            return Err("the first frame is not a hello; closing".to_owned());
        }
        let identity = endpoint_field(&fields, 1, "hello")?;
        self.map_link(conn, identity.clone());
        Ok(identity)
    }

    fn map_link(&self, conn: &Arc<Conn>, identity: Endpoint) {
        let link = Link {
            identity,
            conn: Arc::clone(conn),
        };
        lock(&self.state).links.insert(conn.id, link);
    }

    fn identity_of(&self, conn: &Conn) -> Option<Endpoint> {
        let state = lock(&self.state);
        state.links.get(&conn.id).map(|l| l.identity.clone())
    }

    /// The reference's `handle_messages`: one read is one frame, until EOF or an error.
    fn read_link(&self, conn: &Arc<Conn>) {
        let mut buf = [0u8; FRAME_BYTES];
        loop {
            let who = || {
                self.identity_of(conn)
                    .map_or("unknown".to_owned(), |p| p.to_string())
            };
            let flow = match self.read_recorded(conn, &mut buf) {
                Ok(n) => self.on_peer_chunk(conn, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.journal.log(format!("Peer {} disconnected", who()));
                    return;
                }
                Err(e) => Err(e.to_string()),
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => return,
                Err(e) => {
                    self.journal
                        .log(format!("Connection lost with peer {}: {e}", who()));
                    return;
                }
            }
            if !self.cfg.frame_pause.is_zero() && !self.life.pause(self.cfg.frame_pause) {
                return;
            }
        }
    }

    fn on_peer_chunk(&self, conn: &Arc<Conn>, chunk: &[u8]) -> Result<Flow, String> {
        let text = std::str::from_utf8(chunk).map_err(|e| format!("not UTF-8: {e}"))?;
        let fields: Vec<&str> = text.split(':').collect();
        match fields.first().copied().unwrap_or_default() {
            TAG_HELLO => {
                let identity = endpoint_field(&fields, 1, "hello")?;
                self.map_link(conn, identity);
                Ok(Flow::Continue)
            }
            TAG_PING => self.answer_ping(conn, &fields),
            TAG_PONG => self.note_pong(conn, &fields),
            TAG_GOSSIP => self.receive_gossip(conn, &fields),
            TAG_DEAD_NODE => {
                self.journal.log(format!(
                    "{} on a peer connection; reading stops",
                    text.trim_end()
                ));
                Ok(Flow::Stop)
            }
            // `forwarding` acks, chunks cut out of a longer frame, anything else.
            _ => Ok(Flow::Continue),
        }
    }
}

/// Gossip: origination, receipt, forwarding.
impl PeerNode {
    /// This connection's own stream of gossip messages.
    fn originate(&self, conn: &Conn) {
        for n in 1..=self.cfg.message_count {
            let body = format!("{} {n}", self.cfg.message_prefix);
            let frame = pad(&format!(
                "{TAG_GOSSIP}:{}:{}:{}:{body}",
                now_timestamp(),
                self.me.ip,
                self.me.port
            ));
            if let Err(e) = conn.send(&frame) {
                self.journal
                    .log(format!("Failed to send gossip message: {e}"));
                return;
            }
            lock(&self.state).originated.insert(body);
            if !self.life.pause(self.cfg.message_interval) {
                return;
            }
        }
    }

    /// Ack first (duplicates too), then dedup on field 4 as received, then forward re-stamped.
    fn receive_gossip(&self, conn: &Arc<Conn>, fields: &[&str]) -> Result<Flow, String> {
        conn.send(&pad(TAG_ACK)).map_err(|e| e.to_string())?;
        let &[_, timestamp, sender_ip, sender_port, raw_body, ..] = fields else {
            return Err(format!("a gossip frame of {} fields, not 5", fields.len()));
        };
        let key = reference_digest(raw_body.as_bytes(), self.cfg.iterations);
        let targets: Vec<Arc<Conn>> = {
            let mut state = lock(&self.state);
            if !state.seen.insert(key) {
                return Ok(Flow::Continue);
            }
            let from = state.links.get(&conn.id).map(|l| l.identity.clone());
            let delivery = Delivery {
                body: raw_body.trim_end().to_owned(),
                raw_body: raw_body.to_owned(),
                timestamp: timestamp.to_owned(),
                sender_ip: sender_ip.to_owned(),
                sender_port: sender_port.to_owned(),
                from,
                at: Instant::now(),
            };
            self.journal.log(format!(
                "{}:{}:{}:{}",
                delivery.timestamp, delivery.sender_ip, delivery.sender_port, delivery.body
            ));
            state.deliveries.push(delivery);
            let others = state.links.values().filter(|l| l.conn.id != conn.id);
            others.map(|l| Arc::clone(&l.conn)).collect()
        };
        for target in targets {
            let frame = pad(&format!(
                "{TAG_GOSSIP}:{}:{}:{}:{raw_body}",
                now_timestamp(),
                self.me.ip,
                self.me.port
            ));
            // The reference catches a failed forward per target and goes on.
            let _ = target.send(&frame);
        }
        Ok(Flow::Continue)
    }
}

/// Liveness: requests, replies, the dead.
impl PeerNode {
    fn answer_ping(&self, conn: &Conn, fields: &[&str]) -> Result<Flow, String> {
        let echoed: f64 = number(fields, 1, "timestamp")?;
        let requester = self
            .identity_of(conn)
            .ok_or("a liveness request on a connection without mapping")?;
        let reply = format!(
            "{TAG_PONG}:{}:{}:{}:{}:{}",
            python_float_repr(echoed),
            requester.ip,
            requester.port,
            self.me.ip,
            self.me.port
        );
        conn.send(&pad(&reply)).map_err(|e| e.to_string())?;
        Ok(Flow::Continue)
    }

    fn note_pong(&self, conn: &Conn, fields: &[&str]) -> Result<Flow, String> {
        let timestamp: f64 = number(fields, 1, "timestamp")?;
        let mut state = lock(&self.state);
        let identity = state.links.get(&conn.id).map(|l| l.identity.clone());
        let identity = identity.ok_or("a liveness reply on a connection without mapping")?;
        state.liveness_replies.insert(identity, timestamp);
        Ok(Flow::Continue)
    }

    /// A request every ping interval; the neighbour is dead after `failed_sends_max` failed
    /// sends, counted over the life of the connection (replies never reset the count).
    fn ping(&self, conn: &Conn) {
        let mut failed = 0;
        while self.life.pause(self.cfg.ping_interval) {
            let timestamp = now_timestamp();
            // Without a mapping the reference's pinger dies on KeyError.
            let Some(identity) = self.identity_of(conn) else {
                return;
            };
            let request = format!("{TAG_PING}:{timestamp}:{}:{}", self.me.ip, self.me.port);
            if conn.send(&pad(&request)).is_ok() {
                continue;
            }
            failed += 1;
            self.journal.log(format!(
                "Maybe Disconnected, Liveliness test request {failed}"
            ));
            if failed >= self.cfg.failed_sends_max {
                self.declare_dead(conn, identity, timestamp);
                return;
            }
        }
    }

    /// Reports `dead` to every seed socket (errors ignored), forgets it and closes its socket.
    fn declare_dead(&self, conn: &Conn, dead: Endpoint, timestamp: String) {
        let report = pad(&format!(
            "{TAG_DEAD_NODE}:{}:{}:{timestamp}:{}:{}",
            dead.ip, dead.port, self.me.ip, self.me.port
        ));
        let seeds = lock(&self.state).seed_conns.clone();
        let sent_to = seeds
            .iter()
            .filter(|(_, seed)| seed.send(&report).is_ok())
            .map(|(addr, _)| *addr)
            .collect();
        {
            let mut state = lock(&self.state);
            if let Some(index) = state.known.iter().position(|p| *p == dead) {
                state.known.remove(index);
            }
            state.liveness_replies.remove(&dead);
            state.links.remove(&conn.id);
            self.journal
                .log(format!("Peer {dead} removed from {}", self.me));
            state.dead_reports.push(DeadReport {
                dead,
                timestamp,
                sent_to,
                at: Instant::now(),
            });
        }
        conn.close();
    }
}
