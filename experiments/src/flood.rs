//! The flooding workload of `../shared/perf/README.md`, measured side by side with its floor.
//!
//! The overlay is the simulator's own network after bootstrap: 3 seeds, N peers joining
//! evenly over 20 s under the capacity rule, peer lists of at most 64 entries, taken at
//! t = 30 s (or, while a peer is still isolated then, at the first liveness-round boundary
//! after it where none is: an isolated peer redials, and the floor's overlay is static). Then 100 gossip messages, each from a random peer at a random time in the first
//! 60 s of a 120 s window, flood it; every peer keeps its 13 s liveness rounds. Work is
//! messages delivered (gossip, liveness requests and replies); the rate is work per CPU
//! second of the window. The run writes the overlay and the schedule in the floor's format
//! (`edges-N.txt`, `sched-N.txt`) so that `flood-floor` does the same work on the same
//! files, and the deliveries and duplicates of both must be equal.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_core::addr::NodeAddr;
use sim_core::digest::DigestMemo;
use sim_core::node::Event;
use sim_core::sim::{Observer, SimConfig, World, layout};
use sim_core::time::{Duration, Time};

/// When the overlay is taken and the measured window starts, unless a peer is still isolated
/// then (see [`SETTLE_ROUNDS_MAX`]).
pub const WINDOW_START: Time = Time(30_000_000);
/// An isolated peer asks its seeds again and redials once a liveness round, so the overlay of
/// a large network can still change after [`WINDOW_START`], and the floor's is static: the
/// window then starts this many rounds later at most, at the first round boundary where no
/// peer is isolated.
pub const SETTLE_ROUNDS_MAX: u64 = 8;
/// Length of the measured window (the floor's `END`).
pub const WINDOW: Duration = Duration::from_secs(120);
/// Messages flooded in the window.
pub const MESSAGES: usize = 100;
/// Messages start in the first this of the window.
const ORIGINATE_WITHIN: Duration = Duration::from_secs(60);
/// Peers join evenly over this.
const JOIN_SPAN: Duration = Duration::from_secs(20);
/// The peers' liveness interval (the default).
const LIVENESS: Duration = Duration::from_secs(13);

/// The configuration of the workload for `peers` peers.
pub fn config(peers: usize, hash_iterations: u32) -> SimConfig {
    let mut cfg = SimConfig {
        seed: 42,
        seeds: 3,
        peers,
        duration: Duration(WINDOW_START.0 + SETTLE_ROUNDS_MAX * LIVENESS.0) + WINDOW,
        faults: Vec::new(),
        hash_iterations,
        join_interval: Duration(JOIN_SPAN.0 / peers.max(1) as u64),
        ..SimConfig::default()
    };
    cfg.peer.gossip_count = 0;
    cfg.seed_node.peer_list_max = 64;
    // Seeds list registrations at once: the workload measures the overlay's flooding, and
    // its figures stay comparable with those taken before seeds checked registrations.
    cfg.seed_node.admission = sim_core::seed::Admission::Trust;
    cfg
}

/// One measured run of the workload.
#[derive(Clone, Debug, Default)]
pub struct FloodRow {
    /// Peers.
    pub peers: usize,
    /// Overlay edges at the start of the window.
    pub edges: usize,
    /// Wall seconds of bootstrap (0 s to the window's start, virtual).
    pub bootstrap_s: f64,
    /// Virtual time the window starts at: 30 s, or a later round boundary where no peer
    /// is isolated.
    pub window_start: Time,
    /// Peers with no neighbour when the overlay is taken.
    pub isolated: usize,
    /// Neighbours added or removed during the window: the floor's overlay is static, so
    /// deliveries can equal the floor's only when this is 0.
    pub overlay_changes: u64,
    /// Wall seconds of the whole run in this process (bootstrap, files, window).
    pub total_s: f64,
    /// Queue entries the world acted on during bootstrap.
    pub bootstrap_events: u64,
    /// Messages delivered in the window (gossip, liveness requests and replies).
    pub sends: u64,
    /// CPU seconds of the window (every thread of the process).
    pub cpu_s: f64,
    /// Wall seconds of the window.
    pub wall_s: f64,
    /// First receipts of gossip in the window.
    pub deliveries: u64,
    /// Gossip receipts dropped as duplicates in the window.
    pub dups: u64,
    /// Peak resident memory of the process, bytes.
    pub peak_rss: u64,
    /// Trace digest of the whole run.
    pub trace_digest: String,
}

impl FloodRow {
    /// Sends per CPU second of the window.
    pub fn rate(&self) -> f64 {
        self.sends as f64 / self.cpu_s.max(0.01)
    }

    /// Peak RSS over peers.
    pub fn bytes_per_peer(&self) -> u64 {
        self.peak_rss / self.peers.max(1) as u64
    }

    /// The row as the floor prints it: `key=value` fields on one line.
    pub fn to_line(&self) -> String {
        format!(
            "impl=gossipnet n={} edges={} window_start_s={} bootstrap_s={:.3} bootstrap_events={} isolated={} overlay_changes={} total_s={:.1} wall_s={:.3} cpu_s={:.3} \
             sends_per_cpu_s={:.0} sends={} deliveries={} dups={} peak_rss_mib={:.1} \
             bytes_per_peer={} trace={}",
            self.peers,
            self.edges,
            self.window_start.0 / 1_000_000,
            self.bootstrap_s,
            self.bootstrap_events,
            self.isolated,
            self.overlay_changes,
            self.total_s,
            self.wall_s,
            self.cpu_s,
            self.rate(),
            self.sends,
            self.deliveries,
            self.dups,
            self.peak_rss as f64 / 1048576.0,
            self.bytes_per_peer(),
            self.trace_digest
        )
    }
}

#[derive(Default)]
struct Counter {
    deliveries: u64,
    dups: u64,
    overlay_changes: u64,
}

impl Observer for Counter {
    fn event(&mut self, _: Time, _: NodeAddr, e: &Event) {
        match e {
            Event::GossipDelivered { .. } => self.deliveries += 1,
            Event::DuplicateDropped { .. } => self.dups += 1,
            Event::NeighbourAdded { .. } | Event::NeighbourRemoved { .. } => {
                self.overlay_changes += 1;
            }
            _ => {}
        }
    }
}

/// The file names of the workload for `peers` in `dir`.
pub fn files(dir: &Path, peers: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("edges-{peers}.txt")),
        dir.join(format!("sched-{peers}.txt")),
    )
}

/// Runs the workload for `peers` peers, writing `edges-N.txt` and `sched-N.txt` into `dir`.
pub fn run(peers: usize, hash_iterations: u32, dir: &Path) -> Result<FloodRow, String> {
    let cfg = config(peers, hash_iterations);
    let memo = DigestMemo::new(hash_iterations);
    let started = Instant::now();
    let mut world = World::new(cfg, memo)?;
    let mut counter = Counter::default();
    let mut window_start = WINDOW_START;
    world.run_until(Time(window_start.0 - 1), &mut counter);
    let mut isolated = isolated_peers(&world, peers);
    for _ in 0..SETTLE_ROUNDS_MAX {
        if isolated == 0 {
            break;
        }
        window_start = window_start + LIVENESS;
        world.run_until(Time(window_start.0 - 1), &mut counter);
        isolated = isolated_peers(&world, peers);
    }
    let bootstrap_s = started.elapsed().as_secs_f64();
    let bootstrap_events = world.stats().events_processed;

    let edges = overlay(&world, peers, window_start)?;
    let schedule = schedule(peers);
    let (edges_path, sched_path) = files(dir, peers);
    write_edges(&edges_path, peers, &edges)?;
    write_schedule(&sched_path, &schedule)?;
    // Written: the window needs only the count (35 MB at a million peers).
    let edge_count = edges.len();
    drop(edges);
    for (k, &(at, origin)) in schedule.iter().enumerate() {
        world.originate_at(origin, window_start + Duration(at), format!("flood {k}"));
    }

    let before = world.stats().messages_delivered;
    let (counter, wall_s, cpu_s) = measure_window(&mut world, window_start);
    Ok(FloodRow {
        peers,
        edges: edge_count,
        window_start,
        bootstrap_s,
        bootstrap_events,
        isolated,
        overlay_changes: counter.overlay_changes,
        total_s: started.elapsed().as_secs_f64(),
        sends: world.stats().messages_delivered - before,
        cpu_s,
        wall_s,
        deliveries: counter.deliveries,
        dups: counter.dups,
        peak_rss: rss_bytes("VmHWM").unwrap_or(0),
        trace_digest: world.trace_digest(),
    })
}

/// Runs the measured window: the counts, its wall seconds and its CPU seconds. A function of
/// its own so that a profiler can be told to look at the window alone
/// (`valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measure_window*'`).
#[inline(never)]
fn measure_window(world: &mut World, start: Time) -> (Counter, f64, f64) {
    let mut counter = Counter::default();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    // The floor drops events at or after the window's end.
    world.run_until(Time(start.0 + WINDOW.0 - 1), &mut counter);
    (counter, t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0)
}

/// Peers with no neighbour.
fn isolated_peers(world: &World, peers: usize) -> usize {
    (0..peers)
        .filter(|&i| {
            world
                .peer(i)
                .is_some_and(|p| p.neighbours().next().is_none())
        })
        .count()
}

/// The links both ends hold, as peer indices `a < b`, in order.
fn overlay(world: &World, peers: usize, at: Time) -> Result<Vec<(u32, u32)>, String> {
    let mut edges = Vec::new();
    let mut one_sided = 0usize;
    for i in 0..peers {
        let Some(p) = world.peer(i) else { continue };
        for n in p.neighbours() {
            let Some(j) = layout::peer_index(n) else {
                continue;
            };
            let mutual = world
                .peer(j)
                .is_some_and(|q| q.neighbours().any(|m| m == p.addr()));
            if !mutual {
                one_sided += 1;
            } else if i < j {
                edges.push((i as u32, j as u32));
            }
        }
    }
    if one_sided > 0 {
        return Err(format!(
            "{one_sided} one-sided links at {at:?}: the overlay is not settled"
        ));
    }
    Ok(edges)
}

/// `MESSAGES` (time in the window in µs, origin) pairs, in time order.
pub fn schedule(peers: usize) -> Vec<(u64, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut s: Vec<(u64, usize)> = (0..MESSAGES)
        .map(|_| {
            let at = rng.random_range(0..ORIGINATE_WITHIN.0);
            (at, rng.random_range(0..peers.max(1)))
        })
        .collect();
    s.sort_unstable();
    s
}

fn write_edges(path: &Path, peers: usize, edges: &[(u32, u32)]) -> Result<(), String> {
    let mut text = String::with_capacity(edges.len() * 14 + 32);
    let _ = writeln!(text, "{peers} {}", edges.len());
    for (a, b) in edges {
        let _ = writeln!(text, "{a} {b}");
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_schedule(path: &Path, schedule: &[(u64, usize)]) -> Result<(), String> {
    let mut text = format!("{}\n", schedule.len());
    for (at, origin) in schedule {
        let _ = writeln!(text, "{at} {origin}");
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// CPU seconds of this process so far, every thread (user + system, Linux).
pub fn cpu_seconds() -> f64 {
    let Ok(s) = fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name may hold spaces; the fields after it do not.
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name's ")".
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// A line of `/proc/self/status` in bytes (Linux; `None` elsewhere).
pub fn rss_bytes(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
