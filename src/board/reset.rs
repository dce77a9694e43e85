//! Reset strategies: how a board's EN and GPIO0 are driven from the host, as named sequences
//! of DTR/RTS changes (the same ones espflash and esptool use), chosen from the lab config or
//! from the USB bridge's VID:PID.
//!
//! On the usual auto-reset circuit (two transistors between DTR/RTS and EN/GPIO0), RTS asserted
//! with DTR released pulls EN low (chip in reset), DTR asserted with RTS released pulls GPIO0
//! low (download mode at the next boot). The USB-Serial-JTAG peripheral of newer chips reads
//! the same two lines over USB and needs its own order.

use std::io;
use std::time::Duration;

use espflash::connection::ResetBeforeOperation;
use serialport::{ClearBuffer, SerialPort};

/// Where a reset leaves the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResetMode {
    /// Boots from flash: the bootloader, then the app.
    App,
    /// Enters the ROM's serial loader (GPIO0 low at reset).
    Download,
}

/// How the host resets a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResetStrategy {
    /// DTR/RTS through a USB-UART bridge's auto-reset circuit (CP210x, CH340, FTDI).
    Classic,
    /// The chip's own USB-Serial-JTAG peripheral (ESP32-C3, -S3, ...; 303a:1001).
    UsbJtag,
    /// No reset wiring: the chip is put in the state needed by hand (or, for a twin, by its
    /// handle); flashing connects without a reset.
    None,
}

/// One step of a reset sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Data Terminal Ready: asserted (`true`) pulls GPIO0 low through the auto-reset circuit.
    Dtr(bool),
    /// Request To Send: asserted (`true`) pulls EN low through the auto-reset circuit.
    Rts(bool),
    /// Let the lines settle.
    Wait(Duration),
    /// Drop what the host has received so far: taken while EN is low, so the console starts
    /// with the first byte of the new boot.
    ClearInput,
}

const fn ms(millis: u64) -> Step {
    Step::Wait(Duration::from_millis(millis))
}

/// Classic bridge, into the app (espflash's hard reset).
const CLASSIC_APP: &[Step] = &[
    Step::Dtr(false), // GPIO0 high: boot from flash
    Step::Rts(true),  // EN low: chip in reset
    ms(100),
    Step::ClearInput,
    Step::Rts(false), // EN high: chip out of reset, boots the app
];

/// Classic bridge, into the ROM loader (espflash's and esptool's classic reset).
const CLASSIC_DOWNLOAD: &[Step] = &[
    Step::Dtr(false), // GPIO0 high
    Step::Rts(true),  // EN low: chip in reset
    Step::Dtr(false), // again: some drivers only apply DTR with an RTS change
    ms(100),
    Step::ClearInput,
    Step::Dtr(true),  // GPIO0 low: download mode at boot
    Step::Rts(false), // EN high: chip out of reset, samples GPIO0
    Step::Dtr(true),  // again, for the same drivers
    ms(50),
    Step::Dtr(false), // GPIO0 high again, done
];

/// USB-Serial-JTAG, into the app (espflash's reset after flashing for 303a:1001).
const USB_JTAG_APP: &[Step] = &[
    Step::Dtr(false), // GPIO0 released
    ms(100),
    Step::Rts(true), // reset asserted...
    Step::Dtr(false),
    Step::Rts(true), // ...RTS set again: some hosts only send DTR with an RTS change
    ms(100),
    Step::ClearInput,
    Step::Rts(false), // reset released: boots the app
];

/// USB-Serial-JTAG, into the ROM loader (espflash's and esptool's USB-JTAG reset).
const USB_JTAG_DOWNLOAD: &[Step] = &[
    Step::Rts(false),
    Step::Dtr(false), // idle
    ms(100),
    Step::Dtr(true), // GPIO0 low requested
    Step::Rts(false),
    ms(100),
    Step::Rts(true), // reset; the lines pass through (1,1), not (0,0)
    Step::Dtr(false),
    Step::Rts(true),
    ms(100),
    Step::ClearInput,
    Step::Dtr(false),
    Step::Rts(false), // out of reset, in the ROM loader
];

impl ResetStrategy {
    /// The lab config's names: `classic`, `usb-jtag`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::UsbJtag => "usb-jtag",
            Self::None => "none",
        }
    }

    /// The line changes that reset into `mode`; `None` for a board without reset wiring.
    pub(crate) fn sequence(self, mode: ResetMode) -> Option<&'static [Step]> {
        match (self, mode) {
            (Self::Classic, ResetMode::App) => Some(CLASSIC_APP),
            (Self::Classic, ResetMode::Download) => Some(CLASSIC_DOWNLOAD),
            (Self::UsbJtag, ResetMode::App) => Some(USB_JTAG_APP),
            (Self::UsbJtag, ResetMode::Download) => Some(USB_JTAG_DOWNLOAD),
            (Self::None, _) => None,
        }
    }

    /// What espflash does before connecting to the ROM loader.
    pub fn before_connect(self) -> ResetBeforeOperation {
        match self {
            Self::Classic => ResetBeforeOperation::DefaultReset,
            Self::UsbJtag => ResetBeforeOperation::UsbReset,
            Self::None => ResetBeforeOperation::NoReset,
        }
    }

    /// The strategy for a USB device, from the table of known bridges; `None` for a device the
    /// table does not know.
    pub(crate) fn for_usb(vid: u16, pid: u16) -> Option<(Self, &'static str)> {
        KNOWN_BRIDGES.iter().find(|b| b.vid == vid && b.pid == pid).map(|b| (b.reset, b.name))
    }
}

/// A USB serial device seen on ESP32 boards.
struct KnownBridge {
    vid: u16,
    pid: u16,
    name: &'static str,
    reset: ResetStrategy,
}

const fn bridge(vid: u16, pid: u16, name: &'static str, reset: ResetStrategy) -> KnownBridge {
    KnownBridge { vid, pid, name, reset }
}

/// USB serial devices on ESP32 boards and how each resets.
const KNOWN_BRIDGES: &[KnownBridge] = &[
    bridge(0x303a, 0x1001, "Espressif USB-Serial-JTAG", ResetStrategy::UsbJtag),
    bridge(0x10c4, 0xea60, "Silicon Labs CP210x", ResetStrategy::Classic),
    bridge(0x10c4, 0xea70, "Silicon Labs CP2105", ResetStrategy::Classic),
    bridge(0x1a86, 0x7523, "WCH CH340", ResetStrategy::Classic),
    bridge(0x1a86, 0x55d4, "WCH CH9102", ResetStrategy::Classic),
    bridge(0x0403, 0x6001, "FTDI FT232R", ResetStrategy::Classic),
    bridge(0x0403, 0x6010, "FTDI FT2232", ResetStrategy::Classic),
    bridge(0x0403, 0x6015, "FTDI FT-X", ResetStrategy::Classic),
];

/// The reset wiring of a serial port.
pub(crate) trait ResetLines {
    fn set_dtr(&mut self, asserted: bool) -> io::Result<()>;
    fn set_rts(&mut self, asserted: bool) -> io::Result<()>;
    fn clear_input(&mut self) -> io::Result<()>;
    fn wait(&mut self, duration: Duration);
}

impl<P: SerialPort> ResetLines for P {
    fn set_dtr(&mut self, asserted: bool) -> io::Result<()> {
        Ok(self.write_data_terminal_ready(asserted)?)
    }

    fn set_rts(&mut self, asserted: bool) -> io::Result<()> {
        Ok(self.write_request_to_send(asserted)?)
    }

    fn clear_input(&mut self) -> io::Result<()> {
        Ok(self.clear(ClearBuffer::Input)?)
    }

    fn wait(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Plays `steps` on `lines`; stops at the first line that cannot be set.
pub(crate) fn play(steps: &[Step], lines: &mut impl ResetLines) -> io::Result<()> {
    for step in steps {
        match *step {
            Step::Dtr(level) => lines.set_dtr(level)?,
            Step::Rts(level) => lines.set_rts(level)?,
            Step::Wait(duration) => lines.wait(duration),
            Step::ClearInput => lines.clear_input()?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        /// (DTR, RTS) after each change, and where the input was cleared.
        trace: Vec<String>,
        dtr: bool,
        rts: bool,
    }

    impl ResetLines for Recorder {
        fn set_dtr(&mut self, asserted: bool) -> io::Result<()> {
            self.dtr = asserted;
            self.trace.push(format!("dtr={} rts={}", u8::from(self.dtr), u8::from(self.rts)));
            Ok(())
        }
        fn set_rts(&mut self, asserted: bool) -> io::Result<()> {
            self.rts = asserted;
            self.trace.push(format!("dtr={} rts={}", u8::from(self.dtr), u8::from(self.rts)));
            Ok(())
        }
        fn clear_input(&mut self) -> io::Result<()> {
            self.trace.push("clear".into());
            Ok(())
        }
        fn wait(&mut self, _: Duration) {}
    }

    fn check(vid: u16, pid: u16, expect: Option<ResetStrategy>) {
        assert_eq!(ResetStrategy::for_usb(vid, pid).map(|(s, _)| s), expect, "{vid:04x}:{pid:04x}");
    }

    #[test]
    fn strategy_follows_the_usb_device() {
        check(0x303a, 0x1001, Some(ResetStrategy::UsbJtag));
        check(0x10c4, 0xea60, Some(ResetStrategy::Classic));
        check(0x1a86, 0x7523, Some(ResetStrategy::Classic));
        check(0x0403, 0x6001, Some(ResetStrategy::Classic));
        check(0x1234, 0x5678, None);
    }

    #[test]
    fn espflash_connects_as_the_strategy_says() {
        assert_eq!(ResetStrategy::Classic.before_connect(), ResetBeforeOperation::DefaultReset);
        assert_eq!(ResetStrategy::UsbJtag.before_connect(), ResetBeforeOperation::UsbReset);
        assert_eq!(ResetStrategy::None.before_connect(), ResetBeforeOperation::NoReset);
    }

    #[test]
    fn every_sequence_ends_with_en_released_and_gpio0_high() {
        for strategy in [ResetStrategy::Classic, ResetStrategy::UsbJtag] {
            for mode in [ResetMode::App, ResetMode::Download] {
                let mut lines = Recorder::default();
                play(strategy.sequence(mode).unwrap(), &mut lines).unwrap();
                assert!(!lines.dtr && !lines.rts, "{strategy:?} {mode:?}: {:?}", lines.trace);
                // The input is cleared while the chip is held in reset (RTS asserted).
                let clear = lines.trace.iter().position(|t| t == "clear").unwrap();
                assert_eq!(lines.trace[clear - 1], "dtr=0 rts=1", "{strategy:?} {mode:?}: {:?}", lines.trace);
            }
        }
        assert_eq!(ResetStrategy::None.sequence(ResetMode::App), None);
    }

    #[test]
    fn classic_download_releases_en_while_gpio0_is_low() {
        let mut lines = Recorder::default();
        play(CLASSIC_DOWNLOAD, &mut lines).unwrap();
        // EN goes high (rts=0) while GPIO0 is held low (dtr=1): the ROM samples download mode.
        assert!(lines.trace.iter().any(|t| t == "dtr=1 rts=0"), "{:?}", lines.trace);
        let mut app = Recorder::default();
        play(CLASSIC_APP, &mut app).unwrap();
        assert!(app.trace.iter().all(|t| !t.starts_with("dtr=1")), "{:?}", app.trace);
    }

    #[test]
    fn lines_that_fail_stop_the_sequence() {
        struct Broken;
        impl ResetLines for Broken {
            fn set_dtr(&mut self, _: bool) -> io::Result<()> {
                Err(io::Error::other("not a typewriter"))
            }
            fn set_rts(&mut self, _: bool) -> io::Result<()> {
                unreachable!("stopped at DTR")
            }
            fn clear_input(&mut self) -> io::Result<()> {
                Ok(())
            }
            fn wait(&mut self, _: Duration) {}
        }
        assert!(play(CLASSIC_APP, &mut Broken).is_err());
    }
}
