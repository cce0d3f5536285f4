//! Processing time: how long peers are busy with the gossip they handle (`--processing`).
//!
//! A job is a gossip copy a peer receives (delivered or duplicate) or a message it originates;
//! each takes the time of one digest, as a peer that hashes every copy does (the reference,
//! or a real run's `--hash-per-peer`). Other inputs are handled when they arrive: they cost
//! microseconds, not a digest. Two arrangements of the work:
//!
//! * `digest:D`: each peer is a processor of its own, a single server: jobs one at a time in
//!   arrival order, and a job's handling (the dedup decision and its forwards, or the
//!   origination and its sends) happens when its time ends.
//! * `digest:D,loops:N`: the peers share N event loops, peer `i` on loop `i mod N`, as the
//!   N loops of a `gossipnet swarm` process share its peers. A loop works in turns: a turn
//!   begins when the loop is free and something waits, takes every job that arrived before
//!   it began, handles them one after another (each when its time ends): the copies in the
//!   order they arrived, those that arrived together in the order their connections were
//!   opened (the driver reads its sockets as the kernel lists them ready, one writer's
//!   frames in that writer's order), then the originations (its timers fire after the
//!   reads). Whatever the loop's peers send during a turn leaves when the turn ends, as the
//!   driver writes a turn's frames after its reads (so a link stays ordered).
//!
//! The first is the model of a peer on its own machine; the second of many peers in one
//! process on a machine with fewer cores than peers, where they wait for each other
//! (README, "Processing time").

use core::fmt;
use core::str::FromStr;

use super::queue::Entry;
use crate::time::{Duration, Time};

/// Time peers spend on the gossip they handle (`--processing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Processing {
    /// Gossip is handled the instant it arrives (the default).
    #[default]
    None,
    /// Each received copy and each origination takes `per_copy`.
    Digest {
        /// The time of one job (one digest).
        per_copy: Duration,
        /// `None`: each peer on its own processor, a job handled as its time ends. `Some(n)`:
        /// the peers share `n` event loops that work in turns (see the module's text).
        loops: Option<u32>,
    },
}

impl Processing {
    /// Each peer on a processor of its own, taking `per_copy` a job.
    pub fn own(per_copy: Duration) -> Self {
        Processing::Digest {
            per_copy,
            loops: None,
        }
    }
}

impl fmt::Display for Processing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Processing::None => f.write_str("none"),
            Processing::Digest {
                per_copy,
                loops: None,
            } => write!(f, "digest:{per_copy}"),
            Processing::Digest {
                per_copy,
                loops: Some(n),
            } => write!(f, "digest:{per_copy},loops:{n}"),
        }
    }
}

impl FromStr for Processing {
    type Err = String;
    /// `none`, `digest:DURATION` or `digest:DURATION,loops:N` (e.g. `digest:280us,loops:2`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "bad processing {s:?}: expected none, digest:DURATION or \
                 digest:DURATION,loops:N (e.g. digest:280us,loops:2)"
            )
        };
        if s == "none" {
            return Ok(Processing::None);
        }
        let rest = s.strip_prefix("digest:").ok_or_else(bad)?;
        let (d, loops) = match rest.split_once(',') {
            None => (rest, None),
            Some((d, l)) => {
                let n = l
                    .strip_prefix("loops:")
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{}: loops must be a number from 1", bad()))?;
                (d, Some(n))
            }
        };
        let per_copy = d
            .parse::<Duration>()
            .map_err(|e| format!("{}: {e}", bad()))?;
        Ok(Processing::Digest { per_copy, loops })
    }
}

/// One event loop shared by peers (`loops:N`).
#[derive(Debug, Default)]
pub(super) struct Loop {
    /// Jobs that arrived since the current turn began, with their arrival times, in
    /// arrival order.
    pub(super) waiting: Vec<(Time, Entry)>,
    /// When the current (or last) turn ends: what it produced leaves then.
    pub(super) turn_end: Time,
    /// A turn start is queued.
    pub(super) turn_queued: bool,
}

/// Where the peers' jobs wait and when they are done.
#[derive(Debug)]
pub(super) enum Servers {
    /// Each peer on its own processor: when each is free again, by peer index.
    Own {
        per_job: Duration,
        busy_until: Vec<Time>,
    },
    /// Peers share event loops; peer `i` is on loop `i mod loops.len()`.
    Loops { per_job: Duration, loops: Vec<Loop> },
}

impl Servers {
    /// The servers of `peers` peers under `p`; `None` when nothing takes time.
    pub(super) fn new(p: Processing, peers: usize) -> Option<Self> {
        match p {
            Processing::None => None,
            Processing::Digest {
                per_copy,
                loops: None,
            } => Some(Servers::Own {
                per_job: per_copy,
                busy_until: vec![Time::ZERO; peers],
            }),
            Processing::Digest {
                per_copy,
                loops: Some(n),
            } => Some(Servers::Loops {
                per_job: per_copy,
                loops: (0..n.max(1)).map(|_| Loop::default()).collect(),
            }),
        }
    }

    /// When what peer `peer` sends at `now` leaves: at once on a processor of its own; with
    /// loops, at the end of its loop's turn if one is under way.
    pub(super) fn departure(&self, peer: usize, now: Time) -> Time {
        match self {
            Servers::Own { .. } => now,
            Servers::Loops { loops, .. } => loops[peer % loops.len()].turn_end.max(now),
        }
    }

    /// Peer `peer` restarted: a fresh machine, with nothing to do (its old jobs are dropped
    /// when they come up, as the old incarnation's). A shared loop goes on.
    pub(super) fn reset(&mut self, peer: usize, now: Time) {
        if let Servers::Own { busy_until, .. } = self
            && let Some(busy) = busy_until.get_mut(peer)
        {
            *busy = now;
        }
    }
}

/// What the world does with a job that arrived.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admitted {
    /// Queue the job itself for this time.
    At(Time),
    /// Queue a turn start of this loop for this time (the job waits in the loop).
    TurnAt(u32, Time),
    /// The job waits in its loop for a turn already queued.
    Waiting,
}

impl Servers {
    /// A job `e` of peer `peer` arrives at `now`.
    pub(super) fn admit(&mut self, peer: usize, now: Time, e: Entry) -> Admitted {
        match self {
            Servers::Own {
                per_job,
                busy_until,
            } => {
                let Some(busy) = busy_until.get_mut(peer) else {
                    debug_assert!(false, "peer {peer} has no server");
                    return Admitted::At(now);
                };
                let end = (*busy).max(now) + *per_job;
                *busy = end;
                Admitted::At(end)
            }
            Servers::Loops { loops, .. } => {
                let i = peer % loops.len();
                let l = &mut loops[i];
                l.waiting.push((now, e));
                if l.turn_queued {
                    return Admitted::Waiting;
                }
                l.turn_queued = true;
                // Loops are numbered by u32 (`Processing::Digest::loops`).
                Admitted::TurnAt(i as u32, l.turn_end.max(now))
            }
        }
    }

    /// Loop `i` begins a turn at `now`: the jobs that wait, in the order `key` (of a job's
    /// arrival time and entry) gives, stable, each with the time it is handled (when its
    /// time ends). The turn ends after the last.
    pub(super) fn turn<K: Ord>(
        &mut self,
        i: u32,
        now: Time,
        mut key: impl FnMut(Time, &Entry) -> K,
    ) -> Vec<(Time, Entry)> {
        let Servers::Loops { per_job, loops } = self else {
            debug_assert!(false, "turns are of loops");
            return Vec::new();
        };
        let per_job = *per_job;
        let Some(l) = loops.get_mut(i as usize) else {
            return Vec::new();
        };
        l.turn_queued = false;
        let mut jobs = std::mem::take(&mut l.waiting);
        jobs.sort_by_key(|(arrived, e)| key(*arrived, e));
        let mut at = now;
        let jobs = jobs
            .into_iter()
            .map(|(_, e)| {
                at = at + per_job;
                (at, e)
            })
            .collect();
        l.turn_end = at;
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::Kind;
    use super::*;

    #[test]
    fn processing_reads_back_what_it_writes() {
        for p in [
            Processing::None,
            Processing::own(Duration(280)),
            Processing::own(Duration::from_millis(3)),
            Processing::Digest {
                per_copy: Duration(277),
                loops: Some(2),
            },
        ] {
            assert_eq!(p.to_string().parse(), Ok(p), "{p}");
        }
        assert_eq!("digest:1.5ms".parse(), Ok(Processing::own(Duration(1500))));
        for bad in [
            "digest",
            "digest:fast",
            "cpu:1ms",
            "digest:1ms,loops:0",
            "digest:1ms,x:2",
        ] {
            assert!(bad.parse::<Processing>().is_err(), "{bad}");
        }
    }

    fn job(n: u64) -> Entry {
        Entry::new(Kind::Start, 0, n)
    }

    #[test]
    fn a_processor_of_its_own_takes_jobs_one_at_a_time_in_arrival_order() {
        let mut s = Servers::new(Processing::own(Duration(10)), 2).expect("servers");
        let mut at = |peer, now| s.admit(peer, Time(now), job(0));
        assert_eq!(at(0, 100), Admitted::At(Time(110)));
        assert_eq!(at(0, 100), Admitted::At(Time(120)), "waits for the first");
        assert_eq!(at(0, 105), Admitted::At(Time(130)));
        assert_eq!(at(1, 105), Admitted::At(Time(115)), "another peer is free");
        assert_eq!(at(0, 200), Admitted::At(Time(210)), "idle in between");
        s.reset(1, Time(106));
        assert_eq!(s.admit(1, Time(106), job(0)), Admitted::At(Time(116)));
        assert_eq!(s.departure(0, Time(210)), Time(210));
    }

    #[test]
    fn a_loop_takes_what_waits_in_turns_and_sends_at_the_end_of_each() {
        let loops = Processing::Digest {
            per_copy: Duration(10),
            loops: Some(2),
        };
        let mut s = Servers::new(loops, 4).expect("servers");
        // Peers 0 and 2 share loop 0; peer 1 is on loop 1.
        assert_eq!(
            s.admit(0, Time(100), job(1)),
            Admitted::TurnAt(0, Time(100))
        );
        assert_eq!(s.admit(2, Time(100), job(2)), Admitted::Waiting);
        assert_eq!(
            s.admit(1, Time(101), job(3)),
            Admitted::TurnAt(1, Time(101))
        );
        let turn = s.turn(0, Time(100), |_, _| 0);
        assert_eq!(turn, [(Time(110), job(1)), (Time(120), job(2))]);
        assert_eq!(
            s.departure(2, Time(110)),
            Time(120),
            "sent when the turn ends"
        );
        // Arrivals during the turn wait for the next, which begins when this one ends.
        assert_eq!(
            s.admit(0, Time(105), job(4)),
            Admitted::TurnAt(0, Time(120))
        );
        assert_eq!(s.admit(0, Time(119), job(5)), Admitted::Waiting);
        let by_number = |_, e: &Entry| core::cmp::Reverse(e.b);
        assert_eq!(
            s.turn(0, Time(120), by_number),
            [(Time(130), job(5)), (Time(140), job(4))]
        );
        // An idle loop begins a turn when a job arrives.
        assert_eq!(
            s.admit(2, Time(500), job(6)),
            Admitted::TurnAt(0, Time(500))
        );
    }
}
