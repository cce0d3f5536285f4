//! The deterministic simulator: virtual time, an event queue ordered by `(time, sequence)`,
//! per-node RNGs derived from the run seed, TCP-like links and faults as data.
//!
//! The same binary, configuration and seed give the same trace, byte for byte; the trace's
//! SHA-256 (over compact binary records, see [`trace`]) is the run's fingerprint.

mod faults;
pub mod layout;
mod net;
mod processing;
mod queue;
mod spoofer;
mod trace;

use core::fmt;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use faults::Fault;
pub use net::Latency;
pub use processing::Processing;
pub use spoofer::{Spoofer, Spoofing};

use crate::addr::NodeAddr;
use crate::digest::DigestMemo;
use crate::limits::SEEDS_MAX;
use crate::node::{ConnId, Event, Input, Node, Output, TimerId};
use crate::peer::{PeerConfig, PeerContext, PeerNode};
use crate::rng::CompactRng;
use crate::seed::{SeedConfig, SeedNode};
use crate::time::{Duration, Time};
use crate::wire::{Gossip, Message, Timestamp};
use net::Network;
use processing::{Admitted, Servers};
use queue::{Entry, Kind, Queue};
use trace::Trace;

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
    /// How long peers are busy with the gossip they handle ([`Processing`]; none by default).
    pub processing: Processing,
    /// Peer `i` starts at `(i + 1) * join_interval`, as a runner script starts them in turn.
    pub join_interval: Duration,
    /// How long a connection attempt to a silent or partitioned host takes to fail.
    pub connect_timeout: Duration,
    /// Node addresses; `None` uses the [`layout`] (seeds 127.0.0.1:8080.., peers
    /// 127.0.0.1:5000..). A comparison with a real run passes the real run's addresses, so
    /// that capacities and message texts match.
    pub addresses: Option<Addresses>,
    /// A hostile client at [`Spoofing::ADDR`] that registers itself, reports listed peers
    /// dead in its own name and tries to register others' addresses (fault campaigns).
    pub spoofer: Option<Spoofing>,
    /// When each node starts; `None`: seeds at 0, peer `i` at `(i + 1) * join_interval`.
    /// The twin of a real run (`gossipnet replay`) starts each node when it really started.
    pub starts: Option<Starts>,
    /// The index each node's RNG is derived from; `None`: its own index. A real process
    /// numbers its nodes itself (a lone `gossipnet peer` uses its port), and its twin
    /// must draw what it drew.
    pub rng_indices: Option<RngIndices>,
}

/// Explicit start times for a simulated run (see [`SimConfig::starts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Starts {
    /// Seed `j` starts at `seeds[j]`.
    pub seeds: Vec<Time>,
    /// Peer `i` starts at `peers[i]`.
    pub peers: Vec<Time>,
}

/// Explicit RNG indices for a simulated run (see [`SimConfig::rng_indices`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RngIndices {
    /// Seed `j` draws from the RNG of seed index `seeds[j]`.
    pub seeds: Vec<u64>,
    /// Peer `i` draws from the RNG of peer index `peers[i]`.
    pub peers: Vec<u64>,
    /// A restarted peer draws from its first incarnation's RNG again, as a real restart
    /// does (a fresh node or process given the same `--seed` and index), instead of the
    /// next incarnation's.
    pub first_incarnation_on_restart: bool,
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
            processing: Processing::None,
            join_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(3),
            addresses: None,
            spoofer: None,
            starts: None,
            rng_indices: None,
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
        if let Some(s) = &self.spoofer
            && (s.every == Duration::ZERO || s.end < s.start)
        {
            return Err(
                "a spoofing client needs a round interval and an end after its start".into(),
            );
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
        let sizes = |what: &str, seeds: usize, peers: usize| {
            if seeds == self.seeds && peers == self.peers {
                Ok(())
            } else {
                Err(format!(
                    "{seeds} seed and {peers} peer {what} given for {} seeds and {} peers",
                    self.seeds, self.peers
                ))
            }
        };
        if let Some(s) = &self.starts {
            sizes("start times", s.seeds.len(), s.peers.len())?;
        }
        if let Some(r) = &self.rng_indices {
            sizes("RNG indices", r.seeds.len(), r.peers.len())?;
        }
        self.faults
            .iter()
            .try_for_each(|f| f.validate(self.seeds, self.peers))
    }

    /// The index seed `j` derives its RNG from.
    fn seed_rng_index(&self, j: usize) -> u64 {
        self.rng_indices.as_ref().map_or(j as u64, |r| r.seeds[j])
    }

    /// The index peer `i` derives its RNG from.
    fn peer_rng_index(&self, i: usize) -> u64 {
        self.rng_indices.as_ref().map_or(i as u64, |r| r.peers[i])
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
    /// A running node's connections were all reset.
    ConnectionsReset {
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
            WorldEvent::ConnectionsReset { node } => {
                write!(f, "Fault: {node}'s connections were reset")
            }
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
    /// World events (faults, partitions).
    pub world_events: u64,
    /// Wire messages delivered.
    pub messages_delivered: u64,
    /// Connections opened.
    pub connections: u64,
    /// Queue entries waiting now.
    pub queued: u64,
    /// Link slots in use now (open links and closed ones not yet reusable).
    pub link_slots: u64,
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

/// What a world holds of a node besides its machine.
#[derive(Clone, Copy, Debug)]
struct NodeSlot {
    addr: NodeAddr,
    status: Status,
    incarnation: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Not started yet.
    Waiting,
    Up,
    Crashed,
    Silent,
}

/// What does not fit a queue entry.
enum Payload {
    Free,
    Msg(Message),
    ConnectFailed { incarnation: u32, addr: NodeAddr },
    Body(String),
}

/// How an address maps to a node.
enum Index {
    /// The default layout: computed.
    Layout,
    /// Explicit addresses (look-ups only, never iterated).
    Map(HashMap<NodeAddr, u32>),
}

/// The simulated world: nodes, links, the event queue and the trace.
///
/// Nodes are numbered densely (seeds first, then peers) and addressed by index everywhere:
/// machines in two vectors, links in a slab whose slots the connection ids name, queue entries
/// of 16 bytes with larger payloads in a slab beside them, and each gossip message held once
/// in a table by its memo ordinal while copies of it are in flight.
pub struct World {
    cfg: SimConfig,
    now: Time,
    queue: Queue,
    nodes: Vec<NodeSlot>,
    seed_nodes: Vec<SeedNode>,
    peer_nodes: Vec<PeerNode>,
    index: Index,
    net: Network,
    rng: ChaCha8Rng,
    memo: Arc<DigestMemo>,
    trace: Trace,
    stats: WorldStats,
    payloads: Vec<Payload>,
    free_payloads: Vec<u32>,
    /// In-flight gossip by ordinal, with the number of queued deliveries of it.
    gossip: Vec<Option<(Arc<Gossip>, u32)>>,
    /// What every peer shares (settings, seed list, memo).
    peer_ctx: Arc<PeerContext>,
    /// The spoofing client, node `seeds + peers`, if the run has one.
    spoofer: Option<Spoofer>,
    /// The peers' servers, when gossip takes processing time (`--processing`).
    servers: Option<Servers>,
}

impl World {
    /// A world ready to run `cfg` (validated first). `memo` computes digests; pass one
    /// with a stopwatch to measure hashing time, or with a pool to hash in parallel.
    pub fn new(cfg: SimConfig, memo: Arc<DigestMemo>) -> Result<Self, String> {
        cfg.validate()?;
        let peer_ctx = Arc::new(PeerContext {
            cfg: cfg.peer.clone(),
            seeds: cfg.seed_addrs(),
            memo: Arc::clone(&memo),
        });
        let mut nodes = Vec::with_capacity(cfg.seeds + cfg.peers);
        let mut seed_nodes = Vec::with_capacity(cfg.seeds);
        for j in 0..cfg.seeds {
            let addr = cfg.seed_addr(j);
            let rng = ChaCha8Rng::seed_from_u64(derive_seed(
                cfg.seed,
                STREAM_SEED,
                cfg.seed_rng_index(j),
                0,
            ));
            seed_nodes.push(SeedNode::new(addr, Self::seed_config(&cfg), rng));
            nodes.push(NodeSlot {
                addr,
                status: Status::Waiting,
                incarnation: 0,
            });
        }
        let mut peer_nodes = Vec::with_capacity(cfg.peers);
        for i in 0..cfg.peers {
            let addr = cfg.peer_addr(i);
            peer_nodes.push(Self::make_peer(&cfg, &peer_ctx, i, 0));
            nodes.push(NodeSlot {
                addr,
                status: Status::Waiting,
                incarnation: 0,
            });
        }
        let spoofer = cfg.spoofer.map(|plan| {
            nodes.push(NodeSlot {
                addr: Spoofing::ADDR,
                status: Status::Waiting,
                incarnation: 0,
            });
            Spoofer::new(Spoofing::ADDR, cfg.seed_addrs(), plan)
        });
        let index = match &cfg.addresses {
            None => Index::Layout,
            Some(_) => Index::Map(
                nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.addr, i as u32))
                    .collect(),
            ),
        };
        let mut w = World {
            net: Network::new(&cfg.faults, cfg.seeds, cfg.latency),
            rng: ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, STREAM_NET, 0, 0)),
            now: Time::ZERO,
            queue: Queue::default(),
            nodes,
            seed_nodes,
            peer_nodes,
            index,
            memo,
            trace: Trace::new(),
            stats: WorldStats::default(),
            payloads: Vec::new(),
            free_payloads: Vec::new(),
            gossip: Vec::new(),
            peer_ctx,
            spoofer,
            servers: Servers::new(cfg.processing, cfg.peers),
            cfg,
        };
        if w.spoofer.is_some() {
            let node = (w.cfg.seeds + w.cfg.peers) as u32;
            w.schedule(Time::ZERO, Entry::new(Kind::Start, node, 0));
        }
        match w.cfg.starts.clone() {
            None => {
                for j in 0..w.cfg.seeds {
                    w.schedule(Time::ZERO, Entry::new(Kind::Start, j as u32, 0));
                }
                // Peer i joins at (i + 1) join intervals: a series of entries made as they
                // are due. Node indices fit in u32 (`validate` bounds the peers).
                let first = Entry::new(Kind::Start, w.cfg.seeds as u32, 0);
                let (interval, peers) = (w.cfg.join_interval, w.cfg.peers as u32);
                w.queue
                    .push_series(Time::ZERO + interval, interval, peers, first);
            }
            Some(s) => {
                // Node indices fit in u32 (`validate` bounds the peers).
                for (k, at) in s.seeds.iter().chain(&s.peers).enumerate() {
                    w.schedule(*at, Entry::new(Kind::Start, k as u32, 0));
                }
            }
        }
        for k in 0..w.cfg.faults.len() {
            let at = w.cfg.faults[k].at();
            w.schedule(at, Entry::new(Kind::Fault, k as u32, 0));
        }
        Ok(w)
    }

    /// A simulated seed holds one connection per peer registered with it, as long as the peer
    /// runs, so its connection limit is raised to the network's size when lower: the
    /// simulator does not model an exhausted seed (a real one refuses with `busy`).
    fn seed_config(cfg: &SimConfig) -> SeedConfig {
        let needed = cfg.peers + SEEDS_MAX + crate::limits::HANDSHAKES_MAX;
        SeedConfig {
            connections_max: cfg.seed_node.connections_max.max(needed),
            // Simulated peers share IPs (3 000 ports an address): no per-IP bound.
            connections_per_ip_max: cfg.seed_node.connections_per_ip_max.max(needed),
            fellows: cfg.seed_addrs(),
            ..cfg.seed_node.clone()
        }
    }

    fn make_peer(cfg: &SimConfig, ctx: &Arc<PeerContext>, i: usize, incarnation: u32) -> PeerNode {
        let incarnation = match &cfg.rng_indices {
            Some(r) if r.first_incarnation_on_restart => 0,
            _ => incarnation,
        };
        let rng = CompactRng::seed_from_u64(derive_seed(
            cfg.seed,
            STREAM_PEER,
            cfg.peer_rng_index(i),
            incarnation.into(),
        ));
        PeerNode::with_context(cfg.peer_addr(i), Arc::clone(ctx), rng)
    }

    /// Also write every trace line to `out`.
    pub fn set_trace_output(&mut self, out: Box<dyn Write>) {
        self.trace.set_text(out);
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
        WorldStats {
            queued: self.queue.len() as u64,
            link_slots: self.net.slots() as u64,
            ..self.stats
        }
    }

    /// The digest shared by the nodes.
    pub fn memo(&self) -> &Arc<DigestMemo> {
        &self.memo
    }

    /// SHA-256 of the trace so far (its binary records; see the `trace` module), hex.
    pub fn trace_digest(&self) -> String {
        self.trace.digest()
    }

    /// Peer `i`, if it is running (not crashed or silent).
    pub fn peer(&self, i: usize) -> Option<&PeerNode> {
        let slot = self.nodes.get(self.cfg.seeds + i)?;
        (slot.status == Status::Up).then(|| &self.peer_nodes[i])
    }

    /// Seed `j`, if it is running.
    pub fn seed(&self, j: usize) -> Option<&SeedNode> {
        let slot = self.nodes.get(j).filter(|_| j < self.cfg.seeds)?;
        (slot.status == Status::Up).then(|| &self.seed_nodes[j])
    }

    /// Has peer `peer` originate a gossip message with `body` at `at` (if it is running then).
    pub fn originate_at(&mut self, peer: usize, at: Time, body: String) {
        if peer < self.cfg.peers {
            let addr = self.cfg.peer_addr(peer);
            let at = at.max(self.now);
            let offset = self.cfg.peer.wall_offset_micros;
            self.memo
                .prefetch(crate::peer::originated_message(addr, at, offset, &body));
            let b = self.put_payload(Payload::Body(body));
            self.schedule(at, Entry::new(Kind::Originate, peer as u32, u64::from(b)));
        }
    }

    /// Runs the whole configured duration.
    pub fn run(&mut self, obs: &mut dyn Observer) {
        self.run_until(Time::ZERO + self.cfg.duration, obs);
    }

    /// Processes every queued action due at or before `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Time, obs: &mut dyn Observer) {
        while self.queue.peek_time().is_some_and(|t| t <= end) {
            let Some((at, entry)) = self.queue.pop() else {
                break;
            };
            debug_assert!(at >= self.now, "the queue never yields the past");
            self.now = at;
            self.stats.events_processed += 1;
            self.prefetch_ahead();
            self.act(entry, obs);
        }
        self.now = self.now.max(end);
        self.trace.flush();
    }

    /// Cache hints for the deliveries a few entries ahead: the receiver's slot, machine and
    /// link far ahead, its tables (read through the machine) nearer. At 100 000 peers and more
    /// each is a miss in every cache, and they would otherwise be waited for one after another.
    fn prefetch_ahead(&self) {
        use crate::prefetch::prefetch;
        const FAR: usize = 6;
        const NEAR: usize = 3;
        const NEXT: usize = 1;
        let seeds = self.seed_nodes.len();
        if let Some(e) = self.queue.ahead(FAR)
            && e.kind.is_delivery()
        {
            let r = (e.b >> 32) as usize;
            if let Some(slot) = self.nodes.get(r) {
                prefetch(slot);
            }
            if let Some(p) = r.checked_sub(seeds).and_then(|i| self.peer_nodes.get(i)) {
                p.prefetch();
            }
            self.net.prefetch(e.a);
        }
        if let Some(e) = self.queue.ahead(NEAR)
            && e.kind.is_delivery()
            && let Some(p) = ((e.b >> 32) as usize)
                .checked_sub(seeds)
                .and_then(|i| self.peer_nodes.get(i))
        {
            if e.kind == Kind::DeliverGossip {
                p.prefetch_for_gossip(e.b & 0xffff_ffff);
            } else {
                p.prefetch_for_message();
            }
        }
        if let Some(e) = self.queue.ahead(NEXT)
            && e.kind == Kind::DeliverGossip
            && let Some(p) = ((e.b >> 32) as usize)
                .checked_sub(seeds)
                .and_then(|i| self.peer_nodes.get(i))
        {
            p.prefetch_flood(e.b & 0xffff_ffff);
        }
    }

    fn schedule(&mut self, at: Time, e: Entry) {
        self.queue.push(at.max(self.now), e);
    }

    /// Schedules an entry that refers to link `slot`.
    fn schedule_on_link(&mut self, at: Time, e: Entry) {
        self.net.hold(e.a);
        self.schedule(at, e);
    }

    fn put_payload(&mut self, p: Payload) -> u32 {
        match self.free_payloads.pop() {
            Some(i) => {
                self.payloads[i as usize] = p;
                i
            }
            None => {
                self.payloads.push(p);
                // Payloads are of queued entries, far fewer than 2^32.
                u32::try_from(self.payloads.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    fn take_payload(&mut self, b: u64) -> Payload {
        let Some(p) = self.payloads.get_mut(b as usize) else {
            debug_assert!(false, "entry names payload {b}, which does not exist");
            return Payload::Free;
        };
        let p = std::mem::replace(p, Payload::Free);
        // Payload indices are below the slab's length, which fits in memory.
        self.free_payloads.push(b as u32);
        p
    }

    fn is_current(&self, node: u32, incarnation: u32) -> bool {
        let s = &self.nodes[node as usize];
        s.status == Status::Up && s.incarnation == incarnation
    }

    fn act(&mut self, e: Entry, obs: &mut dyn Observer) {
        match e.kind {
            Kind::Start => {
                self.nodes[e.a as usize].status = Status::Up;
                self.feed(e.a, Input::Start, obs);
            }
            Kind::Timer => {
                if self.is_current(e.a, e.b as u32) {
                    let timer = TimerId::ALL[usize::from(e.timer)];
                    if let Some(peer) = self.originates(e.a, timer) {
                        self.process(
                            peer,
                            Entry {
                                kind: Kind::TimerProcessed,
                                ..e
                            },
                        );
                    } else {
                        self.feed(e.a, Input::Timer(timer), obs);
                    }
                }
            }
            Kind::TimerProcessed => {
                if self.is_current(e.a, e.b as u32) {
                    let timer = TimerId::ALL[usize::from(e.timer)];
                    self.feed(e.a, Input::Timer(timer), obs);
                }
            }
            Kind::TurnStart => {
                // A loop reads its sockets in the order they became readable (the kernel's
                // ready list), those that became readable together (one writer's flush) in
                // the order they were opened (its tokens); then it fires its timers. So:
                // copies by arrival, then by their link's age; originations last.
                let net = &self.net;
                let order = |arrived: Time, e: &Entry| match e.kind {
                    Kind::GossipProcessed | Kind::OtherProcessed => {
                        (0, arrived, net.get_raw(e.a).serial())
                    }
                    _ => (1, arrived, 0),
                };
                let jobs = match self.servers.as_mut() {
                    Some(s) => s.turn(e.a, self.now, order),
                    None => Vec::new(),
                };
                for (at, job) in jobs {
                    self.schedule(at, job);
                }
            }
            Kind::DeliverGossip | Kind::DeliverOther
                if self.servers.is_some() && self.is_gossip(e) =>
            {
                let receiver = self.peer_index((e.b >> 32) as u32);
                if let Some(peer) = receiver.filter(|_| self.arrives(e)) {
                    // The link stays held until the copy is handled.
                    let kind = match e.kind {
                        Kind::DeliverGossip => Kind::GossipProcessed,
                        _ => Kind::OtherProcessed,
                    };
                    self.process(peer, Entry { kind, ..e });
                } else if receiver.is_none() {
                    // Not a peer (nothing else hashes gossip): handled on arrival.
                    self.net.release(e.a);
                    let msg = self.materialize(e, self.now);
                    self.deliver(e, msg, obs);
                } else {
                    self.net.release(e.a);
                    // Taken out of its table; the receiver is gone.
                    let _ = self.materialize(e, self.now);
                }
            }
            Kind::DeliverGossip
            | Kind::DeliverRequest
            | Kind::DeliverReply
            | Kind::DeliverOther
            | Kind::GossipProcessed
            | Kind::OtherProcessed => {
                self.net.release(e.a);
                let msg = self.materialize(e, self.now);
                self.deliver(e, msg, obs);
            }
            Kind::CloseArrives => {
                self.net.release(e.a);
                self.close_arrives(e.a, usize::from(e.side), obs);
            }
            Kind::SynArrives => {
                self.net.release(e.a);
                self.syn_arrives(e.a, obs);
            }
            Kind::SynAckArrives => {
                self.net.release(e.a);
                self.synack_arrives(e.a, obs);
            }
            Kind::ConnectFails => {
                if let Payload::ConnectFailed { incarnation, addr } = self.take_payload(e.b)
                    && self.is_current(e.a, incarnation)
                {
                    self.feed(e.a, Input::ConnectFailed { addr }, obs);
                }
            }
            Kind::Fault => self.fault(e.a as usize, obs),
            Kind::PartitionHeals => {
                let e = WorldEvent::PartitionHealed(self.cfg.faults[e.a as usize].to_string());
                self.world_event(e, obs);
            }
            Kind::Originate if self.servers.is_some() => {
                let node = self.cfg.seeds as u32 + e.a;
                if self.nodes[node as usize].status == Status::Up {
                    let e = Entry {
                        kind: Kind::OriginateProcessed,
                        ..e
                    };
                    self.process(e.a as usize, e);
                } else {
                    let _ = self.take_payload(e.b);
                }
            }
            Kind::Originate | Kind::OriginateProcessed => {
                if let Payload::Body(body) = self.take_payload(e.b) {
                    let node = self.cfg.seeds as u32 + e.a;
                    if self.nodes[node as usize].status == Status::Up {
                        self.feed(node, Input::Originate { body }, obs);
                    }
                }
            }
            Kind::Run => debug_assert!(false, "runs never leave the queue"),
        }
    }

    /// Queues `e`, a job of peer `peer`, for when the peer's server has done it and the
    /// jobs before it (`--processing`).
    fn process(&mut self, peer: usize, e: Entry) {
        let Some(s) = self.servers.as_mut() else {
            return;
        };
        match s.admit(peer, self.now, e) {
            Admitted::At(at) => self.schedule(at, e),
            Admitted::TurnAt(i, at) => self.schedule(at, Entry::new(Kind::TurnStart, i, 0)),
            Admitted::Waiting => {}
        }
    }

    /// When what node `node` sends now leaves: at once, or when the turn of its loop ends
    /// (`--processing digest:D,loops:N`), as the driver writes a turn's frames after its
    /// reads; so a link stays ordered.
    fn departure(&self, node: u32) -> Time {
        let Some(s) = &self.servers else {
            return self.now;
        };
        self.peer_index(node)
            .map_or(self.now, |peer| s.departure(peer, self.now))
    }

    /// The peer index of node `node`, if it is a peer.
    fn peer_index(&self, node: u32) -> Option<usize> {
        (node as usize)
            .checked_sub(self.cfg.seeds)
            .filter(|&i| i < self.peer_nodes.len())
    }

    /// With processing time, the peer that `timer`, due for node `node`, has originate a
    /// message (a job for its server).
    fn originates(&self, node: u32, timer: TimerId) -> Option<usize> {
        if self.servers.is_none() || timer != TimerId::Gossip {
            return None;
        }
        self.peer_index(node)
            .filter(|&i| self.peer_nodes[i].timer_due(timer, self.now))
    }

    /// Whether delivery entry `e` carries a gossip message.
    fn is_gossip(&self, e: Entry) -> bool {
        match e.kind {
            Kind::DeliverGossip => true,
            Kind::DeliverOther => matches!(
                self.payloads.get(e.b as u32 as usize),
                Some(Payload::Msg(Message::Gossip(_)))
            ),
            _ => false,
        }
    }

    /// Whether delivery entry `e` reaches its receiver: the link's end is open and held by
    /// the receiver's current incarnation (what [`World::deliver`] checks).
    fn arrives(&self, e: Entry) -> bool {
        let (slot, to, node) = (e.a, usize::from(e.side), (e.b >> 32) as u32);
        self.net.get(slot).is_some_and(|l| {
            let end = l.ends[to];
            l.is_open(to) && end.node == node && self.is_current(node, end.incarnation)
        })
    }

    /// The message a delivery entry due at `at` carries, taken out of its table.
    fn materialize(&mut self, e: Entry, at: Time) -> Option<Message> {
        let low = e.b as u32;
        match e.kind {
            Kind::DeliverGossip | Kind::GossipProcessed => {
                let slot = self.gossip.get_mut(low as usize)?;
                let (g, n) = slot.as_mut()?;
                let g = Arc::clone(g);
                *n -= 1;
                if *n == 0 {
                    *slot = None;
                }
                Some(Message::Gossip(g))
            }
            Kind::DeliverRequest | Kind::DeliverReply => {
                let link = self.net.get_raw(e.a);
                let side = usize::from(e.side);
                let (from, to) = (link.ends[1 - side].node, link.ends[side].node);
                let ts = Timestamp::at(Time(at.0 - u64::from(low)), 0);
                let from = self.nodes[from as usize].addr;
                Some(if e.kind == Kind::DeliverRequest {
                    Message::LivenessRequest { ts, addr: from }
                } else {
                    let to = self.nodes[to as usize].addr;
                    Message::LivenessReply { ts, to, from }
                })
            }
            _ => match self.take_payload(u64::from(low)) {
                Payload::Msg(m) => Some(m),
                Payload::Free | Payload::ConnectFailed { .. } | Payload::Body(_) => None,
            },
        }
    }

    fn feed(&mut self, node: u32, input: Input, obs: &mut dyn Observer) {
        let now = self.now;
        let seeds = self.seed_nodes.len();
        let i = node as usize;
        if i < seeds {
            self.seed_nodes[i].handle(now, input);
            while let Some(out) = self.seed_nodes[i].poll_output() {
                self.apply(node, out, obs);
            }
        } else if i >= seeds + self.peer_nodes.len() {
            let Some(s) = self.spoofer.as_mut() else {
                return;
            };
            s.handle(now, input);
            while let Some(out) = self.spoofer.as_mut().and_then(|s| s.poll_output()) {
                self.apply(node, out, obs);
            }
        } else {
            self.peer_nodes[i - seeds].handle(now, input);
            // A flood's sends each read their link: start loading all of them at once.
            for out in self.peer_nodes[i - seeds].queued_outputs() {
                if let Output::Send { conn, .. } = out {
                    self.net.prefetch(net::conn_slot(conn.get()));
                }
            }
            while let Some(out) = self.peer_nodes[i - seeds].poll_output() {
                self.apply(node, out, obs);
            }
        }
    }

    fn apply(&mut self, node: u32, out: Output, obs: &mut dyn Observer) {
        let incarnation = self.nodes[node as usize].incarnation;
        match out {
            Output::Connect { addr } => self.connect(node, addr),
            Output::Send { conn, msg } => {
                let Some((slot, to)) = self.far_side(conn.get(), node, incarnation) else {
                    return;
                };
                let lat = self.cfg.latency.sample(&mut self.rng);
                let at = self.net.arrival(slot, to, self.departure(node), lat);
                let entry = self.delivery(slot, to, node, msg, at);
                self.schedule_on_link(at, entry);
            }
            Output::Close { conn } => {
                let Some((slot, to)) = self.far_side(conn.get(), node, incarnation) else {
                    return;
                };
                if let Some(l) = self.net.get_mut(slot) {
                    l.close(1 - to);
                }
                self.notify_close(slot, to);
            }
            Output::SetTimer { at, timer } => {
                let mut e = Entry::new(Kind::Timer, node, u64::from(incarnation));
                // TimerId::ALL has five kinds.
                e.timer = timer.index() as u8;
                self.schedule(at, e);
            }
            Output::Event(e) => {
                self.stats.node_events += 1;
                let addr = self.nodes[node as usize].addr;
                self.trace.event(self.now, node, addr, &e, &self.memo);
                obs.event(self.now, addr, &e);
            }
        }
    }

    /// The queue entry for `msg` from `from` towards side `to` of link `slot`, due at `at`:
    /// compact for gossip and liveness, in the payload slab otherwise. The high half of `b`
    /// names the receiving node; the low half the ordinal, the timestamp (as its distance
    /// before `at`) or the payload.
    fn delivery(&mut self, slot: u32, to: usize, from: u32, msg: Message, at: Time) -> Entry {
        let receiver = self.net.get_raw(slot).ends[to].node;
        let before_at = |ts: &Timestamp| {
            ts.micros()
                .and_then(|us| at.0.checked_sub(us))
                .and_then(|d| u32::try_from(d).ok())
        };
        let (kind, low) = match msg {
            Message::Gossip(g) => match self.hold_gossip(g) {
                Ok(ord) => (Kind::DeliverGossip, ord),
                Err(g) => (
                    Kind::DeliverOther,
                    self.put_payload(Payload::Msg(Message::Gossip(g))),
                ),
            },
            Message::LivenessRequest { ts, addr }
                if addr == self.nodes[from as usize].addr && before_at(&ts).is_some() =>
            {
                (Kind::DeliverRequest, before_at(&ts).unwrap_or(0))
            }
            Message::LivenessReply {
                ts,
                to: requester,
                from: replier,
            } if replier == self.nodes[from as usize].addr
                && requester == self.nodes[receiver as usize].addr
                && before_at(&ts).is_some() =>
            {
                (Kind::DeliverReply, before_at(&ts).unwrap_or(0))
            }
            other => (Kind::DeliverOther, self.put_payload(Payload::Msg(other))),
        };
        let mut e = Entry::new(kind, slot, (u64::from(receiver) << 32) | u64::from(low));
        // A link has two sides.
        e.side = to as u8;
        e
    }

    /// Holds `g` in the gossip table for one more queued delivery; its ordinal. A different
    /// message under the same ordinal (two identities with one digest key) goes back.
    fn hold_gossip(&mut self, g: Arc<Gossip>) -> Result<u32, Arc<Gossip>> {
        let ord = match self.memo.cached_ordinal(&g) {
            Some(o) => o,
            None => self.memo.ordinal(&g),
        };
        let Ok(ord) = u32::try_from(ord) else {
            return Err(g);
        };
        let i = ord as usize;
        if i >= self.gossip.len() {
            self.gossip.resize(i + 1, None);
        }
        match &mut self.gossip[i] {
            Some((held, n)) if Arc::ptr_eq(held, &g) || **held == *g => {
                *n += 1;
                Ok(ord)
            }
            Some(_) => Err(g),
            slot @ None => {
                *slot = Some((g, 1));
                Ok(ord)
            }
        }
    }

    /// The slot of the link named `conn` and the side opposite `node`, if `node` (this
    /// incarnation) has it open.
    fn far_side(&self, conn: u64, node: u32, incarnation: u32) -> Option<(u32, usize)> {
        let (slot, l) = self.net.by_conn(conn)?;
        let side = l.side_of(node, incarnation)?;
        l.is_open(side).then_some((slot, 1 - side))
    }

    fn notify_close(&mut self, slot: u32, to: usize) {
        let lat = self.cfg.latency.sample(&mut self.rng);
        let at = self.net.arrival(slot, to, self.now, lat);
        let mut e = Entry::new(Kind::CloseArrives, slot, 0);
        e.side = to as u8;
        self.schedule_on_link(at, e);
    }

    fn node_at(&self, addr: NodeAddr) -> Option<u32> {
        match &self.index {
            Index::Map(m) => m.get(&addr).copied(),
            Index::Layout => {
                if addr == Spoofing::ADDR && self.spoofer.is_some() {
                    return u32::try_from(self.cfg.seeds + self.cfg.peers).ok();
                }
                let i = match layout::seed_index(addr) {
                    Some(j) if j < self.cfg.seeds => j,
                    _ => {
                        self.cfg.seeds + layout::peer_index(addr).filter(|&i| i < self.cfg.peers)?
                    }
                };
                // Node indices fit in u32: validate() bounds peers by layout::PEERS_MAX.
                Some(i as u32)
            }
        }
    }

    fn connect(&mut self, node: u32, addr: NodeAddr) {
        let incarnation = self.nodes[node as usize].incarnation;
        let lat = self.cfg.latency.sample(&mut self.rng);
        let Some(target) = self.node_at(addr) else {
            self.connect_fails(node, incarnation, addr, self.now + lat.times(2));
            return;
        };
        let unreachable = self
            .net
            .partitioned_until(node as usize, target as usize, self.now)
            .is_some()
            || self.nodes[target as usize].status == Status::Silent;
        if unreachable {
            self.connect_fails(node, incarnation, addr, self.now + self.cfg.connect_timeout);
            return;
        }
        let far = (target, self.nodes[target as usize].incarnation);
        let slot = self.net.new_link((node, incarnation), far, self.now);
        self.stats.connections += 1;
        self.schedule_on_link(self.now + lat, Entry::new(Kind::SynArrives, slot, 0));
    }

    fn connect_fails(&mut self, node: u32, incarnation: u32, addr: NodeAddr, at: Time) {
        let b = self.put_payload(Payload::ConnectFailed { incarnation, addr });
        self.schedule(at, Entry::new(Kind::ConnectFails, node, u64::from(b)));
    }

    fn syn_arrives(&mut self, slot: u32, obs: &mut dyn Observer) {
        let Some(l) = self.net.get(slot).copied() else {
            return;
        };
        let [dialer, target] = l.ends;
        let lat = self.cfg.latency.sample(&mut self.rng);
        let t = self.nodes[target.node as usize];
        if t.status == Status::Up {
            if let Some(l) = self.net.get_mut(slot) {
                // The link reaches whoever listens at the address now.
                l.ends[1].incarnation = t.incarnation;
            }
            let remote = ephemeral(self.nodes[dialer.node as usize].addr, l.serial());
            let conn = ConnId::new(net::conn_id(l.serial(), slot));
            self.feed(
                target.node,
                Input::Connected {
                    conn,
                    remote,
                    outbound: false,
                },
                obs,
            );
            let at = self.net.arrival(slot, 0, self.now, lat);
            self.schedule_on_link(at, Entry::new(Kind::SynAckArrives, slot, 0));
        } else {
            self.net.remove(slot);
            let wait = if t.status == Status::Silent {
                self.cfg.connect_timeout
            } else {
                lat
            };
            let at = self.now + wait;
            self.connect_fails(dialer.node, dialer.incarnation, t.addr, at);
        }
    }

    fn synack_arrives(&mut self, slot: u32, obs: &mut dyn Observer) {
        let Some(l) = self.net.get(slot).copied() else {
            return;
        };
        let [dialer, target] = l.ends;
        if !l.is_open(0) || !self.is_current(dialer.node, dialer.incarnation) {
            return; // the dialer went away; its crash already reset the link
        }
        let remote = self.nodes[target.node as usize].addr;
        let conn = ConnId::new(net::conn_id(l.serial(), slot));
        if let Some(l) = self.net.get_mut(slot) {
            l.establish();
        }
        self.feed(
            dialer.node,
            Input::Connected {
                conn,
                remote,
                outbound: true,
            },
            obs,
        );
    }

    /// Delivers `msg` as entry `e` says (link slot, side, and the receiving node in the high
    /// half of `b`, so that the receiver's state is fetched while the link is checked).
    fn deliver(&mut self, e: Entry, msg: Option<Message>, obs: &mut dyn Observer) {
        let Some(msg) = msg else { return };
        let (slot, to, node) = (e.a, usize::from(e.side), (e.b >> 32) as u32);
        let Some(l) = self.net.get(slot) else {
            return;
        };
        let (end, open, conn) = (l.ends[to], l.is_open(to), net::conn_id(l.serial(), slot));
        debug_assert_eq!(end.node, node, "an entry names the node its link ends at");
        if open && end.node == node && self.is_current(node, end.incarnation) {
            self.stats.messages_delivered += 1;
            self.feed(
                node,
                Input::Received {
                    conn: ConnId::new(conn),
                    msg,
                },
                obs,
            );
        }
    }

    fn close_arrives(&mut self, slot: u32, to: usize, obs: &mut dyn Observer) {
        let Some(l) = self.net.get_mut(slot) else {
            return;
        };
        let (end, was_open) = (l.ends[to], l.is_open(to));
        // A reset that reaches the dialer before its handshake did fails the dial.
        let failed_dial = to == 0 && !l.established();
        let far = l.ends[1 - to].node;
        l.close(to);
        let conn = net::conn_id(l.serial(), slot);
        if !l.is_open(0) && !l.is_open(1) {
            self.net.remove(slot);
        }
        if failed_dial {
            if was_open && self.is_current(end.node, end.incarnation) {
                let addr = self.nodes[far as usize].addr;
                self.feed(end.node, Input::ConnectFailed { addr }, obs);
            }
            return;
        }
        if was_open && self.is_current(end.node, end.incarnation) {
            self.feed(
                end.node,
                Input::Closed {
                    conn: ConnId::new(conn),
                },
                obs,
            );
        }
    }

    /// Resets every open link of `node`'s current incarnation; the far ends hear `Closed`.
    fn reset_links(&mut self, node: u32) {
        let incarnation = self.nodes[node as usize].incarnation;
        for (slot, side) in self.net.open_ends_of(node, incarnation) {
            if let Some(l) = self.net.get_mut(slot) {
                l.close(side);
            }
            self.notify_close(slot, 1 - side);
        }
    }

    fn fault(&mut self, k: usize, obs: &mut dyn Observer) {
        let fault = self.cfg.faults[k].clone();
        let seeds = self.cfg.seeds as u32;
        match fault {
            // Fault indices were validated against the network's size.
            Fault::Crash { peer, .. } => self.take_down(seeds + peer as u32, false, obs),
            Fault::SeedCrash { seed, .. } => self.take_down(seed as u32, false, obs),
            Fault::SilentFail { peer, .. } => self.take_down(seeds + peer as u32, true, obs),
            Fault::Restart { peer, .. } => self.restart(peer, obs),
            Fault::Reset { peer, .. } => self.reset_connections(seeds + peer as u32, obs),
            Fault::Partition { end, .. } => {
                let e = WorldEvent::PartitionStarted(self.cfg.faults[k].to_string());
                self.world_event(e, obs);
                self.schedule(end, Entry::new(Kind::PartitionHeals, k as u32, 0));
            }
        }
    }

    /// Resets every open connection of a running `node`: it hears `Closed` at once, the far
    /// ends a latency later.
    fn reset_connections(&mut self, node: u32, obs: &mut dyn Observer) {
        if self.nodes[node as usize].status != Status::Up {
            return;
        }
        let addr = self.nodes[node as usize].addr;
        self.world_event(WorldEvent::ConnectionsReset { node: addr }, obs);
        let incarnation = self.nodes[node as usize].incarnation;
        for (slot, side) in self.net.open_ends_of(node, incarnation) {
            let Some(l) = self.net.get_mut(slot) else {
                continue;
            };
            l.close(side);
            let conn = ConnId::new(net::conn_id(l.serial(), slot));
            self.notify_close(slot, 1 - side);
            if self.is_current(node, incarnation) {
                self.feed(node, Input::Closed { conn }, obs);
            }
        }
    }

    fn take_down(&mut self, node: u32, silent: bool, obs: &mut dyn Observer) {
        let slot = &mut self.nodes[node as usize];
        if slot.status != Status::Up {
            return;
        }
        slot.status = if silent {
            Status::Silent
        } else {
            Status::Crashed
        };
        let addr = slot.addr;
        if !silent {
            self.reset_links(node);
        }
        self.world_event(WorldEvent::Down { node: addr, silent }, obs);
    }

    fn restart(&mut self, peer: usize, obs: &mut dyn Observer) {
        let node = (self.cfg.seeds + peer) as u32;
        // A rebooted host answers its old connections with resets.
        self.reset_links(node);
        let incarnation = self.nodes[node as usize].incarnation + 1;
        self.peer_nodes[peer] = Self::make_peer(&self.cfg, &self.peer_ctx, peer, incarnation);
        if let Some(s) = self.servers.as_mut() {
            s.reset(peer, self.now);
        }
        let slot = &mut self.nodes[node as usize];
        slot.incarnation = incarnation;
        slot.status = Status::Waiting;
        let addr = slot.addr;
        self.world_event(WorldEvent::Restarted { node: addr }, obs);
        self.nodes[node as usize].status = Status::Up;
        self.feed(node, Input::Start, obs);
    }

    fn world_event(&mut self, e: WorldEvent, obs: &mut dyn Observer) {
        self.stats.world_events += 1;
        self.trace.world(self.now, &e);
        obs.world(self.now, &e);
    }
}

/// The socket address a dialer's connection appears to come from.
fn ephemeral(listen: NodeAddr, serial: u32) -> NodeAddr {
    // Ports 32768..60999, like Linux's ephemeral range; only logs ever show it.
    NodeAddr::new(listen.ip, 32768 + (serial % 28232) as u16)
}

#[cfg(test)]
mod tests;
