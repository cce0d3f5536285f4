//! `detection`: how long until a dead peer is reported, and how often is a live one?
//!
//! A network of 100 peers (the seed's capacity rule) where six peers fail between 60 s and
//! 110 s (three crash, their connections close; three fail silently, only liveness finds
//! them), under each liveness setting (interval × misses) and three conditions:
//!
//! - `calm`: 20 ms links;
//! - `jitter`: every message takes 20 ms to 3 s, drawn per message (TCP order kept), so a
//!   reply can come after the next round;
//! - `partition`: 20 ms links, and the peers split in two halves from 150 s to 195 s
//!   (traffic between them held until it heals).
//!
//! Per run: the latency from each failure to its first `Dead Node` report and to the first
//! removal by a seed, failures never reported, and false reports (live peers reported dead).

use std::collections::BTreeMap;

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::sim::{Fault, Latency, SimConfig};
use sim_core::time::{Duration, Time};

use super::exact::exact_struct;
use super::{ExperimentOptions, Files, Outcome, Sweep, finish, reproduce, seed_list};
use crate::plot::{Chart, Series, Style, bar_chart, xy_chart};
use crate::sweep::{Stats, md_table, num, simulate};

const PEERS: usize = 100;
const REPLICATES: usize = 5;
const INTERVALS_S: [u64; 3] = [5, 13, 30];
const MISSES: [u32; 3] = [1, 2, 3];
const FAILURES: usize = 6;
const DURATION: Duration = Duration::from_secs(400);
const PARTITION: (u64, u64) = (150, 195);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Condition {
    Calm,
    Jitter,
    Partition,
}

impl Condition {
    const ALL: [Condition; 3] = [Condition::Calm, Condition::Jitter, Condition::Partition];

    fn name(self) -> &'static str {
        match self {
            Condition::Calm => "calm",
            Condition::Jitter => "jitter",
            Condition::Partition => "partition",
        }
    }

    fn latency(self) -> Latency {
        match self {
            Condition::Jitter => {
                Latency::Uniform(Duration::from_millis(20), Duration::from_secs(3))
            }
            Condition::Calm | Condition::Partition => Latency::Fixed(Duration::from_millis(20)),
        }
    }
}

pub(super) struct Job {
    condition: Condition,
    interval_s: u64,
    misses: u32,
    peers: usize,
    seed: u64,
}

impl Job {
    fn setting(&self) -> String {
        format!("{}s × {}", self.interval_s, self.misses)
    }
}

/// The failures of a run: which peers, when, and how, drawn from the run seed alone, so that
/// every setting and condition of one seed fails the same peers at the same times.
fn failures(peers: usize, seed: u64) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xdead_0000);
    let picked = sample(&mut rng, peers, FAILURES.min(peers)).into_vec();
    picked
        .into_iter()
        .enumerate()
        .map(|(k, peer)| {
            let at = Time::ZERO
                + Duration::from_secs(60 + 10 * k as u64)
                + Duration::from_millis(rng.random_range(0..10_000));
            if k % 2 == 0 {
                Fault::Crash { peer, at }
            } else {
                Fault::SilentFail { peer, at }
            }
        })
        .collect()
}

fn config(base: &SimConfig, job: &Job) -> SimConfig {
    let mut faults = failures(job.peers, job.seed);
    if job.condition == Condition::Partition {
        let half = job.peers / 2;
        faults.push(Fault::Partition {
            a: 0..half,
            b: half..job.peers,
            start: Time::ZERO + Duration::from_secs(PARTITION.0),
            end: Time::ZERO + Duration::from_secs(PARTITION.1),
        });
    }
    SimConfig {
        seed: job.seed,
        peers: job.peers,
        duration: DURATION,
        latency: job.condition.latency(),
        faults,
        hash_iterations: 1,
        peer: PeerConfig {
            gossip_count: 0,
            liveness_interval: Duration::from_secs(job.interval_s),
            misses_max: job.misses,
            ..base.peer.clone()
        },
        ..base.clone()
    }
}

pub(super) struct RunResult {
    /// Per failed peer: (peer, silent, failed at, first report latency, first removal latency).
    failed: Vec<(NodeAddr, bool, f64, f64, f64)>,
    false_reports: usize,
    /// Distinct live peers reported dead.
    falsely_reported: usize,
    /// Distinct live peers removed by at least one seed.
    falsely_removed: usize,
}

exact_struct!(RunResult {
    failed,
    false_reports,
    falsely_reported,
    falsely_removed,
});

fn one(base: &SimConfig, job: &Job) -> Result<RunResult, String> {
    let cfg = config(base, job);
    let rec = simulate(&cfg)?;
    let mut failed = Vec::new();
    for f in &cfg.faults {
        let (peer, at, silent) = match *f {
            Fault::Crash { peer, at } => (peer, at, false),
            Fault::SilentFail { peer, at } => (peer, at, true),
            _ => continue,
        };
        let addr = cfg.peer_addr(peer);
        let first_report = rec
            .detections
            .iter()
            .filter(|d| d.dead == addr && !d.false_positive && d.reported_at >= at)
            .map(|d| d.reported_at)
            .min();
        let first_removal = rec
            .removals
            .get(&addr)
            .and_then(|r| r.iter().map(|(_, t)| *t).filter(|t| *t >= at).min());
        let secs = |t: Option<Time>| t.map_or(f64::NAN, |t| t.since(at).secs_f64());
        failed.push((
            addr,
            silent,
            at.secs_f64(),
            secs(first_report),
            secs(first_removal),
        ));
    }
    let live: Vec<&NodeAddr> = rec
        .detections
        .iter()
        .filter(|d| d.false_positive)
        .map(|d| &d.dead)
        .collect();
    let mut distinct: Vec<&NodeAddr> = live.clone();
    distinct.sort();
    distinct.dedup();
    // A live peer removed by a seed: a removal while the peer was running (it never failed,
    // or the removal came before its failure).
    let fail_at: BTreeMap<NodeAddr, Time> = cfg
        .faults
        .iter()
        .filter_map(|f| match *f {
            Fault::Crash { peer, at } | Fault::SilentFail { peer, at } => {
                Some((cfg.peer_addr(peer), at))
            }
            _ => None,
        })
        .collect();
    let falsely_removed = rec
        .removals
        .iter()
        .filter(|(p, r)| {
            let failed_at = fail_at.get(p).copied().unwrap_or(Time(u64::MAX));
            r.iter().any(|(_, t)| *t < failed_at)
        })
        .count();
    Ok(RunResult {
        failed,
        false_reports: live.len(),
        falsely_reported: distinct.len(),
        falsely_removed,
    })
}

/// The sweep: every condition and liveness setting with every seed, on one size.
pub(super) struct Plan {
    peers: usize,
    seeds: Vec<u64>,
    jobs: Vec<Job>,
    base: SimConfig,
}

impl Plan {
    pub(super) fn new(opts: &ExperimentOptions) -> Result<Plan, String> {
        let peers = opts
            .sizes
            .as_ref()
            .and_then(|s| s.first().copied())
            .unwrap_or(PEERS);
        if !(FAILURES * 2..=10_000).contains(&peers) {
            return Err(format!(
                "detection runs one size, from {} to 10000 peers, not {peers}",
                FAILURES * 2
            ));
        }
        let seeds = opts.seeds(REPLICATES);
        let mut jobs = Vec::new();
        for condition in Condition::ALL {
            for interval_s in INTERVALS_S {
                for misses in MISSES {
                    for &seed in &seeds {
                        jobs.push(Job {
                            condition,
                            interval_s,
                            misses,
                            peers,
                            seed,
                        });
                    }
                }
            }
        }
        Ok(Plan {
            peers,
            seeds,
            jobs,
            base: opts.base()?,
        })
    }
}

impl Sweep for Plan {
    type Job = Job;
    type Result = RunResult;

    fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    fn label(j: &Job) -> String {
        format!("{} {} seed={}", j.condition.name(), j.setting(), j.seed)
    }

    fn run(&self, job: &Job) -> Result<RunResult, String> {
        one(&self.base, job)
    }

    fn report(&self, opts: &ExperimentOptions, results: &[RunResult]) -> Result<Outcome, String> {
        report(self, opts, results)
    }
}

fn report(plan: &Plan, opts: &ExperimentOptions, results: &[RunResult]) -> Result<Outcome, String> {
    let Plan {
        peers, seeds, jobs, ..
    } = plan;
    let mut files = Files::new(&opts.out);
    let mut fail_rows = Vec::new();
    let mut run_rows = Vec::new();
    // (condition, interval, misses) -> runs
    let mut cells: BTreeMap<(Condition, u64, u32), Vec<&RunResult>> = BTreeMap::new();
    for (j, r) in jobs.iter().zip(results) {
        for (addr, silent, at, rep, rem) in &r.failed {
            fail_rows.push(vec![
                j.condition.name().into(),
                j.interval_s.to_string(),
                j.misses.to_string(),
                j.seed.to_string(),
                addr.to_string(),
                if *silent { "silent" } else { "crash" }.into(),
                num(*at, 6),
                num(*rep, 6),
                num(*rem, 6),
            ]);
        }
        let lat = Stats::of(r.failed.iter().map(|f| f.3));
        let missed = r.failed.iter().filter(|f| f.3.is_nan()).count();
        run_rows.push(vec![
            j.condition.name().into(),
            j.interval_s.to_string(),
            j.misses.to_string(),
            j.seed.to_string(),
            r.failed.len().to_string(),
            missed.to_string(),
            num(lat.median, 6),
            num(lat.max, 6),
            num(Stats::of(r.failed.iter().map(|f| f.4)).median, 6),
            r.false_reports.to_string(),
            r.falsely_reported.to_string(),
            r.falsely_removed.to_string(),
        ]);
        cells
            .entry((j.condition, j.interval_s, j.misses))
            .or_default()
            .push(r);
    }
    files.csv(
        "failures.csv",
        &[
            "condition",
            "interval_s",
            "misses",
            "seed",
            "peer",
            "kind",
            "failed_at_s",
            "first_report_after_s",
            "first_removal_after_s",
        ],
        &fail_rows,
    )?;
    files.csv(
        "runs.csv",
        &[
            "condition",
            "interval_s",
            "misses",
            "seed",
            "failures",
            "never_reported",
            "report_latency_median_s",
            "report_latency_max_s",
            "removal_latency_median_s",
            "false_reports",
            "live_peers_reported",
            "live_peers_removed",
        ],
        &run_rows,
    )?;

    let mut summary = Vec::new();
    let mut table = Vec::new();
    // (kind, x = misses × interval, mean, sd) for the calm condition's figure.
    let mut calm: Vec<(bool, f64, f64, f64)> = Vec::new();
    for (&(c, i, m), runs) in &cells {
        let lat_of = |silent: bool| {
            Stats::of(
                runs.iter()
                    .flat_map(|r| r.failed.iter().filter(move |f| f.1 == silent).map(|f| f.3)),
            )
        };
        let (crash, silent) = (lat_of(false), lat_of(true));
        let rem = Stats::of(runs.iter().flat_map(|r| r.failed.iter().map(|f| f.4)));
        let missed: usize = runs
            .iter()
            .map(|r| r.failed.iter().filter(|f| f.3.is_nan()).count())
            .sum();
        let fr = Stats::of(runs.iter().map(|r| r.false_reports as f64));
        let fp = Stats::of(runs.iter().map(|r| r.falsely_reported as f64));
        let fm = Stats::of(runs.iter().map(|r| r.falsely_removed as f64));
        let bound = i * u64::from(m);
        if c == Condition::Calm {
            calm.push((false, bound as f64, crash.mean, crash.sd));
            calm.push((true, bound as f64, silent.mean, silent.sd));
        }
        let mut row = vec![
            c.name().into(),
            i.to_string(),
            m.to_string(),
            runs.len().to_string(),
        ];
        for st in [&crash, &silent] {
            row.extend([
                num(st.mean, 4),
                num(st.sd, 4),
                num(st.min, 4),
                num(st.max, 4),
            ]);
        }
        row.extend([
            num(rem.median, 4),
            missed.to_string(),
            num(fr.mean, 3),
            num(fr.sd, 3),
            num(fp.mean, 3),
            num(fm.mean, 3),
        ]);
        summary.push(row);
        let range = |st: &Stats| format!("{} ({} – {})", st.pm(1), num(st.min, 1), num(st.max, 1));
        table.push(vec![
            c.name().into(),
            format!("{i} s × {m}"),
            bound.to_string(),
            range(&crash),
            range(&silent),
            num(rem.median, 1),
            missed.to_string(),
            fr.pm(1),
            fp.pm(1),
            fm.pm(1),
        ]);
    }
    files.csv(
        "summary.csv",
        &[
            "condition",
            "interval_s",
            "misses",
            "seeds",
            "crash_latency_mean_s",
            "crash_latency_sd_s",
            "crash_latency_min_s",
            "crash_latency_max_s",
            "silent_latency_mean_s",
            "silent_latency_sd_s",
            "silent_latency_min_s",
            "silent_latency_max_s",
            "removal_latency_median_s",
            "never_reported",
            "false_reports_mean",
            "false_reports_sd",
            "live_peers_reported_mean",
            "live_peers_removed_mean",
        ],
        &summary,
    )?;

    // Figure 1: latency against misses × interval on calm links, per failure kind, with the
    // crash bound y = x.
    calm.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut lat_series = Vec::new();
    for (silent, label) in [
        (false, "crash (connections close)"),
        (true, "silent failure"),
    ] {
        let pts: Vec<&(bool, f64, f64, f64)> = calm.iter().filter(|p| p.0 == silent).collect();
        lat_series.push(Series {
            label: label.into(),
            points: pts.iter().map(|p| (p.1, p.2)).collect(),
            y_err: Some(
                pts.iter()
                    .map(|p| if p.3.is_nan() { 0.0 } else { p.3 })
                    .collect(),
            ),
            style: Style::LinePoints,
            colour: None,
        });
    }
    let most = calm.iter().map(|p| p.1).fold(0.0, f64::max);
    lat_series.push(Series {
        label: "misses × interval".into(),
        points: vec![(0.0, 0.0), (most, most)],
        y_err: None,
        style: Style::Dashed,
        colour: None,
    });
    xy_chart(
        &files.figure("detection_latency"),
        &Chart {
            title: "Failure to first Dead Node report, calm links",
            x_label: "misses × liveness interval (s)",
            y_label: "report latency (s)",
            log_x: false,
            log_y: false,
        },
        &lat_series,
    )?;
    // Figure 2: false reports per run, per setting and condition.
    let settings: Vec<(u64, u32)> = INTERVALS_S
        .iter()
        .flat_map(|&i| MISSES.iter().map(move |&m| (i, m)))
        .collect();
    let cats: Vec<String> = settings.iter().map(|(i, m)| format!("{i}s×{m}")).collect();
    let bars: Vec<(String, Vec<f64>)> = Condition::ALL
        .iter()
        .map(|&c| {
            let vals = settings
                .iter()
                .map(|&(i, m)| {
                    cells.get(&(c, i, m)).map_or(f64::NAN, |runs| {
                        Stats::of(runs.iter().map(|r| r.false_reports as f64)).mean
                    })
                })
                .collect();
            (c.name().to_owned(), vals)
        })
        .collect();
    bar_chart(
        &files.figure("false_reports"),
        &Chart {
            title: "Reports of live peers per run (mean over seeds)",
            x_label: "liveness interval × misses",
            y_label: "false Dead Node reports",
            log_x: false,
            log_y: false,
        },
        &cats,
        &bars,
    )?;

    let head = [
        "condition",
        "setting",
        "misses × interval (s)",
        "crash → report (s)",
        "silent → report (s)",
        "removal (median s)",
        "never reported",
        "false reports / run",
        "live peers reported / run",
        "live peers removed / run",
    ];
    let report = format!(
        "# Experiment `detection`\n\n\
         How long until a dead peer is reported, and how often is a live one reported by \
         mistake, for each liveness setting?\n\n\
         ## Parameters\n\n\
         - {peers} peers (capacity rule), 3 seed nodes, peers join every 100 ms, no gossip\n\
         - failures: {fails} peers drawn by the run seed fail between 60 s and 120 s, \
         alternately a crash (connections close) and a silent failure (nothing answered); \
         the same peers and times for every setting of a seed\n\
         - settings: liveness interval {ints} s × misses {misses}\n\
         - conditions: `calm` (20 ms links), `jitter` (20 ms to 3 s per message, TCP order \
         kept), `partition` (20 ms links, the two halves of the peers cut off from each other \
         from {p0} s to {p1} s)\n- seeds: {seeds} ({n} per setting), {dur} per run\n\n\
         ## Results (mean ± sd over all failures or runs of a setting)\n\n{table}\n\
         Latencies are from the failure to the first report by any neighbour (each neighbour \
         runs its own rounds). A crash closes the connections, so the first round after it \
         already counts a miss: the report comes (misses − 1) × interval to misses × interval \
         after the crash. A silent failure leaves the connections open: the first round after \
         it sends a request, and only the round after counts it missed, one interval later: \
         misses × interval to (misses + 1) × interval. Fewer misses or shorter intervals \
         detect sooner, and report live peers whenever a reply can take longer than the \
         timeout: under jitter with 5 s rounds and one miss, and whenever misses × interval is \
         shorter than the partition.\n\n\
         ![latency](detection_latency.png)\n\n![false reports](false_reports.png)\n\n\
         ## Files\n\n\
         - `failures.csv`: one row per failure (kind, when, latency to the first report and \
         to the first seed removal).\n- `runs.csv`: one row per run (latencies, failures \
         never reported, false reports, live peers reported and removed).\n\
         - `summary.csv`: per condition and setting, over seeds.\n\n{repro}",
        fails = FAILURES,
        ints = INTERVALS_S.map(|i| i.to_string()).join(", "),
        misses = MISSES.map(|m| m.to_string()).join(", "),
        p0 = PARTITION.0,
        p1 = PARTITION.1,
        seeds = seed_list(seeds),
        n = seeds.len(),
        dur = DURATION,
        table = md_table(&head, &table),
        repro = reproduce(opts),
    );
    finish(files, &report, &table, |r| {
        format!(
            "  {:<9} {:<10} crash {:<12} silent {:<12} false reports {}/run",
            r[0],
            r[1],
            r[3].split(" (").next().unwrap_or(""),
            r[4].split(" (").next().unwrap_or(""),
            r[7]
        )
    })
}
