//! The simulated twin of a real run: its [`SimConfig`], the originations to schedule, and
//! where each setting came from.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::report::Change;
use sim_core::report::journal::Entry;
use sim_core::seed::{Policy, SeedConfig};
use sim_core::sim::{Addresses, Fault, Latency, RngIndices, SimConfig, Starts};
use sim_core::time::{Duration, Time};
use sim_core::topology::Topology;
use sim_core::wire::Wire;

use super::real::{FaultKind, RealRun, secs_param};

/// One setting of the twin and where it came from, for `conformance.md`.
#[derive(Clone, Debug)]
pub struct Setting {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Where it came from.
    pub source: String,
}

/// The delays measured in the real run and the latency fitted to them.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Link handshakes (µs, sorted): the second end's `NeighbourAdded` minus the first's,
    /// one message (the hello's answer) and the work around it.
    pub handshakes_us: Vec<u64>,
    /// One-hop gossip delays (µs, sorted): a receipt's time minus the time its
    /// `first_from` had the message; they include the sender's turn through all its
    /// neighbours and the receiver's digest, which the simulator does not model as latency.
    pub hops_us: Vec<u64>,
    /// The latency the twin uses.
    pub latency: Latency,
    /// How it was chosen.
    pub source: String,
}

/// The `q`-quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    sorted.get(i.min(last)).copied()
}

/// The latency of the twin: `given`, or uniform from the 5th percentile of the link
/// handshakes to as far above their median (its mean is their median), else of the one-hop
/// gossip delays, else 1 ms.
///
/// A joining peer's dials follow one another, and the twin's must take as long as the real
/// ones for the overlay to grow in the same order: the mean decides how long a chain of
/// dials takes. Real handshakes have a long tail (a busy process answers late); a uniform up
/// to their 95th percentile had twice their typical delay as its mean, and in a lab of 100
/// peers a late joiner refused by 78 full peers was still dialling when the next peer came,
/// in the twin only, and the two linked differently.
pub fn measure(real: &RealRun, given: Option<Latency>) -> Measured {
    let handshakes_us = handshake_delays(&real.entries);
    let hops_us = hop_delays(&real.entries);
    let fit = |d: &[u64], what: &str| -> Option<(Latency, String)> {
        let (lo, mid) = (quantile(d, 0.05)?.max(1), quantile(d, 0.5)?);
        let hi = (2 * mid).saturating_sub(lo).max(lo);
        Some((
            Latency::Uniform(Duration(lo), Duration(hi)),
            format!(
                "uniform from the 5th percentile of {} measured {what} to as far above their \
                 median (its mean)",
                d.len()
            ),
        ))
    };
    let (latency, source) = match given {
        Some(l) => (l, "--latency".to_owned()),
        None => fit(&handshakes_us, "link handshakes")
            .or_else(|| fit(&hops_us, "one-hop gossip delays"))
            .unwrap_or_else(|| {
                (
                    Latency::Fixed(Duration::from_millis(1)),
                    "nothing measured (no link, no receipt from a known sender): 1 ms".into(),
                )
            }),
    };
    Measured {
        handshakes_us,
        hops_us,
        latency,
        source,
    }
}

/// Link handshakes of a journal, µs, sorted: for each link both ends added, the second
/// end's `NeighbourAdded` minus the first's.
pub fn handshake_delays(entries: &[Entry]) -> Vec<u64> {
    let mut first: BTreeMap<(NodeAddr, NodeAddr), (Time, NodeAddr)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in entries {
        match &e.change {
            Change::NeighbourAdded { peer, .. } => {
                let link = (e.node.min(*peer), e.node.max(*peer));
                match first.get(&link) {
                    Some((t, by)) if *by != e.node => {
                        out.push(e.at.0.saturating_sub(t.0));
                        first.remove(&link);
                    }
                    _ => {
                        first.insert(link, (e.at, e.node));
                    }
                }
            }
            Change::NeighbourRemoved { peer, .. } => {
                first.remove(&(e.node.min(*peer), e.node.max(*peer)));
            }
            _ => {}
        }
    }
    out.sort_unstable();
    out
}

/// One-hop delays of a journal, µs, sorted: each receipt's time minus the time its
/// `first_from` had the message.
pub fn hop_delays(entries: &[Entry]) -> Vec<u64> {
    let mut had: BTreeMap<(String, NodeAddr), Time> = BTreeMap::new();
    let mut receipts = Vec::new();
    for e in entries {
        match &e.change {
            Change::Originated { message, .. } => {
                had.insert((message.identity(), e.node), e.at);
            }
            Change::Delivered {
                message,
                first_from,
            } => {
                let id = message.identity();
                receipts.push((id.clone(), *first_from, e.at));
                had.entry((id, e.node)).or_insert(e.at);
            }
            _ => {}
        }
    }
    let mut delays_us: Vec<u64> = receipts
        .into_iter()
        .filter_map(|(id, from, at)| Some(at.0.saturating_sub(had.get(&(id, from))?.0)))
        .collect();
    delays_us.sort_unstable();
    delays_us
}

/// The twin: its configuration, the originations to schedule (twin peer index, time, body),
/// and the settings table.
pub struct Twin {
    /// The simulator's configuration.
    pub cfg: SimConfig,
    /// (twin peer index, when, body).
    pub originations: Vec<(usize, Time, String)>,
    /// Every setting and its source.
    pub settings: Vec<Setting>,
    /// Faults of the real run the twin could not take, and why.
    pub skipped: Vec<String>,
}

/// Builds the twin of `real` with `latency`.
pub fn build(real: &RealRun, measured: &Measured) -> Result<Twin, String> {
    let mut settings = Vec::new();
    let mut set = |name: &str, value: String, source: &str| {
        settings.push(Setting {
            name: name.into(),
            value,
            source: source.into(),
        });
    };
    let pp = &real.peer_params;
    let peer_src = "the peers' summary.json parameters";
    let peer = peer_config(pp, real.epoch_unix_us, &mut set)?;
    let seed_node = seed_config(real, &mut set)?;
    let hash_iterations = pp
        .get("hash_iterations")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or("the peers' parameters have no hash_iterations")?;
    set("hash_iterations", hash_iterations.to_string(), peer_src);
    set("run seed", real.run_seed.to_string(), "summary.json seed");
    set(
        "addresses",
        format!("{} seeds, {} peers", real.seeds.len(), real.peers.len()),
        "the real run's (seeds in config.txt order, peers by RNG index)",
    );
    set(
        "starts",
        "each node when it first started".into(),
        "seed_started / peer_started in events.jsonl",
    );
    set(
        "RNG indices",
        format!(
            "{}; a restarted peer draws its first RNG again",
            rng_summary(real)
        ),
        "each process's numbering of its nodes; a real restart is a fresh node with the same index",
    );
    set("latency", measured.latency.to_string(), &measured.source);
    set(
        "duration",
        format!("{}", Duration(real.horizon.0)),
        "until the first process that ends the run began to stop",
    );
    let index: BTreeMap<NodeAddr, usize> = real
        .peers
        .iter()
        .enumerate()
        .map(|(i, n)| (n.addr, i))
        .collect();
    let (faults, skipped) = faults(real, &index);
    set(
        "faults",
        format!("{} as they happened", faults.len()),
        "Fault: lines of outputfile.log",
    );
    let originations = originations(real, &index);
    set(
        "originations",
        format!(
            "{} at the real times, with the real bodies (the twin's own gossip timers are off)",
            originations.len()
        ),
        "originated in events.jsonl",
    );
    let cfg = SimConfig {
        seed: real.run_seed,
        seeds: real.seeds.len(),
        peers: real.peers.len(),
        duration: Duration(real.horizon.0),
        latency: measured.latency,
        faults,
        peer,
        seed_node,
        hash_iterations,
        addresses: Some(Addresses {
            seeds: real.seeds.iter().map(|n| n.addr).collect(),
            peers: real.peers.iter().map(|n| n.addr).collect(),
        }),
        starts: Some(Starts {
            seeds: real.seeds.iter().map(|n| n.start).collect(),
            peers: real.peers.iter().map(|n| n.start).collect(),
        }),
        rng_indices: Some(RngIndices {
            seeds: real.seeds.iter().map(|n| n.rng_index).collect(),
            peers: real.peers.iter().map(|n| n.rng_index).collect(),
            first_incarnation_on_restart: true,
        }),
        ..SimConfig::default()
    };
    cfg.validate()
        .map_err(|e| format!("the twin is not a valid simulation: {e}"))?;
    Ok(Twin {
        cfg,
        originations,
        settings,
        skipped,
    })
}

fn rng_summary(real: &RealRun) -> String {
    let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kinds = Vec::new();
    for n in real.seeds.iter().chain(&real.peers) {
        // The rule without its numbers: "place K in config.txt".
        let mut kind = String::new();
        for c in n.rng_source.chars() {
            if c.is_ascii_digit() {
                if !kind.ends_with('K') {
                    kind.push('K');
                }
            } else {
                kind.push(c);
            }
        }
        kinds.push(kind);
    }
    for k in &kinds {
        *sources.entry(k.as_str()).or_default() += 1;
    }
    sources
        .iter()
        .map(|(k, n)| format!("{n} by {k}"))
        .collect::<Vec<_>>()
        .join("; ")
}

type Set<'a> = dyn FnMut(&str, String, &str) + 'a;

fn peer_config(
    pp: &Map<String, Value>,
    epoch: u64,
    set: &mut Set<'_>,
) -> Result<PeerConfig, String> {
    let src = "the peers' summary.json parameters";
    let dflt = "not recorded by this run: the default";
    let mut cfg = PeerConfig {
        gossip_count: 0,
        wall_offset_micros: epoch,
        ..PeerConfig::default()
    };
    let dur =
        |key: &str, name: &str, slot: &mut Duration, set: &mut Set<'_>| match secs_param(pp, key) {
            Some(d) => {
                *slot = d;
                set(name, d.to_string(), src);
            }
            None => set(name, slot.to_string(), dflt),
        };
    dur(
        "gossip_interval_s",
        "gossip interval",
        &mut cfg.gossip_interval,
        set,
    );
    dur(
        "liveness_interval_s",
        "liveness interval",
        &mut cfg.liveness_interval,
        set,
    );
    dur(
        "handshake_timeout_s",
        "peer handshake timeout",
        &mut cfg.handshake_timeout,
        set,
    );
    dur("seed_retry_s", "seed retry", &mut cfg.seed_retry, set);
    dur("seen_ttl_s", "seen-set lifetime", &mut cfg.seen_ttl, set);
    let num = |key: &str| {
        pp.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    match num("misses") {
        Some(m) => {
            cfg.misses_max = m;
            set("misses", m.to_string(), src);
        }
        None => set("misses", cfg.misses_max.to_string(), dflt),
    }
    if let Some(b) = num("bad_frames_max") {
        cfg.bad_frames_max = b;
    }
    let topology = pp
        .get("topology")
        .and_then(Value::as_str)
        .ok_or("the peers' parameters have no topology")?;
    cfg.topology = parse_topology(topology)?;
    set("topology", topology.to_owned(), src);
    match pp.get("wire").and_then(Value::as_str) {
        Some(w) => {
            cfg.wire = w.parse::<Wire>()?;
            set("wire", w.to_owned(), src);
        }
        None => set("wire", cfg.wire.to_string(), dflt),
    }
    set(
        "gossip count",
        "0 (originations scheduled from the journal)".into(),
        "the replay",
    );
    set(
        "wall clock offset",
        format!("{epoch} µs (the run's epoch)"),
        "events.jsonl header: message identities match the real ones",
    );
    Ok(cfg)
}

/// A topology as `summary.json` writes it (`capacity(base=40,ratio=1.5,step=10)`,
/// `uniform(k=3)`, `preferential(m=3)`) or as a flag takes it.
pub fn parse_topology(text: &str) -> Result<Topology, String> {
    let Some((name, rest)) = text.split_once('(') else {
        return text.parse();
    };
    let args: Vec<&str> = rest
        .trim_end_matches(')')
        .split(',')
        .map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v).trim())
        .collect();
    format!("{name}:{}", args.join(",")).parse()
}

fn seed_config(real: &RealRun, set: &mut Set<'_>) -> Result<SeedConfig, String> {
    let mut cfg = SeedConfig {
        wall_offset_micros: real.epoch_unix_us,
        ..SeedConfig::default()
    };
    let Some(sp) = &real.seed_params else {
        set(
            "seeds' policies",
            format!("removal {}, admission {}", cfg.removal, cfg.admission),
            "no seeds' folder merged: the defaults",
        );
        return Ok(cfg);
    };
    let src = "the seeds' summary.json parameters";
    if let Some(n) = sp.get("peer_list_max").and_then(Value::as_u64) {
        cfg.peer_list_max = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = sp
        .get("bad_frames_max")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
    {
        cfg.bad_frames_max = n;
    }
    for (key, slot) in [
        ("handshake_timeout_s", &mut cfg.handshake_timeout),
        ("idle_timeout_s", &mut cfg.idle_timeout),
        ("probe_timeout_s", &mut cfg.probe_timeout),
    ] {
        if let Some(d) = secs_param(sp, key) {
            *slot = d;
        }
    }
    if let Some(t) = sp.get("trust_advertised_ip").and_then(Value::as_bool) {
        cfg.trust_advertised_ip = t;
    }
    if let Some(w) = sp.get("wire").and_then(Value::as_str) {
        cfg.wire = w.parse::<Wire>()?;
    }
    let cmd = real.seed_command.as_ref();
    let policy = |key: &str, flag: &str| -> Result<(Policy, &'static str), String> {
        if let Some(p) = sp.get(key).and_then(Value::as_str) {
            return Ok((p.parse()?, src));
        }
        match cmd.and_then(|c| c.flag(flag)) {
            Some(p) => Ok((p.parse()?, "the seeds' command line")),
            None => Ok((Policy::Verify, "not recorded: the default")),
        }
    };
    let (removal, rs) = policy("removal", "--removal")?;
    let (admission, adm) = policy("admission", "--admission")?;
    cfg.removal = removal;
    cfg.admission = admission;
    set("seeds' removal", removal.to_string(), rs);
    set("seeds' admission", admission.to_string(), adm);
    set("seed peer-list limit", cfg.peer_list_max.to_string(), src);
    Ok(cfg)
}

/// The real faults as simulator faults (peer indices the twin's), and what could not be.
fn faults(real: &RealRun, index: &BTreeMap<NodeAddr, usize>) -> (Vec<Fault>, Vec<String>) {
    let seeds: Vec<NodeAddr> = real.seeds.iter().map(|n| n.addr).collect();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let horizon = real.horizon;
    for (k, f) in real.faults.iter().enumerate() {
        if f.at > horizon {
            continue;
        }
        let peer = |a: &NodeAddr| index.get(a).copied();
        let at = f.at;
        let fault = match &f.kind {
            FaultKind::Crash(a) | FaultKind::Stopped(a) => match peer(a) {
                Some(p) => Some(Fault::Crash { peer: p, at }),
                None => seeds
                    .iter()
                    .position(|s| s == a)
                    .map(|seed| Fault::SeedCrash { seed, at }),
            },
            FaultKind::Silent(a) => peer(a).map(|p| Fault::SilentFail { peer: p, at }),
            FaultKind::Restart(a) => peer(a).map(|p| Fault::Restart { peer: p, at }),
            FaultKind::Reset(a) => peer(a).map(|p| Fault::Reset { peer: p, at }),
            FaultKind::PartitionStarted(text) => {
                let end = real.faults[k + 1..]
                    .iter()
                    .find(|g| g.kind == FaultKind::PartitionHealed(text.clone()))
                    .map_or(horizon + Duration::from_secs(1), |g| {
                        g.at.max(at + Duration(1))
                    });
                match partition_groups(text, real) {
                    Ok((a, b)) => Some(Fault::Partition {
                        a,
                        b,
                        start: at,
                        end,
                    }),
                    Err(e) => {
                        skipped.push(format!("{text}: {e}"));
                        continue;
                    }
                }
            }
            FaultKind::PartitionHealed(_) => continue,
        };
        match fault {
            Some(f) => out.push(f),
            None => skipped.push(format!(
                "{} at {:.6} s: the node is not in the twin (its process wrote no folder)",
                f.kind,
                f.at.secs_f64()
            )),
        }
    }
    // The simulator applies faults in the order of their times (equal times in this order).
    out.sort_by_key(Fault::at);
    (out, skipped)
}

/// The twin's peer ranges of a partition's text (`partition 0-49|50-99@...`). The text
/// numbers peers as the run did (a swarm's peer index, which is its RNG index); the twin
/// orders its peers by RNG index, so the ranges are the twin's own.
fn partition_groups(
    text: &str,
    real: &RealRun,
) -> Result<(core::ops::Range<usize>, core::ops::Range<usize>), String> {
    let spec = text.strip_prefix("partition ").unwrap_or(text);
    let Fault::Partition { a, b, .. } = Fault::parse_partition(spec)? else {
        return Err("not a partition".into());
    };
    let n = real.peers.len();
    for r in [&a, &b] {
        if r.end > n {
            return Err(format!("names peer {} of {n}", r.end - 1));
        }
    }
    Ok((a, b))
}

/// Every origination of the journal up to the horizon, for the twin's peer index.
fn originations(real: &RealRun, index: &BTreeMap<NodeAddr, usize>) -> Vec<(usize, Time, String)> {
    real.entries
        .iter()
        .filter(|e| e.at <= real.horizon)
        .filter_map(|e| match &e.change {
            Change::Originated { message, .. } => {
                Some((*index.get(&e.node)?, e.at, message.body.clone()))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topology_reads_back_from_its_summary_form() {
        for t in [
            "capacity",
            "capacity:16,1,10",
            "uniform:4",
            "preferential:2",
        ] {
            let topo: Topology = t.parse().expect("a topology");
            assert_eq!(parse_topology(&topo.to_string()), Ok(topo), "{t}");
        }
    }
}
