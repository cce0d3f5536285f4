//! The real-network commands: argument checks, the port prompt and Ctrl-C; the work is in
//! `net_real::app`.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{SystemTime, UNIX_EPOCH};

use net_real::app::{
    AppOptions, RunSummary, Verbosity, run_peers_with_faults, run_seeds, run_seeds_with_faults,
};
use net_real::{Listen, read_config};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::seed::Admission;
use sim_core::seed::SeedConfig;
use sim_core::wire::Wire;

use super::{PeerArgs, RealArgs, SeedArgs, SeedsArgs, SwarmArgs, print_outcome, row};

/// A stop signal fed by Ctrl-C (and SIGTERM). A second Ctrl-C exits at once.
fn stop_on_ctrl_c() -> Result<Receiver<()>, String> {
    let (tx, rx) = mpsc::channel();
    let again = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if again.swap(true, Ordering::SeqCst) {
            eprintln!("gossipnet: second interrupt, exiting without writing the run folder");
            std::process::exit(130);
        }
        eprintln!("gossipnet: stopping (press Ctrl-C again to exit at once)");
        let _ = tx.send(());
    })
    .map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;
    Ok(rx)
}

fn options(
    real: &RealArgs,
    default_out: &str,
    default_verbosity: Verbosity,
) -> Result<AppOptions, String> {
    if real.hash_iterations == 0 {
        return Err("--hash-iterations must be at least 1".into());
    }
    let run_seed = real.seed.unwrap_or_else(fresh_seed);
    let verbosity = if real.quiet {
        Verbosity::Quiet
    } else if real.verbose {
        Verbosity::Events
    } else {
        default_verbosity
    };
    Ok(AppOptions {
        run_seed,
        hash_iterations: real.hash_iterations,
        hash_per_peer: false,
        out: real
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(default_out)),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        duration: real.duration.map(|d| std::time::Duration::from_micros(d.0)),
        stop: stop_on_ctrl_c()?,
        verbosity,
        join_interval: std::time::Duration::ZERO,
        gossip_from_stdin: false,
        loops: real.loops,
        // Zero is no latency: nothing held, timed or drawn.
        latency: real.latency.filter(|l| l.max().0 > 0),
        flight_recorder: false,
        peer_layout: None,
    })
}

/// A run seed for when none is given: not reproducible, but printed so that it can be.
pub(crate) fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    sim_core::sim::derive_seed(nanos as u64, u64::from(std::process::id()), 0, 0)
}

/// Where a one-node command listens: `--listen`, `--port`, or the reference prompt.
fn listen_of(port: Option<u16>, listen: Option<&str>) -> Result<Listen, String> {
    if let Some(l) = listen {
        let a: SocketAddrV4 = l
            .parse()
            .map_err(|_| format!("--listen {l:?}: expected IP:PORT such as 127.0.0.1:6000"))?;
        return Ok(Listen {
            bind: a,
            advertise: None,
        });
    }
    let port = match port {
        Some(p) => p,
        None if std::io::stdin().is_terminal() => prompt_port()?,
        None => return Err("give --port N (or --listen IP:PORT)".into()),
    };
    // Port 0: one the OS chooses, printed at start (what tests use).
    Ok(Listen::loopback(port))
}

fn prompt_port() -> Result<u16, String> {
    print!("Enter port to connect to: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the port: {e}"))?;
    line.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{:?} is not a port (1 to 65535)", line.trim()))
}

fn seed_config(real: &RealArgs) -> SeedConfig {
    SeedConfig {
        bad_frames_max: real.bad_frames.max(1),
        removal: real.removal,
        admission: real.admission.unwrap_or(match real.wire {
            Wire::Line => Admission::Verify,
            Wire::Reference => Admission::Trust,
        }),
        wire: real.wire,
        trust_advertised_ip: real.trust_advertised_ip,
        connections_per_ip_max: real.connections_per_ip.max(1),
        ..SeedConfig::default()
    }
}

fn port_of(l: &Listen) -> u16 {
    l.bind.port()
}

fn header(what: &str, opts: &AppOptions) {
    if opts.verbosity != Verbosity::Quiet {
        let until = match opts.duration {
            Some(d) => format!("for {:.0} s", d.as_secs_f64()),
            None => "until Ctrl-C".into(),
        };
        let each = if opts.hash_per_peer {
            " (each peer hashes every copy)"
        } else {
            ""
        };
        let latency = match opts.latency {
            Some(l) => format!(", latency {l} a frame"),
            None => String::new(),
        };
        println!(
            "gossipnet {what}: run seed {}, {} digest iterations{each}{latency}, {until}; output {}",
            opts.run_seed,
            opts.hash_iterations,
            opts.out.display()
        );
    }
}

fn summary(s: &RunSummary) {
    println!("summary:");
    if s.seeds.is_empty() {
        print_outcome(&s.outcome);
    }
    for (seed, registered, removed) in &s.seeds {
        row(
            &format!("seed {seed}"),
            format!("{registered} peers registered, {removed} removed as dead"),
        );
    }
    let d = s.descriptors;
    row(
        "descriptors",
        format!(
            "limit {}, up to {} connections, {} refused busy, {} silent ones closed to make room",
            d.limit, d.connections_max, d.refused, d.evicted
        ),
    );
    let f = &s.driver;
    let per_frame = f
        .cpu_per_frame_us
        .map_or("unknown".into(), |c| format!("{c:.1} µs"));
    row(
        "driver",
        format!(
            "{} event loops; {} frames sent ({:.0}/s) in {} writes, {} received; CPU per frame {per_frame}",
            f.loops,
            f.frames_out,
            f.frames_out as f64 / s.wall_s.max(1e-9),
            f.writes,
            f.frames_in
        ),
    );
    row(
        "loop lag",
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; peak {} connections, {} frames queued on one at most",
            f.lag_p50_ms, f.lag_p99_ms, f.lag_max_ms, f.connections_peak, f.queue_frames_peak
        ),
    );
    if f.overload_episodes > 0 {
        row(
            "overload",
            format!(
                "{} times over {} ms of lag, {:.1} s in all; {} liveness rounds put off meanwhile",
                f.overload_episodes,
                net_real::stats::LAG_HIGH_MICROS / 1000,
                f.overloaded_s,
                f.liveness_deferred
            ),
        );
    }
    let cpu = s.cpu_s.map_or("unknown".into(), |c| format!("{c:.2} s"));
    row(
        "time",
        format!(
            "wall {:.2} s, process CPU {cpu}, {} digests computed",
            s.wall_s, s.digests
        ),
    );
    row("output", s.out.display().to_string());
}

/// `gossipnet seed`.
pub fn seed(a: &SeedArgs) -> Result<(), String> {
    let listen = listen_of(a.port, a.listen.as_deref())?;
    let mut opts = options(
        &a.real,
        &format!("real-seed-{}", port_of(&listen)),
        Verbosity::Events,
    )?;
    // A lone seed's records survive a kill -9 (a lab's seed crash).
    opts.flight_recorder = true;
    header("seed", &opts);
    // Its fellow seeds, if there is a seed list: told of each removal it verifies.
    let fellows = if a.config.exists() {
        read_config(&a.config).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let known = listen
        .advertise
        .unwrap_or(NodeAddr::new(*listen.bind.ip(), listen.bind.port()));
    let index = a
        .index
        .unwrap_or_else(|| fellows.iter().position(|f| *f == known).unwrap_or(0));
    let cfg = SeedConfig {
        fellows,
        ..seed_config(&a.real)
    };
    summary(&run_seeds(&[listen], index, &cfg, opts)?);
    Ok(())
}

/// `gossipnet seeds`.
pub fn seeds(a: &SeedsArgs) -> Result<(), String> {
    let addrs = read_config(&a.config).map_err(|e| e.to_string())?;
    let listens: Vec<Listen> = addrs.iter().map(|s| listen_at(*s)).collect();
    let opts = options(&a.real, "real-seeds", Verbosity::Events)?;
    header(
        &format!("seeds ({} from {})", addrs.len(), a.config.display()),
        &opts,
    );
    let cfg = SeedConfig {
        fellows: addrs,
        ..seed_config(&a.real)
    };
    summary(&run_seeds_with_faults(&listens, 0, &cfg, opts, &a.faults)?);
    Ok(())
}

fn listen_at(a: NodeAddr) -> Listen {
    Listen {
        bind: SocketAddrV4::new(a.ip, a.port),
        advertise: None,
    }
}

pub(crate) fn peer_config(p: &super::ProtocolArgs, real: &RealArgs) -> Result<PeerConfig, String> {
    p.validate()?;
    let mut cfg = PeerConfig {
        bad_frames_max: real.bad_frames.max(1),
        wire: real.wire,
        ..PeerConfig::default()
    };
    p.apply(&mut cfg);
    Ok(cfg)
}

/// `gossipnet peer`.
pub fn peer(a: &PeerArgs) -> Result<(), String> {
    let cfg = peer_config(&a.protocol, &a.real)?;
    let seeds = read_config(&a.config).map_err(|e| e.to_string())?;
    let listen = listen_of(a.port, a.listen.as_deref())?;
    let port = port_of(&listen);
    let mut opts = options(&a.real, &format!("real-peer-{port}"), Verbosity::Events)?;
    opts.gossip_from_stdin = std::io::stdin().is_terminal();
    opts.hash_per_peer = a.hash_per_peer;
    // A lone peer's records survive a kill -9 (a lab's crash).
    opts.flight_recorder = true;
    header(
        &format!("peer ({} seeds in {})", seeds.len(), a.config.display()),
        &opts,
    );
    // RNG index: the peer's index, or else the port, so that two peers of one run seed
    // choose differently.
    summary(&run_peers_with_faults(
        &[listen],
        a.index.unwrap_or(usize::from(port)),
        &seeds,
        &cfg,
        opts,
        &a.faults,
    )?);
    Ok(())
}

/// `gossipnet swarm`.
pub fn swarm(a: &SwarmArgs) -> Result<(), String> {
    let cfg = peer_config(&a.protocol, &a.real)?;
    let seeds = read_config(&a.config).map_err(|e| e.to_string())?;
    if a.peers == 0 {
        return Err("--peers must be at least 1".into());
    }
    if a.procs == 0 {
        return Err("--procs must be at least 1".into());
    }
    let last = usize::from(a.base_port) + a.peers - 1;
    if a.base_port != 0 && last > usize::from(u16::MAX) {
        return Err(format!(
            "ports {}..{last} do not fit: lower --base-port or --peers",
            a.base_port
        ));
    }
    if a.base_port != 0
        && let Some(s) = seeds.iter().find(|s| {
            s.ip == a.ip && (usize::from(a.base_port)..=last).contains(&usize::from(s.port))
        })
    {
        return Err(format!(
            "ports {}..{last} include seed {s} of {}: choose another --base-port",
            a.base_port,
            a.config.display()
        ));
    }
    // Base port 0: every peer on a port the OS chooses.
    let port = |i: usize| match a.base_port {
        0 => 0,
        b => b + i as u16, // fits: checked above
    };
    let listens: Vec<Listen> = (0..a.peers)
        .map(|i| Listen {
            bind: SocketAddrV4::new(a.ip, port(i)),
            advertise: None,
        })
        .collect();
    let mut opts = options(
        &a.real,
        &format!("real-swarm-{}", a.base_port),
        Verbosity::Overview,
    )?;
    opts.join_interval = std::time::Duration::from_micros(a.join_interval.0);
    opts.hash_per_peer = a.hash_per_peer;
    // Peer i of the run listens at base + i - first index (a share of a swarm in several
    // processes knows where the others' peers are, for a partition's groups).
    if a.base_port != 0 {
        opts.peer_layout = Some((a.ip, i64::from(a.base_port) - a.first_index as i64));
    }
    header(
        &format!(
            "swarm ({} peers on {}:{}.., {} seeds in {})",
            a.peers,
            a.ip,
            a.base_port,
            seeds.len(),
            a.config.display()
        ),
        &opts,
    );
    if a.procs > 1 {
        return swarm_in_processes(a, opts.run_seed, &opts.out);
    }
    // RNG index first + i, as peer first + i of the simulator.
    let result = run_peers_with_faults(&listens, a.first_index, &seeds, &cfg, opts, &a.faults)?;
    summary(&result);
    if !a.no_plot {
        crate::plot(&result.out)?;
    }
    Ok(())
}

/// `gossipnet swarm --procs N`: the peers split into N consecutive shares, each run by a
/// child `gossipnet swarm` with the same arguments (its share of ports and RNG indices, the
/// same run seed, the join interval times N so that the swarm joins at the asked rate),
/// writing `OUT/processes/proc-K/` and its console to `proc-K.txt`; then the folders are
/// merged into OUT. Ctrl-C reaches every process of the terminal's group: each child stops
/// and writes its folder, and this one waits for them.
fn swarm_in_processes(a: &SwarmArgs, run_seed: u64, out: &std::path::Path) -> Result<(), String> {
    use std::ffi::OsString;
    let procs = a.procs.min(a.peers);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let parts = out.join("processes");
    std::fs::create_dir_all(&parts)
        .map_err(|e| format!("cannot create {}: {e}", parts.display()))?;
    // The command line as given, minus what each child sets for itself (later flags
    // override earlier ones; verbosity flags conflict, so they are dropped).
    let given: Vec<OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| !matches!(a.to_str(), Some("-q" | "--quiet" | "-v" | "--verbose")))
        .collect();
    let join = sim_core::time::Duration(a.join_interval.0.saturating_mul(procs as u64));
    println!(
        "gossipnet swarm: {} peers in {procs} processes, run seed {run_seed}; folders in {}",
        a.peers,
        parts.display()
    );
    if a.base_port == 0
        && a.faults
            .iter()
            .any(|f| matches!(f, sim_core::sim::Fault::Partition { .. }))
    {
        eprintln!(
            "gossipnet swarm: with --base-port 0 a process does not know where the others' \
             peers listen: a partition cuts only the links between one process's peers \
             (give --base-port for the whole partition)"
        );
    }
    let mut children = Vec::new();
    for k in 0..procs {
        let (first, last) = (k * a.peers / procs, (k + 1) * a.peers / procs);
        let port = match a.base_port {
            0 => 0,
            b => b + first as u16, // fits: the whole range was checked
        };
        let dir = parts.join(format!("proc-{k}"));
        let console_path = parts.join(format!("proc-{k}.txt"));
        let console = std::fs::File::create(&console_path)
            .map_err(|e| format!("cannot create {}: {e}", console_path.display()))?;
        let errors = console
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", console_path.display()))?;
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(&given)
            .args(["--procs", "1", "--quiet", "--no-plot"])
            .arg("--peers")
            .arg((last - first).to_string())
            .arg("--first-index")
            .arg((a.first_index + first).to_string())
            .arg("--base-port")
            .arg(port.to_string())
            .arg("--seed")
            .arg(run_seed.to_string())
            .arg("--join-interval")
            .arg(format!("{}us", join.0))
            .arg("--out")
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(console)
            .stderr(errors);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start process {k}: {e}"))?;
        println!(
            "  process {k}: pid {}, peers {first}..{} (ports {port}..), console {}",
            child.id(),
            last - 1,
            console_path.display()
        );
        children.push((k, dir, child));
    }
    let mut dirs = Vec::new();
    let mut failed = Vec::new();
    for (k, dir, mut child) in children {
        match child.wait() {
            Ok(status) if status.success() => dirs.push(dir),
            Ok(status) => failed.push(format!("process {k} ended with {status}")),
            Err(e) => failed.push(format!("process {k}: {e}")),
        }
    }
    for f in &failed {
        eprintln!(
            "gossipnet swarm: {f} (its console is in {})",
            parts.display()
        );
    }
    if dirs.is_empty() {
        return Err("no process of the swarm finished".into());
    }
    let figures = process_figures(&dirs);
    crate::merge(&crate::MergeArgs {
        dirs,
        out: out.to_path_buf(),
        no_plot: a.no_plot,
    })?;
    row("processes", figures);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {procs} processes failed", failed.len()))
    }
}

/// The processes' figures summed from their `summary.json`: CPU, peak RSS, frames.
fn process_figures(dirs: &[PathBuf]) -> String {
    let (mut cpu, mut rss, mut frames, mut n) = (0.0, 0.0, 0u64, 0);
    for d in dirs {
        let Ok(text) = std::fs::read_to_string(d.join("summary.json")) else {
            continue;
        };
        let Ok(s) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        n += 1;
        cpu += s["cpu_time_s"].as_f64().unwrap_or(0.0);
        rss += s["peak_rss_mib"].as_f64().unwrap_or(0.0);
        frames += s["frames_sent"].as_u64().unwrap_or(0);
    }
    format!(
        "{n}: CPU {cpu:.2} s, peak RSS {rss:.1} MiB summed, {frames} frames sent ({:.1} µs of CPU a frame)",
        if frames > 0 {
            cpu * 1e6 / frames as f64
        } else {
            0.0
        }
    )
}
