//! Lines outside the logging formats: what the ROMs (ESP32 and ESP8266), panic handlers,
//! Arduino sketches and libraries, MicroPython and axTLS print as plain text; then known
//! messages after an unknown prefix, and last the facts a line names, which carry
//! [`Source::FreeText`] and never come from prose.

use super::super::event::{EventKind, Source};
use super::super::facts;
use super::{anywhere, arduino, failure_of_fact, micropython};

/// The event a plain-text line stands for, and where it stands.
pub(super) fn line(text: &str) -> Option<(EventKind, Source)> {
    let text = text.trim_start();
    device_text(text)
        .or_else(|| arduino::library_message(text))
        .or_else(|| micropython::line(text))
        .or_else(|| micropython::rendered_os_error(text))
        .map(|kind| (kind, Source::Format))
        .or_else(|| free_text(text))
}

/// ROM, bootloader and panic lines, and the lines of the HTTPUpdate and Update examples.
fn device_text(text: &str) -> Option<EventKind> {
    let first = *text.as_bytes().first()?;
    match first {
        b'r' => reset(text),
        b'w' => (text == "waiting for download").then_some(EventKind::DownloadMode),
        b'e' => {
            if text.starts_with("entry 0x") {
                Some(EventKind::RomEntry)
            } else {
                esp8266_reset(text)
            }
        }
        b'G' => panic(text.strip_prefix("Guru Meditation Error")?),
        b'a' => {
            (text.starts_with("abort() was called") || text.starts_with("assert failed: ")).then_some(EventKind::Abort)
        }
        b'B' => text.starts_with("Brownout detector was triggered").then_some(EventKind::Brownout),
        b'*' => text.starts_with("***ERROR*** A stack overflow").then_some(EventKind::StackOverflow),
        b'C' => text.starts_with("CORRUPT HEAP").then_some(EventKind::HeapCorrupt),
        b'E' => error_text(text),
        b'H' => http_update_example(text),
        b'I' => text.strip_prefix("I BOD: Brownout detector was triggered").map(|_| EventKind::Brownout),
        b'S' => text.starts_with("Soft WDT reset").then_some(EventKind::TaskWatchdog),
        b'f' | b'i' => {
            // The ROM could not read or recognise the 2nd-stage bootloader at 0x1000.
            (text.starts_with("flash read err") || text.starts_with("invalid header: 0x"))
                .then_some(EventKind::BootFailed)
        }
        _ => None,
    }
}

/// `Guru Meditation Error: Core  0 panic'ed (LoadProhibited). ...` (v3.x and later) or
/// `Guru Meditation Error of type LoadProhibited occurred on core   0.` (before).
fn panic(rest: &str) -> Option<EventKind> {
    let reason = match rest.strip_prefix(" of type ") {
        Some(old) => old.split_once(' ')?.0,
        None => rest.strip_prefix(": ")?.split_once("panic'ed (").and_then(|(_, r)| r.split_once(')'))?.0,
    };
    Some(EventKind::Panic { reason: reason.to_owned() })
}

fn error_text(text: &str) -> Option<EventKind> {
    if text.starts_with("ESP_ERROR_CHECK failed") {
        return Some(EventKind::ErrorCheckFailed);
    }
    if text.starts_with("ESP_ERROR_CHECK_WITHOUT_ABORT failed") {
        // The error is logged and the program goes on: the code is what failed.
        return super::facts_of_failure_line(text);
    }
    if let Some(rest) = text.strip_prefix("Exception (") {
        // The ESP8266 core's exception dump: `Exception (28):`.
        let (number, _) = rest.split_once(')')?;
        return Some(EventKind::Panic { reason: format!("Exception {number}") });
    }
    // axTLS (ESP8266 core 2.4): a fatal alert from the server is reported as its number.
    let alert: u8 = text.strip_prefix("Error: SSL error ")?.trim().parse().ok()?;
    (1..=120).contains(&alert).then_some(EventKind::HandshakeFailed { code: -0x7780 })
}

/// The HTTPUpdate examples' result lines (`FAILD` is how they spell it).
fn http_update_example(text: &str) -> Option<EventKind> {
    if text == "HTTP_UPDATE_OK" {
        return Some(EventKind::UpdateSucceeded { silent_bootloader: true });
    }
    let rest =
        text.strip_prefix("HTTP_UPDATE_FAILED Error (").or_else(|| text.strip_prefix("HTTP_UPDATE_FAILD Error ("))?;
    let code = rest.split_once(')')?.0.parse().ok()?;
    Some(EventKind::ArduinoUpdateError { code })
}

/// `rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)`.
fn reset(text: &str) -> Option<EventKind> {
    let rest = text.strip_prefix("rst:0x")?;
    let (code, rest) = rest.split_once(' ')?;
    let code = u32::from_str_radix(code, 16).ok()?;
    let reason = rest.strip_prefix('(')?.split_once(')')?.0;
    Some(EventKind::Reset { code, reason: reason.to_owned() })
}

/// The ESP8266 ROM: `ets Jan  8 2013,rst cause:2, boot mode:(3,6)`. Its causes share the
/// ESP32's numbers: 1 power on, 2 external, 3 software, 4 watchdog, 5 deep sleep.
fn esp8266_reset(text: &str) -> Option<EventKind> {
    let rest = text.strip_prefix("ets ")?.split_once(",rst cause:")?.1;
    let (code, _) = rest.split_once(',')?;
    let code: u32 = code.trim().parse().ok()?;
    let reason = match code {
        1 => "POWERON",
        2 => "EXT_RESET",
        3 => "SW_RESET",
        4 => "WDT_RESET",
        5 => "DEEPSLEEP_RESET",
        _ => "RESET",
    };
    Some(EventKind::Reset { code, reason: reason.to_owned() })
}

/// A known message after text no format explains, or the facts a line names. The text around
/// them must not be prose (two ordinary words around a message, three around facts), the facts must agree and come in two forms at least (a name and
/// its code, a code and its text): a line that only mentions an error name is a list or a
/// sentence, not a report.
fn free_text(text: &str) -> Option<(EventKind, Source)> {
    if is_source_code(text) {
        return None;
    }
    if let Some((kind, at)) = anywhere::message_at(text) {
        if at == 0 {
            return Some((kind, Source::Format));
        }
        // The message runs to the last error it names; two ordinary words around it already
        // make a sentence of it (`then I saw ...`, `... was printed twice`).
        let end = facts::scan(&text[at..]).last().map_or(text.len(), |f| at + f.span.end);
        let words = facts::ordinary_words(&text[..at], &[], 2) + facts::ordinary_words(&text[end..], &[], 2);
        return (words < 2).then_some((kind, Source::FreeText));
    }
    let found = facts::scan(text);
    if found.len() < 2 || facts::is_prose(text, &found) {
        return None;
    }
    facts::agreed(&found).and_then(failure_of_fact).map(|kind| (kind, Source::FreeText))
}

/// A pasted header or source line (`#define MBEDTLS_ERR_SSL_CONN_EOF -0x7280`, `case
/// ESP_ERR_NO_MEM:`): it names errors without reporting one.
fn is_source_code(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with('#')
        || text.starts_with("case ")
        || text.starts_with("return ")
        || text.ends_with(';')
        || text.ends_with('{')
}
