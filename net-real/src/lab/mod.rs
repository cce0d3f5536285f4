//! `gossipnet lab`: a real network in Linux network namespaces. Every seed and every peer is
//! a process of its own (`gossipnet seed` / `gossipnet peer` of this binary) in a namespace
//! of its own, with its own address in 198.18.0.0/15, joined by a veth pair to one bridge.
//! Peer i starts at (i + 1) × the join interval, as in the simulator, and a scenario's faults
//! are done to the processes and the network as they fall due:
//!
//! | fault | what the lab does |
//! |---|---|
//! | crash | `SIGKILL` to the peer's process |
//! | silent-fail | `SIGSTOP` to the peer's process (its sockets stay open, nothing answers) |
//! | restart | `SIGKILL` to the old process if any (a reboot), a new one at the same address |
//! | reset | `ss -K` in the peer's namespace: every TCP connection aborted, both ends see it |
//! | partition | blackhole routes to the other group's addresses in each group's namespaces |
//! | seed-crash | `SIGKILL` to the seed's process |
//!
//! Each fault is recorded as it happens in the lab's own run folder (`procs/lab`), in the form
//! a swarm records its faults, so that the merged folder shows them. README, "Lab".

pub mod netns;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration as StdDuration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use sim_core::report::{Recorder, write_folder};
use sim_core::sim::{Fault, Latency, Observer, WorldEvent};
use sim_core::time::Time;

use crate::runtime::Clock;
pub use netns::{Cleanup, PEERS_MAX, SEEDS_MAX, Tools, cleanup_stale, effective_uid};
use netns::{Host, Network};

/// How long the processes get to write their run folders once told to stop.
const STOP_WAIT: StdDuration = StdDuration::from_secs(20);
/// A child's own `--duration` is the lab's plus this: should the lab die, its processes end
/// by themselves.
const BACKSTOP: StdDuration = StdDuration::from_secs(60);
/// How often the lab looks for processes that ended on their own.
const REAP_EVERY: StdDuration = StdDuration::from_secs(1);

/// What a lab runs.
pub struct LabOptions {
    /// The gossipnet binary the seeds and peers run.
    pub exe: PathBuf,
    /// The output folder: `procs/` gets one run folder a process, the merge goes here.
    pub out: PathBuf,
    /// Seeds.
    pub seeds: usize,
    /// Peers.
    pub peers: usize,
    /// How long; `None`: until `stop`.
    pub duration: Option<StdDuration>,
    /// Peer i starts at (i + 1) × this.
    pub join_interval: StdDuration,
    /// The fault timeline (peer and seed indices), in timeline order.
    pub faults: Vec<Fault>,
    /// One-way latency asked for, if any.
    pub latency: Option<Latency>,
    /// Flags every seed process gets (run seed, digest, policies, `-q`...).
    pub seed_args: Vec<String>,
    /// Flags every peer process gets (run seed, digest, protocol, `-q`...).
    pub peer_args: Vec<String>,
    /// The command line, for the lab's `summary.json`.
    pub command: String,
    /// The run seed.
    pub run_seed: u64,
    /// The settings, for the lab's `summary.json`.
    pub parameters: serde_json::Value,
    /// Stops the lab when a message comes (Ctrl-C) or the sender is dropped.
    pub stop: Receiver<()>,
}

/// What a finished lab leaves.
pub struct LabReport {
    /// The run folders to merge: the lab's, then every process's that wrote one.
    pub folders: Vec<PathBuf>,
    /// Processes that were killed (`killed: ...`, their folder ends at the kill) or wrote no
    /// run folder (`lost: ...`), and why.
    pub lost: Vec<String>,
    /// How latency was made.
    pub latency: String,
}

/// Checks that this process may make namespaces (root) and that iproute2 is there, touching
/// nothing.
pub fn preflight() -> Result<Tools, String> {
    match effective_uid() {
        Some(0) => {}
        Some(uid) => {
            return Err(format!(
                "gossipnet lab needs root (this is uid {uid}): it makes network namespaces, veth \
                 pairs and a bridge. Run it as root, or run the same peers on loopback in one \
                 process with `gossipnet swarm` (README, \"Real networks\")"
            ));
        }
        None => {
            return Err(
                "gossipnet lab needs Linux (/proc/self/status) and root; `gossipnet swarm` runs \
                 the same peers on loopback"
                    .into(),
            );
        }
    }
    Tools::find()
}

/// How the lab's latency is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shaping {
    /// None asked for.
    None,
    /// netem on every host's veth.
    Netem,
    /// Each process's driver holds its frames (`--latency`), where the kernel has no netem.
    Driver,
}

impl Shaping {
    fn name(self) -> &'static str {
        match self {
            Shaping::None => "none",
            Shaping::Netem => "netem",
            Shaping::Driver => "driver",
        }
    }
}

/// What a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Seed(usize),
    Peer(usize),
}

/// One seed or peer: its host and its process, if running.
struct Proc {
    role: Role,
    host: Host,
    child: Option<Child>,
    /// `SIGSTOP`ped (a silent failure).
    stopped: bool,
    /// Run folders, one a process started.
    folders: Vec<PathBuf>,
    /// What ended each process the lab ended before the stop, by folder.
    fates: BTreeMap<usize, String>,
}

impl Proc {
    fn name(&self) -> String {
        match self.role {
            Role::Seed(j) => format!("seed-{j}"),
            Role::Peer(i) => format!("peer-{i}"),
        }
    }

    /// Running and answering (not stopped).
    fn up(&self) -> bool {
        self.child.is_some() && !self.stopped
    }

    fn pid(&self) -> Option<Pid> {
        let id = self.child.as_ref()?.id();
        Some(Pid::from_raw(i32::try_from(id).ok()?))
    }

    fn signal(&self, s: Signal) -> Result<(), String> {
        let pid = self.pid().ok_or("not running")?;
        kill(pid, s).map_err(|e| format!("cannot send {s} to {}: {e}", self.name()))
    }

    /// `SIGKILL`, then reaps it.
    fn kill(&mut self, fate: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.fates
                .insert(self.folders.len().saturating_sub(1), fate.into());
        }
        self.stopped = false;
    }
}

/// What is due, in time order.
#[derive(Clone, Debug)]
enum Action {
    StartPeer(usize),
    Fault(Fault),
    Heal(Fault),
}

/// The running lab: its processes, its routes and its record of faults.
struct Lab<'a> {
    opts: &'a LabOptions,
    tools: &'a Tools,
    net: &'a Network,
    procs: Vec<Proc>,
    config: PathBuf,
    clock: Clock,
    rec: Recorder,
    /// Blackhole routes in force: (namespace of peer, peer whose address is cut) -> how many
    /// partitions hold it.
    routes: BTreeMap<(usize, usize), u32>,
    shaping: Shaping,
}

/// Runs the lab to its end, then stops every process, writes the lab's own run folder and
/// removes every namespace. The caller merges [`LabReport::folders`].
pub fn run(opts: &LabOptions, tools: &Tools) -> Result<LabReport, String> {
    if opts.seeds == 0 || opts.seeds > SEEDS_MAX {
        return Err(format!("a lab runs 1 to {SEEDS_MAX} seeds"));
    }
    if opts.peers == 0 || opts.peers > PEERS_MAX {
        return Err(format!(
            "a lab runs 1 to {PEERS_MAX} peers (a process and a namespace each); \
             `gossipnet swarm --procs N` runs more"
        ));
    }
    for f in &opts.faults {
        f.validate(opts.seeds, opts.peers)
            .map_err(|e| format!("fault {f}: {e}"))?;
    }
    let removed = cleanup_stale(tools)?;
    for (prefix, n) in &removed.removed {
        println!("removed the leftovers of lab {prefix} ({n} namespaces), whose process is gone");
    }
    let procs_dir = opts.out.join("procs");
    prepare_out(&procs_dir)?;
    let config = opts.out.join("config.txt");
    let prefix = netns::prefix();
    let hosts = netns::hosts(&prefix, opts.seeds, opts.peers);
    let seeds_text: String = hosts[..opts.seeds]
        .iter()
        .map(|h| format!("{}\n", h.addr))
        .collect();
    std::fs::write(&config, seeds_text)
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let made = Instant::now();
    let mut net = Network::create(tools, &prefix, &hosts)?;
    println!(
        "network: {} namespaces {prefix}-s0.. and {prefix}-p0.. on bridge {prefix}br in \
         {}, addresses 198.18.0.0/15, made in {:.2} s",
        hosts.len(),
        net.hub(),
        made.elapsed().as_secs_f64()
    );
    let shaping = shape(opts, tools, &net, &hosts)?;
    let latency = latency_line(opts, shaping);
    println!("{latency}");
    let procs = hosts
        .into_iter()
        .enumerate()
        .map(|(k, host)| Proc {
            role: if k < opts.seeds {
                Role::Seed(k)
            } else {
                Role::Peer(k - opts.seeds)
            },
            host,
            child: None,
            stopped: false,
            folders: Vec::new(),
            fates: BTreeMap::new(),
        })
        .collect();
    let clock = Clock::start();
    let mut lab = Lab {
        opts,
        tools,
        net: &net,
        procs,
        config,
        rec: Recorder::new(clock.wall_offset_micros()),
        clock,
        routes: BTreeMap::new(),
        shaping,
    };
    let result = lab.run_to_end(&procs_dir);
    // Whatever happened: no process outlives the lab, and the network goes.
    for p in &mut lab.procs {
        p.kill("killed when the lab failed");
    }
    let (folders, lost) = lab.folders();
    drop(lab);
    net.remove()?;
    println!("network removed: every namespace of {prefix} (its veths, bridge and routes)");
    let lab_dir = result?;
    Ok(LabReport {
        folders: std::iter::once(lab_dir).chain(folders).collect(),
        lost,
        latency,
    })
}

/// Makes an empty `procs` folder (and the output folder above it): an earlier lab's `procs` is removed, anything
/// else there is refused.
fn prepare_out(procs: &Path) -> Result<(), String> {
    if procs.exists() {
        if !procs.join("lab").join("summary.json").is_file() {
            return Err(format!(
                "{} exists and is not an earlier lab's: choose another --out",
                procs.display()
            ));
        }
        std::fs::remove_dir_all(procs)
            .map_err(|e| format!("cannot clear {}: {e}", procs.display()))?;
    }
    std::fs::create_dir_all(procs)
        .map_err(|e| format!("cannot create {}: {e}", procs.display()))?;
    Ok(())
}

/// Finds out whether the kernel has netem (once, on the hub's first veth, removed again)
/// and shapes every host with it when latency is asked for and it does.
fn shape(
    opts: &LabOptions,
    tools: &Tools,
    net: &Network,
    hosts: &[Host],
) -> Result<Shaping, String> {
    let netem = match (&tools.tc, hosts.first()) {
        (Some(tc), Some(h)) => {
            let dev = h.link.as_str();
            let add = ["-n", net.hub(), "qdisc", "add", "dev", dev];
            let ok = netns::run(
                tc,
                &[&add[..], &["root", "netem", "delay", "1ms"]].concat(),
                None,
            )
            .is_ok();
            if ok {
                netns::run(
                    tc,
                    &["-n", net.hub(), "qdisc", "del", "dev", dev, "root"],
                    None,
                )?;
            }
            ok
        }
        _ => false,
    };
    let Some(latency) = opts.latency else {
        return Ok(Shaping::None);
    };
    if !netem {
        return Ok(Shaping::Driver);
    }
    let delay = match latency {
        Latency::Fixed(d) => format!("delay {}us", d.0),
        // netem's jitter is uniform around the mean.
        Latency::Uniform(lo, hi) => format!(
            "delay {}us {}us",
            (lo.0 + hi.0) / 2,
            hi.0.saturating_sub(lo.0) / 2
        ),
    };
    let tc = tools.tc.as_deref().unwrap_or(Path::new("tc"));
    for h in hosts {
        let line = format!("-n {} qdisc add dev {} root netem {delay}", h.ns, h.link);
        let args: Vec<&str> = line.split(' ').collect();
        netns::run(tc, &args, None)?;
    }
    Ok(Shaping::Netem)
}

fn latency_line(opts: &LabOptions, shaping: Shaping) -> String {
    let asked = opts.latency.map(|l| l.to_string());
    match (shaping, asked) {
        (Shaping::Netem, Some(l)) => format!("latency: {l} one way, by netem on every veth"),
        (Shaping::Driver, Some(l)) => format!(
            "latency: {l} one way, by the driver (this kernel has no netem: each process holds \
             its frames, --latency {l})"
        ),
        (_, _) => "latency: none added (the veths' own, tens of µs)".into(),
    }
}

impl Lab<'_> {
    /// Starts the seeds, then the peers and the faults as they fall due, until the
    /// duration or a stop; then stops the processes and writes the lab's folder.
    fn run_to_end(&mut self, procs_dir: &Path) -> Result<PathBuf, String> {
        let opts = self.opts;
        for j in 0..opts.seeds {
            self.start(j, procs_dir)?;
        }
        let mut due = self.schedule();
        let deadline = opts.duration.map(|d| self.clock.instant(Time::ZERO) + d);
        let mut next_reap = Instant::now() + REAP_EVERY;
        println!(
            "started {} seeds; peer i starts at (i + 1) x {:.3} s; {}",
            opts.seeds,
            opts.join_interval.as_secs_f64(),
            match opts.duration {
                Some(d) => format!("stopping at {:.0} s", d.as_secs_f64()),
                None => "until Ctrl-C".into(),
            }
        );
        loop {
            let now = Instant::now();
            let mut until = next_reap;
            if let Some((at, _)) = due.first() {
                until = until.min(self.clock.instant(*at));
            }
            if let Some(d) = deadline {
                until = until.min(d);
            }
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            match opts.stop.recv_timeout(until.saturating_duration_since(now)) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
            let now_t = self.clock.now();
            while due.first().is_some_and(|(at, _)| *at <= now_t) {
                let (_, action) = due.remove(0);
                match action {
                    Action::StartPeer(i) => {
                        if self.procs[opts.seeds + i].folders.is_empty() {
                            self.start(opts.seeds + i, procs_dir)?;
                        }
                    }
                    Action::Fault(f) => self.inject(&f, procs_dir),
                    Action::Heal(f) => self.heal(&f),
                }
            }
            if Instant::now() >= next_reap {
                next_reap += REAP_EVERY;
                self.reap();
            }
        }
        let stop_began_s = self.clock.now().secs_f64();
        println!(
            "stopping {} processes",
            self.procs.iter().filter(|p| p.child.is_some()).count()
        );
        self.stop_all();
        let dir = procs_dir.join("lab");
        let extra = json!({
            "driver": "real",
            "role": "lab",
            "command": opts.command,
            "seed": opts.run_seed,
            "parameters": opts.parameters,
            "started_at_unix_s": self.clock.wall_offset_micros() as f64 / 1e6,
            "wall_time_s": self.clock.now().secs_f64(),
            "stop_began_s": stop_began_s,
            "cpu_time_s": crate::app::process_cpu_seconds(),
            "peak_rss_mib": crate::app::peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
            "digests_computed": 0,
            "latency": {
                "asked": opts.latency.map(|l| l.to_string()),
                "shaped_by": self.shaping.name(),
            },
            "network": {
                "prefix": self.net.prefix(),
                "hub": self.net.hub(),
                "addresses": "198.18.0.0/15",
            },
        });
        write_folder(&dir, &self.rec, extra)
            .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Peer starts and faults, by time; at one time, starts first, then the timeline's
    /// order.
    fn schedule(&self) -> Vec<(Time, Action)> {
        let join = Time(u64::try_from(self.opts.join_interval.as_micros()).unwrap_or(u64::MAX));
        let mut due: Vec<(Time, Action)> = (0..self.opts.peers)
            .map(|i| {
                (
                    Time(join.0.saturating_mul(i as u64 + 1)),
                    Action::StartPeer(i),
                )
            })
            .collect();
        for f in &self.opts.faults {
            due.push((f.at(), Action::Fault(f.clone())));
            if let Fault::Partition { end, .. } = f {
                due.push((*end, Action::Heal(f.clone())));
            }
        }
        due.sort_by_key(|(t, _)| *t);
        due
    }

    /// Starts process `k` (seed or peer) in its namespace, with a run folder of its own
    /// (`procs/NAME`, `procs/NAME-run2` after a restart) and its console in `procs/NAME.txt`.
    fn start(&mut self, k: usize, procs_dir: &Path) -> Result<(), String> {
        let opts = self.opts;
        let elapsed = StdDuration::from_micros(self.clock.now().0);
        let p = &mut self.procs[k];
        let name = p.name();
        let dir = match p.folders.len() {
            0 => procs_dir.join(&name),
            n => procs_dir.join(format!("{name}-run{}", n + 1)),
        };
        let console_path = procs_dir.join(format!("{name}.txt"));
        let console = File::options()
            .create(true)
            .append(true)
            .open(&console_path)
            .map_err(|e| format!("cannot create {}: {e}", console_path.display()))?;
        let errors = console
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", console_path.display()))?;
        let mut cmd = Command::new(&self.tools.ip);
        cmd.args(["netns", "exec", &p.host.ns])
            .arg(&opts.exe)
            .arg(match p.role {
                Role::Seed(_) => "seed",
                Role::Peer(_) => "peer",
            })
            .arg("--listen")
            .arg(p.host.addr.to_string())
            .arg("--config")
            .arg(&self.config)
            .arg("--out")
            .arg(&dir);
        match p.role {
            Role::Seed(j) => cmd.arg("--index").arg(j.to_string()).args(&opts.seed_args),
            Role::Peer(i) => cmd.arg("--index").arg(i.to_string()).args(&opts.peer_args),
        };
        if self.shaping == Shaping::Driver
            && let Some(l) = opts.latency
        {
            cmd.arg("--latency").arg(l.to_string());
        }
        if let Some(d) = opts.duration {
            let left = d.saturating_sub(elapsed) + BACKSTOP;
            cmd.arg("--duration").arg(format!("{}ms", left.as_millis()));
        }
        // A group of its own: a Ctrl-C on the terminal reaches the lab, which stops its
        // processes in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.stdin(Stdio::null()).stdout(console).stderr(errors);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        p.child = Some(child);
        p.stopped = false;
        p.folders.push(dir);
        Ok(())
    }

    /// Records what the lab did to the network, as the simulator and a swarm record it.
    fn record(&mut self, at: Time, e: WorldEvent, how: &str) {
        println!("{:>9.3}s {e} ({how})", at.secs_f64());
        self.rec.world(at, &e);
    }

    /// Does fault `f` now.
    fn inject(&mut self, f: &Fault, procs_dir: &Path) {
        let seeds = self.opts.seeds;
        match f {
            Fault::Crash { peer, .. } => {
                let p = &mut self.procs[seeds + peer];
                let (Some(pid), true) = (p.pid(), p.up()) else {
                    return self.skip(f, "its process is not running");
                };
                let at = self.clock.now();
                p.kill("crashed (SIGKILL)");
                let node = p.host.addr;
                let how = format!("SIGKILL to pid {pid}");
                self.record(
                    at,
                    WorldEvent::Down {
                        node,
                        silent: false,
                    },
                    &how,
                );
            }
            Fault::SilentFail { peer, .. } => {
                let p = &mut self.procs[seeds + peer];
                if !p.up() {
                    return self.skip(f, "its process is not running");
                }
                if let Err(e) = p.signal(Signal::SIGSTOP) {
                    return self.skip(f, &e);
                }
                p.stopped = true;
                let at = self.clock.now();
                let node = p.host.addr;
                let how = format!("SIGSTOP to pid {}", p.pid().map_or(0, Pid::as_raw));
                self.record(at, WorldEvent::Down { node, silent: true }, &how);
            }
            Fault::Restart { peer, .. } => {
                let k = seeds + peer;
                let old = self.procs[k].pid();
                self.procs[k].kill("restarted (SIGKILL, then a new process)");
                let at = self.clock.now();
                if let Err(e) = self.start(k, procs_dir) {
                    return self.skip(f, &e);
                }
                let node = self.procs[k].host.addr;
                let how = match old {
                    Some(pid) => format!("SIGKILL to pid {pid}, a new process at the address"),
                    None => "a new process at the address".into(),
                };
                self.record(at, WorldEvent::Restarted { node }, &how);
            }
            Fault::Reset { peer, .. } => {
                let p = &self.procs[seeds + peer];
                if !p.up() {
                    return self.skip(f, "its process is not running");
                }
                let Some(ss) = self.tools.ss.as_deref() else {
                    return self.skip(f, "iproute2's ss is missing");
                };
                let (ns, node) = (p.host.ns.clone(), p.host.addr);
                let ss = ss.to_string_lossy();
                let args = ["netns", "exec", &ns, &ss, "-K", "-t", "state", "connected"];
                if let Err(e) = netns::run(&self.tools.ip, &args, None) {
                    return self.skip(f, &e);
                }
                let at = self.clock.now();
                let how = format!("ss -K in {ns}: every TCP connection aborted");
                self.record(at, WorldEvent::ConnectionsReset { node }, &how);
            }
            Fault::Partition { a, b, .. } => {
                if let Err(e) = self.routes(a.clone(), b.clone(), true) {
                    return self.skip(f, &e);
                }
                let at = self.clock.now();
                let how = "blackhole routes between the groups; seeds reachable from both";
                self.record(at, WorldEvent::PartitionStarted(f.to_string()), how);
            }
            Fault::SeedCrash { seed, .. } => {
                let p = &mut self.procs[*seed];
                let (Some(pid), true) = (p.pid(), p.up()) else {
                    return self.skip(f, "its process is not running");
                };
                let at = self.clock.now();
                p.kill("crashed (SIGKILL)");
                let node = p.host.addr;
                // Logged, not journaled as a node's stop: the seed's own folder is gone
                // with it, and a merge would take the address for a peer's.
                let line = format!(
                    "{}:{}",
                    Time(at.0.saturating_add(self.clock.wall_offset_micros())),
                    WorldEvent::Down {
                        node,
                        silent: false
                    }
                );
                println!(
                    "{:>9.3}s {} (SIGKILL to pid {pid})",
                    at.secs_f64(),
                    WorldEvent::Down {
                        node,
                        silent: false
                    }
                );
                self.rec.log.push(line);
            }
        }
    }

    fn heal(&mut self, f: &Fault) {
        let Fault::Partition { a, b, .. } = f else {
            return;
        };
        if let Err(e) = self.routes(a.clone(), b.clone(), false) {
            println!("gossipnet lab: cannot heal {f}: {e}");
        }
        let at = self.clock.now();
        self.record(
            at,
            WorldEvent::PartitionHealed(f.to_string()),
            "routes removed",
        );
    }

    /// Adds (or removes) the blackhole routes that cut peers `a` from peers `b`: in each
    /// namespace of one side, one a peer of the other side. Counted, so that two partitions
    /// over one pair heal apart.
    fn routes(
        &mut self,
        a: std::ops::Range<usize>,
        b: std::ops::Range<usize>,
        add: bool,
    ) -> Result<(), String> {
        let peers = self.opts.peers;
        let mut lines: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let pairs = a.clone().flat_map(|x| b.clone().map(move |y| (x, y)));
        for (x, y) in pairs.flat_map(|(x, y)| [(x, y), (y, x)]) {
            if x >= peers || y >= peers {
                continue;
            }
            let count = self.routes.entry((x, y)).or_insert(0);
            let verb = match (add, *count) {
                (true, 0) => Some("add"),
                (false, 1) => Some("del"),
                _ => None,
            };
            *count = if add {
                *count + 1
            } else {
                count.saturating_sub(1)
            };
            if let Some(verb) = verb {
                let ip = netns::peer_addr(y).ip;
                lines
                    .entry(x)
                    .or_default()
                    .push(format!("route {verb} blackhole {ip}/32"));
            }
        }
        self.routes.retain(|_, c| *c > 0);
        let seeds = self.opts.seeds;
        let batches: Vec<(String, Vec<String>)> = lines
            .into_iter()
            .map(|(x, l)| (self.procs[seeds + x].host.ns.clone(), l))
            .collect();
        netns::ip_batches(self.tools, &batches)
    }

    fn skip(&self, f: &Fault, why: &str) {
        let at = self.clock.now();
        println!("{:>9.3}s not injected: {f}: {why}", at.secs_f64());
    }

    /// Notes processes that ended on their own (a bind that failed, a bug).
    fn reap(&mut self) {
        for p in &mut self.procs {
            let Some(child) = p.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                let fate = format!("ended on its own ({status})");
                println!(
                    "gossipnet lab: {} {fate}; its console: {}.txt",
                    p.name(),
                    p.folders
                        .last()
                        .map_or(String::new(), |d| d.display().to_string())
                );
                p.child = None;
                p.fates.insert(p.folders.len().saturating_sub(1), fate);
            }
        }
    }

    /// Tells every process to stop (`SIGTERM`, and `SIGCONT` after it to a stopped one, so
    /// that it stops at once and writes its folder) and waits for them; kills what has not
    /// stopped after [`STOP_WAIT`].
    fn stop_all(&mut self) {
        for p in &self.procs {
            if p.child.is_some() {
                let _ = p.signal(Signal::SIGTERM);
                if p.stopped {
                    let _ = p.signal(Signal::SIGCONT);
                }
            }
        }
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            let mut running = 0;
            for p in &mut self.procs {
                if let Some(child) = p.child.as_mut() {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => p.child = None,
                        Ok(None) => running += 1,
                    }
                }
            }
            if running == 0 {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
        for p in &mut self.procs {
            if p.child.is_some() {
                println!(
                    "gossipnet lab: {} did not stop within {} s: killed",
                    p.name(),
                    STOP_WAIT.as_secs()
                );
                p.kill("did not stop in time (SIGKILL)");
            }
        }
    }

    /// The run folders written, and the processes that were killed (a seed or peer keeps
    /// its folder current as it runs, so a killed one leaves its records up to the kill)
    /// or wrote none, with what ended them.
    fn folders(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut written = Vec::new();
        let mut lost = Vec::new();
        for p in &self.procs {
            for (n, dir) in p.folders.iter().enumerate() {
                let name = dir
                    .file_name()
                    .map_or(String::new(), |f| f.to_string_lossy().into_owned());
                let fate = p.fates.get(&n);
                if dir.join("summary.json").is_file() {
                    written.push(dir.clone());
                    if let Some(fate) = fate {
                        lost.push(format!(
                            "killed: {name} ({}): {fate}; its folder holds what it recorded up \
                             to then",
                            p.host.addr
                        ));
                    }
                    continue;
                }
                let fate = fate.map_or("ended without writing it", String::as_str);
                lost.push(format!(
                    "lost: {name} ({}): {fate}; no run folder, its own records went with it",
                    p.host.addr
                ));
            }
        }
        (written, lost)
    }
}
