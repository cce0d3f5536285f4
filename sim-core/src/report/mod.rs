//! Events -> the run folder: `outputfile.log`, `freqtrack.log`, `degrees.csv`, `edges.csv`,
//! `deliveries.csv`, `detections.csv` and `summary.json`. Both drivers feed the same
//! [`Recorder`], so simulated and real runs are read with the same tools.
//!
//! A real run also writes `events.jsonl`, the [`journal`] of what its events changed, so
//! that [`merge`] can join the folders of separate processes into one run.

pub mod journal;
pub mod merge;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::addr::NodeAddr;
use crate::node::Event;
use crate::sim::{Observer, WorldEvent};
use crate::time::Time;
use crate::wire::Gossip;

pub use journal::{Change, Entry};
pub use write::write_folder;

/// One originated message.
#[derive(Clone, Debug)]
pub struct MessageInfo {
    /// The message.
    pub message: Arc<Gossip>,
    /// Its origin's sequence number (1 for the first).
    pub seq: u32,
    /// When it was originated.
    pub originated_at: Time,
    /// Peers reachable from the origin over live links when it was originated.
    pub reachable: Vec<NodeAddr>,
    /// Links (held by both ends) among the origin and `reachable` when it was originated: its
    /// flooding costs `2 × links − (reachable + 1) + 1` sends.
    pub links: usize,
}

/// One first receipt of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Index into [`Recorder::messages`], if the origin's event was seen.
    pub message: Option<usize>,
    /// The message's identity.
    pub identity: String,
    /// The message's origin.
    pub origin: NodeAddr,
    /// Who received it.
    pub receiver: NodeAddr,
    /// The neighbour it first came from.
    pub first_from: NodeAddr,
    /// Overlay hops from the origin, derived from `first_from` chains.
    pub hops: Option<u32>,
    /// When it arrived.
    pub at: Time,
}

/// One `PeerDeclaredDead`.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// The peer declared dead.
    pub dead: NodeAddr,
    /// The neighbour that declared it.
    pub reporter: NodeAddr,
    /// When it went down, if it was down.
    pub down_at: Option<Time>,
    /// When the reporter declared it dead.
    pub reported_at: Time,
    /// It was running when declared dead.
    pub false_positive: bool,
}

/// What the recorder knows of a peer.
#[derive(Clone, Debug, Default)]
pub struct PeerState {
    /// Neighbour capacity.
    pub capacity: usize,
    /// Current neighbours.
    pub neighbours: BTreeSet<NodeAddr>,
    /// Running now.
    pub up: bool,
    /// When it last went down.
    pub down_at: Option<Time>,
    /// Seeds that confirmed its registration.
    pub registered_with: BTreeSet<NodeAddr>,
    /// Duplicates it dropped.
    pub duplicates: u64,
    /// Neighbours that held a link with it (both ends) when it last went down.
    pub neighbours_at_down: Vec<NodeAddr>,
}

/// Collects what a run's events say, for the output folder and for checks.
#[derive(Default)]
pub struct Recorder {
    /// Added to event times for log timestamps (UNIX µs of the epoch for real runs).
    pub wall_offset_micros: u64,
    /// Keep `outputfile.log` lines in memory (off for very large runs).
    pub keep_log: bool,
    /// Keep the [`journal`](Recorder::journal) and write it as `events.jsonl` (real runs).
    pub keep_journal: bool,
    /// Know a message by its body, as the reference wire does (a real run of
    /// `--wire reference`, whose forwards are re-stamped and so name no origin): the bodies
    /// are the messages, the first origination of each its origin.
    pub identity_by_body: bool,
    /// Every change, in the order recorded, when `keep_journal` (dropped duplicates are
    /// counted in [`PeerState::duplicates`] instead).
    pub journal: Vec<Entry>,
    /// `outputfile.log` lines.
    pub log: Vec<String>,
    /// Where `outputfile.log` lines go as they come, instead of [`log`](Recorder::log): a
    /// real run writes its log while it runs (a swarm of thousands logs hundreds of MB).
    pub log_to: Option<std::io::BufWriter<std::fs::File>>,
    /// Where the journal goes as it is recorded (a flight recorder, see
    /// [`stream_journal`](Recorder::stream_journal)), and how many of its entries are there.
    journal_to: Option<(std::io::BufWriter<std::fs::File>, usize)>,
    /// Every entry of the journal is in `events.jsonl` already: the folder's writer adds
    /// the duplicate counts only.
    pub journal_streamed: bool,
    /// `freqtrack.log` lines.
    pub freqtrack: Vec<String>,
    /// Every peer seen, by address.
    pub peers: BTreeMap<NodeAddr, PeerState>,
    /// Seeds seen, and whether they are up.
    pub seeds: BTreeMap<NodeAddr, bool>,
    /// Originated messages, in origination order.
    pub messages: Vec<MessageInfo>,
    // Look-ups only; never iterated.
    message_index: HashMap<Arc<Gossip>, usize>,
    /// Under `identity_by_body`, the message of each body (trimmed).
    body_index: HashMap<String, usize>,
    hops: HashMap<(usize, NodeAddr), u32>,
    /// First receipts, in time order.
    pub deliveries: Vec<Delivery>,
    /// Dead declarations, in time order.
    pub detections: Vec<Detection>,
    /// Peers each seed registered (seed -> peers), for seed processes' summaries.
    pub registrations: BTreeMap<NodeAddr, BTreeSet<NodeAddr>>,
    /// Degrees each seed holds for the peers that reported one (seed -> peer -> degree).
    pub seed_degrees: BTreeMap<NodeAddr, BTreeMap<NodeAddr, u32>>,
    /// Seed removals: dead peer -> (seed, time).
    pub removals: BTreeMap<NodeAddr, Vec<(NodeAddr, Time)>>,
    /// Dead reports sent to seeds.
    pub reports_sent: u64,
    /// Reports a seed dismissed because the accused answered its check.
    pub reports_dismissed: u64,
    /// Malformed frames seen.
    pub malformed: u64,
    /// When a neighbour link was last added or removed anywhere.
    pub last_topology_change: Time,
}

impl Recorder {
    /// A recorder that keeps the log. One with a wall clock (`wall_offset_micros > 0`: a real
    /// run, whose epoch is a UNIX time; the simulator's is 0) also keeps the journal, so that
    /// every real run folder can be merged with others (`gossipnet merge`).
    pub fn new(wall_offset_micros: u64) -> Self {
        Recorder {
            wall_offset_micros,
            keep_log: true,
            keep_journal: wall_offset_micros > 0,
            ..Recorder::default()
        }
    }

    /// Makes this recorder a flight recorder: the journal so far goes to `path` (as
    /// `events.jsonl`, header first), and every entry after it goes there when
    /// [`flush_streams`](Recorder::flush_streams) is called, the log's file flushed with
    /// it. A process killed outright (a lab's crash is a `SIGKILL`) then leaves its records
    /// up to its last flush, as a crashed host leaves its disk.
    pub fn stream_journal(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
        journal::write_header(&mut out, self.wall_offset_micros)?;
        self.journal_to = Some((out, 0));
        self.journal_streamed = false;
        self.flush_streams();
        Ok(())
    }

    /// Writes the journal's new entries to its file and flushes the file and the log's
    /// (when streaming; else nothing). A write that fails stops the stream: the journal is
    /// then written whole at the end, as without it.
    pub fn flush_streams(&mut self) {
        use std::io::Write;
        let Some((out, done)) = self.journal_to.as_mut() else {
            return;
        };
        let written =
            journal::write_entries(out, &self.journal[*done..]).and_then(|()| out.flush());
        *done = self.journal.len();
        if written.is_err() {
            self.journal_to = None;
        }
        if let Some(w) = self.log_to.as_mut()
            && w.flush().is_err()
        {
            self.log_to = None;
            self.log
                .push("outputfile.log: lines were lost in a failed write".into());
        }
    }

    /// Ends the journal's stream (the run is over): every entry is written, and
    /// [`journal_streamed`](Recorder::journal_streamed) says whether the file holds them.
    pub fn end_journal_stream(&mut self) {
        self.flush_streams();
        self.journal_streamed = self.journal_to.take().is_some();
    }

    /// One `outputfile.log` line, to the file the log goes to or else to memory. A write
    /// that fails leaves the lines from then on in memory (written at the end).
    fn push_log(&mut self, line: String) {
        use std::io::Write;
        if let Some(w) = self.log_to.as_mut() {
            if writeln!(w, "{line}").is_ok() {
                return;
            }
            self.log_to = None;
        }
        self.log.push(line);
    }

    /// Logs a line that is not a node event (a driver's note about a socket).
    pub fn note(&mut self, at: Time, node: NodeAddr, text: &str) {
        if self.keep_log {
            let line = format!("{}:{node} {text}", self.stamp(at));
            self.push_log(line);
        }
    }

    fn stamp(&self, at: Time) -> String {
        Time(at.0.saturating_add(self.wall_offset_micros)).to_string()
    }

    fn peer(&mut self, addr: NodeAddr) -> &mut PeerState {
        self.peers.entry(addr).or_default()
    }

    fn degree_changed(&mut self, node: NodeAddr, degree: usize) {
        self.freqtrack.push(format!("{node}=>{degree}"));
    }

    /// Running neighbours of `node` that also hold it as a neighbour.
    fn mutual_neighbours(&self, node: NodeAddr) -> Vec<NodeAddr> {
        let Some(state) = self.peers.get(&node) else {
            return Vec::new();
        };
        state
            .neighbours
            .iter()
            .filter(|n| {
                self.peers
                    .get(n)
                    .is_some_and(|s| s.up && s.neighbours.contains(&node))
            })
            .copied()
            .collect()
    }

    /// Peers reachable from `origin` over links both ends hold, among running peers, and the
    /// number of such links among them.
    fn reachable_from(&self, origin: NodeAddr) -> (Vec<NodeAddr>, usize) {
        let mut seen = BTreeSet::from([origin]);
        let mut queue = VecDeque::from([origin]);
        let mut ends = 0;
        while let Some(p) = queue.pop_front() {
            let Some(state) = self.peers.get(&p) else {
                continue;
            };
            for &n in &state.neighbours {
                let mutual = self
                    .peers
                    .get(&n)
                    .is_some_and(|s| s.up && s.neighbours.contains(&p));
                if mutual {
                    ends += 1;
                    if seen.insert(n) {
                        queue.push_back(n);
                    }
                }
            }
        }
        seen.remove(&origin);
        (seen.into_iter().collect(), ends / 2)
    }

    /// Who held each message from the start, as (index in `messages`, node): its origin,
    /// and under `identity_by_body` every later origin of its body.
    pub fn origins(&self) -> BTreeSet<(usize, NodeAddr)> {
        self.hops
            .iter()
            .filter(|&(_, &h)| h == 0)
            .map(|(&k, _)| k)
            .collect()
    }

    fn originated(&mut self, at: Time, node: NodeAddr, message: &Arc<Gossip>, seq: u32) {
        if self.identity_by_body
            && let Some(&idx) = self.body_index.get(message.body.trim_end())
        {
            // One body is one message: a later origin of it holds it, 0 hops away.
            self.hops.insert((idx, node), 0);
            return;
        }
        let idx = self.messages.len();
        if self.identity_by_body {
            self.body_index
                .insert(message.body.trim_end().to_owned(), idx);
        }
        let (reachable, links) = self.reachable_from(node);
        self.messages.push(MessageInfo {
            message: Arc::clone(message),
            seq,
            originated_at: at,
            reachable,
            links,
        });
        self.message_index.insert(Arc::clone(message), idx);
        self.hops.insert((idx, node), 0);
    }

    fn delivered(
        &mut self,
        at: Time,
        receiver: NodeAddr,
        message: &Arc<Gossip>,
        first_from: NodeAddr,
    ) {
        let idx = if self.identity_by_body {
            self.body_index.get(message.body.trim_end()).copied()
        } else {
            self.message_index.get(message).copied()
        };
        let hops = idx.and_then(|i| {
            let h = self.hops.get(&(i, first_from)).copied()? + 1;
            self.hops.insert((i, receiver), h);
            Some(h)
        });
        self.deliveries.push(Delivery {
            message: idx,
            identity: message.identity(),
            origin: message.origin,
            receiver,
            first_from,
            hops,
            at,
        });
    }

    fn declared_dead(&mut self, at: Time, reporter: NodeAddr, dead: NodeAddr) {
        let state = self.peers.get(&dead);
        let up = state.is_none_or(|s| s.up);
        let down_at = state.and_then(|s| s.down_at).filter(|_| !up);
        self.detections.push(Detection {
            dead,
            reporter,
            down_at,
            reported_at: at,
            false_positive: up,
        });
    }
}

impl Recorder {
    /// Applies what one event of `node` changed at `at`: the recorder's whole state comes
    /// from these (the log aside). A merge replays journals through it.
    pub fn apply(&mut self, at: Time, node: NodeAddr, change: &Change) {
        if self.keep_journal && !matches!(change, Change::Duplicates { .. }) {
            self.journal.push(Entry {
                at,
                node,
                change: change.clone(),
            });
        }
        match change {
            Change::PeerStarted { capacity } => {
                let p = self.peer(node);
                *p = PeerState {
                    capacity: *capacity,
                    up: true,
                    ..PeerState::default()
                };
            }
            Change::SeedStarted => {
                self.seeds.insert(node, true);
            }
            Change::Registered { seed } => {
                self.peer(node).registered_with.insert(*seed);
            }
            Change::SeedLost { seed } => {
                self.peer(node).registered_with.remove(seed);
            }
            Change::NeighbourAdded { peer, degree } => {
                self.last_topology_change = at;
                self.peer(node).neighbours.insert(*peer);
                self.degree_changed(node, *degree);
            }
            Change::NeighbourRemoved { peer, degree } => {
                self.last_topology_change = at;
                self.peer(node).neighbours.remove(peer);
                self.degree_changed(node, *degree);
            }
            Change::Originated { message, seq } => self.originated(at, node, message, *seq),
            Change::Delivered {
                message,
                first_from,
            } => self.delivered(at, node, message, *first_from),
            Change::Duplicates { count } => self.peer(node).duplicates += count,
            Change::DegreeRecorded { peer, degree } => {
                self.seed_degrees
                    .entry(node)
                    .or_default()
                    .insert(*peer, *degree);
            }
            Change::DeclaredDead { peer } => self.declared_dead(at, node, *peer),
            Change::DeadReported => self.reports_sent += 1,
            Change::RemovedBySeed { dead } => {
                if let Some(d) = self.seed_degrees.get_mut(&node) {
                    d.remove(dead);
                }
                self.removals.entry(*dead).or_default().push((node, at));
            }
            Change::Malformed => self.malformed += 1,
            Change::ReportDismissed => self.reports_dismissed += 1,
            Change::PeerRegistered { peer } => {
                self.registrations.entry(node).or_default().insert(*peer);
            }
            Change::Down => self.went_down(at, node),
        }
    }

    fn went_down(&mut self, at: Time, node: NodeAddr) {
        if let Some(up) = self.seeds.get_mut(&node) {
            *up = false;
        } else {
            let mutual = self.mutual_neighbours(node);
            let p = self.peer(node);
            p.up = false;
            p.down_at = Some(at);
            p.neighbours_at_down = mutual;
        }
    }

    /// Derives each delivery's message and hops again from the whole record. A merge calls
    /// it: there the clocks of two processes may put a receipt a few µs before the
    /// origination or the first receipt it follows, which the running derivation misses.
    pub fn link_deliveries(&mut self) {
        let by_identity: HashMap<String, usize> = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.message.identity(), i))
            .collect();
        for d in &mut self.deliveries {
            d.message = by_identity.get(&d.identity).copied();
        }
        // (message, receiver) -> the delivery's position.
        let at: HashMap<(usize, NodeAddr), usize> = self
            .deliveries
            .iter()
            .enumerate()
            .filter_map(|(k, d)| Some(((d.message?, d.receiver), k)))
            .collect();
        let mut hops: HashMap<(usize, NodeAddr), Option<u32>> = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| ((i, m.message.origin), Some(0)))
            .collect();
        for k in 0..self.deliveries.len() {
            let d = &self.deliveries[k];
            let Some(i) = d.message else { continue };
            // Walk first_from links back to a peer whose hops are known (the origin), then
            // number the walk forwards. A missing link or a loop leaves the walk unknown.
            let mut walk = vec![d.receiver];
            let mut known = None;
            while let Some(&last) = walk.last() {
                if let Some(h) = hops.get(&(i, last)) {
                    known = *h;
                    walk.pop();
                    break;
                }
                let next = at
                    .get(&(i, last))
                    .map(|&j| self.deliveries[j].first_from)
                    .filter(|n| !walk.contains(n));
                match next {
                    Some(n) => walk.push(n),
                    None => break,
                }
            }
            for (step, node) in walk.iter().rev().enumerate() {
                let h = known.map(|h| h + 1 + step as u32);
                hops.insert((i, *node), h);
            }
        }
        self.hops.clear();
        for d in &mut self.deliveries {
            d.hops = d
                .message
                .and_then(|i| hops.get(&(i, d.receiver)).copied().flatten());
            if let (Some(i), Some(h)) = (d.message, d.hops) {
                self.hops.insert((i, d.receiver), h);
            }
        }
        for (i, m) in self.messages.iter().enumerate() {
            self.hops.insert((i, m.message.origin), 0);
        }
    }
}

impl Observer for Recorder {
    fn event(&mut self, at: Time, node: NodeAddr, event: &Event) {
        if let Some(change) = Change::of(event) {
            self.apply(at, node, &change);
        }
        // Duplicates are counted, not logged (the trace has every one); degree records come
        // one per neighbour change at every seed, and the log would drown.
        let logged = !matches!(
            event,
            Event::DuplicateDropped { .. }
                | Event::DegreeRecorded { .. }
                | Event::DegreeAdvertised { .. }
        );
        if self.keep_log && logged {
            let line = format!("{}:{node} {event}", self.stamp(at));
            self.push_log(line);
        }
    }

    fn world(&mut self, at: Time, event: &WorldEvent) {
        match event {
            WorldEvent::Down { node, .. } => self.apply(at, *node, &Change::Down),
            WorldEvent::Restarted { .. } => {} // PeerStarted resets the state
            WorldEvent::PartitionStarted(_)
            | WorldEvent::PartitionHealed(_)
            | WorldEvent::ConnectionsReset { .. } => {}
        }
        if self.keep_log {
            let line = format!("{}:{event}", self.stamp(at));
            self.push_log(line);
        }
    }
}

/// Figures a run is judged by.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// Peers that started.
    pub peers: usize,
    /// Peers running at the end.
    pub peers_alive: usize,
    /// Messages originated.
    pub messages: usize,
    /// First receipts.
    pub deliveries: usize,
    /// (message, receiver) pairs expected: receivers reachable from the origin when it was
    /// originated and still running at the end.
    pub expected_deliveries: usize,
    /// Expected pairs that were delivered.
    pub expected_delivered: usize,
    /// `expected_delivered / expected_deliveries` (1 when nothing was expected).
    pub coverage: f64,
    /// (peer, message) pairs delivered more than once (must be 0).
    pub double_deliveries: usize,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Dead declarations.
    pub detections: usize,
    /// Dead declarations of running peers.
    pub false_positives: usize,
    /// Seconds from going down to being declared dead: min, median, max.
    pub detection_latency_s: Option<[f64; 3]>,
    /// Seconds from a message's origination to its last first-receipt, over messages
    /// delivered at least once: min, median, max.
    pub dissemination_s: Option<[f64; 3]>,
    /// Final degree: min, mean, max over running peers.
    pub degree: Option<[f64; 3]>,
    /// Malformed frames.
    pub malformed: u64,
}

impl Recorder {
    /// The run's figures.
    pub fn outcome(&self) -> Outcome {
        let alive: BTreeSet<NodeAddr> = self
            .peers
            .iter()
            .filter(|(_, s)| s.up)
            .map(|(a, _)| *a)
            .collect();
        // What a message is known by: its identity, or its body under `identity_by_body`.
        let key = |identity: &str| -> String {
            if self.identity_by_body {
                identity
                    .splitn(4, ':')
                    .nth(3)
                    .unwrap_or("")
                    .trim_end()
                    .to_owned()
            } else {
                identity.to_owned()
            }
        };
        let mut delivered = BTreeSet::new();
        let mut double = 0;
        for d in &self.deliveries {
            if !delivered.insert((key(&d.identity), d.receiver)) {
                double += 1;
            }
        }
        if self.identity_by_body {
            // A later origin of a body holds that message.
            for (&(i, node), &h) in &self.hops {
                if h == 0 {
                    let body = self.messages[i].message.body.trim_end().to_owned();
                    delivered.insert((body, node));
                }
            }
        }
        let (mut expected, mut got) = (0, 0);
        for m in &self.messages {
            let id = key(&m.message.identity());
            for r in m.reachable.iter().filter(|r| alive.contains(r)) {
                expected += 1;
                got += usize::from(delivered.contains(&(id.clone(), *r)));
            }
        }
        let mut latencies: Vec<f64> = self
            .detections
            .iter()
            .filter_map(|d| d.down_at.map(|t| d.reported_at.since(t).secs_f64()))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let mut last = vec![None::<Time>; self.messages.len()];
        for d in &self.deliveries {
            if let Some(i) = d.message {
                last[i] = last[i].max(Some(d.at));
            }
        }
        let mut spread: Vec<f64> = last
            .iter()
            .zip(&self.messages)
            .filter_map(|(t, m)| t.map(|t| t.since(m.originated_at).secs_f64()))
            .collect();
        spread.sort_by(f64::total_cmp);
        let degrees: Vec<f64> = alive
            .iter()
            .map(|a| self.peers[a].neighbours.len() as f64)
            .collect();
        Outcome {
            peers: self.peers.len(),
            peers_alive: alive.len(),
            messages: self.messages.len(),
            deliveries: self.deliveries.len(),
            expected_deliveries: expected,
            expected_delivered: got,
            coverage: if expected == 0 {
                1.0
            } else {
                got as f64 / expected as f64
            },
            double_deliveries: double,
            duplicates: self.peers.values().map(|s| s.duplicates).sum(),
            detections: self.detections.len(),
            false_positives: self.detections.iter().filter(|d| d.false_positive).count(),
            detection_latency_s: min_median_max(&latencies),
            dissemination_s: min_median_max(&spread),
            degree: min_mean_max(&degrees),
            malformed: self.malformed,
        }
    }

    /// Links both ends hold between running peers, each once with `a < b`.
    pub fn edges(&self) -> Vec<(NodeAddr, NodeAddr)> {
        let up = |a: &NodeAddr| self.peers.get(a).is_some_and(|s| s.up);
        let mut out = Vec::new();
        for (a, s) in self.peers.iter().filter(|(a, _)| up(a)) {
            for b in s.neighbours.range(*a..).filter(|b| *b != a && up(b)) {
                if self.peers[b].neighbours.contains(a) {
                    out.push((*a, *b));
                }
            }
        }
        out
    }
}

fn min_median_max(sorted: &[f64]) -> Option<[f64; 3]> {
    let (first, last) = (sorted.first()?, sorted.last()?);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some([*first, median, *last])
}

fn min_mean_max(values: &[f64]) -> Option<[f64; 3]> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some([min, values.iter().sum::<f64>() / values.len() as f64, max])
}

#[cfg(test)]
mod body_identity_tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::Event;
    use crate::sim::Observer;
    use crate::wire::{Gossip, Timestamp};

    fn addr(s: &str) -> NodeAddr {
        s.parse().expect("a valid address")
    }

    /// A real run of the reference wire: A and C both originate `message 1`, and B receives
    /// A's copy with its padding (C's, padded the same, is a duplicate there). By body it is
    /// one message, and every peer holds it.
    #[test]
    fn under_the_reference_wire_a_body_is_one_message() {
        let (a, b, c) = (
            addr("127.0.0.1:6000"),
            addr("127.0.0.1:6001"),
            addr("127.0.0.1:6002"),
        );
        let mut rec = Recorder::new(1_732_406_400_000_000);
        rec.identity_by_body = true;
        let t = |s: u64| Time(s * 1_000_000);
        for n in [a, b, c] {
            rec.event(t(0), n, &Event::PeerStarted { capacity: 4 });
        }
        for (x, y) in [(a, b), (b, a), (b, c), (c, b)] {
            let e = Event::NeighbourAdded { peer: y, degree: 1 };
            rec.event(t(1), x, &e);
        }
        let gossip = |origin: Time, from: NodeAddr| {
            Arc::new(Gossip::new(
                Timestamp::at(origin, 0),
                from,
                "message 1".into(),
            ))
        };
        for (origin, at) in [(a, 2), (c, 3)] {
            let e = Event::GossipOriginated {
                message: gossip(t(at), origin),
                seq: 1,
                sent_to: 1,
            };
            rec.event(t(at), origin, &e);
        }
        // B receives A's as the wire carries it: stamped by its sender, A, and padded.
        let padded = Arc::new(Gossip::new(
            Timestamp::at(t(2), 0),
            a,
            format!("message 1{}", " ".repeat(30)),
        ));
        let e = Event::GossipDelivered {
            message: padded,
            first_from: a,
            forwarded_to: 1,
        };
        rec.event(t(2), b, &e);
        let o = rec.outcome();
        assert_eq!(o.messages, 1, "{o:?}");
        assert_eq!(
            o.expected_deliveries, 2,
            "B and C from A's origination: {o:?}"
        );
        assert_eq!(
            o.expected_delivered, 2,
            "C originated it, B received it: {o:?}"
        );
        assert_eq!(rec.deliveries[0].hops, Some(1));
    }
}
