//! A node's `ChaCha8Rng`, held compactly.
//!
//! A `ChaCha8Rng` carries 256 bytes of buffered output; a node draws from its RNG only when it
//! starts, shuffles candidates or picks by weight, so a million simulated nodes would hold
//! 320 MB of buffers they rarely read. [`CompactRng`] keeps the key, the stream and the word
//! position instead (ChaCha is seekable) and rebuilds the generator for each use: the same
//! numbers, in the same order, as the generator it was made from.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A `ChaCha8Rng` as its key and word position, in 24 bytes.
#[derive(Clone, Debug)]
pub struct CompactRng {
    key: Key,
    /// The word position. ChaCha counts words in 128 bits; 2^64 words take centuries to
    /// draw at a billion a second, so 64 hold any position a run reaches.
    pos: u64,
}

/// How the generator was made.
#[derive(Clone, Debug)]
enum Key {
    /// `ChaCha8Rng::seed_from_u64` of this (how the simulator seeds every node): 8 bytes.
    Seed64(u64),
    /// Any other generator: its seed and stream.
    Full(Box<([u8; 32], u64)>),
}

impl CompactRng {
    /// Holds `rng` where it stands.
    pub fn new(rng: &ChaCha8Rng) -> Self {
        CompactRng {
            key: Key::Full(Box::new((rng.get_seed(), rng.get_stream()))),
            pos: u64::try_from(rng.get_word_pos()).unwrap_or(u64::MAX),
        }
    }

    /// `ChaCha8Rng::seed_from_u64(seed)`, held as its 8-byte seed.
    pub fn seed_from_u64(seed: u64) -> Self {
        CompactRng {
            key: Key::Seed64(seed),
            pos: 0,
        }
    }

    /// Runs `f` with the generator, then remembers how far it got.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        let mut rng = match &self.key {
            Key::Seed64(seed) => ChaCha8Rng::seed_from_u64(*seed),
            Key::Full(k) => {
                let mut rng = ChaCha8Rng::from_seed(k.0);
                rng.set_stream(k.1);
                rng
            }
        };
        rng.set_word_pos(u128::from(self.pos));
        let r = f(&mut rng);
        self.pos = u64::try_from(rng.get_word_pos()).unwrap_or(u64::MAX);
        r
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;
    use rand::seq::SliceRandom;

    use super::*;

    #[test]
    fn a_compact_rng_draws_what_the_generator_would() {
        let mut plain = ChaCha8Rng::seed_from_u64(42);
        let _: u32 = plain.random();
        let mut compact = CompactRng::new(&plain);
        for round in 0..200usize {
            let mut a: Vec<u32> = (0..round % 37).map(|x| x as u32).collect();
            let mut b = a.clone();
            a.shuffle(&mut plain);
            compact.with(|r| b.shuffle(r));
            assert_eq!(a, b, "shuffle in round {round}");
            let x: (u64, f64, u32) = (plain.random(), plain.random(), plain.random());
            let y: (u64, f64, u32) = compact.with(|r| (r.random(), r.random(), r.random()));
            assert_eq!(x, y, "draws in round {round}");
            let n = 1 + round % 1000;
            assert_eq!(
                plain.random_range(0..n),
                compact.with(|r| r.random_range(0..n))
            );
        }
    }

    #[test]
    fn a_compact_rng_from_a_u64_seed_draws_what_seed_from_u64_would() {
        assert_eq!(std::mem::size_of::<CompactRng>(), 24);
        let mut plain = ChaCha8Rng::seed_from_u64(0xfeed);
        let mut compact = CompactRng::seed_from_u64(0xfeed);
        for round in 0..100usize {
            let mut a: Vec<usize> = (0..round % 29).collect();
            let mut b = a.clone();
            a.shuffle(&mut plain);
            compact.with(|r| b.shuffle(r));
            assert_eq!(a, b, "shuffle in round {round}");
            let x: u64 = plain.random();
            assert_eq!(x, compact.with(|r| r.random::<u64>()));
        }
    }
}
