//! The peers a peer knows of, and the order in which it will try the ones it is not linked
//! to.
//!
//! The candidates are nearly all of the known peers, shuffled: kept as addresses they would
//! double the known table (6 bytes each, ~128 of each per peer). So while every candidate is
//! a known peer and at most [`MASK_BITS`] peers are known, the candidates are kept as a mask
//! over the known table (which of its entries are candidates) and, in pop order, one byte
//! per candidate: its rank among the marked entries. Inserting a known peer moves the mask,
//! not the ranks. Anything else (a candidate leaves the known table, the table outgrows the
//! mask, candidates are appended) turns the ranks back into addresses first, so the peers
//! popped are always those a plain list of addresses would give.

use crate::addr::NodeAddr;
use crate::packed::PackedAddrs;
use crate::vecmap::VecSet;

/// The known table: packed (about 3 bytes a peer) at rest, a plain sorted vector while a
/// peer list is merged in (one look-up per listed peer would otherwise decode it each time).
#[derive(Debug)]
enum Set {
    Plain(VecSet<NodeAddr>),
    Packed(PackedAddrs),
}

impl Set {
    fn len(&self) -> usize {
        match self {
            Set::Plain(s) => s.len(),
            Set::Packed(s) => s.len(),
        }
    }

    fn contains(&self, a: &NodeAddr) -> bool {
        match self {
            Set::Plain(s) => s.contains(a),
            Set::Packed(s) => s.contains(a),
        }
    }

    fn position(&self, a: &NodeAddr) -> Result<usize, usize> {
        match self {
            Set::Plain(s) => s.position(a),
            Set::Packed(s) => s.position(a),
        }
    }

    fn get_index(&self, i: usize) -> Option<NodeAddr> {
        match self {
            Set::Plain(s) => s.get_index(i).copied(),
            Set::Packed(s) => s.get_index(i),
        }
    }

    /// Adds `a`: `Err` with the index it took, or `Ok` with its index if it was there.
    fn insert(&mut self, a: NodeAddr) -> Result<usize, usize> {
        match self {
            Set::Plain(s) => {
                let pos = s.position(&a);
                if pos.is_err() {
                    s.insert(a);
                }
                pos
            }
            Set::Packed(s) => s.insert(a),
        }
    }

    fn remove(&mut self, a: &NodeAddr) -> bool {
        match self {
            Set::Plain(s) => s.remove(a),
            Set::Packed(s) => s.remove(a),
        }
    }

    fn iter(&self) -> impl Iterator<Item = NodeAddr> + '_ {
        let (plain, packed) = match self {
            Set::Plain(s) => (Some(s.iter().copied()), None),
            Set::Packed(s) => (None, Some(s.iter())),
        };
        plain
            .into_iter()
            .flatten()
            .chain(packed.into_iter().flatten())
    }
}

/// Known peers the mask covers.
const MASK_BITS: usize = 256;
const WORDS: usize = MASK_BITS / 64;

#[derive(Debug)]
enum Candidates {
    /// `ranks[k]` is the rank, among the known entries marked in `mask`, of the candidate
    /// popped `len - k`th; every marked entry is named by exactly one rank.
    Ranks { mask: [u64; WORDS], ranks: Vec<u8> },
    /// Candidates as addresses, popped from the end.
    Addrs(Vec<NodeAddr>),
}

/// The known peers (sorted) and the candidates to dial (in a fixed order).
#[derive(Debug)]
pub(super) struct Known {
    set: Set,
    candidates: Candidates,
}

impl Default for Known {
    fn default() -> Self {
        Known {
            set: Set::Packed(PackedAddrs::new()),
            candidates: Candidates::Addrs(Vec::new()),
        }
    }
}

impl Known {
    pub(super) fn contains(&self, a: &NodeAddr) -> bool {
        self.set.contains(a)
    }

    pub(super) fn len(&self) -> usize {
        self.set.len()
    }

    /// Known peers in address order.
    pub(super) fn iter(&self) -> impl Iterator<Item = NodeAddr> + '_ {
        self.set.iter()
    }

    /// Holds the table plainly, for many look-ups and inserts in a row; [`Known::pack`]
    /// packs it again.
    pub(super) fn unpack(&mut self) {
        if let Set::Packed(p) = &self.set {
            self.set = Set::Plain(VecSet::from_sorted(p.iter()));
        }
    }

    /// Packs the table (about 3 bytes a peer).
    pub(super) fn pack(&mut self) {
        if let Set::Plain(s) = &self.set {
            self.set = Set::Packed(PackedAddrs::from_sorted(s.iter().copied()));
        }
    }

    /// Adds `a`; false if it was known already.
    pub(super) fn insert(&mut self, a: NodeAddr) -> bool {
        if self.set.len() + 1 > MASK_BITS {
            self.spell_out();
        }
        let Err(pos) = self.set.insert(a) else {
            return false;
        };
        if let Candidates::Ranks { mask, .. } = &mut self.candidates {
            insert_zero(mask, pos);
        }
        true
    }

    /// Adds every peer of `sorted` (increasing, none known yet), as that many
    /// [`Known::insert`]s would, in one merge while the table is plain and its candidates
    /// are addresses (a long peer list; otherwise one by one).
    pub(super) fn insert_new_sorted(&mut self, sorted: Vec<NodeAddr>) {
        if self.set.len() + sorted.len() > MASK_BITS {
            self.spell_out();
        }
        match (&mut self.set, &self.candidates) {
            (Set::Plain(s), Candidates::Addrs(_)) => s.extend_sorted(sorted),
            _ => {
                for a in sorted {
                    self.insert(a);
                }
            }
        }
    }

    /// Forgets `a`; false if it was not known. A candidate stays a candidate (as an address).
    pub(super) fn remove(&mut self, a: &NodeAddr) -> bool {
        let Ok(pos) = self.set.position(a) else {
            return false;
        };
        if let Candidates::Ranks { mask, .. } = &self.candidates
            && bit(mask, pos)
        {
            self.spell_out();
        }
        if let Candidates::Ranks { mask, .. } = &mut self.candidates {
            remove_bit(mask, pos);
        }
        self.set.remove(a)
    }

    /// The candidates from now on: `order`, popped from the end.
    pub(super) fn set_candidates(&mut self, order: Vec<NodeAddr>) {
        self.candidates = self.ranks_of(&order).unwrap_or_else(|| {
            let mut order = order;
            order.shrink_to_fit();
            Candidates::Addrs(order)
        });
    }

    /// Appends `more` to the candidates (popped before the others).
    pub(super) fn extend_candidates(&mut self, more: Vec<NodeAddr>) {
        self.spell_out();
        if let Candidates::Addrs(v) = &mut self.candidates {
            v.extend(more);
        }
    }

    /// The next candidate that is still known (a candidate forgotten since is passed over).
    pub(super) fn pop_candidate(&mut self) -> Option<NodeAddr> {
        match &mut self.candidates {
            Candidates::Addrs(v) => {
                while let Some(a) = v.pop() {
                    if self.set.contains(&a) {
                        return Some(a);
                    }
                }
                None
            }
            // A rank names a known entry by construction.
            Candidates::Ranks { mask, ranks } => {
                let r = ranks.pop()?;
                let a = select(mask, usize::from(r)).and_then(|pos| self.set.get_index(pos));
                debug_assert!(a.is_some(), "every rank names a known peer");
                a
            }
        }
    }

    /// `order` as ranks, if every entry is a distinct known peer and the mask covers them.
    fn ranks_of(&self, order: &[NodeAddr]) -> Option<Candidates> {
        if self.set.len() > MASK_BITS {
            return None;
        }
        // One pass over the table, not one decode per candidate.
        let known: Vec<NodeAddr> = self.set.iter().collect();
        let mut mask = [0u64; WORDS];
        let mut positions = Vec::with_capacity(order.len());
        for a in order {
            let pos = known.binary_search(a).ok()?;
            if bit(&mask, pos) {
                return None;
            }
            mask[pos / 64] |= 1 << (pos % 64);
            positions.push(pos);
        }
        let ranks = positions
            .into_iter()
            // Below MASK_BITS = 256 marked entries, a rank fits a byte.
            .map(|pos| u8::try_from(rank(&mask, pos)).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Candidates::Ranks { mask, ranks })
    }

    /// Turns ranks into addresses (while the known table still holds every candidate).
    fn spell_out(&mut self) {
        if let Candidates::Ranks { mask, ranks } = &self.candidates {
            // One pass over the table, not one decode per rank.
            let marked: Vec<NodeAddr> = self
                .set
                .iter()
                .enumerate()
                .filter(|&(p, _)| bit(mask, p))
                .map(|(_, a)| a)
                .collect();
            let addrs = ranks
                .iter()
                .filter_map(|&r| marked.get(usize::from(r)).copied())
                .collect();
            self.candidates = Candidates::Addrs(addrs);
        }
    }
}

fn bit(mask: &[u64; WORDS], pos: usize) -> bool {
    pos < MASK_BITS && mask[pos / 64] & (1 << (pos % 64)) != 0
}

/// Marked entries before `pos`.
fn rank(mask: &[u64; WORDS], pos: usize) -> usize {
    let (w, b) = (pos / 64, pos % 64);
    let below: u32 = mask[..w].iter().map(|x| x.count_ones()).sum();
    let part = if b == 0 {
        0
    } else {
        (mask[w] & (u64::MAX >> (64 - b))).count_ones()
    };
    (below + part) as usize
}

/// The position of the marked entry of rank `r`.
fn select(mask: &[u64; WORDS], mut r: usize) -> Option<usize> {
    for (w, &word) in mask.iter().enumerate() {
        let c = word.count_ones() as usize;
        if r < c {
            let mut x = word;
            for _ in 0..r {
                x &= x - 1;
            }
            return Some(64 * w + x.trailing_zeros() as usize);
        }
        r -= c;
    }
    None
}

/// An unmarked entry comes in at `pos`: marks at or after it move up one (the last bit
/// falls off; callers keep the table below `MASK_BITS`).
fn insert_zero(mask: &mut [u64; WORDS], pos: usize) {
    if pos >= MASK_BITS {
        return;
    }
    let first = pos / 64;
    let mut carry = 0;
    for (w, word) in mask.iter_mut().enumerate().skip(first) {
        let x = *word;
        let out = x >> 63;
        *word = if w == first {
            let low = x & ((1u64 << (pos % 64)) - 1);
            low | ((x & !((1u64 << (pos % 64)) - 1)) << 1)
        } else {
            (x << 1) | carry
        };
        carry = out;
    }
}

/// The entry at `pos` leaves: marks after it move down one.
fn remove_bit(mask: &mut [u64; WORDS], pos: usize) {
    if pos >= MASK_BITS {
        return;
    }
    let first = pos / 64;
    for w in first..WORDS {
        let x = mask[w];
        let next_low = if w + 1 < WORDS { mask[w + 1] & 1 } else { 0 };
        mask[w] = if w == first {
            let keep = (1u64 << (pos % 64)) - 1;
            (x & keep) | ((x >> 1) & !keep) | (next_low << 63)
        } else {
            (x >> 1) | (next_low << 63)
        };
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The known table and candidates as plain collections: what `Known` must behave as.
    #[derive(Default)]
    struct Model {
        set: VecSet<NodeAddr>,
        candidates: Vec<NodeAddr>,
    }

    impl Model {
        /// The next candidate still known; forgotten ones are passed over.
        fn pop_known(&mut self) -> Option<NodeAddr> {
            while let Some(c) = self.candidates.pop() {
                if self.set.contains(&c) {
                    return Some(c);
                }
            }
            None
        }
    }

    fn addr(i: u16) -> NodeAddr {
        NodeAddr::new([127, 0, (i >> 8) as u8, 1].into(), 1000 + (i & 0xff))
    }

    proptest! {
        /// Whatever is inserted, removed, shuffled in or appended, `Known` pops the same
        /// candidates and knows the same peers as the plain model.
        #[test]
        fn known_behaves_like_a_set_and_a_list(
            ops in prop::collection::vec((0u8..6, 0u16..600, any::<u64>()), 0..400)
        ) {
            let mut k = Known::default();
            let mut m = Model::default();
            for (op, x, salt) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(k.insert(addr(x)), m.set.insert(addr(x))),
                    2 => prop_assert_eq!(k.remove(&addr(x)), m.set.remove(&addr(x))),
                    3 => {
                        // Mostly known peers in a salted order, now and then a stranger.
                        let mut order: Vec<NodeAddr> = m
                            .set
                            .iter()
                            .copied()
                            .filter(|a| (u64::from(a.port) ^ salt) % 3 != 0)
                            .collect();
                        order.sort_by_key(|a| (u64::from(a.port) * 2654435761) ^ salt);
                        if salt % 11 == 0 {
                            order.push(addr(x));
                        }
                        k.set_candidates(order.clone());
                        m.candidates = order;
                    }
                    4 => {
                        let more = vec![addr(x), addr(x / 2)];
                        k.extend_candidates(more.clone());
                        m.candidates.extend(more);
                    }
                    _ => prop_assert_eq!(k.pop_candidate(), m.pop_known()),
                }
                prop_assert_eq!(k.len(), m.set.len());
                prop_assert!(k.iter().eq(m.set.iter().copied()));
            }
            while let Some(c) = m.pop_known() {
                prop_assert_eq!(k.pop_candidate(), Some(c));
            }
            prop_assert_eq!(k.pop_candidate(), None);
        }
    }

    #[test]
    fn candidates_drawn_from_the_known_cost_a_byte_each() {
        let mut k = Known::default();
        for i in 0..128 {
            k.insert(addr(i));
        }
        let order: Vec<NodeAddr> = (0..128).rev().map(addr).collect();
        k.set_candidates(order);
        assert!(matches!(&k.candidates, Candidates::Ranks { ranks, .. } if ranks.len() == 128));
        k.insert(addr(500));
        assert!(
            matches!(&k.candidates, Candidates::Ranks { .. }),
            "an insert keeps ranks"
        );
        assert_eq!(k.pop_candidate(), Some(addr(0)));
        assert_eq!(k.pop_candidate(), Some(addr(1)));
    }

    #[test]
    fn mask_shifts_move_the_marks_across_words() {
        let mut m = [0u64; WORDS];
        for p in [0, 63, 64, 127, 200] {
            m[p / 64] |= 1 << (p % 64);
        }
        insert_zero(&mut m, 63);
        let marked: Vec<usize> = (0..4).filter_map(|r| select(&m, r)).collect();
        assert_eq!(marked, [0, 64, 65, 128]);
        assert_eq!(select(&m, 4), Some(201));
        remove_bit(&mut m, 1);
        assert_eq!(
            (0..5).filter_map(|r| select(&m, r)).collect::<Vec<_>>(),
            [0, 63, 64, 127, 200]
        );
        assert_eq!(rank(&m, 127), 3);
    }
}
