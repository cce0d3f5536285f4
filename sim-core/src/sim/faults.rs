//! Faults as data: what the world does to nodes and links, and when. Parsed from the
//! command line's `PEER@TIME` and `A-B|C-D@START..END` forms.

use core::fmt;
use core::ops::Range;

use super::layout;
use crate::addr::NodeAddr;
use crate::time::{Duration, Time};

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The peer stops; its neighbours see its connections close.
    Crash {
        /// Peer index (0-based).
        peer: usize,
        /// When.
        at: Time,
    },
    /// The peer stops silently: its connections stay open but nothing is answered, so only
    /// liveness can find it.
    SilentFail {
        /// Peer index.
        peer: usize,
        /// When.
        at: Time,
    },
    /// The peer comes back with fresh state (registers again). Its old connections are reset.
    Restart {
        /// Peer index.
        peer: usize,
        /// When.
        at: Time,
    },
    /// Messages between the two groups of peers are held (TCP retransmits) until `end`, and
    /// new connections between them fail.
    Partition {
        /// First group of peer indices.
        a: Range<usize>,
        /// Second group.
        b: Range<usize>,
        /// When it starts.
        start: Time,
        /// When it heals.
        end: Time,
    },
    /// Every connection of the peer is reset (a middlebox or NAT forgot them); the peer
    /// keeps running, and both ends of each connection see it close.
    Reset {
        /// Peer index.
        peer: usize,
        /// When.
        at: Time,
    },
    /// A seed stops; the peers connected to it see the connections close.
    SeedCrash {
        /// Seed index (0-based).
        seed: usize,
        /// When.
        at: Time,
    },
}

impl Fault {
    /// When it starts.
    pub fn at(&self) -> Time {
        match self {
            Fault::Crash { at, .. }
            | Fault::SilentFail { at, .. }
            | Fault::Restart { at, .. }
            | Fault::Reset { at, .. }
            | Fault::SeedCrash { at, .. } => *at,
            Fault::Partition { start, .. } => *start,
        }
    }

    /// Checks indices against the network's size.
    pub fn validate(&self, seeds: usize, peers: usize) -> Result<(), String> {
        let peer_ok = |p: usize| {
            if p < peers {
                Ok(())
            } else {
                Err(format!("peer {p} does not exist ({peers} peers)"))
            }
        };
        match self {
            Fault::Crash { peer, .. }
            | Fault::SilentFail { peer, .. }
            | Fault::Restart { peer, .. }
            | Fault::Reset { peer, .. } => peer_ok(*peer),
            Fault::Partition { a, b, start, end } => {
                if a.is_empty() || b.is_empty() || a.end > peers || b.end > peers {
                    return Err(format!(
                        "partition groups must be non-empty peer ranges below {peers}"
                    ));
                }
                if a.start < b.end && b.start < a.end {
                    return Err("partition groups overlap".into());
                }
                if end <= start {
                    return Err("partition must end after it starts".into());
                }
                Ok(())
            }
            Fault::SeedCrash { seed, .. } if *seed >= seeds => {
                Err(format!("seed {seed} does not exist ({seeds} seeds)"))
            }
            Fault::SeedCrash { .. } => Ok(()),
        }
    }

    /// Parses `PEER@TIME` for `--crash`, `--silent-fail`, `--restart` and `--reset`; PEER is an index
    /// or a simulated peer's `IP:PORT`.
    pub fn parse_peer_at(s: &str) -> Result<(usize, Time), String> {
        parse_who_at(s, "peer", layout::peer_index)
    }

    /// Parses `SEED@TIME` for `--seed-crash`; SEED is an index or a simulated seed's `IP:PORT`.
    pub fn parse_seed_at(s: &str) -> Result<(usize, Time), String> {
        parse_who_at(s, "seed", layout::seed_index)
    }

    /// Parses `A-B|C-D@START..END` (inclusive peer index ranges).
    pub fn parse_partition(s: &str) -> Result<Fault, String> {
        let bad = |why: &str| format!("bad partition {s:?}: {why} (expected A-B|C-D@START..END)");
        let (groups, span) = s.split_once('@').ok_or_else(|| bad("no @"))?;
        let (ga, gb) = groups.split_once('|').ok_or_else(|| bad("no |"))?;
        let (start, end) = span.split_once("..").ok_or_else(|| bad("no .."))?;
        let range = |g: &str| -> Result<Range<usize>, String> {
            let (lo, hi) = g.split_once('-').unwrap_or((g, g));
            let lo: usize = lo
                .trim()
                .parse()
                .map_err(|_| bad("group bound is not a number"))?;
            let hi: usize = hi
                .trim()
                .parse()
                .map_err(|_| bad("group bound is not a number"))?;
            if hi < lo {
                return Err(bad("group range runs backwards"));
            }
            Ok(lo..hi + 1)
        };
        let time = |t: &str| -> Result<Time, String> {
            let d: Duration = t.parse().map_err(|e| bad(&format!("{e}")))?;
            Ok(Time::ZERO + d)
        };
        Ok(Fault::Partition {
            a: range(ga)?,
            b: range(gb)?,
            start: time(start)?,
            end: time(end)?,
        })
    }
}

/// `WHO@TIME`, where WHO is an index or an address that `index_of` maps to one.
fn parse_who_at(
    s: &str,
    kind: &str,
    index_of: fn(NodeAddr) -> Option<usize>,
) -> Result<(usize, Time), String> {
    let (who, at) = s
        .split_once('@')
        .ok_or_else(|| format!("{s:?}: expected {}@TIME, e.g. 4@60s", kind.to_uppercase()))?;
    let d: Duration = at.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let index = match who.parse::<usize>() {
        Ok(i) => i,
        Err(_) => {
            let addr: NodeAddr = who.parse().map_err(|e| format!("{s:?}: {e}"))?;
            index_of(addr).ok_or_else(|| format!("{addr} is not a simulated {kind}"))?
        }
    };
    Ok((index, Time::ZERO + d))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |t: &Time| Duration(t.0);
        match self {
            Fault::Crash { peer, at } => write!(f, "crash {peer}@{}", secs(at)),
            Fault::SilentFail { peer, at } => write!(f, "silent-fail {peer}@{}", secs(at)),
            Fault::Restart { peer, at } => write!(f, "restart {peer}@{}", secs(at)),
            Fault::Reset { peer, at } => write!(f, "reset {peer}@{}", secs(at)),
            Fault::Partition { a, b, start, end } => write!(
                f,
                "partition {}-{}|{}-{}@{}..{}",
                a.start,
                a.end - 1,
                b.start,
                b.end - 1,
                secs(start),
                secs(end)
            ),
            Fault::SeedCrash { seed, at } => write!(f, "seed-crash {seed}@{}", secs(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_their_command_line_forms() {
        assert_eq!(Fault::parse_peer_at("4@60s"), Ok((4, Time(60_000_000))));
        assert_eq!(
            Fault::parse_peer_at("127.0.0.1:5004@1m"),
            Ok((4, Time(60_000_000)))
        );
        assert_eq!(
            Fault::parse_seed_at("127.0.0.1:8081@10s"),
            Ok((1, Time(10_000_000)))
        );
        let p = Fault::parse_partition("0-9|10-19@30s..90s").unwrap();
        assert_eq!(
            p,
            Fault::Partition {
                a: 0..10,
                b: 10..20,
                start: Time(30_000_000),
                end: Time(90_000_000)
            }
        );
        assert_eq!(p.to_string(), "partition 0-9|10-19@30s..90s");
        assert!(Fault::parse_peer_at("4").is_err());
        assert!(Fault::parse_partition("0-9@1s..2s").is_err());
        assert!(Fault::parse_partition("9-0|10-19@1s..2s").is_err());
        assert!(p.validate(3, 15).is_err());
        assert!(p.validate(3, 20).is_ok());
        assert!(
            Fault::Crash {
                peer: 40,
                at: Time::ZERO
            }
            .validate(3, 40)
            .is_err()
        );
    }
}
