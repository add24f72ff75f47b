//! The seeded generator behind jitter: xorshift64* (Vigna, "An experimental exploration of
//! Marsaglia's xorshift generators", 2016). Small, fast and reproducible, which is all jitter
//! needs; no global RNG, so a chaos run replays with the same seed.

/// A xorshift64* generator. Its state is never zero (zero is a fixed point of xorshift).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed`. The seed goes through splitmix64 first, so nearby seeds (0, 1, 2,
    /// connection numbers) give unrelated sequences.
    pub(crate) fn new(seed: u64) -> Self {
        let state = splitmix64(seed);
        // splitmix64 is a bijection, so exactly one seed maps to zero; any fixed non-zero value
        // will do for it.
        Rng(if state == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            state
        })
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number uniform in `0..n` (0 when `n` is 0), by multiply-shift: no modulo bias worth
    /// speaking of for jitter.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// One step of splitmix64: a bijective mixer used to derive seeds.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_different_seed_different_sequence() {
        let a: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..8)
            .scan(Rng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_spreads() {
        let mut rng = Rng::new(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let x = rng.below(10);
            assert!(x < 10);
            seen[x as usize] += 1;
        }
        // Each bucket expects 1000; a broken generator (constant, or stuck low bits) fails this.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn zero_state_is_avoided() {
        for seed in 0..1000 {
            assert_ne!(Rng::new(seed).0, 0);
        }
    }
}
