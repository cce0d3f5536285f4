//! Whole real runs for the command line: start the nodes of this process, print what they
//! do, stop on a signal or after a duration, and write the same run folder as the simulator.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration as StdDuration, Instant};

use serde_json::json;
use sim_core::addr::NodeAddr;
use sim_core::node::Event;
use sim_core::peer::PeerConfig;
use sim_core::report::{Outcome, write_folder};
use sim_core::seed::SeedConfig;
use sim_core::sim::{Fault, Latency, WorldEvent, peer_rng, seed_rng};
use sim_core::time::Time;

use crate::runtime::{Console, Happening, Listen, NodeHandle, Runtime, RuntimeOptions};

/// How much a run prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing but the final summary.
    Quiet,
    /// Starts, registrations, deaths, removals, errors, and a status line every few seconds:
    /// what a person watching a swarm wants.
    Overview,
    /// Every event but dropped duplicates: what a person watching one node wants.
    Events,
}

/// Settings of a real run.
pub struct AppOptions {
    /// Run seed: node `i` uses the simulator's RNG for node `i` of this seed.
    pub run_seed: u64,
    /// PBKDF2 iterations of the dedup digest.
    pub hash_iterations: u32,
    /// Each peer hashes every copy it receives itself (see [`RuntimeOptions::hash_per_peer`]).
    pub hash_per_peer: bool,
    /// Where the run folder goes.
    pub out: PathBuf,
    /// The command line, for `summary.json`.
    pub command: String,
    /// Stop after this long (else on `stop`).
    pub duration: Option<StdDuration>,
    /// Stop when a message arrives (Ctrl-C) or the sender is dropped.
    pub stop: Receiver<()>,
    /// What to print.
    pub verbosity: Verbosity,
    /// Time between two peers' starts in a swarm.
    pub join_interval: StdDuration,
    /// Lines typed on standard input become gossip messages of the first peer.
    pub gossip_from_stdin: bool,
    /// Event-loop threads; 0: one per core.
    pub loops: usize,
    /// One-way latency added to every frame (see [`RuntimeOptions::latency`]).
    pub latency: Option<Latency>,
    /// Keep the run folder current as the run goes (a flight recorder): `summary.json`
    /// without the outcome (`"complete": false`) at the start, the journal and the log
    /// flushed after every loop turn that recorded something. A process killed outright
    /// then leaves a folder `gossipnet merge` reads up to its last turn.
    pub flight_recorder: bool,
    /// Where the run's peers of other processes listen, for a partition's groups: peer `i`
    /// of the run at `(IP, OFFSET + i)` (a swarm in several processes with a base port:
    /// peer i at base + i). `None`: only this process's peers are known, and a partition
    /// cuts only the links between them.
    pub peer_layout: Option<(std::net::Ipv4Addr, i64)>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run's figures.
    pub outcome: Outcome,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds the process used (Linux), when known.
    pub cpu_s: Option<f64>,
    /// Distinct digests computed.
    pub digests: u64,
    /// The run folder.
    pub out: PathBuf,
    /// Per seed of this process: peers it registered, and dead peers it removed.
    pub seeds: Vec<(NodeAddr, usize, usize)>,
    /// The descriptor budget and what it refused.
    pub descriptors: crate::fds::FdFigures,
    /// What the event loops did.
    pub driver: crate::stats::DriverFigures,
}

/// The seeds at `listens`, until stopped; seed `j` draws from the RNG of seed
/// `first_index + j` of the run, as in `gossipnet sim`.
pub fn run_seeds(
    listens: &[Listen],
    first_index: usize,
    cfg: &SeedConfig,
    opts: AppOptions,
) -> Result<RunSummary, String> {
    run_seeds_with_faults(listens, first_index, cfg, opts, &[])
}

/// As [`run_seeds`], with the seed crashes of a fault timeline injected as they fall due
/// on the process's clock (seed `i` is `listens[i]`): the seed stops at once, as
/// [`NodeHandle::kill`] does, and the crash is recorded. Other faults are the peers'
/// processes' to inject: named once at the start.
pub fn run_seeds_with_faults(
    listens: &[Listen],
    first_index: usize,
    cfg: &SeedConfig,
    opts: AppOptions,
    faults: &[Fault],
) -> Result<RunSummary, String> {
    let rt = runtime(&opts, listens.len() > 1);
    let mut nodes = Vec::new();
    for (j, l) in listens.iter().enumerate() {
        let h = rt
            .spawn_seed(*l, cfg.clone(), seed_rng(opts.run_seed, first_index + j))
            .map_err(|e| e.to_string())?;
        say(&opts, format!("seed listening on {}", h.addr()));
        nodes.push(h);
    }
    // Seed j of this process draws from the RNG of seed first_index + j: `seed_addrs` says
    // which is which, and the policies are what a replay's twin needs (`gossipnet replay`).
    let params = json!({
        "seeds": listens.len(),
        "first_index": first_index,
        "seed_addrs": nodes.iter().map(|h| h.addr().to_string()).collect::<Vec<_>>(),
        "peer_list_max": cfg.peer_list_max,
        "bad_frames_max": cfg.bad_frames_max,
        "handshake_timeout_s": cfg.handshake_timeout.secs_f64(),
        "latency": latency_param(opts.latency),
        "idle_timeout_s": cfg.idle_timeout.secs_f64(),
        "probe_timeout_s": cfg.probe_timeout.secs_f64(),
        "removal": cfg.removal.to_string(),
        "admission": cfg.admission.to_string(),
        "trust_advertised_ip": cfg.trust_advertised_ip,
        "wire": cfg.wire.to_string(),
    });
    let mut plan = FaultPlan {
        due: Vec::new(),
        heals: Vec::new(),
        listens: Vec::new(),
        first_index: 0,
        layout: None,
        seeds: Vec::new(),
        cfg: PeerConfig::default(),
    };
    for f in faults {
        match f {
            Fault::SeedCrash { seed, .. } if *seed < nodes.len() => plan.due.push(f.clone()),
            other => say(
                &opts,
                format!("not injected: {other} (the process that runs the peer injects it)"),
            ),
        }
    }
    plan.schedule();
    finish(rt, nodes, opts, params, Some(plan))
}

/// Peers at `listens` (peer `i` uses RNG index `first_index + i`), started one every
/// `join_interval`, until stopped.
pub fn run_peers(
    listens: &[Listen],
    first_index: usize,
    seeds: &[NodeAddr],
    cfg: &PeerConfig,
    opts: AppOptions,
) -> Result<RunSummary, String> {
    run_peers_with_faults(listens, first_index, seeds, cfg, opts, &[])
}

/// As [`run_peers`], with a fault timeline injected as it falls due, on the process's clock
/// (peer indices are the swarm's): a crash stops the peer at once as [`NodeHandle::kill`]
/// does, a silent failure as [`NodeHandle::silence`], a restart starts a fresh peer on the
/// same address, and a partition holds every frame between its two groups and fails the
/// dials between them until it heals ([`Runtime::partition`]), and a reset closes every
/// connection of the peer while it runs on. Each is recorded when it happens. A swarm runs
/// no seed: a seed crash is named once at the start and not injected.
pub fn run_peers_with_faults(
    listens: &[Listen],
    first_index: usize,
    seeds: &[NodeAddr],
    cfg: &PeerConfig,
    opts: AppOptions,
    faults: &[Fault],
) -> Result<RunSummary, String> {
    let rt = runtime(&opts, listens.len() > 1);
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for (i, l) in listens.iter().enumerate() {
        if i > 0 && stop_requested(&opts.stop, opts.join_interval) {
            break;
        }
        let rng = peer_rng(opts.run_seed, first_index + i);
        let h = rt
            .spawn_peer(*l, seeds.to_vec(), cfg.clone(), rng)
            .map_err(|e| e.to_string())?;
        if listens.len() == 1 {
            say(&opts, format!("peer listening on {}", h.addr()));
        }
        nodes.push(h);
    }
    if listens.len() > 1 {
        say(
            &opts,
            format!("{} peers listening from {}", nodes.len(), nodes[0].addr()),
        );
    }
    if opts.gossip_from_stdin
        && let Some(first) = nodes.first()
    {
        let to = first.originator();
        say(&opts, "type a line and press Enter to gossip it".into());
        // Detached: a blocked read of standard input ends with the process.
        let _ = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    if !line.trim().is_empty() {
                        to(line);
                    }
                }
            });
    }
    let params = json!({
        "peers": listens.len(),
        "seeds": seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "gossip_interval_s": cfg.gossip_interval.secs_f64(),
        "gossip_count": cfg.gossip_count,
        "liveness_interval_s": cfg.liveness_interval.secs_f64(),
        "misses": cfg.misses_max,
        "hash_iterations": opts.hash_iterations,
        "hash_per_peer": opts.hash_per_peer,
        "topology": cfg.topology.to_string(),
        "bad_frames_max": cfg.bad_frames_max,
        "join_interval_s": opts.join_interval.as_secs_f64(),
        "latency": latency_param(opts.latency),
        "handshake_timeout_s": cfg.handshake_timeout.secs_f64(),
        "seed_retry_s": cfg.seed_retry.secs_f64(),
        "seen_ttl_s": cfg.seen_ttl.secs_f64(),
        "wire": cfg.wire.to_string(),
        // Peer k of `peer_addrs` draws from the RNG of peer first_index + k (a replay's
        // twin draws the same).
        "first_index": first_index,
        "peer_addrs": nodes.iter().map(|h| h.addr().to_string()).collect::<Vec<_>>(),
    });
    // A restarted peer listens where it listened (on the port the OS gave it, if it chose).
    let restarts = nodes
        .iter()
        .zip(listens)
        .map(|(h, l)| Listen {
            bind: std::net::SocketAddrV4::new(*l.bind.ip(), h.addr().port),
            advertise: l.advertise,
        })
        .collect();
    let mut plan = FaultPlan {
        due: Vec::new(),
        heals: Vec::new(),
        listens: restarts,
        first_index,
        layout: opts.peer_layout,
        seeds: seeds.to_vec(),
        cfg: cfg.clone(),
    };
    for f in faults {
        match f {
            Fault::Crash { .. }
            | Fault::SilentFail { .. }
            | Fault::Restart { .. }
            | Fault::Reset { .. }
            | Fault::Partition { .. } => {
                plan.due.push(f.clone());
            }
            other => say(
                &opts,
                format!("not injected: {other} (a swarm runs no seed; stop the seeds' process)"),
            ),
        }
    }
    plan.schedule();
    finish(rt, nodes, opts, params, Some(plan))
}

/// The faults a swarm still has to inject, latest first, and what a restart needs.
struct FaultPlan {
    due: Vec<Fault>,
    /// Partitions in force: when each heals, and its name.
    heals: Vec<(Time, String)>,
    /// Where peer i listens again when it restarts.
    listens: Vec<Listen>,
    first_index: usize,
    /// [`AppOptions::peer_layout`].
    layout: Option<(std::net::Ipv4Addr, i64)>,
    seeds: Vec<NodeAddr>,
    cfg: PeerConfig,
}

impl FaultPlan {
    /// Orders the faults latest first, those due at one instant so that they are popped in
    /// the timeline's order (the sort is stable, so the reversal keeps them reversed).
    fn schedule(&mut self) {
        self.due.reverse();
        self.due.sort_by_key(|f| std::cmp::Reverse(f.at()));
    }

    /// When the next fault falls due.
    fn next_at(&self) -> Option<Time> {
        let heal = self.heals.iter().map(|(t, _)| *t).min();
        match (self.due.last().map(Fault::at), heal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Injects the faults due by `now` into `nodes` (peer i is `nodes[i]`).
    fn inject(
        &mut self,
        rt: &Runtime,
        nodes: &mut [Option<NodeHandle>],
        now: Time,
        opts: &AppOptions,
    ) {
        let (healed, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heals)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.heals = held;
        for (_, what) in healed {
            rt.heal(&what);
        }
        while self.due.last().is_some_and(|f| f.at() <= now) {
            let Some(f) = self.due.pop() else { break };
            let what = f.to_string();
            match f {
                Fault::Partition { a, b, end, .. } => {
                    // The groups are the run's peer indices: this process's own peers
                    // where they listen, the others' by the layout when it is known.
                    let addr = |i: usize| {
                        let own = i.checked_sub(self.first_index).and_then(|k| {
                            self.listens
                                .get(k)
                                .map(|l| NodeAddr::new(*l.bind.ip(), l.bind.port()))
                        });
                        own.or_else(|| {
                            let (ip, offset) = self.layout?;
                            let port = u16::try_from(offset + i as i64).ok()?;
                            (port != 0).then(|| NodeAddr::new(ip, port))
                        })
                    };
                    let side = |r: std::ops::Range<usize>| r.filter_map(addr).collect::<Vec<_>>();
                    rt.partition(side(a), side(b), &what);
                    self.heals.push((end, what));
                }
                Fault::Crash { peer, .. } => {
                    if let Some(h) = nodes.get_mut(peer).and_then(Option::take) {
                        h.kill();
                    }
                }
                Fault::SilentFail { peer, .. } => {
                    if let Some(Some(h)) = nodes.get(peer) {
                        h.silence();
                    }
                }
                Fault::Restart { peer, .. } => {
                    let (Some(slot), Some(l)) = (nodes.get_mut(peer), self.listens.get(peer))
                    else {
                        continue;
                    };
                    if let Some(h) = slot.take() {
                        h.kill();
                    }
                    let rng = peer_rng(opts.run_seed, self.first_index + peer);
                    match rt.spawn_peer(*l, self.seeds.clone(), self.cfg.clone(), rng) {
                        Ok(h) => {
                            let node = h.addr();
                            rt.record_world(node, WorldEvent::Restarted { node });
                            *slot = Some(h);
                        }
                        Err(e) => say(opts, format!("peer {peer} cannot restart: {e}")),
                    }
                }
                Fault::Reset { peer, .. } => {
                    if let Some(Some(h)) = nodes.get(peer) {
                        h.reset();
                    }
                }
                // Planned only by a seeds process, whose nodes are its seeds.
                Fault::SeedCrash { seed, .. } => {
                    if let Some(h) = nodes.get_mut(seed).and_then(Option::take) {
                        h.kill();
                    }
                }
            }
        }
    }
}

fn runtime(opts: &AppOptions, many: bool) -> Runtime {
    let console = match opts.verbosity {
        Verbosity::Quiet => None,
        v => Some(console(v, many)),
    };
    Runtime::new(RuntimeOptions {
        hash_iterations: opts.hash_iterations,
        hash_per_peer: opts.hash_per_peer,
        console,
        loops: opts.loops,
        log_file: Some(opts.out.join("outputfile.log")),
        latency: opts.latency,
        ..RuntimeOptions::default()
    })
}

/// The latency of a run for `summary.json`'s parameters: as `gossipnet sim` writes it
/// (`20ms`, `10ms..50ms`; zero when none was added).
fn latency_param(latency: Option<Latency>) -> String {
    latency
        .unwrap_or(Latency::Fixed(sim_core::time::Duration(0)))
        .to_string()
}

fn say(opts: &AppOptions, text: String) {
    if opts.verbosity != Verbosity::Quiet {
        println!("{text}");
    }
}

/// Whether a stop came within `wait`.
fn stop_requested(stop: &Receiver<()>, wait: StdDuration) -> bool {
    !matches!(stop.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
}

/// Waits for the stop, printing status lines; stops every node; writes the run folder.
/// The run folder of a process that may be killed outright: `summary.json` with what is
/// known at the start (`"complete": false`; the end replaces it) and the journal streamed
/// to `events.jsonl` ([`Runtime::stream_journal`]). `outputfile.log` is written as the run
/// goes already.
fn start_flight_recorder(
    rt: &Runtime,
    opts: &AppOptions,
    params: &serde_json::Value,
) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", opts.out.display());
    std::fs::create_dir_all(&opts.out).map_err(cannot)?;
    let mut stub = run_identity(rt, opts, params);
    stub["complete"] = false.into();
    stub["started_at_unix_us"] = rt.clock().wall_offset_micros().into();
    let text = serde_json::to_string_pretty(&stub).map_err(|e| cannot(std::io::Error::other(e)))?;
    std::fs::write(opts.out.join("summary.json"), text + "\n").map_err(cannot)?;
    rt.stream_journal(&opts.out.join(sim_core::report::journal::JOURNAL_FILE))
        .map_err(cannot)
}

/// What `summary.json` says of the run from its start: a real run's, its seed, command,
/// parameters and clock epoch.
fn run_identity(rt: &Runtime, opts: &AppOptions, params: &serde_json::Value) -> serde_json::Value {
    json!({
        "driver": "real",
        "seed": opts.run_seed,
        "command": opts.command,
        "parameters": params,
        "started_at_unix_s": rt.clock().wall_offset_micros() as f64 / 1e6,
    })
}

fn finish(
    rt: Runtime,
    nodes: Vec<NodeHandle>,
    opts: AppOptions,
    params: serde_json::Value,
    mut faults: Option<FaultPlan>,
) -> Result<RunSummary, String> {
    let mut nodes: Vec<Option<NodeHandle>> = nodes.into_iter().map(Some).collect();
    if opts.flight_recorder {
        start_flight_recorder(&rt, &opts, &params)?;
    }
    let started = Instant::now();
    // The run's length counts from the process's clock epoch, as the fault timeline does:
    // a swarm's joins are part of it, as a simulated run's are.
    let deadline = opts.duration.map(|d| rt.clock().instant(Time::ZERO) + d);
    let status_every = StdDuration::from_secs(5);
    let mut next_status = started + status_every;
    loop {
        let now = Instant::now();
        let mut until = next_status;
        if let Some(d) = deadline {
            until = until.min(d);
        }
        if let Some(at) = faults.as_ref().and_then(FaultPlan::next_at) {
            until = until.min(rt.clock().instant(at));
        }
        if deadline.is_some_and(|d| now >= d)
            || stop_requested(&opts.stop, until.saturating_duration_since(now))
        {
            break;
        }
        if let Some(plan) = faults.as_mut() {
            plan.inject(&rt, &mut nodes, rt.clock().now(), &opts);
        }
        if Instant::now() >= next_status {
            next_status += status_every;
            if opts.verbosity == Verbosity::Overview {
                println!("{}", rt.with_recorder(status_line));
            }
        }
    }
    let nodes: Vec<NodeHandle> = nodes.into_iter().flatten().collect();
    say(&opts, format!("stopping {} nodes", nodes.len()));
    let stop_began_s = rt.clock().now().secs_f64();
    NodeHandle::shutdown_all(nodes);
    let wall_s = rt.clock().now().secs_f64();
    let cpu_s = process_cpu_seconds();
    let rec = rt.take_recorder();
    let memo = rt.memo_stats();
    let fds = rt.descriptors();
    let driver = rt.driver_figures(cpu_s);
    let mut extra = run_identity(&rt, &opts, &params);
    let figures = json!({
        "descriptor_limit": fds.limit,
        "connections_max": fds.connections_max,
        "connections_refused_busy": fds.refused,
        "connections_evicted": fds.evicted,
        "wall_time_s": wall_s,
        "stop_began_s": stop_began_s,
        "peak_rss_mib": peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        "cpu_time_s": cpu_s,
        "digests_computed": memo.computed,
        "driver_loops": driver.loops,
        "frames_sent": driver.frames_out,
        "frames_received": driver.frames_in,
        "bytes_sent": driver.bytes_out,
        "write_calls": driver.writes,
        "read_calls": driver.reads,
        "cpu_per_frame_us": driver.cpu_per_frame_us,
        "frames_per_s": driver.frames_out as f64 / wall_s.max(1e-9),
        "loop_lag_p50_ms": driver.lag_p50_ms,
        "loop_lag_p99_ms": driver.lag_p99_ms,
        "loop_lag_max_ms": driver.lag_max_ms,
        "connections_peak": driver.connections_peak,
        "write_queue_frames_peak": driver.queue_frames_peak,
        "overload_episodes": driver.overload_episodes,
        "overloaded_s": driver.overloaded_s,
        "liveness_rounds_deferred": driver.liveness_deferred,
    });
    if let (Some(e), serde_json::Value::Object(f)) = (extra.as_object_mut(), figures) {
        e.extend(f);
    }
    write_folder(&opts.out, &rec, extra)
        .map_err(|e| format!("cannot write {}: {e}", opts.out.display()))?;
    let seeds = rec
        .seeds
        .keys()
        .map(|s| {
            let registered = rec.registrations.get(s).map_or(0, |r| r.len());
            let removed = rec
                .removals
                .values()
                .filter(|by| by.iter().any(|(seed, _)| seed == s))
                .count();
            (*s, registered, removed)
        })
        .collect();
    Ok(RunSummary {
        seeds,
        descriptors: fds,
        driver,
        outcome: rec.outcome(),
        wall_s,
        cpu_s,
        digests: memo.computed,
        out: opts.out,
    })
}

fn status_line(rec: &sim_core::report::Recorder) -> String {
    let up = rec.peers.values().filter(|s| s.up).count();
    let removed: usize = rec.removals.values().map(Vec::len).sum();
    let mut line = format!(
        "[status] {} messages, {} deliveries, {} dead declarations, {} seed removals",
        rec.messages.len(),
        rec.deliveries.len(),
        rec.detections.len(),
        removed
    );
    if !rec.peers.is_empty() {
        line.push_str(&format!(", {up} peers up"));
    }
    if !rec.seeds.is_empty() {
        line.push_str(&format!(", {} seeds", rec.seeds.len()));
    }
    line
}

/// Prints happenings as `+SECONDS [NODE] TEXT` lines on standard output.
pub fn console(verbosity: Verbosity, show_node: bool) -> Console {
    let mut out = std::io::stdout();
    Box::new(move |at: Time, node: NodeAddr, h: &Happening<'_>| {
        let show = match h {
            Happening::Event(e) => shown(verbosity, e),
            Happening::World(_) | Happening::Note(_) => verbosity != Verbosity::Quiet,
        };
        if !show {
            return;
        }
        let text = match h {
            Happening::Event(e) => e.to_string(),
            Happening::World(WorldEvent::Down { .. }) => "stopped abruptly".into(),
            Happening::World(w) => w.to_string(),
            Happening::Note(n) => (*n).to_string(),
        };
        let who = if show_node {
            format!("{node} ")
        } else {
            String::new()
        };
        // Gossip bodies and addresses come from the network: escaped, they cannot clear,
        // move or retitle the user's terminal.
        let text = printable(&text);
        // A closed standard output (a pipe to `head`) must not stop the node.
        let _ = writeln!(out, "{:>9.3}s {who}{text}", at.secs_f64());
    })
}

/// `text` with every control character written as a Rust escape (`\u{1b}`, `\r`, `\t`), and
/// everything else as it is: what a line printed to a terminal may hold when part of it came
/// from the network.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn shown(v: Verbosity, e: &Event) -> bool {
    match v {
        Verbosity::Quiet => false,
        Verbosity::Events => !matches!(
            e,
            Event::DuplicateDropped { .. }
                | Event::DegreeRecorded { .. }
                | Event::DegreeAdvertised { .. }
        ),
        Verbosity::Overview => match e {
            Event::SeedStarted
            | Event::SeedUnreachable { .. }
            | Event::PeerDeclaredDead { .. }
            | Event::PeerRemovedBySeed { .. }
            | Event::DeadReportDismissed { .. }
            | Event::RegistrationRefused { .. }
            | Event::SeedRefusedRegistration { .. }
            | Event::MalformedFrame { .. }
            | Event::HandshakeTimedOut { .. }
            | Event::IdleTimedOut { .. }
            | Event::TooManyFromIp { .. }
            | Event::TooManyConnections { .. } => true,
            Event::PeerStarted { .. }
            | Event::SeedsChosen { .. }
            | Event::SeedLost { .. }
            | Event::Registered { .. }
            | Event::PeerListReceived { .. }
            | Event::NeighbourAdded { .. }
            | Event::NeighbourRemoved { .. }
            | Event::ConnectionRefused { .. }
            | Event::RefusedHello { .. }
            | Event::GossipOriginated { .. }
            | Event::GossipDelivered { .. }
            | Event::DuplicateDropped { .. }
            | Event::LivenessMissed { .. }
            | Event::DeadNodeReported { .. }
            | Event::DeadNodeNotice { .. }
            | Event::PeerRegistered { .. }
            | Event::PeerListServed { .. }
            | Event::DeadNodeAlreadyRemoved { .. }
            | Event::DeadReportChecking { .. }
            | Event::DeadReportIgnored { .. }
            | Event::DegreeRecorded { .. }
            | Event::DegreeAdvertised { .. }
            | Event::UnexpectedMessage { .. } => false,
        },
    }
}

/// The process's peak resident memory (`VmHWM` of `/proc/self/status`, Linux), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux, whose
/// `/proc` counts in units of 1/100 s).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(printable("\x1b[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(
            printable("a\rb\tc\u{7f}d\u{9b}e"),
            "a\\rb\\tc\\u{7f}d\\u{9b}e"
        );
        assert!(!printable("\x1b]0;title\x07").chars().any(char::is_control));
    }

    #[test]
    fn cpu_time_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            assert!(x != 1);
            let s = process_cpu_seconds().expect("Linux has /proc/self/stat");
            assert!(s >= 0.0);
        }
    }
}
