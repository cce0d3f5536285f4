//! One simulated run, from configuration to output folder.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use sim_core::digest::DigestMemo;
use sim_core::report::{Outcome, Recorder, write_folder};
use sim_core::sim::{Observer, SimConfig, World};
use sim_core::time::{Duration, Time};

/// Where a run writes and what it reports along the way.
pub struct RunOptions {
    /// The output folder.
    pub out: PathBuf,
    /// Also write the full trace here, one event a line.
    pub trace: Option<PathBuf>,
    /// The command line that reproduces the run (stored in `summary.json`).
    pub command: String,
    /// Called with the fraction of virtual time done, about every virtual second.
    pub progress: Option<Box<dyn FnMut(f64)>>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The run's figures.
    pub outcome: Outcome,
    /// SHA-256 of the trace.
    pub trace_digest: String,
    /// Wall-clock seconds the simulation took.
    pub wall_s: f64,
    /// Queue entries processed.
    pub events: u64,
    /// Seconds spent computing digests.
    pub hashing_s: f64,
    /// Distinct digests computed.
    pub digests: u64,
    /// The output folder.
    pub out: PathBuf,
}

/// A monotonic microsecond stopwatch for the digest memo.
pub fn stopwatch() -> sim_core::digest::Stopwatch {
    let start = Instant::now();
    Box::new(move || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// The run's parameters as JSON, for `summary.json` and reports.
pub fn parameters(cfg: &SimConfig) -> serde_json::Value {
    json!({
        "seeds": cfg.seeds,
        "peers": cfg.peers,
        "duration_s": cfg.duration.secs_f64(),
        "latency": cfg.latency.to_string(),
        "faults": cfg.faults.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        "gossip_interval_s": cfg.peer.gossip_interval.secs_f64(),
        "gossip_count": cfg.peer.gossip_count,
        "liveness_interval_s": cfg.peer.liveness_interval.secs_f64(),
        "misses": cfg.peer.misses_max,
        "hash_iterations": cfg.hash_iterations,
        "processing": cfg.processing.to_string(),
        "join_interval_s": cfg.join_interval.secs_f64(),
        "topology": cfg.peer.topology.to_string(),
        "peer_list_max": cfg.seed_node.peer_list_max,
        "removal": cfg.seed_node.removal.to_string(),
        "admission": cfg.seed_node.admission.to_string(),
    })
}

/// Runs `cfg` and writes its folder.
pub fn run_to_folder(cfg: SimConfig, opts: RunOptions) -> Result<RunResult, String> {
    run_to_folder_with(cfg, opts, crate::pool::default_threads())
}

/// As [`run_to_folder`], with `hash_threads` threads computing digests ahead of need. The
/// run's outputs are the same for any number of them.
pub fn run_to_folder_with(
    cfg: SimConfig,
    opts: RunOptions,
    hash_threads: usize,
) -> Result<RunResult, String> {
    run_prepared_to_folder(cfg, opts, hash_threads, &mut |_| {}, &mut ()).map(|(result, _)| result)
}

/// As [`run_to_folder_with`], with `prepare` given the world before it runs (to schedule
/// what the configuration cannot say, such as originations at given times) and `also` told
/// every event the recorder is told. Returns the recorder as well.
pub fn run_prepared_to_folder(
    cfg: SimConfig,
    mut opts: RunOptions,
    hash_threads: usize,
    prepare: &mut dyn FnMut(&mut World),
    also: &mut dyn Observer,
) -> Result<(RunResult, Recorder), String> {
    let threads = hash_threads.max(1);
    let pool = crate::pool::Pool::new(threads);
    let memo = DigestMemo::with_pool(cfg.hash_iterations, Some(stopwatch()), pool.handle());
    let seed = cfg.seed;
    let mut world = World::new(cfg, memo)?;
    prepare(&mut world);
    if let Some(path) = &opts.trace {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        world.set_trace_output(Box::new(BufWriter::new(file)));
    }
    let mut rec = Recorder::new(0);
    let end = Time::ZERO + world.config().duration;
    let started = Instant::now();
    let step = Duration::from_secs(1);
    while world.now() < end {
        let next = (world.now() + step).min(end);
        world.run_until(
            next,
            &mut Tee {
                rec: &mut rec,
                also: &mut *also,
            },
        );
        if let Some(p) = opts.progress.as_mut() {
            p(next.0 as f64 / end.0.max(1) as f64);
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    drop(pool);
    let stats = world.stats();
    let memo = world.memo().stats();
    let trace_digest = world.trace_digest();
    let extra = json!({
        "seed": seed,
        "command": opts.command,
        "parameters": parameters(world.config()),
        "trace_digest": trace_digest,
        "trace_records": stats.node_events + stats.world_events,
        "wall_time_s": wall_s,
        "events_processed": stats.events_processed,
        "events_per_s": stats.events_processed as f64 / wall_s.max(1e-9),
        "messages_delivered": stats.messages_delivered,
        "hashing_time_s": memo.hashing_micros as f64 / 1e6,
        "digests_computed": memo.computed,
    });
    write_folder(&opts.out, &rec, extra)
        .map_err(|e| format!("cannot write {}: {e}", opts.out.display()))?;
    let result = RunResult {
        outcome: rec.outcome(),
        trace_digest,
        wall_s,
        events: stats.events_processed,
        hashing_s: memo.hashing_micros as f64 / 1e6,
        digests: memo.computed,
        out: opts.out.clone(),
    };
    Ok((result, rec))
}

/// Tells the recorder, then `also`.
struct Tee<'a> {
    rec: &'a mut Recorder,
    also: &'a mut dyn Observer,
}

impl Observer for Tee<'_> {
    fn event(&mut self, at: Time, node: sim_core::addr::NodeAddr, event: &sim_core::node::Event) {
        self.rec.event(at, node, event);
        self.also.event(at, node, event);
    }

    fn world(&mut self, at: Time, event: &sim_core::sim::WorldEvent) {
        self.rec.world(at, event);
        self.also.world(at, event);
    }
}

/// What timing the digest on this machine gave (`gossipnet sim --processing digest`).
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The time of one digest the run uses: the median, in whole µs (at least 1).
    pub per_copy: Duration,
    /// Digests timed (after a few untimed to warm up).
    pub digests: usize,
    /// Their iterations.
    pub iterations: u32,
    /// The fastest, µs.
    pub min_us: f64,
    /// The median, µs, before rounding.
    pub median_us: f64,
    /// The mean, µs.
    pub mean_us: f64,
    /// The slowest, µs.
    pub max_us: f64,
}

impl Calibration {
    /// For `summary.json`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "per_copy_us": self.per_copy.0,
            "digests": self.digests,
            "iterations": self.iterations,
            "min_us": self.min_us,
            "median_us": self.median_us,
            "mean_us": self.mean_us,
            "max_us": self.max_us,
        })
    }
}

/// Times digests of `iterations` iterations on this thread, one by one, as a peer hashes a
/// copy of a message (on `wire`: the PBKDF2 digest of a gossip identity, or the reference's
/// iterated SHA-512 of a padded body): as many as fit in about `budget`, from 10 to 2 000.
/// The median stands for one copy: it is what `--processing digest` makes each peer spend,
/// and the run records it, so that `--processing digest:DURATION` repeats the run without
/// timing anything.
pub fn calibrate_digest(
    iterations: u32,
    wire: sim_core::wire::Wire,
    budget: std::time::Duration,
) -> Calibration {
    use sim_core::digest::{digest, reference_digest};
    const WARM_UP: usize = 3;
    const DIGESTS_MIN: usize = 10;
    const DIGESTS_MAX: usize = 2000;
    let hash = |k: usize| {
        let identity = format!("1764547200.{k:06}:127.0.0.1:5000:#{}", k % 10 + 1);
        match wire {
            sim_core::wire::Wire::Line => digest(&identity, iterations),
            sim_core::wire::Wire::Reference => {
                let body = format!("{identity:<1024}");
                reference_digest(body.as_bytes(), iterations)
            }
        }
    };
    let t0 = Instant::now();
    for k in 0..WARM_UP {
        std::hint::black_box(hash(k));
    }
    let each = t0.elapsed().as_secs_f64() / WARM_UP as f64;
    let digests =
        ((budget.as_secs_f64() / each.max(1e-9)) as usize).clamp(DIGESTS_MIN, DIGESTS_MAX);
    let mut us: Vec<f64> = (0..digests)
        .map(|k| {
            let t0 = Instant::now();
            std::hint::black_box(hash(WARM_UP + k));
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    let median_us = if digests % 2 == 1 {
        us[digests / 2]
    } else {
        (us[digests / 2 - 1] + us[digests / 2]) / 2.0
    };
    Calibration {
        per_copy: Duration((median_us.round() as u64).max(1)),
        digests,
        iterations,
        min_us: us[0],
        median_us,
        mean_us: us.iter().sum::<f64>() / digests as f64,
        max_us: us[digests - 1],
    }
}

/// The default output folder of a run with `seed`.
pub fn default_out(seed: u64) -> PathBuf {
    Path::new("results").join(format!("seed-{seed}"))
}
