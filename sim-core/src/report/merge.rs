//! `gossipnet merge`: the run folders of separate real processes joined into one run folder.
//!
//! Each real process records what its own nodes saw, on its own clock: CSV times are µs
//! since the process started, `outputfile.log` times are UNIX times. Every real run folder
//! holds its [journal](super::journal) (`events.jsonl`, whose header gives the exact UNIX µs
//! of the process's epoch). A merge
//!
//! 1. reads each folder and checks that it is a real run's (not a simulated one, not a
//!    folder from before journals existed) and that the folders are of one run: no folder
//!    twice, no node address run by two processes at the same time, and no process that
//!    started after all the others had stopped;
//! 2. takes the earliest process start as the epoch and shifts every process's journal by
//!    the difference of the epochs, in exact µs;
//! 3. replays all the journals, in time order (each process's own order kept), into one
//!    [`Recorder`], as if one process had recorded every node: deliveries of one message in
//!    different processes meet under one origination, hops follow `first_from` across
//!    processes, and detections meet the seeds' removals (`removed_by_seeds_at_s`);
//! 4. merges the `outputfile.log` lines by their UNIX timestamps.
//!
//! A peer stopped cleanly (Ctrl-C) is running at the end of its own run. In the merged run it
//! counts as running to the end too, unless a node of another process declared it dead after
//! its process stopped: then it is recorded as stopped at that time (`Fault: ADDR stopped
//! with its process`), so the declaration is a detection with `crashed_at_s`, not a false
//! positive. Stops at the end of a session, which nobody noticed, change nothing. The stop
//! time is the process's end (`started_at + wall_time_s`, read once its nodes had stopped), or
//! the first removal or declaration of the peer by another process within the second before
//! that, when the peer had recorded nothing since: a seed that sees a peer's connection close
//! checks it at once, and can remove it before its process has finished stopping. A peer
//! whose stop another process recorded (a lab's folder records the peers it killed) stopped
//! then.
//!
//! A process killed outright leaves the folder its flight recorder kept (`summary.json` with
//! `"complete": false`, the journal up to its last loop turn, whose last line the kill may
//! have cut): it is read up to its last record, which is then its end.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::journal::{Change, Entry, JOURNAL_FILE, read_cut_journal, read_journal};
use super::{Recorder, write_folder};
use crate::addr::NodeAddr;
use crate::time::Time;

/// One process's run folder, read and checked.
#[derive(Clone, Debug)]
pub struct Process {
    /// The folder as given.
    pub dir: PathBuf,
    /// The folder's canonical path (to tell a folder given twice).
    canonical: PathBuf,
    /// UNIX µs of the process's clock epoch.
    pub started_at_unix_us: u64,
    /// UNIX µs when the process stopped (its start plus `wall_time_s`).
    pub stopped_at_unix_us: u64,
    /// Nodes whose events it recorded (not counting a stop alone: `gossipnet lab` records
    /// the crashes it makes in a folder of its own).
    pub nodes: BTreeSet<NodeAddr>,
    summary: Map<String, Value>,
    journal: Vec<Entry>,
    /// `outputfile.log`: (UNIX µs, line).
    log: Vec<(u64, String)>,
}

/// The folders joined into one run.
pub struct Merged {
    /// Every node's events, on the earliest process's clock.
    pub recorder: Recorder,
    /// The processes, by start.
    pub processes: Vec<Process>,
    /// Peers recorded as stopped with their process, and when (merged clock).
    pub stopped: Vec<(NodeAddr, Time)>,
}

/// Reads `dir` as the run folder of one real process.
pub fn read_process(dir: &Path) -> Result<Process, String> {
    let shown = dir.display();
    let meta = fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: no such folder"),
        _ => format!("cannot read {shown}: {e}"),
    })?;
    if !meta.is_dir() {
        return Err(format!("{shown} is a file, not a run folder"));
    }
    let canonical = fs::canonicalize(dir).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let summary_path = dir.join("summary.json");
    if !summary_path.is_file() {
        return Err(format!(
            "{shown} is not a run folder (no summary.json); give the folders that gossipnet \
             seed, seeds, peer or swarm wrote"
        ));
    }
    let summary = read_summary(&summary_path)?;
    if summary.get("driver").and_then(Value::as_str) != Some("real") {
        return Err(format!(
            "{shown} is a simulated run (its summary.json has no driver \"real\"): merge joins \
             the folders of real processes (gossipnet seed, seeds, peer, swarm); a simulated \
             run holds every node already"
        ));
    }
    let journal_path = dir.join(JOURNAL_FILE);
    if !journal_path.is_file() {
        return Err(format!(
            "{shown} has no {JOURNAL_FILE}: it was written by a gossipnet older than merge; \
             run the network again with this one"
        ));
    }
    // A flight recorder's folder whose process was killed outright: what it wrote up to
    // its last loop turn, whose last line the kill may have cut.
    let cut = summary.get("complete").and_then(Value::as_bool) == Some(false);
    let journal = if cut {
        read_cut_journal(&journal_path)?
    } else {
        read_journal(&journal_path)?
    };
    let started = journal.started_at_unix_us;
    check_start(&summary, started).map_err(|e| format!("{}: {e}", summary_path.display()))?;
    let wall_us = match summary.get("wall_time_s") {
        None if cut => 0,
        w => w
            .and_then(Value::as_f64)
            .filter(|w| w.is_finite() && *w >= 0.0)
            .map(|w| (w * 1e6).round() as u64)
            .ok_or_else(|| format!("{}: no wall_time_s", summary_path.display()))?,
    };
    let last_event = journal.entries.iter().map(|e| e.at.0).max().unwrap_or(0);
    let log = read_log(&dir.join("outputfile.log"), cut)?;
    Ok(Process {
        dir: dir.to_path_buf(),
        canonical,
        started_at_unix_us: started,
        // The run's wall time is taken after its nodes stopped, so it covers every event.
        stopped_at_unix_us: started.saturating_add(wall_us.max(last_event)),
        // A node is run by the process that records its events; one that only records its
        // stop (the lab, which kills peers' processes) does not run it.
        nodes: journal
            .entries
            .iter()
            .filter(|e| e.change != Change::Down)
            .map(|e| e.node)
            .collect(),
        summary,
        journal: journal.entries,
        log,
    })
}

impl Process {
    /// `summary.json` as read.
    pub fn summary(&self) -> &Map<String, Value> {
        &self.summary
    }

    /// The journal, on the process's own clock (empty once the process was merged).
    pub fn journal(&self) -> &[Entry] {
        &self.journal
    }

    /// `outputfile.log` as (UNIX µs, line) (empty once the process was merged).
    pub fn log(&self) -> &[(u64, String)] {
        &self.log
    }
}

fn read_summary(path: &Path) -> Result<Map<String, Value>, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{}: expected a JSON object", path.display())),
        Err(e) => Err(format!(
            "{}: line {}: not valid JSON ({e})",
            path.display(),
            e.line()
        )),
    }
}

/// The journal's epoch must be the summary's: else the files are of different runs.
fn check_start(summary: &Map<String, Value>, journal_us: u64) -> Result<(), String> {
    let us = match summary.get("started_at_unix_us").and_then(Value::as_u64) {
        Some(us) => us,
        None => summary
            .get("started_at_unix_s")
            .and_then(Value::as_f64)
            .map(|s| (s * 1e6).round() as u64)
            .ok_or("no started_at_unix_s")?,
    };
    if us.abs_diff(journal_us) > 1 {
        return Err(format!(
            "the run started at {} by summary.json and at {} by {JOURNAL_FILE}: files of \
             different runs?",
            Time(us),
            Time(journal_us)
        ));
    }
    Ok(())
}

/// `outputfile.log` lines with their UNIX µs (`SECONDS[.FRACTION]:...`); with `cut_tail`
/// (a process killed outright), a last line without its newline is left out.
fn read_log(path: &Path, cut_tail: bool) -> Result<Vec<(u64, String)>, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = match String::from_utf8(bytes) {
        Ok(t) => t,
        // A kill can cut a character in two.
        Err(e) if cut_tail => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        Err(_) => return Err(format!("{}: not UTF-8 text", path.display())),
    };
    if cut_tail && !text.ends_with('\n') {
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let us = line
            .split_once(':')
            .and_then(|(stamp, _)| stamp_micros(stamp))
            .ok_or_else(|| {
                format!(
                    "{}: line {}: expected TIMESTAMP:..., found {:?}",
                    path.display(),
                    i + 1,
                    line.chars().take(60).collect::<String>()
                )
            })?;
        out.push((us, line.to_owned()));
    }
    Ok(out)
}

/// `1732406400.125` as µs; `None` unless digits with up to six decimals.
fn stamp_micros(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || frac.len() > 6 || !digits(int) || !digits(frac) {
        return None;
    }
    let frac_us: u64 = format!("{frac:0<6}").parse().ok()?;
    int.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(frac_us)
}

/// Reads every folder, checks that they are one run and joins them.
pub fn merge_dirs(dirs: &[PathBuf]) -> Result<Merged, String> {
    if dirs.is_empty() {
        return Err("give the run folders to merge".into());
    }
    let processes = dirs
        .iter()
        .map(|d| read_process(d))
        .collect::<Result<Vec<_>, _>>()?;
    merge(processes)
}

/// Checks that `processes` are one run and joins them.
pub fn merge(mut processes: Vec<Process>) -> Result<Merged, String> {
    // By start, so that the result does not depend on the order the folders were given in.
    processes.sort_by(|a, b| {
        (a.started_at_unix_us, &a.canonical).cmp(&(b.started_at_unix_us, &b.canonical))
    });
    check_one_run(&processes)?;
    let epoch = processes.first().map_or(0, |p| p.started_at_unix_us);
    let shift = |p: &Process| p.started_at_unix_us - epoch;
    let stopped = stopped_with_process(&processes, epoch);

    // The journals and logs move out of the processes (not copied): a swarm of thousands
    // logs tens of MB a process.
    let mut streams: Vec<Vec<(u64, Entry)>> = processes
        .iter_mut()
        .map(|p| {
            let s = shift(p);
            std::mem::take(&mut p.journal)
                .into_iter()
                .map(|e| {
                    let at = Time(e.at.0.saturating_add(s));
                    (at.0, Entry { at, ..e })
                })
                .collect()
        })
        .collect();
    let mut logs: Vec<Vec<(u64, String)>> = processes
        .iter_mut()
        .map(|p| std::mem::take(&mut p.log))
        .collect();
    for &(pi, node, at) in &stopped {
        streams[pi].push((
            at.0,
            Entry {
                at,
                node,
                change: Change::Down,
            },
        ));
        let unix = Time(at.0.saturating_add(epoch));
        logs[pi].push((
            unix.0,
            format!("{unix}:Fault: {node} stopped with its process"),
        ));
    }

    let mut rec = Recorder::new(epoch);
    rec.keep_journal = true;
    rec.keep_log = false;
    for e in in_time_order(streams) {
        rec.apply(e.at, e.node, &e.change);
    }
    rec.link_deliveries();
    rec.log = in_time_order(logs);
    rec.keep_log = true;
    Ok(Merged {
        recorder: rec,
        processes,
        stopped: stopped.into_iter().map(|(_, n, at)| (n, at)).collect(),
    })
}

/// The items of every stream, by key; each stream's own order is kept (a process's journal
/// is in the order it recorded, which two node threads' clocks may not quite follow), and
/// equal keys go to the earlier stream first.
fn in_time_order<T>(streams: Vec<Vec<(u64, T)>>) -> Vec<T> {
    let total = streams.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = streams.into_iter().map(|s| s.into_iter()).collect();
    let mut heads = BinaryHeap::new();
    let mut held: Vec<Option<T>> = Vec::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        held.push(it.next().map(|(k, v)| {
            heads.push(Reverse((k, i)));
            v
        }));
    }
    let mut out = Vec::with_capacity(total);
    while let Some(Reverse((_, i))) = heads.pop() {
        if let Some(v) = held[i].take() {
            out.push(v);
        }
        held[i] = iters[i].next().map(|(k, v)| {
            heads.push(Reverse((k, i)));
            v
        });
    }
    out
}

/// The folders must be of one run: each given once, no node address in two processes at
/// the same time, and no process that started after all the earlier ones had stopped.
fn check_one_run(processes: &[Process]) -> Result<(), String> {
    let epoch = processes.first().map_or(0, |p| p.started_at_unix_us);
    let span = |p: &Process| {
        format!(
            "{} (ran from {:.3} s to {:.3} s)",
            p.dir.display(),
            (p.started_at_unix_us - epoch) as f64 / 1e6,
            p.stopped_at_unix_us.saturating_sub(epoch) as f64 / 1e6
        )
    };
    for (i, a) in processes.iter().enumerate() {
        for b in &processes[i + 1..] {
            if a.canonical == b.canonical {
                return Err(format!("{} is given twice", b.dir.display()));
            }
            let overlap = a.started_at_unix_us < b.stopped_at_unix_us
                && b.started_at_unix_us < a.stopped_at_unix_us;
            if let Some(node) = a.nodes.intersection(&b.nodes).next().filter(|_| overlap) {
                return Err(format!(
                    "{} and {} both ran {node} at the same time: folders of different runs? \
                     (a node's address is one process's at a time)",
                    span(a),
                    span(b)
                ));
            }
        }
    }
    let mut stopped = 0;
    for (i, p) in processes.iter().enumerate() {
        if i > 0 && p.started_at_unix_us > stopped {
            return Err(format!(
                "{} started after every earlier process had stopped ({:.3} s later): these \
                 folders are not of one run",
                span(p),
                (p.started_at_unix_us - stopped) as f64 / 1e6
            ));
        }
        stopped = stopped.max(p.stopped_at_unix_us);
    }
    Ok(())
}

/// How long a process may take to stop its nodes: `wall_time_s` is read once they have
/// stopped, and a seed that saw a peer's connection close may have removed it just before.
const STOP_SPAN_US: u64 = 1_000_000;

/// Peers that were running when their process stopped and that a node of another process
/// declared dead afterwards (before the address started again anywhere): (process, peer,
/// when it stopped on the merged clock). It stopped at its process's end, or at the first
/// removal or declaration of it by another process in the moment before (while its process
/// was stopping: it had recorded nothing since).
fn stopped_with_process(processes: &[Process], epoch: u64) -> Vec<(usize, NodeAddr, Time)> {
    // Per peer, on the merged clock, with the process: starts, dead declarations and
    // removals by seeds.
    let mut starts: BTreeMap<NodeAddr, Vec<(u64, usize)>> = BTreeMap::new();
    let mut declared: BTreeMap<NodeAddr, Vec<(u64, usize)>> = BTreeMap::new();
    let mut removed: BTreeMap<NodeAddr, Vec<(u64, usize)>> = BTreeMap::new();
    let mut downs: BTreeMap<NodeAddr, Vec<(u64, usize)>> = BTreeMap::new();
    for (pi, p) in processes.iter().enumerate() {
        let s = p.started_at_unix_us - epoch;
        for e in &p.journal {
            let (list, node) = match &e.change {
                Change::PeerStarted { .. } => (&mut starts, e.node),
                Change::Down => (&mut downs, e.node),
                Change::DeclaredDead { peer } => (&mut declared, *peer),
                Change::RemovedBySeed { dead } => (&mut removed, *dead),
                _ => continue,
            };
            list.entry(node)
                .or_default()
                .push((e.at.0.saturating_add(s), pi));
        }
    }
    let others = |m: &BTreeMap<NodeAddr, Vec<(u64, usize)>>, node: NodeAddr, pi: usize| {
        m.get(&node)
            .into_iter()
            .flatten()
            .filter(move |(_, q)| *q != pi)
            .map(|(t, _)| *t)
            .collect::<Vec<u64>>()
    };
    let mut out = Vec::new();
    for (pi, p) in processes.iter().enumerate() {
        let s = p.started_at_unix_us - epoch;
        let stop = p.stopped_at_unix_us - epoch;
        for (node, last_own) in running_at_end(&p.journal) {
            let restart = others(&starts, node, pi)
                .into_iter()
                .filter(|t| *t >= stop)
                .min()
                .unwrap_or(u64::MAX);
            // Another process recorded its stop (a lab, which killed its process): that
            // is when it stopped, not its process's last record.
            let last = last_own.0.saturating_add(s);
            if others(&downs, node, pi)
                .iter()
                .any(|t| *t >= last && *t < restart)
            {
                continue;
            }
            let dead_at = others(&declared, node, pi);
            let lower = last.max(stop.saturating_sub(STOP_SPAN_US));
            let down = dead_at
                .iter()
                .chain(&others(&removed, node, pi))
                .copied()
                .filter(|t| *t > lower && *t <= stop)
                .min()
                .unwrap_or(stop);
            if dead_at.iter().any(|t| *t >= down && *t < restart) {
                out.push((pi, node, Time(down)));
            }
        }
    }
    out.sort_by_key(|(pi, n, t)| (*t, *pi, *n));
    out
}

/// Peers of a journal that started and did not go down after their last start, with the
/// time of their last change (own clock).
fn running_at_end(journal: &[Entry]) -> Vec<(NodeAddr, Time)> {
    let mut up = BTreeMap::new();
    for e in journal {
        match e.change {
            Change::PeerStarted { .. } => {
                up.insert(e.node, (true, e.at));
            }
            Change::Down => {
                up.insert(e.node, (false, e.at));
            }
            // Written at the journal's end, whenever the peer last did anything.
            Change::Duplicates { .. } => {}
            _ => {
                if let Some((_, last)) = up.get_mut(&e.node) {
                    *last = (*last).max(e.at);
                }
            }
        }
    }
    up.into_iter()
        .filter(|(_, (u, _))| *u)
        .map(|(n, (_, last))| (n, last))
        .collect()
}

impl Merged {
    /// The merged run's `summary.json` fields beside the outcome: `driver: "real"`, the
    /// epoch, the span from the first start to the last stop, CPU time and digests summed
    /// over the processes, and each process's folder, command, seed, span and parameters.
    pub fn summary(&self, command: &str) -> Value {
        let epoch = self.recorder.wall_offset_micros;
        let last = self
            .processes
            .iter()
            .map(|p| p.stopped_at_unix_us)
            .max()
            .unwrap_or(epoch);
        let sum = |key: &str| -> Option<f64> {
            self.processes
                .iter()
                .map(|p| p.summary.get(key).and_then(Value::as_f64))
                .sum()
        };
        let processes: Vec<Value> = self
            .processes
            .iter()
            .flat_map(|p| {
                // A merged folder merged again (a `swarm --procs N`'s, beside its seeds')
                // lists its own processes, on the new clock: the settings a replay needs
                // are theirs.
                let shift = (p.started_at_unix_us - epoch) as f64 / 1e6;
                let inner: Vec<Value> = p
                    .summary
                    .get("merged_from")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| {
                        let mut v = v.as_object()?.clone();
                        for k in ["started_at_s", "stopped_at_s", "stop_began_s"] {
                            if let Some(t) = v.get(k).and_then(Value::as_f64) {
                                v.insert(k.into(), json!(t + shift));
                            }
                        }
                        Some(Value::Object(v))
                    })
                    .collect();
                if !inner.is_empty() {
                    return inner;
                }
                let field = |k: &str| p.summary.get(k).cloned().unwrap_or(Value::Null);
                let started_at_s = (p.started_at_unix_us - epoch) as f64 / 1e6;
                // When the process began to stop, on the merged clock: what came after is
                // its teardown (a replay compares the run before it).
                let stop_began_s = p
                    .summary
                    .get("stop_began_s")
                    .and_then(Value::as_f64)
                    .map(|s| s + started_at_s);
                vec![json!({
                    "folder": p.dir.display().to_string(),
                    "command": field("command"),
                    "seed": field("seed"),
                    "started_at_unix_us": p.started_at_unix_us,
                    "started_at_s": started_at_s,
                    "stopped_at_s": (p.stopped_at_unix_us - epoch) as f64 / 1e6,
                    "stop_began_s": stop_began_s,
                    "nodes": p.nodes.len(),
                    "complete": p.summary.get("complete").and_then(Value::as_bool) != Some(false),
                    "parameters": field("parameters"),
                })]
            })
            .collect();
        let stopped: Vec<Value> = self
            .stopped
            .iter()
            .map(|(n, at)| json!({ "peer": n.to_string(), "at_s": at.secs_f64() }))
            .collect();
        json!({
            "driver": "real",
            "command": command,
            "merged_from": processes,
            "stopped_with_process": stopped,
            "started_at_unix_s": epoch as f64 / 1e6,
            "wall_time_s": last.saturating_sub(epoch) as f64 / 1e6,
            "cpu_time_s": sum("cpu_time_s"),
            "digests_computed": sum("digests_computed").map(|d| d as u64),
        })
    }

    /// Writes the merged run folder (the same files as one process's, `events.jsonl`
    /// included, so that the result can be merged again).
    pub fn write(&self, out: &Path, command: &str) -> Result<(), String> {
        if let Ok(o) = fs::canonicalize(out)
            && let Some(p) = self.processes.iter().find(|p| p.canonical == o)
        {
            return Err(format!(
                "the output folder {} is one of the folders being merged; choose another",
                p.dir.display()
            ));
        }
        write_folder(out, &self.recorder, self.summary(command))
            .map_err(|e| format!("cannot write {}: {e}", out.display()))
    }
}

#[cfg(test)]
mod tests;
