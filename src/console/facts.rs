//! Facts in a piece of text: the errors it names, in whatever form they were written.
//!
//! An mbedTLS error is written as its name (`MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE`), its code in
//! hex (`-0x7780`) or decimal (`-30592`), or the text `mbedtls_strerror` prints for it (`SSL - A
//! fatal alert message was received from our peer`); an `esp_err_t` as its name or as a number
//! after `err=`; a socket error as `errno 113`. The scanner finds them anywhere in a line, after
//! any prefix, and says which bytes they cover, so that what is left can be judged: a line
//! whose words around the facts read as a sentence is prose, and prose decides nothing.

use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::codes;

/// An error a line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fact {
    /// An mbedTLS error code (negative).
    Mbedtls(i32),
    /// An `esp_err_t` value (`ESP_FAIL` as `0xFFFF_FFFF`).
    EspErr(u32),
    /// A socket `errno` (lwIP's numbering).
    Errno(i32),
}

/// A fact and the bytes of the line that state it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub fact: Fact,
    pub span: Range<usize>,
}

/// Facts kept per line; a line naming more is a list, not a report.
const MAX_FACTS: usize = 8;
/// The smallest mbedTLS code taken from a bare number: below the network module's (`-0x42`)
/// the numbers are every library's return codes (`-1`, `-40`) far more often than one of
/// mbedTLS's crypto modules' internal errors.
pub(super) const MIN_BARE_CODE: u32 = 0x42;
/// Words before a decimal number that make it an error code (`returned -9984`, `code: -80`).
const CODE_WORDS: [&str; 6] = ["returned", "return", "ret", "error", "err", "code"];

/// Searchers for what facts contain, built once: building one costs more than searching a
/// console line with it.
static ERR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("_ERR_"));
static ESP_FAIL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("ESP_FAIL"));
static TEXT_DASH: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" - "));
static HEX: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("0x"));
static ERRNO: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("errno"));
static UNKNOWN_CODE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("UNKNOWN ERROR CODE ("));
/// What stands before an `esp_err_t` number (`err=0x105`).
const ESP_ERR_MARKERS: [&str; 6] = ["err=", "err ", "error=", "error ", "esp_err_t ", "err = "];

/// Every fact in `text`, in the order they stand.
pub fn scan(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    names(text, &mut found);
    strerror_texts(text, &mut found);
    numbers(text, &mut found);
    errnos(text, &mut found);
    found.sort_by_key(|f| f.span.start);
    found.truncate(MAX_FACTS);
    found
}

/// `MBEDTLS_ERR_*`, `ESP_ERR_*` and `ESP_FAIL` as whole words.
fn names(text: &str, found: &mut Vec<Found>) {
    let bytes = text.as_bytes();
    let starts = ERR.find_iter(bytes).filter_map(|err| {
        if bytes[..err].ends_with(b"MBEDTLS") {
            Some((err - 7, true))
        } else {
            bytes[..err].ends_with(b"ESP").then(|| (err - 3, false))
        }
    });
    let fails = ESP_FAIL.find_iter(bytes).map(|start| (start, false));
    for (start, mbedtls) in starts.chain(fails) {
        if start > 0 && is_name_byte(bytes[start - 1]) {
            continue;
        }
        let len = text[start..].bytes().take_while(|b| is_name_byte(*b)).count();
        let name = &text[start..start + len];
        let fact = if mbedtls {
            codes::mbedtls_code_of(name).map(Fact::Mbedtls)
        } else {
            codes::esp_err_by_name(name).map(Fact::EspErr)
        };
        if let Some(fact) = fact {
            push(found, fact, start..start + len);
        }
    }
}

/// `X509 - Certificate verification failed, ...` and mbedTLS's own `UNKNOWN ERROR CODE (0050)`.
fn strerror_texts(text: &str, found: &mut Vec<Found>) {
    for dash in TEXT_DASH.find_iter(text.as_bytes()) {
        // The module name before ` - ` is ASCII, so the byte after it starts a character.
        let start = text.as_bytes()[..dash].iter().rposition(|b| !is_name_byte(*b)).map_or(0, |i| i + 1);
        if start == dash {
            continue;
        }
        if let Some((code, len)) = codes::mbedtls_text_at(&text[start..]) {
            push(found, Fact::Mbedtls(code), start..start + len);
        }
    }
    const UNKNOWN: &str = "UNKNOWN ERROR CODE (";
    if let Some(start) = UNKNOWN_CODE.find(text.as_bytes()) {
        let digits = &text[start + UNKNOWN.len()..];
        let len = digits.bytes().take_while(u8::is_ascii_hexdigit).count();
        if let Ok(value) = u16::from_str_radix(&digits[..len], 16)
            && digits[len..].starts_with(')')
            && u32::from(value) >= MIN_BARE_CODE
        {
            push(found, Fact::Mbedtls(-i32::from(value)), start..start + UNKNOWN.len() + len + 1);
        }
    }
}

/// Negative hex codes anywhere, negative decimal codes after a word that makes them codes, and
/// `esp_err_t` numbers after `err=` / `esp_err_t`.
fn numbers(text: &str, found: &mut Vec<Found>) {
    let bytes = text.as_bytes();
    for minus in memchr::memchr_iter(b'-', bytes) {
        if minus > 0 && bytes[minus - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &text[minus + 1..];
        if let Some(hex) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            let len = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
            if let Some(code) = bare_code(&hex[..len], 16) {
                push(found, Fact::Mbedtls(code), minus..minus + 3 + len);
            }
        } else if after_code_word(&text[..minus]) {
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Some(code) = bare_code(&rest[..len], 10) {
                push(found, Fact::Mbedtls(code), minus..minus + 1 + len);
            }
        }
    }
    for hex in HEX.find_iter(bytes) {
        let Some(marker) = ESP_ERR_MARKERS.iter().find(|m| bytes[..hex].ends_with(m.as_bytes())) else { continue };
        let digits_at = hex + 2;
        let len = text[digits_at..].bytes().take_while(u8::is_ascii_hexdigit).count();
        if let Some(err) = esp_err_number(&text[digits_at..digits_at + len]) {
            push(found, Fact::EspErr(err), hex - marker.len()..digits_at + len);
        }
    }
}

/// `errno 113`, `errno=113`, `errno: 113`, `(errno 113)`.
fn errnos(text: &str, found: &mut Vec<Found>) {
    for at in ERRNO.find_iter(text.as_bytes()) {
        let rest = &text[at + 5..];
        let skip = rest.bytes().take_while(|b| matches!(b, b' ' | b'=' | b':')).count();
        let digits = &rest[skip..];
        let len = digits.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 4 {
            continue;
        }
        if let Ok(errno) = digits[..len].parse::<i32>() {
            push(found, Fact::Errno(errno), at..at + 5 + skip + len);
        }
    }
}

/// A code from bare digits: one mbedTLS knows, and not a small return value.
fn bare_code(digits: &str, radix: u32) -> Option<i32> {
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let value = u32::from_str_radix(digits, radix).ok().filter(|v| *v >= MIN_BARE_CODE)?;
    let code = -i32::try_from(value).ok()?;
    codes::is_mbedtls_code(code).then_some(code)
}

/// `0x1503` → 0x1503; ESP-IDF v3.2 prints decimals behind `0x` (`err=0x5379` for 0x1503), so a
/// number that names nothing in hex is read once more as decimal.
pub(super) fn esp_err_number(digits: &str) -> Option<u32> {
    let named = |value: u32| (value != 0 && codes::esp_err_name(value).is_some()).then_some(value);
    u32::from_str_radix(digits, 16).ok().and_then(named).or_else(|| digits.parse().ok().and_then(named))
}

/// Whether the text before a number ends with a word that makes the number an error code.
fn after_code_word(before: &str) -> bool {
    let trimmed = before.trim_end_matches([' ', ':', '=', '(']);
    // The word is ASCII letters, so the byte after the last other byte starts a character.
    let word_start = trimmed.bytes().rposition(|b| !b.is_ascii_alphabetic()).map_or(0, |i| i + 1);
    let word = &trimmed[word_start..];
    trimmed.len() < before.len() && CODE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

fn push(found: &mut Vec<Found>, fact: Fact, span: Range<usize>) {
    let overlaps = found.iter().any(|f| f.span.start < span.end && span.start < f.span.end);
    if !overlaps && found.len() < MAX_FACTS {
        found.push(Found { fact, span });
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// Whether the words of `text` outside the facts read as a sentence: three or more ordinary
/// words (lowercase or capitalised, two letters or more, not part of an identifier). A device
/// line has a message of a few words at most around its codes; a changelog, a release note or
/// a poster's comment has more.
pub(crate) fn is_prose(text: &str, facts: &[Found]) -> bool {
    ordinary_words(text, facts, 3) >= 3
}

/// Ordinary words in `text` outside `facts`, counted up to `limit`.
pub(crate) fn ordinary_words(text: &str, facts: &[Found], limit: usize) -> usize {
    let bytes = text.as_bytes();
    let mut words = 0;
    let mut i = 0;
    while i < bytes.len() && words < limit {
        if let Some(f) = facts.iter().find(|f| f.span.start == i) {
            i = f.span.end.max(i + 1);
            continue;
        }
        if !bytes[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'\'') {
            i += 1;
        }
        let word = &bytes[start..i];
        let glued = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_digit() || matches!(b, b'_' | b'/' | b'.' | b'-'));
        let in_identifier = glued(start.checked_sub(1).and_then(|s| bytes.get(s)))
            || (glued(bytes.get(i)) && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric));
        let ordinary = word.len() >= 2 && word[1..].iter().all(|b| !b.is_ascii_uppercase());
        if ordinary && !in_identifier {
            words += 1;
        }
    }
    words
}

/// The one error the facts agree on, or `None` when they name none or several. Forms of one
/// mbedTLS error (name, hex, decimal, text) agree; an `esp_err_t` agrees only with itself.
pub(crate) fn agreed(facts: &[Found]) -> Option<Fact> {
    let first = facts.first()?.fact;
    facts.iter().all(|f| f.fact == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> Vec<Fact> {
        scan(text).into_iter().map(|f| f.fact).collect()
    }

    #[test]
    fn every_form_of_an_mbedtls_error() {
        let line = "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE (-0x7780, -30592): SSL - A fatal alert message was received from our peer";
        assert_eq!(facts(line), vec![Fact::Mbedtls(-0x7780); 3]);
        assert!(!is_prose(line, &scan(line)));
        assert_eq!(facts("Exception: (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')"), [Fact::Mbedtls(-0x7780)]);
        assert_eq!(facts("esp_transport_read returned:-26880 and errno:11"), [Fact::Mbedtls(-0x6900), Fact::Errno(11)]);
        assert_eq!(facts("(-80) UNKNOWN ERROR CODE (0050)"), [Fact::Mbedtls(-0x50)]);
        assert_eq!(facts("rssi -80 dBm, channel 6"), []);
        assert_eq!(facts("wolfSSL_connect returned -0x1"), []);
    }

    #[test]
    fn esp_err_names_and_numbers() {
        assert_eq!(facts("esp_ota_begin failed (ESP_ERR_OTA_PARTITION_CONFLICT)"), [Fact::EspErr(0x1501)]);
        assert_eq!(facts("esp_ota_begin failed (err=0x105)"), [Fact::EspErr(0x105)]);
        assert_eq!(facts("Error: esp_ota_end failed! err=0x5379. Image is invalid"), [Fact::EspErr(0x1503)]);
        assert_eq!(
            facts("ESP_ERROR_CHECK_WITHOUT_ABORT failed: esp_err_t 0x1503 (ESP_ERR_OTA_VALIDATE_FAILED)"),
            [Fact::EspErr(0x1503), Fact::EspErr(0x1503)]
        );
        assert_eq!(facts("MY_ESP_ERR_THING"), []);
    }

    #[test]
    fn sentences_around_error_names_are_prose() {
        for line in [
            "- esp_https_ota: Fixed a bug where ESP_ERR_HTTP_CONNECT was returned for TLS errors (#1234)",
            "I keep getting MBEDTLS_ERR_X509_CERT_VERIFY_FAILED when I connect to my server",
            "* ESP_ERR_OTA_VALIDATE_FAILED: Error if OTA app image is invalid",
        ] {
            assert!(is_prose(line, &scan(line)), "{line}");
        }
        for line in
            ["OSError: -202", "Error: -0x2700 (-9984)", "ESP_ERR_HTTP_CONNECT (0x7002)", "esp-tls.c:123 err=0x8001"]
        {
            assert!(!is_prose(line, &scan(line)), "{line}");
        }
    }

    #[test]
    fn facts_agree_on_one_error_or_none() {
        assert_eq!(agreed(&scan("ESP_ERR_HTTP_CONNECT, ESP_ERR_HTTP_FETCH_HEADER")), None);
        assert_eq!(agreed(&scan("ESP_ERR_NO_MEM -0x7F00")), None);
        assert_eq!(agreed(&scan("returned -9984 MBEDTLS_ERR_X509_CERT_VERIFY_FAILED")), Some(Fact::Mbedtls(-0x2700)));
    }
}
