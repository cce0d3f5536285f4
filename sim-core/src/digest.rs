//! The dedup digest: PBKDF2-HMAC-SHA512 over a gossip message's identity, salt
//! `ASSIGNMENT_1`. A pure function, so a process computes it once per distinct message and
//! shares the result among all its nodes through a [`DigestMemo`].

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

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

/// What the memo has done so far.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct MemoStats {
    /// Digests computed (distinct messages, plus recomputations after the memo was full).
    pub computed: u64,
    /// Look-ups answered from the memo.
    pub hits: u64,
    /// Microseconds spent hashing, when a stopwatch was given.
    pub hashing_micros: u64,
}

/// Digests of the messages this process has seen, shared by every node in it.
pub struct DigestMemo {
    iterations: u32,
    stopwatch: Option<Stopwatch>,
    inner: Mutex<MemoInner>,
    /// Signalled when a digest being computed is ready.
    ready: Condvar,
}

#[derive(Default)]
struct MemoInner {
    // Look-ups, and a `retain` that only drops entries when full: its order never reaches
    // any output. `None` while a thread is computing that digest.
    keys: HashMap<Arc<Gossip>, Option<DigestKey>>,
    stats: MemoStats,
}

impl DigestMemo {
    /// A memo computing digests with `iterations` rounds.
    pub fn new(iterations: u32) -> Arc<Self> {
        Arc::new(DigestMemo {
            iterations,
            stopwatch: None,
            inner: Mutex::default(),
            ready: Condvar::new(),
        })
    }

    /// A memo that also measures hashing time with `stopwatch`.
    pub fn with_stopwatch(iterations: u32, stopwatch: Stopwatch) -> Arc<Self> {
        Arc::new(DigestMemo {
            iterations,
            stopwatch: Some(stopwatch),
            inner: Mutex::default(),
            ready: Condvar::new(),
        })
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The seen-set key of `g`, computed at most once per distinct message while it is held.
    /// A thread asking for a message another thread is hashing waits for that result, so a
    /// swarm of peers in one process hashes each message once, not once per peer.
    pub fn key(&self, g: &Arc<Gossip>) -> DigestKey {
        {
            let mut inner = self.lock();
            loop {
                match inner.keys.get(g).copied() {
                    Some(Some(k)) => {
                        inner.stats.hits += 1;
                        return k;
                    }
                    Some(None) => {
                        inner = self.ready.wait(inner).unwrap_or_else(|p| p.into_inner());
                    }
                    None => {
                        if inner.keys.len() >= DIGEST_MEMO_ENTRIES_MAX {
                            inner.keys.retain(|_, k| k.is_none());
                        }
                        inner.keys.insert(Arc::clone(g), None);
                        break;
                    }
                }
            }
        }
        // Hash outside the lock so that other messages are not held up.
        let start = self.stopwatch.as_ref().map(|s| s());
        let key = DigestKey::of(&digest(&g.identity(), self.iterations));
        let spent = match (&self.stopwatch, start) {
            (Some(s), Some(t0)) => s().saturating_sub(t0),
            _ => 0,
        };
        let mut inner = self.lock();
        inner.keys.insert(Arc::clone(g), Some(key));
        inner.stats.computed += 1;
        inner.stats.hashing_micros += spent;
        drop(inner);
        self.ready.notify_all();
        key
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
    fn digest_matches_the_reference_pbkdf2() {
        // python3 -c "import hashlib;print(hashlib.pbkdf2_hmac('sha512',
        //   b'1.5:127.0.0.1:5000:hi', b'ASSIGNMENT_1', 1000).hex()[:32])"
        let d = digest("1.5:127.0.0.1:5000:hi", 1000);
        assert_eq!(hex(&d[..16]), REFERENCE_1000_PREFIX);
    }

    const REFERENCE_1000_PREFIX: &str = "0a88f828b746398d5fafe8b4eaefbd3d";

    #[test]
    fn memo_hashes_each_distinct_message_once() {
        let memo = DigestMemo::new(2);
        let g = |body: &str| {
            Arc::new(Gossip {
                ts: Timestamp::parse("1").unwrap(),
                origin: "1.2.3.4:5".parse().unwrap(),
                body: body.into(),
            })
        };
        let (a1, a2, b) = (g("a"), g("a"), g("b"));
        assert_eq!(memo.key(&a1), memo.key(&a2));
        assert_ne!(memo.key(&a1), memo.key(&b));
        assert_eq!(memo.stats().computed, 2);
        assert_eq!(memo.stats().hits, 2);
    }
}
