//! Sweeps: many independent simulated runs on all cores, with a progress bar, and the
//! statistics and CSV helpers the experiment reports share.
//!
//! Every run is a pure function of its job, and results are returned in job order whatever
//! the thread that computed them, so a sweep's output does not depend on the thread count.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use sim_core::digest::DigestMemo;
use sim_core::report::Recorder;
use sim_core::sim::{SimConfig, World};

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Worker threads (runs in parallel); at least 1.
    pub threads: usize,
    /// Show a progress bar on standard error (hidden anyway when it is not a terminal).
    pub progress: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: true,
        }
    }
}

/// Runs `work` on every job, `opts.threads` at a time, and returns the results in job order.
/// The first error stops the sweep (jobs already running finish) and is returned with the
/// job's label.
pub fn run_jobs<J, R>(
    jobs: &[J],
    opts: &SweepOptions,
    title: &str,
    label: impl Fn(&J) -> String + Sync,
    work: impl Fn(&J) -> Result<R, String> + Sync,
) -> Result<Vec<R>, String>
where
    J: Sync,
    R: Send,
{
    let bar = if opts.progress {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} runs, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(title.to_owned());
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(None::<String>);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if lock(&failed).is_some() {
                        break;
                    }
                    bar.set_message(label(job));
                    match work(job) {
                        Ok(r) => lock(&results)[i] = Some(r),
                        Err(e) => {
                            lock(&failed).get_or_insert(format!("{}: {e}", label(job)));
                        }
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = into_inner(failed) {
        return Err(e);
    }
    into_inner(results)
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| format!("run {i} produced nothing")))
        .collect()
}

/// Locks a mutex; a poisoned one (a worker panicked) still holds valid data for our uses.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a simulation to its end and returns what it recorded (no log lines kept).
pub fn simulate(cfg: &SimConfig) -> Result<Recorder, String> {
    simulate_with(cfg, |_| {})
}

/// As [`simulate`], with a hook to schedule originations before the run starts.
pub fn simulate_with(cfg: &SimConfig, setup: impl FnOnce(&mut World)) -> Result<Recorder, String> {
    let mut world = World::new(cfg.clone(), DigestMemo::new(cfg.hash_iterations))?;
    setup(&mut world);
    let mut rec = Recorder::new(0);
    rec.keep_log = false;
    world.run(&mut rec);
    Ok(rec)
}

/// Mean, spread and range of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Values.
    pub n: usize,
    /// Arithmetic mean (NaN when empty).
    pub mean: f64,
    /// Sample standard deviation (0 for one value, NaN when empty).
    pub sd: f64,
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl Stats {
    /// The statistics of `xs`; NaN values are left out.
    pub fn of(xs: impl IntoIterator<Item = f64>) -> Stats {
        let mut v: Vec<f64> = xs.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Stats {
                n: 0,
                mean: f64::NAN,
                sd: f64::NAN,
                min: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            n,
            mean,
            sd: var.sqrt(),
            min: v[0],
            median,
            max: v[n - 1],
        }
    }

    /// `mean ± sd` with `digits` decimals, or `n/a`.
    pub fn pm(&self, digits: usize) -> String {
        if self.n == 0 {
            "n/a".into()
        } else {
            format!("{:.digits$} ± {:.digits$}", self.mean, self.sd)
        }
    }
}

/// A number for CSV: fixed decimals, so the text is the same on every machine; NaN as empty.
pub fn num(x: f64, digits: usize) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x:.digits$}")
    }
}

/// Writes a CSV file from a header and rows of text.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
    let err = |e: csv::Error| format!("cannot write {}: {e}", path.display());
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Creates `dir` (and parents).
pub fn create_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// A markdown table.
pub fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", header.join(" | "));
    s.push_str(&format!(
        "|{}\n",
        header.iter().map(|_| "---|").collect::<String>()
    ));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_job_order_whatever_the_threads() {
        let jobs: Vec<u64> = (0..50).collect();
        let opts = SweepOptions {
            threads: 4,
            progress: false,
        };
        let out = run_jobs(&jobs, &opts, "t", |j| j.to_string(), |j| Ok(j * j)).unwrap();
        assert_eq!(out, jobs.iter().map(|j| j * j).collect::<Vec<_>>());
        let err = run_jobs(
            &jobs,
            &opts,
            "t",
            |j| format!("job {j}"),
            |j| if *j == 7 { Err("boom".into()) } else { Ok(()) },
        )
        .unwrap_err();
        assert_eq!(err, "job 7: boom");
    }

    #[test]
    fn stats_of_a_sample() {
        let s = Stats::of([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, f64::NAN]);
        assert_eq!(
            (s.n, s.mean, s.median, s.min, s.max),
            (8, 5.0, 4.5, 2.0, 9.0)
        );
        assert!((s.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stats::of([]).pm(2), "n/a");
        assert_eq!(num(f64::NAN, 3), "");
        assert_eq!(num(1.0 / 3.0, 3), "0.333");
    }
}
