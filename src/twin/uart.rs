//! The UART side of a boot: ROM lines as the ROM prints them, ESP-IDF log lines
//! (`L (ms) tag: msg`) in the dialect of the ESP-IDF version that prints them, every `\n` sent
//! as `\r\n`.

use super::clock::BootClock;
use crate::firmware::profile::LogLevel;
use crate::idf::IdfVersion;

/// `CONFIG_LOG_COLORS`' default: on up to v5.3, off from v5.4.
pub(crate) fn colours(version: IdfVersion) -> bool {
    version < IdfVersion::new(5, 4, 0)
}

/// ESP-IDF log levels the boot prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
}

impl Level {
    /// The app's log level at which this level still prints.
    fn needs(self) -> LogLevel {
        match self {
            Level::Error => LogLevel::Error,
            Level::Warn => LogLevel::Warn,
            Level::Info => LogLevel::Info,
        }
    }

    fn letter(self) -> char {
        match self {
            Level::Error => 'E',
            Level::Warn => 'W',
            Level::Info => 'I',
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Level::Error => "\x1b[0;31m",
            Level::Warn => "\x1b[0;33m",
            Level::Info => "\x1b[0;32m",
        }
    }
}

/// UART speed of the ESP32 console (115200 baud, 10 bits a byte): microseconds per byte.
const MICROS_PER_BYTE: u64 = 87;

/// The bytes sent so far, and the clock that stamps them.
pub(crate) struct Uart<'c> {
    pub bytes: Vec<u8>,
    clock: &'c mut BootClock,
    colours: bool,
    /// The most verbose level printed (`CONFIG_LOG_DEFAULT_LEVEL`).
    level: LogLevel,
}

impl<'c> Uart<'c> {
    pub fn new(clock: &'c mut BootClock) -> Self {
        Self { bytes: Vec::new(), clock, colours: false, level: LogLevel::Info }
    }

    /// From now on ESP-IDF lines come from code of this release, printed up to `level`.
    pub(crate) fn speak(&mut self, version: IdfVersion, level: LogLevel) {
        self.colours = colours(version);
        self.level = level;
    }

    /// Time passes without output (loading, hashing, starting a CPU).
    pub(crate) fn wait_us(&mut self, micros: u64) {
        self.clock.advance_us(micros);
    }

    /// A ROM line: plain text. ESP-IDF's clock (the CPU cycle count) starts in the
    /// bootloader, so the ROM's time does not show in any timestamp.
    pub fn rom(&mut self, line: &str) {
        self.bytes.extend_from_slice(line.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// An ESP-IDF line stamped with the clock.
    pub fn log(&mut self, level: Level, tag: &str, msg: &str) {
        let ms = self.clock.now_ms();
        self.log_stamped(level, ms, tag, msg);
    }

    /// An ESP-IDF line from the APP CPU before its clock runs: stamped `(0)`.
    pub(crate) fn log_app_cpu(&mut self, level: Level, tag: &str, msg: &str) {
        self.log_stamped(level, 0, tag, msg);
    }

    fn log_stamped(&mut self, level: Level, ms: u32, tag: &str, msg: &str) {
        if level.needs() > self.level {
            return;
        }
        let text = format!("{} ({ms}) {tag}: {msg}", level.letter());
        if self.colours {
            self.send(&format!("{}{text}\x1b[0m", level.colour()));
        } else {
            self.send(&text);
        }
    }

    /// The bytes written since the last take (what goes on the line next).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// The clock that stamps the lines (the OTA client lets time pass while it waits).
    pub fn clock(&mut self) -> &mut BootClock {
        self.clock
    }

    fn send(&mut self, line: &str) {
        // newlib sends every `\n` as `\r\n`, also those inside a message.
        self.bytes.extend_from_slice(line.replace('\n', "\r\n").as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
        self.clock.advance_us((line.len() as u64 + 2) * MICROS_PER_BYTE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_on_until_v5_4() {
        assert!(colours(IdfVersion::new(5, 3, 1)));
        assert!(!colours(IdfVersion::new(5, 4, 0)));
    }

    #[test]
    fn lines_end_in_crlf_colour_follows_the_release_and_the_level_filters() {
        let mut clock = BootClock::new(0);
        let mut uart = Uart::new(&mut clock);
        uart.rom("entry 0x40080764");
        uart.speak(IdfVersion::new(3, 2, 0), LogLevel::Info);
        uart.log(Level::Error, "boot", "x");
        uart.speak(IdfVersion::new(5, 4, 0), LogLevel::Info);
        uart.log_app_cpu(Level::Info, "cpu_start", "App cpu up.");
        uart.speak(IdfVersion::new(5, 4, 0), LogLevel::Error);
        uart.log(Level::Info, "cpu_start", "not printed above the log level");
        let text = String::from_utf8(uart.bytes).unwrap();
        assert!(text.starts_with("entry 0x40080764\r\n\x1b[0;31mE ("), "{text:?}");
        assert!(text.ends_with(") boot: x\x1b[0m\r\nI (0) cpu_start: App cpu up.\r\n"), "{text:?}");
    }
}
