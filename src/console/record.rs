//! Lines → records: which logging format printed a line, and its fields.
//!
//! Formats an ESP32 user meets: ESP-IDF `L (ms) tag: msg` (or `L (HH:MM:SS.mmm) tag: msg`),
//! Arduino-ESP32 `[   ms][L][file.c:line] func(): msg` (core 2.x/3.x) and `[L][file.c:line]
//! func(): msg` (core 1.x), ESPHome `[hh:mm:ss][L][tag:line]: msg`, and everything else as plain
//! text (ROM, panics, continuation lines). Host-side prefixes are peeled off first: serial
//! monitors' `HH:MM:SS.mmm -> `, PlatformIO's `HH:MM:SS.mmm > `, idf.py monitor's
//! `YYYY-MM-DD HH:MM:SS `, and ESPHome's `[hh:mm:ss][D][esp-idf:000][task]: ` around ESP-IDF
//! output. Parsing never fails: anything unrecognised is [`Body::Text`].

use serde::Serialize;

/// ESP-IDF / Arduino log level letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Verbose,
}

impl Level {
    fn from_letter(letter: u8) -> Option<Self> {
        Some(match letter {
            b'E' => Self::Error,
            b'W' => Self::Warn,
            b'I' => Self::Info,
            b'D' => Self::Debug,
            b'V' => Self::Verbose,
            _ => return None,
        })
    }
}

/// How the device stamped an ESP-IDF line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum IdfTimestamp {
    /// Milliseconds since boot (the default).
    Millis(u64),
    /// `HH:MM:SS.mmm` system time (`LOG_TIMESTAMP_SOURCE_SYSTEM`, v4.4 and later).
    Clock,
}

/// Who added a prefix in front of the device's own output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostPrefix {
    /// A serial monitor's arrival time (Arduino IDE, PlatformIO, idf.py monitor).
    MonitorTimestamp,
    /// ESPHome's logger wrapping ESP-IDF output.
    EspHome,
}

/// A line printed by ESP-IDF's logging macros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdfLine<'a> {
    pub level: Level,
    pub timestamp: IdfTimestamp,
    pub tag: &'a str,
    pub message: &'a str,
}

/// A line printed by Arduino-ESP32's `log_x` macros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArduinoLine<'a> {
    pub level: Level,
    pub millis: Option<u64>,
    pub file: &'a str,
    pub message: &'a str,
}

/// A line printed by ESPHome's own logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspHomeLine<'a> {
    pub level: Level,
    pub tag: &'a str,
    pub message: &'a str,
}

/// What a line is, once host prefixes are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    Idf(IdfLine<'a>),
    Arduino(ArduinoLine<'a>),
    EspHome(EspHomeLine<'a>),
    Text(&'a str),
}

/// One line of console output, understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Line number in the input, counted from 1.
    pub number: u64,
    /// The whole line without terminal escape codes: what evidence quotes.
    pub text: &'a str,
    pub host: Option<HostPrefix>,
    pub body: Body<'a>,
}

impl<'a> Record<'a> {
    /// Reads one line (escape codes already removed).
    pub fn parse(number: u64, text: &'a str) -> Self {
        let mut host = None;
        let mut rest = text;
        if let Some(after) = strip_monitor_timestamp(rest) {
            host = Some(HostPrefix::MonitorTimestamp);
            rest = after;
        }
        if let Some(after) = strip_esphome_idf_wrapper(rest) {
            host = Some(HostPrefix::EspHome);
            rest = after;
        }
        let body = parse_idf(rest).map(Body::Idf).or_else(|| parse_bracketed(rest)).unwrap_or(Body::Text(rest));
        Record { number, text, host, body }
    }
}

/// `HH:MM:SS.mmm -> ` (Arduino IDE), `HH:MM:SS.mmm > ` (PlatformIO),
/// `YYYY-MM-DD HH:MM:SS[.mmm] ` (idf.py monitor `--timestamps`).
fn strip_monitor_timestamp(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    if !bytes.first()?.is_ascii_digit() {
        return None;
    }
    if let Some(after_date) = skip_date(bytes) {
        let after_clock = skip_clock(&bytes[after_date..])? + after_date;
        let after_millis = skip_millis(&bytes[after_clock..]) + after_clock;
        let rest = line.get(after_millis..)?;
        return rest.strip_prefix(' ').or(Some(rest)).filter(|_| after_millis > 0);
    }
    // `HH:MM:SS.mmm` (or Arduino IDE 2's unpadded `H:M:ss.l`) then ` -> ` or ` > `.
    let stamp_len = bytes.iter().take(16).take_while(|c| c.is_ascii_digit() || **c == b':' || **c == b'.').count();
    if bytes[..stamp_len].iter().filter(|c| **c == b':').count() != 2 {
        return None;
    }
    let rest = &line[stamp_len..];
    rest.strip_prefix(" -> ").or_else(|| rest.strip_prefix(" > "))
}

/// `YYYY-MM-DD ` → its length.
fn skip_date(b: &[u8]) -> Option<usize> {
    let shape = b.get(..11)?;
    let ok = shape.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b' ',
        _ => c.is_ascii_digit(),
    });
    ok.then_some(11)
}

/// `HH:MM:SS` → its length.
fn skip_clock(b: &[u8]) -> Option<usize> {
    let shape = b.get(..8)?;
    let ok = shape.iter().enumerate().all(|(i, c)| match i {
        2 | 5 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    ok.then_some(8)
}

/// `.mmm` (any number of digits) → its length, or 0.
fn skip_millis(b: &[u8]) -> usize {
    if b.first() != Some(&b'.') {
        return 0;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 { 0 } else { digits + 1 }
}

/// ESPHome passes ESP-IDF output on as `[D][esp-idf:000][task]: ` + the line (tag `esp-idf`,
/// line 0, ESPHome's own level letter); `esphome logs` puts `[hh:mm:ss]` in front.
fn strip_esphome_idf_wrapper(line: &str) -> Option<&str> {
    let rest = skip_bracketed_clock(line).unwrap_or(line);
    let rest = rest.strip_prefix('[')?;
    let (level, rest) = rest.split_once(']')?;
    esphome_level(level)?;
    let rest = rest.strip_prefix("[esp-idf:")?;
    let (_, rest) = rest.split_once(']')?;
    let rest = match rest.strip_prefix('[') {
        Some(task) => task.split_once(']')?.1,
        None => rest,
    };
    Some(rest.strip_prefix(": ").or_else(|| rest.strip_prefix(':')).unwrap_or(rest))
}

/// `[12:34:56]` or `[12:34:56.789]` at the start of a line → what follows it.
fn skip_bracketed_clock(line: &str) -> Option<&str> {
    let (clock, rest) = line.strip_prefix('[')?.split_once(']')?;
    let clock = clock.as_bytes();
    (skip_clock(clock)? + skip_millis(&clock[8..]) == clock.len()).then_some(rest)
}

/// ESPHome's level letters: E W I C(onfig) D V VV.
fn esphome_level(letters: &str) -> Option<Level> {
    match letters {
        "C" => Some(Level::Info),
        "VV" => Some(Level::Verbose),
        _ if letters.len() == 1 => Level::from_letter(letters.as_bytes()[0]),
        _ => None,
    }
}

/// `L (1234) tag: message` or `L (12:34:56.789) tag: message`.
fn parse_idf(line: &str) -> Option<IdfLine<'_>> {
    let bytes = line.as_bytes();
    if bytes.len() < 6 || bytes[1] != b' ' || bytes[2] != b'(' {
        return None;
    }
    let level = Level::from_letter(bytes[0])?;
    let close = bytes[3..].iter().position(|&c| c == b')')? + 3;
    let stamp = &bytes[3..close];
    let timestamp = if !stamp.is_empty() && stamp.iter().all(u8::is_ascii_digit) {
        IdfTimestamp::Millis(line[3..close].parse().unwrap_or(u64::MAX))
    } else if skip_clock(stamp).is_some_and(|n| n + skip_millis(&stamp[n..]) == stamp.len()) {
        IdfTimestamp::Clock
    } else {
        return None;
    };
    let rest = line[close + 1..].strip_prefix(' ')?;
    let (tag, message) = match rest.split_once(": ") {
        Some((tag, message)) => (tag, message),
        None => (rest.strip_suffix(':').unwrap_or(rest), ""),
    };
    Some(IdfLine { level, timestamp, tag, message })
}

/// Arduino-ESP32 and ESPHome lines, which both start with brackets.
fn parse_bracketed(line: &str) -> Option<Body<'_>> {
    if let Some(rest) = skip_bracketed_clock(line) {
        return parse_esphome(rest);
    }
    let mut rest = line.strip_prefix('[')?;
    let mut millis = None;
    // Arduino 2.x/3.x: `[%6u]` milliseconds since boot.
    let (first, after) = rest.split_once(']')?;
    let trimmed = first.trim_start();
    if !trimmed.is_empty() && trimmed.bytes().all(|c| c.is_ascii_digit()) {
        millis = trimmed.parse().ok();
        rest = after.strip_prefix('[')?;
    }
    let (level, rest) = rest.split_once(']')?;
    let level_letter = esphome_level(level)?;
    let (origin, after) = rest.strip_prefix('[')?.split_once(']')?;
    if millis.is_none() && (after.starts_with(": ") || after.starts_with('[')) {
        return parse_esphome(line);
    }
    // Arduino: `[file.c:line] func(): message`.
    let message = after.strip_prefix(' ').unwrap_or(after);
    let message = match message.split_once("(): ") {
        Some((func, message)) if !func.contains(' ') => message,
        _ => message,
    };
    let file = origin.split_once(':').map_or(origin, |(file, _)| file);
    Some(Body::Arduino(ArduinoLine { level: level_letter, millis, file, message }))
}

/// ESPHome: `[L][tag:line]: message` or `[L][tag:line][task]: message`.
fn parse_esphome(line: &str) -> Option<Body<'_>> {
    let (level, rest) = line.strip_prefix('[')?.split_once(']')?;
    let level = esphome_level(level)?;
    let (origin, rest) = rest.strip_prefix('[')?.split_once(']')?;
    let message = match rest.strip_prefix('[') {
        Some(task) => task.split_once("]: ")?.1,
        None => rest.strip_prefix(": ")?,
    };
    let tag = origin.split_once(':').map_or(origin, |(tag, _)| tag);
    Some(Body::EspHome(EspHomeLine { level, tag, message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(line: &str) -> Body<'_> {
        Record::parse(1, line).body
    }

    #[test]
    fn esp_idf_lines_with_either_timestamp() {
        assert_eq!(
            body("E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700"),
            Body::Idf(IdfLine {
                level: Level::Error,
                timestamp: IdfTimestamp::Millis(7513),
                tag: "esp-tls",
                message: "mbedtls_ssl_handshake returned -0x2700",
            })
        );
        let Body::Idf(line) = body("I (12:00:01.250) boot: Loaded app from partition at offset 0x10000") else {
            panic!("not an ESP-IDF line");
        };
        assert_eq!(line.timestamp, IdfTimestamp::Clock);
        assert_eq!(line.tag, "boot");
    }

    #[test]
    fn idf_tag_is_everything_before_the_first_colon_space() {
        let Body::Idf(line) = body("E (644754) OTA_UPDATE :::: Firmware Upgrades Failed") else {
            panic!("not an ESP-IDF line");
        };
        assert_eq!(line.message, "Firmware Upgrades Failed");
    }

    #[test]
    fn near_misses_are_text() {
        for line in ["", "I", "I (", "I (x) tag: m", "X (1) tag: m", "ets Jun  8 2016 00:22:57"] {
            assert!(matches!(body(line), Body::Text(_)), "{line:?}");
        }
    }

    #[test]
    fn arduino_lines_old_and_new() {
        let new = "[  5123][E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: (-9984) X509 - Certificate verification failed";
        let Body::Arduino(line) = body(new) else { panic!("not arduino") };
        assert_eq!(line.millis, Some(5123));
        assert_eq!(line.file, "ssl_client.cpp");
        assert!(line.message.starts_with("[start_ssl_client():273]: (-9984)"));

        let old = "[E][ssl_client.cpp:33] _handle_error(): (-12288) X509 - A fatal error occurred";
        let Body::Arduino(line) = body(old) else { panic!("not arduino") };
        assert_eq!(line.millis, None);
        assert_eq!(line.message, "(-12288) X509 - A fatal error occurred");
    }

    #[test]
    fn esphome_native_and_wrapped_lines() {
        let native = "[23:45:15][E][nabu_media_player.pipeline:171]: Media reader encountered an error";
        assert!(matches!(body(native), Body::EspHome(EspHomeLine { tag: "nabu_media_player.pipeline", .. })));

        let device = "[D][esp-idf:000]: E (2819431) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x3000";
        assert_eq!(Record::parse(1, device).host, Some(HostPrefix::EspHome));
        let config = "[14:02:11][C][wifi:443]:   SSID: 'lab'";
        assert!(matches!(body(config), Body::EspHome(EspHomeLine { tag: "wifi", .. })));
        let wrapped = Record::parse(
            3,
            "[23:45:15][D][esp-idf:000][ann_read]: E (2819431) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x3000",
        );
        assert_eq!(wrapped.host, Some(HostPrefix::EspHome));
        assert!(matches!(wrapped.body, Body::Idf(IdfLine { tag: "esp-tls-mbedtls", .. })));
    }

    #[test]
    fn serial_monitor_prefixes() {
        for line in [
            "11:27:39.308 -> E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700",
            "11:27:39.308 > E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700",
            "9:5:07.123 -> E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700",
            "2024-03-01 11:27:39 E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700",
            "2024-03-01 11:27:39.308 E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700",
        ] {
            let record = Record::parse(1, line);
            assert_eq!(record.host, Some(HostPrefix::MonitorTimestamp), "{line}");
            assert!(matches!(record.body, Body::Idf(IdfLine { tag: "esp-tls", .. })), "{line}");
        }
    }
}
