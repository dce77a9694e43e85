//! Prefixes the host adds in front of what the device printed: serial monitors' arrival times
//! (`HH:MM:SS.mmm -> ` from the Arduino IDE, `HH:MM:SS.mmm > ` from PlatformIO,
//! `YYYY-MM-DD HH:MM:SS ` from `idf.py monitor --timestamps`), a bracketed host clock glued to
//! the line (`[08:27:20]I (730346) main: ...`, or with its `[` cut off by a paste), and
//! ESPHome's `[hh:mm:ss][D][esp-idf:000][task]: ` around ESP-IDF output.

use serde::Serialize;

use super::record::Level;

/// Who added a prefix in front of the device's own output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostPrefix {
    /// A serial monitor's arrival time (Arduino IDE, PlatformIO, idf.py monitor, a host clock
    /// in brackets).
    MonitorTimestamp,
    /// ESPHome's logger wrapping ESP-IDF output.
    EspHome,
}

/// The line without host prefixes, and the last prefix removed.
pub(crate) fn strip(line: &str) -> (Option<HostPrefix>, &str) {
    let mut host = None;
    let mut rest = line;
    if let Some(after) = strip_monitor_timestamp(rest).or_else(|| strip_glued_clock(rest)) {
        host = Some(HostPrefix::MonitorTimestamp);
        rest = after;
    }
    if let Some(after) = strip_esphome_idf_wrapper(rest) {
        host = Some(HostPrefix::EspHome);
        rest = after;
    }
    (host, rest)
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

/// A host clock in brackets in front of a line that is not itself bracketed (`[16:45:27.099]The
/// device reset...`, `[08:27:20]I (730346) ...`), or the same with its `[` lost in the paste
/// (`08:27:20]I (730346) ...`). A clock followed by `[` starts an ESPHome line and is left.
fn strip_glued_clock(line: &str) -> Option<&str> {
    let rest = skip_bracketed_clock(line).or_else(|| {
        let bytes = line.as_bytes();
        let len = skip_clock(bytes)?;
        let len = len + skip_millis(&bytes[len..]);
        line[len..].strip_prefix(']')
    })?;
    (!rest.starts_with('[')).then(|| rest.trim_start_matches(' '))
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
pub(super) fn skip_clock(b: &[u8]) -> Option<usize> {
    let shape = b.get(..8)?;
    let ok = shape.iter().enumerate().all(|(i, c)| match i {
        2 | 5 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    ok.then_some(8)
}

/// `.mmm` (any number of digits) → its length, or 0.
pub(super) fn skip_millis(b: &[u8]) -> usize {
    if b.first() != Some(&b'.') {
        return 0;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 { 0 } else { digits + 1 }
}

/// `[12:34:56]` or `[12:34:56.789]` at the start of a line → what follows it.
pub(super) fn skip_bracketed_clock(line: &str) -> Option<&str> {
    let (clock, rest) = line.strip_prefix('[')?.split_once(']')?;
    let clock = clock.as_bytes();
    (skip_clock(clock)? + skip_millis(&clock[8..]) == clock.len()).then_some(rest)
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

/// ESPHome's level letters: E W I C(onfig) D V VV.
pub(super) fn esphome_level(letters: &str) -> Option<Level> {
    match letters {
        "C" => Some(Level::Info),
        "VV" => Some(Level::Verbose),
        _ if letters.len() == 1 => Level::from_letter(letters.as_bytes()[0]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_monitor_prefixes() {
        for line in [
            "11:27:39.308 -> E (7513) esp-tls: x",
            "11:27:39.308 > E (7513) esp-tls: x",
            "9:5:07.123 -> E (7513) esp-tls: x",
            "2024-03-01 11:27:39 E (7513) esp-tls: x",
            "2024-03-01 11:27:39.308 E (7513) esp-tls: x",
            "[08:27:20]E (7513) esp-tls: x",
            "08:27:20]E (7513) esp-tls: x",
            "[13:52:30] E (7513) esp-tls: x",
        ] {
            assert_eq!(strip(line), (Some(HostPrefix::MonitorTimestamp), "E (7513) esp-tls: x"), "{line}");
        }
    }

    #[test]
    fn esphome_lines_keep_their_clock() {
        let native = "[23:45:15][E][nabu_media_player.pipeline:171]: Media reader encountered an error";
        assert_eq!(strip(native), (None, native));
        let wrapped = "[23:45:15][D][esp-idf:000][ann_read]: E (2819431) esp-tls-mbedtls: x";
        assert_eq!(strip(wrapped), (Some(HostPrefix::EspHome), "E (2819431) esp-tls-mbedtls: x"));
    }
}
