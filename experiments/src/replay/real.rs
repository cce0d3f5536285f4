//! Reading a real run folder for its twin: the journal on the run's clock, the processes
//! that wrote it, their settings, each node's start and RNG index, and the faults as they
//! happened (`Fault: ...` lines of `outputfile.log`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sim_core::addr::NodeAddr;
use sim_core::report::journal::Entry;
use sim_core::report::{Change, merge};
use sim_core::time::{Duration, Time};

/// One process of the real run (a `gossipnet seeds`, `swarm`, `peer` ... of the merge).
#[derive(Clone, Debug)]
pub struct ProcessInfo {
    /// Its command line.
    pub command: String,
    /// Its `summary.json` parameters.
    pub params: Map<String, Value>,
    /// Its run seed.
    pub seed: Option<u64>,
    /// When it started, on the run's clock.
    pub started_at: Time,
    /// When it began to stop (or stopped, where the folder does not say), on the run's clock.
    pub stop_began: Time,
    /// It ended the run: false for a process killed outright (its flight recorder's folder,
    /// `"complete": false`), whose end is a fault of the run, not the run's end.
    pub complete: bool,
}

impl ProcessInfo {
    /// The gossipnet subcommand it ran (`seeds`, `swarm`, `peer` ...).
    pub fn subcommand(&self) -> &str {
        let words: Vec<&str> = self.command.split_whitespace().collect();
        words
            .iter()
            .find(|w| {
                matches!(
                    **w,
                    "seed" | "seeds" | "peer" | "swarm" | "lab" | "merge" | "replay"
                )
            })
            .copied()
            .unwrap_or("")
    }

    /// The value of `--flag VALUE` (or `--flag=VALUE`) on its command line, the last one.
    pub fn flag(&self, flag: &str) -> Option<String> {
        let words: Vec<&str> = self.command.split_whitespace().collect();
        let mut found = None;
        for (i, w) in words.iter().enumerate() {
            if *w == flag {
                found = words.get(i + 1).map(|v| (*v).to_owned());
            } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                found = Some(v.to_owned());
            }
        }
        found
    }

    /// Where a one-node process listened: `--listen IP:PORT`, or `--port P` on loopback.
    fn listen(&self) -> Option<NodeAddr> {
        if let Some(l) = self.flag("--listen") {
            return l.parse().ok();
        }
        let port: u16 = self.flag("--port")?.parse().ok()?;
        Some(NodeAddr::new(std::net::Ipv4Addr::LOCALHOST, port))
    }

    /// Addresses listed under `key` in its parameters (`seed_addrs`, `peer_addrs`).
    fn addrs(&self, key: &str) -> Option<Vec<NodeAddr>> {
        let list = self.params.get(key)?.as_array()?;
        list.iter()
            .map(|v| v.as_str().and_then(|s| s.parse().ok()))
            .collect()
    }
}

/// A fault as the real run recorded it.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// `Fault: ADDR crashed`.
    Crash(NodeAddr),
    /// `Fault: ADDR failed silently`.
    Silent(NodeAddr),
    /// `Fault: ADDR restarted`.
    Restart(NodeAddr),
    /// `Fault: ADDR's connections were reset`.
    Reset(NodeAddr),
    /// `Fault: ADDR stopped with its process` (a merge's finding).
    Stopped(NodeAddr),
    /// `Fault: partition A-B|C-D@S..E started` (the text after `Fault: `, without the verb).
    PartitionStarted(String),
    /// `... healed`.
    PartitionHealed(String),
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Crash(a) => write!(f, "{a} crashed"),
            FaultKind::Silent(a) => write!(f, "{a} failed silently"),
            FaultKind::Restart(a) => write!(f, "{a} restarted"),
            FaultKind::Reset(a) => write!(f, "{a}'s connections were reset"),
            FaultKind::Stopped(a) => write!(f, "{a} stopped with its process"),
            FaultKind::PartitionStarted(p) => write!(f, "{p} started"),
            FaultKind::PartitionHealed(p) => write!(f, "{p} healed"),
        }
    }
}

/// One fault, when it happened on the run's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct RealFault {
    /// When.
    pub at: Time,
    /// What.
    pub kind: FaultKind,
}

/// A node of the real run, as the twin needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// Its listening address.
    pub addr: NodeAddr,
    /// When it first started, on the run's clock.
    pub start: Time,
    /// Where the start came from.
    pub start_source: String,
    /// The index its RNG derives from.
    pub rng_index: u64,
    /// Where the index came from.
    pub rng_source: String,
}

/// A real run folder, read.
#[derive(Clone, Debug)]
pub struct RealRun {
    /// The folder.
    pub dir: PathBuf,
    /// UNIX µs of the run's clock epoch (the earliest process's start).
    pub epoch_unix_us: u64,
    /// The run seed.
    pub run_seed: u64,
    /// The journal, on the run's clock.
    pub entries: Vec<Entry>,
    /// The faults, in the order recorded.
    pub faults: Vec<RealFault>,
    /// The processes whose folders made it.
    pub processes: Vec<ProcessInfo>,
    /// Where the comparison ends: when the first process that ends the run began to stop
    /// (what comes after is its teardown: a seed sees every peer's connection close).
    pub horizon: Time,
    /// Seeds in `config.txt` order.
    pub seeds: Vec<NodeInfo>,
    /// Peers, by RNG index.
    pub peers: Vec<NodeInfo>,
    /// The parameters of the peers' process (the first with peer settings).
    pub peer_params: Map<String, Value>,
    /// The parameters of the seeds' process, if one was merged.
    pub seed_params: Option<Map<String, Value>>,
    /// The command of the seeds' process, if one was merged.
    pub seed_command: Option<ProcessInfo>,
    /// The largest loop lag any process measured, ms.
    pub loop_lag_max_ms: f64,
    /// Things worth saying about how the run was read.
    pub notes: Vec<String>,
}

/// Reads `dir`: one real process's folder or a merged one. The error says what is wrong
/// with the folder (missing, simulated, no journal, unreadable files).
pub fn read(dir: &Path) -> Result<RealRun, String> {
    let p = merge::read_process(dir)?;
    let summary = p.summary();
    let epoch = p.started_at_unix_us;
    let mut entries = p.journal().to_vec();
    let processes = processes(summary)?;
    let mut notes = Vec::new();
    let run_seed = run_seed(&processes, &mut notes)?;
    let faults = faults(p.log(), epoch);
    if entries
        .iter()
        .all(|e| !matches!(e.change, Change::PeerStarted { .. }))
    {
        return Err(format!(
            "{}: its events.jsonl has no peer: give the folder of a swarm or peers, or a \
             merged one (a seeds folder alone has nothing to replay)",
            dir.display()
        ));
    }
    let stopped: BTreeSet<NodeAddr> = summary
        .get("stopped_with_process")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("peer")?.as_str()?.parse().ok())
        .collect();
    let horizon = horizon(&processes, &stopped, &entries);
    // A journal's duplicate counts are written at its end, whatever the horizon.
    entries.retain(|e| !matches!(e.change, Change::Duplicates { .. }));
    // A peers' process (swarm, peer) first: a lab's own summary may hold settings too.
    let has_peers = |p: &&ProcessInfo| p.params.contains_key("gossip_interval_s");
    let peer_params = processes
        .iter()
        .filter(has_peers)
        .find(|p| matches!(p.subcommand(), "swarm" | "peer"))
        .or_else(|| processes.iter().find(has_peers))
        .map(|p| p.params.clone())
        .ok_or_else(|| {
            format!(
                "{}: no process of the run has peer settings (gossip_interval_s in its \
                 summary.json parameters)",
                dir.display()
            )
        })?;
    let seed_proc = processes
        .iter()
        .find(|p| matches!(p.subcommand(), "seeds" | "seed"))
        .cloned();
    let seeds = seed_nodes(&processes, &peer_params, &entries, &mut notes);
    let peers = peer_nodes(&processes, &entries, &mut notes);
    let silent: BTreeSet<NodeAddr> = faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Silent(a) => Some(a),
            _ => None,
        })
        .collect();
    let loop_lag_max_ms = loop_lag(summary, dir, &silent);
    Ok(RealRun {
        dir: dir.to_path_buf(),
        epoch_unix_us: epoch,
        run_seed,
        entries,
        faults,
        horizon,
        seeds,
        peers,
        peer_params,
        seed_params: seed_proc.as_ref().map(|p| p.params.clone()),
        seed_command: seed_proc,
        processes,
        loop_lag_max_ms,
        notes,
    })
}

/// The processes of the folder: `merged_from`, or the folder's own process.
fn processes(summary: &Map<String, Value>) -> Result<Vec<ProcessInfo>, String> {
    let secs = |v: Option<&Value>| v.and_then(Value::as_f64).filter(|s| s.is_finite());
    let at = |s: f64| Time((s.max(0.0) * 1e6).round() as u64);
    let info = |m: &Map<String, Value>, started: f64| -> ProcessInfo {
        let stop = secs(m.get("stop_began_s"))
            .or_else(|| secs(m.get("stopped_at_s")))
            .or_else(|| secs(m.get("wall_time_s")).map(|w| w + started))
            .unwrap_or(f64::MAX / 4.0);
        ProcessInfo {
            command: m
                .get("command")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            params: m
                .get("parameters")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            seed: m.get("seed").and_then(Value::as_u64),
            started_at: at(started),
            stop_began: at(stop),
            complete: m.get("complete").and_then(Value::as_bool) != Some(false),
        }
    };
    match summary.get("merged_from").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|v| {
                let m = v
                    .as_object()
                    .ok_or("summary.json: merged_from holds a non-object")?;
                let started = secs(m.get("started_at_s")).unwrap_or(0.0);
                Ok(info(m, started))
            })
            .collect(),
        None => Ok(vec![info(summary, 0.0)]),
    }
}

fn run_seed(processes: &[ProcessInfo], notes: &mut Vec<String>) -> Result<u64, String> {
    let seeds: BTreeSet<u64> = processes.iter().filter_map(|p| p.seed).collect();
    let peers_seed = processes
        .iter()
        .find(|p| p.params.contains_key("gossip_interval_s"))
        .and_then(|p| p.seed);
    if seeds.len() > 1 {
        notes.push(format!(
            "the processes ran with different run seeds ({seeds:?}); the twin takes the peers' \
             ({}) and each node draws as its own process did only where the seeds agree",
            peers_seed.unwrap_or_default()
        ));
    }
    peers_seed
        .or_else(|| seeds.first().copied())
        .ok_or_else(|| "summary.json has no run seed".to_owned())
}

/// The fault lines of `outputfile.log` (`STAMP:Fault: ...`), on the run's clock.
fn faults(log: &[(u64, String)], epoch: u64) -> Vec<RealFault> {
    let mut out = Vec::new();
    for (us, line) in log {
        let Some((_, text)) = line.split_once(":Fault: ") else {
            continue;
        };
        let at = Time(us.saturating_sub(epoch));
        if let Some(kind) = parse_fault(text) {
            out.push(RealFault { at, kind });
        }
    }
    out
}

/// `ADDR crashed`, `partition ... started` ...: what the fault text says.
pub fn parse_fault(text: &str) -> Option<FaultKind> {
    let text = text.trim_end();
    if let Some(p) = text.strip_suffix(" started")
        && p.starts_with("partition ")
    {
        return Some(FaultKind::PartitionStarted(p.to_owned()));
    }
    if let Some(p) = text.strip_suffix(" healed")
        && p.starts_with("partition ")
    {
        return Some(FaultKind::PartitionHealed(p.to_owned()));
    }
    if let Some(a) = text.strip_suffix("'s connections were reset") {
        return a.parse().ok().map(FaultKind::Reset);
    }
    let (addr, what) = text.split_once(' ')?;
    let addr: NodeAddr = addr.parse().ok()?;
    match what {
        "crashed" => Some(FaultKind::Crash(addr)),
        "failed silently" => Some(FaultKind::Silent(addr)),
        "restarted" => Some(FaultKind::Restart(addr)),
        "stopped with its process" => Some(FaultKind::Stopped(addr)),
        _ => None,
    }
}

/// When the comparison ends: the earliest stop of a process that ends the run, that is of
/// one whose nodes were not all recorded down before it stopped (a peer stopped alone with
/// Ctrl-C, or killed, and found dead by the others is a fault of the run, not its end).
fn horizon(processes: &[ProcessInfo], stopped: &BTreeSet<NodeAddr>, entries: &[Entry]) -> Time {
    let mut down: BTreeMap<NodeAddr, Time> = BTreeMap::new();
    for e in entries {
        match e.change {
            Change::Down => {
                down.insert(e.node, e.at);
            }
            Change::PeerStarted { .. } | Change::SeedStarted => {
                down.remove(&e.node);
            }
            _ => {}
        }
    }
    let nodes = |p: &ProcessInfo| -> Option<Vec<NodeAddr>> {
        let mut all = p.addrs("peer_addrs").unwrap_or_default();
        all.extend(p.addrs("seed_addrs").unwrap_or_default());
        if all.is_empty() && p.subcommand() == "peer" {
            let port: u16 = p.flag("--port")?.parse().ok()?;
            all = entries
                .iter()
                .filter(|e| e.node.port == port && matches!(e.change, Change::PeerStarted { .. }))
                .map(|e| e.node)
                .take(1)
                .collect();
        }
        (!all.is_empty()).then_some(all)
    };
    let ends_run = |p: &ProcessInfo| match nodes(p) {
        _ if !p.complete => false,
        None => true,
        Some(ns) => !ns
            .iter()
            .all(|n| stopped.contains(n) || down.get(n).is_some_and(|d| *d <= p.stop_began)),
    };
    processes
        .iter()
        .filter(|p| ends_run(p))
        .map(|p| p.stop_began)
        .min()
        .or_else(|| processes.iter().map(|p| p.stop_began).max())
        .unwrap_or(Time::ZERO)
}

/// The largest loop lag of the run's processes, but for a process whose every node failed
/// silently: a lab stops such a process (`SIGSTOP`) until the end, and its loop, let go,
/// measures that pause as lag, which is the fault, not an overload.
fn loop_lag(summary: &Map<String, Value>, dir: &Path, silent: &BTreeSet<NodeAddr>) -> f64 {
    let own = summary.get("loop_lag_max_ms").and_then(Value::as_f64);
    // A merged folder does not carry its processes' lags: read their folders where they are.
    let parts = summary
        .get("merged_from")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("folder")?.as_str())
        .filter_map(|f| {
            let path = Path::new(f);
            let path = if path.is_absolute() || path.is_dir() {
                path.to_path_buf()
            } else {
                dir.join(path)
            };
            let text = std::fs::read_to_string(path.join("summary.json")).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            let nodes: Vec<NodeAddr> = v
                .pointer("/parameters/peer_addrs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str()?.parse().ok())
                .collect();
            if !nodes.is_empty() && nodes.iter().all(|n| silent.contains(n)) {
                return None;
            }
            v.get("loop_lag_max_ms")?.as_f64()
        });
    own.into_iter().chain(parts).fold(0.0, f64::max)
}

/// First start of each node of `kind` in the journal.
fn first_starts(entries: &[Entry], seed: bool) -> BTreeMap<NodeAddr, Time> {
    let mut out = BTreeMap::new();
    for e in entries {
        let hit = match e.change {
            Change::SeedStarted => seed,
            Change::PeerStarted { .. } => !seed,
            _ => false,
        };
        if hit {
            out.entry(e.node).or_insert(e.at);
        }
    }
    out
}

/// The seeds: `config.txt`'s order from the peers' settings, each with its start (its
/// `SeedStarted`, or the run's start when the seeds' folder was not merged) and RNG index
/// (its place in its own process: `seed_addrs`, else `config.txt`'s order for `seeds`, 0
/// for a lone `seed`).
fn seed_nodes(
    processes: &[ProcessInfo],
    peer_params: &Map<String, Value>,
    entries: &[Entry],
    notes: &mut Vec<String>,
) -> Vec<NodeInfo> {
    let starts = first_starts(entries, true);
    // config.txt's order, as a peers' process lists it.
    let listed = std::iter::once(peer_params)
        .chain(processes.iter().map(|p| &p.params))
        .find_map(|m| m.get("seeds")?.as_array());
    let mut order: Vec<NodeAddr> = listed
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    for s in starts.keys() {
        if !order.contains(s) {
            order.push(*s);
        }
    }
    if starts.is_empty() {
        notes.push(
            "no seed's events are in the folder (the seeds' folder was not merged): the twin \
             starts the seeds at the run's start, and removals by seeds are not compared"
                .into(),
        );
    }
    order
        .iter()
        .enumerate()
        .map(|(j, addr)| {
            let own = processes.iter().find_map(|p| {
                let list = p.addrs("seed_addrs")?;
                let k = list.iter().position(|a| a == addr)?;
                // A process of this gossipnet records its first index (`seed --index`);
                // an older one drew from seed 0 on.
                Some(match p.params.get("first_index").and_then(Value::as_u64) {
                    Some(f) => (
                        f + k as u64,
                        format!("first_index + place {k} in its process's seed_addrs"),
                    ),
                    None => (k as u64, format!("place {k} in its process's seed_addrs")),
                })
            });
            let lone = processes
                .iter()
                .any(|p| p.subcommand() == "seed" && p.listen().is_none_or(|l| l == *addr));
            let (rng_index, rng_source) = own.unwrap_or_else(|| {
                if lone {
                    (0, "a lone `gossipnet seed` process (index 0)".into())
                } else {
                    (
                        j as u64,
                        format!("place {j} in config.txt (as `gossipnet seeds`)"),
                    )
                }
            });
            let (start, start_source) = match starts.get(addr) {
                Some(t) => (*t, "its seed_started in events.jsonl".to_owned()),
                None => (Time::ZERO, "not journaled: the run's start".to_owned()),
            };
            NodeInfo {
                addr: *addr,
                start,
                start_source,
                rng_index,
                rng_source,
            }
        })
        .collect()
}

/// The peers, by RNG index: every peer that started in the journal (its first start), and
/// every peer the others name without its own events (its process wrote no folder), at the
/// first mention. RNG index: `first_index + k` of its process's `peer_addrs`; else, in a
/// folder of one process, its place in the order of starts plus `--first-index`; else its
/// port for a `gossipnet peer` process; else its place among all starts.
fn peer_nodes(
    processes: &[ProcessInfo],
    entries: &[Entry],
    notes: &mut Vec<String>,
) -> Vec<NodeInfo> {
    let starts = first_starts(entries, false);
    let seeds: BTreeSet<NodeAddr> = first_starts(entries, true).into_keys().collect();
    let mut mentioned: BTreeMap<NodeAddr, Time> = BTreeMap::new();
    for e in entries {
        let named = match &e.change {
            Change::NeighbourAdded { peer, .. } | Change::DeclaredDead { peer } => Some(*peer),
            Change::Delivered { first_from, .. } => Some(*first_from),
            Change::RemovedBySeed { dead } => Some(*dead),
            Change::PeerRegistered { peer } => Some(*peer),
            _ => None,
        };
        if let Some(p) = named.filter(|p| !starts.contains_key(p) && !seeds.contains(p)) {
            mentioned.entry(p).or_insert(e.at);
        }
    }
    if !mentioned.is_empty() {
        notes.push(format!(
            "{} peers appear only in others' events (their process wrote no folder): the twin \
             starts each at its first mention and cannot originate their messages: {}",
            mentioned.len(),
            mentioned
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut by_start: Vec<(Time, NodeAddr)> = starts.iter().map(|(a, t)| (*t, *a)).collect();
    by_start.sort();
    let single = processes.len() == 1;
    let first_index = |p: &ProcessInfo| -> u64 {
        p.params
            .get("first_index")
            .and_then(Value::as_u64)
            .or_else(|| p.flag("--first-index")?.parse().ok())
            .or_else(|| p.flag("--index")?.parse().ok())
            .unwrap_or(0)
    };
    let peer_proc = processes
        .iter()
        .find(|p| p.params.contains_key("gossip_interval_s"));
    let mut out: Vec<NodeInfo> = Vec::new();
    for (rank, (t, addr)) in by_start.iter().enumerate() {
        let listed = processes.iter().find_map(|p| {
            let k = p.addrs("peer_addrs")?.iter().position(|a| a == addr)?;
            let i = first_index(p) + k as u64;
            Some((
                i,
                format!("first_index + place {k} in its process's peer_addrs"),
            ))
        });
        // A `gossipnet peer` process of its own (a lab's): --index, else its port.
        let own = || {
            processes.iter().find_map(|p| {
                if p.subcommand() != "peer" || p.listen() != Some(*addr) {
                    return None;
                }
                Some(match p.flag("--index").and_then(|i| i.parse().ok()) {
                    Some(i) => (i, "--index of its own `gossipnet peer`".to_owned()),
                    None => (
                        u64::from(addr.port),
                        "its port (its own `gossipnet peer`)".to_owned(),
                    ),
                })
            })
        };
        let listed = listed.or_else(own);
        let (rng_index, rng_source) = listed.unwrap_or_else(|| match peer_proc {
            Some(p) if single && p.subcommand() == "peer" => (
                u64::from(addr.port),
                "its port (a lone `gossipnet peer`)".into(),
            ),
            Some(p) if single => (
                first_index(p) + rank as u64,
                format!("place {rank} in the order of starts (+ --first-index)"),
            ),
            _ => (
                rank as u64,
                format!("place {rank} in the order of starts (guessed)"),
            ),
        });
        out.push(NodeInfo {
            addr: *addr,
            start: *t,
            start_source: "its first peer_started in events.jsonl".into(),
            rng_index,
            rng_source,
        });
    }
    let next = out.iter().map(|n| n.rng_index + 1).max().unwrap_or(0);
    for (rng_index, (addr, t)) in (next..).zip(mentioned) {
        out.push(NodeInfo {
            addr,
            start: t,
            start_source: "not journaled: its first mention by another node".into(),
            rng_index,
            rng_source: "unknown (its process wrote no folder)".into(),
        });
    }
    out.sort_by_key(|n| (n.rng_index, n.addr));
    out
}

/// Seconds as a [`Duration`], from a parameter.
pub fn secs_param(params: &Map<String, Value>, key: &str) -> Option<Duration> {
    params
        .get(key)
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration((s * 1e6).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lines_read_as_their_kinds() {
        let a: NodeAddr = "127.0.0.1:5001".parse().expect("an address");
        assert_eq!(
            parse_fault("127.0.0.1:5001 crashed"),
            Some(FaultKind::Crash(a))
        );
        assert_eq!(
            parse_fault("127.0.0.1:5001 failed silently"),
            Some(FaultKind::Silent(a))
        );
        assert_eq!(
            parse_fault("127.0.0.1:5001's connections were reset"),
            Some(FaultKind::Reset(a))
        );
        assert_eq!(
            parse_fault("127.0.0.1:5001 stopped with its process"),
            Some(FaultKind::Stopped(a))
        );
        assert_eq!(
            parse_fault("partition 0-9|10-19@14s..19s started"),
            Some(FaultKind::PartitionStarted(
                "partition 0-9|10-19@14s..19s".into()
            ))
        );
        assert_eq!(parse_fault("127.0.0.1:5001 exploded"), None);
        assert_eq!(parse_fault("nonsense"), None);
    }
}
