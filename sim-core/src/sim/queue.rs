//! The event queue: entries ordered by `(time, sequence)`, where the sequence is the order
//! of pushes, so equal times keep insertion order.
//!
//! A discrete-event network pushes runs of entries for one time: a flood sends to every
//! neighbour at `now + latency`, and every peer reached at that instant does the same. So
//! consecutive pushes for one time are kept together as a run, in a plain vector, and only
//! the run's head goes into a binary heap. Runs with the same time never interleave (a run is
//! a contiguous stretch of sequence numbers), so a run is drained whole, in order, and the
//! heap is touched once per run instead of twice per entry. With a latency drawn per message
//! every push starts a run of one and this is a binary heap of 32-byte entries.

use core::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::{Duration, Time};
use crate::vecmap::reserve_for_one;

/// What an entry asks the world to do (see `World::act`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(super) enum Kind {
    Start,
    Timer,
    /// A gossip message: `b` is its ordinal in the world's gossip table.
    DeliverGossip,
    /// A liveness request from the link's other end: `b` is its timestamp in µs.
    DeliverRequest,
    /// A liveness reply from the link's other end to this one: `b` is the timestamp in µs.
    DeliverReply,
    /// Any other message: `b` indexes the payload slab.
    DeliverOther,
    CloseArrives,
    SynArrives,
    SynAckArrives,
    /// `b` indexes the payload slab (incarnation and address).
    ConnectFails,
    Fault,
    PartitionHeals,
    /// `b` indexes the payload slab (the body).
    Originate,
    /// A `DeliverGossip` whose processing time ended (`--processing`): handled now.
    GossipProcessed,
    /// A `DeliverOther` carrying gossip whose processing time ended.
    OtherProcessed,
    /// A gossip timer (an origination) whose processing time ended.
    TimerProcessed,
    /// An `Originate` whose processing time ended.
    OriginateProcessed,
    /// Event loop `a` begins a turn (`--processing digest:D,loops:N`).
    TurnStart,
    /// A run of entries: `a` indexes the queue's run slab. Only ever inside the queue.
    Run,
}

impl Kind {
    /// A message arriving at one end of a link (`a` the link, `b >> 32` the receiver).
    pub(super) fn is_delivery(self) -> bool {
        matches!(
            self,
            Kind::DeliverGossip | Kind::DeliverRequest | Kind::DeliverReply | Kind::DeliverOther
        )
    }
}

/// One queued action in 16 bytes; bigger payloads live in the world's slabs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Entry {
    pub(super) kind: Kind,
    /// A link's side, for deliveries and closes.
    pub(super) side: u8,
    /// A timer's index in `TimerId::ALL`.
    pub(super) timer: u8,
    /// A node or link slot, a fault index.
    pub(super) a: u32,
    /// A payload: ordinal, timestamp, slab index, incarnation.
    pub(super) b: u64,
}

impl Entry {
    pub(super) const fn new(kind: Kind, a: u32, b: u64) -> Self {
        Entry {
            kind,
            side: 0,
            timer: 0,
            a,
            b,
        }
    }
}

/// A heap element: the head of a run (or a run of one), 32 bytes.
#[derive(Clone, Copy, Debug)]
struct Head {
    at: Time,
    seq: u64,
    entry: Entry,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed, so that `BinaryHeap` pops the earliest `(time, sequence)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Spare run vectors kept for reuse, and the largest capacity worth keeping (a flood's run
/// can hold a million entries; it is allocated for the flood and given back after).
const SPARE_RUNS_MAX: usize = 16;
const SPARE_RUN_CAPACITY_MAX: usize = 1 << 12;

/// `remaining` entries made by rule, not stored: the next at `at` with sequence `seq`, each
/// one `step` and one sequence number after the one before, for node `entry.a` plus one.
#[derive(Clone, Copy, Debug)]
struct Series {
    at: Time,
    seq: u64,
    step: Duration,
    remaining: u32,
    entry: Entry,
}

/// The queue.
#[derive(Debug, Default)]
pub(super) struct Queue {
    heap: BinaryHeap<Head>,
    /// The run being pushed to: not in the heap until a push for another time closes it.
    open: Vec<Entry>,
    open_at: Time,
    open_seq: u64,
    /// The run being drained, and how far.
    cur: Vec<Entry>,
    cur_at: Time,
    /// The sequence number of the current run's first entry.
    cur_seq: u64,
    cur_pos: usize,
    /// Entries made by rule rather than stored (see [`Queue::push_series`]).
    series: Option<Series>,
    /// Closed runs of two or more, referred to from the heap.
    runs: Vec<Vec<Entry>>,
    free_runs: Vec<u32>,
    spare: Vec<Vec<Entry>>,
    seq: u64,
    len: usize,
}

impl Queue {
    /// Entries waiting.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queue `e` for `at`, after everything queued before it for `at`.
    pub(super) fn push(&mut self, at: Time, e: Entry) {
        debug_assert!(e.kind != Kind::Run, "runs are the queue's own");
        if self.open.is_empty() || self.open_at != at {
            self.close_open();
            self.open_at = at;
            self.open_seq = self.seq;
        }
        reserve_for_one(&mut self.open);
        self.open.push(e);
        self.seq += 1;
        self.len += 1;
    }

    /// Queues `count` copies of `first`, the k-th (from 0) for `at + k * step` and for
    /// node `first.a + k`, as if pushed one by one now, but without storing them: a
    /// simulation's joins (a million start entries would take 32 MB of heap). One series at
    /// a time.
    pub(super) fn push_series(&mut self, at: Time, step: Duration, count: u32, first: Entry) {
        debug_assert!(self.series.is_none(), "one series at a time");
        if count == 0 {
            return;
        }
        // Later pushes for the same times must follow the series: they start a new run.
        self.close_open();
        self.series = Some(Series {
            at,
            seq: self.seq,
            step,
            remaining: count,
            entry: first,
        });
        self.seq += u64::from(count);
        self.len += count as usize;
    }

    /// Whether the series' next entry comes before everything stored.
    fn series_first(&self) -> bool {
        let Some(s) = &self.series else { return false };
        let key = (s.at, s.seq);
        let cur = (self.cur_pos < self.cur.len())
            .then(|| (self.cur_at, self.cur_seq + self.cur_pos as u64));
        let open = (!self.open.is_empty()).then_some((self.open_at, self.open_seq));
        let heap = self.heap.peek().map(|h| (h.at, h.seq));
        [cur, open, heap].into_iter().flatten().all(|k| key < k)
    }

    /// Takes the series' next entry.
    fn pop_series(&mut self) -> Option<(Time, Entry)> {
        let s = self.series.as_mut()?;
        let out = (s.at, s.entry);
        s.remaining -= 1;
        if s.remaining == 0 {
            self.series = None;
        } else {
            s.at = s.at + s.step;
            s.seq += 1;
            s.entry.a += 1;
        }
        self.len -= 1;
        Some(out)
    }

    /// Moves the open run into the heap.
    fn close_open(&mut self) {
        let entry = match self.open.len() {
            0 => return,
            1 => {
                let e = self.open[0];
                self.open.clear();
                e
            }
            _ => {
                let fresh = self.spare.pop().unwrap_or_default();
                let run = std::mem::replace(&mut self.open, fresh);
                let idx = match self.free_runs.pop() {
                    Some(i) => {
                        self.runs[i as usize] = run;
                        i
                    }
                    None => {
                        self.runs.push(run);
                        // A run holds at least two entries, so there are fewer runs than
                        // entries, and entries are counted in memory well below 2^32 runs.
                        u32::try_from(self.runs.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                Entry::new(Kind::Run, idx, 0)
            }
        };
        if self.heap.len() == self.heap.capacity() {
            // As `reserve_for_one`: a heap of a million timers grows by an eighth.
            let len = self.heap.len();
            self.heap
                .reserve_exact(if len < 4096 { len.max(4) } else { len / 8 });
        }
        self.heap.push(Head {
            at: self.open_at,
            seq: self.open_seq,
            entry,
        });
    }

    /// The time of the next entry.
    pub(super) fn peek_time(&self) -> Option<Time> {
        if self.series_first() {
            return self.series.map(|s| s.at);
        }
        if self.cur_pos < self.cur.len() {
            return Some(self.cur_at);
        }
        let heap = self.heap.peek().map(|h| h.at);
        let open = (!self.open.is_empty()).then_some(self.open_at);
        match (heap, open) {
            (Some(h), Some(o)) => Some(h.min(o)),
            (h, o) => h.or(o),
        }
    }

    /// The entry `k` places after the next one, when it is in the run being drained (a
    /// look-ahead for cache hints; `None` says nothing about what follows).
    pub(super) fn ahead(&self, k: usize) -> Option<&Entry> {
        self.cur.get(self.cur_pos + k)
    }

    /// The next entry and its time.
    pub(super) fn pop(&mut self) -> Option<(Time, Entry)> {
        if self.series_first() {
            return self.pop_series();
        }
        if let Some(&e) = self.cur.get(self.cur_pos) {
            self.cur_pos += 1;
            self.len -= 1;
            return Some((self.cur_at, e));
        }
        // The open run holds the latest sequence numbers: on a tie of times the heap goes
        // first.
        let open_first =
            !self.open.is_empty() && self.heap.peek().is_none_or(|h| self.open_at < h.at);
        if open_first {
            let (at, seq) = (self.open_at, self.open_seq);
            self.retire_cur();
            let fresh = self.spare.pop().unwrap_or_default();
            let run = std::mem::replace(&mut self.open, fresh);
            return Some(self.start_run(at, seq, run));
        }
        let head = self.heap.pop()?;
        // A heap that held a crowd (a million joins' timers) gives the room back.
        let cap = self.heap.capacity();
        if cap > 1 << 16 && self.heap.len() < cap / 4 {
            self.heap.shrink_to(cap / 2);
        }
        if head.entry.kind != Kind::Run {
            self.len -= 1;
            return Some((head.at, head.entry));
        }
        let idx = head.entry.a as usize;
        let run = std::mem::take(&mut self.runs[idx]);
        self.free_runs.push(head.entry.a);
        self.retire_cur();
        Some(self.start_run(head.at, head.seq, run))
    }

    /// Makes `run` current and takes its first entry.
    fn start_run(&mut self, at: Time, seq: u64, run: Vec<Entry>) -> (Time, Entry) {
        debug_assert!(!run.is_empty(), "runs are never empty");
        let first = run[0];
        self.cur = run;
        self.cur_at = at;
        self.cur_seq = seq;
        self.cur_pos = 1;
        self.len -= 1;
        (at, first)
    }

    /// Keeps the drained run's vector for reuse, if it is worth keeping.
    fn retire_cur(&mut self) {
        let mut old = std::mem::take(&mut self.cur);
        self.cur_pos = 0;
        old.clear();
        let keep = old.capacity() > 0 && old.capacity() <= SPARE_RUN_CAPACITY_MAX;
        if keep && self.spare.len() < SPARE_RUNS_MAX {
            self.spare.push(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    /// The reference: a binary heap of (time, sequence).
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Plain(core::cmp::Reverse<(u64, u64)>, u64);

    /// A queue beside its reference, pushed to and popped from alike.
    struct Pair<F: Fn(Entry) -> u64> {
        q: Queue,
        plain: BinaryHeap<Plain>,
        seq: u64,
        /// Which push an entry is: its sequence number.
        id: F,
    }

    impl<F: Fn(Entry) -> u64> Pair<F> {
        fn push(&mut self, at: u64) {
            self.q.push(Time(at), Entry::new(Kind::Start, 0, self.seq));
            self.plain
                .push(Plain(core::cmp::Reverse((at, self.seq)), self.seq));
            self.seq += 1;
        }

        /// Pushes (op 0 or 1: at `now + dt * op`, never in the past) and pops (op 2), each
        /// compared with the reference, then drains both.
        fn run(&mut self, ops: Vec<(u8, u64)>) -> Result<(), TestCaseError> {
            let mut now = 0u64;
            for (op, dt) in ops {
                if op < 2 {
                    self.push(now + dt * u64::from(op));
                } else {
                    let want = self.plain.pop().map(|p| ((p.0).0.0, p.1));
                    let got = self.q.pop().map(|(at, e)| (at.0, (self.id)(e)));
                    prop_assert_eq!(got, want);
                    if let Some((at, _)) = got {
                        now = at;
                    }
                }
                prop_assert_eq!(self.q.len(), self.plain.len());
                let want = self.plain.peek().map(|p| (p.0).0.0);
                prop_assert_eq!(self.q.peek_time().map(|t| t.0), want);
            }
            while let Some(p) = self.plain.pop() {
                let got = self.q.pop().map(|(at, e)| (at.0, (self.id)(e)));
                prop_assert_eq!(got, Some(((p.0).0.0, p.1)));
            }
            prop_assert!(self.q.pop().is_none());
            Ok(())
        }
    }

    proptest! {
        /// Whatever the pushes and pops (runs, ties, pushes for the time being drained), the
        /// queue yields what a heap ordered by (time, sequence) yields.
        #[test]
        fn the_queue_pops_in_time_then_push_order(
            ops in prop::collection::vec((0u8..3, 0u64..6), 0..500)
        ) {
            let mut pair = Pair { q: Queue::default(), plain: BinaryHeap::new(), seq: 0, id: |e: Entry| e.b };
            pair.run(ops)?;
        }

        /// A series (the simulator's joins) pops as if its entries had been pushed one by
        /// one where it was pushed, among entries pushed before and after it, also for equal
        /// times and a step of zero.
        #[test]
        fn a_series_pops_as_its_entries_pushed_one_by_one(
            before in prop::collection::vec(0u64..8, 0..6),
            (at0, step, count) in (0u64..5, 0u64..4, 0u32..20),
            ops in prop::collection::vec((0u8..3, 0u64..6), 0..300)
        ) {
            const MARK: u64 = u64::MAX;
            let base = before.len() as u64;
            let id = move |e: Entry| if e.b == MARK { base + u64::from(e.a - 100) } else { e.b };
            let mut pair = Pair { q: Queue::default(), plain: BinaryHeap::new(), seq: 0, id };
            for at in before {
                pair.push(at);
            }
            pair.q.push_series(Time(at0), Duration(step), count, Entry::new(Kind::Start, 100, MARK));
            for k in 0..u64::from(count) {
                let seq = pair.seq;
                pair.plain.push(Plain(core::cmp::Reverse((at0 + k * step, seq)), seq));
                pair.seq += 1;
            }
            pair.run(ops)?;
        }
    }

    #[test]
    fn entries_are_small() {
        assert_eq!(core::mem::size_of::<Entry>(), 16);
        assert_eq!(core::mem::size_of::<Head>(), 32);
    }
}
