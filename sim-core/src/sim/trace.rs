//! The trace: every node event and world event of a run, in order, as a digest that two runs
//! can be compared by, and as text when asked for.
//!
//! The digest is SHA-256 over a compact binary record of each event: the time step since the
//! previous record, the node, and the event's fields (addresses as 6 bytes, numbers as
//! varints, a gossip message by its memo ordinal once its identity was recorded at
//! origination). Formatting every event as text cost a fifth of a run; this costs a few
//! bytes of hashing. The record is a function of the event and its time, so equal runs give
//! equal digests and a run that differs in any event gives another, with SHA-256's
//! guarantees. Text lines (`TIME NODE DESCRIPTION`) are written only to a `--trace FILE`.

use core::fmt::Write as _;
use std::io::Write;

use sha2::{Digest as _, Sha256};

use super::WorldEvent;
use crate::addr::NodeAddr;
use crate::digest::DigestMemo;
use crate::node::{Event, RemovalReason};
use crate::time::Time;
use crate::wire::{Gossip, RefuseReason};

/// Bytes gathered before they are fed to the hash.
const BUFFER_BYTES: usize = 1 << 16;

pub(super) struct Trace {
    hash: Sha256,
    buf: Vec<u8>,
    last: Time,
    text: Option<Box<dyn Write>>,
    line: String,
}

impl Trace {
    pub(super) fn new() -> Self {
        Trace {
            hash: Sha256::new(),
            buf: Vec::with_capacity(BUFFER_BYTES + 256),
            last: Time::ZERO,
            text: None,
            line: String::new(),
        }
    }

    pub(super) fn set_text(&mut self, out: Box<dyn Write>) {
        self.text = Some(out);
    }

    /// Hex SHA-256 of the records so far.
    pub(super) fn digest(&self) -> String {
        let mut h = self.hash.clone();
        h.update(&self.buf);
        crate::digest::hex(&h.finalize())
    }

    pub(super) fn flush(&mut self) {
        if let Some(out) = self.text.as_mut() {
            // The trace file is a by-product; a full disk must not stop the run.
            let _ = out.flush();
        }
    }

    fn step(&mut self, now: Time) {
        let dt = now.0.saturating_sub(self.last.0);
        self.last = now;
        self.varint(dt);
        if self.buf.len() >= BUFFER_BYTES {
            self.hash.update(&self.buf);
            self.buf.clear();
        }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn addr(&mut self, a: NodeAddr) {
        self.buf.extend_from_slice(&a.ip.octets());
        self.buf.extend_from_slice(&a.port.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A message by its ordinal; a message this memo never numbered by its identity.
    fn gossip(&mut self, memo: &DigestMemo, g: &Gossip) {
        match memo.cached_ordinal(g) {
            Some(ord) => {
                self.buf.push(0);
                self.varint(ord);
            }
            None => {
                self.buf.push(1);
                self.bytes(g.identity().as_bytes());
            }
        }
    }

    /// Records that `node` (index `index`, listening at `addr`) emitted `e` at `now`.
    pub(super) fn event(
        &mut self,
        now: Time,
        index: u32,
        addr: NodeAddr,
        e: &Event,
        memo: &DigestMemo,
    ) {
        self.step(now);
        self.varint(u64::from(index));
        self.encode(e, memo);
        if let Some(out) = self.text.as_mut() {
            self.line.clear();
            let _ = write!(self.line, "{now} {addr} {e}");
            // See flush: the trace file is a by-product.
            let _ = writeln!(out, "{}", self.line);
        }
    }

    /// Records a world event.
    pub(super) fn world(&mut self, now: Time, e: &WorldEvent) {
        self.step(now);
        // Node indices are varints from 0; a world record is marked by the largest.
        self.varint(u64::MAX);
        let text = e.to_string();
        self.bytes(text.as_bytes());
        if let Some(out) = self.text.as_mut() {
            let _ = writeln!(out, "{now} world {text}");
        }
    }

    fn encode(&mut self, e: &Event, memo: &DigestMemo) {
        let u = |x: usize| x as u64;
        match e {
            Event::SeedStarted => self.buf.push(0),
            Event::PeerStarted { capacity } => {
                self.buf.push(1);
                self.varint(u(*capacity));
            }
            Event::SeedsChosen { seeds } => {
                self.buf.push(2);
                self.varint(u(seeds.len()));
                for s in seeds {
                    self.addr(*s);
                }
            }
            Event::SeedUnreachable {
                seed,
                attempt,
                retry_in_s,
            } => {
                self.buf.push(3);
                self.addr(*seed);
                self.varint(u64::from(*attempt));
                match retry_in_s {
                    Some(s) => {
                        self.buf.push(1);
                        self.buf.extend_from_slice(&s.to_bits().to_le_bytes());
                    }
                    None => self.buf.push(0),
                }
            }
            Event::SeedLost { seed } => {
                self.buf.push(4);
                self.addr(*seed);
            }
            Event::Registered { seed } => {
                self.buf.push(5);
                self.addr(*seed);
            }
            Event::PeerListReceived {
                seed,
                entries,
                known,
            } => {
                self.buf.push(6);
                self.addr(*seed);
                self.varint(u(*entries));
                self.varint(u(*known));
            }
            Event::NeighbourAdded { peer, degree } => {
                self.buf.push(7);
                self.addr(*peer);
                self.varint(u(*degree));
            }
            Event::NeighbourRemoved {
                peer,
                degree,
                reason,
            } => {
                self.buf.push(8);
                self.addr(*peer);
                self.varint(u(*degree));
                self.buf.push(match reason {
                    RemovalReason::Dead => 0,
                    RemovalReason::HandshakeTimeout => 1,
                });
            }
            Event::ConnectionRefused { peer, reason } => {
                self.buf.push(9);
                self.addr(*peer);
                self.buf.push(refuse_code(*reason));
            }
            Event::RefusedHello { peer, reason } => {
                self.buf.push(10);
                self.addr(*peer);
                self.buf.push(refuse_code(*reason));
            }
            Event::GossipOriginated {
                message,
                seq,
                sent_to,
            } => {
                // The identity in full once, so that ordinals stand for known messages.
                self.buf.push(11);
                self.bytes(message.identity().as_bytes());
                self.gossip(memo, message);
                self.varint(u64::from(*seq));
                self.varint(u(*sent_to));
            }
            Event::GossipDelivered {
                message,
                first_from,
                forwarded_to,
            } => {
                self.buf.push(12);
                self.gossip(memo, message);
                self.addr(*first_from);
                self.varint(u(*forwarded_to));
            }
            Event::DuplicateDropped { message, from } => {
                self.buf.push(13);
                self.gossip(memo, message);
                self.addr(*from);
            }
            Event::LivenessMissed { peer, misses } => {
                self.buf.push(14);
                self.addr(*peer);
                self.varint(u64::from(*misses));
            }
            Event::PeerDeclaredDead { peer } => {
                self.buf.push(15);
                self.addr(*peer);
            }
            Event::DeadNodeReported { dead, seed } => {
                self.buf.push(16);
                self.addr(*dead);
                self.addr(*seed);
            }
            Event::DeadNodeNotice { dead, reporter } => {
                self.buf.push(17);
                self.addr(*dead);
                self.addr(*reporter);
            }
            Event::PeerRegistered { peer, refreshed } => {
                self.buf.push(18);
                self.addr(*peer);
                self.buf.push(u8::from(*refreshed));
            }
            Event::DegreeRecorded { peer, degree } => {
                self.buf.push(19);
                self.addr(*peer);
                self.varint(u64::from(*degree));
            }
            Event::DegreeAdvertised { degree, seeds } => {
                self.buf.push(20);
                self.varint(u(*degree));
                self.varint(u(*seeds));
            }
            Event::PeerListServed {
                entries,
                registered,
            } => {
                self.buf.push(21);
                self.varint(u(*entries));
                self.varint(u(*registered));
            }
            Event::PeerRemovedBySeed {
                dead,
                reporter,
                forwarded_to,
            } => {
                self.buf.push(22);
                self.addr(*dead);
                self.addr(*reporter);
                self.varint(u(*forwarded_to));
            }
            Event::RegistrationRefused { peer, from, reason } => {
                self.buf.push(31);
                self.addr(*peer);
                self.addr(*from);
                self.bytes(reason.as_str().as_bytes());
            }
            Event::SeedRefusedRegistration { seed, reason } => {
                self.buf.push(32);
                self.addr(*seed);
                self.bytes(reason.as_str().as_bytes());
            }
            Event::DeadReportChecking { dead, reporter } => {
                self.buf.push(28);
                self.addr(*dead);
                self.addr(*reporter);
            }
            Event::DeadReportDismissed {
                dead,
                reporter,
                dismissed,
            } => {
                self.buf.push(29);
                self.addr(*dead);
                self.addr(*reporter);
                self.varint(u64::from(*dismissed));
            }
            Event::DeadReportIgnored {
                dead,
                reporter,
                why,
            } => {
                self.buf.push(30);
                self.addr(*dead);
                self.addr(*reporter);
                self.bytes(why.as_bytes());
            }
            Event::DeadNodeAlreadyRemoved { dead, reporter } => {
                self.buf.push(23);
                self.addr(*dead);
                self.addr(*reporter);
            }
            Event::MalformedFrame {
                from,
                error,
                closed,
            } => {
                self.buf.push(24);
                self.addr(*from);
                self.bytes(error.to_string().as_bytes());
                self.buf.push(u8::from(*closed));
            }
            Event::TooManyFromIp { from, limit } => {
                self.buf.push(34);
                self.addr(*from);
                self.varint(u(*limit));
            }
            Event::IdleTimedOut { from } => {
                self.buf.push(33);
                self.addr(*from);
            }
            Event::HandshakeTimedOut { from } => {
                self.buf.push(25);
                self.addr(*from);
            }
            Event::TooManyConnections { from, limit } => {
                self.buf.push(26);
                self.addr(*from);
                self.varint(u(*limit));
            }
            Event::UnexpectedMessage { from, kind } => {
                self.buf.push(27);
                self.addr(*from);
                self.bytes(kind.as_bytes());
            }
        }
    }
}

fn refuse_code(r: RefuseReason) -> u8 {
    match r {
        RefuseReason::Full => 0,
        RefuseReason::Duplicate => 1,
        RefuseReason::SelfConnection => 2,
        RefuseReason::Busy => 3,
    }
}
