//! Liveness: one round every interval for all neighbours. A neighbour that has not answered
//! the previous request, or whose connection is closed, misses; after `misses_max`
//! consecutive misses it is declared dead, reported to every seed we registered with, dropped,
//! and its slot refilled.

use super::{PeerNode, joining};
use crate::addr::NodeAddr;
use crate::node::{Event, RemovalReason, TimerId};
use crate::wire::{DeadNode, Message, Timestamp};

impl PeerNode {
    pub(super) fn liveness_round(&mut self) {
        let ts = Timestamp::at(self.now, self.ctx.cfg.wall_offset_micros);
        let (me, misses_max) = (self.addr, self.ctx.cfg.misses_max);
        let mut dead = Vec::new();
        for (peer, n) in self.neighbours.iter_mut() {
            if n.awaiting() || n.conn().is_none() {
                let misses = n.miss();
                self.out.event(Event::LivenessMissed {
                    peer: *peer,
                    misses,
                });
                if misses >= misses_max {
                    dead.push(*peer);
                    continue;
                }
            }
            if let Some(conn) = n.conn() {
                self.out.send(
                    conn,
                    Message::LivenessRequest {
                        ts: ts.clone(),
                        addr: me,
                    },
                );
                n.set_awaiting();
            }
        }
        for peer in dead {
            self.declare_dead(peer, &ts);
        }
        self.rejoin_if_isolated();
        self.out
            .arm(TimerId::Liveness, self.now + self.ctx.cfg.liveness_interval);
    }

    /// A peer with no neighbour and no dial in flight (every dial was refused, or all its
    /// neighbours died) asks its seeds for a fresh list and tries again: peers that joined
    /// since may have free slots. Checked once per liveness round.
    fn rejoin_if_isolated(&mut self) {
        if !self.neighbours.is_empty() || !joining(&self.joining).dialing.is_empty() {
            return;
        }
        for (_, conn) in self.registered_seeds() {
            self.out.send(conn, Message::PeerListRequest);
        }
        self.refresh_candidates();
        self.fill();
    }

    pub(super) fn reply_in(&mut self, peer: NodeAddr) {
        if let Some(n) = self.neighbours.get_mut(&peer) {
            n.answered();
        }
    }

    fn declare_dead(&mut self, peer: NodeAddr, ts: &Timestamp) {
        self.out.event(Event::PeerDeclaredDead { peer });
        let notice = DeadNode {
            dead: peer,
            ts: ts.clone(),
            reporter: self.addr,
        };
        let seeds = self.registered_seeds();
        // A chosen seed not registered now (its connection was reset) is told when it
        // registers us again.
        let owed: Vec<NodeAddr> = self
            .seeds
            .iter()
            .filter(|s| !seeds.iter().any(|(r, _)| *r == s.addr))
            .map(|s| s.addr)
            .collect();
        if !owed.is_empty() {
            let j = self.joining_mut();
            for seed in owed {
                if j.unreported.len() >= super::UNREPORTED_MAX {
                    j.unreported.remove(0);
                }
                j.unreported.push((seed, notice.clone()));
            }
        }
        for (seed, conn) in seeds {
            self.out.send(conn, Message::DeadNode(notice.clone()));
            self.out.event(Event::DeadNodeReported { dead: peer, seed });
        }
        self.remove_neighbour(peer, RemovalReason::Dead);
        self.known.remove(&peer);
        self.unjoin(|j| {
            j.degrees.remove(&peer);
        });
        self.refresh_candidates();
        self.fill();
    }
}
