//! The numbers a campaign draws its fault points from: SplitMix64 (Steele, Lea and Flood,
//! "Fast splittable pseudorandom number generators", 2014), written out here so that a seed gives
//! the same points on every machine and in every version of the dependencies.

/// A stream of numbers from a seed.
#[derive(Clone, Debug)]
pub(crate) struct Seeded(u64);

impl Seeded {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`, every one equally likely (Lemire's multiply-shift, with the
    /// rejection that removes its bias).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        let Some(range) = max.checked_add(1) else { return self.next_u64() };
        let threshold = range.wrapping_neg() % range;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(range);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64s() {
        // The reference implementation's first outputs for seed 1234567.
        let mut seeded = Seeded::new(1_234_567);
        let first: Vec<u64> = (0..3).map(|_| seeded.next_u64()).collect();
        assert_eq!(first, [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]);
    }

    #[test]
    fn numbers_stay_in_range_and_reach_both_ends() {
        let mut seeded = Seeded::new(7);
        let drawn: Vec<u64> = (0..2000).map(|_| seeded.up_to(9)).collect();
        assert!(drawn.iter().all(|n| *n <= 9));
        assert!(drawn.contains(&0) && drawn.contains(&9));
        assert_eq!(Seeded::new(3).up_to(0), 0);
        let _ = Seeded::new(3).up_to(u64::MAX);
    }
}
