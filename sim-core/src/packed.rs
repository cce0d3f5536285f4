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
//! Every [`RESTART`]th entry is coded against 0.0.0.0:0 instead (a restart point), and the
//! buffer starts with the byte offset of each restart point (a `u32` each), so that the entry
//! at an index is found by decoding at most `RESTART` entries, and an address by a binary
//! search over the restart points and a short scan: a peer pops its candidates by index, and
//! a decode from the start cost a fifth of a million-peer bootstrap. An insert or a removal
//! decodes the set and codes it again (a handful a peer, after its lists are merged).

use crate::addr::NodeAddr;

/// The set. Iterates, and numbers its entries, in address order, as a
/// [`VecSet<NodeAddr>`](crate::vecmap::VecSet) does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackedAddrs {
    /// The restart offsets (`u32`, little-endian, one per `RESTART` entries), then the
    /// entries.
    bytes: Vec<u8>,
    len: u32,
}

/// Entries between two restart points.
pub const RESTART: usize = 32;

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
    index: usize,
    len: usize,
}

impl Iterator for Iter<'_> {
    type Item = NodeAddr;

    fn next(&mut self) -> Option<NodeAddr> {
        if self.index >= self.len {
            return None;
        }
        let prev = if self.index.is_multiple_of(RESTART) {
            ZERO
        } else {
            self.prev
        };
        let a = take(self.bytes, &mut self.pos, prev)?;
        self.prev = a;
        self.index += 1;
        Some(a)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.index.min(self.len);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

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
        let mut entries: Vec<NodeAddr> = Vec::new();
        for a in sorted {
            if entries.last().is_none_or(|p| *p < a) {
                entries.push(a);
            }
        }
        Self::encode(&entries)
    }

    /// Codes `entries` (strictly increasing).
    fn encode(entries: &[NodeAddr]) -> Self {
        let restarts = entries.len().div_ceil(RESTART);
        let mut bytes = vec![0u8; 4 * restarts];
        bytes.reserve_exact(3 * entries.len() + 8);
        let mut prev = ZERO;
        for (i, &a) in entries.iter().enumerate() {
            if i.is_multiple_of(RESTART) {
                // Offsets fit: a set in memory is far below 4 GiB.
                let at = u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
                bytes[4 * (i / RESTART)..][..4].copy_from_slice(&at);
                prev = ZERO;
            }
            put(&mut bytes, prev, a);
            prev = a;
        }
        bytes.shrink_to_fit();
        PackedAddrs {
            bytes,
            // Sets hold what a peer can know, far below 2^32.
            len: u32::try_from(entries.len()).unwrap_or(u32::MAX),
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the entries and restart offsets take.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Where restart point `r` starts.
    fn restart_at(&self, r: usize) -> usize {
        self.bytes
            .get(4 * r..4 * r + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(self.bytes.len(), |b| u32::from_le_bytes(b) as usize)
    }

    /// The entries in address order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from_restart(0)
    }

    /// The entries from restart point `r` on.
    fn iter_from_restart(&self, r: usize) -> Iter<'_> {
        Iter {
            bytes: &self.bytes,
            pos: self.restart_at(r),
            prev: ZERO,
            index: r * RESTART,
            len: self.len(),
        }
    }

    /// `Ok(index)` of `a`, or `Err(index)` where it would go.
    pub fn position(&self, a: &NodeAddr) -> Result<usize, usize> {
        let restarts = self.len().div_ceil(RESTART);
        let first = |r: usize| self.iter_from_restart(r).next();
        // The last restart point whose entry is at most `a` (binary search).
        let (mut lo, mut hi) = (0, restarts);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if first(mid).is_some_and(|e| e <= *a) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let r = lo.saturating_sub(1);
        for (k, e) in self.iter_from_restart(r).take(RESTART).enumerate() {
            if e >= *a {
                let i = r * RESTART + k;
                return if e == *a { Ok(i) } else { Err(i) };
            }
        }
        Err((r * RESTART + RESTART).min(self.len()))
    }

    /// Whether `a` is there.
    pub fn contains(&self, a: &NodeAddr) -> bool {
        self.position(a).is_ok()
    }

    /// The entry at `index`.
    pub fn get_index(&self, index: usize) -> Option<NodeAddr> {
        if index >= self.len() {
            return None;
        }
        self.iter_from_restart(index / RESTART).nth(index % RESTART)
    }

    /// Adds `a`: `Err` with the index it took, or `Ok` with its index if it was there (as
    /// [`PackedAddrs::position`] would have said before).
    pub fn insert(&mut self, a: NodeAddr) -> Result<usize, usize> {
        let i = match self.position(&a) {
            Ok(i) => return Ok(i),
            Err(i) => i,
        };
        let mut entries: Vec<NodeAddr> = self.iter().collect();
        entries.insert(i, a);
        self.recode(&entries);
        Err(i)
    }

    /// Removes `a`; false if it was not there.
    pub fn remove(&mut self, a: &NodeAddr) -> bool {
        let Ok(i) = self.position(a) else {
            return false;
        };
        let mut entries: Vec<NodeAddr> = self.iter().collect();
        entries.remove(i);
        self.recode(&entries);
        true
    }

    /// Codes `entries` in place of the current ones, in the same allocation when it has room
    /// or can grow where it is (a fresh one per change fragmented a million peers' heap).
    fn recode(&mut self, entries: &[NodeAddr]) {
        let fresh = Self::encode(entries);
        self.bytes.clear();
        self.bytes.reserve_exact(fresh.bytes.len());
        self.bytes.extend_from_slice(&fresh.bytes);
        if self.bytes.capacity() > self.bytes.len() + 32 {
            self.bytes.shrink_to_fit();
        }
        self.len = fresh.len;
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
        // Three bytes an entry; a restart point adds its four-byte offset and an absolute
        // address (about four bytes more than a delta).
        let restarts = peers.len().div_ceil(RESTART);
        assert!(
            s.heap_bytes() <= 3 * peers.len() + 8 * restarts,
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
