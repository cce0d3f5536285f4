//! A sorted set of addresses in about three bytes each: the known-peer table of a peer holds
//! ~130 of them, a million peers hold ~130 million, and at six bytes apiece that was the
//! largest part of a simulated peer.
//!
//! Entries are kept in address order, each coded against the one before it as one or two
//! LEB128 varints:
//! - same IP as the previous entry: `(port − previous port) << 1`;
//! - another IP: the IP difference `d` with its trailing zero bytes `z` split off,
//!   `(d >> 8z) << 3 | z << 1 | 1`, then the port. Addresses that differ in a middle octet
//!   only (127.X.Y.1, as simulated peers do) cost a byte for the IP.
//!
//! Look-ups decode from the start (the tables are small, and scanned bytes are contiguous);
//! an insert or a removal rewrites the entry after it and moves the tail once.

use crate::addr::NodeAddr;

/// The set. Iterates, and numbers its entries, in address order, as a
/// [`VecSet<NodeAddr>`](crate::vecmap::VecSet) does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackedAddrs {
    bytes: Vec<u8>,
    len: u32,
}

const ZERO: NodeAddr = NodeAddr::new(core::net::Ipv4Addr::UNSPECIFIED, 0);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The varint at `*pos`; `None` past the end (never, for bytes this module wrote).
fn take_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Appends `a` coded against `prev` (`prev < a`, or `prev` is [`ZERO`]).
fn put(out: &mut Vec<u8>, prev: NodeAddr, a: NodeAddr) {
    let (p, q) = (u32::from(prev.ip), u32::from(a.ip));
    if p == q {
        put_varint(out, u64::from(a.port.wrapping_sub(prev.port)) << 1);
    } else {
        let d = q.wrapping_sub(p);
        // d ≠ 0, so it has at most 3 trailing zero bytes.
        let z = (d.trailing_zeros() / 8).min(3);
        put_varint(
            out,
            (u64::from(d >> (8 * z)) << 3) | (u64::from(z) << 1) | 1,
        );
        put_varint(out, u64::from(a.port));
    }
}

/// The entry at `*pos`, coded against `prev`.
fn take(bytes: &[u8], pos: &mut usize, prev: NodeAddr) -> Option<NodeAddr> {
    let h = take_varint(bytes, pos)?;
    if h & 1 == 0 {
        let port = prev.port.wrapping_add(u16::try_from(h >> 1).ok()?);
        return Some(NodeAddr::new(prev.ip, port));
    }
    let z = ((h >> 1) & 3) as u32;
    let d = u32::try_from(h >> 3).ok()?.checked_shl(8 * z)?;
    let ip = u32::from(prev.ip).wrapping_add(d);
    let port = u16::try_from(take_varint(bytes, pos)?).ok()?;
    Some(NodeAddr::new(ip.into(), port))
}

/// The entries in order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    bytes: &'a [u8],
    pos: usize,
    prev: NodeAddr,
    left: u32,
}

impl Iterator for Iter<'_> {
    type Item = NodeAddr;

    fn next(&mut self) -> Option<NodeAddr> {
        if self.left == 0 {
            return None;
        }
        let a = take(self.bytes, &mut self.pos, self.prev)?;
        self.prev = a;
        self.left -= 1;
        Some(a)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Where an address is, or would go: its entry's index, the entry before it, and the byte
/// range of the entry at that index (empty at the end).
struct Spot {
    index: usize,
    found: bool,
    prev: NodeAddr,
    start: usize,
    end: usize,
    /// The entry at `index`, if any.
    at: Option<NodeAddr>,
}

impl PackedAddrs {
    /// An empty set (allocates nothing).
    pub const fn new() -> Self {
        PackedAddrs {
            bytes: Vec::new(),
            len: 0,
        }
    }

    /// The set of `sorted`, which must be strictly increasing (entries out of order or
    /// repeated are left out).
    pub fn from_sorted(sorted: impl IntoIterator<Item = NodeAddr>) -> Self {
        let mut s = PackedAddrs::new();
        let mut prev = None;
        for a in sorted {
            if prev.is_some_and(|p| p >= a) {
                continue;
            }
            put(&mut s.bytes, prev.unwrap_or(ZERO), a);
            s.len += 1;
            prev = Some(a);
        }
        s.bytes.shrink_to_fit();
        s
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the entries take.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The entries in address order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            bytes: &self.bytes,
            pos: 0,
            prev: ZERO,
            left: self.len,
        }
    }

    fn spot(&self, a: &NodeAddr) -> Spot {
        let (mut pos, mut prev) = (0, ZERO);
        for index in 0..self.len() {
            let start = pos;
            let Some(e) = take(&self.bytes, &mut pos, prev) else {
                break;
            };
            if e >= *a {
                return Spot {
                    index,
                    found: e == *a,
                    prev,
                    start,
                    end: pos,
                    at: Some(e),
                };
            }
            prev = e;
        }
        Spot {
            index: self.len(),
            found: false,
            prev,
            start: pos,
            end: pos,
            at: None,
        }
    }

    /// `Ok(index)` of `a`, or `Err(index)` where it would go.
    pub fn position(&self, a: &NodeAddr) -> Result<usize, usize> {
        let s = self.spot(a);
        if s.found { Ok(s.index) } else { Err(s.index) }
    }

    /// Whether `a` is there.
    pub fn contains(&self, a: &NodeAddr) -> bool {
        self.spot(a).found
    }

    /// The entry at `index`.
    pub fn get_index(&self, index: usize) -> Option<NodeAddr> {
        self.iter().nth(index)
    }

    /// Adds `a`: `Err` with the index it took, or `Ok` with its index if it was there (as
    /// [`PackedAddrs::position`] would have said before).
    pub fn insert(&mut self, a: NodeAddr) -> Result<usize, usize> {
        let s = self.spot(&a);
        if s.found {
            return Ok(s.index);
        }
        let mut code = Vec::with_capacity(16);
        put(&mut code, s.prev, a);
        if let Some(next) = s.at {
            put(&mut code, a, next);
        }
        let grow = code.len() - (s.end - s.start);
        self.bytes.reserve_exact(grow);
        self.bytes.splice(s.start..s.end, code);
        self.len += 1;
        Err(s.index)
    }

    /// Removes `a`; false if it was not there.
    pub fn remove(&mut self, a: &NodeAddr) -> bool {
        let s = self.spot(a);
        if !s.found {
            return false;
        }
        // The entry after `a` is coded against `a`: code it against `a`'s predecessor.
        let mut end = s.end;
        let mut code = Vec::new();
        if let Some(next) = take(&self.bytes, &mut end, *a) {
            put(&mut code, s.prev, next);
        } else {
            end = s.end;
        }
        self.bytes.splice(s.start..end, code);
        self.len -= 1;
        if self.bytes.capacity() > self.bytes.len() + self.bytes.len() / 4 + 8 {
            self.bytes.shrink_to_fit();
        }
        true
    }

    /// Gives back spare room.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn addr(ip: u32, port: u16) -> NodeAddr {
        NodeAddr::new(ip.into(), port)
    }

    /// Addresses in a few shapes: one IP and many ports, simulated 127.X.Y.1 blocks, any.
    fn any_addr() -> impl Strategy<Value = NodeAddr> {
        prop_oneof![
            (0u16..40).prop_map(|p| addr(0x7f00_0001, 5000 + p)),
            (0u32..300, 0u16..3000).prop_map(|(b, p)| addr(0x7f00_0001 | (b << 8), 5000 + p)),
            (any::<u32>(), any::<u16>()).prop_map(|(i, p)| addr(i, p)),
            Just(addr(0, 0)),
            Just(addr(u32::MAX, u16::MAX)),
        ]
    }

    proptest! {
        /// Inserts and removals in any order leave the set a `BTreeSet` would hold, numbered
        /// the same way.
        #[test]
        fn behaves_like_a_sorted_set(
            ops in prop::collection::vec((any::<bool>(), any_addr()), 0..300)
        ) {
            let mut s = PackedAddrs::new();
            let mut m = BTreeSet::new();
            for (add, a) in ops {
                if add {
                    let i = m.range(..a).count();
                    let want = if m.insert(a) { Err(i) } else { Ok(i) };
                    prop_assert_eq!(s.insert(a), want);
                } else {
                    prop_assert_eq!(s.remove(&a), m.remove(&a));
                }
                prop_assert_eq!(s.len(), m.len());
                prop_assert!(s.iter().eq(m.iter().copied()));
                let i = m.range(..a).count();
                prop_assert_eq!(s.position(&a), if m.contains(&a) { Ok(i) } else { Err(i) });
                prop_assert_eq!(s.get_index(i), m.iter().nth(i).copied());
            }
            prop_assert_eq!(PackedAddrs::from_sorted(m.iter().copied()), s);
        }
    }

    #[test]
    fn simulated_peers_take_about_three_bytes() {
        // 128 peers spread over 334 blocks of 3 000 ports, as a million simulated peers are.
        let peers: BTreeSet<NodeAddr> = (0..128u32)
            .map(|k| {
                let i = (k * 7_919 + k * k * 31) % 1_000_000;
                addr(0x7f00_0001 | ((i / 3000) << 8), 5000 + (i % 3000) as u16)
            })
            .collect();
        let s = PackedAddrs::from_sorted(peers.iter().copied());
        assert_eq!(s.len(), peers.len());
        assert!(
            s.heap_bytes() <= 3 * peers.len() + 8,
            "{} bytes",
            s.heap_bytes()
        );
    }

    #[test]
    fn out_of_order_input_is_left_out() {
        let s = PackedAddrs::from_sorted([addr(5, 1), addr(5, 1), addr(4, 9), addr(6, 0)]);
        assert_eq!(s.iter().collect::<Vec<_>>(), [addr(5, 1), addr(6, 0)]);
    }
}
