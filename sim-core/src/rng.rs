//! A node's `ChaCha8Rng`, held compactly.
//!
//! A `ChaCha8Rng` carries 256 bytes of buffered output; a node draws from its RNG only when it
//! starts, shuffles candidates or picks by weight, so a million simulated nodes would hold
//! 320 MB of buffers they rarely read. [`CompactRng`] keeps the key, the stream and the word
//! position instead (ChaCha is seekable) and rebuilds the generator for each use: the same
//! numbers, in the same order, as the generator it was made from.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A `ChaCha8Rng` as its seed, stream and position.
#[derive(Clone, Debug)]
pub struct CompactRng {
    seed: [u8; 32],
    stream: u64,
    /// The word position, split so that the struct needs no 16-byte alignment.
    pos_lo: u64,
    pos_hi: u64,
}

impl CompactRng {
    /// Holds `rng` where it stands.
    pub fn new(rng: &ChaCha8Rng) -> Self {
        let pos = rng.get_word_pos();
        CompactRng {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            pos_lo: pos as u64,
            pos_hi: (pos >> 64) as u64,
        }
    }

    /// Runs `f` with the generator, then remembers how far it got.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(u128::from(self.pos_lo) | (u128::from(self.pos_hi) << 64));
        let r = f(&mut rng);
        let pos = rng.get_word_pos();
        self.pos_lo = pos as u64;
        self.pos_hi = (pos >> 64) as u64;
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
}
