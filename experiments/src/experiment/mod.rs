//! `gossipnet experiment NAME`: sweeps that answer one question each, reproducible by seed.
//!
//! Each writes a report folder: CSV files (byte-identical for the same command), figures
//! (PNG and SVG) and `report.md` with the parameters, the seeds, the results with their
//! spread over seeds, and the command that reproduces it.
//!
//! Every experiment is a [`Sweep`]: a list of jobs in a canonical order, a function of one
//! job, and a report drawn from all the results in job order. That split lets a sweep run in
//! shards on many machines ([`ExperimentOptions::shard`], `--shard I/N`) and [`merge`] join
//! the shards into the very report folder of the whole sweep.

mod detection;
mod dissemination;
mod exact;
mod powerlaw;
mod shard;

use sim_core::sim::SimConfig;
use std::fs;
use std::path::{Path, PathBuf};

use sim_core::topology::Topology;

use crate::sweep::{SweepOptions, run_jobs};
use exact::Exact;
pub use shard::Shard;
use shard::ShardSet;

/// The experiments, with what each answers.
pub const EXPERIMENTS: [(&str, &str); 3] = [
    (
        "powerlaw",
        "does a neighbour policy give a power-law overlay, with what exponent?",
    ),
    (
        "dissemination",
        "how fast and at what cost does a message reach everyone, against network size?",
    ),
    (
        "detection",
        "how long until a dead peer is reported, and how often is a live one, per liveness setting?",
    ),
];

/// What every experiment takes. `None` fields take the experiment's defaults.
#[derive(Clone, Debug)]
pub struct ExperimentOptions {
    /// The report folder.
    pub out: PathBuf,
    /// First run seed.
    pub seed: u64,
    /// Seeds per setting: `seed`, `seed + 1`, ...
    pub replicates: Option<usize>,
    /// Network sizes (peers).
    pub sizes: Option<Vec<usize>>,
    /// Neighbour policies.
    pub topologies: Option<Vec<Topology>>,
    /// Bootstrap samples for the power-law p-values.
    pub bootstrap: Option<usize>,
    /// Threads and progress bar.
    pub sweep: SweepOptions,
    /// The command line that reproduces the report (written into `report.md`); a shard's
    /// command is the whole sweep's, without `--shard`.
    pub command: String,
    /// Run only this shard's share of the jobs and write a shard folder to `out` (the raw
    /// results and `shard.json`), for [`merge`] to join.
    pub shard: Option<Shard>,
    /// The text of a scenario file whose settings are the base of every run (README,
    /// "Scenarios"): the experiment sets what it sweeps and measures, the scenario the rest
    /// (seeds, latency where the experiment does not set it, the seeds' policies, the wire).
    pub scenario: Option<String>,
}

impl ExperimentOptions {
    /// Options for `name` with every default, writing to `results/experiment-NAME`.
    pub fn new(name: &str) -> Self {
        ExperimentOptions {
            out: default_out(name),
            seed: 1,
            replicates: None,
            sizes: None,
            topologies: None,
            bootstrap: None,
            sweep: SweepOptions::default(),
            command: format!("gossipnet experiment {name}"),
            shard: None,
            scenario: None,
        }
    }

    /// The settings every run starts from: the scenario's, or `gossipnet sim`'s defaults.
    pub fn base(&self) -> Result<SimConfig, String> {
        match &self.scenario {
            None => Ok(SimConfig::default()),
            Some(text) => crate::scenario::parse("the scenario", text)
                .map(|l| l.config)
                .map_err(|e| e.to_string()),
        }
    }

    fn seeds(&self, default: usize) -> Vec<u64> {
        let n = self.replicates.unwrap_or(default).max(1);
        (0..n as u64).map(|i| self.seed + i).collect()
    }
}

/// Where `gossipnet experiment NAME` writes by default.
pub fn default_out(name: &str) -> PathBuf {
    Path::new("results").join(format!("experiment-{name}"))
}

/// Where `gossipnet experiment NAME --shard I/N` writes by default.
pub fn default_shard_out(name: &str, shard: Shard) -> PathBuf {
    Path::new("results").join(format!(
        "experiment-{name}-shard-{}-of-{}",
        shard.index, shard.count
    ))
}

/// What an experiment wrote.
#[derive(Debug)]
pub struct Outcome {
    /// The report folder.
    pub out: PathBuf,
    /// Files written, relative to `out`, in order.
    pub files: Vec<String>,
    /// The headline results, a few lines for the console.
    pub headline: String,
}

/// Runs experiment `name`: the whole sweep and its report, or with `opts.shard` one shard's
/// share of the jobs and its shard folder.
pub fn run(name: &str, opts: &ExperimentOptions) -> Result<Outcome, String> {
    dispatch(name, opts, None)
}

/// Joins the shard folders of one sweep (`gossipnet experiment NAME --shard I/N`, every I of
/// one N) into its report folder, byte-identical to the folder of the whole sweep run at
/// once: `out`, or the experiment's default folder. Refuses folders that are not shards,
/// shards of different sweeps or splits, a shard given twice and a missing shard.
pub fn merge(dirs: &[PathBuf], out: Option<&Path>) -> Result<Outcome, String> {
    let set = ShardSet::read(dirs)?;
    let mut opts = set.options()?;
    if let Some(out) = out {
        opts.out = out.to_owned();
    }
    set.refuse_out(&opts.out)?;
    dispatch(set.experiment(), &opts, Some(&set))
}

/// One experiment's sweep, split so that its jobs can run anywhere and the report be drawn
/// from their results alone.
trait Sweep: Sync {
    /// One run's settings.
    type Job: Sync;
    /// What one run leaves for the report; a shard stores it exactly.
    type Result: Exact + Send;
    /// The jobs in canonical order: a job's index in it decides its shard and its place
    /// among the results, whatever thread or machine ran it.
    fn jobs(&self) -> &[Self::Job];
    /// A job's name, for the progress bar and the shard manifests.
    fn label(job: &Self::Job) -> String;
    /// Runs one job; a pure function of the job.
    fn run(&self, job: &Self::Job) -> Result<Self::Result, String>;
    /// Writes the report folder from every job's result, in job order.
    fn report(&self, opts: &ExperimentOptions, results: &[Self::Result])
    -> Result<Outcome, String>;
}

/// Plans experiment `name` and runs it (`set` is `None`) or merges its shards.
fn dispatch(
    name: &str,
    opts: &ExperimentOptions,
    set: Option<&ShardSet>,
) -> Result<Outcome, String> {
    match name {
        "powerlaw" => drive(&powerlaw::Plan::new(opts)?, name, opts, set),
        "dissemination" => drive(&dissemination::Plan::new(opts)?, name, opts, set),
        "detection" => drive(&detection::Plan::new(opts)?, name, opts, set),
        other => Err(format!(
            "unknown experiment {other:?}; known: {}",
            EXPERIMENTS.map(|(n, _)| n).join(", ")
        )),
    }
}

/// The whole sweep and its report, one shard's share, or the report from merged shards.
fn drive<S: Sweep>(
    s: &S,
    name: &str,
    opts: &ExperimentOptions,
    set: Option<&ShardSet>,
) -> Result<Outcome, String> {
    if let Some(shard) = opts.shard {
        return run_shard(s, name, opts, shard);
    }
    crate::sweep::create_dir(&opts.out)?;
    let results = match set {
        Some(set) => set.results(&labels(s))?,
        None => run_jobs(s.jobs(), &opts.sweep, name, S::label, |j| s.run(j))?,
    };
    s.report(opts, &results)
}

/// Runs one shard's share of the jobs and writes its shard folder.
fn run_shard<S: Sweep>(
    s: &S,
    name: &str,
    opts: &ExperimentOptions,
    shard: Shard,
) -> Result<Outcome, String> {
    let manifest = shard::Manifest::new(name, opts, shard, labels(s));
    shard::begin(&opts.out)?;
    let mine: Vec<&S::Job> = manifest.jobs.iter().map(|&k| &s.jobs()[k]).collect();
    let title = format!("{name} {shard}");
    let results = run_jobs(&mine, &opts.sweep, &title, |j| S::label(j), |j| s.run(j))?;
    let stored = results.iter().map(Exact::store).collect();
    shard::finish(&opts.out, &manifest, stored)
}

/// Every job's label, in job order.
fn labels<S: Sweep>(s: &S) -> Vec<String> {
    s.jobs().iter().map(S::label).collect()
}

/// Collects the files of a report as they are written.
struct Files {
    out: PathBuf,
    written: Vec<String>,
}

impl Files {
    fn new(out: &Path) -> Self {
        Files {
            out: out.to_owned(),
            written: Vec::new(),
        }
    }

    fn csv(&mut self, name: &str, header: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
        crate::sweep::write_csv(&self.out.join(name), header, rows)?;
        self.written.push(name.to_owned());
        Ok(())
    }

    /// The stem of a figure; records its PNG and SVG.
    fn figure(&mut self, stem: &str) -> PathBuf {
        self.written.push(format!("{stem}.png"));
        self.written.push(format!("{stem}.svg"));
        self.out.join(stem)
    }

    fn report(&mut self, text: &str) -> Result<(), String> {
        let path = self.out.join("report.md");
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.written.push("report.md".into());
        Ok(())
    }
}

/// One run of a policy × size × seed grid.
struct GridJob {
    topology: Topology,
    peers: usize,
    seed: u64,
}

impl GridJob {
    /// Every policy at every size with every seed, largest sizes first, so that the slowest
    /// runs do not start last and leave a core idle.
    fn grid(sizes: &[usize], policies: &[Topology], seeds: &[u64]) -> Vec<GridJob> {
        let mut jobs = Vec::new();
        for &peers in sizes.iter().rev() {
            for &topology in policies {
                for &seed in seeds {
                    jobs.push(GridJob {
                        topology,
                        peers,
                        seed,
                    });
                }
            }
        }
        jobs
    }

    fn label(&self) -> String {
        format!(
            "{} n={} seed={}",
            policy_name(&self.topology),
            self.peers,
            self.seed
        )
    }
}

/// Short policy names for files and tables: `capacity`, `uniform:3`, `preferential:3`.
fn policy_name(t: &Topology) -> String {
    match t {
        t if *t == Topology::default() => "capacity".into(),
        Topology::Capacity { base, ratio, step } => format!("capacity:{base},{ratio},{step}"),
        Topology::Uniform { k } => format!("uniform:{k}"),
        Topology::Preferential { m } => format!("preferential:{m}"),
    }
}

/// Policies as a markdown list of code spans.
fn policy_list(policies: &[Topology]) -> String {
    let names: Vec<String> = policies
        .iter()
        .map(|t| format!("`{}`", policy_name(t)))
        .collect();
    names.join(", ")
}

/// Numbers as `1, 2, 3`.
fn list<T: ToString>(xs: &[T]) -> String {
    xs.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// Writes `report.md` and returns the outcome with one console line per table row.
fn finish(
    mut files: Files,
    report: &str,
    table: &[Vec<String>],
    line: impl Fn(&[String]) -> String,
) -> Result<Outcome, String> {
    files.report(report)?;
    let headline: Vec<String> = table.iter().map(|r| line(r)).collect();
    Ok(Outcome {
        out: files.out.clone(),
        files: files.written,
        headline: headline.join("\n"),
    })
}

/// The list of seeds as text (`1, 2, 3`).
fn seed_list(seeds: &[u64]) -> String {
    list(seeds)
}

/// The reproduce section of a report.
fn reproduce(opts: &ExperimentOptions) -> String {
    format!(
        "## Reproduce\n\n```\n{}\n```\n\nThe same command gives byte-identical CSV files \
         (the simulator is deterministic and runs are collected in a fixed order, whatever the \
         number of threads). Figures are drawn from the same numbers.\n",
        opts.command
    )
}
