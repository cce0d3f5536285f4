//! Neighbour links: the hello handshake, refusals (full, duplicate, self), slot accounting
//! against the topology's capacity, and refilling free slots from the known peers.
//!
//! Handshake: the dialer sends `Connection with Peer:ME`; the other side answers with its
//! own hello (accepted) or `Connection refused:REASON` and a close. When two peers dial each
//! other at once, the connection dialed by the lower address wins, so both keep the same one.

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Conn, PeerNode, Role, joining};
use crate::addr::NodeAddr;
use crate::limits::HANDSHAKES_MAX;
use crate::node::{ConnId, Event, Output, RemovalReason, TimerId};
use crate::wire::{Message, RefuseReason};

/// What a peer knows of one neighbour: 10 bytes, 16 with its address in the table.
#[derive(Debug)]
pub(super) struct Neighbour {
    /// The connection, valid while open.
    conn: ConnId,
    /// Consecutive missed liveness replies (above the three flag bits; at most
    /// [`crate::limits::MISSES_MAX`], which fits in 13 bits), and the flags [`OPEN`] (the
    /// connection is open; once it closed, liveness counts misses until the neighbour is
    /// declared dead, or it reconnects), [`AWAITING`] (a liveness request is unanswered) and
    /// [`OUTBOUND`] (we dialed it: it counts toward the links a `uniform` or `preferential`
    /// peer opens).
    state: u16,
}

const OPEN: u16 = 1;
const AWAITING: u16 = 2;
const OUTBOUND: u16 = 4;
const MISS: u16 = 8;
const _: () = assert!(crate::limits::MISSES_MAX as u64 <= (u16::MAX / MISS) as u64);

impl Neighbour {
    fn new(conn: ConnId, outbound: bool) -> Self {
        Neighbour {
            conn,
            state: OPEN | if outbound { OUTBOUND } else { 0 },
        }
    }

    /// The open connection, if any.
    pub(super) fn conn(&self) -> Option<ConnId> {
        (self.state & OPEN != 0).then_some(self.conn)
    }

    pub(super) fn outbound(&self) -> bool {
        self.state & OUTBOUND != 0
    }

    pub(super) fn awaiting(&self) -> bool {
        self.state & AWAITING != 0
    }

    pub(super) fn set_awaiting(&mut self) {
        self.state |= AWAITING;
    }

    pub(super) fn misses(&self) -> u32 {
        u32::from(self.state / MISS)
    }

    /// One more missed reply; the count so far. It stops at what the flag bits leave room
    /// for, far above any configured limit, which declares the neighbour dead first.
    pub(super) fn miss(&mut self) -> u32 {
        if self.state / MISS < u16::MAX / MISS {
            self.state += MISS;
        }
        self.misses()
    }

    /// It answered: no misses, nothing awaited.
    pub(super) fn answered(&mut self) {
        self.state &= OPEN | OUTBOUND;
    }

    fn closed(&mut self) {
        self.state &= !OPEN;
    }
}

impl PeerNode {
    /// Slots taken: neighbours and dials in flight.
    fn slots_used(&self) -> usize {
        self.neighbours.len() + joining(&self.joining).dialing.len()
    }

    /// Whether to dial one more peer: a free slot, and under a policy with a number of links
    /// to open, fewer of them open or being opened.
    fn wants_dial(&self) -> bool {
        let slot = self.slots_used() < self.capacity as usize;
        match self.ctx.cfg.topology.dials() {
            None => slot,
            Some(k) => {
                let opened = self.neighbours.values().filter(|n| n.outbound()).count();
                slot && opened + joining(&self.joining).dialing.len() < k
            }
        }
    }

    pub(super) fn expect_handshake(&mut self, conn: ConnId) {
        let at = self.now + self.ctx.cfg.handshake_timeout;
        self.joining_mut().handshakes.insert(conn, at);
        self.out.arm_no_later(TimerId::Handshake, at);
    }

    /// Our dial to `peer` connected: say hello.
    pub(super) fn dialed(&mut self, conn: ConnId, peer: NodeAddr) {
        if !joining(&self.joining).dialing.contains(&peer) || self.neighbours.contains_key(&peer) {
            // Meanwhile `peer` dialed us and won the tie, or we gave up on it.
            self.out.push(Output::Close { conn });
            self.dial_ended(peer);
            return;
        }
        self.conns.insert(conn, Conn::new(Role::HelloSent(peer)));
        self.out.send(conn, Message::Hello { addr: self.addr });
        self.expect_handshake(conn);
    }

    /// A dial to `peer` is over without a neighbour (failed, refused, closed, timed out).
    pub(super) fn dial_ended(&mut self, peer: NodeAddr) {
        if self
            .joining
            .as_mut()
            .is_some_and(|j| j.dialing.remove(&peer))
        {
            self.fill();
        }
    }

    pub(super) fn hello_in(&mut self, conn: ConnId, peer: NodeAddr) {
        self.unjoin(|j| {
            j.handshakes.remove(&conn);
        });
        match self.admit(peer) {
            Ok(()) => {
                self.out.send(conn, Message::Hello { addr: self.addr });
                self.add_neighbour(conn, peer, false);
            }
            Err(reason) => {
                self.out.send(conn, Message::Refuse { reason });
                self.out.event(Event::RefusedHello { peer, reason });
                self.close(conn);
            }
        }
    }

    /// Whether a hello from `peer` is accepted.
    ///
    /// Established neighbours and dials that already said hello are commitments; a dial still
    /// connecting is not (the other side has agreed to nothing yet), so it is cancelled to
    /// make room. Otherwise a peer whose only slot is held by a dial that will be refused
    /// would refuse every peer asking it, and end up isolated.
    fn admit(&mut self, peer: NodeAddr) -> Result<(), RefuseReason> {
        if peer == self.addr {
            return Err(RefuseReason::SelfConnection);
        }
        if let Some(n) = self.neighbours.get(&peer) {
            // A neighbour whose connection closed is back (e.g. restarted): take the new link.
            return if n.conn().is_none() {
                Ok(())
            } else {
                Err(RefuseReason::Duplicate)
            };
        }
        let crossing = joining(&self.joining).dialing.contains(&peer);
        if crossing && self.addr < peer {
            return Err(RefuseReason::Duplicate); // our own dial wins
        }
        let hellos = self.hellos_in_flight();
        // On a crossing their dial wins; ours will be refused, so it commits nothing.
        let crossing_hello = usize::from(crossing && hellos.contains(&peer));
        if self.neighbours.len() + hellos.len() - crossing_hello >= self.capacity as usize {
            return Err(RefuseReason::Full);
        }
        self.unjoin(|j| {
            j.dialing.remove(&peer);
        });
        while self.slots_used() >= self.capacity as usize {
            let Some(cancel) = joining(&self.joining)
                .dialing
                .iter()
                .find(|d| !hellos.contains(d))
                .copied()
            else {
                break;
            };
            // Its `Connected`, if it comes, finds it gone from `dialing` and closes it.
            self.unjoin(|j| {
                j.dialing.remove(&cancel);
            });
        }
        Ok(())
    }

    /// Peers we dialed and said hello to, still waiting for their answer.
    fn hellos_in_flight(&self) -> Vec<NodeAddr> {
        self.conns
            .values()
            .filter_map(|c| {
                if let Role::HelloSent(p) = c.role() {
                    Some(p)
                } else {
                    None
                }
            })
            .collect()
    }

    pub(super) fn hello_accepted(&mut self, conn: ConnId, peer: NodeAddr) {
        self.unjoin(|j| {
            j.handshakes.remove(&conn);
        });
        self.unjoin(|j| {
            j.dialing.remove(&peer);
        });
        if self
            .neighbours
            .get(&peer)
            .is_some_and(|n| n.conn().is_some())
        {
            self.close(conn);
            return;
        }
        self.add_neighbour(conn, peer, true);
    }

    pub(super) fn refused(&mut self, conn: ConnId, peer: NodeAddr, reason: RefuseReason) {
        self.out.event(Event::ConnectionRefused { peer, reason });
        self.close(conn);
    }

    fn add_neighbour(&mut self, conn: ConnId, peer: NodeAddr, outbound: bool) {
        // From now on its entry here holds the connection.
        self.conns.remove(&conn);
        let n = Neighbour::new(conn, outbound);
        let replaced = self.neighbours.insert(peer, n).is_some();
        self.known.insert(peer);
        if !replaced {
            let degree = self.neighbours.len();
            self.out.event(Event::NeighbourAdded { peer, degree });
            self.advertise_degree();
        }
    }

    pub(super) fn neighbour_disconnected(&mut self, peer: NodeAddr, conn: ConnId) {
        if let Some(n) = self.neighbours.get_mut(&peer)
            && n.conn() == Some(conn)
        {
            n.closed();
        }
    }

    pub(super) fn remove_neighbour(&mut self, peer: NodeAddr, reason: RemovalReason) {
        let Some(n) = self.neighbours.remove(&peer) else {
            return;
        };
        if let Some(conn) = n.conn() {
            self.close(conn);
        }
        let degree = self.neighbours.len();
        self.out.event(Event::NeighbourRemoved {
            peer,
            degree,
            reason,
        });
        self.advertise_degree();
    }

    pub(super) fn handshake_deadlines(&mut self) {
        let now = self.now;
        let expired: Vec<ConnId> = joining(&self.joining)
            .handshakes
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(c, _)| *c)
            .collect();
        for conn in expired {
            if let Some(c) = self.conns.get(&conn)
                && let Role::Inbound(from) = c.role()
            {
                self.out.event(Event::HandshakeTimedOut { from });
            }
            self.close(conn);
        }
        if let Some(next) = joining(&self.joining).handshakes.values().min().copied() {
            self.out.arm(TimerId::Handshake, next);
        }
    }

    /// Every known peer that is not a neighbour or being dialed, in a fresh random order:
    /// uniform, or under a policy that picks by degree, a weighted order (below).
    pub(super) fn refresh_candidates(&mut self) {
        let mut c: Vec<NodeAddr> = self
            .known
            .iter()
            .filter(|p| {
                !self.neighbours.contains_key(p) && !joining(&self.joining).dialing.contains(p)
            })
            .collect();
        if self.ctx.cfg.topology.by_degree() {
            let degrees = &joining(&self.joining).degrees;
            let weight = |p: &NodeAddr| f64::from(degrees.get(p).copied().unwrap_or(0).max(1));
            let order = self.rng.with(|rng| weighted_order(rng, c, weight));
            self.known.set_candidates(order);
        } else {
            self.rng.with(|rng| c.shuffle(rng));
            self.known.set_candidates(c);
        }
    }

    /// Dial candidates until the free slots are spoken for.
    pub(super) fn fill(&mut self) {
        if !self.bootstrapped {
            return;
        }
        while self.wants_dial() && joining(&self.joining).dialing.len() < HANDSHAKES_MAX {
            let Some(peer) = self.known.pop_candidate() else {
                break;
            };
            let taken = self.neighbours.contains_key(&peer)
                || joining(&self.joining).dialing.contains(&peer);
            if taken || peer == self.addr {
                continue;
            }
            self.joining_mut().dialing.insert(peer);
            self.out.push(Output::Connect { addr: peer });
        }
    }
}

/// `items` in a random order where each next item is drawn with probability proportional to
/// its weight among those left: weighted sampling without replacement (Efraimidis and
/// Spirakis, 2006). Each item gets the key `ln(u) / w` for a uniform `u` in (0, 1]; the
/// largest key comes first. Returned last-first, as `candidates` is popped from the end.
/// Ties (probability zero) fall back to address order, so the order is a function of the RNG.
fn weighted_order(
    rng: &mut impl Rng,
    items: Vec<NodeAddr>,
    weight: impl Fn(&NodeAddr) -> f64,
) -> Vec<NodeAddr> {
    let mut keyed: Vec<(f64, NodeAddr)> = items
        .into_iter()
        .map(|p| {
            // 1 - [0, 1) is (0, 1]: ln never sees 0.
            let u: f64 = 1.0 - rng.random::<f64>();
            (u.ln() / weight(&p), p)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The first pick of `weighted_order` is proportional to weight: with weights 1, 2 and 7,
    /// 20 000 draws give frequencies within 0.015 of 0.1, 0.2 and 0.7 (the standard error of
    /// a frequency near 0.5 is 0.0035, so this is over 4 of them).
    #[test]
    fn weighted_order_draws_first_in_proportion_to_weight() {
        let a = |port| NodeAddr::new([127, 0, 0, 1].into(), port);
        let items = [a(1), a(2), a(3)];
        let weight = |p: &NodeAddr| [1.0, 2.0, 7.0][usize::from(p.port) - 1];
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut firsts = [0u32; 3];
        let draws = 20_000;
        for _ in 0..draws {
            let order = weighted_order(&mut rng, items.to_vec(), weight);
            assert_eq!(order.len(), 3);
            let first = order.last().copied().unwrap_or(a(1));
            firsts[usize::from(first.port) - 1] += 1;
        }
        for (got, want) in firsts.iter().zip([0.1, 0.2, 0.7]) {
            let f = f64::from(*got) / f64::from(draws);
            assert!((f - want).abs() < 0.015, "{firsts:?}");
        }
    }
}
