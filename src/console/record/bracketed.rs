//! Formats that start with brackets: Arduino-ESP32's `[ms][L][file:line] func(): msg`,
//! ESPHome's `[hh:mm:ss][L][tag:line]: msg` (and the columns its log viewers copy), `[tag]`
//! debug lines, and application loggers whose bracket names the level.

use super::{ArduinoLine, Body, EspHomeLine, Level, TaggedLine, host};

/// Arduino-ESP32, ESPHome and `[tag]` debug lines, which all start with brackets.
pub(super) fn parse_bracketed(line: &str) -> Option<Body<'_>> {
    if let Some(rest) = host::skip_bracketed_clock(line) {
        return parse_esphome(rest);
    }
    let inner = line.strip_prefix('[')?;
    let (first, after) = inner.split_once(']')?;
    if let Some(body) = parse_arduino_origin(first, after, None, None) {
        return Some(body);
    }
    let trimmed = first.trim_start();
    if !trimmed.is_empty() && trimmed.bytes().all(|c| c.is_ascii_digit()) {
        // Arduino 2.x/3.x: `[%6u]` milliseconds since boot, then the level.
        let (level, rest) = after.strip_prefix('[')?.split_once(']')?;
        let (origin, rest) = rest.strip_prefix('[')?.split_once(']')?;
        return parse_arduino_origin(origin, rest, host::esphome_level(level), trimmed.parse().ok());
    }
    if let Some(level) = host::esphome_level(first) {
        let (origin, rest) = after.strip_prefix('[')?.split_once(']')?;
        if rest.starts_with(": ") || rest.starts_with('[') {
            return parse_esphome(line);
        }
        return parse_arduino_origin(origin, rest, Some(level), None);
    }
    parse_tagged(first, after)
}

/// `[file.c:line] func(): message` once the brackets before it are read.
fn parse_arduino_origin<'a>(
    origin: &'a str,
    after: &'a str,
    level: Option<Level>,
    millis: Option<u64>,
) -> Option<Body<'a>> {
    let (file, line) = origin.split_once(':')?;
    if file.is_empty() || !file.contains('.') || line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let message = after.strip_prefix(' ').unwrap_or(after);
    let message = match message.split_once("(): ") {
        Some((func, message)) if !func.contains(' ') => message,
        _ => message,
    };
    Some(Body::Arduino(ArduinoLine { level, millis, file, message }))
}

/// ESPHome: `[L][tag:line]: message` or `[L][tag:line][task]: message`.
fn parse_esphome(line: &str) -> Option<Body<'_>> {
    let (level, rest) = line.strip_prefix('[')?.split_once(']')?;
    let level = host::esphome_level(level)?;
    let (origin, rest) = rest.strip_prefix('[')?.split_once(']')?;
    let message = match rest.strip_prefix('[') {
        Some(task) => task.split_once("]: ")?.1,
        None => rest.strip_prefix(": ")?,
    };
    let tag = origin.split_once(':').map_or(origin, |(tag, _)| tag);
    Some(Body::EspHome(EspHomeLine { level, tag, message }))
}

/// `[httpUpdate] message` or `[HTTP-Client][end] message`.
fn parse_tagged<'a>(tag: &'a str, after: &'a str) -> Option<Body<'a>> {
    let name_like = |s: &str| {
        (2..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    };
    if !name_like(tag) {
        // An application logger's bracket: `[12:12:44.340 ERROR @ utils.cpp:357]`.
        let level = level_word(tag).filter(|_| tag.len() <= 64)?;
        return Some(Body::Tagged(TaggedLine { tag, level: Some(level), message: after.trim_start() }));
    }
    let after = match after.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        Some((function, rest)) if name_like(function) => rest,
        _ => after,
    };
    Some(Body::Tagged(TaggedLine { tag, level: level_word(tag), message: after.trim_start() }))
}

/// ESPHome lines as its log viewers copy them: `19:46:41 | [W] | [esphome.ota:362] | message`
/// (the web log of 2025 and later) or the same columns separated by tabs (Home Assistant's).
pub(super) fn parse_esphome_columns(line: &str) -> Option<Body<'_>> {
    let clock_len = host::skip_clock(line.as_bytes())?;
    let clock_len = clock_len + host::skip_millis(&line.as_bytes()[clock_len..]);
    let rest = &line[clock_len..];
    let separator = if rest.starts_with(" | ") {
        " | "
    } else if rest.starts_with('\t') {
        "\t"
    } else {
        return None;
    };
    let mut columns = rest[separator.len()..].splitn(3, separator);
    let level = host::esphome_level(columns.next()?.strip_prefix('[')?.strip_suffix(']')?)?;
    let origin = columns.next()?.strip_prefix('[')?.strip_suffix(']')?;
    let message = columns.next()?;
    let tag = origin.split_once(':').map_or(origin, |(tag, _)| tag);
    Some(Body::EspHome(EspHomeLine { level, tag, message }))
}

/// The level a logger's bracket names: a word of it is `ERROR`, `WARN`, `INFO`, `DEBUG` (any
/// case, a few spellings).
fn level_word(bracket: &str) -> Option<Level> {
    bracket.split(|c: char| !c.is_ascii_alphabetic()).find_map(|word| {
        Some(match word.to_ascii_uppercase().as_str() {
            "ERROR" | "ERR" | "FATAL" | "CRITICAL" => Level::Error,
            "WARN" | "WARNING" => Level::Warn,
            "INFO" => Level::Info,
            "DEBUG" => Level::Debug,
            "VERBOSE" | "TRACE" => Level::Verbose,
            _ => return None,
        })
    })
}
