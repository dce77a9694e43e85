//! Records → events: the exact strings ESP-IDF (v3.2 to v5.5), its bootloader and ROM,
//! Arduino-ESP32 (and the ESP8266 core's same-shaped lines), ESPHome, MicroPython and the
//! common update libraries print around an update, and what each means.
//!
//! A line of a recognised format is matched by its tag first, then by its message; messages
//! that any program prints (`mbedtls_ssl_handshake returned -0x2700`, `esp_ota_begin failed
//! (ESP_ERR_...)`) are found anywhere in an error line, whatever its tag. What a failure line
//! names (error codes, mbedTLS and `esp_err_t` names and texts) is read by [`super::facts`].
//! Text outside any format is read for the messages ROMs, panics and interpreters print, and
//! last for facts, which then carry [`Source::FreeText`] and never come from prose.

mod anywhere;
mod arduino;
mod esphome;
mod idf;
mod micropython;
mod text;

use super::event::{EventKind, Source};
use super::facts::{self, Fact};
use super::record::{Body, Level, Record};
use crate::verify_flags::{FlagText, VerifyFlag};

/// The few facts recognition needs from earlier lines.
#[derive(Debug, Default)]
pub(crate) struct Recogniser {
    /// The previous line was a `verification info:` line or one of its continuations.
    in_verify_info: bool,
    /// The previous line was an error line of a recognised format: a text line right after it
    /// may be its wrapped end (`esp_ota_begin failed` / `(ESP_ERR_OTA_PARTITION_CONFLICT)`).
    after_error_line: bool,
}

impl Recogniser {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// The event a record stands for, if any, and where it stands.
    pub(crate) fn recognise(&mut self, record: &Record<'_>) -> Option<(EventKind, Source)> {
        let continues_verify_info = std::mem::take(&mut self.in_verify_info);
        let after_error_line = std::mem::take(&mut self.after_error_line);
        let found = match record.body {
            Body::Idf(line) => {
                self.after_error_line = is_failure_level(line.level);
                idf::line(line).map(format)
            }
            Body::Arduino(line) => {
                self.after_error_line = is_failure_level(line.level);
                arduino::line(line).map(format)
            }
            Body::EspHome(line) => {
                self.after_error_line = is_failure_level(Some(line.level));
                esphome::line(line).map(format)
            }
            Body::Tagged(line) => arduino::tagged(line).map(format),
            Body::Text(text) if continues_verify_info => match verify_continuation(text) {
                Some(kind) => Some(format(kind)),
                None if text.trim().is_empty() => {
                    // The colour reset code lands on an empty line after the reasons.
                    self.in_verify_info = true;
                    return None;
                }
                None => text::line(text),
            },
            Body::Text(text) if after_error_line => continuation(text).map(format).or_else(|| text::line(text)),
            Body::Text(text) => text::line(text),
        };
        if matches!(found, Some((EventKind::VerifyInfo { .. }, _))) {
            self.in_verify_info = true;
        }
        found
    }
}

fn format(kind: EventKind) -> (EventKind, Source) {
    (kind, Source::Format)
}

/// Error and warning lines, and lines whose level a paste cut off.
fn is_failure_level(level: Option<Level>) -> bool {
    matches!(level, None | Some(Level::Error | Level::Warn))
}

/// The wrapped end of an error line: facts that agree, and no sentence around them.
fn continuation(text: &str) -> Option<EventKind> {
    let found = facts::scan(text);
    if facts::is_prose(text, &found) {
        return None;
    }
    facts::agreed(&found).and_then(failure_of_fact)
}

/// What an error line that names `fact` and nothing else reports.
pub(super) fn failure_of_fact(fact: Fact) -> Option<EventKind> {
    match fact {
        Fact::Mbedtls(code) if is_retry_code(code) => None,
        Fact::Mbedtls(code) => Some(EventKind::TlsError { code }),
        Fact::EspErr(err) if is_progress_err(err) => None,
        Fact::EspErr(err) => Some(EventKind::EspError { err }),
        Fact::Errno(12) => Some(EventKind::OutOfMemory),
        Fact::Errno(errno) if is_network_errno(errno) => Some(EventKind::ConnectFailed { errno: Some(errno) }),
        Fact::Errno(_) => None,
    }
}

/// The facts of a failure line of a recognised format (any agreeing fact will do).
pub(super) fn facts_of_failure_line(message: &str) -> Option<EventKind> {
    facts::agreed(&facts::scan(message)).and_then(failure_of_fact)
}

/// `MBEDTLS_ERR_SSL_WANT_READ` / `_WANT_WRITE`: try again, not a failure.
fn is_retry_code(code: i32) -> bool {
    matches!(code, -0x6900 | -0x6880)
}

/// `esp_err_t` values that report progress, not failure.
fn is_progress_err(err: u32) -> bool {
    matches!(err, 0 | 0x7006 | 0x7007 | 0x9001)
}

/// Socket errors of a connection that failed or broke, in newlib's numbering (ESP-IDF) and
/// Linux's (lwIP's own): `ECONNABORTED`, `ECONNRESET`, `ETIMEDOUT`, `ECONNREFUSED`,
/// `EHOSTDOWN`, `EHOSTUNREACH`, `ENETUNREACH`, `ENETDOWN`, `ENOTCONN`.
pub(super) fn is_network_errno(errno: i32) -> bool {
    matches!(errno, 103 | 104 | 110..=118 | 128)
}

pub(super) fn verify_info(info: &str, continued: bool) -> EventKind {
    let reasons = info
        .split("  ! ")
        .filter(|part| !part.trim().is_empty())
        .filter_map(VerifyFlag::from_text)
        .collect::<Vec<FlagText>>();
    EventKind::VerifyInfo { reasons, continued }
}

/// `  ! The certificate is not`: the next reason of a `verification info:` line (its indent
/// was peeled with the paste wrappers).
fn verify_continuation(text: &str) -> Option<EventKind> {
    text.trim_start().strip_prefix("! ").map(|reason| verify_info(reason, true))
}

/// `-0x2700`, `-0x0050`, `-0x50` → the negative code.
pub(super) fn parse_neg_hex(text: &str) -> Option<i32> {
    let digits = text.trim().strip_prefix("-0x")?;
    let digits = digits.split(|c: char| !c.is_ascii_hexdigit()).next()?;
    i32::from_str_radix(digits, 16).ok().map(|v| -v)
}

/// `-0x7280` or `-29312` (v3.2 prints read errors in decimal).
pub(super) fn parse_code(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.starts_with("-0x") {
        parse_neg_hex(text)
    } else {
        let end = text.char_indices().skip(1).find(|(_, c)| !c.is_ascii_digit()).map_or(text.len(), |(i, _)| i);
        text[..end].parse().ok()
    }
}

/// `0x110000` → 0x110000.
pub(super) fn parse_hex(text: &str) -> Option<u32> {
    let digits = text.trim().strip_prefix("0x")?;
    let digits = digits.split(|c: char| !c.is_ascii_hexdigit()).next()?;
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests;
