//! Sweeps in shards: `--shard I/N` runs the jobs whose index k in the sweep's canonical order
//! has `k mod N = I − 1`, and writes a shard folder; [`ShardSet`] reads the N folders back
//! for the report.
//!
//! A shard folder holds `results.jsonl` (one line per job of the shard: its index, its label
//! and its result, stored exactly) and `shard.json`, the manifest: the sweep (experiment,
//! gossipnet version, the options that define the jobs, and every job's label), N, I, the
//! shard's jobs and the command of the whole sweep. The manifest is written last, so a shard
//! that did not finish has none. Nothing in a shard folder depends on the machine, the
//! thread count or the clock: the same command writes the same bytes.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sim_core::topology::Topology;

use super::exact::Exact;
use super::{ExperimentOptions, Outcome, default_out, policy_name};

/// The manifest of a shard folder.
pub(super) const MANIFEST: &str = "shard.json";
/// The results of a shard's jobs, one JSON object a line.
pub(super) const RESULTS: &str = "results.jsonl";
/// The layout of shard folders this gossipnet writes and reads.
const FORMAT: &str = "gossipnet experiment shard, version 1";

/// Shard `index` of `count` (`I/N` on the command line, 1 ≤ I ≤ N).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// I, from 1.
    pub index: usize,
    /// N, the number of shards.
    pub count: usize,
}

impl Shard {
    /// Whether job `k` (its index in the sweep's canonical order) belongs to this shard.
    pub fn owns(self, k: usize) -> bool {
        k % self.count == self.index - 1
    }

    /// The indices of this shard's jobs in a sweep of `total` jobs, in order.
    pub fn jobs(self, total: usize) -> Vec<usize> {
        (0..total).filter(|&k| self.owns(k)).collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    /// `I/N`, e.g. `2/8`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?}: expected I/N such as 2/8"))?;
        let num = |x: &str| x.trim().parse::<usize>().ok();
        match (num(i), num(n)) {
            (Some(index), Some(count)) if (1..=count).contains(&index) => {
                Ok(Shard { index, count })
            }
            (Some(_), Some(_)) => Err(format!("shard {s:?}: I must be from 1 to N")),
            _ => Err(format!(
                "shard {s:?}: expected I/N with whole numbers such as 2/8"
            )),
        }
    }
}

/// What defines a sweep: shards merge only when theirs are equal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct SweepId {
    experiment: String,
    /// The version of the gossipnet that ran the shard.
    gossipnet: String,
    seed: u64,
    replicates: Option<usize>,
    sizes: Option<Vec<usize>>,
    topologies: Option<Vec<String>>,
    bootstrap: Option<usize>,
    /// The text of the scenario every run starts from, if one was given.
    #[serde(default)]
    scenario: Option<String>,
    /// Every job's label, in the canonical order.
    jobs: Vec<String>,
}

/// `shard.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    format: String,
    /// I.
    shard: usize,
    /// N.
    shards: usize,
    /// The indices of this shard's jobs.
    pub(super) jobs: Vec<usize>,
    /// The command of the whole sweep, for the merged `report.md`.
    command: String,
    sweep: SweepId,
}

impl Manifest {
    /// The manifest of `shard` of experiment `name` run with `opts`, whose jobs are `labels`.
    pub(super) fn new(
        name: &str,
        opts: &ExperimentOptions,
        shard: Shard,
        labels: Vec<String>,
    ) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            shard: shard.index,
            shards: shard.count,
            jobs: shard.jobs(labels.len()),
            command: opts.command.clone(),
            sweep: SweepId {
                experiment: name.into(),
                gossipnet: env!("CARGO_PKG_VERSION").into(),
                seed: opts.seed,
                replicates: opts.replicates,
                sizes: opts.sizes.clone(),
                topologies: opts
                    .topologies
                    .as_ref()
                    .map(|ts| ts.iter().map(policy_name).collect()),
                bootstrap: opts.bootstrap,
                scenario: opts.scenario.clone(),
                jobs: labels,
            },
        }
    }

    fn shard(&self) -> Shard {
        Shard {
            index: self.shard,
            count: self.shards,
        }
    }
}

/// Prepares a shard folder: creates it and removes the manifest of an earlier shard, so that
/// the folder counts as a shard only once this one has finished.
pub(super) fn begin(out: &Path) -> Result<(), String> {
    crate::sweep::create_dir(out)?;
    let manifest = out.join(MANIFEST);
    match fs::remove_file(&manifest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", manifest.display()))
        }
        _ => Ok(()),
    }
}

/// Writes the shard's results (in the order of `manifest.jobs`), then its manifest.
pub(super) fn finish(
    out: &Path,
    manifest: &Manifest,
    results: Vec<Value>,
) -> Result<Outcome, String> {
    debug_assert_eq!(manifest.jobs.len(), results.len(), "one result per job");
    let write_err = |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let path = out.join(RESULTS);
    let mut text = Vec::new();
    for (&k, result) in manifest.jobs.iter().zip(results) {
        let line = serde_json::json!({
            "job": k,
            "label": manifest.sweep.jobs[k],
            "result": result,
        });
        writeln!(text, "{line}").map_err(|e| write_err(&path, e))?;
    }
    fs::write(&path, text).map_err(|e| write_err(&path, e))?;
    let path = out.join(MANIFEST);
    let json = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())?;
    fs::write(&path, json + "\n").map_err(|e| write_err(&path, e))?;
    let shard = manifest.shard();
    let total = manifest.sweep.jobs.len();
    Ok(Outcome {
        out: out.to_owned(),
        files: vec![RESULTS.into(), MANIFEST.into()],
        headline: format!(
            "  shard {shard}: {} of {total} runs ({}), in {}\n  \
             merge all {n} shards with: gossipnet experiment merge DIR... [--out DIR]",
            manifest.jobs.len(),
            job_list(&manifest.jobs),
            out.display(),
            n = shard.count,
        ),
    })
}

/// Job indices as `0, 3, 6` (the first few of a long list).
fn job_list(jobs: &[usize]) -> String {
    const SHOWN: usize = 8;
    let shown: Vec<String> = jobs.iter().take(SHOWN).map(usize::to_string).collect();
    match jobs.len() {
        0 => "none".into(),
        n if n > SHOWN => format!("jobs {}, ...", shown.join(", ")),
        _ => format!("jobs {}", shown.join(", ")),
    }
}

/// One shard folder read back.
struct Loaded {
    dir: PathBuf,
    manifest: Manifest,
    /// The results, in the order of `manifest.jobs`.
    results: Vec<Value>,
}

/// Every shard of one sweep, checked: the same sweep and N, each I once, each job's result
/// once.
pub(super) struct ShardSet {
    /// In shard order, 1 to N.
    shards: Vec<Loaded>,
}

impl ShardSet {
    /// Reads and checks the shard folders `dirs` (in any order).
    pub(super) fn read(dirs: &[PathBuf]) -> Result<ShardSet, String> {
        if dirs.is_empty() {
            return Err("no shard folders given".into());
        }
        let mut shards: Vec<Loaded> = Vec::new();
        for dir in dirs {
            let l = load(dir)?;
            if let Some(first) = shards.first() {
                same_sweep(first, &l)?;
            }
            if let Some(twice) = shards.iter().find(|s| s.manifest.shard == l.manifest.shard) {
                return Err(format!(
                    "shard {} given twice: {} and {}",
                    l.manifest.shard(),
                    twice.dir.display(),
                    l.dir.display()
                ));
            }
            shards.push(l);
        }
        shards.sort_by_key(|s| s.manifest.shard);
        let count = shards[0].manifest.shards;
        let missing: Vec<String> = (1..=count)
            .filter(|i| !shards.iter().any(|s| s.manifest.shard == *i))
            .map(|index| Shard { index, count }.to_string())
            .collect();
        if !missing.is_empty() {
            let given: Vec<String> = shards
                .iter()
                .map(|s| s.manifest.shard().to_string())
                .collect();
            let run = match missing.as_slice() {
                [one] => format!("--shard {one}`"),
                _ => format!("--shard I/{count}` for each"),
            };
            return Err(format!(
                "missing shard{} {} (given {}): run `{} {run}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                given.join(", "),
                shards[0].manifest.command,
            ));
        }
        Ok(ShardSet { shards })
    }

    /// The experiment the shards ran.
    pub(super) fn experiment(&self) -> &str {
        &self.shards[0].manifest.sweep.experiment
    }

    /// The options of the whole sweep, writing to the experiment's default folder.
    pub(super) fn options(&self) -> Result<ExperimentOptions, String> {
        let m = &self.shards[0].manifest;
        let s = &m.sweep;
        let mut opts = ExperimentOptions::new(&s.experiment);
        opts.out = default_out(&s.experiment);
        opts.seed = s.seed;
        opts.replicates = s.replicates;
        opts.sizes = s.sizes.clone();
        opts.topologies = match &s.topologies {
            Some(ts) => Some(
                ts.iter()
                    .map(|t| Topology::from_str(t))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        opts.bootstrap = s.bootstrap;
        opts.scenario = s.scenario.clone();
        opts.command = m.command.clone();
        Ok(opts)
    }

    /// Refuses to write the report into a shard folder (one of these or another).
    pub(super) fn refuse_out(&self, out: &Path) -> Result<(), String> {
        if out.join(MANIFEST).exists() {
            return Err(format!(
                "--out {} is a shard folder: merge into another folder",
                out.display()
            ));
        }
        Ok(())
    }

    /// Every job's result in job order, given the labels of the jobs as this gossipnet plans
    /// the sweep (they must be the shards').
    pub(super) fn results<R: Exact>(&self, labels: &[String]) -> Result<Vec<R>, String> {
        let jobs = &self.shards[0].manifest.sweep.jobs;
        if labels != jobs.as_slice() {
            return Err(format!(
                "this gossipnet plans the sweep of {} as {} runs, not as the {} of its shards \
                 (shards of another gossipnet version?): merge with the gossipnet that ran them",
                self.shards[0].dir.display(),
                labels.len(),
                jobs.len()
            ));
        }
        // Job k is shard (k mod N) + 1's result number k div N.
        let count = self.shards.len();
        labels
            .iter()
            .enumerate()
            .map(|(k, label)| {
                let s = &self.shards[k % count];
                R::load(&s.results[k / count]).map_err(|e| {
                    let path = s.dir.join(RESULTS);
                    format!("{}: job {k} ({label}): {e}", path.display())
                })
            })
            .collect()
    }
}

/// Reads one shard folder and checks it against its own manifest.
fn load(dir: &Path) -> Result<Loaded, String> {
    let d = dir.display();
    if !dir.is_dir() {
        return Err(format!("{d}: no such folder"));
    }
    let path = dir.join(MANIFEST);
    if !path.exists() {
        return Err(if dir.join(RESULTS).exists() {
            format!("{d} has no {MANIFEST}: its shard did not finish; run it again")
        } else if dir.join("report.md").exists() {
            format!(
                "{d} is a report folder, not a shard folder (merge the folders of `--shard I/N`)"
            )
        } else {
            format!(
                "{d} is not a shard folder (no {MANIFEST}; `gossipnet experiment NAME --shard I/N` writes one)"
            )
        });
    }
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let format = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("format").and_then(Value::as_str).map(str::to_owned));
    if format.as_deref() != Some(FORMAT) {
        return Err(format!(
            "{}: not a shard manifest of this gossipnet (format {}, expected {FORMAT:?})",
            path.display(),
            format.map_or("missing".into(), |f| format!("{f:?}"))
        ));
    }
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let shard = manifest.shard();
    if !(1..=shard.count).contains(&shard.index) {
        return Err(format!("{}: shard {shard} is out of range", path.display()));
    }
    if manifest.jobs != shard.jobs(manifest.sweep.jobs.len()) {
        return Err(format!(
            "{}: shard {shard} lists jobs {:?}, not the share of shard {shard}",
            path.display(),
            manifest.jobs
        ));
    }
    let path = dir.join(RESULTS);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut results = Vec::with_capacity(manifest.jobs.len());
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), n + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
        let expected = manifest.jobs.get(n);
        let job = v.get("job").and_then(Value::as_u64);
        let label = v.get("label").and_then(Value::as_str);
        match expected {
            Some(&k) if job == Some(k as u64) && label == Some(&manifest.sweep.jobs[k]) => {}
            Some(&k) => {
                return Err(format!(
                    "{}: expected job {k} ({}), found {}",
                    at(),
                    manifest.sweep.jobs[k],
                    line.chars().take(80).collect::<String>()
                ));
            }
            None => return Err(format!("{}: more results than the shard's jobs", at())),
        }
        let result = v
            .get("result")
            .cloned()
            .ok_or_else(|| format!("{}: no result", at()))?;
        results.push(result);
    }
    if results.len() != manifest.jobs.len() {
        return Err(format!(
            "{}: {} results for the shard's {} jobs",
            path.display(),
            results.len(),
            manifest.jobs.len()
        ));
    }
    Ok(Loaded {
        dir: dir.to_owned(),
        manifest,
        results,
    })
}

/// Refuses two shards of different sweeps or splits, naming what differs.
fn same_sweep(a: &Loaded, b: &Loaded) -> Result<(), String> {
    let (ma, mb) = (&a.manifest, &b.manifest);
    if ma.sweep != mb.sweep {
        let (va, vb) = (
            serde_json::to_value(&ma.sweep).unwrap_or_default(),
            serde_json::to_value(&mb.sweep).unwrap_or_default(),
        );
        let field = [
            "experiment",
            "gossipnet",
            "seed",
            "replicates",
            "sizes",
            "topologies",
            "bootstrap",
            "scenario",
            "jobs",
        ]
        .into_iter()
        .find(|f| va.get(f) != vb.get(f))
        .unwrap_or("jobs");
        let show = |v: &Value| match v.get(field) {
            Some(Value::Array(jobs)) if field == "jobs" => format!("{} runs", jobs.len()),
            Some(Value::Null) | None => "the default".into(),
            Some(x) => x.to_string(),
        };
        return Err(format!(
            "shards of different sweeps: {} (shard {}) has {field} {}, {} (shard {}) has {}",
            a.dir.display(),
            ma.shard(),
            show(&va),
            b.dir.display(),
            mb.shard(),
            show(&vb)
        ));
    }
    if ma.shards != mb.shards {
        return Err(format!(
            "shards of different splits: {} is shard {}, {} is shard {}; merge the N shards of one split",
            a.dir.display(),
            ma.shard(),
            b.dir.display(),
            mb.shard()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_k_goes_to_shard_k_mod_n_plus_one() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!(s, Shard { index: 2, count: 3 });
        assert_eq!(s.jobs(8), vec![1, 4, 7]);
        let all: Vec<usize> = (1..=3)
            .flat_map(|index| Shard { index, count: 3 }.jobs(8))
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "each job in one shard");
        assert_eq!("1/1".parse::<Shard>().unwrap().jobs(2), vec![0, 1]);
        assert_eq!(Shard { index: 5, count: 5 }.jobs(3), Vec::<usize>::new());
    }

    #[test]
    fn bad_shards_are_refused_with_the_expected_form() {
        for bad in ["0/3", "4/3", "1/0", "x", "1", "1/x", "-1/3", "1/3/4"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("I/N") || e.contains("from 1 to N"), "{bad}: {e}");
        }
        assert_eq!(
            " 2 / 8 ".trim().parse::<Shard>().map(|s| s.to_string()),
            Ok("2/8".into())
        );
    }
}
