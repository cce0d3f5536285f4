//! `gossipnet bench --seed-load [N]`, issue 12: "a seed process holding 20 000 registered
//! connections answers `peer list` within 50 ms".
//!
//! A `gossipnet seed` runs as a child process of this binary (admission `trust`, so that a
//! registration is listed at once, without a dial-back). This process opens N connections to
//! it, each registering a distinct `127.0.0.1:PORT` (the connection's own local port, which
//! listens nowhere), on a few threads: each connection writes its `register` as soon as it
//! is open, and answers are read behind, with at most [`LISTEN_BACKLOG`] registrations
//! unanswered at a time (a pipeline as deep as the seed's accept queue). With the N
//! connections held, one more connection registers and times `peer list` round trips. The
//! seed's peak RSS comes from `/proc/PID/status`; then the seed is stopped with SIGINT and
//! its run folder says how many connections it held at its peak.
//!
//! Both processes are bounded by the descriptor limit: the seed holds at most its limit minus
//! [`net_real::fds::RESERVE`] connections, this process one socket a connection. N defaults
//! to the most that fit, and a larger N is run at that size, with a warning.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::row;

/// `peer list` round trips timed.
const QUERIES: usize = 200;
/// Issue 12's bound on one `peer list` answer.
const TARGET_MS: f64 = 50.0;
/// Issue 12's registered connections.
const ISSUE_CONNECTIONS: usize = 20_000;
/// Descriptors this process keeps beyond its client sockets (standard streams, the seed's
/// pipes, `/proc` reads).
const CLIENT_RESERVE: u64 = 16;
/// Threads that open and read the registering connections.
const THREADS_MAX: usize = 4;
/// How long the seed may take to say where it listens, and to stop.
const SEED_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one connect may take (a full accept queue delays it by SYN retries).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `peer list` answer may take before the bench gives up.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections not yet accepted that a listener queues (`std`'s listen backlog, which the
/// seed's listener has): more in flight and the kernel drops SYNs, and each dropped one
/// costs its connect a 1 s retransmission. The registering connections keep at most this
/// many unanswered (an answered one was accepted).
const LISTEN_BACKLOG: usize = 128;
/// Longest registration answer read.
const ANSWER_BYTES_MAX: usize = 256;

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "gossipnet-seed-load-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The seed child process: killed (if still running) when dropped, then its folder removed.
struct SeedChild {
    child: Child,
    /// Its stdout lines, but the `Registered peer` ones, which are only counted.
    lines: Receiver<String>,
    registered: Arc<AtomicUsize>,
    stderr: Option<JoinHandle<String>>,
    scratch: Scratch,
}

impl Drop for SeedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SeedChild {
    /// Starts `gossipnet seed` on a port the OS chooses, in a scratch folder.
    fn start() -> Result<SeedChild, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let scratch = Scratch::new()?;
        let mut child = Command::new(&exe)
            .args(["seed", "--port", "0", "--seed", "1", "--admission", "trust"])
            // Every connection comes from 127.0.0.1.
            .args(["--connections-per-ip", "1000000"])
            .arg("--config")
            .arg(scratch.0.join("none.txt"))
            .arg("--out")
            .arg(scratch.0.join("run"))
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {} seed: {e}", exe.display()))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let registered = Arc::new(AtomicUsize::new(0));
        let (tx, lines) = mpsc::channel();
        if let Some(out) = stdout {
            let count = Arc::clone(&registered);
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    if l.contains("Registered peer ") {
                        count.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = tx.send(l);
                    }
                }
            });
        }
        let stderr = stderr.map(|mut err| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text
            })
        });
        Ok(SeedChild {
            child,
            lines,
            registered,
            stderr,
            scratch,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Why the seed is gone: its exit status and standard error (empty if still running).
    fn failure(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let err = self
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                format!("the seed exited ({status}): {}", err.trim())
            }
            _ => String::new(),
        }
    }

    /// The address from its `seed listening on IP:PORT` line.
    fn address(&mut self) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + SEED_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(" listening on ") => {
                    let addr = l.rsplit(' ').next().unwrap_or_default();
                    return addr
                        .parse()
                        .map_err(|_| format!("the seed listens on {addr:?}: not an address"));
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the seed did not say where it listens within {SEED_TIMEOUT:?}"
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Its stdout closed: it exited, or is about to.
                    std::thread::sleep(Duration::from_millis(100));
                    return Err(format!("the seed stopped at start: {}", self.failure()));
                }
            }
        }
    }

    /// Its `Registered peer` lines so far, once they reach `want` or after 5 s: each line
    /// comes a little after its answer.
    fn logged(&self, want: usize) -> usize {
        let wait = Instant::now() + Duration::from_secs(5);
        loop {
            let n = self.registered.load(Ordering::Relaxed);
            if n >= want || Instant::now() >= wait {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the seed as Ctrl-C does and reads its run folder's summary.json; `None` if it
    /// could not be stopped so, or wrote nothing.
    fn stop(&mut self) -> Option<serde_json::Value> {
        let sent = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            return None;
        }
        let deadline = Instant::now() + SEED_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => {
                    let text =
                        std::fs::read_to_string(self.scratch.0.join("run/summary.json")).ok()?;
                    return serde_json::from_str(&text).ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return None,
            }
        }
        None
    }
}

/// The soft and hard `Max open files` of a process, from `/proc/PID/limits`.
fn open_files_limits(pid: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let value = |f: Option<&str>| match f? {
        "unlimited" => Some(u64::MAX),
        v => v.parse().ok(),
    };
    Some((value(fields.next())?, value(fields.next())?))
}

/// A field of `/proc/PID/status` in bytes (`VmHWM:  1234 kB`).
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Local ports this host hands out to connections (`ip_local_port_range`).
fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (lo, hi) = (it.next()?.ok()?, it.next()?.ok()?);
    Some(hi.saturating_sub(lo) + 1)
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

/// How many registered connections fit, and why.
struct Fit {
    /// The descriptor limit (soft after raising it to the hard one) of this process.
    limit: u64,
    /// The seed's hard limit.
    seed_limit: u64,
    /// Connections the seed's budget holds (its limit minus the reserve).
    seed_connections: u64,
    /// Sockets this process can open.
    client_sockets: u64,
    /// Local ports for the connections.
    ports: Option<u64>,
    /// Registered connections that fit: one connection of each bound is the query's.
    most: usize,
}

fn fit(seed_pid: u32, limit: u64) -> Fit {
    let seed_limit = open_files_limits(&seed_pid.to_string()).map_or(limit, |(_, hard)| hard);
    let seed_connections = seed_limit.saturating_sub(net_real::fds::RESERVE);
    let open = std::fs::read_dir("/proc/self/fd").map_or(CLIENT_RESERVE, |d| d.count() as u64);
    let client_sockets = limit.saturating_sub(open + CLIENT_RESERVE);
    let ports = ephemeral_ports();
    let most = seed_connections
        .min(client_sockets)
        .min(ports.unwrap_or(u64::MAX))
        .saturating_sub(1);
    Fit {
        limit,
        seed_limit,
        seed_connections,
        client_sockets,
        ports,
        most: usize::try_from(most).unwrap_or(usize::MAX),
    }
}

/// What the registering connections were answered.
#[derive(Default)]
struct Tally {
    registered: usize,
    busy: usize,
    other: usize,
    closed: usize,
    silent: usize,
    not_opened: usize,
    first_problem: Option<String>,
    /// Time spent in `connect`, summed over the threads.
    connecting: Duration,
}

impl Tally {
    fn problem(&mut self, what: String) {
        self.first_problem.get_or_insert(what);
    }

    fn add(&mut self, o: Tally) {
        self.registered += o.registered;
        self.busy += o.busy;
        self.other += o.other;
        self.closed += o.closed;
        self.silent += o.silent;
        self.not_opened += o.not_opened;
        self.connecting += o.connecting;
        if let Some(p) = o.first_problem {
            self.problem(p);
        }
    }
}

/// One thread's share: opens `n` connections, each writing its `register` at once, and reads
/// the answers in order, at most `window` unanswered at a time (see [`LISTEN_BACKLOG`]). The
/// connections answered `registered successfully` are kept open in the result.
fn register_share(
    addr: SocketAddr,
    n: usize,
    window: usize,
    deadline: Instant,
) -> (Vec<TcpStream>, Tally) {
    let mut t = Tally::default();
    let mut held = Vec::with_capacity(n);
    let mut pending = VecDeque::with_capacity(window);
    for i in 0..n {
        if pending.len() >= window.max(1)
            && let Some(s) = pending.pop_front()
        {
            answer(s, deadline, &mut held, &mut t);
        }
        let connecting = Instant::now();
        let r = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT);
        t.connecting += connecting.elapsed();
        let s = match r {
            Ok(s) => s,
            Err(e) => {
                t.not_opened += n - i;
                t.problem(format!("connect: {e}"));
                break;
            }
        };
        let port = match s.local_addr() {
            Ok(a) => a.port(),
            Err(e) => {
                t.not_opened += 1;
                t.problem(format!("local address: {e}"));
                continue;
            }
        };
        match (&s).write_all(format!("register:127.0.0.1:{port}\n").as_bytes()) {
            Ok(()) => pending.push_back(s),
            Err(e) => {
                t.closed += 1;
                t.problem(format!("write: {e}"));
            }
        }
    }
    for s in pending {
        answer(s, deadline, &mut held, &mut t);
    }
    (held, t)
}

/// Reads a registering connection's answer: counts it, and keeps the connection if it
/// registered.
fn answer(s: TcpStream, deadline: Instant, held: &mut Vec<TcpStream>, t: &mut Tally) {
    match read_answer(&s, deadline) {
        Ok(line) if line == "registered successfully" => {
            t.registered += 1;
            held.push(s);
        }
        Ok(line) if line.starts_with("Connection refused") => {
            t.busy += 1;
            t.problem(format!("answered {line:?}"));
        }
        Ok(line) => {
            t.other += 1;
            t.problem(format!("answered {line:?}"));
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            t.closed += 1;
            t.problem("closed without an answer".into());
        }
        Err(e) => {
            t.silent += 1;
            t.problem(format!("no answer: {e}"));
        }
    }
}

/// One answer line (without its newline), read by `deadline`.
fn read_answer(mut s: &TcpStream, deadline: Instant) -> std::io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.iter().position(|&b| b == b'\n') {
            return Ok(String::from_utf8_lossy(&got[..end]).trim_end().to_owned());
        }
        if got.len() > ANSWER_BYTES_MAX {
            return Ok(String::from_utf8_lossy(&got).into_owned());
        }
    }
}

/// The registering connections.
struct Registration {
    tally: Tally,
    /// From the first connect to the last answer.
    took: Duration,
    threads: usize,
}

impl Registration {
    /// The time a thread spent in `connect`, on average.
    fn connecting(&self) -> Duration {
        self.tally.connecting / u32::try_from(self.threads.max(1)).unwrap_or(u32::MAX)
    }
}

/// `n` registering connections over a few threads: those registered, held open, and what
/// was answered.
fn register_all(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, Registration) {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = (2 * cores).clamp(1, THREADS_MAX).min(n.max(1));
    let window = LISTEN_BACKLOG / threads;
    // Generous: a registration takes tens of µs.
    let deadline = Instant::now() + Duration::from_secs(30) + Duration::from_millis(n as u64);
    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let share = n / threads + usize::from(i < n % threads);
                scope.spawn(move || register_share(addr, share, window, deadline))
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let took = started.elapsed();
    let mut held = Vec::with_capacity(n);
    let mut tally = Tally::default();
    for r in results {
        match r {
            Ok((h, t)) => {
                held.extend(h);
                tally.add(t);
            }
            Err(_) => tally.problem("a registering thread panicked".into()),
        }
    }
    let reg = Registration {
        tally,
        took,
        threads,
    };
    (held, reg)
}

/// The timed `peer list` round trips.
struct Queries {
    /// Round-trip times in ms, sorted.
    ms: Vec<f64>,
    /// Entries and bytes of the last reply.
    entries: usize,
    bytes: usize,
}

impl Queries {
    /// The nearest-rank percentile.
    fn pct(&self, p: f64) -> f64 {
        let rank = ((p / 100.0) * self.ms.len() as f64).ceil() as usize;
        self.ms[rank.clamp(1, self.ms.len()) - 1]
    }

    fn max(&self) -> f64 {
        self.ms.last().copied().unwrap_or(0.0)
    }
}

/// One more connection: registers, then times `count` `peer list` round trips.
fn query(addr: SocketAddr, count: usize) -> Result<Queries, String> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("the query connection: {e}"))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(QUERY_TIMEOUT))
        .map_err(|e| format!("the query connection: {e}"))?;
    let port = s
        .local_addr()
        .map_err(|e| format!("the query connection: {e}"))?
        .port();
    let mut reader = BufReader::new(
        s.try_clone()
            .map_err(|e| format!("the query connection: {e}"))?,
    );
    let mut line = Vec::new();
    let mut round_trip = |req: &str, line: &mut Vec<u8>| -> Result<Duration, String> {
        line.clear();
        let t0 = Instant::now();
        (&s).write_all(req.as_bytes())
            .map_err(|e| format!("the query connection: write: {e}"))?;
        let n = reader
            .read_until(b'\n', line)
            .map_err(|e| format!("the query connection: no answer to {req:?}: {e}"))?;
        let took = t0.elapsed();
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(format!(
                "the seed closed the query connection after {req:?}"
            ));
        }
        line.pop();
        Ok(took)
    };
    round_trip(&format!("register:127.0.0.1:{port}\n"), &mut line)?;
    if line != b"registered successfully" {
        return Err(format!(
            "the seed answered the query connection's register with {:?}",
            String::from_utf8_lossy(&line)
        ));
    }
    let mut ms = Vec::with_capacity(count);
    for _ in 0..count {
        let took = round_trip("peer list\n", &mut line)?;
        if !line.starts_with(b"peer list:") {
            let head = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
            return Err(format!("the seed answered `peer list` with {head:?}"));
        }
        ms.push(took.as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let entries = line["peer list:".len()..]
        .split(|&b| b == b':')
        .filter(|e| !e.is_empty())
        .count();
    Ok(Queries {
        ms,
        entries,
        bytes: line.len() + 1,
    })
}

/// What the seed said of itself.
struct SeedFigures {
    /// Its `Registered peer` lines, the query connection's excluded.
    logged: usize,
    /// Its peak RSS (VmHWM), bytes.
    hwm: Option<u64>,
    /// Its run folder's summary.json, once stopped.
    summary: Option<serde_json::Value>,
}

impl SeedFigures {
    fn field(&self, key: &str) -> Option<&serde_json::Value> {
        self.summary.as_ref().and_then(|s| s.get(key))
    }
}

/// `gossipnet bench --seed-load [N]`: `None` for the most that fit.
pub fn run(asked: Option<usize>) -> Result<(), String> {
    if asked == Some(0) {
        return Err(
            "--seed-load 0: give at least 1 connection (or no number: the most that fit)".into(),
        );
    }
    // This process's soft limit up to its hard one, as the seed does for itself.
    let limit = net_real::fds::FdBudget::from_process().limit;
    let mut seed = SeedChild::start()?;
    let addr = seed.address()?;
    let fit = fit(seed.pid(), limit);
    let n = asked.unwrap_or(fit.most).min(fit.most);
    print_header(addr, n, asked, &fit);
    if n == 0 {
        return Err("no registered connection fits under the descriptor limits".into());
    }
    let (held, reg) = register_all(addr, n);
    let failure = seed.failure();
    if !failure.is_empty() {
        return Err(failure);
    }
    // Each `Registered peer` line comes a little after its answer.
    seed.logged(reg.tally.registered);
    let q = query(addr, QUERIES).map_err(|e| match seed.failure() {
        f if f.is_empty() => e,
        f => format!("{e}; {f}"),
    })?;
    let hwm = status_bytes(seed.pid(), "VmHWM");
    let logged = seed.logged(reg.tally.registered + 1).saturating_sub(1);
    // Stopped while the connections are held, so that it stops with all of them.
    let summary = seed.stop();
    drop(held);
    let figures = SeedFigures {
        logged,
        hwm,
        summary,
    };
    print_results(n, &reg, &q, &figures, &fit);
    Ok(())
}

fn print_header(addr: SocketAddr, n: usize, asked: Option<usize>, fit: &Fit) {
    println!(
        "gossipnet bench --seed-load: a `gossipnet seed` child process (admission trust) at \
         {addr}, {n} connections from this process each registering its own 127.0.0.1 \
         address, then {QUERIES} `peer list` round trips on one more; {}",
        machine()
    );
    let ports = fit
        .ports
        .map_or(String::new(), |p| format!(", {p} local ports"));
    println!(
        "descriptors: limit {} here (the soft limit raised to the hard one), {} for the seed: \
         it holds {} connections (its limit - {} reserve), this process {} sockets{ports}; one \
         connection is the query's, so {} registered connections fit",
        fit.limit,
        fit.seed_limit,
        fit.seed_connections,
        net_real::fds::RESERVE,
        fit.client_sockets,
        fit.most
    );
    if let Some(a) = asked.filter(|&a| a > fit.most) {
        println!("WARNING: {a} registered connections do not fit under these limits: running {n}");
    }
}

fn print_results(n: usize, reg: &Registration, q: &Queries, seed: &SeedFigures, fit: &Fit) {
    let t = &reg.tally;
    let took = reg.took.as_secs_f64();
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "\n{:>11} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>8} {:>12}",
        "registered",
        "register s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "entries",
        "reply KiB",
        "seed MiB",
        "B/conn",
        "max <= 50 ms"
    );
    let within = q.max() <= TARGET_MS;
    println!(
        "{:>11} {:>10.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>9.1} {:>10} {:>8} {:>12}\n",
        t.registered,
        took,
        q.pct(50.0),
        q.pct(99.0),
        q.max(),
        q.entries,
        q.bytes as f64 / 1024.0,
        seed.hwm.map_or("-".into(), |b| format!("{:.1}", mib(b))),
        seed.hwm
            .map_or("-".into(), |b| (b / (t.registered as u64 + 1)).to_string()),
        if within { "yes" } else { "NO" }
    );
    let connecting = reg.connecting().as_secs_f64();
    let mut answered = format!(
        "{} of {n} answered `registered successfully` in {took:.2} s ({:.0}/s); the {} threads \
         of this process spent on average {connecting:.2} s of it in connect()",
        t.registered,
        t.registered as f64 / took.max(1e-9),
        reg.threads
    );
    let half_the_ports = fit.ports.is_some_and(|p| n as u64 > p / 2);
    if half_the_ports && connecting > took / 2.0 {
        answered.push_str(
            " (Linux's search for a free local port slows once about half the local ports \
             are taken)",
        );
    }
    if t.registered < n {
        answered.push_str(&format!(
            "; {} refused busy, {} other answers, {} closed, {} unanswered, {} not opened \
             (first: {})",
            t.busy,
            t.other,
            t.closed,
            t.silent,
            t.not_opened,
            t.first_problem.as_deref().unwrap_or("-")
        ));
    }
    row("registrations", answered);
    let number = |k: &str| seed.field(k).map_or("unknown".into(), |v| v.to_string());
    row(
        "seed held",
        format!(
            "{} registrations besides the query's (its `Registered peer` lines), {} \
             connections at its peak, the query's included (summary.json)",
            seed.logged,
            number("connections_peak")
        ),
    );
    if seed
        .field("connections_refused_busy")
        .and_then(|v| v.as_u64())
        > Some(0)
    {
        row("seed refused busy", number("connections_refused_busy"));
    }
    row(
        "peer list latency",
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} round trips on one connection \
             (replies of {} entries, {} bytes)",
            q.pct(50.0),
            q.pct(99.0),
            q.max(),
            q.ms.len(),
            q.entries,
            q.bytes
        ),
    );
    let cpu = seed
        .field("cpu_time_s")
        .and_then(|v| v.as_f64())
        .map_or("unknown".into(), |c| format!("{c:.2} s"));
    row(
        "seed",
        format!(
            "peak RSS {} (VmHWM), CPU {cpu} over its whole run",
            seed.hwm
                .map_or("unknown".into(), |b| format!("{:.1} MiB", mib(b)))
        ),
    );
    let mut verdict = format!(
        "{} `peer list` answered within {TARGET_MS:.0} ms with {} registered connections \
         held: {}",
        if within { "every" } else { "NOT every" },
        t.registered,
        if within { "met" } else { "missed" }
    );
    if t.registered < ISSUE_CONNECTIONS {
        verdict.push_str(&format!(
            " at {} connections, not the issue's {ISSUE_CONNECTIONS}",
            t.registered
        ));
        if fit.most < ISSUE_CONNECTIONS {
            verdict.push_str(&format!(
                ", which do not fit: {} at most under a descriptor limit of {}",
                fit.most,
                fit.limit.min(fit.seed_limit)
            ));
        }
    }
    row("issue 12", verdict);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let q = Queries {
            ms: (1..=200).map(f64::from).collect(),
            entries: 0,
            bytes: 0,
        };
        assert_eq!(q.pct(50.0), 100.0);
        assert_eq!(q.pct(99.0), 198.0);
        assert_eq!(q.max(), 200.0);
    }

    #[test]
    fn the_open_files_limits_of_this_process_are_read() {
        let (soft, hard) = open_files_limits("self").expect("Linux /proc");
        assert!(soft <= hard);
    }

    #[test]
    fn status_fields_are_bytes() {
        let hwm = status_bytes(std::process::id(), "VmHWM").expect("Linux /proc");
        assert!(hwm > 0 && hwm.is_multiple_of(1024));
        assert_eq!(status_bytes(std::process::id(), "NoSuchField"), None);
    }
}
