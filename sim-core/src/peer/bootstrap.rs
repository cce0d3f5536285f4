//! Bootstrap: pick ⌊n/2⌋+1 seeds at random, register with each, union their peer lists, and
//! keep the seed connections open for dead-node reports and notices. Unreachable seeds are
//! retried with exponential back-off.

use rand::seq::SliceRandom;
use rand::seq::index::sample;

use super::{Conn, PeerNode, Role};
use crate::addr::NodeAddr;
use crate::limits::{KNOWN_PEERS_MAX, SEED_ATTEMPTS_MAX};
use crate::node::{ConnId, Event, Output, TimerId};
use crate::time::Time;
use crate::wire::{ListedPeer, Message, Wire};

/// One chosen seed.
#[derive(Debug)]
pub(super) struct SeedLink {
    pub(super) addr: NodeAddr,
    pub(super) conn: Option<ConnId>,
    /// Failed attempts since the last success.
    attempts: u32,
    /// When to dial it again; [`Time::NEVER`] when no retry is due (a sentinel, not an
    /// `Option`: 32 bytes a link, not 40).
    retry_at: Time,
    /// It confirmed our registration (on the current connection).
    pub(super) registered: bool,
    /// It answered our first peer-list request, or failed at least once: bootstrap need not
    /// wait for it any longer.
    settled: bool,
}

impl PeerNode {
    pub(super) fn start(&mut self) {
        let n = self.ctx.seeds.len();
        let k = if n == 0 { 0 } else { n / 2 + 1 };
        let mut picked = self.rng.with(|rng| sample(rng, n, k).into_vec());
        picked.sort_unstable();
        let chosen: Vec<NodeAddr> = picked.into_iter().map(|i| self.ctx.seeds[i]).collect();
        self.out.event(Event::PeerStarted {
            capacity: self.capacity(),
        });
        self.out.event(Event::SeedsChosen {
            seeds: chosen.clone(),
        });
        self.seeds.reserve_exact(chosen.len());
        for addr in chosen {
            self.seeds.push(SeedLink {
                addr,
                conn: None,
                attempts: 0,
                retry_at: Time::NEVER,
                registered: false,
                settled: false,
            });
            self.out.push(Output::Connect { addr });
        }
        self.maybe_bootstrapped();
    }

    fn seed_mut(&mut self, addr: NodeAddr) -> Option<&mut SeedLink> {
        self.seeds.iter_mut().find(|s| s.addr == addr)
    }

    pub(super) fn seed_connected(&mut self, conn: ConnId, addr: NodeAddr) {
        let me = self.addr;
        let Some(s) = self.seed_mut(addr) else {
            // A seed of config.txt we did not choose: nothing to say to it.
            self.out.push(Output::Close { conn });
            return;
        };
        s.conn = Some(conn);
        s.attempts = 0;
        s.retry_at = Time::NEVER;
        self.conns.insert(conn, Conn::new(Role::Seed(addr)));
        self.out.send(conn, Message::Register { addr: me });
        if self.ctx.cfg.wire == Wire::Line {
            self.out.send(conn, Message::PeerListRequest);
        }
    }

    pub(super) fn seed_failed(&mut self, addr: NodeAddr) {
        let (now, base) = (self.now, self.ctx.cfg.seed_retry);
        let Some(s) = self.seed_mut(addr) else { return };
        s.attempts += 1;
        s.settled = true;
        let attempt = s.attempts;
        let retry_in = (attempt < SEED_ATTEMPTS_MAX).then(|| base.times(1 << (attempt - 1)));
        let retry_at = retry_in.map(|d| now + d);
        s.retry_at = retry_at.unwrap_or(Time::NEVER);
        let retry_in_s = retry_in.map(|d| d.secs_f64());
        self.out.event(Event::SeedUnreachable {
            seed: addr,
            attempt,
            retry_in_s,
        });
        if let Some(at) = retry_at {
            self.out.arm_no_later(TimerId::SeedRetry, at);
        }
        self.maybe_bootstrapped();
    }

    pub(super) fn seed_lost(&mut self, addr: NodeAddr) {
        let Some(s) = self.seed_mut(addr) else { return };
        s.conn = None;
        s.registered = false;
        self.out.event(Event::SeedLost { seed: addr });
        // Reconnect (and register again) through the back-off path.
        self.seed_failed(addr);
    }

    pub(super) fn retry_seeds(&mut self) {
        let now = self.now;
        let mut next = None::<Time>;
        for s in &mut self.seeds {
            match s.retry_at {
                Time::NEVER => {}
                at if at <= now => {
                    s.retry_at = Time::NEVER;
                    self.out.push(Output::Connect { addr: s.addr });
                }
                at => next = Some(next.map_or(at, |n| n.min(at))),
            }
        }
        if let Some(at) = next {
            self.out.arm(TimerId::SeedRetry, at);
        }
    }

    pub(super) fn registered(&mut self, seed: NodeAddr) {
        let me = self.addr;
        let degree = self.neighbours.len();
        let Some(s) = self.seed_mut(seed) else { return };
        s.registered = true;
        // A seed that (re)registers us has no degree of ours yet.
        if let Some(conn) = s
            .conn
            .filter(|_| degree > 0 && self.ctx.cfg.topology.by_degree())
        {
            self.out.send(
                conn,
                Message::Degree {
                    addr: me,
                    degree: degree as u32,
                },
            );
        }
        self.out.event(Event::Registered { seed });
        let conn = self.seed_mut(seed).and_then(|s| s.conn);
        if let Some(conn) = conn.filter(|_| self.ctx.cfg.wire == Wire::Reference) {
            // The original's seed reads one message a `recv`: the list is asked for once
            // the registration is answered, never in the same segment.
            self.out.send(conn, Message::PeerListRequest);
        }
        let mut unreported = Vec::new();
        self.unjoin(|j| {
            let (owed, rest) = std::mem::take(&mut j.unreported)
                .into_iter()
                .partition(|(s, _)| *s == seed);
            j.unreported = rest;
            unreported = owed;
        });
        if let Some(conn) = conn {
            for (_, notice) in unreported {
                let dead = notice.dead;
                self.out.send(conn, Message::DeadNode(notice));
                self.out.event(Event::DeadNodeReported { dead, seed });
            }
        }
    }

    /// Under a policy that picks by degree, tell the registered seeds our degree (it changed).
    pub(super) fn advertise_degree(&mut self) {
        if !self.ctx.cfg.topology.by_degree() {
            return;
        }
        let degree = self.neighbours.len();
        let seeds = self.registered_seeds();
        // Bounded by NEIGHBOURS_MAX (< 10 000), so it fits a u32.
        let msg = Message::Degree {
            addr: self.addr,
            degree: degree as u32,
        };
        for (_, conn) in &seeds {
            self.out.send(*conn, msg.clone());
        }
        self.out.event(Event::DegreeAdvertised {
            degree,
            seeds: seeds.len(),
        });
    }

    pub(super) fn peer_list(&mut self, seed: NodeAddr, peers: Vec<ListedPeer>) {
        let entries = peers.len();
        let me = self.addr;
        let mut fresh = Vec::new();
        self.known.unpack();
        // In list order, as if inserted one by one (the cap makes order matter), but merged
        // into the tables once: a list of thousands is not thousands of mid-table inserts.
        // A seed lists each peer once; only a list with repeats needs the set of those
        // added so far to tell a repeat from a newcomer.
        let mut listed: Vec<NodeAddr> = peers.iter().map(|p| p.addr).collect();
        listed.sort_unstable();
        let repeats = listed.windows(2).any(|w| w[0] == w[1]);
        let mut added_set = std::collections::BTreeSet::new();
        let mut degrees = Vec::new();
        for ListedPeer { addr: p, degree } in peers {
            if p == me {
                continue;
            }
            let known = self.known.contains(&p) || (repeats && added_set.contains(&p));
            let room = self.known.len() + fresh.len() < KNOWN_PEERS_MAX;
            if let Some(d) = degree
                && (known || room)
            {
                degrees.push((p, d));
            }
            if room && !known {
                if repeats {
                    added_set.insert(p);
                }
                fresh.push(p);
            }
        }
        let mut added = fresh.clone();
        added.sort_unstable();
        if !degrees.is_empty() {
            self.joining_mut().degrees.extend_in_turn(degrees);
        }
        self.known.insert_new_sorted(added);
        self.known.pack();
        let known = self.known.len();
        self.out.event(Event::PeerListReceived {
            seed,
            entries,
            known,
        });
        if let Some(s) = self.seed_mut(seed) {
            s.settled = true;
        }
        if self.bootstrapped && self.ctx.cfg.topology.by_degree() {
            // Fresh degrees reorder every candidate.
            self.refresh_candidates();
            self.fill();
        } else if self.bootstrapped {
            self.rng.with(|rng| fresh.shuffle(rng));
            self.known.extend_candidates(fresh);
            self.fill();
        } else {
            self.maybe_bootstrapped();
        }
    }

    pub(super) fn dead_notice(&mut self, dead: NodeAddr, reporter: NodeAddr) {
        self.known.remove(&dead);
        self.unjoin(|j| {
            j.degrees.remove(&dead);
        });
        self.out.event(Event::DeadNodeNotice { dead, reporter });
    }

    /// The seeds to tell about a dead neighbour: those we registered with and still reach.
    pub(super) fn registered_seeds(&self) -> Vec<(NodeAddr, ConnId)> {
        self.seeds
            .iter()
            .filter(|s| s.registered)
            .filter_map(|s| s.conn.map(|c| (s.addr, c)))
            .collect()
    }

    fn maybe_bootstrapped(&mut self) {
        if self.bootstrapped || !self.seeds.iter().all(|s| s.settled) {
            return;
        }
        self.bootstrapped = true;
        let now = self.now;
        if self.ctx.cfg.gossip_count > 0 {
            self.arm_gossip(now + self.ctx.cfg.gossip_interval);
        }
        self.out
            .arm(TimerId::Liveness, now + self.ctx.cfg.liveness_interval);
        self.out
            .arm(TimerId::SeenSweep, now + self.ctx.cfg.seen_ttl);
        self.seen.start(now);
        self.refresh_candidates();
        self.fill();
    }
}
