//! The chip's time since reset, as ESP-IDF's log timestamps show it.

/// The milliseconds ESP-IDF stamps its lines with: they restart at every reset and advance
/// with what the chip does (printing at 115200 baud, hashing and loading segments), plus a
/// little jitter drawn from the seed, so a seeded clock gives the same log every time.
#[derive(Clone, Debug)]
pub struct BootClock {
    micros: u64,
    rng: u64,
}

impl BootClock {
    /// A clock at 0 µs whose jitter follows from `seed` (the same seed, the same timings).
    pub fn new(seed: u64) -> Self {
        Self { micros: 0, rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// Milliseconds since the last reset.
    pub(crate) fn now_ms(&self) -> u32 {
        u32::try_from(self.micros / 1000).unwrap_or(u32::MAX)
    }

    /// The chip resets: the count starts again.
    pub fn restart(&mut self) {
        self.micros = 0;
    }

    /// Time passes: `micros` and up to 0.5 ms of jitter.
    pub(crate) fn advance_us(&mut self, micros: u64) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.micros = self.micros.saturating_add(micros + self.rng % 500);
    }
}

impl Default for BootClock {
    fn default() -> Self {
        Self::new(0)
    }
}
