//! `gossipnet conform HOST:PORT --role seed|peer`: a conformance check of any implementation
//! of the protocol (DESIGN.md, "Wire protocol"), for people who write or grade one.
//!
//! Against a seed, conform acts as peers: it registers addresses it really listens on (small
//! responders answer a seed's liveness checks and hellos), asks for peer lists, reports a dead
//! peer and a live one, sends bad frames and stays silent. Against a peer, conform is the seed
//! the peer registers with (its `config.txt` is written for it) and two neighbours, N1 and
//! N2: it checks the hello, liveness, forwarding, dedup, the dead-node report, bad frames and
//! silence. Each check prints a row (what the node did, with the bytes seen; what the
//! protocol asks; PASS, FAIL, FINDING or SKIPPED) and goes into `conform.json`.
//!
//! A FINDING is a known deviation of the Python original (the reference wire, see
//! `sim_core::refwire`): frames padded to 1 024 bytes without newline, `peer list::`,
//! re-stamped forwards, body-only dedup, the 1 031-byte hello, `localhost`, `forwarding`
//! acks, a seed that closes a reporter's connection or removes on one report. With
//! `--wire auto` conform speaks line frames and goes on in the reference wire once an answer
//! comes without newline.
//!
//! Every socket read has a deadline; nothing a node sends can make conform panic: a check
//! that meets an error fails with the reason and the next checks go on where they can.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, ToSocketAddrs};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use sim_core::addr::NodeAddr;
use sim_core::refwire::{self, FRAME_BYTES, Framer};
use sim_core::time::Time;
use sim_core::wire::{self, DeadNode, Gossip, Message, Timestamp, Wire, WireError};

/// How long bytes without a newline wait for one before a reader (in `--wire auto`) takes
/// them for the reference wire.
const NEWLINE_WAIT: Duration = Duration::from_millis(300);
/// Read timeout of every socket: how often a reader looks at its stop flag and its clock.
const READ_TICK: Duration = Duration::from_millis(25);
/// Most bytes a reader holds of one unfinished line; a longer line is skipped to its end.
const LINE_BYTES_MAX: usize = 1 << 20;
/// Frames a link keeps that no check has taken yet; older ones are dropped.
const BACKLOG_MAX: usize = 1024;
/// Pause between two looks at a listener, a child process or a flag.
const POLL: Duration = Duration::from_millis(20);
/// Pause between two `peer list` polls of a seed.
const LIST_POLL: Duration = Duration::from_millis(250);
/// After a frame that must come once, how long conform waits for a second copy at most.
const ONCE_WAIT_MAX: Duration = Duration::from_secs(1);
/// Characters of a frame's text shown in the table and in conform.json.
const SHOWN_CHARS_MAX: usize = 56;
/// Bytes of garbage sent in the bad-frames check of a seed, and of the over-long line.
const GARBAGE_BYTES: usize = 2000;
const LONG_LINE_BYTES: usize = 100 * 1024;
/// The gossip body conform sends (its forwards are told from the node's own messages by it).
const BODY: &str = "conform 1";
/// The origin of conform's gossip: an address that is neither neighbour (TEST-NET-1), and a
/// second origin of the same length (the reference's identity depends on header lengths).
const ORIGIN_1: NodeAddr = NodeAddr::new(Ipv4Addr::new(192, 0, 2, 1), 4000);
const ORIGIN_2: NodeAddr = NodeAddr::new(Ipv4Addr::new(192, 0, 2, 2), 4000);

/// Which side of the protocol the node under test plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// A seed: conform acts as peers.
    Seed,
    /// A peer: conform acts as its seed and as two neighbouring peers.
    Peer,
}

impl Role {
    const fn name(self) -> &'static str {
        match self {
            Role::Seed => "seed",
            Role::Peer => "peer",
        }
    }
}

/// The wire conform speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WireChoice {
    /// Line frames first; the reference wire once the node answers without newline.
    Auto,
    /// gossipnet's: one message a line.
    Line,
    /// The Python original's: padded 1 024-byte frames, a bare seed exchange.
    Reference,
}

/// `gossipnet conform`'s arguments.
#[derive(Args)]
pub struct ConformArgs {
    /// The node under test: a seed's address, or the address the peer listens on.
    #[arg(value_name = "HOST:PORT")]
    target: String,
    /// What the node is: `seed` (conform acts as peers) or `peer` (conform is its seed and
    /// two neighbours).
    #[arg(long)]
    role: Role,
    /// The wire: `line`, `reference`, or `auto` (line first; the reference wire once an
    /// answer comes without newline, which is then a FINDING).
    #[arg(long, default_value = "auto")]
    wire: WireChoice,
    /// Deadline of each step (an answer, a forward).
    #[arg(long, default_value = "3s")]
    timeout: sim_core::time::Duration,
    /// How long a connection that sends nothing may stay open before the node should close
    /// it (gossipnet's handshake timeout is 10 s).
    #[arg(long, default_value = "15s")]
    silence_wait: sim_core::time::Duration,
    /// Skip the checks that wait long: a seed's silence check, a peer's dead-node report.
    #[arg(long)]
    quick: bool,
    /// Where conform.json (and, for a peer, config.txt and peer.log) go
    /// [default: results/conform-ROLE-PORT].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Role peer: where conform listens as the peer's seed (written to DIR/config.txt).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    seed_listen: SocketAddrV4,
    /// Role peer: start the peer with this command (split on whitespace, quotes kept
    /// together; `{config}` is replaced by the path of config.txt) and kill it at the end.
    #[arg(long, value_name = "CMD")]
    spawn: Option<String>,
    /// Role peer: how long to wait for the peer to register.
    #[arg(long, default_value = "60s")]
    wait: sim_core::time::Duration,
    /// Role peer: how long to wait for the peer to report a dead neighbour (3 missed 13 s
    /// liveness rounds take up to 52 s).
    #[arg(long, default_value = "50s")]
    liveness_wait: sim_core::time::Duration,
}

/// Runs the checks, prints the table, writes conform.json; an error when a check did not
/// pass (so the exit status says it).
pub fn run(a: &ConformArgs) -> Result<(), String> {
    let target = resolve(&a.target)?;
    if a.timeout.micros() == 0 {
        return Err("--timeout must be more than 0".into());
    }
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("results/conform-{}-{}", a.role.name(), target.port))
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut ctx = Ctx {
        target,
        choice: a.wire,
        wire: match a.wire {
            WireChoice::Reference => Wire::Reference,
            WireChoice::Auto | WireChoice::Line => Wire::Line,
        },
        timeout: std_duration(a.timeout),
        told_newline: false,
        told_padding: false,
        told_localhost: false,
        names: Vec::new(),
    };
    println!(
        "gossipnet conform {target} --role {} --wire {}",
        a.role.name(),
        wire_choice_name(a.wire)
    );
    let checks = match a.role {
        Role::Seed => seed_role(&mut ctx, a)?,
        Role::Peer => peer_role(&mut ctx, a, &out)?,
    };
    print_table(&checks);
    let json = out.join("conform.json");
    write_json(&json, &ctx, a, &checks)?;
    let count = |v: Verdict| checks.iter().filter(|c| c.verdict() == v).count();
    let (fails, findings) = (count(Verdict::Fail), count(Verdict::Finding));
    println!(
        "{} PASS, {fails} FAIL, {findings} FINDING, {} SKIPPED; wire {}; written {}",
        count(Verdict::Pass),
        count(Verdict::Skipped),
        ctx.wire,
        json.display()
    );
    if fails + findings == 0 {
        Ok(())
    } else {
        Err(format!(
            "conform: {fails} check(s) failed and {findings} had findings"
        ))
    }
}

/// `HOST:PORT` as the protocol's address (IPv4; `localhost` is 127.0.0.1).
fn resolve(target: &str) -> Result<NodeAddr, String> {
    let bad = |why: &str| format!("bad target {target:?}: {why}");
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT"))?;
    let port = NodeAddr::parse_port(port).map_err(|e| bad(&e.to_string()))?;
    if host == "localhost" {
        return Ok(NodeAddr::new(Ipv4Addr::LOCALHOST, port));
    }
    let found = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .find_map(|s| match s.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| bad("no IPv4 address"))?;
    Ok(NodeAddr::new(found, port))
}

fn std_duration(d: sim_core::time::Duration) -> Duration {
    Duration::from_micros(d.micros())
}

fn wire_choice_name(w: WireChoice) -> &'static str {
    match w {
        WireChoice::Auto => "auto",
        WireChoice::Line => "line",
        WireChoice::Reference => "reference",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A wall-clock timestamp `ahead` seconds from now, in milliseconds whose last digit is not
/// 0: its text is what the original's `str(float(ts))` gives back, so an echo can be
/// compared as text.
fn wall_ts(ahead: u64) -> Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut ms = u64::from(now.subsec_millis());
    if ms % 10 == 0 {
        ms += 1;
    }
    let micros = (now.as_secs() + ahead) * 1_000_000 + ms * 1000;
    Timestamp::at(Time(micros), 0)
}

// ------------------------------------------------------------------------------ checks

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    Finding,
    Skipped,
}

impl Verdict {
    const fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Finding => "FINDING",
            Verdict::Skipped => "SKIPPED",
        }
    }
}

/// One row of the table: what the node did, what the protocol asks, and why the verdict.
struct Check {
    name: &'static str,
    observed: String,
    expected: String,
    fails: Vec<String>,
    findings: Vec<String>,
    info: Vec<String>,
    skipped: Option<String>,
}

impl Check {
    fn new(name: &'static str, expected: impl Into<String>) -> Check {
        Check {
            name,
            observed: String::from("-"),
            expected: expected.into(),
            fails: Vec::new(),
            findings: Vec::new(),
            info: Vec::new(),
            skipped: None,
        }
    }

    fn fail(&mut self, why: impl Into<String>) {
        self.fails.push(why.into());
    }

    fn finding(&mut self, what: impl Into<String>) {
        let what = what.into();
        if !self.findings.contains(&what) {
            self.findings.push(what);
        }
    }

    /// The value of `r`, or `None` with its error recorded as a failure.
    fn take<T>(&mut self, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.fail(e)).ok()
    }

    fn info(&mut self, what: impl Into<String>) {
        self.info.push(what.into());
    }

    fn skip(mut self, why: impl Into<String>) -> Check {
        self.skipped = Some(why.into());
        self
    }

    /// A check that could not run because an earlier step failed.
    fn not_run(mut self, why: &str) -> Check {
        self.fail(format!("not run: {why}"));
        self
    }

    fn verdict(&self) -> Verdict {
        if self.skipped.is_some() {
            Verdict::Skipped
        } else if !self.fails.is_empty() {
            Verdict::Fail
        } else if !self.findings.is_empty() {
            Verdict::Finding
        } else {
            Verdict::Pass
        }
    }

    /// Reasons, findings and remarks, in that order.
    fn note(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.skipped.iter().map(|s| format!("skipped: {s}")));
        parts.extend(self.fails.iter().map(|s| format!("FAIL: {s}")));
        parts.extend(self.findings.iter().map(|s| format!("FINDING: {s}")));
        parts.extend(self.info.iter().cloned());
        parts.join("; ")
    }
}

fn print_table(checks: &[Check]) {
    println!();
    println!(
        "{:<3} {:<20} {:<8} observed / expected",
        "#", "check", "verdict"
    );
    let indent = format!("{:<3} {:<20} {:<8}", "", "", "");
    for (i, c) in checks.iter().enumerate() {
        println!(
            "{:<3} {:<20} {:<8} {}",
            i + 1,
            c.name,
            c.verdict().name(),
            c.observed
        );
        if !c.expected.is_empty() {
            println!("{indent} expected {}", c.expected);
        }
        let lines = c
            .skipped
            .iter()
            .map(|s| format!("skipped: {s}"))
            .chain(c.fails.iter().map(|s| format!("FAIL: {s}")))
            .chain(c.findings.iter().map(|s| format!("FINDING: {s}")))
            .chain(c.info.iter().cloned());
        for l in lines {
            println!("{indent} - {l}");
        }
    }
    println!();
}

fn write_json(path: &Path, ctx: &Ctx, a: &ConformArgs, checks: &[Check]) -> Result<(), String> {
    let rows: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "verdict": c.verdict().name(),
                "observed": c.observed,
                "expected": c.expected,
                "note": c.note(),
                "findings": c.findings,
            })
        })
        .collect();
    let passed = checks
        .iter()
        .all(|c| matches!(c.verdict(), Verdict::Pass | Verdict::Skipped));
    let doc = serde_json::json!({
        "target": ctx.target.to_string(),
        "role": a.role.name(),
        "wire_option": wire_choice_name(a.wire),
        "wire": ctx.wire.name(),
        "passed": passed,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "checks": rows,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------- frames

/// One frame as read, with what it decodes to.
struct Frame {
    /// Its bytes (an over-long line that was skipped keeps none).
    raw: Vec<u8>,
    /// Bytes on the wire: `raw`, the padding skipped after it (the original's 1 031-byte
    /// hello leaves 7), or the length of a skipped line.
    bytes: usize,
    /// The framing it was read with.
    wire: Wire,
    msg: Result<Message, WireError>,
}

impl Frame {
    fn newline(&self) -> bool {
        self.raw.ends_with(b"\n")
    }

    /// A window of the reference wire: 1 024 bytes or more, ending in padding.
    fn padded(&self) -> bool {
        self.wire == Wire::Reference && self.bytes >= FRAME_BYTES && self.raw.ends_with(b" ")
    }

    fn gossip(&self) -> Option<&Gossip> {
        match &self.msg {
            Ok(Message::Gossip(g)) => Some(g),
            _ => None,
        }
    }

    /// A gossip frame carrying conform's body (its padding aside).
    fn is_ours(&self) -> bool {
        self.gossip()
            .is_some_and(|g| g.body.trim_end_matches(' ') == BODY)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// A frame's bytes for people: escaped, clipped, with its padding and length told apart,
/// e.g. `"registered successfully" (23 B, no newline)`.
fn show(f: &Frame) -> String {
    if f.raw.is_empty() {
        return format!("a line of {} B, skipped as over-long", f.bytes);
    }
    let body = f.raw.strip_suffix(b"\n").unwrap_or(&f.raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let text_len = body
        .iter()
        .rposition(|&b| b != b' ' && b != b'\0')
        .map_or(0, |i| i + 1);
    let pad = body.len() - text_len + f.bytes - f.raw.len();
    let mut s = format!("\"{}\"", escape(&body[..text_len], SHOWN_CHARS_MAX));
    if pad > 0 {
        s.push_str(&format!(" + {pad} spaces"));
    }
    let end = if f.newline() { "newline" } else { "no newline" };
    s.push_str(&format!(" ({} B, {end})", f.bytes));
    s
}

/// Printable ASCII as it is, anything else escaped; at most `max` characters of output.
fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// `msg` as `wire` frames it.
fn encode(wire: Wire, msg: &Message) -> Vec<u8> {
    match wire {
        Wire::Line => msg.encode().into_bytes(),
        Wire::Reference => {
            let mut v = Vec::new();
            refwire::encode(msg, &mut v);
            v
        }
    }
}

/// The frame conform writes for `msg` on `wire`, for the expected column.
fn expect_text(wire: Wire, msg: &Message) -> String {
    let bytes = encode(wire, msg);
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end_matches(['\n', ' ']);
    let form = match wire {
        Wire::Line => "newline",
        Wire::Reference if refwire::is_padded(msg) => "padded to 1024 B",
        Wire::Reference => "bare",
    };
    format!("\"{text}\" ({form})")
}

// ----------------------------------------------------------------------------- links

/// What a link's reader reports.
enum Ev {
    Frame(Frame),
    /// Bytes that make no frame yet have waited [`NEWLINE_WAIT`]: how many, and the start of
    /// them when known.
    Held(usize, Vec<u8>),
    /// The connection ended: why, and when the reader saw it.
    Closed(String, Instant),
}

/// What a link answers by itself, as a node would: liveness requests (and hellos), with
/// `me` as its address.
#[derive(Clone)]
struct Replies {
    me: NodeAddr,
    hello: bool,
    requests: Arc<AtomicUsize>,
}

/// A connection with a reader thread that cuts what comes into frames.
struct Link {
    writer: Arc<Mutex<TcpStream>>,
    /// The wire conform writes in on this link.
    wire: Wire,
    rx: Receiver<Ev>,
    backlog: VecDeque<Frame>,
    closed: Option<String>,
    /// When the other side closed it, as the reader saw.
    closed_at: Option<Instant>,
    held: Option<(usize, Vec<u8>)>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Link {
    /// Wraps an open connection: reads as `choice` says, writes in `wire`.
    fn open(
        stream: TcpStream,
        choice: WireChoice,
        wire: Wire,
        replies: Option<Replies>,
        timeout: Duration,
    ) -> io::Result<Link> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TICK))?;
        stream.set_write_timeout(Some(timeout.max(Duration::from_millis(100))))?;
        let writer = Arc::new(Mutex::new(stream.try_clone()?));
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            stream,
            tx,
            mode: match choice {
                WireChoice::Auto => Mode::Sniff,
                WireChoice::Line => Mode::Line,
                WireChoice::Reference => Mode::Reference,
            },
            line: Vec::new(),
            dropping: 0,
            since: None,
            held_told: false,
            framer: Framer::default(),
            replies,
            writer: Arc::clone(&writer),
            stop: Arc::clone(&stop),
        };
        let handle = std::thread::Builder::new()
            .name("conform-reader".into())
            .spawn(move || reader.run())?;
        Ok(Link {
            writer,
            wire,
            rx,
            backlog: VecDeque::new(),
            closed: None,
            closed_at: None,
            held: None,
            stop,
            reader: Some(handle),
        })
    }

    fn send(&self, msg: &Message) -> io::Result<()> {
        self.send_raw(&encode(self.wire, msg))
    }

    fn send_raw(&self, bytes: &[u8]) -> io::Result<()> {
        lock(&self.writer).write_all(bytes)
    }

    /// Takes one report from the reader, waiting until `deadline`; frames are returned,
    /// the rest is noted.
    fn recv(&mut self, deadline: Instant) -> Option<Frame> {
        loop {
            if self.closed.is_some() {
                // What the reader sent before it ended is still read.
                match self.rx.try_recv() {
                    Ok(ev) => match self.note(ev) {
                        Some(f) => return Some(f),
                        None => continue,
                    },
                    Err(_) => return None,
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match self.rx.recv_timeout(left) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.closed.get_or_insert_with(|| "reader ended".into());
                    return None;
                }
            };
            if let Some(f) = self.note(ev) {
                return Some(f);
            }
        }
    }

    fn note(&mut self, ev: Ev) -> Option<Frame> {
        match ev {
            Ev::Frame(f) => {
                self.held = None;
                Some(f)
            }
            Ev::Held(n, sample) => {
                self.held = Some((n, sample));
                None
            }
            Ev::Closed(why, at) => {
                self.closed_at.get_or_insert(at);
                self.closed.get_or_insert(why);
                None
            }
        }
    }

    /// The first frame (kept ones first) for which `pred` holds, by `deadline`; the others
    /// are kept for later.
    fn wait(&mut self, deadline: Instant, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        while let Some(f) = self.recv(deadline) {
            if pred(&f) {
                return Some(f);
            }
            self.keep(f);
        }
        None
    }

    /// As [`Link::wait`] within `timeout`; when nothing comes, `missing` and why.
    fn expect(
        &mut self,
        timeout: Duration,
        missing: &str,
        pred: impl Fn(&Frame) -> bool,
    ) -> Result<Frame, String> {
        self.wait(Instant::now() + timeout, pred)
            .ok_or_else(|| format!("{missing} within {}: {}", secs(timeout), self.silence()))
    }

    fn keep(&mut self, f: Frame) {
        if self.backlog.len() >= BACKLOG_MAX {
            self.backlog.pop_front();
        }
        self.backlog.push_back(f);
    }

    /// Every frame until `deadline` (kept ones first), or until the connection ends.
    fn frames_until(&mut self, deadline: Instant) -> Vec<Frame> {
        let mut out: Vec<Frame> = self.backlog.drain(..).collect();
        while let Some(f) = self.recv(deadline) {
            out.push(f);
        }
        out
    }

    /// [`Link::frames_until`], as people read them.
    fn shown_until(&mut self, deadline: Instant) -> Vec<String> {
        self.frames_until(deadline).iter().map(show).collect()
    }

    /// Reads what came so far without waiting, into the backlog.
    fn poll(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(ev) => {
                    if let Some(f) = self.note(ev) {
                        self.keep(f);
                    }
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.closed.get_or_insert_with(|| "reader ended".into());
                    return;
                }
            }
        }
    }

    /// Drops what came so far: a check looks only at what comes after it started.
    fn forget(&mut self) {
        self.poll();
        self.backlog.clear();
    }

    fn is_closed(&mut self) -> bool {
        self.poll();
        self.closed.is_some()
    }

    /// Why nothing (more) came, for a failure's reason.
    fn silence(&self) -> String {
        let held = self.held.as_ref().map(|(n, sample)| {
            if sample.is_empty() {
                format!("{n} B held that make no frame")
            } else {
                format!(
                    "{n} B held without a newline: \"{}\"",
                    escape(sample, SHOWN_CHARS_MAX)
                )
            }
        });
        match (&self.closed, held) {
            (Some(why), Some(h)) => format!("{h}; then {why}"),
            (Some(why), None) => why.clone(),
            (None, Some(h)) => h,
            (None, None) => "nothing came".into(),
        }
    }

    /// Closes the connection at once and waits for the reader.
    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        self.closed
            .get_or_insert_with(|| "closed by conform".into());
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

/// How a reader cuts bytes into frames.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not known yet (`--wire auto`): a newline makes it line frames; bytes that wait
    /// [`NEWLINE_WAIT`] without one, or a window's worth, the reference wire.
    Sniff,
    Line,
    Reference,
}

struct Reader {
    stream: TcpStream,
    tx: Sender<Ev>,
    mode: Mode,
    /// The unfinished line (or, sniffing, everything so far).
    line: Vec<u8>,
    /// Bytes of an over-long line being skipped to its newline.
    dropping: usize,
    /// Since when bytes wait that make no frame.
    since: Option<Instant>,
    held_told: bool,
    framer: Framer,
    replies: Option<Replies>,
    writer: Arc<Mutex<TcpStream>>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        while !self.stop.load(Ordering::SeqCst) {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.idle(true);
                    let _ = self.tx.send(Ev::Closed(
                        "closed by the other side".into(),
                        Instant::now(),
                    ));
                    return;
                }
                Ok(n) => self.got(&buf[..n], n < buf.len()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.idle(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = self
                        .tx
                        .send(Ev::Closed(format!("reset ({e})"), Instant::now()));
                    return;
                }
            }
        }
    }

    fn pending(&self) -> usize {
        self.line.len() + self.framer.held() + self.dropping
    }

    fn got(&mut self, bytes: &[u8], drained: bool) {
        match self.mode {
            Mode::Sniff => {
                self.line.extend_from_slice(bytes);
                if self.line.contains(&b'\n') {
                    self.mode = Mode::Line;
                    let held = std::mem::take(&mut self.line);
                    self.lines(&held);
                } else if self.line.len() >= FRAME_BYTES {
                    self.go_reference(drained);
                }
            }
            Mode::Line => self.lines(bytes),
            Mode::Reference => {
                self.framer.push(bytes);
                self.frames(drained);
            }
        }
        self.waiting();
    }

    /// A read found nothing (or the end): bytes that waited long enough for a newline are
    /// the reference wire's; a bare frame ends where the bytes end.
    fn idle(&mut self, end: bool) {
        let waited = self.since.is_some_and(|t| t.elapsed() >= NEWLINE_WAIT);
        if self.mode == Mode::Sniff && !self.line.is_empty() && (waited || end) {
            self.go_reference(true);
        } else if self.mode == Mode::Reference && self.framer.held() > 0 {
            self.frames(true);
        }
        self.waiting();
        let waited = self.since.is_some_and(|t| t.elapsed() >= NEWLINE_WAIT);
        if (waited || end) && !self.held_told && self.pending() > 0 {
            self.held_told = true;
            let sample = self.line.iter().take(SHOWN_CHARS_MAX).copied().collect();
            let _ = self.tx.send(Ev::Held(self.pending(), sample));
        }
    }

    fn waiting(&mut self) {
        if self.pending() == 0 {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    fn go_reference(&mut self, drained: bool) {
        self.mode = Mode::Reference;
        let held = std::mem::take(&mut self.line);
        self.framer.push(&held);
        self.frames(drained);
    }

    fn lines(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let Some(i) = bytes.iter().position(|&b| b == b'\n') else {
                if self.dropping > 0 {
                    self.dropping += bytes.len();
                } else {
                    self.line.extend_from_slice(bytes);
                    if self.line.len() > LINE_BYTES_MAX {
                        self.dropping = self.line.len();
                        self.line = Vec::new();
                    }
                }
                return;
            };
            let (part, rest) = bytes.split_at(i + 1);
            bytes = rest;
            if self.dropping > 0 {
                let n = self.dropping + part.len();
                self.dropping = 0;
                self.emit(Frame {
                    raw: Vec::new(),
                    bytes: n,
                    wire: Wire::Line,
                    msg: Err(WireError::TooLong { bytes: n }),
                });
                continue;
            }
            self.line.extend_from_slice(part);
            let raw = std::mem::take(&mut self.line);
            let msg = wire::decode(&raw);
            self.emit(Frame {
                bytes: raw.len(),
                raw,
                wire: Wire::Line,
                msg,
            });
        }
    }

    /// Takes the reference frames the framer completes. Padding the framer skips right
    /// after a frame is counted as that frame's (the original's hello is 1 031 bytes).
    fn frames(&mut self, drained: bool) {
        let mut last: Option<Frame> = None;
        loop {
            let before = self.framer.held();
            let next = self.framer.next_frame(drained);
            let taken = next.as_ref().map_or(0, Vec::len);
            let skipped = before.saturating_sub(self.framer.held() + taken);
            if let Some(mut f) = last.take() {
                f.bytes += skipped;
                self.emit(f);
            }
            let Some(raw) = next else { break };
            let msg = refwire::decode(&raw);
            last = Some(Frame {
                bytes: raw.len(),
                raw,
                wire: Wire::Reference,
                msg,
            });
        }
    }

    fn emit(&mut self, f: Frame) {
        self.held_told = false;
        if let (Some(r), Ok(msg)) = (&self.replies, &f.msg) {
            let answer = match msg {
                Message::LivenessRequest { ts, addr } => {
                    r.requests.fetch_add(1, Ordering::SeqCst);
                    Some(Message::LivenessReply {
                        ts: ts.clone(),
                        to: *addr,
                        from: r.me,
                    })
                }
                Message::Hello { .. } if r.hello => Some(Message::Hello { addr: r.me }),
                _ => None,
            };
            if let Some(a) = answer {
                let _ = lock(&self.writer).write_all(&encode(f.wire, &a));
            }
        }
        let _ = self.tx.send(Ev::Frame(f));
    }
}

/// A listener whose connections come out of a channel; closed (really: connections are
/// refused) once [`Acceptor::close`] returns.
struct Acceptor {
    addr: NodeAddr,
    rx: Receiver<TcpStream>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn bind(at: SocketAddrV4) -> io::Result<Acceptor> {
        let listener = TcpListener::bind(at)?;
        listener.set_nonblocking(true)?;
        let addr = match listener.local_addr()? {
            SocketAddr::V4(a) => NodeAddr::new(*a.ip(), a.port()),
            SocketAddr::V6(_) => return Err(io::Error::other("not an IPv4 listener")),
        };
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("conform-accept".into())
            .spawn(move || {
                while !stopped.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            if s.set_nonblocking(false).is_ok() && tx.send(s).is_err() {
                                return;
                            }
                        }
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            })?;
        Ok(Acceptor {
            addr,
            rx,
            stop,
            thread: Some(thread),
        })
    }

    fn loopback() -> io::Result<Acceptor> {
        Acceptor::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
    }

    fn next(&self, deadline: Instant) -> Option<TcpStream> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.rx.recv_timeout(left).ok()
    }

    fn try_next(&self) -> Option<TcpStream> {
        self.rx.try_recv().ok()
    }

    /// Stops listening: the port refuses connections from now on.
    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.close();
    }
}

/// An address conform registers with a seed: a listener whose connections answer liveness
/// requests and hellos, as a peer at that address would.
struct Responder {
    addr: NodeAddr,
    requests: Arc<AtomicUsize>,
    links: Arc<Mutex<Vec<Link>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(ctx: &Ctx) -> io::Result<Responder> {
        let mut acceptor = Acceptor::loopback()?;
        let addr = acceptor.addr;
        let requests = Arc::new(AtomicUsize::new(0));
        let links = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Replies {
            me: addr,
            hello: true,
            requests: Arc::clone(&requests),
        };
        let (choice, timeout) = (ctx.choice, ctx.timeout);
        let (held, stopped) = (Arc::clone(&links), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("conform-responder".into())
            .spawn(move || {
                while !stopped.load(Ordering::SeqCst) {
                    let Some(s) = acceptor.next(Instant::now() + POLL) else {
                        continue;
                    };
                    // Answers in the wire each request comes in.
                    let wire = Wire::Line;
                    if let Ok(l) = Link::open(s, choice, wire, Some(replies.clone()), timeout) {
                        lock(&held).push(l);
                    }
                }
                acceptor.close();
            })?;
        Ok(Responder {
            addr,
            requests,
            links,
            stop,
            thread: Some(thread),
        })
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The address dies: its port refuses connections and its open ones are closed.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        lock(&self.links).clear();
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------- session

/// What all checks of one run share: the node, the wire spoken, the findings told.
struct Ctx {
    target: NodeAddr,
    choice: WireChoice,
    /// The wire conform writes in (in `auto`, line until the node shows the reference wire).
    wire: Wire,
    timeout: Duration,
    told_newline: bool,
    told_padding: bool,
    told_localhost: bool,
    /// How each address conform registered was spelled in its registration (a seed of the
    /// original matches reports against that text).
    names: Vec<(NodeAddr, String)>,
}

impl Ctx {
    fn target_socket(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.target.ip, self.target.port))
    }

    fn dial(&self, replies: Option<Replies>) -> io::Result<Link> {
        let s = TcpStream::connect_timeout(&self.target_socket(), self.timeout)?;
        Link::open(s, self.choice, self.wire, replies, self.timeout)
    }

    fn accept(&self, s: TcpStream, replies: Option<Replies>) -> io::Result<Link> {
        Link::open(s, self.choice, self.wire, replies, self.timeout)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// A dead-node report in the wire spoken, each address spelled as it was registered
    /// (in `auto`, the first registration went out in the line wire).
    fn report(&self, dead: NodeAddr, reporter: NodeAddr) -> Vec<u8> {
        let ts = wall_ts(0);
        let msg = Message::DeadNode(DeadNode {
            dead,
            ts: ts.clone(),
            reporter,
        });
        if self.wire == Wire::Line {
            return encode(Wire::Line, &msg);
        }
        let name = |a: NodeAddr| {
            self.names
                .iter()
                .find(|(n, _)| *n == a)
                .map_or_else(|| a.ip.to_string(), |(_, s)| s.clone())
        };
        let text = format!(
            "Dead Node:{}:{}:{ts}:{}:{}",
            name(dead),
            dead.port,
            name(reporter),
            reporter.port
        );
        let mut v = text.into_bytes();
        v.resize(v.len().max(FRAME_BYTES), b' ');
        v
    }

    /// The form of a frame the node sent: in `auto`, the first frame without newline (and
    /// the first padded one) is a finding, and conform goes on in the reference wire.
    fn form(&mut self, f: &Frame, c: &mut Check) {
        if f.wire != Wire::Reference || self.choice != WireChoice::Auto {
            return;
        }
        if f.padded() {
            if !self.told_padding {
                self.told_padding = true;
                c.finding("padded to 1024 bytes, no newline (the reference wire)");
            }
        } else if !self.told_newline {
            self.told_newline = true;
            c.finding("no newline (the reference wire's bare seed exchange)");
        }
        if self.wire != Wire::Reference {
            self.wire = Wire::Reference;
            c.info("conform goes on in the reference wire");
        }
    }

    /// A node that calls itself `localhost` (the original does): a finding the first time.
    fn localhost(&mut self, f: &Frame, c: &mut Check) {
        let named = f
            .text()
            .split([':', '#'])
            .any(|x| x.trim_end() == "localhost");
        if named && !self.told_localhost {
            self.told_localhost = true;
            c.finding("calls itself localhost (read as 127.0.0.1)");
        }
    }
}

/// What a frame decoded to, for a failure's reason.
fn what(f: &Frame) -> String {
    match &f.msg {
        Ok(m) => format!("a {} frame", m.kind()),
        Err(e) => format!("an undecodable frame ({e})"),
    }
}

// ------------------------------------------------------------------------------- seed

/// The checks of a seed; an error only when conform cannot listen itself.
fn seed_role(ctx: &mut Ctx, a: &ConformArgs) -> Result<Vec<Check>, String> {
    let listen = |e: io::Error| format!("conform cannot listen on 127.0.0.1: {e}");
    // Opened first, looked at last: the silence check waits meanwhile.
    let silent = (!a.quick).then(|| (Instant::now(), ctx.dial(None)));
    let mut ra = Responder::start(ctx).map_err(listen)?;
    let mut rb = Responder::start(ctx).map_err(listen)?;
    let mut rc = Responder::start(ctx).map_err(listen)?;
    println!(
        "conform: registering A {}, B {}, C {} (each answers liveness requests and hellos)",
        ra.addr, rb.addr, rc.addr
    );
    let mut checks = Vec::new();
    let (c, mut conn_a) = seed_registration(ctx, &ra);
    checks.push(c);
    checks.push(match conn_a.as_mut() {
        Some(l) => seed_peer_list(ctx, l, ra.addr),
        None => Check::new("peer list", "").not_run("A is not registered"),
    });
    let (c, conn_c) = seed_dead_report(ctx, conn_a.as_mut(), &ra, &mut rb, &rc);
    checks.push(c);
    checks.push(match conn_c {
        Some(mut l) => seed_false_report(ctx, &mut l, &ra, rc.addr),
        None => Check::new("false dead report", "").not_run("C is not registered"),
    });
    checks.push(seed_bad_frames(ctx));
    checks.push(match silent {
        None => Check::new("silence", "").skip("--quick"),
        Some((t0, link)) => silence(link, t0, std_duration(a.silence_wait), "seed"),
    });
    ra.stop();
    rb.stop();
    rc.stop();
    Ok(checks)
}

/// Registers `who` on a new connection: the connection and the seed's first answer.
fn register(ctx: &mut Ctx, who: NodeAddr) -> Result<(Link, Frame), String> {
    let mut link = ctx
        .dial(None)
        .map_err(|e| format!("cannot connect to {}: {e}", ctx.target))?;
    let frame = encode(link.wire, &Message::Register { addr: who });
    link.send_raw(&frame)
        .map_err(|e| format!("cannot send the registration: {e}"))?;
    // `register:HOST:PORT`: the host as this wire spells it.
    let text = String::from_utf8_lossy(&frame);
    let host = text.split(':').nth(1).unwrap_or_default();
    ctx.names.push((who, host.to_owned()));
    let missing = format!("no answer to `register:{who}`");
    let f = link.expect(ctx.timeout, &missing, |_| true)?;
    Ok((link, f))
}

/// Registers `who` on a new connection: the connection, once the seed confirmed.
fn registered_link(ctx: &mut Ctx, who: NodeAddr) -> Result<Link, String> {
    let (link, answer) = register(ctx, who)?;
    registered(&answer)?;
    Ok(link)
}

/// Whether `answer` confirms a registration; the reason when not.
fn registered(answer: &Frame) -> Result<(), String> {
    match &answer.msg {
        Ok(Message::Registered) => Ok(()),
        Ok(Message::RegistrationRefused { reason }) => Err(format!("refused: {}", reason.as_str())),
        _ => Err(format!("answered with {}", what(answer))),
    }
}

fn seed_registration(ctx: &mut Ctx, ra: &Responder) -> (Check, Option<Link>) {
    let mut c = Check::new("registration", expect_text(ctx.wire, &Message::Registered));
    let (mut link, answer) = match register(ctx, ra.addr) {
        Ok(x) => x,
        Err(e) => {
            c.fail(e);
            return (c, None);
        }
    };
    c.observed = show(&answer);
    ctx.form(&answer, &mut c);
    link.wire = ctx.wire;
    if let Err(e) = registered(&answer) {
        c.fail(e);
    }
    if ra.requests() > 0 {
        c.info("the seed checked the address first (conform answered its liveness request)");
    }
    c.info("localhost-style naming is not testable here: conform registers 127.0.0.1");
    let ok = c.fails.is_empty();
    (c, ok.then_some(link))
}

/// A peer list as a seed sent it, read leniently.
struct ListView {
    addrs: Vec<NodeAddr>,
    leading_empty: bool,
    bad: Vec<String>,
}

impl ListView {
    fn read(f: &Frame) -> Result<ListView, String> {
        let text = f.text();
        let text = text.trim_end_matches(['\n', '\r', ' ', '\0']);
        let rest = text
            .strip_prefix("peer list:")
            .ok_or_else(|| format!("not a peer list: {}", what(f)))?;
        let mut view = ListView {
            addrs: Vec::new(),
            leading_empty: rest.starts_with(':'),
            bad: Vec::new(),
        };
        for e in rest.split(':').filter(|e| !e.is_empty()) {
            match list_entry(e) {
                Some(a) => view.addrs.push(a),
                None => view.bad.push(e.to_owned()),
            }
        }
        Ok(view)
    }

    fn has(&self, a: NodeAddr) -> bool {
        self.addrs.contains(&a)
    }
}

/// `IP#PORT` or `IP#PORT#DEGREE` (`localhost` read as 127.0.0.1).
fn list_entry(e: &str) -> Option<NodeAddr> {
    let mut parts = e.split('#');
    let ip = parts.next()?;
    let ip = if ip == "localhost" {
        Ipv4Addr::LOCALHOST
    } else {
        NodeAddr::parse_ip(ip).ok()?
    };
    let port = NodeAddr::parse_port(parts.next()?).ok()?;
    if let Some(d) = parts.next() {
        d.parse::<u32>().ok()?;
    }
    parts.next().is_none().then_some(NodeAddr::new(ip, port))
}

/// Asks for the list on `link`: the answer.
fn ask_list(ctx: &Ctx, link: &mut Link) -> Result<Frame, String> {
    link.send(&Message::PeerListRequest)
        .map_err(|e| format!("cannot ask for the list: {e}"))?;
    link.expect(ctx.timeout, "no answer to `peer list`", |_| true)
}

/// The list as a new connection gets it.
fn fresh_list(ctx: &Ctx) -> Result<(Frame, ListView), String> {
    let mut link = ctx
        .dial(None)
        .map_err(|e| format!("cannot connect to {}: {e}", ctx.target))?;
    let f = ask_list(ctx, &mut link)?;
    let view = ListView::read(&f)?;
    Ok((f, view))
}

fn seed_peer_list(ctx: &mut Ctx, link: &mut Link, a: NodeAddr) -> Check {
    let mut c = Check::new("peer list", format!("\"peer list:IP#PORT:...\" naming {a}"));
    let Some(f) = c.take(ask_list(ctx, link)) else {
        return c;
    };
    c.observed = show(&f);
    ctx.form(&f, &mut c);
    match ListView::read(&f) {
        Err(e) => c.fail(e),
        Ok(v) => {
            if v.leading_empty {
                c.finding("the list starts with an empty field (`peer list::`)");
            }
            if !v.bad.is_empty() {
                c.fail(format!(
                    "entries that are not IP#PORT[#DEGREE]: {:?}",
                    v.bad
                ));
            }
            if !v.has(a) {
                c.fail(format!("the registered address {a} is not listed"));
            }
            c.info(format!("{} entries", v.addrs.len() + v.bad.len()));
        }
    }
    c
}

/// Check 3: B and C register, B dies, A reports B: the seed removes B. Returns C's
/// connection for the next check.
fn seed_dead_report(
    ctx: &mut Ctx,
    conn_a: Option<&mut Link>,
    ra: &Responder,
    rb: &mut Responder,
    rc: &Responder,
) -> (Check, Option<Link>) {
    let (a, b) = (ra.addr, rb.addr);
    let mut c = Check::new(
        "dead node report",
        format!("{b} removed after A reports it dead"),
    );
    let Some(conn_a) = conn_a else {
        return (c.not_run("A is not registered"), None);
    };
    let _conn_b = match registered_link(ctx, b) {
        Ok(l) => l,
        Err(e) => return (c.not_run(&format!("B's registration: {e}")), None),
    };
    let mut conn_c = match registered_link(ctx, rc.addr) {
        Ok(l) => l,
        Err(e) => return (c.not_run(&format!("C's registration: {e}")), None),
    };
    match fresh_list(ctx) {
        Ok((_, v)) if v.has(a) && v.has(b) => {}
        Ok((f, _)) => {
            c.observed = show(&f);
            return (c.not_run("A and B are not both listed"), Some(conn_c));
        }
        Err(e) => return (c.not_run(&e), Some(conn_c)),
    }
    rb.stop();
    conn_a.forget();
    conn_c.forget();
    conn_a.wire = ctx.wire;
    if let Err(e) = conn_a.send_raw(&ctx.report(b, a)) {
        c.fail(format!("cannot send the report: {e}"));
        return (c, Some(conn_c));
    }
    let sent = Instant::now();
    let deadline = sent + ctx.timeout * 3;
    let mut last = None;
    let removed = loop {
        match fresh_list(ctx) {
            Ok((_, v)) if !v.has(b) => break true,
            Ok((f, _)) => last = Some(show(&f)),
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(LIST_POLL);
    };
    let took = secs(sent.elapsed());
    c.observed = if removed {
        format!("B removed {took} after the report")
    } else {
        format!("B still listed {took} after the report")
    };
    if !removed {
        c.fail(format!(
            "B ({b}, refusing connections) still listed: {}",
            last.unwrap_or_default()
        ));
    }
    // What the reporter and the other peer (C) were told.
    std::thread::sleep(Duration::from_millis(200));
    let told_a = conn_a.shown_until(Instant::now());
    if conn_a.is_closed() {
        c.finding("closed the reporter's connection");
    }
    if !told_a.is_empty() {
        c.info(format!("the reporter A was told: {}", told_a.join(", ")));
    }
    let told_c = conn_c.shown_until(Instant::now());
    if told_c.is_empty() {
        c.info("the other registered peer (C) was told nothing");
    } else {
        c.info(format!(
            "the other registered peer (C) was told: {}",
            told_c.join(", ")
        ));
    }
    (c, Some(conn_c))
}

/// Check 4: C reports A (alive) dead; a seed that checks first keeps it.
fn seed_false_report(ctx: &mut Ctx, conn_c: &mut Link, ra: &Responder, c_addr: NodeAddr) -> Check {
    let a = ra.addr;
    let mut c = Check::new("false dead report", format!("{a} (alive) still listed"));
    conn_c.wire = ctx.wire;
    conn_c.forget();
    let before = ra.requests();
    if let Err(e) = conn_c.send_raw(&ctx.report(a, c_addr)) {
        c.fail(format!("cannot send the report: {e}"));
        return c;
    }
    let deadline = ctx.deadline();
    let mut probed = false;
    let removed = loop {
        if ra.requests() > before {
            probed = true;
            // Its verdict follows the reply.
            std::thread::sleep(Duration::from_millis(300));
        }
        let removed = match fresh_list(ctx) {
            Ok((_, v)) => !v.has(a),
            Err(e) => {
                c.fail(e);
                return c;
            }
        };
        if removed || probed || Instant::now() >= deadline {
            break removed;
        }
        std::thread::sleep(LIST_POLL);
    };
    c.observed = match (removed, probed) {
        (true, false) => "A removed at once, without a check".into(),
        (true, true) => "A removed although it answered the seed's check".into(),
        (false, true) => "the seed checked A (it answered) and kept it".into(),
        (false, false) => format!("A still listed after {}", secs(ctx.timeout)),
    };
    if removed && probed {
        c.fail("removed a peer that answered the seed's liveness request");
    } else if removed {
        c.finding("removes on one report, unchecked");
    }
    if conn_c.is_closed() {
        c.info("the seed closed the reporter's connection");
    }
    c
}

/// Check 5: malformed frames on one connection; a new connection still gets a list.
fn seed_bad_frames(ctx: &mut Ctx) -> Check {
    let mut c = Check::new(
        "bad frames",
        "no crash: a new connection still gets a peer list",
    );
    let mut link = match ctx.dial(None) {
        Ok(l) => l,
        Err(e) => {
            c.fail(format!("cannot connect: {e}"));
            return c;
        }
    };
    let nl: &[u8] = if ctx.wire == Wire::Line { b"\n" } else { b"" };
    let mut long = vec![b'x'; LONG_LINE_BYTES];
    long.extend_from_slice(nl);
    let parts: [Vec<u8>; 3] = [
        [b"register:999.1.1.1:0".as_slice(), nl].concat(),
        garbage(GARBAGE_BYTES),
        long,
    ];
    let mut wrote = Vec::new();
    for p in &parts {
        if let Err(e) = link.send_raw(p) {
            c.info(format!("a write failed ({e})"));
            break;
        }
        wrote.push(p.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers = link.shown_until(ctx.deadline());
    let fate = if link.is_closed() {
        "closed the connection"
    } else {
        "kept the connection open"
    };
    c.observed = match answers.is_empty() {
        true => format!("no answer; {fate}"),
        false => format!("answered {}; {fate}", answers.join(", ")),
    };
    c.info(format!("sent frames of {wrote:?} B"));
    match fresh_list(ctx) {
        Ok((_, v)) => {
            if v.bad.iter().any(|e| e.starts_with("999.1.1.1")) {
                c.info("the seed lists the malformed address 999.1.1.1#0");
            }
        }
        Err(e) => c.fail(format!("afterwards: {e}")),
    }
    c
}

/// Bytes that are no frame: anything but a newline, invalid UTF-8 included.
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match x.to_le_bytes()[0] {
                b'\n' => b'?',
                b => b,
            }
        })
        .collect()
}

/// The silence check: a connection that never sends should be closed within `wait` of its
/// opening.
fn silence(link: io::Result<Link>, t0: Instant, wait: Duration, what: &str) -> Check {
    let mut c = Check::new(
        "silence",
        format!(
            "a connection that sends nothing closed within {}",
            secs(wait)
        ),
    );
    let mut link = match link {
        Ok(l) => l,
        Err(e) => {
            c.fail(format!("cannot connect: {e}"));
            return c;
        }
    };
    let said = link.shown_until(t0 + wait);
    if !said.is_empty() {
        c.info(format!("the {what} sent {}", said.join(", ")));
    }
    link.poll();
    match link.closed_at.map(|at| at.saturating_duration_since(t0)) {
        Some(after) if after <= wait + READ_TICK * 2 => {
            c.observed = format!("closed after {}", secs(after));
        }
        Some(after) => {
            c.observed = format!("closed only after {}", secs(after));
            c.finding("keeps silent connections open");
        }
        None => {
            c.observed = format!("still open after {}", secs(t0.elapsed()));
            c.finding("keeps silent connections open");
        }
    }
    c
}

// ------------------------------------------------------------------------------- peer

/// A child process killed when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` split on whitespace, quoted parts kept together, `{config}` replaced.
fn split_command(cmd: &str, config: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in cmd.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    let path = config.display().to_string();
    out.into_iter()
        .map(|a| a.replace("{config}", &path))
        .collect()
}

fn spawn_peer(cmd: &str, config: &Path, log: &Path) -> Result<Spawned, String> {
    let argv = split_command(cmd, config);
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| "--spawn: empty command".to_string())?;
    let out =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("--spawn: cannot start {prog:?}: {e}"))?;
    println!(
        "conform: started the peer (pid {}): {}; its output goes to {}",
        child.id(),
        argv.join(" "),
        log.display()
    );
    Ok(Spawned(child))
}

/// What conform plays against a peer: its seed and two neighbours.
struct PeerWorld {
    seed: Acceptor,
    n1: Acceptor,
    n2: Acceptor,
    child: Option<Spawned>,
    /// Connections the peer opened to conform's seed, the first one first.
    seed_links: Vec<Link>,
}

impl PeerWorld {
    /// The peer's exit, if it exited.
    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.0.try_wait() {
            Ok(Some(s)) => Some(format!("the peer exited ({s})")),
            _ => None,
        }
    }

    /// Takes the connections the peer opened to the seed meanwhile.
    fn adopt_seed_links(&mut self, ctx: &Ctx) {
        while let Some(s) = self.seed.try_next() {
            if let Ok(l) = ctx.accept(s, None) {
                self.seed_links.push(l);
            }
        }
    }
}

/// One of conform's neighbours of the peer: its address and its link, once made.
struct Neighbour {
    me: NodeAddr,
    link: Option<Link>,
}

fn peer_role(ctx: &mut Ctx, a: &ConformArgs, out: &Path) -> Result<Vec<Check>, String> {
    let listen = |e: io::Error| format!("conform cannot listen: {e}");
    let seed = Acceptor::bind(a.seed_listen).map_err(listen)?;
    let (n1, n2) = (
        Acceptor::loopback().map_err(listen)?,
        Acceptor::loopback().map_err(listen)?,
    );
    let config = out.join("config.txt");
    std::fs::write(&config, format!("{}\n", seed.addr))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let config = std::fs::canonicalize(&config).unwrap_or(config);
    println!(
        "conform: seed listening on {} ({}); neighbours N1 {}, N2 {}",
        seed.addr,
        config.display(),
        n1.addr,
        n2.addr
    );
    let child = match &a.spawn {
        Some(cmd) => Some(spawn_peer(cmd, &config, &out.join("peer.log"))?),
        None => {
            println!(
                "conform: start the peer with this config.txt: {} (listening on {}); waiting up to {}",
                config.display(),
                ctx.target,
                secs(std_duration(a.wait))
            );
            None
        }
    };
    let mut w = PeerWorld {
        seed,
        n1,
        n2,
        child,
        seed_links: Vec::new(),
    };
    let checks = peer_checks(ctx, a, &mut w);
    if let Some(why) = w.exited() {
        println!("conform: {why}");
    }
    Ok(checks)
}

fn peer_checks(ctx: &mut Ctx, a: &ConformArgs, w: &mut PeerWorld) -> Vec<Check> {
    let mut checks = Vec::new();
    let names = [
        "hello",
        "liveness",
        "gossip forwarding",
        "dedup",
        "dead node report",
        "bad frames",
        "silence",
    ];
    let c1 = peer_registration(ctx, a, w);
    let registered = c1.fails.is_empty();
    checks.push(c1);
    if !registered {
        checks.push(Check::new("peer list request", "").not_run("no registration"));
        checks.extend(
            names
                .iter()
                .map(|n| Check::new(n, "").not_run("no registration")),
        );
        return checks;
    }
    let t0 = Instant::now();
    let silent = ctx.dial(None);
    checks.push(peer_list_request(ctx, w));
    let (c3, mut ns) = peer_hello(ctx, w);
    checks.push(c3);
    checks.push(peer_liveness(ctx, &mut ns));
    let [n1, n2] = &mut ns;
    let sent = gossip(wall_ts(0), ORIGIN_1);
    checks.push(peer_forwarding(ctx, &sent, n1, n2));
    checks.push(peer_dedup(ctx, &sent, n1, n2));
    checks.push(if a.quick {
        Check::new("dead node report", "").skip("--quick")
    } else {
        peer_dead_report(ctx, w, n2, std_duration(a.liveness_wait))
    });
    checks.push(peer_bad_frames(ctx, w, n1));
    checks.push(silence(silent, t0, std_duration(a.silence_wait), "peer"));
    checks
}

fn peer_registration(ctx: &mut Ctx, a: &ConformArgs, w: &mut PeerWorld) -> Check {
    let target = ctx.target;
    let mut c = Check::new(
        "registration",
        expect_text(ctx.wire, &Message::Register { addr: target }),
    );
    let deadline = Instant::now() + std_duration(a.wait);
    let stream = loop {
        if let Some(s) = w.seed.next(Instant::now() + POLL * 5) {
            break s;
        }
        if let Some(why) = w.exited() {
            c.fail(format!("{why} before registering"));
            return c;
        }
        if Instant::now() >= deadline {
            c.fail(format!(
                "the peer did not connect to the seed within {}",
                secs(std_duration(a.wait))
            ));
            return c;
        }
    };
    let mut link = match ctx.accept(stream, None) {
        Ok(l) => l,
        Err(e) => {
            c.fail(format!("cannot read the connection: {e}"));
            return c;
        }
    };
    let Some(f) = c.take(link.expect(ctx.timeout, "no frame", |_| true)) else {
        return c;
    };
    c.observed = show(&f);
    ctx.form(&f, &mut c);
    link.wire = f.wire;
    ctx.localhost(&f, &mut c);
    match &f.msg {
        Ok(Message::Register { addr }) if *addr == target => {}
        Ok(Message::Register { addr }) => c.fail(format!(
            "registered {addr}, but the peer under test listens on {target}"
        )),
        _ => c.fail(format!(
            "the first frame is {}, not a registration",
            what(&f)
        )),
    }
    if c.fails.is_empty()
        && let Err(e) = link.send(&Message::Registered)
    {
        c.fail(format!("cannot answer: {e}"));
    }
    w.seed_links.push(link);
    c
}

fn peer_list_request(ctx: &mut Ctx, w: &mut PeerWorld) -> Check {
    let list = Message::PeerList {
        peers: vec![
            wire::ListedPeer::plain(w.n1.addr),
            wire::ListedPeer::plain(w.n2.addr),
        ],
    };
    let mut c = Check::new(
        "peer list request",
        expect_text(ctx.wire, &Message::PeerListRequest),
    );
    let Some(link) = w.seed_links.first_mut() else {
        return c.not_run("no seed connection");
    };
    let Some(f) = c.take(link.expect(ctx.timeout, "no `peer list`", |f| {
        matches!(f.msg, Ok(Message::PeerListRequest))
    })) else {
        return c;
    };
    c.observed = show(&f);
    ctx.form(&f, &mut c);
    if let Err(e) = link.send(&list) {
        c.fail(format!("cannot answer: {e}"));
    }
    c.info(format!(
        "answered {} (N1 and N2)",
        expect_text(link.wire, &list)
    ));
    c
}

/// Check 3: the peer's hellos, whoever dials. Returns N1 and N2.
fn peer_hello(ctx: &mut Ctx, w: &mut PeerWorld) -> (Check, [Neighbour; 2]) {
    let target = ctx.target;
    let mut c = Check::new(
        "hello",
        format!("\"Connection with Peer:{target}\" answering N1's and N2's hellos"),
    );
    let mut ns = [w.n1.addr, w.n2.addr].map(|me| Neighbour { me, link: None });
    // The peer dials the listed neighbours first, if it does.
    let deadline = ctx.deadline();
    let mut dialed: [Option<TcpStream>; 2] = [None, None];
    while dialed.iter().any(Option::is_none) && Instant::now() < deadline {
        for (slot, acc) in dialed.iter_mut().zip([&w.n1, &w.n2]) {
            if slot.is_none() {
                *slot = acc.try_next();
            }
        }
        std::thread::sleep(POLL);
    }
    let mut observed = Vec::new();
    for (i, (n, s)) in ns.iter_mut().zip(dialed).enumerate() {
        let name = if i == 0 { "N1" } else { "N2" };
        let replies = Some(Replies {
            me: n.me,
            hello: false,
            requests: Arc::new(AtomicUsize::new(0)),
        });
        let got = match s {
            Some(s) => hello_from_dial(ctx, s, replies.clone(), n.me),
            None => Err("the peer did not dial it".to_string()),
        };
        let (link, f, how) = match got {
            Ok((l, f)) => (l, f, format!("the peer dialed {name}")),
            Err(why) => match hello_by_dialing(ctx, replies, n.me) {
                Ok((l, f)) => (l, f, format!("conform dialed the peer as {name} ({why})")),
                Err(e) => {
                    c.fail(format!("{name}: {why}; conform dialed the peer: {e}"));
                    continue;
                }
            },
        };
        observed.push(show(&f));
        c.info(how);
        if judge_hello(ctx, &f, &mut c, name) {
            n.link = Some(link);
        }
    }
    c.observed = observed.first().cloned().unwrap_or_else(|| "-".into());
    (c, ns)
}

/// A connection the peer opened to a neighbour: its hello, answered.
fn hello_from_dial(
    ctx: &Ctx,
    s: TcpStream,
    replies: Option<Replies>,
    me: NodeAddr,
) -> Result<(Link, Frame), String> {
    let mut link = ctx
        .accept(s, replies)
        .map_err(|e| format!("cannot read its connection: {e}"))?;
    let f = link
        .wait(ctx.deadline(), |_| true)
        .ok_or_else(|| format!("the peer dialed but sent no hello ({})", link.silence()))?;
    if !matches!(f.msg, Ok(Message::Hello { .. })) {
        return Err(format!("the peer dialed and sent {}", what(&f)));
    }
    link.wire = f.wire;
    link.send(&Message::Hello { addr: me })
        .map_err(|e| format!("cannot answer its hello: {e}"))?;
    Ok((link, f))
}

/// Conform dials the peer as neighbour `me`: the peer's answer to its hello.
fn hello_by_dialing(
    ctx: &Ctx,
    replies: Option<Replies>,
    me: NodeAddr,
) -> Result<(Link, Frame), String> {
    let mut link = ctx
        .dial(replies)
        .map_err(|e| format!("cannot connect: {e}"))?;
    link.send(&Message::Hello { addr: me })
        .map_err(|e| format!("cannot send hello: {e}"))?;
    let f = link.expect(ctx.timeout, "no hello back", |f| {
        matches!(f.msg, Ok(Message::Hello { .. } | Message::Refuse { .. }))
    })?;
    Ok((link, f))
}

/// Whether `f` is an acceptable hello from the peer; findings and failures go to `c`.
fn judge_hello(ctx: &mut Ctx, f: &Frame, c: &mut Check, name: &str) -> bool {
    ctx.form(f, c);
    ctx.localhost(f, c);
    if f.wire == Wire::Reference
        && f.bytes > FRAME_BYTES
        && matches!(f.msg, Ok(Message::Hello { .. }))
    {
        c.finding(format!(
            "hello frame of {} bytes (padded before its address was filled in)",
            f.bytes
        ));
    }
    match &f.msg {
        Ok(Message::Hello { addr }) if *addr == ctx.target => true,
        Ok(Message::Hello { addr }) => {
            c.fail(format!(
                "{name}: the hello names {addr}, not {}",
                ctx.target
            ));
            false
        }
        Ok(Message::Refuse { reason }) => {
            c.fail(format!("{name}: refused ({})", reason.as_str()));
            false
        }
        _ => {
            c.fail(format!("{name}: {} instead of a hello", what(f)));
            false
        }
    }
}

fn linked(ns: &mut [Neighbour]) -> Option<(&mut Link, NodeAddr)> {
    ns.iter_mut()
        .find_map(|n| n.link.as_mut().map(|l| (l, n.me)))
}

fn peer_liveness(ctx: &mut Ctx, ns: &mut [Neighbour; 2]) -> Check {
    let ts = wall_ts(0);
    let target = ctx.target;
    let Some((link, me)) = linked(ns) else {
        return Check::new("liveness", "").not_run("no neighbour link");
    };
    let reply = Message::LivenessReply {
        ts: ts.clone(),
        to: me,
        from: target,
    };
    let mut c = Check::new("liveness", format!("\"{reply}\""));
    link.forget();
    if let Err(e) = link.send(&Message::LivenessRequest {
        ts: ts.clone(),
        addr: me,
    }) {
        c.fail(format!("cannot send the request: {e}"));
        return c;
    }
    let Some(f) = c.take(link.expect(ctx.timeout, "no liveness reply", |f| {
        matches!(f.msg, Ok(Message::LivenessReply { .. }))
    })) else {
        return c;
    };
    c.observed = show(&f);
    ctx.form(&f, &mut c);
    ctx.localhost(&f, &mut c);
    if let Ok(Message::LivenessReply { ts: got, to, from }) = &f.msg {
        if *got != ts {
            c.fail(format!("timestamp {got} is not the request's {ts}"));
        }
        if *to != me {
            c.fail(format!("requester {to} is not {me}"));
        }
        if *from != target {
            c.fail(format!("replier {from} is not {target}"));
        }
    }
    c
}

fn gossip(ts: Timestamp, origin: NodeAddr) -> Message {
    Message::Gossip(Arc::new(Gossip::new(ts, origin, BODY.to_owned())))
}

/// Both neighbour links, with what came on them so far dropped.
fn both<'a>(n1: &'a mut Neighbour, n2: &'a mut Neighbour) -> Option<(&'a mut Link, &'a mut Link)> {
    let (Some(l1), Some(l2)) = (n1.link.as_mut(), n2.link.as_mut()) else {
        return None;
    };
    l1.forget();
    l2.forget();
    Some((l1, l2))
}

fn peer_forwarding(ctx: &mut Ctx, msg: &Message, n1: &mut Neighbour, n2: &mut Neighbour) -> Check {
    let mut c = Check::new(
        "gossip forwarding",
        format!("\"{msg}\" on N2 once, not on N1"),
    );
    let Some((l1, l2)) = both(n1, n2) else {
        return c.not_run("needs N1 and N2 both linked");
    };
    if let Err(e) = l1.send(msg) {
        c.fail(format!("cannot send on N1: {e}"));
        return c;
    }
    let Some(f) = c.take(l2.expect(ctx.timeout, "not forwarded to N2", Frame::is_ours)) else {
        return c;
    };
    c.observed = show(&f);
    ctx.form(&f, &mut c);
    ctx.localhost(&f, &mut c);
    let quiet = Instant::now() + ctx.timeout.min(ONCE_WAIT_MAX);
    let again = l2
        .frames_until(quiet)
        .iter()
        .filter(|f| f.is_ours())
        .count();
    if again > 0 {
        c.fail(format!("forwarded to N2 {} times", again + 1));
    }
    let back = l1.frames_until(Instant::now());
    if back.iter().any(Frame::is_ours) {
        c.fail("sent back to N1, where it came from");
    }
    if back
        .iter()
        .any(|f| matches!(f.msg, Ok(Message::Forwarding)))
    {
        c.finding("answers gossip with forwarding");
    }
    if let (Some(g), Message::Gossip(sent)) = (f.gossip(), msg) {
        if g.ts != sent.ts || g.origin != sent.origin {
            c.finding(format!(
                "re-stamps forwards (time and address of the forwarder: {}:{})",
                g.ts, g.origin
            ));
        } else if g.body != sent.body && !f.padded() {
            c.fail(format!("the body changed: {:?}", g.body));
        }
    }
    c
}

fn peer_dedup(ctx: &mut Ctx, first: &Message, n1: &mut Neighbour, n2: &mut Neighbour) -> Check {
    let mut c = Check::new(
        "dedup",
        "the repeat not forwarded; the same body from another origin and time forwarded",
    );
    let Message::Gossip(g) = first else {
        return c.not_run("no first message");
    };
    // The same body from another origin and time, with a header of the same length: the
    // original takes it for the same message (its identity is the padded body).
    let later =
        g.ts.micros()
            .map_or_else(|| wall_ts(1), |us| Timestamp::at(Time(us + 1_000_000), 0));
    let other = gossip(later, ORIGIN_2);
    let Some((l1, l2)) = both(n1, n2) else {
        return c.not_run("needs N1 and N2 both linked");
    };
    if let Err(e) = l2.send(first) {
        c.fail(format!("cannot send the repeat on N2: {e}"));
        return c;
    }
    let repeat = match l1.wait(ctx.deadline(), Frame::is_ours) {
        Some(f) => {
            c.fail(format!("the repeat was forwarded to N1: {}", show(&f)));
            "forwarded"
        }
        None => "not forwarded",
    };
    l2.forget();
    if let Err(e) = l1.send(&other) {
        c.fail(format!("cannot send on N1: {e}"));
        return c;
    }
    let distinct = match l2.wait(ctx.deadline(), Frame::is_ours) {
        Some(f) => {
            ctx.form(&f, &mut c);
            format!("forwarded to N2: {}", show(&f))
        }
        None => {
            c.finding("dedups by body alone");
            format!("not forwarded within {}", secs(ctx.timeout))
        }
    };
    c.observed = format!("repeat {repeat}; other origin {distinct}");
    c.info(format!("repeat on N2: {first}; then on N1: {other}"));
    c
}

fn peer_dead_report(ctx: &mut Ctx, w: &mut PeerWorld, n2: &mut Neighbour, wait: Duration) -> Check {
    let target = ctx.target;
    let mut c = Check::new(
        "dead node report",
        format!(
            "\"Dead Node:{}:TS:{target}\" to the seed within {}",
            n2.me,
            secs(wait)
        ),
    );
    let Some(mut l2) = n2.link.take() else {
        return c.not_run("N2 is not linked");
    };
    w.n2.close();
    l2.close();
    let closed = Instant::now();
    let deadline = closed + wait;
    loop {
        w.adopt_seed_links(ctx);
        for l in &mut w.seed_links {
            let found = l.wait(
                Instant::now(),
                |f| matches!(&f.msg, Ok(Message::DeadNode(d)) if d.dead == n2.me),
            );
            if let Some(f) = found {
                c.observed = format!("{} after {}", show(&f), secs(closed.elapsed()));
                ctx.form(&f, &mut c);
                ctx.localhost(&f, &mut c);
                if let Ok(Message::DeadNode(d)) = &f.msg
                    && d.reporter != target
                {
                    c.fail(format!("the reporter is {}, not {target}", d.reporter));
                }
                return c;
            }
        }
        if Instant::now() >= deadline {
            c.fail(format!("no report within {}", secs(wait)));
            return c;
        }
        if let Some(why) = w.exited() {
            c.fail(why);
            return c;
        }
        std::thread::sleep(POLL * 5);
    }
}

fn peer_bad_frames(ctx: &mut Ctx, w: &mut PeerWorld, n1: &mut Neighbour) -> Check {
    let mut c = Check::new(
        "bad frames",
        "a liveness reply after garbage (or only N1 closed); the seed connection stays up",
    );
    let Some(l1) = n1.link.as_mut() else {
        return c.not_run("N1 is not linked");
    };
    l1.forget();
    let mut junk = b"\xff\xfe garbage %% not a frame".to_vec();
    match l1.wire {
        Wire::Line => junk.push(b'\n'),
        Wire::Reference => junk.resize(FRAME_BYTES, b' '),
    }
    let ts = wall_ts(0);
    let request = Message::LivenessRequest {
        ts: ts.clone(),
        addr: n1.me,
    };
    let sent = l1.send_raw(&junk).and_then(|()| {
        std::thread::sleep(Duration::from_millis(100));
        l1.send(&request)
    });
    if let Err(e) = sent {
        c.info(format!("a write failed ({e})"));
    }
    let answer = l1.wait(
        ctx.deadline(),
        |f| matches!(&f.msg, Ok(Message::LivenessReply { ts: t, .. }) if *t == ts),
    );
    match answer {
        Some(f) => c.observed = format!("answered {}", show(&f)),
        None if l1.is_closed() => c.observed = "closed N1's connection".into(),
        None => {
            c.observed = format!("no answer within {}", secs(ctx.timeout));
            c.fail(format!(
                "stopped answering N1 after the garbage without closing the connection ({})",
                l1.silence()
            ));
        }
    }
    match w.seed_links.first_mut().map(Link::is_closed) {
        Some(true) => c.fail("the peer's seed connection closed"),
        Some(false) => {}
        None => c.fail("no seed connection"),
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(raw: &[u8], wire: Wire) -> Frame {
        Frame {
            raw: raw.to_vec(),
            bytes: raw.len(),
            wire,
            msg: match wire {
                Wire::Line => wire::decode(raw),
                Wire::Reference => refwire::decode(raw),
            },
        }
    }

    #[test]
    fn frames_are_shown_escaped_with_their_length_and_end() {
        let f = frame(b"registered successfully", Wire::Reference);
        assert_eq!(show(&f), "\"registered successfully\" (23 B, no newline)");
        let f = frame(b"peer list:1.2.3.4#5\n", Wire::Line);
        assert_eq!(show(&f), "\"peer list:1.2.3.4#5\" (20 B, newline)");
        let mut padded = b"forwarding".to_vec();
        padded.resize(FRAME_BYTES, b' ');
        let mut f = frame(&padded, Wire::Reference);
        f.bytes += 7;
        assert_eq!(
            show(&f),
            "\"forwarding\" + 1021 spaces (1031 B, no newline)"
        );
        let f = frame(b"a\"\\\xff\n", Wire::Line);
        assert_eq!(show(&f), "\"a\\\"\\\\\\xff\" (5 B, newline)");
        assert!(show(&frame(&[b'x'; 500], Wire::Line)).contains("xxx...\" (500 B, no newline)"));
    }

    #[test]
    fn a_spawn_command_splits_on_whitespace_and_keeps_quotes_together() {
        let argv = split_command(
            "python3  'my peer.py' --config {config} \"\" x",
            Path::new("/tmp/c/config.txt"),
        );
        assert_eq!(
            argv,
            [
                "python3",
                "my peer.py",
                "--config",
                "/tmp/c/config.txt",
                "",
                "x"
            ]
        );
    }

    #[test]
    fn list_entries_take_an_optional_degree_and_localhost() {
        assert_eq!(list_entry("127.0.0.1#5000"), "127.0.0.1:5000".parse().ok());
        assert_eq!(
            list_entry("localhost#5000#3"),
            "127.0.0.1:5000".parse().ok()
        );
        for bad in [
            "127.0.0.1",
            "1.2.3.4#0",
            "999.1.1.1#5",
            "1.2.3.4#5#x",
            "1.2.3.4#5#6#7",
        ] {
            assert_eq!(list_entry(bad), None, "{bad}");
        }
        let f = frame(b"peer list::localhost#5000:1.2.3.4#x", Wire::Reference);
        let v = ListView::read(&f).expect("a list");
        assert!(v.leading_empty);
        assert!(v.has("127.0.0.1:5000".parse().expect("an address")));
        assert_eq!(v.bad, ["1.2.3.4#x"]);
    }

    /// A link reading what `bytes` sends, in `auto`.
    fn read_back(bytes: &[u8]) -> Vec<Frame> {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let mut tx = TcpStream::connect(l.local_addr().expect("bound")).expect("connect");
        let (rx, _) = l.accept().expect("accept");
        let mut link = Link::open(
            rx,
            WireChoice::Auto,
            Wire::Line,
            None,
            Duration::from_secs(1),
        )
        .expect("a link");
        tx.write_all(bytes).expect("write");
        drop(tx);
        link.frames_until(Instant::now() + Duration::from_secs(3))
    }

    #[test]
    fn a_reader_tells_the_wires_apart_and_counts_the_originals_overlong_hello() {
        let got = read_back(b"registered successfully\npeer list:\n");
        let kinds: Vec<_> = got.iter().map(|f| (f.wire, f.newline())).collect();
        assert_eq!(kinds, [(Wire::Line, true), (Wire::Line, true)]);
        // The original pads its hello before filling the address in: 1 031 bytes.
        let mut hello = b"Connection with Peer:{0}:{1}".to_vec();
        hello.resize(FRAME_BYTES, b' ');
        let hello = String::from_utf8(hello)
            .expect("text")
            .replacen("{0}", "localhost", 1)
            .replacen("{1}", "5000", 1);
        let mut stream = hello.into_bytes();
        stream.extend_from_slice(b"Liveness Request:1.5:localhost:5000");
        stream.resize(1031 + FRAME_BYTES, b' ');
        let got = read_back(&stream);
        assert_eq!(
            got.len(),
            2,
            "{:?}",
            got.iter().map(show).collect::<Vec<_>>()
        );
        assert_eq!(got[0].bytes, 1031);
        assert!(got[0].padded() && !got[0].newline());
        assert_eq!(
            got[0].msg,
            Ok(Message::Hello {
                addr: "127.0.0.1:5000".parse().expect("an address")
            })
        );
        assert!(matches!(got[1].msg, Ok(Message::LivenessRequest { .. })));
        // Bytes that never end a frame are held, not a frame.
        assert!(
            read_back(b"register:1.2.3.4").len() == 1,
            "bare: ends at the close"
        );
        assert!(read_back(b"garbage without end").is_empty());
    }
}
