//! The network model: TCP-like links (reliable, ordered per direction) with a latency drawn
//! from the run's RNG, and partitions that hold traffic until they heal.

use core::fmt;
use core::str::FromStr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::faults::Fault;
use crate::time::{Duration, Time};

/// One-way latency of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Always this.
    Fixed(Duration),
    /// Uniform in `[lo, hi]`, drawn per message.
    Uniform(Duration, Duration),
}

impl Latency {
    /// A draw.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(lo, hi) => Duration(rng.random_range(lo.0..=hi.0)),
        }
    }

    /// The largest latency it can draw.
    pub fn max(&self) -> Duration {
        match *self {
            Latency::Fixed(d) | Latency::Uniform(_, d) => d,
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(Duration::from_millis(20))
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Fixed(d) => write!(f, "{d}"),
            Latency::Uniform(lo, hi) => write!(f, "{lo}..{hi}"),
        }
    }
}

impl FromStr for Latency {
    type Err = String;
    /// `20ms` (fixed) or `10ms..50ms` (uniform).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = |t: &str| t.parse::<Duration>().map_err(|e| e.to_string());
        match s.split_once("..") {
            None => Ok(Latency::Fixed(d(s)?)),
            Some((lo, hi)) => {
                let (lo, hi) = (d(lo)?, d(hi)?);
                if hi < lo {
                    return Err(format!("bad latency {s:?}: the range runs backwards"));
                }
                Ok(Latency::Uniform(lo, hi))
            }
        }
    }
}

/// One end of a link (8 bytes).
#[derive(Clone, Copy, Debug)]
pub(super) struct End {
    pub(super) node: u32,
    /// The node's incarnation when the link was made; a restarted node has no old links.
    pub(super) incarnation: u32,
}

/// A TCP connection between two nodes; `ends[0]` dialed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) ends: [End; 2],
    /// Four flags and a count in one word (24 bytes a link, not 28): which ends still have
    /// the connection open (bits 0 and 1, one per side); [`REMOVED`], the link is forgotten
    /// (both ends closed, or the dial failed), nothing on it happens any more and its slot is
    /// reused once no queued entry refers to it; [`ESTABLISHED`], the dialer was told it
    /// connected; and above them, the queued entries that refer to the link.
    state: u32,
    /// The link's number in the order links were made, from 1 (the `ConnId`'s high half).
    serial: u32,
}

const OPEN_BOTH: u32 = 0b11;
const REMOVED: u32 = 0b100;
const ESTABLISHED: u32 = 0b1000;
const PENDING_ONE: u32 = 0b1_0000;
/// A count that reached this stays (2^29 entries on one link would take 8 GiB of queue): its
/// slot is then never reused, which wastes 24 bytes and is never wrong.
const PENDING_STUCK: u32 = u32::MAX / PENDING_ONE;

impl Link {
    fn removed(&self) -> bool {
        self.state & REMOVED != 0
    }

    fn pending(&self) -> u32 {
        self.state / PENDING_ONE
    }

    pub(super) fn side_of(&self, node: u32, incarnation: u32) -> Option<usize> {
        (0..2).find(|&s| self.ends[s].node == node && self.ends[s].incarnation == incarnation)
    }

    pub(super) fn is_open(&self, side: usize) -> bool {
        self.state & (1 << side) != 0
    }

    pub(super) fn close(&mut self, side: usize) {
        self.state &= !(1 << side);
    }

    pub(super) fn serial(&self) -> u32 {
        self.serial
    }

    /// The dialer was told it connected: a close it hears now is a closed connection, not a
    /// failed dial.
    pub(super) fn established(&self) -> bool {
        self.state & ESTABLISHED != 0
    }

    pub(super) fn establish(&mut self) {
        self.state |= ESTABLISHED;
    }
}

/// Links (a slab of slots named by `ConnId`s that also carry the link's serial) and
/// partitions.
#[derive(Debug, Default)]
pub(super) struct Network {
    links: Vec<Link>,
    /// Per slot, the latest delivery time scheduled towards each end, which keeps each
    /// direction in order. Kept only when latencies differ or partitions hold traffic: with
    /// one fixed latency and no partition, a message sent later always arrives later.
    arrivals_until: Option<Vec<[Time; 2]>>,
    free: Vec<u32>,
    next_serial: u32,
    partitions: Vec<(core::ops::Range<usize>, core::ops::Range<usize>, Time, Time)>,
}

/// A link's `ConnId`: its serial in the high half, so that connection ids sort in the order
/// connections were made (the order nodes' tables iterate), and its slot in the low half.
pub(super) fn conn_id(serial: u32, slot: u32) -> u64 {
    (u64::from(serial) << 32) | u64::from(slot)
}

/// The slot a connection id names (its low half).
pub(super) fn conn_slot(conn: u64) -> u32 {
    conn as u32
}

impl Network {
    pub(super) fn new(faults: &[Fault], seeds: usize, latency: Latency) -> Self {
        let partitions: Vec<_> = faults
            .iter()
            .filter_map(|f| match f {
                // Stored as node indices (seeds come first).
                Fault::Partition { a, b, start, end } => Some((
                    a.start + seeds..a.end + seeds,
                    b.start + seeds..b.end + seeds,
                    *start,
                    *end,
                )),
                _ => None,
            })
            .collect();
        let ordered = matches!(latency, Latency::Fixed(_)) && partitions.is_empty();
        Network {
            links: Vec::new(),
            arrivals_until: (!ordered).then(Vec::new),
            free: Vec::new(),
            next_serial: 1,
            partitions,
        }
    }

    /// Links in the slab (live, and forgotten ones not yet reused).
    pub(super) fn slots(&self) -> usize {
        self.links.len()
    }

    /// A new link from `from` to `to`; its slot.
    pub(super) fn new_link(&mut self, from: (u32, u32), to: (u32, u32), now: Time) -> u32 {
        let serial = self.next_serial;
        debug_assert!(serial < u32::MAX, "4 billion connections in one run");
        self.next_serial = serial.wrapping_add(1);
        let end = |(node, incarnation)| End { node, incarnation };
        let link = Link {
            ends: [end(from), end(to)],
            state: OPEN_BOTH,
            serial,
        };
        match self.free.pop() {
            Some(slot) => {
                self.links[slot as usize] = link;
                if let Some(a) = self.arrivals_until.as_mut() {
                    a[slot as usize] = [now; 2];
                }
                slot
            }
            None => {
                crate::vecmap::reserve_for_one(&mut self.links);
                self.links.push(link);
                if let Some(a) = self.arrivals_until.as_mut() {
                    crate::vecmap::reserve_for_one(a);
                    a.push([now; 2]);
                }
                // Slots are reused, so there are never more than there are open links.
                u32::try_from(self.links.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    /// The live link named by `conn`.
    pub(super) fn by_conn(&self, conn: u64) -> Option<(u32, &Link)> {
        let slot = conn_slot(conn);
        let l = self.links.get(slot as usize)?;
        (!l.removed() && u64::from(l.serial) == conn >> 32).then_some((slot, l))
    }

    /// The link in `slot`, forgotten or not (a queued entry keeps its slot from reuse).
    pub(super) fn get_raw(&self, slot: u32) -> &Link {
        &self.links[slot as usize]
    }

    /// Starts loading the link in `slot` (a cache hint).
    pub(super) fn prefetch(&self, slot: u32) {
        if let Some(l) = self.links.get(slot as usize) {
            crate::prefetch::prefetch(l);
        }
    }

    /// The link in `slot`, unless it was forgotten.
    pub(super) fn get(&self, slot: u32) -> Option<&Link> {
        self.links.get(slot as usize).filter(|l| !l.removed())
    }

    /// The link in `slot`, to change, unless it was forgotten.
    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut Link> {
        self.links.get_mut(slot as usize).filter(|l| !l.removed())
    }

    /// A queued entry now refers to `slot`.
    pub(super) fn hold(&mut self, slot: u32) {
        if let Some(l) = self.links.get_mut(slot as usize)
            && l.pending() < PENDING_STUCK
        {
            l.state += PENDING_ONE;
        }
    }

    /// A queued entry that referred to `slot` was taken off the queue.
    pub(super) fn release(&mut self, slot: u32) {
        if let Some(l) = self.links.get_mut(slot as usize)
            && l.pending() < PENDING_STUCK
        {
            l.state -= PENDING_ONE;
            if l.removed() && l.pending() == 0 {
                self.free.push(slot);
            }
        }
    }

    /// Forget the link in `slot`.
    pub(super) fn remove(&mut self, slot: u32) {
        if let Some(l) = self.links.get_mut(slot as usize)
            && !l.removed()
        {
            l.state = (l.state & !OPEN_BOTH) | REMOVED;
            if l.pending() == 0 {
                self.free.push(slot);
            }
        }
    }

    /// Live links with an open end held by `node` in `incarnation`, in the order they were
    /// made: (slot, side).
    pub(super) fn open_ends_of(&self, node: u32, incarnation: u32) -> Vec<(u32, usize)> {
        let mut mine: Vec<(u32, u32, usize)> = self
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.removed())
            .filter_map(|(slot, l)| {
                let side = l.side_of(node, incarnation)?;
                // Slots are below 2^32 (see new_link).
                l.is_open(side).then_some((l.serial, slot as u32, side))
            })
            .collect();
        mine.sort_unstable();
        mine.into_iter()
            .map(|(_, slot, side)| (slot, side))
            .collect()
    }

    /// If `a` and `b` are partitioned at `now`, when the partition heals.
    pub(super) fn partitioned_until(&self, a: usize, b: usize, now: Time) -> Option<Time> {
        self.partitions
            .iter()
            .filter(|(ga, gb, start, end)| {
                *start <= now
                    && now < *end
                    && (ga.contains(&a) && gb.contains(&b) || ga.contains(&b) && gb.contains(&a))
            })
            .map(|p| p.3)
            .max()
    }

    /// When a message leaving `slot` towards side `to` at `now` with `latency` arrives,
    /// after everything sent before it that way. Records it as the direction's latest.
    pub(super) fn arrival(&mut self, slot: u32, to: usize, now: Time, latency: Duration) -> Time {
        let held_until = if self.partitions.is_empty() {
            now
        } else {
            let l = &self.links[slot as usize];
            let (a, b) = (l.ends[1 - to].node as usize, l.ends[to].node as usize);
            self.partitioned_until(a, b, now).unwrap_or(now)
        };
        let Some(until) = self.arrivals_until.as_mut() else {
            return held_until + latency;
        };
        let until = &mut until[slot as usize][to];
        let at = (held_until + latency).max(*until);
        *until = at;
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_parses_fixed_and_ranges() {
        assert_eq!(
            "20ms".parse(),
            Ok(Latency::Fixed(Duration::from_millis(20)))
        );
        assert_eq!(
            "10ms..50ms".parse(),
            Ok(Latency::Uniform(
                Duration::from_millis(10),
                Duration::from_millis(50)
            ))
        );
        assert!("50ms..10ms".parse::<Latency>().is_err());
        assert_eq!(
            Latency::Uniform(Duration(1), Duration(2))
                .to_string()
                .parse(),
            Ok(Latency::Uniform(Duration(1), Duration(2)))
        );
    }

    #[test]
    fn a_direction_never_reorders_even_with_jitter() {
        let jitter = Latency::Uniform(Duration(5), Duration(50));
        let mut net = Network::new(&[], 0, jitter);
        let l = net.new_link((0, 0), (1, 0), Time::ZERO);
        let slow = net.arrival(l, 1, Time(0), Duration(50));
        let fast = net.arrival(l, 1, Time(1), Duration(5));
        assert_eq!((slow, fast), (Time(50), Time(50)));
    }
}
