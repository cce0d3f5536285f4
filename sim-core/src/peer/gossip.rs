//! Gossip: originate the next message every interval, deliver each message once (dedup by
//! its PBKDF2 digest), and forward it to every neighbour but the one it came from.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::PeerNode;
use crate::addr::NodeAddr;
use crate::digest::DigestKey;
use crate::limits::SEEN_ENTRIES_MAX;
use crate::node::{Event, TimerId};
use crate::time::{Duration, Time};
use crate::wire::{Gossip, Message, Timestamp};

/// The digests of messages already delivered, bounded in time and size.
#[derive(Debug)]
pub(super) struct SeenSet {
    ttl: Duration,
    // Look-ups only; expiry walks `order`, so the set's iteration order never matters.
    keys: HashSet<DigestKey>,
    /// Insertion order, which is also expiry order.
    order: VecDeque<(Time, DigestKey)>,
}

impl SeenSet {
    pub(super) fn new(ttl: Duration) -> Self {
        SeenSet {
            ttl,
            keys: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `key`; false if it was already there.
    pub(super) fn insert(&mut self, key: DigestKey, now: Time) -> bool {
        if !self.keys.insert(key) {
            return false;
        }
        if self.order.len() >= SEEN_ENTRIES_MAX
            && let Some((_, old)) = self.order.pop_front()
        {
            self.keys.remove(&old);
        }
        self.order.push_back((now, key));
        true
    }

    pub(super) fn expire(&mut self, now: Time) {
        while let Some(&(at, key)) = self.order.front() {
            if now.since(at) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.keys.remove(&key);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }
}

impl PeerNode {
    pub(super) fn originate_next(&mut self) {
        let body = format!("#{}", self.originated + 1);
        self.originate(body);
        if self.originated < self.cfg.gossip_count {
            self.out
                .arm(TimerId::Gossip, self.now + self.cfg.gossip_interval);
        }
    }

    pub(super) fn originate(&mut self, body: String) {
        self.originated += 1;
        let ts = Timestamp::at(self.now, self.cfg.wall_offset_micros);
        let message = Arc::new(Gossip {
            ts,
            origin: self.addr,
            body,
        });
        let key = self.memo.key(&message);
        self.seen.insert(key, self.now);
        let sent_to = self.flood(&message, None);
        let seq = self.originated;
        self.out.event(Event::GossipOriginated {
            message,
            seq,
            sent_to,
        });
    }

    pub(super) fn gossip_in(&mut self, from: NodeAddr, message: Arc<Gossip>) {
        let key = self.memo.key(&message);
        if !self.seen.insert(key, self.now) {
            self.out.event(Event::DuplicateDropped { message, from });
            return;
        }
        let forwarded_to = self.flood(&message, Some(from));
        self.out.event(Event::GossipDelivered {
            message,
            first_from: from,
            forwarded_to,
        });
    }

    /// Sends `message` to every connected neighbour except `except`; returns how many.
    fn flood(&mut self, message: &Arc<Gossip>, except: Option<NodeAddr>) -> usize {
        let mut sent = 0;
        for (peer, n) in &self.neighbours {
            if Some(*peer) == except {
                continue;
            }
            if let Some(conn) = n.conn {
                self.out.send(conn, Message::Gossip(Arc::clone(message)));
                sent += 1;
            }
        }
        sent
    }

    pub(super) fn sweep_seen(&mut self) {
        self.seen.expire(self.now);
        let next = self.now + self.cfg.seen_ttl;
        self.out.arm(TimerId::SeenSweep, next);
    }
}
