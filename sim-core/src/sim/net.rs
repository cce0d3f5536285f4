//! The network model: TCP-like links (reliable, ordered per direction) with a latency drawn
//! from the run's RNG, and partitions that hold traffic until they heal.

use core::fmt;
use core::str::FromStr;
use std::collections::BTreeMap;

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

/// One end of a link.
#[derive(Clone, Copy, Debug)]
pub(super) struct End {
    pub(super) node: usize,
    /// The node's incarnation when the link was made; a restarted node has no old links.
    pub(super) incarnation: u32,
    /// This end still has the connection open.
    pub(super) open: bool,
    /// Latest delivery time scheduled towards this end (keeps each direction in order).
    pub(super) arrivals_until: Time,
}

/// A TCP connection between two nodes; `ends[0]` dialed.
#[derive(Clone, Debug)]
pub(super) struct Link {
    pub(super) ends: [End; 2],
}

impl Link {
    pub(super) fn side_of(&self, node: usize, incarnation: u32) -> Option<usize> {
        (0..2).find(|&s| self.ends[s].node == node && self.ends[s].incarnation == incarnation)
    }
}

/// Links and partitions.
#[derive(Debug, Default)]
pub(super) struct Network {
    pub(super) links: BTreeMap<u64, Link>,
    next_link: u64,
    partitions: Vec<(core::ops::Range<usize>, core::ops::Range<usize>, Time, Time)>,
}

impl Network {
    pub(super) fn new(faults: &[Fault], seeds: usize) -> Self {
        let partitions = faults
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
        Network {
            links: BTreeMap::new(),
            next_link: 1,
            partitions,
        }
    }

    pub(super) fn new_link(&mut self, from: (usize, u32), to: (usize, u32), now: Time) -> u64 {
        let id = self.next_link;
        self.next_link += 1;
        let end = |(node, incarnation)| End {
            node,
            incarnation,
            open: true,
            arrivals_until: now,
        };
        self.links.insert(
            id,
            Link {
                ends: [end(from), end(to)],
            },
        );
        id
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

    /// When a message leaving `link` towards side `to` at `now` with `latency` arrives,
    /// after everything sent before it that way. Records it as the direction's latest.
    pub(super) fn arrival(
        &mut self,
        link: u64,
        to: usize,
        now: Time,
        latency: Duration,
    ) -> Option<Time> {
        let (a, b) = {
            let l = self.links.get(&link)?;
            (l.ends[1 - to].node, l.ends[to].node)
        };
        let held_until = self.partitioned_until(a, b, now).unwrap_or(now);
        let l = self.links.get_mut(&link)?;
        let at = (held_until + latency).max(l.ends[to].arrivals_until);
        l.ends[to].arrivals_until = at;
        Some(at)
    }

    /// Forget links whose both ends closed.
    pub(super) fn gc(&mut self, link: u64) {
        if self
            .links
            .get(&link)
            .is_some_and(|l| !l.ends[0].open && !l.ends[1].open)
        {
            self.links.remove(&link);
        }
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
        let mut net = Network::default();
        let l = net.new_link((0, 0), (1, 0), Time::ZERO);
        let slow = net.arrival(l, 1, Time(0), Duration(50)).unwrap();
        let fast = net.arrival(l, 1, Time(1), Duration(5)).unwrap();
        assert_eq!((slow, fast), (Time(50), Time(50)));
    }
}
