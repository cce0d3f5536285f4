//! Seeded fault campaigns, as VOPR and FoundationDB's simulation run them: run `i` of a
//! campaign seed draws its own network and faults, runs a fault phase and then a healing
//! phase, and is checked against the invariants the protocol promises. A violation names
//! the one command that replays it.
//!
//! Everything a run does is a pure function of `(seed, run, removal)`: [`draw`] makes the
//! scenario and [`execute`] runs and judges it, so `gossipnet campaign --seed S --run i`
//! replays run `i` of a 10 000-run campaign alone, byte for byte.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sim_core::addr::NodeAddr;
use sim_core::digest::DigestMemo;
use sim_core::limits::{HANDSHAKES_MAX, KNOWN_PEERS_MAX, NEIGHBOURS_MAX};
use sim_core::node::Event;
use sim_core::report::{Recorder, write_folder};
use sim_core::seed::Removal;
use sim_core::sim::{
    Fault, Latency, Observer, SimConfig, Spoofing, World, WorldEvent, derive_seed,
};
use sim_core::time::{Duration, Time};
use sim_core::topology::Topology;

use crate::sweep::{SweepOptions, run_jobs};

/// The stream of [`derive_seed`] campaign draws come from (apart from the runs' own).
const STREAM_CAMPAIGN: u64 = 0xCA_4B_A1_67;
/// Messages originated in the healing phase to check dissemination.
const PROBE_MESSAGES: usize = 3;
/// A run's queue may hold at most this many entries (a runaway detector: the largest
/// campaign network, 80 peers flooding, peaks below a hundredth of it).
pub const QUEUE_MAX: u64 = 1_000_000;
/// How often the limits are checked, in virtual time.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// One drawn run: the simulator's configuration and the campaign's timeline.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The campaign seed.
    pub seed: u64,
    /// The run's number in the campaign.
    pub run: u64,
    /// What the simulator runs (faults included).
    pub cfg: SimConfig,
    /// When the fault phase starts (every peer has joined).
    pub faults_from: Time,
    /// When it ends: every fault has happened and every partition and stall has healed.
    pub faults_until: Time,
    /// When the healing phase's messages are originated.
    pub heal_at: Time,
    /// The peers that originate them.
    pub probes: Vec<usize>,
    /// Within how long of its crash every seed of a crashed peer must have removed it.
    pub removal_bound: Duration,
    /// Peers stalled one after another (swizzle-clogging).
    pub stalled: usize,
    /// Partitions of the peers in two (not counting stalls).
    pub partitions: usize,
}

/// The bound on removal the README states: a neighbour's liveness finds a crashed peer within
/// `misses + 1` rounds; its report may wait for its reporter's hold to end
/// ([`sim_core::seed::HOLD_FOR`]) or for a check slot (one probe timeout); its seed checks
/// it (a refused dial, or silence until the probe deadline); a fellow seed told of the
/// removal dials and checks it too. Latencies are counted generously: twenty one-way trips.
pub fn removal_bound(cfg: &SimConfig) -> Duration {
    let rounds = cfg.peer.liveness_interval.0 * (u64::from(cfg.peer.misses_max) + 1);
    let wait = sim_core::seed::HOLD_FOR.0 + cfg.seed_node.probe_timeout.0;
    let checks = wait + 2 * cfg.seed_node.probe_timeout.0 + cfg.connect_timeout.0;
    Duration(rounds + checks + 20 * cfg.latency.max().0)
}

/// Draws run `run` of campaign `seed`. `removal` is the seeds' policy (the campaign's
/// `--removal`), not a draw, so that one campaign compares both policies on the same runs.
pub fn draw(seed: u64, run: u64, removal: Removal) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, STREAM_CAMPAIGN, run, 0));
    let peers = rng.random_range(3..=80usize);
    let seeds = rng.random_range(1..=5usize);
    let topology = match rng.random_range(0..4) {
        0 | 1 => Topology::default(),
        2 => Topology::Uniform {
            k: rng.random_range(1..=4),
        },
        _ => Topology::Preferential {
            m: rng.random_range(1..=3),
        },
    };
    let ms = |x: u64| Duration::from_millis(x);
    let latency = if rng.random_bool(0.5) {
        Latency::Fixed(ms(rng.random_range(1..=100)))
    } else {
        let lo = rng.random_range(1..=50);
        Latency::Uniform(ms(lo), ms(lo + rng.random_range(0..=150)))
    };
    let join_interval = ms(rng.random_range(10..=500));
    let mut cfg = SimConfig {
        seed: derive_seed(seed, STREAM_CAMPAIGN, run, 1),
        seeds,
        peers,
        latency,
        faults: Vec::new(),
        hash_iterations: 1,
        join_interval,
        ..SimConfig::default()
    };
    cfg.peer.topology = topology;
    cfg.peer.liveness_interval = Duration::from_secs([3, 5, 13][rng.random_range(0..3)]);
    cfg.peer.gossip_count = rng.random_range(1..=10);
    cfg.peer.gossip_interval = Duration::from_secs(rng.random_range(1..=5));
    cfg.seed_node.removal = removal;

    // The fault phase starts once every peer has joined.
    let faults_from = Time::ZERO + join_interval.times(peers as u64) + Duration::from_secs(5);
    let length = Duration::from_secs(rng.random_range(30..=150));
    let faults_until = faults_from + length;
    let at = |rng: &mut ChaCha8Rng| Time(rng.random_range(faults_from.0..faults_until.0));

    // Each peer suffers at most one of crash, silent failure and restart; resets and stalls
    // go to the others.
    let (p_crash, p_silent, p_restart, p_reset) = (
        rng.random_range(0.0..0.15),
        rng.random_range(0.0..0.10),
        rng.random_range(0.0..0.10),
        rng.random_range(0.0..0.15),
    );
    let mut spared = Vec::new();
    for peer in 0..peers {
        let u: f64 = rng.random();
        let t = at(&mut rng);
        if u < p_crash {
            cfg.faults.push(Fault::Crash { peer, at: t });
        } else if u < p_crash + p_silent {
            cfg.faults.push(Fault::SilentFail { peer, at: t });
        } else if u < p_crash + p_silent + p_restart {
            cfg.faults.push(Fault::Restart { peer, at: t });
        } else {
            spared.push(peer);
            if rng.random_bool(p_reset) {
                cfg.faults.push(Fault::Reset { peer, at: t });
            }
        }
    }
    let mut partitions = 0;
    if peers >= 2 && rng.random_bool(0.25) {
        partitions = 1;
        let k = rng.random_range(1..peers);
        let start = at(&mut rng);
        let end = Time(rng.random_range(start.0 + 1..=faults_until.0));
        cfg.faults.push(Fault::Partition {
            a: 0..k,
            b: k..peers,
            start,
            end,
        });
    }
    // Swizzle-clogging: peers are cut off from all others one by one, then healed in a
    // random order.
    let mut stalled = 0;
    if peers >= 2 && rng.random_bool(0.3) {
        let n = rng.random_range(1..=spared.len().clamp(1, 5));
        let order = rand::seq::index::sample(&mut rng, spared.len().max(1), n.min(spared.len()));
        let chosen: Vec<usize> = order.iter().map(|i| spared[i]).collect();
        stalled = chosen.len();
        let span = length.0 / 2;
        let gap = span / (2 * chosen.len().max(1) as u64);
        let t0 = faults_from.0 + rng.random_range(0..=span / 2);
        let mut heal: Vec<usize> = (0..chosen.len()).collect();
        for i in (1..heal.len()).rev() {
            heal.swap(i, rng.random_range(0..=i));
        }
        let last_start = t0 + gap * chosen.len() as u64;
        for (j, &p) in chosen.iter().enumerate() {
            let start = Time(t0 + gap * j as u64);
            let end = Time((last_start + gap * (heal[j] as u64 + 1)).min(faults_until.0));
            let end = end.max(Time(start.0 + 1));
            if p > 0 {
                cfg.faults.push(Fault::Partition {
                    a: p..p + 1,
                    b: 0..p,
                    start,
                    end,
                });
            }
            if p + 1 < peers {
                cfg.faults.push(Fault::Partition {
                    a: p..p + 1,
                    b: p + 1..peers,
                    start,
                    end,
                });
            }
        }
    }
    // A minority of the seeds may crash: every peer registered with a majority, so each
    // keeps one seed.
    let minority = (seeds - 1) / 2;
    if minority > 0 && rng.random_bool(0.3) {
        let n = rng.random_range(1..=minority);
        for seed in rand::seq::index::sample(&mut rng, seeds, n) {
            cfg.faults.push(Fault::SeedCrash {
                seed,
                at: at(&mut rng),
            });
        }
    }
    if rng.random_bool(0.3) {
        cfg.spoofer = Some(Spoofing {
            start: faults_from,
            end: faults_until,
            every: Duration::from_secs(rng.random_range(5..=20)),
        });
    }
    let removal_bound = removal_bound(&cfg);
    let heal_at = faults_until + removal_bound + cfg.peer.liveness_interval;
    cfg.duration = Duration(heal_at.0 + Duration::from_secs(30).0);
    let down: BTreeSet<usize> = cfg
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { peer, .. } | Fault::SilentFail { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    let alive: Vec<usize> = (0..peers).filter(|p| !down.contains(p)).collect();
    let probes = rand::seq::index::sample(&mut rng, alive.len(), PROBE_MESSAGES.min(alive.len()))
        .iter()
        .map(|i| alive[i])
        .collect();
    Scenario {
        seed,
        run,
        cfg,
        faults_from,
        faults_until,
        heal_at,
        probes,
        removal_bound,
        stalled,
        partitions,
    }
}

/// Whether run `run` of campaign `seed` is executed twice and its digests compared (one run
/// in twenty).
pub fn checked_twice(seed: u64, run: u64) -> bool {
    derive_seed(seed, STREAM_CAMPAIGN, run, 2).is_multiple_of(20)
}

/// One run's row of `campaign.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    /// The run's number.
    pub run: u64,
    /// Peers.
    pub peers: usize,
    /// Seeds.
    pub seeds: usize,
    /// Topology policy.
    pub topology: String,
    /// Latency model.
    pub latency: String,
    /// Join interval, seconds.
    pub join_interval_s: f64,
    /// Liveness interval, seconds.
    pub liveness_s: f64,
    /// Crashed peers.
    pub crashes: usize,
    /// Peers that failed silently.
    pub silent: usize,
    /// Restarted peers.
    pub restarts: usize,
    /// Peers whose connections were reset.
    pub resets: usize,
    /// Partitions of the network in two.
    pub partitions: usize,
    /// Peers stalled one by one.
    pub stalled: usize,
    /// Seeds that crashed.
    pub seed_crashes: usize,
    /// Whether a spoofing client ran.
    pub spoofer: bool,
    /// Fault phase, seconds from the start.
    pub faults_from_s: f64,
    /// End of the fault phase.
    pub faults_until_s: f64,
    /// Virtual time simulated.
    pub duration_s: f64,
    /// Queue entries processed.
    pub events: u64,
    /// Gossip messages originated.
    pub messages: usize,
    /// First deliveries of gossip.
    pub deliveries: usize,
    /// Peers declared dead by a neighbour.
    pub detections: usize,
    /// Of those, peers that were running.
    pub false_detections: usize,
    /// Removals by seeds.
    pub removals: usize,
    /// Reports the seeds dismissed after checking the accused.
    pub dismissed: u64,
    /// Slowest removal of a crashed peer by one of its seeds, seconds after the crash.
    pub slowest_removal_s: f64,
    /// Most queue entries waiting at a check.
    pub peak_queue: u64,
    /// Most connections one peer held at a check.
    pub peak_peer_connections: usize,
    /// Whether the run was executed twice with equal digests.
    pub twice: bool,
    /// SHA-256 of the run's trace.
    pub digest: String,
    /// Invariant checks that failed.
    pub violations: usize,
    /// The invariants they break, `;`-separated (see [`violation_kind`]).
    pub broken: String,
    /// The first invariant check that failed (empty: none).
    pub violation: String,
}

/// What the invariants check as the run goes.
struct Checker {
    rec: Recorder,
    /// Incarnation of each peer (PeerStarted count); look-ups only.
    incarnation: HashMap<NodeAddr, u32>,
    /// First deliveries, by receiver incarnation and identity; look-ups only.
    delivered: HashSet<(NodeAddr, u32, String)>,
    /// The incarnation that originated each message, by identity; look-ups only.
    originated: HashMap<String, u32>,
    /// Crashed or silent peers: when, their seeds then, and their running mutual neighbours
    /// with their incarnations.
    downs: Vec<Down>,
    /// When each seed went down.
    seed_down: BTreeMap<NodeAddr, Time>,
    /// The first violations (at most 16 kept).
    violations: Vec<String>,
    /// Every invariant broken, however many times.
    broken: BTreeSet<&'static str>,
}

struct Down {
    peer: NodeAddr,
    at: Time,
    seeds: BTreeSet<NodeAddr>,
    watchers: Vec<(NodeAddr, u32)>,
}

impl Checker {
    fn new(keep_log: bool) -> Self {
        let mut rec = Recorder::new(0);
        rec.keep_log = keep_log;
        Checker {
            rec,
            incarnation: HashMap::new(),
            delivered: HashSet::new(),
            originated: HashMap::new(),
            downs: Vec::new(),
            seed_down: BTreeMap::new(),
            violations: Vec::new(),
            broken: BTreeSet::new(),
        }
    }

    fn violate(&mut self, v: String) {
        self.broken.insert(violation_kind(&v));
        if self.violations.len() < 16 {
            self.violations.push(v);
        }
    }

    fn running(&self, peer: NodeAddr) -> bool {
        self.rec.peers.get(&peer).is_some_and(|s| s.up)
    }
}

impl Observer for Checker {
    fn event(&mut self, at: Time, node: NodeAddr, event: &Event) {
        match event {
            Event::PeerStarted { .. } => *self.incarnation.entry(node).or_default() += 1,
            Event::GossipOriginated { message, .. } => {
                let inc = self.incarnation.get(&node).copied().unwrap_or(0);
                self.originated.insert(message.identity(), inc);
            }
            Event::GossipDelivered { message, .. } => {
                let inc = self.incarnation.get(&node).copied().unwrap_or(0);
                // A restarted peer has forgotten what its earlier incarnation sent.
                let mine = self.originated.get(&message.identity()) == Some(&inc);
                if message.origin == node && mine {
                    self.violate(format!(
                        "{at}: {node} was delivered its own message {}",
                        message.identity()
                    ));
                }
                if !self.delivered.insert((node, inc, message.identity())) {
                    self.violate(format!(
                        "{at}: {node} was delivered {} twice",
                        message.identity()
                    ));
                }
            }
            Event::PeerRemovedBySeed { dead, reporter, .. }
                if *dead != Spoofing::ADDR && self.running(*dead) =>
            {
                self.violate(format!(
                    "{at}: seed {node} removed {dead}, which runs (reported by {reporter})"
                ));
            }
            _ => {}
        }
        self.rec.event(at, node, event);
    }

    fn world(&mut self, at: Time, event: &WorldEvent) {
        let before = match event {
            WorldEvent::Down { node, .. } => self.rec.peers.get(node).map(|s| {
                (
                    s.registered_with.clone(),
                    s.neighbours.iter().copied().collect::<Vec<_>>(),
                )
            }),
            _ => None,
        };
        self.rec.world(at, event);
        if let WorldEvent::Down { node, .. } = event {
            if self.rec.seeds.contains_key(node) {
                self.seed_down.insert(*node, at);
            } else if let Some((seeds, _)) = before {
                let watchers = self
                    .rec
                    .peers
                    .get(node)
                    .map(|s| s.neighbours_at_down.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|w| (w, self.incarnation.get(&w).copied().unwrap_or(0)))
                    .collect();
                self.downs.push(Down {
                    peer: *node,
                    at,
                    seeds,
                    watchers,
                });
            }
        }
    }
}

/// What one run gave.
pub struct Executed {
    /// Its row.
    pub row: RunRow,
    /// Every violation found (the row keeps the first).
    pub violations: Vec<String>,
    /// The recorder, for a run folder.
    recorder: Recorder,
}

/// Runs a scenario and checks it. `keep_log` keeps the log lines for a run folder.
pub fn execute(sc: &Scenario, keep_log: bool) -> Result<Executed, String> {
    let cfg = &sc.cfg;
    let mut world = World::new(cfg.clone(), DigestMemo::new(cfg.hash_iterations))?;
    for (k, &p) in sc.probes.iter().enumerate() {
        world.originate_at(p, sc.heal_at, format!("healing-phase probe {k}"));
    }
    let mut chk = Checker::new(keep_log);
    let end = Time::ZERO + cfg.duration;
    let (mut peak_queue, mut peak_conns) = (0u64, 0usize);
    while world.now() < end {
        let next = (world.now() + CHECK_EVERY).min(end);
        world.run_until(next, &mut chk);
        let stats = world.stats();
        peak_queue = peak_queue.max(stats.queued);
        if stats.queued > QUEUE_MAX {
            chk.violate(format!(
                "{next}: {} queue entries, above the bound {QUEUE_MAX}",
                stats.queued
            ));
            break;
        }
        let messages = chk.rec.messages.len();
        for i in 0..cfg.peers {
            let Some(p) = world.peer(i) else { continue };
            let most = match cfg.peer.topology {
                Topology::Capacity { .. } => p.capacity(),
                _ => NEIGHBOURS_MAX,
            };
            let (n, conns) = (p.neighbours().count(), p.connections());
            peak_conns = peak_conns.max(conns);
            let why = if n > most {
                Some(format!("{n} neighbours, above its limit {most}"))
            } else if p.known() > KNOWN_PEERS_MAX {
                Some(format!(
                    "{} known peers, above {KNOWN_PEERS_MAX}",
                    p.known()
                ))
            } else if p.seen() > messages {
                Some(format!("{} seen entries for {messages} messages", p.seen()))
            } else if conns > most + cfg.seeds + HANDSHAKES_MAX {
                Some(format!("{conns} connections for {most} neighbours"))
            } else {
                None
            };
            if let Some(why) = why {
                chk.violate(format!("{next}: peer {}: {why}", p.addr()));
            }
        }
        for j in 0..cfg.seeds {
            let Some(s) = world.seed(j) else { continue };
            let most = cfg.peers + usize::from(cfg.spoofer.is_some());
            if s.registered().len() > most {
                chk.violate(format!(
                    "{next}: seed {} lists {} peers of {most}",
                    s.addr(),
                    s.registered().len()
                ));
            }
        }
    }
    let digest = world.trace_digest();
    let events = world.stats().events_processed;
    let slowest = check_end(sc, &mut chk);
    let rec = &chk.rec;
    let count = |f: &dyn Fn(&Fault) -> bool| cfg.faults.iter().filter(|x| f(x)).count();
    let row = RunRow {
        run: sc.run,
        peers: cfg.peers,
        seeds: cfg.seeds,
        topology: cfg.peer.topology.to_string(),
        latency: cfg.latency.to_string(),
        join_interval_s: cfg.join_interval.secs_f64(),
        liveness_s: cfg.peer.liveness_interval.secs_f64(),
        crashes: count(&|f| matches!(f, Fault::Crash { .. })),
        silent: count(&|f| matches!(f, Fault::SilentFail { .. })),
        restarts: count(&|f| matches!(f, Fault::Restart { .. })),
        resets: count(&|f| matches!(f, Fault::Reset { .. })),
        partitions: sc.partitions,
        stalled: sc.stalled,
        seed_crashes: count(&|f| matches!(f, Fault::SeedCrash { .. })),
        spoofer: cfg.spoofer.is_some(),
        faults_from_s: Duration(sc.faults_from.0).secs_f64(),
        faults_until_s: Duration(sc.faults_until.0).secs_f64(),
        duration_s: cfg.duration.secs_f64(),
        events,
        messages: rec.messages.len(),
        deliveries: rec.deliveries.len(),
        detections: rec.detections.len(),
        false_detections: rec.detections.iter().filter(|d| d.false_positive).count(),
        removals: rec.removals.values().map(Vec::len).sum(),
        dismissed: rec.reports_dismissed,
        slowest_removal_s: slowest.secs_f64(),
        peak_queue,
        peak_peer_connections: peak_conns,
        twice: false,
        digest,
        violations: chk.violations.len(),
        broken: chk.broken.iter().copied().collect::<Vec<_>>().join(";"),
        violation: chk.violations.first().cloned().unwrap_or_default(),
    };
    Ok(Executed {
        row,
        violations: chk.violations,
        recorder: chk.rec,
    })
}

/// The invariants judged once the run is over; the slowest removal of a crashed peer.
fn check_end(sc: &Scenario, chk: &mut Checker) -> Duration {
    let end = Time::ZERO + sc.cfg.duration;
    let mut slowest = Duration::ZERO;
    let mut found = Vec::new();
    let rec = &chk.rec;
    // Every crashed (or silent) peer that a running neighbour watched is removed by every
    // seed it had registered with that still runs, within the bound.
    for d in &chk.downs {
        let deadline = d.at + sc.removal_bound;
        let lasted = |w: &NodeAddr, inc: u32| {
            chk.incarnation.get(w).copied().unwrap_or(0) == inc
                && rec
                    .peers
                    .get(w)
                    .is_some_and(|s| s.up || s.down_at.is_some_and(|t| t > deadline))
        };
        if !d.watchers.iter().any(|(w, inc)| lasted(w, *inc)) {
            continue;
        }
        let removals = rec.removals.get(&d.peer).map(Vec::as_slice).unwrap_or(&[]);
        for seed in &d.seeds {
            if chk.seed_down.get(seed).is_some_and(|t| *t <= deadline) {
                continue;
            }
            match removals.iter().find(|(s, t)| s == seed && *t >= d.at) {
                Some((_, t)) if *t <= deadline => slowest = slowest.max(Duration(t.0 - d.at.0)),
                Some((_, t)) => found.push(format!(
                    "{}: seed {seed} removed {} (down at {}) {} after it went down, past the bound {}",
                    t,
                    d.peer,
                    d.at,
                    Duration(t.0 - d.at.0),
                    sc.removal_bound
                )),
                None => found.push(format!(
                    "{end}: seed {seed} still lists {} (down at {}), past the bound {}",
                    d.peer, d.at, sc.removal_bound
                )),
            }
        }
    }
    // Every healing-phase message reaches every running peer connected to its origin.
    for m in rec
        .messages
        .iter()
        .filter(|m| m.originated_at == sc.heal_at)
    {
        let origin = m.message.origin;
        for &p in &m.reachable {
            let inc = chk.incarnation.get(&p).copied().unwrap_or(0);
            let running = rec.peers.get(&p).is_some_and(|s| s.up);
            if running && !chk.delivered.contains(&(p, inc, m.message.identity())) {
                found.push(format!(
                    "{end}: {p} never got the healing-phase message of {origin}, to which it was connected"
                ));
            }
        }
    }
    for f in found {
        chk.violate(f);
    }
    slowest
}

/// The command line that replays run `run`.
pub fn replay_line(seed: u64, run: u64, removal: Removal) -> String {
    let policy = match removal {
        Removal::Verify => String::new(),
        Removal::Trust => " --removal trust".into(),
    };
    format!("gossipnet campaign --seed {seed} --run {run}{policy}")
}

/// Runs one scenario again with its log kept and writes its run folder (the same files
/// `gossipnet sim` writes, plus `violations.txt` and `scenario.txt`).
pub fn write_run(sc: &Scenario, dir: &Path) -> Result<Executed, String> {
    let ex = execute(sc, true)?;
    let extra = serde_json::json!({
        "seed": sc.cfg.seed,
        "campaign_seed": sc.seed,
        "campaign_run": sc.run,
        "command": replay_line(sc.seed, sc.run, sc.cfg.seed_node.removal),
        "parameters": crate::run::parameters(&sc.cfg),
        "trace_digest": ex.row.digest,
        "violations": ex.violations,
    });
    write_folder(dir, &ex.recorder, extra)
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}",
        replay_line(sc.seed, sc.run, sc.cfg.seed_node.removal)
    );
    let _ = writeln!(text, "{}", describe(sc));
    fs::write(dir.join("scenario.txt"), text)
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let v = ex.violations.join("\n");
    fs::write(dir.join("violations.txt"), v + "\n")
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    Ok(ex)
}

/// A scenario in a few lines: sizes, models, the timeline and every fault.
pub fn describe(sc: &Scenario) -> String {
    let c = &sc.cfg;
    let mut s = format!(
        "{} peers, {} seeds, topology {}, latency {}, joins every {}, liveness every {}, \
         {} messages a peer every {}, removal {}, run seed {}\n\
         fault phase {}..{}, healing-phase messages at {} from peers {:?}, end {}; \
         removal bound {}",
        c.peers,
        c.seeds,
        c.peer.topology,
        c.latency,
        c.join_interval,
        c.peer.liveness_interval,
        c.peer.gossip_count,
        c.peer.gossip_interval,
        c.seed_node.removal,
        c.seed,
        sc.faults_from,
        sc.faults_until,
        sc.heal_at,
        sc.probes,
        Time::ZERO + c.duration,
        sc.removal_bound,
    );
    if let Some(sp) = &c.spoofer {
        let _ = write!(
            s,
            "\nspoofing client at {} from {} to {}, every {}",
            Spoofing::ADDR,
            sp.start,
            sp.end,
            sp.every
        );
    }
    for f in &c.faults {
        let _ = write!(s, "\n{f}");
    }
    s
}

/// A campaign's settings.
pub struct CampaignOptions {
    /// The campaign seed.
    pub seed: u64,
    /// Runs 0..runs.
    pub runs: u64,
    /// The seeds' removal policy.
    pub removal: Removal,
    /// Where campaign.csv, summary.txt and the folders of failed runs go.
    pub out: PathBuf,
    /// Threads and progress bar.
    pub sweep: SweepOptions,
}

/// What a campaign found.
pub struct CampaignSummary {
    /// Every run's row, in run order.
    pub rows: Vec<RunRow>,
    /// Runs that violated an invariant.
    pub failed: Vec<u64>,
    /// Runs executed twice.
    pub twice: usize,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// The summary's text (also in summary.txt).
    pub text: String,
}

/// Folders of failed runs written at most (the CSV has every one).
const FOLDERS_MAX: usize = 20;

/// Runs a campaign: every run on all cores, one run in twenty twice, `campaign.csv`,
/// `summary.txt`, and a run folder for each failed run (the first twenty).
pub fn campaign(opts: &CampaignOptions) -> Result<CampaignSummary, String> {
    fs::create_dir_all(&opts.out)
        .map_err(|e| format!("cannot create {}: {e}", opts.out.display()))?;
    let started = Instant::now();
    let runs: Vec<u64> = (0..opts.runs).collect();
    let (seed, removal) = (opts.seed, opts.removal);
    let rows = run_jobs(
        &runs,
        &opts.sweep,
        "campaign",
        |r| format!("run {r}"),
        |&r| {
            let sc = draw(seed, r, removal);
            let mut ex = execute(&sc, false)?;
            if checked_twice(seed, r) {
                let again = execute(&sc, false)?;
                ex.row.twice = true;
                if again.row.digest != ex.row.digest {
                    let v = format!(
                        "not deterministic: trace digests {} and {}",
                        ex.row.digest, again.row.digest
                    );
                    ex.row.violations += 1;
                    ex.row.broken = [ex.row.broken.as_str(), violation_kind(&v)]
                        .into_iter()
                        .filter(|k| !k.is_empty())
                        .collect::<Vec<_>>()
                        .join(";");
                    if ex.row.violation.is_empty() {
                        ex.row.violation = v;
                    }
                }
            }
            Ok(ex.row)
        },
    )?;
    let wall_s = started.elapsed().as_secs_f64();
    let csv_path = opts.out.join("campaign.csv");
    let mut w = csv::Writer::from_path(&csv_path)
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    for row in &rows {
        w.serialize(row)
            .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    let failed: Vec<u64> = rows
        .iter()
        .filter(|r| !r.violation.is_empty())
        .map(|r| r.run)
        .collect();
    for &r in failed.iter().take(FOLDERS_MAX) {
        write_run(&draw(seed, r, removal), &opts.out.join(format!("run-{r}")))?;
    }
    let twice = rows.iter().filter(|r| r.twice).count();
    let text = summary_text(opts, &rows, &failed, twice, wall_s);
    fs::write(opts.out.join("summary.txt"), &text)
        .map_err(|e| format!("cannot write summary: {e}"))?;
    Ok(CampaignSummary {
        rows,
        failed,
        twice,
        wall_s,
        text,
    })
}

fn summary_text(
    opts: &CampaignOptions,
    rows: &[RunRow],
    failed: &[u64],
    twice: usize,
    wall_s: f64,
) -> String {
    let mut s = String::new();
    let sum = |f: fn(&RunRow) -> usize| rows.iter().map(f).sum::<usize>();
    let _ = writeln!(
        s,
        "campaign --seed {} --runs {} --removal {}: {} runs, {} violated an invariant, {} run twice with equal digests{}",
        opts.seed,
        opts.runs,
        opts.removal,
        rows.len(),
        failed.len(),
        twice
            - rows
                .iter()
                .filter(|r| r.twice && r.violation.starts_with("not deterministic"))
                .count(),
        if failed.is_empty() {
            ""
        } else {
            " (see below)"
        },
    );
    let _ = writeln!(
        s,
        "faults: {} crashes, {} silent failures, {} restarts, {} resets, {} partitions, {} stalled peers, {} seed crashes, {} runs with a spoofing client",
        sum(|r| r.crashes),
        sum(|r| r.silent),
        sum(|r| r.restarts),
        sum(|r| r.resets),
        sum(|r| r.partitions),
        sum(|r| r.stalled),
        sum(|r| r.seed_crashes),
        rows.iter().filter(|r| r.spoofer).count(),
    );
    let slowest = rows.iter().map(|r| r.slowest_removal_s).fold(0.0, f64::max);
    let _ = writeln!(
        s,
        "figures: {} events, {} messages, {} deliveries, {} detections ({} of running peers), {} removals, {} reports dismissed, slowest removal {slowest:.1} s after a crash, peak queue {}",
        rows.iter().map(|r| r.events).sum::<u64>(),
        sum(|r| r.messages),
        sum(|r| r.deliveries),
        sum(|r| r.detections),
        sum(|r| r.false_detections),
        sum(|r| r.removals),
        rows.iter().map(|r| r.dismissed).sum::<u64>(),
        rows.iter().map(|r| r.peak_queue).max().unwrap_or(0),
    );
    let _ = writeln!(
        s,
        "wall time {wall_s:.1} s on {} threads",
        opts.sweep.threads
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.broken.is_empty()) {
        for k in r.broken.split(';') {
            *kinds.entry(k).or_default() += 1;
        }
    }
    for (k, n) in &kinds {
        let _ = writeln!(s, "  {n} runs broke: {k}");
    }
    for r in rows
        .iter()
        .filter(|r| !r.violation.is_empty())
        .take(FOLDERS_MAX)
    {
        let _ = writeln!(
            s,
            "run {}: {}\n  replay: {}  (folder {})",
            r.run,
            r.violation,
            replay_line(opts.seed, r.run, opts.removal),
            opts.out.join(format!("run-{}", r.run)).display()
        );
    }
    s
}

/// The invariant a violation line breaks.
pub fn violation_kind(v: &str) -> &'static str {
    if v.contains("twice") || v.contains("its own message") {
        "a message delivered twice"
    } else if v.contains("which runs") && v.contains(&Spoofing::ADDR.to_string()) {
        "a running peer removed by a seed on a spoofing client's report"
    } else if v.contains("which runs") {
        "a running peer removed by a seed on a peer's report"
    } else if v.contains("still lists") || v.contains("past the bound") {
        "a crashed peer kept by one of its seeds past the bound"
    } else if v.contains("healing-phase") {
        "a healing-phase message missed a connected peer"
    } else if v.contains("not deterministic") {
        "two executions differ"
    } else {
        "a limit exceeded"
    }
}
