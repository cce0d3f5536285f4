//! The dedup digest: PBKDF2-HMAC-SHA512 over a gossip message's identity, salt
//! `ASSIGNMENT_1`. A pure function, so a process computes it once per distinct message and
//! shares the result among all its nodes through a [`DigestMemo`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use pbkdf2::pbkdf2_hmac;
use sha2::Sha512;

use crate::limits::DIGEST_MEMO_ENTRIES_MAX;
use crate::wire::Gossip;

/// The salt of the reference implementation.
pub const SALT: &[u8] = b"ASSIGNMENT_1";
/// The reference implementation's iteration count.
pub const ITERATIONS_DEFAULT: u32 = 100_000;

/// PBKDF2-HMAC-SHA512 of `identity`, 64 bytes.
pub fn digest(identity: &str, iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    pbkdf2_hmac::<Sha512>(identity.as_bytes(), SALT, iterations.max(1), &mut out);
    out
}

/// The reference implementation's digest of a gossip body (`--wire reference`): one SHA-512
/// state is fed `SALT ‖ body`, then, `iterations` times, the digest of everything fed so far
/// (the state is not reset between rounds, so this is neither PBKDF2 nor `sha512(sha512(..))`).
/// The body is hashed as received, padding included.
pub fn reference_digest(body: &[u8], iterations: u32) -> [u8; 64] {
    use sha2::Digest;
    let mut state = Sha512::new();
    state.update(SALT);
    state.update(body);
    let mut out = [0u8; 64];
    for _ in 0..iterations.max(1) {
        out.copy_from_slice(&state.clone().finalize());
        state.update(out);
    }
    out
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key a seen-set stores: the first 8 bytes of the digest. Two distinct messages share a
/// key with probability 2^-64 per pair, far below anything a run can observe, and a seen-set
/// entry costs 8 bytes instead of 64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DigestKey(pub u64);

impl DigestKey {
    /// The key of a full digest.
    pub fn of(d: &[u8; 64]) -> Self {
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        DigestKey(u64::from_be_bytes(first))
    }
}

/// A driver-supplied reading of a monotonic clock in microseconds, used only to report how
/// long hashing took. It never influences protocol behaviour or the trace.
pub type Stopwatch = Box<dyn Fn() -> u64 + Send + Sync>;

/// Somewhere to run digest jobs in the background: a driver's worker threads. `sim-core`
/// never starts a thread; a driver that has a pool hands it to [`DigestMemo::with_pool`], and
/// [`DigestMemo::prefetch`] then hashes messages before anyone asks for them.
pub trait DigestPool: Send + Sync {
    /// Run `job` on some worker, soon. Jobs may run in any order, or on the asking thread.
    fn spawn(&self, job: Box<dyn FnOnce() + Send>);
}

/// What the memo has done so far.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct MemoStats {
    /// Digests computed (distinct messages, plus recomputations after the memo was full).
    pub computed: u64,
    /// Look-ups answered from the memo.
    pub hits: u64,
    /// Microseconds spent hashing (summed over threads), when a stopwatch was given.
    pub hashing_micros: u64,
    /// Digests started ahead of need by [`DigestMemo::prefetch`].
    pub prefetched: u64,
}

/// The dedup handle of a message in one memo: a dense number per distinct digest, given in the
/// order the memo first resolves each digest. Two messages get the same ordinal exactly when
/// their digests' [`DigestKey`]s are equal, so a seen-set of ordinals is a seen-set of digests,
/// a few bits an entry.
///
/// A memo keeps the ordinals of its last [`DIGEST_MEMO_ENTRIES_MAX`] / 2 or more digests;
/// a message older than that gets a fresh ordinal if it comes back, as if its seen-set
/// entries had expired.
pub type Ordinal = u64;

/// A message's memory of its ordinal in one memo (the memo's id with it), kept in the shared
/// allocation of the message so that peers receiving a forwarded copy skip the look-up.
/// It takes part in no comparison: two messages are equal when their fields are.
pub(crate) type MemoCell = crate::wire::Inert<OnceLock<(u32, Ordinal)>>;

/// Where a digest is.
#[derive(Clone, Copy)]
enum Slot {
    /// A prefetch job will compute it.
    Queued,
    /// A thread is computing it.
    Computing,
    Done(DigestKey),
}

/// Digests of the messages this process has seen, shared by every node in it; or, made with
/// [`DigestMemo::every_copy`], one node's own, which hashes every copy it is asked about.
pub struct DigestMemo {
    /// Tells this memo's ordinals from another's in a message's [`MemoCell`].
    id: u32,
    iterations: u32,
    /// Hash every look-up, remembering nothing but the ordinals (see
    /// [`DigestMemo::every_copy`]).
    every_copy: bool,
    /// What a message is known by (`--wire`): set once, before the first digest.
    identity: OnceLock<crate::wire::Wire>,
    stopwatch: Option<Stopwatch>,
    pool: Option<Arc<dyn DigestPool>>,
    inner: Mutex<MemoInner>,
    /// Signalled when a digest being computed is ready.
    ready: Condvar,
}

#[derive(Default)]
struct MemoInner {
    // Look-ups, and `retain`s that only drop entries when full: their order never reaches
    // any output.
    keys: HashMap<Arc<Gossip>, Slot>,
    /// The reference wire's digests by identity text: every forwarder re-stamps a message,
    /// and the copies that one text names are hashed once.
    by_text: HashMap<String, DigestKey>,
    ordinals: HashMap<DigestKey, Ordinal>,
    next_ordinal: Ordinal,
    stats: MemoStats,
}

/// Memo ids, for [`MemoCell`]s. Never reaches any output.
static NEXT_MEMO_ID: AtomicU32 = AtomicU32::new(1);

impl DigestMemo {
    /// A memo computing digests with `iterations` rounds.
    pub fn new(iterations: u32) -> Arc<Self> {
        Self::build(iterations, None, None, false)
    }

    /// A memo for one node that hashes every copy it is asked about, duplicates included,
    /// as the reference's peer does (a real run's `--hash-per-peer`): no digest is kept, only
    /// the ordinals of the digests, which are the node's seen-set handles. So each node pays
    /// for its own hashing, and nothing is shared with the other nodes of the process.
    pub fn every_copy(iterations: u32) -> Arc<Self> {
        Self::build(iterations, None, None, true)
    }

    /// A memo that also measures hashing time with `stopwatch`.
    pub fn with_stopwatch(iterations: u32, stopwatch: Stopwatch) -> Arc<Self> {
        Self::build(iterations, Some(stopwatch), None, false)
    }

    /// A memo that measures hashing time and computes prefetched digests on `pool`.
    pub fn with_pool(
        iterations: u32,
        stopwatch: Option<Stopwatch>,
        pool: Arc<dyn DigestPool>,
    ) -> Arc<Self> {
        Self::build(iterations, stopwatch, Some(pool), false)
    }

    fn build(
        iterations: u32,
        stopwatch: Option<Stopwatch>,
        pool: Option<Arc<dyn DigestPool>>,
        every_copy: bool,
    ) -> Arc<Self> {
        Arc::new(DigestMemo {
            id: NEXT_MEMO_ID.fetch_add(1, Ordering::Relaxed),
            iterations,
            every_copy,
            identity: OnceLock::new(),
            stopwatch,
            pool,
            inner: Mutex::default(),
            ready: Condvar::new(),
        })
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Makes this memo know messages as `wire` does: on the line wire by the PBKDF2 digest of
    /// `TS:IP:PORT:BODY`, on the reference wire by the original's digest of the body as
    /// received ([`crate::refwire::reference_identity`]). Call it before the first digest;
    /// false if the memo already knows messages another way.
    pub fn set_identity(&self, wire: crate::wire::Wire) -> bool {
        *self.identity.get_or_init(|| wire) == wire
    }

    fn identity(&self) -> crate::wire::Wire {
        *self.identity.get_or_init(crate::wire::Wire::default)
    }

    /// The digest key of `g`, hashed here.
    fn hash(&self, g: &Gossip) -> DigestKey {
        match self.identity() {
            crate::wire::Wire::Line => DigestKey::of(&digest(&g.identity(), self.iterations)),
            crate::wire::Wire::Reference => {
                let text = crate::refwire::reference_identity(g);
                if self.every_copy {
                    return DigestKey::of(&reference_digest(text.as_bytes(), self.iterations));
                }
                if let Some(&k) = self.lock().by_text.get(text.as_ref()) {
                    return k;
                }
                // Two threads may hash one text at once: a cost, never a wrong key.
                let key = DigestKey::of(&reference_digest(text.as_bytes(), self.iterations));
                let mut inner = self.lock();
                if inner.by_text.len() >= DIGEST_MEMO_ENTRIES_MAX {
                    inner.by_text.clear();
                }
                inner.by_text.insert(text.into_owned(), key);
                key
            }
        }
    }

    /// Says that `g` will be asked for soon: with a pool, its digest is computed there in the
    /// background, so that the asker finds it ready. Without one, nothing happens. The result
    /// is the same either way; only when the work is done changes.
    pub fn prefetch(self: &Arc<Self>, g: Gossip) {
        let Some(pool) = &self.pool else { return };
        let g = Arc::new(g);
        {
            let mut inner = self.lock();
            if inner.keys.contains_key(&g) {
                return;
            }
            Self::make_room(&mut inner);
            inner.keys.insert(Arc::clone(&g), Slot::Queued);
            inner.stats.prefetched += 1;
        }
        let memo = Arc::clone(self);
        pool.spawn(Box::new(move || memo.compute_queued(&g)));
    }

    /// A pool job: computes `g` unless someone has taken it meanwhile.
    fn compute_queued(&self, g: &Arc<Gossip>) {
        {
            let mut inner = self.lock();
            match inner.keys.get_mut(g) {
                Some(slot @ Slot::Queued) => *slot = Slot::Computing,
                Some(Slot::Computing | Slot::Done(_)) | None => return,
            }
        }
        self.compute(g);
    }

    /// Hashes `g` (marked `Computing` by the caller) outside the lock and publishes it.
    fn compute(&self, g: &Arc<Gossip>) -> DigestKey {
        let start = self.stopwatch.as_ref().map(|s| s());
        let key = self.hash(g);
        let spent = match (&self.stopwatch, start) {
            (Some(s), Some(t0)) => s().saturating_sub(t0),
            _ => 0,
        };
        let mut inner = self.lock();
        inner.keys.insert(Arc::clone(g), Slot::Done(key));
        inner.stats.computed += 1;
        inner.stats.hashing_micros += spent;
        drop(inner);
        self.ready.notify_all();
        key
    }

    /// When full, forget the digests that are done (those being computed stay).
    fn make_room(inner: &mut MemoInner) {
        if inner.keys.len() >= DIGEST_MEMO_ENTRIES_MAX {
            inner.keys.retain(|_, s| !matches!(s, Slot::Done(_)));
        }
    }

    /// The seen-set key of `g`, computed at most once per distinct message while it is held.
    /// A thread asking for a message another thread is hashing waits for that result, so a
    /// swarm of peers in one process hashes each message once, not once per peer. A message
    /// still queued for the pool is hashed by the asker at once.
    pub fn key(&self, g: &Arc<Gossip>) -> DigestKey {
        if self.every_copy {
            return self.hash_copy(g);
        }
        {
            let mut inner = self.lock();
            loop {
                match inner.keys.get(g).copied() {
                    Some(Slot::Done(k)) => {
                        inner.stats.hits += 1;
                        return k;
                    }
                    Some(Slot::Computing) => {
                        inner = self.ready.wait(inner).unwrap_or_else(|p| p.into_inner());
                    }
                    Some(Slot::Queued) | None => {
                        Self::make_room(&mut inner);
                        inner.keys.insert(Arc::clone(g), Slot::Computing);
                        break;
                    }
                }
            }
        }
        self.compute(g)
    }

    /// Hashes `g` without looking in or filling the memo (an [`DigestMemo::every_copy`] memo).
    fn hash_copy(&self, g: &Gossip) -> DigestKey {
        let key = self.hash(g);
        self.lock().stats.computed += 1;
        key
    }

    /// The dedup handle of `g` ([`Ordinal`]): from the message itself when this memo has seen
    /// this allocation before (every forwarded copy in a simulation), else by its digest. An
    /// [`DigestMemo::every_copy`] memo hashes `g` every time.
    pub fn ordinal(&self, g: &Arc<Gossip>) -> Ordinal {
        if !self.every_copy
            && let Some(&(id, ord)) = g.memo.0.get()
            && id == self.id
        {
            return ord;
        }
        let key = self.key(g);
        let ord = {
            let mut inner = self.lock();
            if inner.ordinals.len() >= DIGEST_MEMO_ENTRIES_MAX {
                let keep_from = inner.next_ordinal - (DIGEST_MEMO_ENTRIES_MAX / 2) as Ordinal;
                inner.ordinals.retain(|_, o| *o >= keep_from);
            }
            let next = inner.next_ordinal;
            let ord = *inner.ordinals.entry(key).or_insert(next);
            if ord == next {
                inner.next_ordinal += 1;
            }
            ord
        };
        if !self.every_copy {
            // Another memo may hold the cell; then this one takes the look-up path every time.
            let _ = g.memo.0.set((self.id, ord));
        }
        ord
    }

    /// The ordinal `g` carries for this memo, if it has been given one (no look-up).
    pub fn cached_ordinal(&self, g: &Gossip) -> Option<Ordinal> {
        g.memo
            .0
            .get()
            .and_then(|&(id, ord)| (id == self.id).then_some(ord))
    }

    /// Counters so far.
    pub fn stats(&self) -> MemoStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoInner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Timestamp;

    #[test]
    fn the_reference_digest_matches_the_python_original() {
        // Vectors of the original's `secure_hash` (salt `ASSIGNMENT_1`, 100 000 rounds of one
        // running SHA-512 state), computed with CPython.
        let cases = [
            (
                "message 1",
                "b6b74e42d8f685f1951056141715f4bcacbbedbd652ee642d202aaebad23136d\
                 5cbf9eb269c27adde38990d8c380020381eef09d92f8c745f28cb0ee8a93c8c1",
            ),
            (
                "",
                "8a991432490a552166d5297c1251728b33e012284895a7d368ae134c944274d3\
                 b2749e84faac81edeea8b3881203e5b3f5530027148428b113865132c257358d",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                hex(&reference_digest(body.as_bytes(), 100_000)),
                want,
                "{body:?}"
            );
        }
        // The padding is part of what is hashed.
        let padded = format!("message 1{}", " ".repeat(973));
        assert_eq!(
            hex(&reference_digest(padded.as_bytes(), 100_000)),
            "718096c435758f482fc71e963de45569b89e452ff9e312563ac6b17ea45022e9\
             05fa65d7b4645b1a80b00f602f238c401b645a3b0bd075e18e0247f623754b58"
        );
    }

    #[test]
    fn digest_matches_the_reference_pbkdf2() {
        // python3 -c "import hashlib;print(hashlib.pbkdf2_hmac('sha512',
        //   b'1.5:127.0.0.1:5000:hi', b'ASSIGNMENT_1', 1000).hex()[:32])"
        let d = digest("1.5:127.0.0.1:5000:hi", 1000);
        assert_eq!(hex(&d[..16]), REFERENCE_1000_PREFIX);
    }

    const REFERENCE_1000_PREFIX: &str = "0a88f828b746398d5fafe8b4eaefbd3d";

    /// A message of one origin and time with `body`.
    fn g(body: &str) -> Arc<Gossip> {
        Arc::new(Gossip::new(
            Timestamp::parse("1").unwrap(),
            "1.2.3.4:5".parse().unwrap(),
            body.into(),
        ))
    }

    #[test]
    fn memo_hashes_each_distinct_message_once() {
        let memo = DigestMemo::new(2);
        let (a1, a2, b) = (g("a"), g("a"), g("b"));
        assert_eq!(memo.key(&a1), memo.key(&a2));
        assert_ne!(memo.key(&a1), memo.key(&b));
        assert_eq!(memo.stats().computed, 2);
        assert_eq!(memo.stats().hits, 2);
    }

    #[test]
    fn an_every_copy_memo_hashes_each_copy_and_still_numbers_digests() {
        let memo = DigestMemo::every_copy(2);
        let (a1, a2, b) = (g("a"), g("a"), g("b"));
        let first = memo.ordinal(&a1);
        assert_eq!(
            memo.ordinal(&a1),
            first,
            "the same allocation, hashed again"
        );
        assert_eq!(
            memo.ordinal(&a2),
            first,
            "an equal copy has the same ordinal"
        );
        assert_ne!(memo.ordinal(&b), first);
        assert_eq!(memo.stats().computed, 4, "every look-up hashed");
        assert_eq!(memo.stats().hits, 0);
        assert!(
            memo.cached_ordinal(&a1).is_none(),
            "nothing kept in the message"
        );
    }
}
