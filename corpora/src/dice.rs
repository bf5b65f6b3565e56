//! Seeded randomness for the generators. Everything random in a corpus comes from one
//! `ChaCha8Rng` stream through these helpers, so the same seed gives the same bytes.
//!
//! Ranges are drawn from raw `next_u64` by a widening multiply instead of `rand`'s
//! `gen_range`: the ChaCha8 stream is fixed by rand_chacha 0.3, but `rand`'s distribution
//! code is free to change between minor versions, and the committed corpora must not.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generators' source of choices.
pub(crate) struct Dice {
    rng: ChaCha8Rng,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Dice {
        Dice { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// A number in `0..n` (0 when `n` is 0). The bias of a widening multiply is below
    /// 2^-40 for the small `n` used here.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.rng.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// One element by weight: `(weight, item)`.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(usize, T)]) -> T {
        let total: usize = items.iter().map(|(w, _)| w).sum();
        let mut roll = self.below(total);
        for &(w, item) in items {
            if roll < w {
                return item;
            }
            roll -= w;
        }
        items[items.len() - 1].1
    }

    /// `n` lowercase hex digits.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n).map(|_| HEX[self.below(16)] as char).collect()
    }

    /// `n` letters and digits.
    pub(crate) fn alnum(&mut self, n: usize) -> String {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| ALNUM[self.below(ALNUM.len())] as char).collect()
    }

    /// `n` random bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        self.rng.fill_bytes(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_ranges_hold() {
        let (mut a, mut b) = (Dice::new(7), Dice::new(7));
        for n in [1usize, 2, 3, 10, 1000] {
            for _ in 0..200 {
                let x = a.below(n);
                assert_eq!(x, b.below(n));
                assert!(x < n);
            }
        }
        assert_eq!(a.below(0), 0);
        for _ in 0..100 {
            let x = a.between(5, 9);
            assert!((5..=9).contains(&x));
        }
        assert_eq!(a.between(4, 4), 4);
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let mut d = Dice::new(1);
        let items = [(0usize, "never"), (5, "a"), (0, "never2"), (1, "b")];
        for _ in 0..500 {
            let x = d.weighted(&items);
            assert!(x == "a" || x == "b");
        }
    }
}
