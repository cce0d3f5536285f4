//! Gossip: originate the next message every interval, deliver each message once (dedup by
//! its PBKDF2 digest), and forward it to every neighbour but the one it came from.

use std::sync::Arc;

use super::PeerNode;
use crate::addr::NodeAddr;
use crate::digest::Ordinal;
use crate::limits::SEEN_ENTRIES_MAX;
use crate::node::{Event, TimerId};
use crate::time::Time;
use crate::wire::{Gossip, Message, Timestamp, Wire};

/// The digests of messages already delivered, bounded in time and size.
///
/// Entries are the memo's [`Ordinal`]s (one per distinct digest) in two generations. The
/// sweep that runs every `ttl` drops the older generation and starts a new one, so an entry
/// lives from one to two `ttl`s, as with per-entry times swept every `ttl`: an entry made
/// at or before the last sweep's time belongs to the older generation. With timers that fire
/// on time (the simulator) this removes exactly the entries at least `ttl` old at each sweep;
/// a late sweep (a busy real node) keeps the entries made in its lateness one round longer.
#[derive(Debug, Default)]
pub(super) struct SeenSet {
    current: OrdSet,
    older: OrdSet,
    /// Entries made at or before this time go to `older`.
    boundary: Time,
}

impl SeenSet {
    /// Records `ord`, made at `now`; false if it was already there.
    pub(super) fn insert(&mut self, ord: Ordinal, now: Time) -> bool {
        if self.contains(ord) {
            return false;
        }
        if self.len() >= SEEN_ENTRIES_MAX {
            // Full: the oldest go first, a generation at a time.
            if self.older.is_empty() {
                self.current = OrdSet::default();
            } else {
                self.older = OrdSet::default();
            }
        }
        if now <= self.boundary {
            self.older.insert(ord);
        } else {
            self.current.insert(ord);
        }
        true
    }

    /// The sweep at `now`: forget the older generation; what is current becomes older.
    pub(super) fn rotate(&mut self, now: Time) {
        self.older = std::mem::take(&mut self.current);
        self.boundary = now;
    }

    /// The first sweep is armed at `now`: everything so far belongs to the older generation.
    pub(super) fn start(&mut self, now: Time) {
        let current = std::mem::take(&mut self.current);
        for ord in current.iter() {
            self.older.insert(ord);
        }
        self.boundary = now;
    }

    pub(super) fn len(&self) -> usize {
        self.current.len() + self.older.len()
    }

    /// Whether `ord` is in either generation.
    pub(super) fn contains(&self, ord: Ordinal) -> bool {
        self.current.contains(ord) || self.older.contains(ord)
    }

    /// Starts loading the words a look-up of `ord` reads (a cache hint).
    pub(super) fn prefetch(&self, ord: Ordinal) {
        self.current.prefetch(ord);
        self.older.prefetch(ord);
    }
}

/// A set of ordinals: a sorted list while sparse, a bitset once that is no bigger. Flooding
/// delivers nearly every message to every peer, so a peer's ordinals are dense and cost a bit
/// each.
///
/// Both forms are boxed slices sized to what they hold (24 bytes a set, no spare room): a
/// sparse set is short or rarely written, and a bitset grows one word per 64 messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OrdSet {
    /// The members, sorted.
    Sparse(Box<[Ordinal]>),
    /// `[base, len, words...]`: bit `i` of `words[w]` is ordinal `base + 64 w + i`, `base`
    /// a multiple of 64, and `len` the members.
    Dense(Box<[u64]>),
}

impl Default for OrdSet {
    fn default() -> Self {
        OrdSet::Sparse(Box::default())
    }
}

/// Bytes a bitset may take beyond one sparse entry's 8 per member.
const DENSE_SLACK_BYTES: usize = 64;
/// Where a bitset's words start.
const WORDS_AT: usize = 2;

/// A bitset's base, member count and words.
fn dense_parts(d: &[u64]) -> (Ordinal, usize, &[u64]) {
    // `Dense` slices are made with their two header words.
    (d[0], d[1] as usize, &d[WORDS_AT..])
}

impl OrdSet {
    fn len(&self) -> usize {
        match self {
            OrdSet::Sparse(v) => v.len(),
            OrdSet::Dense(d) => dense_parts(d).1,
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn prefetch(&self, ord: Ordinal) {
        match self {
            OrdSet::Sparse(v) => crate::prefetch::prefetch_first(v),
            OrdSet::Dense(d) => {
                let (base, _, words) = dense_parts(d);
                let w = ord.saturating_sub(base) / 64;
                let w = usize::try_from(w)
                    .unwrap_or(usize::MAX)
                    .min(words.len().saturating_sub(1));
                crate::prefetch::prefetch_first(&words[w.min(words.len())..]);
            }
        }
    }

    fn contains(&self, ord: Ordinal) -> bool {
        match self {
            OrdSet::Sparse(v) => v.binary_search(&ord).is_ok(),
            OrdSet::Dense(d) => {
                let (base, _, words) = dense_parts(d);
                let Some(off) = ord.checked_sub(base) else {
                    return false;
                };
                usize::try_from(off / 64)
                    .ok()
                    .and_then(|w| words.get(w))
                    .is_some_and(|w| w & (1 << (off % 64)) != 0)
            }
        }
    }

    /// Members in increasing order.
    fn iter(&self) -> Vec<Ordinal> {
        match self {
            OrdSet::Sparse(v) => v.to_vec(),
            OrdSet::Dense(d) => {
                let (base, _, words) = dense_parts(d);
                let mut out = Vec::new();
                for (i, w) in words.iter().enumerate() {
                    for bit in 0..64 {
                        if w & (1 << bit) != 0 {
                            out.push(base + 64 * i as Ordinal + bit);
                        }
                    }
                }
                out
            }
        }
    }

    /// Adds `ord` (not a member).
    fn insert(&mut self, ord: Ordinal) {
        debug_assert!(!self.contains(ord), "callers insert new members only");
        match self {
            OrdSet::Sparse(v) => {
                let i = v.partition_point(|&x| x < ord);
                let mut grown = Vec::with_capacity(v.len() + 1);
                grown.extend_from_slice(&v[..i]);
                grown.push(ord);
                grown.extend_from_slice(&v[i..]);
                *v = grown.into_boxed_slice();
                self.densify_if_smaller();
            }
            OrdSet::Dense(d) => {
                let (base, len, words) = dense_parts(d);
                // In u128: the ends of the span may pass u64::MAX.
                let lo = base.min(ord & !63);
                let end = u128::from(base) + 64 * words.len() as u128;
                let hi = end.max(u128::from(ord | 63) + 1);
                let span_words = usize::try_from((hi - u128::from(lo)) / 64).unwrap_or(usize::MAX);
                if span_words.saturating_mul(8) > 8 * (len + 1) + DENSE_SLACK_BYTES {
                    let mut v = self.iter();
                    let i = v.partition_point(|&x| x < ord);
                    v.insert(i, ord);
                    *self = OrdSet::Sparse(v.into_boxed_slice());
                    return;
                }
                if lo < base || span_words > words.len() {
                    // Regrow: `front` new words before, the rest after.
                    let front = ((base - lo) / 64) as usize;
                    let mut grown = Vec::with_capacity(WORDS_AT + span_words);
                    grown.extend_from_slice(&[lo, len as u64]);
                    grown.extend(std::iter::repeat_n(0, front));
                    grown.extend_from_slice(words);
                    grown.resize(WORDS_AT + span_words, 0);
                    *d = grown.into_boxed_slice();
                }
                let off = ord - d[0];
                d[WORDS_AT + (off / 64) as usize] |= 1 << (off % 64);
                d[1] += 1;
            }
        }
    }

    /// A sparse set becomes a bitset when that takes no more room.
    fn densify_if_smaller(&mut self) {
        let OrdSet::Sparse(v) = self else { return };
        let (Some(&first), Some(&last)) = (v.first(), v.last()) else {
            return;
        };
        let base = first & !63;
        let span_words = usize::try_from((last - base) / 64 + 1).unwrap_or(usize::MAX);
        if v.len() < 4 || span_words.saturating_mul(8) > 8 * v.len() {
            return;
        }
        let mut d = vec![0u64; WORDS_AT + span_words];
        d[0] = base;
        d[1] = v.len() as u64;
        for &o in v.iter() {
            let off = o - base;
            d[WORDS_AT + (off / 64) as usize] |= 1 << (off % 64);
        }
        *self = OrdSet::Dense(d.into_boxed_slice());
    }
}

/// The message a peer originates at `at` with `body` (line breaks become spaces).
pub fn originated_message(
    origin: NodeAddr,
    at: Time,
    wall_offset_micros: u64,
    body: &str,
) -> Gossip {
    Gossip::new(
        Timestamp::at(at, wall_offset_micros),
        origin,
        body.replace(['\n', '\r'], " "),
    )
}

impl PeerNode {
    /// The body of the next message: `#N`, or on the reference wire the original's
    /// `message N` (the same in every peer, which its identity rule makes one message).
    fn next_body(&self) -> String {
        match self.ctx.cfg.wire {
            Wire::Line => format!("#{}", self.originated + 1),
            Wire::Reference => format!("message {}", self.originated + 1),
        }
    }

    pub(super) fn originate_next(&mut self) {
        let body = self.next_body();
        self.originate(&body);
        if self.originated < self.ctx.cfg.gossip_count {
            self.arm_gossip(self.now + self.ctx.cfg.gossip_interval);
        }
    }

    /// Arms the gossip timer for `at` and has the memo start on the message it will make then.
    pub(super) fn arm_gossip(&mut self, at: Time) {
        self.out.arm(TimerId::Gossip, at);
        let body = self.next_body();
        let next = originated_message(self.addr, at, self.ctx.cfg.wall_offset_micros, &body);
        self.ctx.memo.prefetch(next);
    }

    pub(super) fn originate(&mut self, body: &str) {
        self.originated += 1;
        let message = Arc::new(originated_message(
            self.addr,
            self.now,
            self.ctx.cfg.wall_offset_micros,
            body,
        ));
        let ord = self.ctx.memo.ordinal(&message);
        self.seen.insert(ord, self.now);
        let sent_to = self.flood(&message, None);
        let seq = self.originated;
        self.out.event(Event::GossipOriginated {
            message,
            seq,
            sent_to,
        });
    }

    pub(super) fn gossip_in(&mut self, from: NodeAddr, message: Arc<Gossip>) {
        let ord = self.ctx.memo.ordinal(&message);
        if !self.seen.insert(ord, self.now) {
            self.out.event(Event::DuplicateDropped { message, from });
            return;
        }
        let forwarded_to = match self.ctx.cfg.wire {
            Wire::Line => self.flood(&message, Some(from)),
            Wire::Reference => {
                // The original forwards with its own time and address.
                let ts = Timestamp::at(self.now, self.ctx.cfg.wall_offset_micros);
                let next = Arc::new(crate::refwire::restamped(&message, ts, self.addr));
                self.flood(&next, Some(from))
            }
        };
        self.out.event(Event::GossipDelivered {
            message,
            first_from: from,
            forwarded_to,
        });
    }

    /// Sends `message` to every connected neighbour except `except`; returns how many.
    fn flood(&mut self, message: &Arc<Gossip>, except: Option<NodeAddr>) -> usize {
        let mut sent = 0;
        for (peer, n) in self.neighbours.iter() {
            if Some(*peer) == except {
                continue;
            }
            if let Some(conn) = n.conn() {
                self.out.send(conn, Message::Gossip(Arc::clone(message)));
                sent += 1;
            }
        }
        sent
    }

    pub(super) fn sweep_seen(&mut self) {
        self.seen.rotate(self.now);
        let next = self.now + self.ctx.cfg.seen_ttl;
        self.out.arm(TimerId::SeenSweep, next);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the ordinals (dense runs, far outliers, any order), an `OrdSet` holds
        /// exactly what a `BTreeSet` holds.
        #[test]
        fn an_ordinal_set_is_a_set(ords in prop::collection::vec(
            prop_oneof![0u64..200, 0u64..5, 1_000_000u64..1_000_010, any::<u64>()], 0..400)) {
            let mut s = OrdSet::default();
            let mut b = BTreeSet::new();
            for o in ords {
                let new = !s.contains(o);
                prop_assert_eq!(new, !b.contains(&o));
                if new {
                    s.insert(o);
                    b.insert(o);
                }
                prop_assert_eq!(s.len(), b.len());
            }
            prop_assert_eq!(s.iter(), b.iter().copied().collect::<Vec<_>>());
            if let OrdSet::Dense(d) = &s {
                let (_, len, words) = dense_parts(d);
                prop_assert!(words.len() * 8 <= 8 * len + 2 * DENSE_SLACK_BYTES);
            }
        }
    }

    #[test]
    fn a_flood_of_consecutive_messages_costs_a_bit_each() {
        let mut s = OrdSet::default();
        for o in (1000..1100).rev() {
            s.insert(o);
        }
        let OrdSet::Dense(d) = &s else {
            panic!("100 consecutive ordinals stay sparse: {s:?}")
        };
        let (_, len, words) = dense_parts(d);
        assert_eq!((len, words.len()), (100, 3));
        assert_eq!(std::mem::size_of::<OrdSet>(), 24);
    }

    #[test]
    fn seen_entries_expire_at_the_first_sweep_at_least_ttl_after_them() {
        let ttl = 600_000_000u64;
        let mut seen = SeenSet::default();
        assert!(seen.insert(1, Time(5)), "before bootstrap");
        seen.start(Time(10));
        assert!(seen.insert(2, Time(10)), "at the arming time, after arming");
        assert!(seen.insert(3, Time(11)));
        assert!(!seen.insert(1, Time(12)));
        seen.rotate(Time(10 + ttl));
        // 1 and 2 were made at or before 10 = this sweep's time minus ttl: gone.
        assert!(seen.insert(1, Time(10 + ttl)));
        assert!(seen.insert(2, Time(10 + ttl + 1)));
        assert!(!seen.insert(3, Time(10 + ttl + 2)), "3 is younger than ttl");
        seen.rotate(Time(10 + 2 * ttl));
        assert!(seen.insert(3, Time(10 + 2 * ttl)));
        assert!(
            !seen.insert(2, Time(10 + 2 * ttl)),
            "2 came back after the last sweep"
        );
        assert_eq!(seen.len(), 2);
    }
}
