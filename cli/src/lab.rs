//! `gossipnet lab`: the arguments, the scenario, the flags each process gets, Ctrl-C, and
//! the merge at the end; the lab itself is `net_real::lab`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};

use clap::{ArgMatches, Args};
use net_real::lab::{LabOptions, cleanup_stale, preflight};
use serde_json::json;
use sim_core::time::Duration;
use sim_core::topology::Topology;

use super::{MergeArgs, ProtocolArgs, RealArgs, real_scenario, row, typed_in};

/// `gossipnet lab`'s arguments.
#[derive(Args)]
pub struct LabArgs {
    /// Take the run, network, protocol, message and fault settings of this scenario file
    /// (README, "Scenarios"); every flag typed overrides it. Its faults are done for real.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Number of peers (a process and a namespace each).
    #[arg(long, default_value_t = 40)]
    peers: usize,
    /// Number of seeds (a process and a namespace each).
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Peer i starts at (i + 1) x this.
    #[arg(long, default_value = "100ms")]
    join_interval: Duration,
    /// Do not draw the figures of the merged folder.
    #[arg(long)]
    no_plot: bool,
    /// Remove what labs whose process is gone left behind (namespaces, their veths, bridge
    /// and routes, their processes, state files), and do nothing else.
    #[arg(long, exclusive = true)]
    cleanup: bool,
    #[command(flatten)]
    protocol: ProtocolArgs,
    #[command(flatten)]
    real: RealArgs,
}

/// `gossipnet lab`.
pub fn lab(a: &mut LabArgs, matches: Option<&ArgMatches>) -> Result<(), String> {
    let tools = preflight()?;
    if a.cleanup {
        return cleanup(&tools);
    }
    let mut faults = Vec::new();
    if let Some(file) = a.scenario.clone() {
        let loaded = experiments::scenario::load(&file).map_err(|e| e.to_string())?;
        let typed = typed_in(matches);
        real_scenario(&loaded, &mut a.real, Some(&mut a.protocol), &typed);
        let (s, c) = (&loaded.scenario, &loaded.config);
        let take = |present: bool, id: &str| present && !typed(id);
        if take(s.network.peers.is_some(), "peers") {
            a.peers = c.peers;
        }
        if take(s.network.join_interval.is_some(), "join_interval") {
            a.join_interval = c.join_interval;
        }
        if take(s.network.seeds.is_some(), "seeds") {
            a.seeds = c.seeds;
        }
        if s.run.processing.is_some() {
            eprintln!(
                "gossipnet lab: {}: not used by a lab: [run] processing (real processes spend \
                 what they spend)",
                file.display()
            );
        }
        faults = c.faults.clone();
    }
    // The protocol's checks, as every real command makes them.
    crate::real::peer_config(&a.protocol, &a.real)?;
    if a.real.hash_iterations == 0 {
        return Err("--hash-iterations must be at least 1".into());
    }
    let run_seed = a.real.seed.unwrap_or_else(crate::real::fresh_seed);
    let out = a.real.out.clone().unwrap_or_else(|| "results/lab".into());
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out = std::fs::canonicalize(&out)
        .map_err(|e| format!("cannot resolve {}: {e}", out.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let parameters = json!({
        "seeds": a.seeds,
        "peers": a.peers,
        "join_interval_s": a.join_interval.secs_f64(),
        "gossip_interval_s": a.protocol.gossip_interval.secs_f64(),
        "gossip_count": a.protocol.gossip_count,
        "liveness_interval_s": a.protocol.liveness_interval.secs_f64(),
        "misses": a.protocol.misses,
        "hash_iterations": a.real.hash_iterations,
        "topology": a.protocol.topology.to_string(),
        "latency": a.real.latency.map(|l| l.to_string()),
        "faults": faults.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    println!(
        "gossipnet lab: {} seeds and {} peers, each a process in a network namespace of its \
         own; run seed {run_seed}, {} digest iterations, {}; output {}",
        a.seeds,
        a.peers,
        a.real.hash_iterations,
        match a.real.duration {
            Some(d) => format!("for {d}"),
            None => "until Ctrl-C".into(),
        },
        out.display()
    );
    for f in &faults {
        println!("  fault planned: {f}");
    }
    let opts = LabOptions {
        exe,
        out: out.clone(),
        seeds: a.seeds,
        peers: a.peers,
        duration: a
            .real
            .duration
            .map(|d| std::time::Duration::from_micros(d.0)),
        join_interval: std::time::Duration::from_micros(a.join_interval.0),
        faults,
        latency: a.real.latency,
        seed_args: seed_args(&a.real, run_seed),
        peer_args: peer_args(&a.protocol, &a.real, run_seed),
        command,
        run_seed,
        parameters,
        stop: stop_on_ctrl_c()?,
    };
    let report = net_real::lab::run(&opts, &tools)?;
    for l in &report.lost {
        println!("  {l}");
    }
    crate::merge(&MergeArgs {
        dirs: report.folders,
        out,
        no_plot: a.no_plot,
    })?;
    row("latency", report.latency);
    Ok(())
}

fn cleanup(tools: &net_real::lab::Tools) -> Result<(), String> {
    let c = cleanup_stale(tools)?;
    for (prefix, pid) in &c.running {
        println!("lab {prefix} is running (pid {pid}): left alone");
    }
    for (prefix, n) in &c.removed {
        println!("removed lab {prefix}: {n} namespaces (their veths, bridge and routes)");
    }
    if c.removed.is_empty() {
        println!("nothing to clean up");
    }
    Ok(())
}

/// Flags shared by every process: run seed, digest, wire, frames, one event loop, quiet.
fn common_args(real: &RealArgs, run_seed: u64) -> Vec<String> {
    let loops = if real.loops == 0 { 1 } else { real.loops };
    [
        "--seed".to_owned(),
        run_seed.to_string(),
        "--hash-iterations".into(),
        real.hash_iterations.to_string(),
        "--bad-frames".into(),
        real.bad_frames.to_string(),
        "--wire".into(),
        real.wire.to_string(),
        "--loops".into(),
        loops.to_string(),
        "--quiet".into(),
    ]
    .into()
}

fn seed_args(real: &RealArgs, run_seed: u64) -> Vec<String> {
    let mut v = common_args(real, run_seed);
    v.extend([
        "--removal".into(),
        real.removal.to_string(),
        "--connections-per-ip".into(),
        real.connections_per_ip.to_string(),
    ]);
    if let Some(a) = real.admission {
        v.extend(["--admission".into(), a.to_string()]);
    }
    if real.trust_advertised_ip {
        v.push("--trust-advertised-ip".into());
    }
    v
}

fn peer_args(p: &ProtocolArgs, real: &RealArgs, run_seed: u64) -> Vec<String> {
    let mut v = common_args(real, run_seed);
    let us = |d: Duration| format!("{}us", d.0);
    v.extend([
        "--liveness-interval".into(),
        us(p.liveness_interval),
        "--gossip-interval".into(),
        us(p.gossip_interval),
        "--gossip-count".into(),
        p.gossip_count.to_string(),
        "--misses".into(),
        p.misses.to_string(),
        "--topology".into(),
        topology_flag(p.topology),
    ]);
    v
}

/// `topology` as `--topology` reads it (its `Display` is for people).
fn topology_flag(t: Topology) -> String {
    match t {
        Topology::Capacity { base, ratio, step } => format!("capacity:{base},{ratio},{step}"),
        Topology::Uniform { k } => format!("uniform:{k}"),
        Topology::Preferential { m } => format!("preferential:{m}"),
    }
}

/// Ctrl-C (and SIGTERM) stop the lab; more of them only say that it is stopping, since the
/// lab must remove its namespaces before it exits.
fn stop_on_ctrl_c() -> Result<Receiver<()>, String> {
    let (tx, rx) = mpsc::channel();
    let again = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if again.swap(true, Ordering::SeqCst) {
            eprintln!(
                "gossipnet lab: still stopping: the processes write their folders, then the \
                 namespaces are removed (if this process is killed, `gossipnet lab --cleanup`)"
            );
            return;
        }
        eprintln!("gossipnet lab: stopping");
        let _ = tx.send(());
    })
    .map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topology_goes_to_a_child_as_it_came() {
        for text in [
            "capacity",
            "capacity:8,1,10",
            "capacity:40,1.5,7.5",
            "uniform:4",
            "preferential:2",
        ] {
            let t: Topology = text.parse().expect("a topology");
            let again: Topology = topology_flag(t).parse().expect("the flag form parses");
            assert_eq!(again, t, "{text}");
        }
    }
}
