//! Lines → records: which logging format printed a line, and its fields.
//!
//! Formats an ESP32 user meets: ESP-IDF `L (ms) tag: msg` (or `L (HH:MM:SS.mmm) tag: msg`),
//! Arduino-ESP32 `[   ms][L][file.c:line] func(): msg` (core 2.x/3.x) and `[L][file.c:line]
//! func(): msg` (core 1.x), ESPHome `[hh:mm:ss][L][tag:line]: msg`, the `[tag] msg` debug lines
//! of Arduino cores and libraries, and everything else as plain text (ROM, panics, MicroPython,
//! continuation lines). Paste wrappers ([`super::paste`]) and host prefixes ([`super::host`])
//! are peeled off first. A format is recognised wherever the line holds it, after any prefix;
//! its level and time give structure when present but are never required: a component line
//! whose level and time were cut off (`esp-tls: mbedtls_ssl_handshake returned -0x2700`) is
//! still an ESP-IDF line. Parsing never fails: anything unrecognised is [`Body::Text`].

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Serialize;

use super::host::{self, HostPrefix};
use super::paste;
use bracketed::{parse_bracketed, parse_esphome_columns};

mod bracketed;

/// ESP-IDF / Arduino log level letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Level {
    /// `E`: the component failed.
    Error,
    /// `W`: something unexpected the component went on from.
    Warn,
    /// `I`: progress; the default level of release builds.
    Info,
    /// `D`: detail, printed only when the component's level is raised.
    Debug,
    /// `V`: everything the component can print.
    Verbose,
}

impl Level {
    pub(super) fn from_letter(letter: u8) -> Option<Self> {
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

/// A line printed by ESP-IDF's logging macros; level and time are `None` where a paste cut them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdfLine<'a> {
    /// The level letter that starts the line.
    pub level: Option<Level>,
    /// The parenthesised time after the level.
    pub timestamp: Option<IdfTimestamp>,
    /// The component's tag before `: ` (`esp-tls`, `esp_https_ota`).
    pub tag: &'a str,
    /// Everything after the tag's `: `; empty when the tag ends the line.
    pub message: &'a str,
}

/// A line printed by Arduino-ESP32's `log_x` macros; the level is `None` where a paste cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArduinoLine<'a> {
    /// The level in its own bracket (`[E]`).
    pub level: Option<Level>,
    /// Milliseconds since boot in the first bracket (core 2.x and 3.x; core 1.x prints none).
    pub millis: Option<u64>,
    /// The source file that logged, without its line number (`HTTPClient.cpp`).
    pub file: &'a str,
    /// What follows the `[file:line]` bracket, the `func(): ` prefix included.
    pub message: &'a str,
}

/// A line printed by ESPHome's own logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspHomeLine<'a> {
    /// The level in its own bracket (`[E]`).
    pub level: Level,
    /// The component's tag, without its line number (`ota.http_request`).
    pub tag: &'a str,
    /// Everything after the tag's bracket and `: `.
    pub message: &'a str,
}

/// A `[tag] message` or `[tag][function] message` debug line (ESP8266 and ESP32 Arduino cores'
/// `httpUpdate`, `HTTP-Client`, the HTTPClient examples' `[HTTPS]`), or an application logger's
/// line whose bracket names its level (`[12:12:44.340 ERROR @ utils.cpp:357] message`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaggedLine<'a> {
    /// What the first bracket holds (`httpUpdate`, `HTTPS`).
    pub tag: &'a str,
    /// The level the bracket names, where it names one.
    pub level: Option<Level>,
    /// Everything after the brackets.
    pub message: &'a str,
}

/// What a line is, once paste wrappers and host prefixes are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// An ESP-IDF `L (ms) tag: message` line, or a known component's line without level and time.
    Idf(IdfLine<'a>),
    /// An Arduino-ESP32 `[ms][L][file:line] func(): message` line.
    Arduino(ArduinoLine<'a>),
    /// An ESPHome `[hh:mm:ss][L][tag:line]: message` line.
    EspHome(EspHomeLine<'a>),
    /// A `[tag] message` debug line.
    Tagged(TaggedLine<'a>),
    /// Anything else (ROM, panics, MicroPython, continuation lines): the line after the
    /// wrappers and prefix were removed.
    Text(&'a str),
}

/// One line of console output, understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Line number in the input, counted from 1.
    pub number: u64,
    /// The whole line without terminal escape codes: what evidence quotes.
    pub text: &'a str,
    /// The host prefix removed before reading (the last one, where there were two).
    pub host: Option<HostPrefix>,
    /// Paste wrappers (quote marks, indent, bold, backticks, colour codes without ESC) were
    /// removed before reading.
    pub pasted: bool,
    /// The record stands after text that no known prefix explains.
    pub embedded: bool,
    /// The line's format and fields.
    pub body: Body<'a>,
}

/// ESP-IDF tags whose lines are recognised without their level and time.
const COMPONENT_TAGS: [&str; 18] = [
    "esp-tls",
    "esp-tls-mbedtls",
    "TRANS_SSL",
    "TRANSPORT_BASE",
    "transport_base",
    "TRANS_TCP",
    "HTTP_CLIENT",
    "esp_https_ota",
    "esp_ota_ops",
    "esp_image",
    "boot",
    "boot_comm",
    "esp-x509-crt-bundle",
    "cpu_start",
    "app_init",
    "simple_ota_example",
    "native_ota_example",
    "advanced_https_ota_example",
];

impl<'a> Record<'a> {
    /// Reads one line (escape codes already removed).
    pub fn parse(number: u64, text: &'a str) -> Self {
        let (core, wrapped) = paste::peel(text);
        let (host, rest) = host::strip(core);
        let (rest, coloured) = paste::peel(rest);
        let (body, embedded) = parse_body(rest);
        Record { number, text, host, pasted: wrapped || coloured, embedded, body }
    }
}

/// The format at the start of `line`, else one found inside it (`embedded`), else text.
fn parse_body(line: &str) -> (Body<'_>, bool) {
    if let Some(body) =
        parse_idf(line).map(Body::Idf).or_else(|| parse_bracketed(line)).or_else(|| parse_esphome_columns(line))
    {
        return (body, false);
    }
    if let Some(line) = parse_component(line) {
        return (Body::Idf(line), false);
    }
    match find_embedded(line) {
        Some(body) => (body, true),
        None => (Body::Text(line), false),
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
    } else if host::skip_clock(stamp).is_some_and(|n| n + host::skip_millis(&stamp[n..]) == stamp.len()) {
        IdfTimestamp::Clock
    } else {
        return None;
    };
    let rest = line[close + 1..].strip_prefix(' ')?;
    let (tag, message) = match split_colon_space(rest) {
        Some((tag, message)) => (tag, message),
        None => (rest.strip_suffix(':').unwrap_or(rest), ""),
    };
    Some(IdfLine { level: Some(level), timestamp: Some(timestamp), tag, message })
}

/// `tag: message` split at the first `: ` (a byte search: this runs on every line).
pub(super) fn split_colon_space(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    memchr::memchr_iter(b':', bytes)
        .find(|&at| bytes.get(at + 1) == Some(&b' '))
        .map(|at| (&line[..at], &line[at + 2..]))
}

/// `esp-tls: message`: an ESP-IDF component's line whose level and time were cut off.
fn parse_component(line: &str) -> Option<IdfLine<'_>> {
    let (tag, message) = split_colon_space(line)?;
    COMPONENT_TAGS.contains(&tag).then_some(IdfLine { level: None, timestamp: None, tag, message })
}

/// Searchers built once (building one costs more than searching a line with it).
static SPACE_PAREN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" ("));
static BRACKETS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("]["));

/// An ESP-IDF or Arduino record inside a line, after text no prefix explains (a host time in an
/// unknown shape, a cut-off start, a poster's words).
fn find_embedded(line: &str) -> Option<Body<'_>> {
    let bytes = line.as_bytes();
    for paren in SPACE_PAREN.find_iter(bytes) {
        let Some(level_at) = paren.checked_sub(1) else { continue };
        // An ASCII level letter, so `level_at` starts a character.
        if !b"EWIDV".contains(&bytes[level_at]) || level_at > 0 && bytes[level_at - 1].is_ascii_alphanumeric() {
            continue;
        }
        if let Some(idf) = parse_idf(&line[level_at..]) {
            return Some(Body::Idf(idf));
        }
    }
    // `][esp32FOTA.cpp:460] execOTA(): ...`: an Arduino line whose start was cut.
    let bracket = BRACKETS.find(bytes)?;
    parse_bracketed(&line[bracket + 1..]).filter(|body| matches!(body, Body::Arduino(_)))
}

#[cfg(test)]
mod tests;
