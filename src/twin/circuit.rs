//! The auto-reset circuit of ESP32 DevKit boards: two transistors between the USB-UART's DTR
//! and RTS and the chip's EN and GPIO0, as a pure state machine over the line levels and time.
//!
//! With `true` for an asserted line (pyserial's `port.dtr = True`, the pin driven low):
//!
//! | DTR | RTS | EN   | GPIO0 |
//! |-----|-----|------|-------|
//! | off | off | high | high  |
//! | on  | on  | high | high  |
//! | off | on  | low  | high  |
//! | on  | off | high | low   |
//!
//! EN low holds the chip in reset. When EN rises the chip leaves reset [`EN_SETTLE`] later and
//! latches GPIO0 then: low, it enters the ROM's serial loader; high, it boots from flash. The
//! board's EN capacitor delays the rise; the twin's delay is longer than a board's, to cover the
//! round trips between two line changes that a local port makes together and a remote one
//! (RFC 2217) makes one acknowledgement apart: esptool's classic reset passes DTR and RTS both
//! asserted on its way from "EN low" to "GPIO0 low", for one round trip.

use std::time::Duration;

/// From EN rising to the chip leaving reset and latching GPIO0.
pub(crate) const EN_SETTLE: Duration = Duration::from_millis(125);

/// What the chip does when the lines change or time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pins {
    /// EN fell: the chip stops, silent, until released.
    Hold,
    /// The chip left reset: into the serial loader if `download` (GPIO0 low), else booting.
    Release { download: bool },
}

/// Where the chip is, as the circuit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Out of reset (or never reset through the lines).
    Running,
    /// EN low.
    Held,
    /// EN high since `since`, the chip still in reset.
    Rising { since: Duration },
}

/// The circuit between DTR/RTS and EN/GPIO0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AutoReset {
    dtr: bool,
    rts: bool,
    state: State,
}

impl Default for AutoReset {
    fn default() -> Self {
        Self { dtr: false, rts: false, state: State::Running }
    }
}

impl AutoReset {
    fn en_low(&self) -> bool {
        self.rts && !self.dtr
    }

    fn gpio0_low(&self) -> bool {
        self.dtr && !self.rts
    }

    /// DTR and RTS are now at these levels (at `now`, on any monotonic clock).
    pub(crate) fn lines(&mut self, dtr: bool, rts: bool, now: Duration) -> Option<Pins> {
        self.dtr = dtr;
        self.rts = rts;
        match (self.state, self.en_low()) {
            (State::Running, true) => {
                self.state = State::Held;
                Some(Pins::Hold)
            }
            (State::Rising { .. }, true) => {
                self.state = State::Held;
                None
            }
            (State::Held, false) => {
                self.state = State::Rising { since: now };
                None
            }
            _ => None,
        }
    }

    /// Time passed: the chip leaves reset once EN has been high for [`EN_SETTLE`].
    pub(crate) fn tick(&mut self, now: Duration) -> Option<Pins> {
        match self.state {
            State::Rising { since } if now.saturating_sub(since) >= EN_SETTLE => {
                self.state = State::Running;
                Some(Pins::Release { download: self.gpio0_low() })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// esptool's ClassicReset over RFC 2217, as pyserial spaces it (each line change waits
    /// for its acknowledgement, polled every 50 ms; `set_rts` writes DTR again after RTS).
    #[test]
    fn classic_reset_over_rfc2217_enters_the_loader() {
        let mut circuit = AutoReset::default();
        assert_eq!(circuit.lines(true, false, ms(0)), None); // open: DTR on
        assert_eq!(circuit.lines(true, true, ms(50)), None); // open: RTS on
        assert_eq!(circuit.lines(false, true, ms(100)), Some(Pins::Hold)); // IO0 high, EN low
        assert_eq!(circuit.lines(false, true, ms(150)), None);
        assert_eq!(circuit.lines(false, true, ms(200)), None);
        assert_eq!(circuit.tick(ms(300)), None, "held while EN is low");
        assert_eq!(circuit.lines(true, true, ms(300)), None); // EN rises, IO0 still high
        assert_eq!(circuit.tick(ms(349)), None);
        assert_eq!(circuit.lines(true, false, ms(350)), None); // IO0 low
        assert_eq!(circuit.lines(true, false, ms(400)), None);
        assert_eq!(circuit.tick(ms(420)), None);
        assert_eq!(circuit.tick(ms(425)), Some(Pins::Release { download: true }));
        assert_eq!(circuit.lines(false, false, ms(500)), None); // IO0 released: already latched
        assert_eq!(circuit.tick(ms(1000)), None);
    }

    /// esptool's and esp-idf-monitor's hard reset: RTS pulsed with DTR off.
    #[test]
    fn hard_reset_boots_from_flash() {
        let mut circuit = AutoReset::default();
        assert_eq!(circuit.lines(false, true, ms(0)), Some(Pins::Hold));
        assert_eq!(circuit.lines(false, false, ms(5)), None);
        assert_eq!(circuit.tick(ms(5) + EN_SETTLE), Some(Pins::Release { download: false }));
    }

    /// EN falling again before the chip left reset keeps it in reset (no second Hold).
    #[test]
    fn a_short_release_is_no_reset() {
        let mut circuit = AutoReset::default();
        assert_eq!(circuit.lines(false, true, ms(0)), Some(Pins::Hold));
        assert_eq!(circuit.lines(true, true, ms(10)), None);
        assert_eq!(circuit.lines(false, true, ms(20)), None);
        assert_eq!(circuit.tick(ms(500)), None);
        assert_eq!(circuit.lines(false, false, ms(500)), None);
        assert_eq!(circuit.tick(ms(500) + EN_SETTLE), Some(Pins::Release { download: false }));
    }

    /// pyserial opening with both lines asserted, then esp-idf-monitor's dance before its reset,
    /// touch neither EN nor the running chip.
    #[test]
    fn opening_the_port_does_not_reset() {
        let mut circuit = AutoReset::default();
        for (dtr, rts) in [(true, false), (true, true), (true, false), (false, false)] {
            assert_eq!(circuit.lines(dtr, rts, ms(0)), None);
        }
        assert_eq!(circuit.tick(ms(1000)), None);
    }
}
