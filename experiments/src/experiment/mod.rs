//! `gossipnet experiment NAME`: sweeps that answer one question each, reproducible by seed.
//!
//! Each writes a report folder: CSV files (byte-identical for the same command), figures
//! (PNG and SVG) and `report.md` with the parameters, the seeds, the results with their
//! spread over seeds, and the command that reproduces it.

mod detection;
mod dissemination;
mod powerlaw;

use std::fs;
use std::path::{Path, PathBuf};

use sim_core::topology::Topology;

use crate::sweep::SweepOptions;

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
    /// The command line that reproduces the report (written into `report.md`).
    pub command: String,
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

/// Runs experiment `name`.
pub fn run(name: &str, opts: &ExperimentOptions) -> Result<Outcome, String> {
    crate::sweep::create_dir(&opts.out)?;
    match name {
        "powerlaw" => powerlaw::run(opts),
        "dissemination" => dissemination::run(opts),
        "detection" => detection::run(opts),
        other => Err(format!(
            "unknown experiment {other:?}; known: {}",
            EXPERIMENTS.map(|(n, _)| n).join(", ")
        )),
    }
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
