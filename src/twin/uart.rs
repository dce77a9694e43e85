//! The UART side of a boot: ROM lines as the ROM prints them, ESP-IDF log lines
//! (`L (ms) tag: msg`) in the dialect of the ESP-IDF version that prints them, every `\n` sent
//! as `\r\n`.

use super::clock::BootClock;

/// An ESP-IDF version as far as its output differs: major and minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dialect {
    pub major: u8,
    pub minor: u8,
}

impl Dialect {
    /// The ESP-IDF versions the reference describes, one per family.
    pub const V3_2: Dialect = Dialect { major: 3, minor: 2 };

    /// `v4.4.8`, `v3.2-dirty`, `5.2` → a dialect; `None` when no `major.minor` leads the text.
    pub fn of(idf: &str) -> Option<Dialect> {
        let text = idf.strip_prefix('v').unwrap_or(idf);
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let major_len = digits(text);
        let rest = text[major_len..].strip_prefix('.')?;
        let minor_len = digits(rest);
        let major = text[..major_len].parse().ok()?;
        let minor = rest[..minor_len].parse().ok()?;
        Some(Dialect { major, minor })
    }

    pub fn at_least(self, major: u8, minor: u8) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// `CONFIG_LOG_COLORS` default: on up to v5.3, off from v5.4.
    pub fn colours(self) -> bool {
        !self.at_least(5, 4)
    }
}

/// ESP-IDF log levels the boot prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Error,
    Warn,
    Info,
}

impl Level {
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
}

impl<'c> Uart<'c> {
    pub fn new(clock: &'c mut BootClock) -> Self {
        Self { bytes: Vec::new(), clock, colours: false }
    }

    /// From now on ESP-IDF lines come from code of this dialect.
    pub fn speak(&mut self, dialect: Dialect) {
        self.colours = dialect.colours();
    }

    /// Time passes without output (loading, hashing, starting a CPU).
    pub fn wait_us(&mut self, micros: u64) {
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
    pub fn log_app_cpu(&mut self, level: Level, tag: &str, msg: &str) {
        self.log_stamped(level, 0, tag, msg);
    }

    fn log_stamped(&mut self, level: Level, ms: u32, tag: &str, msg: &str) {
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
    fn versions_read_as_dialects() {
        assert_eq!(Dialect::of("v4.4.8"), Some(Dialect { major: 4, minor: 4 }));
        assert_eq!(Dialect::of("v3.2-dirty"), Some(Dialect::V3_2));
        assert_eq!(Dialect::of("5.2"), Some(Dialect { major: 5, minor: 2 }));
        assert_eq!(Dialect::of("unknown"), None);
        assert_eq!(Dialect::of("v5"), None);
        assert!(Dialect::of("v5.3.1").unwrap().colours());
        assert!(!Dialect::of("v5.4").unwrap().colours());
    }

    #[test]
    fn lines_end_in_crlf_and_colour_follows_the_dialect() {
        let mut clock = BootClock::new(0);
        let mut uart = Uart::new(&mut clock);
        uart.rom("entry 0x40080764");
        uart.speak(Dialect::V3_2);
        uart.log(Level::Error, "boot", "x");
        uart.speak(Dialect { major: 5, minor: 4 });
        uart.log_app_cpu(Level::Info, "cpu_start", "App cpu up.");
        let text = String::from_utf8(uart.bytes).unwrap();
        assert!(text.starts_with("entry 0x40080764\r\n\x1b[0;31mE ("), "{text:?}");
        assert!(text.ends_with(") boot: x\x1b[0m\r\nI (0) cpu_start: App cpu up.\r\n"), "{text:?}");
    }
}
