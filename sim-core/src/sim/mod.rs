//! The deterministic simulator: virtual time, an event queue ordered by `(time, sequence)`,
//! per-node RNGs derived from the run seed, TCP-like links and faults as data.
//!
//! The same binary, configuration and seed give the same trace, byte for byte; the trace's
//! SHA-256 is the run's fingerprint.

mod faults;
pub mod layout;
mod net;

use core::cmp::Ordering;
use core::fmt::{self, Write as _};
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest as _, Sha256};

pub use faults::Fault;
pub use net::Latency;

use crate::addr::NodeAddr;
use crate::digest::DigestMemo;
use crate::limits::SEEDS_MAX;
use crate::node::{ConnId, Event, Input, Node, Output, TimerId};
use crate::peer::{PeerConfig, PeerNode};
use crate::seed::{SeedConfig, SeedNode};
use crate::time::{Duration, Time};
use net::Network;

/// Everything that defines a simulated run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The run seed: every random choice derives from it.
    pub seed: u64,
    /// Number of seed nodes.
    pub seeds: usize,
    /// Number of peers.
    pub peers: usize,
    /// Virtual time to simulate.
    pub duration: Duration,
    /// One-way message latency.
    pub latency: Latency,
    /// Scheduled faults.
    pub faults: Vec<Fault>,
    /// Peer protocol settings.
    pub peer: PeerConfig,
    /// Seed settings.
    pub seed_node: SeedConfig,
    /// PBKDF2 iterations of the dedup digest.
    pub hash_iterations: u32,
    /// Peer `i` starts at `(i + 1) * join_interval`, as a runner script starts them in turn.
    pub join_interval: Duration,
    /// How long a connection attempt to a silent or partitioned host takes to fail.
    pub connect_timeout: Duration,
    /// Node addresses; `None` uses the [`layout`] (seeds 127.0.0.1:8080.., peers
    /// 127.0.0.1:5000..). A comparison with a real run passes the real run's addresses, so
    /// that capacities and message texts match.
    pub addresses: Option<Addresses>,
}

/// Explicit node addresses for a simulated run.
#[derive(Clone, Debug, PartialEq)]
pub struct Addresses {
    /// Seed `j` listens at `seeds[j]`.
    pub seeds: Vec<NodeAddr>,
    /// Peer `i` listens at `peers[i]`.
    pub peers: Vec<NodeAddr>,
}

impl Default for SimConfig {
    /// The main job: 3 seeds, 40 peers, 5 minutes, 20 ms links, peer 4 crashes at 60 s.
    fn default() -> Self {
        SimConfig {
            seed: 1,
            seeds: 3,
            peers: 40,
            duration: Duration::from_secs(300),
            latency: Latency::default(),
            faults: vec![Fault::Crash {
                peer: 4,
                at: Time(60_000_000),
            }],
            peer: PeerConfig::default(),
            seed_node: SeedConfig::default(),
            hash_iterations: crate::digest::ITERATIONS_DEFAULT,
            join_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(3),
            addresses: None,
        }
    }
}

impl SimConfig {
    /// Checks sizes and faults; the error says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.seeds == 0 || self.seeds > SEEDS_MAX {
            return Err(format!(
                "--seeds must be from 1 to {SEEDS_MAX}, not {}",
                self.seeds
            ));
        }
        if self.peers > layout::PEERS_MAX {
            return Err(format!("--peers must be at most {}", layout::PEERS_MAX));
        }
        if self.peer.misses_max == 0 || self.peer.misses_max > crate::limits::MISSES_MAX {
            return Err(format!(
                "--misses must be from 1 to {}",
                crate::limits::MISSES_MAX
            ));
        }
        if self.peer.gossip_count > crate::limits::GOSSIP_COUNT_MAX {
            return Err(format!(
                "--gossip-count must be at most {}",
                crate::limits::GOSSIP_COUNT_MAX
            ));
        }
        for (name, d) in [
            ("--liveness-interval", self.peer.liveness_interval),
            ("--gossip-interval", self.peer.gossip_interval),
        ] {
            if d == Duration::ZERO {
                return Err(format!("{name} must be more than zero"));
            }
        }
        if self.hash_iterations == 0 {
            return Err("--hash-iterations must be at least 1".into());
        }
        if let Some(a) = &self.addresses {
            if a.seeds.len() != self.seeds || a.peers.len() != self.peers {
                return Err(format!(
                    "{} seed and {} peer addresses given for {} seeds and {} peers",
                    a.seeds.len(),
                    a.peers.len(),
                    self.seeds,
                    self.peers
                ));
            }
            let distinct: std::collections::BTreeSet<_> = a.seeds.iter().chain(&a.peers).collect();
            if distinct.len() != self.seeds + self.peers {
                return Err("node addresses must be distinct".into());
            }
        }
        self.faults
            .iter()
            .try_for_each(|f| f.validate(self.seeds, self.peers))
    }

    /// Where seed `j` listens.
    pub fn seed_addr(&self, j: usize) -> NodeAddr {
        match &self.addresses {
            Some(a) => a.seeds[j],
            None => layout::seed_addr(j),
        }
    }

    /// Where peer `i` listens.
    pub fn peer_addr(&self, i: usize) -> NodeAddr {
        match &self.addresses {
            Some(a) => a.peers[i],
            None => layout::peer_addr(i),
        }
    }

    /// Every seed address, in order.
    pub fn seed_addrs(&self) -> Vec<NodeAddr> {
        (0..self.seeds).map(|j| self.seed_addr(j)).collect()
    }
}

/// What the world does to nodes, for logs and reports beside the nodes' own events.
#[derive(Clone, Debug, PartialEq)]
pub enum WorldEvent {
    /// A node stopped. `silent`: its connections stay open and unanswered.
    Down {
        /// The node.
        node: NodeAddr,
        /// Silent failure rather than a crash.
        silent: bool,
    },
    /// A node restarted with fresh state.
    Restarted {
        /// The node.
        node: NodeAddr,
    },
    /// A partition began.
    PartitionStarted(String),
    /// A partition healed.
    PartitionHealed(String),
}

impl fmt::Display for WorldEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldEvent::Down {
                node,
                silent: false,
            } => write!(f, "Fault: {node} crashed"),
            WorldEvent::Down { node, silent: true } => write!(f, "Fault: {node} failed silently"),
            WorldEvent::Restarted { node } => write!(f, "Fault: {node} restarted"),
            WorldEvent::PartitionStarted(p) => write!(f, "Fault: {p} started"),
            WorldEvent::PartitionHealed(p) => write!(f, "Fault: {p} healed"),
        }
    }
}

/// Receives what happens in a run, in order.
pub trait Observer {
    /// A node emitted `event` at `at`.
    fn event(&mut self, at: Time, node: NodeAddr, event: &Event);
    /// The world did something to the network.
    fn world(&mut self, _at: Time, _event: &WorldEvent) {}
}

/// An observer that ignores everything.
impl Observer for () {
    fn event(&mut self, _: Time, _: NodeAddr, _: &Event) {}
}

/// Counters of a run so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorldStats {
    /// Queue entries processed.
    pub events_processed: u64,
    /// Node events emitted.
    pub node_events: u64,
    /// Wire messages delivered.
    pub messages_delivered: u64,
    /// Connections opened.
    pub connections: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Not started yet.
    Waiting,
    Up,
    Crashed,
    Silent,
}

enum Machine {
    Seed(Box<SeedNode>),
    Peer(Box<PeerNode>),
}

impl Machine {
    fn node(&mut self) -> &mut dyn Node {
        match self {
            Machine::Seed(s) => s.as_mut(),
            Machine::Peer(p) => p.as_mut(),
        }
    }
}

struct Slot {
    addr: NodeAddr,
    status: Status,
    incarnation: u32,
    machine: Machine,
}

enum Action {
    Start {
        node: usize,
    },
    Timer {
        node: usize,
        incarnation: u32,
        timer: TimerId,
    },
    Deliver {
        link: u64,
        to: usize,
        msg: Message,
    },
    CloseArrives {
        link: u64,
        to: usize,
    },
    SynArrives {
        link: u64,
    },
    SynAckArrives {
        link: u64,
    },
    ConnectFails {
        node: usize,
        incarnation: u32,
        addr: NodeAddr,
    },
    Fault(usize),
    PartitionHeals(usize),
    Originate {
        peer: usize,
        body: String,
    },
}

use crate::wire::Message;

struct Scheduled {
    at: Time,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so that `BinaryHeap` pops the earliest `(time, sequence)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Feeds formatted text into a SHA-256 without allocating.
struct HashWriter<'a>(&'a mut Sha256);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// A sub-seed for one stream of randomness (SplitMix64 over the run seed and the stream's
/// coordinates), so that adding a node or a draw in one place does not shift the others.
pub fn derive_seed(run_seed: u64, stream: u64, index: u64, incarnation: u64) -> u64 {
    let mut x = run_seed;
    for v in [stream, index, incarnation] {
        x = splitmix(x ^ splitmix(v.wrapping_add(0x9E37_79B9_7F4A_7C15)));
    }
    x
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG of seed `j` of a run, first incarnation. The real drivers use it too, so a real
/// run with `--seed S` makes the same random choices as the simulation of seed `S`.
pub fn seed_rng(run_seed: u64, j: usize) -> ChaCha8Rng {
    node_rng(run_seed, STREAM_SEED, j, 0)
}

/// The RNG of peer `i` of a run, first incarnation (see [`seed_rng`]).
pub fn peer_rng(run_seed: u64, i: usize) -> ChaCha8Rng {
    node_rng(run_seed, STREAM_PEER, i, 0)
}

/// The RNG of node `index` of a stream, in its `incarnation`.
fn node_rng(run_seed: u64, stream: u64, index: usize, incarnation: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(
        run_seed,
        stream,
        index as u64,
        incarnation.into(),
    ))
}

const STREAM_NET: u64 = 1;
const STREAM_SEED: u64 = 2;
const STREAM_PEER: u64 = 3;

/// The simulated world: nodes, links, the event queue and the trace.
pub struct World {
    cfg: SimConfig,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    slots: Vec<Slot>,
    index: BTreeMap<NodeAddr, usize>,
    net: Network,
    rng: ChaCha8Rng,
    memo: Arc<DigestMemo>,
    trace: Sha256,
    trace_out: Option<Box<dyn Write>>,
    stats: WorldStats,
    line: String,
}

impl World {
    /// A world ready to run `cfg` (validated first). `memo` computes digests; pass one
    /// with a stopwatch to measure hashing time.
    pub fn new(cfg: SimConfig, memo: Arc<DigestMemo>) -> Result<Self, String> {
        cfg.validate()?;
        let seeds = cfg.seed_addrs();
        let mut slots = Vec::with_capacity(cfg.seeds + cfg.peers);
        for j in 0..cfg.seeds {
            slots.push(Self::make_seed(&cfg, j, 0));
        }
        for i in 0..cfg.peers {
            slots.push(Self::make_peer(&cfg, &seeds, &memo, i, 0));
        }
        let index = slots.iter().enumerate().map(|(i, s)| (s.addr, i)).collect();
        let mut w = World {
            net: Network::new(&cfg.faults, cfg.seeds),
            rng: ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, STREAM_NET, 0, 0)),
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            slots,
            index,
            memo,
            trace: Sha256::new(),
            trace_out: None,
            stats: WorldStats::default(),
            line: String::new(),
            cfg,
        };
        for j in 0..w.cfg.seeds {
            w.schedule(Time::ZERO, Action::Start { node: j });
        }
        for i in 0..w.cfg.peers {
            let at = Time::ZERO + w.cfg.join_interval.times(i as u64 + 1);
            w.schedule(
                at,
                Action::Start {
                    node: w.cfg.seeds + i,
                },
            );
        }
        for k in 0..w.cfg.faults.len() {
            let at = w.cfg.faults[k].at();
            w.schedule(at, Action::Fault(k));
        }
        Ok(w)
    }

    fn make_seed(cfg: &SimConfig, j: usize, incarnation: u32) -> Slot {
        let addr = cfg.seed_addr(j);
        let rng = node_rng(cfg.seed, STREAM_SEED, j, incarnation);
        let machine = Machine::Seed(Box::new(SeedNode::new(addr, cfg.seed_node.clone(), rng)));
        Slot {
            addr,
            status: Status::Waiting,
            incarnation,
            machine,
        }
    }

    fn make_peer(
        cfg: &SimConfig,
        seeds: &[NodeAddr],
        memo: &Arc<DigestMemo>,
        i: usize,
        incarnation: u32,
    ) -> Slot {
        let addr = cfg.peer_addr(i);
        let rng = node_rng(cfg.seed, STREAM_PEER, i, incarnation);
        let peer = PeerNode::new(
            addr,
            seeds.to_vec(),
            cfg.peer.clone(),
            rng,
            Arc::clone(memo),
        );
        Slot {
            addr,
            status: Status::Waiting,
            incarnation,
            machine: Machine::Peer(Box::new(peer)),
        }
    }

    /// Also write every trace line to `out`.
    pub fn set_trace_output(&mut self, out: Box<dyn Write>) {
        self.trace_out = Some(out);
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Counters so far.
    pub fn stats(&self) -> WorldStats {
        self.stats
    }

    /// The digest shared by the nodes.
    pub fn memo(&self) -> &Arc<DigestMemo> {
        &self.memo
    }

    /// SHA-256 of the trace so far, hex.
    pub fn trace_digest(&self) -> String {
        crate::digest::hex(&self.trace.clone().finalize())
    }

    /// Peer `i`, if it is running (not crashed or silent).
    pub fn peer(&self, i: usize) -> Option<&PeerNode> {
        let slot = self.slots.get(self.cfg.seeds + i)?;
        match (&slot.machine, slot.status) {
            (Machine::Peer(p), Status::Up) => Some(p),
            _ => None,
        }
    }

    /// Seed `j`, if it is running.
    pub fn seed(&self, j: usize) -> Option<&SeedNode> {
        let slot = self.slots.get(j).filter(|_| j < self.cfg.seeds)?;
        match (&slot.machine, slot.status) {
            (Machine::Seed(s), Status::Up) => Some(s),
            _ => None,
        }
    }

    /// Has peer `peer` originate a gossip message with `body` at `at` (if it is running then).
    pub fn originate_at(&mut self, peer: usize, at: Time, body: String) {
        if peer < self.cfg.peers {
            self.schedule(at, Action::Originate { peer, body });
        }
    }

    /// Runs the whole configured duration.
    pub fn run(&mut self, obs: &mut dyn Observer) {
        self.run_until(Time::ZERO + self.cfg.duration, obs);
    }

    /// Processes every queued action due at or before `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Time, obs: &mut dyn Observer) {
        while self.queue.peek().is_some_and(|s| s.at <= end) {
            let Some(next) = self.queue.pop() else { break };
            debug_assert!(next.at >= self.now, "the queue never yields the past");
            self.now = next.at;
            self.stats.events_processed += 1;
            self.act(next.action, obs);
        }
        self.now = self.now.max(end);
        if let Some(out) = self.trace_out.as_mut() {
            // The trace file is a by-product; a full disk must not stop the run.
            let _ = out.flush();
        }
    }

    fn schedule(&mut self, at: Time, action: Action) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            action,
        });
    }

    fn is_current(&self, node: usize, incarnation: u32) -> bool {
        let s = &self.slots[node];
        s.status == Status::Up && s.incarnation == incarnation
    }

    fn act(&mut self, action: Action, obs: &mut dyn Observer) {
        match action {
            Action::Start { node } => {
                self.slots[node].status = Status::Up;
                self.feed(node, Input::Start, obs);
            }
            Action::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.is_current(node, incarnation) {
                    self.feed(node, Input::Timer(timer), obs);
                }
            }
            Action::Deliver { link, to, msg } => self.deliver(link, to, msg, obs),
            Action::CloseArrives { link, to } => self.close_arrives(link, to, obs),
            Action::SynArrives { link } => self.syn_arrives(link, obs),
            Action::SynAckArrives { link } => self.synack_arrives(link, obs),
            Action::ConnectFails {
                node,
                incarnation,
                addr,
            } => {
                if self.is_current(node, incarnation) {
                    self.feed(node, Input::ConnectFailed { addr }, obs);
                }
            }
            Action::Fault(k) => self.fault(k, obs),
            Action::Originate { peer, body } => {
                let node = self.cfg.seeds + peer;
                if self.slots[node].status == Status::Up {
                    self.feed(node, Input::Originate { body }, obs);
                }
            }
            Action::PartitionHeals(k) => {
                let e = WorldEvent::PartitionHealed(self.cfg.faults[k].to_string());
                self.world_event(e, obs);
            }
        }
    }

    fn feed(&mut self, node: usize, input: Input, obs: &mut dyn Observer) {
        let now = self.now;
        self.slots[node].machine.node().handle(now, input);
        while let Some(out) = self.slots[node].machine.node().poll_output() {
            self.apply(node, out, obs);
        }
    }

    fn apply(&mut self, node: usize, out: Output, obs: &mut dyn Observer) {
        let incarnation = self.slots[node].incarnation;
        match out {
            Output::Connect { addr } => self.connect(node, addr),
            Output::Send { conn, msg } => {
                let Some(to) = self.far_side(conn.0, node, incarnation) else {
                    return;
                };
                let lat = self.cfg.latency.sample(&mut self.rng);
                if let Some(at) = self.net.arrival(conn.0, to, self.now, lat) {
                    self.schedule(
                        at,
                        Action::Deliver {
                            link: conn.0,
                            to,
                            msg,
                        },
                    );
                }
            }
            Output::Close { conn } => {
                let Some(to) = self.far_side(conn.0, node, incarnation) else {
                    return;
                };
                if let Some(l) = self.net.links.get_mut(&conn.0) {
                    l.ends[1 - to].open = false;
                }
                self.notify_close(conn.0, to);
            }
            Output::SetTimer { at, timer } => self.schedule(
                at,
                Action::Timer {
                    node,
                    incarnation,
                    timer,
                },
            ),
            Output::Event(e) => {
                self.stats.node_events += 1;
                let addr = self.slots[node].addr;
                let now = self.now;
                self.trace_line(format_args!("{now} {addr} {e}"));
                obs.event(self.now, addr, &e);
            }
        }
    }

    /// The side of `link` opposite `node`, if `node` (this incarnation) has it open.
    fn far_side(&self, link: u64, node: usize, incarnation: u32) -> Option<usize> {
        let l = self.net.links.get(&link)?;
        let side = l.side_of(node, incarnation)?;
        l.ends[side].open.then_some(1 - side)
    }

    fn notify_close(&mut self, link: u64, to: usize) {
        let lat = self.cfg.latency.sample(&mut self.rng);
        if let Some(at) = self.net.arrival(link, to, self.now, lat) {
            self.schedule(at, Action::CloseArrives { link, to });
        }
    }

    fn connect(&mut self, node: usize, addr: NodeAddr) {
        let incarnation = self.slots[node].incarnation;
        let lat = self.cfg.latency.sample(&mut self.rng);
        let fail = Action::ConnectFails {
            node,
            incarnation,
            addr,
        };
        let Some(&target) = self.index.get(&addr) else {
            self.schedule(self.now + lat.times(2), fail);
            return;
        };
        let unreachable = self.net.partitioned_until(node, target, self.now).is_some()
            || self.slots[target].status == Status::Silent;
        if unreachable {
            let at = self.now + self.cfg.connect_timeout;
            self.schedule(at, fail);
            return;
        }
        let far = (target, self.slots[target].incarnation);
        let link = self.net.new_link((node, incarnation), far, self.now);
        self.stats.connections += 1;
        self.schedule(self.now + lat, Action::SynArrives { link });
    }

    fn syn_arrives(&mut self, link: u64, obs: &mut dyn Observer) {
        let Some(l) = self.net.links.get(&link).cloned() else {
            return;
        };
        let [dialer, target] = l.ends;
        let lat = self.cfg.latency.sample(&mut self.rng);
        if self.slots[target.node].status == Status::Up {
            if let Some(l) = self.net.links.get_mut(&link) {
                // The link reaches whoever listens at the address now.
                l.ends[1].incarnation = self.slots[target.node].incarnation;
            }
            let remote = ephemeral(self.slots[dialer.node].addr, link);
            self.feed(
                target.node,
                Input::Connected {
                    conn: ConnId(link),
                    remote,
                    outbound: false,
                },
                obs,
            );
            if let Some(at) = self.net.arrival(link, 0, self.now, lat) {
                self.schedule(at, Action::SynAckArrives { link });
            }
        } else {
            self.net.links.remove(&link);
            let (node, incarnation) = (dialer.node, dialer.incarnation);
            let addr = self.slots[target.node].addr;
            let wait = if self.slots[target.node].status == Status::Silent {
                self.cfg.connect_timeout
            } else {
                lat
            };
            self.schedule(
                self.now + wait,
                Action::ConnectFails {
                    node,
                    incarnation,
                    addr,
                },
            );
        }
    }

    fn synack_arrives(&mut self, link: u64, obs: &mut dyn Observer) {
        let Some(l) = self.net.links.get(&link).cloned() else {
            return;
        };
        let [dialer, target] = l.ends;
        if !dialer.open || !self.is_current(dialer.node, dialer.incarnation) {
            return; // the dialer went away; its crash already reset the link
        }
        let remote = self.slots[target.node].addr;
        self.feed(
            dialer.node,
            Input::Connected {
                conn: ConnId(link),
                remote,
                outbound: true,
            },
            obs,
        );
    }

    fn deliver(&mut self, link: u64, to: usize, msg: Message, obs: &mut dyn Observer) {
        let Some(end) = self.net.links.get(&link).map(|l| l.ends[to]) else {
            return;
        };
        if end.open && self.is_current(end.node, end.incarnation) {
            self.stats.messages_delivered += 1;
            self.feed(
                end.node,
                Input::Received {
                    conn: ConnId(link),
                    msg,
                },
                obs,
            );
        }
    }

    fn close_arrives(&mut self, link: u64, to: usize, obs: &mut dyn Observer) {
        let Some(l) = self.net.links.get_mut(&link) else {
            return;
        };
        let end = l.ends[to];
        l.ends[to].open = false;
        self.net.gc(link);
        if end.open && self.is_current(end.node, end.incarnation) {
            self.feed(end.node, Input::Closed { conn: ConnId(link) }, obs);
        }
    }

    /// Resets every open link of `node`'s current incarnation; the far ends hear `Closed`.
    fn reset_links(&mut self, node: usize) {
        let incarnation = self.slots[node].incarnation;
        let mine: Vec<(u64, usize)> = self
            .net
            .links
            .iter()
            .filter_map(|(id, l)| {
                let side = l.side_of(node, incarnation)?;
                l.ends[side].open.then_some((*id, side))
            })
            .collect();
        for (link, side) in mine {
            if let Some(l) = self.net.links.get_mut(&link) {
                l.ends[side].open = false;
            }
            self.notify_close(link, 1 - side);
        }
    }

    fn fault(&mut self, k: usize, obs: &mut dyn Observer) {
        let fault = self.cfg.faults[k].clone();
        let seeds = self.cfg.seeds;
        match fault {
            Fault::Crash { peer, .. } => self.take_down(seeds + peer, false, obs),
            Fault::SeedCrash { seed, .. } => self.take_down(seed, false, obs),
            Fault::SilentFail { peer, .. } => self.take_down(seeds + peer, true, obs),
            Fault::Restart { peer, .. } => self.restart(peer, obs),
            Fault::Partition { end, .. } => {
                let e = WorldEvent::PartitionStarted(self.cfg.faults[k].to_string());
                self.world_event(e, obs);
                self.schedule(end, Action::PartitionHeals(k));
            }
        }
    }

    fn take_down(&mut self, node: usize, silent: bool, obs: &mut dyn Observer) {
        if self.slots[node].status != Status::Up {
            return;
        }
        self.slots[node].status = if silent {
            Status::Silent
        } else {
            Status::Crashed
        };
        if !silent {
            self.reset_links(node);
        }
        let e = WorldEvent::Down {
            node: self.slots[node].addr,
            silent,
        };
        self.world_event(e, obs);
    }

    fn restart(&mut self, peer: usize, obs: &mut dyn Observer) {
        let node = self.cfg.seeds + peer;
        // A rebooted host answers its old connections with resets.
        self.reset_links(node);
        let seeds = self.cfg.seed_addrs();
        let incarnation = self.slots[node].incarnation + 1;
        self.slots[node] = Self::make_peer(&self.cfg, &seeds, &self.memo, peer, incarnation);
        let e = WorldEvent::Restarted {
            node: self.slots[node].addr,
        };
        self.world_event(e, obs);
        self.slots[node].status = Status::Up;
        self.feed(node, Input::Start, obs);
    }

    fn world_event(&mut self, e: WorldEvent, obs: &mut dyn Observer) {
        let now = self.now;
        self.trace_line(format_args!("{now} world {e}"));
        obs.world(self.now, &e);
    }

    fn trace_line(&mut self, line: fmt::Arguments<'_>) {
        if let Some(out) = self.trace_out.as_mut() {
            self.line.clear();
            let _ = self.line.write_fmt(line);
            self.trace.update(self.line.as_bytes());
            self.trace.update(b"\n");
            // See run_until: the trace file is a by-product.
            let _ = writeln!(out, "{}", self.line);
        } else {
            let _ = HashWriter(&mut self.trace).write_fmt(line);
            self.trace.update(b"\n");
        }
    }
}

/// The socket address a dialer's connection appears to come from.
fn ephemeral(listen: NodeAddr, link: u64) -> NodeAddr {
    // Ports 32768..60999, like Linux's ephemeral range; only logs ever show it.
    NodeAddr::new(listen.ip, 32768 + (link % 28232) as u16)
}

#[cfg(test)]
mod tests;
