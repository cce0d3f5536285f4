//! The decisions of a run (real or twin) read from its journal, and their comparison: each
//! item in one run only, or with other hops, is a disagreement, classified expected (a race
//! decided by real timing, by the rules below) or unexpected.
//!
//! The rules (README, "Replay"), with `tol` the tolerance window:
//! - a **boundary instant**: an item of one run only whose time lies within `tol` of a
//!   fault of a node that makes the decision (the receiver or the sender of a receipt, the
//!   origin of a message, the reporter of a dead report, the seed of a removal, either end
//!   of a registration or a link: any fault), or of a restart or reset of the peer a report
//!   or removal is about (its crash causes them, it does not cut them), or of the end of the
//!   comparison, was cut by an instant the two clocks place a little apart;
//! - a **hop race**: a receipt whose first sender differs, where the twin's copy from the
//!   real first sender came within `tol` of the twin's first copy: which copy wins is
//!   decided by real timing; hops that differ only through such races are expected;
//! - a **partition round race**: a dead report across a partition, in one run only, where
//!   one of the reporter's liveness rounds (every liveness interval back from the report)
//!   falls within `tol` of the partition's start or heal: whether that round's request and
//!   reply were held decides the count of misses;
//! - a **partition refill race**: a link formed in one run only while a partition was in
//!   force (or within the connect timeout and `tol` after it healed): a dial across a
//!   partition fails at once in the real driver and after the connect timeout in the twin;
//! - a **link race**: a receipt of one run only whose chain of first senders crossed a link
//!   formed (in either run) within `tol` of the message passing over it;
//! - **follows**: a dead report that follows a link of one run only that is expected, a
//!   removal that follows an expected dead report of the same peer, and a receipt of one
//!   run only whose chain crossed a link that an expected dead report of the other run
//!   closed (the held traffic of a partition that one run released at its heal), are
//!   expected.
//!
//! Everything else is unexpected.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use sim_core::addr::NodeAddr;
use sim_core::node::Event;
use sim_core::report::journal::Entry;
use sim_core::report::{Change, Outcome, Recorder};
use sim_core::sim::{Observer, WorldEvent};
use sim_core::time::{Duration, Time};
use sim_core::wire::Gossip;

/// A message as both runs know it: its origin, its body, and which of the origin's
/// messages with that body it is (0 for the first; a restarted peer starts at `#1` again).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MsgKey {
    /// The origin.
    pub origin: NodeAddr,
    /// The body.
    pub body: String,
    /// Earlier messages of the origin with the same body.
    pub nth: u32,
}

impl MsgKey {
    fn body_text(&self) -> String {
        if self.nth == 0 {
            self.body.clone()
        } else {
            format!("{} (#{} with this body)", self.body, self.nth + 1)
        }
    }
}

/// A first receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct Receipt {
    /// When.
    pub at: Time,
    /// From whom.
    pub first_from: NodeAddr,
    /// Hops from the origin.
    pub hops: Option<u32>,
}

/// What one run decided, keyed so that the two runs compare.
pub struct Side {
    /// (origin, body) -> when.
    pub originations: BTreeMap<MsgKey, Time>,
    /// (message, receiver) -> the receipt.
    pub deliveries: BTreeMap<(MsgKey, NodeAddr), Receipt>,
    /// (dead, reporter) -> first declaration.
    pub reports: BTreeMap<(NodeAddr, NodeAddr), Time>,
    /// (dead, seed) -> first removal.
    pub removals: BTreeMap<(NodeAddr, NodeAddr), Time>,
    /// (peer, seed) -> first confirmed registration.
    pub registrations: BTreeMap<(NodeAddr, NodeAddr), Time>,
    /// (a, b), a < b -> when both ends first held the link.
    pub links: BTreeMap<(NodeAddr, NodeAddr), Time>,
    /// The run's figures (dissemination, detection latency).
    pub outcome: Outcome,
    /// Seconds from each peer's going down to each declaration of it: (dead, reporter, s).
    pub detection_delays: Vec<(NodeAddr, NodeAddr, f64)>,
    /// Whether any seed's events are in the run.
    pub has_seeds: bool,
}

impl Side {
    /// The decisions of `entries` (a journal, in time order), up to `horizon`.
    pub fn of(entries: &[Entry], horizon: Time) -> Side {
        let entries: Vec<&Entry> = entries.iter().filter(|e| e.at <= horizon).collect();
        let mut rec = Recorder::default();
        let mut keys: HashMap<String, MsgKey> = HashMap::new();
        let mut nth: BTreeMap<(NodeAddr, String), u32> = BTreeMap::new();
        let mut side = Side {
            originations: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            reports: BTreeMap::new(),
            removals: BTreeMap::new(),
            registrations: BTreeMap::new(),
            links: BTreeMap::new(),
            outcome: Outcome::default(),
            detection_delays: Vec::new(),
            has_seeds: false,
        };
        let mut neighbours: BTreeMap<NodeAddr, BTreeSet<NodeAddr>> = BTreeMap::new();
        for e in &entries {
            rec.apply(e.at, e.node, &e.change);
            match &e.change {
                Change::Originated { message, .. } => {
                    let n = nth.entry((e.node, message.body.clone())).or_insert(0);
                    let key = MsgKey {
                        origin: e.node,
                        body: message.body.clone(),
                        nth: *n,
                    };
                    *n += 1;
                    keys.insert(message.identity(), key.clone());
                    side.originations.entry(key).or_insert(e.at);
                }
                Change::DeclaredDead { peer } => {
                    side.reports.entry((*peer, e.node)).or_insert(e.at);
                }
                Change::RemovedBySeed { dead } => {
                    side.removals.entry((*dead, e.node)).or_insert(e.at);
                }
                Change::Registered { seed } => {
                    side.registrations.entry((e.node, *seed)).or_insert(e.at);
                }
                Change::SeedStarted | Change::PeerRegistered { .. } => side.has_seeds = true,
                Change::NeighbourAdded { peer, .. } => {
                    neighbours.entry(e.node).or_default().insert(*peer);
                    if neighbours.get(peer).is_some_and(|n| n.contains(&e.node)) {
                        let link = (e.node.min(*peer), e.node.max(*peer));
                        side.links.entry(link).or_insert(e.at);
                    }
                }
                Change::NeighbourRemoved { peer, .. } => {
                    if let Some(n) = neighbours.get_mut(&e.node) {
                        n.remove(peer);
                    }
                }
                Change::PeerStarted { .. } => {
                    neighbours.remove(&e.node);
                }
                _ => {}
            }
        }
        rec.link_deliveries();
        for d in &rec.deliveries {
            let key = keys.get(&d.identity).cloned().unwrap_or_else(|| MsgKey {
                origin: d.origin,
                body: d.identity.splitn(4, ':').nth(3).unwrap_or("").to_owned(),
                nth: 0,
            });
            side.deliveries.entry((key, d.receiver)).or_insert(Receipt {
                at: d.at,
                first_from: d.first_from,
                hops: d.hops,
            });
        }
        side.detection_delays = rec
            .detections
            .iter()
            .filter_map(|d| {
                let down = d.down_at?;
                Some((d.dead, d.reporter, d.reported_at.since(down).secs_f64()))
            })
            .collect();
        side.outcome = rec.outcome();
        side
    }
}

/// What the twin's run showed beside its journal: when each copy of a message reached each
/// peer from each neighbour (first receipts and dropped duplicates), for hop races.
#[derive(Default)]
pub struct TwinLog {
    /// The journal the twin would have written.
    pub entries: Vec<Entry>,
    /// (message, receiver, sender) -> first arrival of a copy. Look-ups only.
    copies: HashMap<(Arc<Gossip>, NodeAddr, NodeAddr), Time>,
    /// message identity -> the message (to look copies up by identity). Look-ups only.
    by_identity: HashMap<String, Arc<Gossip>>,
}

impl TwinLog {
    /// When the twin's `receiver` first got a copy of `identity` from `sender`.
    pub fn copy_at(&self, identity: &str, receiver: NodeAddr, sender: NodeAddr) -> Option<Time> {
        let g = self.by_identity.get(identity)?;
        self.copies.get(&(Arc::clone(g), receiver, sender)).copied()
    }
}

impl Observer for TwinLog {
    fn event(&mut self, at: Time, node: NodeAddr, event: &Event) {
        let copy = match event {
            Event::GossipDelivered {
                message,
                first_from,
                ..
            } => Some((message.root(), *first_from)),
            Event::DuplicateDropped { message, from } => Some((message.root(), *from)),
            Event::GossipOriginated { message, .. } => {
                self.by_identity
                    .insert(message.root().identity(), Arc::clone(message.root()));
                None
            }
            _ => None,
        };
        if let Some((g, from)) = copy {
            self.copies.entry((Arc::clone(g), node, from)).or_insert(at);
        }
        if let Some(change) = Change::of(event)
            && !matches!(change, Change::Duplicates { .. })
        {
            self.entries.push(Entry { at, node, change });
        }
    }

    fn world(&mut self, at: Time, event: &WorldEvent) {
        if let WorldEvent::Down { node, .. } = event {
            self.entries.push(Entry {
                at,
                node: *node,
                change: Change::Down,
            });
        }
    }
}

/// A kind of decision compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// (peer, seed) registrations.
    Registration,
    /// Neighbour links both ends held.
    Link,
    /// (origin, body) originations.
    Origination,
    /// (origin, body, receiver) deliveries.
    Delivery,
    /// Hops of a delivery both runs made.
    Hops,
    /// (dead, reporter) dead declarations.
    DeadReport,
    /// (dead, seed) removals.
    Removal,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 7] = [
        Kind::Registration,
        Kind::Link,
        Kind::Origination,
        Kind::Delivery,
        Kind::Hops,
        Kind::DeadReport,
        Kind::Removal,
    ];

    /// Its name in tables and the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Registration => "registration",
            Kind::Link => "link",
            Kind::Origination => "origination",
            Kind::Delivery => "delivery",
            Kind::Hops => "hops",
            Kind::DeadReport => "dead_report",
            Kind::Removal => "removal",
        }
    }

    /// What an item is, for the report.
    pub fn item(self) -> &'static str {
        match self {
            Kind::Registration => "(peer, seed)",
            Kind::Link => "(peer, peer) both ends held",
            Kind::Origination => "(origin, body)",
            Kind::Delivery => "(origin, body, receiver)",
            Kind::Hops => "hops of a delivery both made",
            Kind::DeadReport => "(dead, reporter)",
            Kind::Removal => "(dead, seed)",
        }
    }
}

/// One disagreement.
#[derive(Clone, Debug, PartialEq)]
pub struct Disagreement {
    /// The kind of decision.
    pub kind: Kind,
    /// The first node of the item (origin, dead peer, peer, link end).
    pub subject: NodeAddr,
    /// The message body, for deliveries, originations and hops.
    pub message: String,
    /// The second node of the item (receiver, reporter, seed, link end).
    pub node: Option<NodeAddr>,
    /// What the real run had.
    pub real: String,
    /// What the twin had.
    pub twin: String,
    /// Expected by the rules.
    pub expected: bool,
    /// Why.
    pub reason: String,
}

/// The counts of one kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Items in the real run.
    pub real: usize,
    /// Items in the twin.
    pub twin: usize,
    /// Items in both (for hops: deliveries in both with the same hops).
    pub agreed: usize,
    /// Items in the real run only (for hops: deliveries with other hops).
    pub real_only: usize,
    /// Items in the twin only.
    pub twin_only: usize,
    /// Disagreements the rules expect.
    pub expected: usize,
    /// Disagreements they do not.
    pub unexpected: usize,
    /// Not compared, and why.
    pub skipped: Option<String>,
}

/// A partition, with its groups as addresses.
#[derive(Clone, Debug)]
pub struct PartitionSpan {
    /// One group.
    pub a: BTreeSet<NodeAddr>,
    /// The other.
    pub b: BTreeSet<NodeAddr>,
    /// Start.
    pub start: Time,
    /// Heal.
    pub end: Time,
}

impl PartitionSpan {
    fn separates(&self, x: NodeAddr, y: NodeAddr) -> bool {
        (self.a.contains(&x) && self.b.contains(&y)) || (self.b.contains(&x) && self.a.contains(&y))
    }
}

/// What the rules need to know of the run.
pub struct Rules<'a> {
    /// The tolerance window.
    pub tol: Duration,
    /// The end of the comparison.
    pub horizon: Time,
    /// The liveness interval.
    pub liveness: Duration,
    /// Misses that make a neighbour dead.
    pub misses: u32,
    /// How long the twin's dial across a partition takes to fail.
    pub connect_timeout: Duration,
    /// Faults of nodes: node -> (when, what).
    pub node_faults: BTreeMap<NodeAddr, Vec<(Time, String)>>,
    /// Partitions.
    pub partitions: Vec<PartitionSpan>,
    /// The twin's copies.
    pub twin_log: &'a TwinLog,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.0 as f64 / 1000.0)
}

/// How [`Rules::node_faults`] names a restart and a reset.
pub const RESTARTED: &str = "restarted";
/// See [`RESTARTED`].
pub const RESET: &str = "had its connections reset";

fn secs(t: Time) -> String {
    format!("{:.6} s", t.secs_f64())
}

impl Rules<'_> {
    /// A fault of `node` within the window of `t`; of the kinds that bring a node back
    /// (restart, reset) only, unless `any`.
    fn fault_near(&self, node: NodeAddr, t: Time, any: bool) -> Option<String> {
        let (ft, what) = self.node_faults.get(&node)?.iter().find(|(ft, what)| {
            ft.0.abs_diff(t.0) <= self.tol.0 && (any || what == RESTARTED || what == RESET)
        })?;
        Some(format!(
            "boundary instant: {node} {what} at {}, {} from this at {}",
            secs(*ft),
            ms(Duration(ft.0.abs_diff(t.0))),
            secs(t)
        ))
    }

    fn end_near(&self, t: Time) -> Option<String> {
        (t.0 + self.tol.0 >= self.horizon.0).then(|| {
            format!(
                "boundary instant: at {}, within {} of the end of the comparison ({})",
                secs(t),
                ms(self.tol),
                secs(self.horizon)
            )
        })
    }

    /// The first boundary instant of the item's `actors` (any fault of a node that makes
    /// the decision can cut it), of its `subjects` (only a restart or reset: a crash of the
    /// peer a report or removal is about causes it, it does not cut it), and of the end.
    fn boundary(&self, actors: &[NodeAddr], subjects: &[NodeAddr], t: Time) -> Option<String> {
        actors
            .iter()
            .find_map(|n| self.fault_near(*n, t, true))
            .or_else(|| subjects.iter().find_map(|n| self.fault_near(*n, t, false)))
            .or_else(|| self.end_near(t))
    }

    fn round_race(&self, dead: NodeAddr, reporter: NodeAddr, t: Time) -> Option<String> {
        let l = self.liveness.0;
        for p in self
            .partitions
            .iter()
            .filter(|p| p.separates(dead, reporter))
        {
            for k in 0..=u64::from(self.misses) + 1 {
                let Some(round) = t.0.checked_sub(k * l) else {
                    break;
                };
                for (edge, name) in [(p.start, "start"), (p.end, "heal")] {
                    if round.abs_diff(edge.0) <= self.tol.0 {
                        return Some(format!(
                            "partition round race: {reporter}'s liveness round at {} is {} from \
                             the partition's {name} at {}",
                            secs(Time(round)),
                            ms(Duration(round.abs_diff(edge.0))),
                            secs(edge)
                        ));
                    }
                }
            }
        }
        None
    }

    fn refill_race(&self, t: Time) -> Option<String> {
        let slack = self.connect_timeout.0 + self.tol.0;
        self.partitions
            .iter()
            .find(|p| t >= p.start && t.0 <= p.end.0 + slack)
            .map(|p| {
                format!(
                    "partition refill race: formed at {} while the partition of {}..{} held \
                     (a dial across it fails at once for real, after {} in the twin)",
                    secs(t),
                    secs(p.start),
                    secs(p.end),
                    self.connect_timeout
                )
            })
    }

    /// Whether the real first sender `sender` of `identity` at `at_node` was a near tie in
    /// the twin: its copy from `sender` came within the window of its first copy, or
    /// `sender` (linked to `at_node`) held the message itself within that window (its copy
    /// would have gone the other way: the twin's `at_node` was first, and forwards are not
    /// sent back). `Ok(what)` if so, `Err(why not)` otherwise.
    fn copy_race(
        &self,
        identity: &str,
        at_node: NodeAddr,
        twin_first: &Receipt,
        sender: NodeAddr,
        twin: &Side,
        key: &MsgKey,
    ) -> Result<String, String> {
        if let Some(t) = self.twin_log.copy_at(identity, at_node, sender) {
            let gap = t.since(twin_first.at);
            if gap <= self.tol {
                return Ok(format!("whose copy from {sender} came {} later", ms(gap)));
            }
            return Err(format!(
                "at {at_node} the twin's copy from {sender} came {} after its first (from {}), \
                 beyond {}",
                ms(gap),
                twin_first.first_from,
                ms(self.tol)
            ));
        }
        let linked = twin
            .links
            .contains_key(&(at_node.min(sender), at_node.max(sender)));
        let held = if sender == key.origin {
            twin.originations.get(key).copied()
        } else {
            twin.deliveries.get(&(key.clone(), sender)).map(|r| r.at)
        };
        match held {
            Some(h) if linked && h.0 <= twin_first.at.0 + self.tol.0 => Ok(format!(
                "where {sender} had it {} {} {at_node}",
                ms(Duration(h.0.abs_diff(twin_first.at.0))),
                if h <= twin_first.at {
                    "before"
                } else {
                    "after"
                }
            )),
            Some(h) if linked => Err(format!(
                "the twin's {sender} had it {} after {at_node}, beyond {}",
                ms(h.since(twin_first.at)),
                ms(self.tol)
            )),
            _ => Err(format!(
                "the twin's {at_node} never got a copy from {sender} (no link between them)"
            )),
        }
    }
}

/// The comparison of two runs.
pub struct Comparison {
    /// Per kind.
    pub tallies: BTreeMap<Kind, Tally>,
    /// Every disagreement.
    pub disagreements: Vec<Disagreement>,
    /// Deliveries both made with the same first sender.
    pub same_first_from: usize,
}

/// What a one-run-only item is: (subject, message, node, its value, the verdict: `Some(why)`
/// when expected).
type Described = (NodeAddr, String, Option<NodeAddr>, String, Option<String>);

/// Compares one kind's items: counts them, and lists each item of one run only as `describe`
/// says (it is told whether the item is the real run's).
fn one_kind<K: Ord, V>(
    kind: Kind,
    real: &BTreeMap<K, V>,
    twin: &BTreeMap<K, V>,
    out: &mut Vec<Disagreement>,
    mut describe: impl FnMut(&K, &V, bool) -> Described,
) -> Tally {
    let mut t = Tally {
        real: real.len(),
        twin: twin.len(),
        agreed: real.keys().filter(|k| twin.contains_key(k)).count(),
        ..Tally::default()
    };
    for (in_real, mine, other) in [(true, real, twin), (false, twin, real)] {
        for (k, v) in mine.iter().filter(|(k, _)| !other.contains_key(k)) {
            let (subject, message, node, value, verdict) = describe(k, v, in_real);
            if in_real {
                t.real_only += 1;
            } else {
                t.twin_only += 1;
            }
            let (real_v, twin_v) = if in_real {
                (value, "absent".to_owned())
            } else {
                ("absent".to_owned(), value)
            };
            out.push(Disagreement {
                kind,
                subject,
                message,
                node,
                real: real_v,
                twin: twin_v,
                expected: verdict.is_some(),
                reason: verdict.unwrap_or_else(|| "no rule explains it".into()),
            });
        }
    }
    t
}

fn present(t: Time) -> String {
    format!("at {}", secs(t))
}

/// Compares `real` and `twin` by `rules`.
pub fn compare(real: &Side, twin: &Side, rules: &Rules<'_>) -> Comparison {
    let mut out = Vec::new();
    let mut tallies = BTreeMap::new();
    let t = one_kind(
        Kind::Registration,
        &real.registrations,
        &twin.registrations,
        &mut out,
        |(peer, seed), at, _| {
            let v = rules.boundary(&[*peer, *seed], &[], *at);
            (*peer, String::new(), Some(*seed), present(*at), v)
        },
    );
    tallies.insert(Kind::Registration, t);
    let mut link_verdicts: BTreeMap<(NodeAddr, NodeAddr), Option<String>> = BTreeMap::new();
    let t = one_kind(
        Kind::Link,
        &real.links,
        &twin.links,
        &mut out,
        |(a, b), at, _| {
            let v = rules
                .boundary(&[*a, *b], &[], *at)
                .or_else(|| rules.refill_race(*at));
            link_verdicts.insert((*a, *b), v.clone());
            (*a, String::new(), Some(*b), present(*at), v)
        },
    );
    tallies.insert(Kind::Link, t);
    let t = one_kind(
        Kind::Origination,
        &real.originations,
        &twin.originations,
        &mut out,
        |key, at, _| {
            let v = rules.boundary(&[key.origin], &[], *at);
            (key.origin, key.body_text(), None, present(*at), v)
        },
    );
    tallies.insert(Kind::Origination, t);
    let mut report_verdicts: BTreeMap<NodeAddr, Vec<Option<String>>> = BTreeMap::new();
    // Links that a dead report of one run only, expected, took down: (a, b), a < b.
    let mut cut_links: BTreeMap<(NodeAddr, NodeAddr), String> = BTreeMap::new();
    let t = one_kind(
        Kind::DeadReport,
        &real.reports,
        &twin.reports,
        &mut out,
        |(dead, reporter), at, _| {
            let (a, b) = (*dead.min(reporter), *dead.max(reporter));
            let v = rules
                .boundary(&[*reporter], &[*dead], *at)
                .or_else(|| rules.round_race(*dead, *reporter, *at))
                .or_else(|| {
                    let why = link_verdicts.get(&(a, b))?.as_ref()?;
                    Some(format!(
                        "follows the link {a}-{b} of one run only, expected ({why})"
                    ))
                });
            report_verdicts.entry(*dead).or_default().push(v.clone());
            if let Some(why) = &v {
                cut_links.insert((a, b), format!("{reporter} declared {dead} dead ({why})"));
            }
            (*dead, String::new(), Some(*reporter), present(*at), v)
        },
    );
    tallies.insert(Kind::DeadReport, t);
    let t = one_kind(
        Kind::Delivery,
        &real.deliveries,
        &twin.deliveries,
        &mut out,
        |(key, receiver), rc, in_real| {
            let origination = if in_real { real } else { twin }.originations.get(key);
            let side = if in_real { real } else { twin };
            let v = rules
                .boundary(&[*receiver, rc.first_from], &[], rc.at)
                .or_else(|| rules.boundary(&[key.origin], &[], *origination?))
                .or_else(|| follows_cut(side, key, *receiver, &cut_links))
                .or_else(|| link_race(side, [real, twin], key, *receiver, rules.tol));
            let value = format!("at {} from {}", secs(rc.at), rc.first_from);
            (key.origin, key.body_text(), Some(*receiver), value, v)
        },
    );
    tallies.insert(Kind::Delivery, t);
    let (hops, same_first_from) = compare_hops(real, twin, rules, &mut out);
    tallies.insert(Kind::Hops, hops);
    let t = if real.has_seeds {
        one_kind(
            Kind::Removal,
            &real.removals,
            &twin.removals,
            &mut out,
            |(dead, seed), at, _| {
                let v = rules.boundary(&[*seed], &[*dead], *at).or_else(|| {
                    let why = report_verdicts.get(dead)?.iter().flatten().next()?;
                    Some(format!(
                        "follows a dead report of {dead} in one run only, expected ({why})"
                    ))
                });
                (*dead, String::new(), Some(*seed), present(*at), v)
            },
        )
    } else {
        Tally {
            skipped: Some(
                "no seed's events in the real folder (merge the seeds' folder in)".into(),
            ),
            twin: twin.removals.len(),
            ..Tally::default()
        }
    };
    tallies.insert(Kind::Removal, t);
    // By kind, each kind's items in the order found (sorted maps: by key).
    out.sort_by_key(|d| d.kind);
    for d in &out {
        if let Some(t) = tallies.get_mut(&d.kind) {
            if d.expected {
                t.expected += 1;
            } else {
                t.unexpected += 1;
            }
        }
    }
    Comparison {
        tallies,
        disagreements: out,
        same_first_from,
    }
}

/// A delivery of one run only whose chain of first senders in that run crossed a link that
/// an expected dead report of the other run only took down: the report decided it.
fn follows_cut(
    side: &Side,
    key: &MsgKey,
    receiver: NodeAddr,
    cut: &BTreeMap<(NodeAddr, NodeAddr), String>,
) -> Option<String> {
    if cut.is_empty() {
        return None;
    }
    let mut at = receiver;
    // A chain is at most as long as the receipts of the message.
    for _ in 0..=side.deliveries.len() {
        if at == key.origin {
            break;
        }
        let from = side.deliveries.get(&(key.clone(), at))?.first_from;
        if let Some(why) = cut.get(&(at.min(from), at.max(from))) {
            return Some(format!(
                "follows a dead report of one run only: it came over {from}-{at}, which the \
                 other run closed when {why}"
            ));
        }
        at = from;
    }
    None
}

/// A delivery of one run only whose chain of first senders in that run crossed a link
/// formed (in either run) within `tol` of the message passing over it: whether the link
/// was up when the message went by is decided by real timing.
fn link_race(
    side: &Side,
    runs: [&Side; 2],
    key: &MsgKey,
    receiver: NodeAddr,
    tol: Duration,
) -> Option<String> {
    let mut at = receiver;
    for _ in 0..=side.deliveries.len() {
        if at == key.origin {
            break;
        }
        let r = side.deliveries.get(&(key.clone(), at))?;
        let link = (at.min(r.first_from), at.max(r.first_from));
        for run in runs {
            if let Some(formed) = run.links.get(&link)
                && formed.0.abs_diff(r.at.0) <= tol.0
            {
                return Some(format!(
                    "link race: it came over {}-{at} at {}, and that link formed at {} in a run",
                    r.first_from,
                    secs(r.at),
                    secs(*formed)
                ));
            }
        }
        at = r.first_from;
    }
    None
}

/// Hops of the deliveries both runs made: the tally, and how many had the same first
/// sender.
fn compare_hops(
    real: &Side,
    twin: &Side,
    rules: &Rules<'_>,
    out: &mut Vec<Disagreement>,
) -> (Tally, usize) {
    let both = real
        .deliveries
        .keys()
        .filter(|k| twin.deliveries.contains_key(k))
        .count();
    let mut hops = Tally {
        real: both,
        twin: both,
        ..Tally::default()
    };
    let mut same_first_from = 0;
    let identities = twin_identities(twin, rules);
    for ((key, receiver), rr) in &real.deliveries {
        let Some(tr) = twin.deliveries.get(&(key.clone(), *receiver)) else {
            continue;
        };
        if rr.first_from == tr.first_from {
            same_first_from += 1;
        }
        if rr.hops == tr.hops {
            hops.agreed += 1;
            continue;
        }
        hops.real_only += 1;
        let verdict = hop_verdict(key, *receiver, real, twin, rules, identities.get(key));
        let show = |h: Option<u32>, f: NodeAddr| {
            format!(
                "{} hops (first from {f})",
                h.map_or("?".into(), |h| h.to_string())
            )
        };
        let (expected, reason) = match verdict {
            Ok(why) => (true, why),
            Err(why) => (false, why),
        };
        out.push(Disagreement {
            kind: Kind::Hops,
            subject: key.origin,
            message: key.body_text(),
            node: Some(*receiver),
            real: show(rr.hops, rr.first_from),
            twin: show(tr.hops, tr.first_from),
            expected,
            reason,
        });
    }
    (hops, same_first_from)
}

/// The identity of each message in the twin (its origination's), to look copies up.
fn twin_identities<'k>(twin: &'k Side, rules: &Rules<'_>) -> BTreeMap<&'k MsgKey, String> {
    let mut by_key: BTreeMap<&MsgKey, String> = BTreeMap::new();
    let mut nth: BTreeMap<(NodeAddr, String), u32> = BTreeMap::new();
    for e in &rules.twin_log.entries {
        if let Change::Originated { message, .. } = &e.change {
            let n = nth.entry((e.node, message.body.clone())).or_insert(0);
            let key = MsgKey {
                origin: e.node,
                body: message.body.clone(),
                nth: *n,
            };
            *n += 1;
            if let Some((k, _)) = twin.originations.get_key_value(&key) {
                by_key.insert(k, message.identity());
            }
        }
    }
    by_key
}

/// Hops differ at `receiver`: expected if every place where the two chains of first
/// senders part is a race in the twin (its copy from the real first sender came within the
/// window of its first copy).
fn hop_verdict(
    key: &MsgKey,
    receiver: NodeAddr,
    real: &Side,
    twin: &Side,
    rules: &Rules<'_>,
    identity: Option<&String>,
) -> Result<String, String> {
    let Some(identity) = identity else {
        return Err("the twin did not originate this message".into());
    };
    // Every node on either chain.
    let mut nodes = BTreeSet::new();
    for side in [real, twin] {
        let mut at = receiver;
        while at != key.origin && nodes.len() <= side.deliveries.len() {
            if !nodes.insert(at) {
                break;
            }
            match side.deliveries.get(&(key.clone(), at)) {
                Some(r) => at = r.first_from,
                None => break,
            }
        }
    }
    let mut races = Vec::new();
    for n in nodes {
        let k = (key.clone(), n);
        let (Some(rr), Some(tr)) = (real.deliveries.get(&k), twin.deliveries.get(&k)) else {
            continue;
        };
        if rr.first_from == tr.first_from {
            continue;
        }
        let how = rules.copy_race(identity, n, tr, rr.first_from, twin, key)?;
        races.push(format!(
            "{n} first heard it from {} for real and from {} in the twin, {how}",
            rr.first_from, tr.first_from
        ));
    }
    if races.is_empty() {
        return Err("the chains of first senders agree, yet the hops differ".into());
    }
    Ok(format!("hop race: {}", races.join("; ")))
}
