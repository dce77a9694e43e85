//! Names of the error codes an ESP32 prints during an update: mbedTLS (negative, printed in hex
//! or decimal) and `esp_err_t` (positive). Values from mbedTLS 2.28 / 3.6 headers and ESP-IDF's
//! `esp_err_to_name.c`.
//!
//! A code is named however it was printed: `-0x2700`, `-9984` and `MBEDTLS_ERR_X509_CERT_VERIFY_FAILED`
//! are one error, and so are the texts `mbedtls_strerror` prints for it.

mod esp_err;
mod mbedtls_table;

pub(crate) use esp_err::esp_err_by_name;
pub use esp_err::esp_err_name;

use mbedtls_table::TABLE;

/// Names mbedTLS 3.x gave to codes that 2.28 calls otherwise; shown in preference, because
/// the ESP-IDF releases that print these codes most (v5.x) carry mbedTLS 3.
const V3_NAMES: [(u16, &str); 4] = [
    (0x6E00, "MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE"),
    (0x6E80, "MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION"),
    (0x7300, "MBEDTLS_ERR_SSL_DECODE_ERROR"),
    (0x7A00, "MBEDTLS_ERR_SSL_BAD_CERTIFICATE"),
];

/// The low-level part of a code (`MBEDTLS_ERR_MPI_*`, `NET_*`, hardware modules).
const LOW_MASK: u16 = 0x007F;

/// The mbedTLS name of an error code (negative, as printed: `-0x2700`, `-9984`).
pub fn mbedtls_name(code: i32) -> Option<&'static str> {
    let magnitude = magnitude(code)?;
    if let Some((_, name)) = V3_NAMES.iter().find(|(value, _)| *value == magnitude) {
        return Some(name);
    }
    entry(magnitude).map(|(_, name, _)| name)
}

/// The names of a code's high-level and low-level parts: `-0x4290` is
/// `MBEDTLS_ERR_RSA_PUBLIC_FAILED` caused by `MBEDTLS_ERR_MPI_ALLOC_FAILED`. A code that is one
/// error has only the first.
pub(crate) fn mbedtls_parts(code: i32) -> (Option<&'static str>, Option<&'static str>) {
    let Some(magnitude) = magnitude(code) else { return (None, None) };
    let (high, low) = split(magnitude);
    match (high, low) {
        (0, _) | (_, 0) => (mbedtls_name(code), None),
        _ => (mbedtls_name(-i32::from(high)), mbedtls_name(-i32::from(low))),
    }
}

/// Whether mbedTLS knows the code, whole or as a high-level and a low-level part.
pub(crate) fn is_mbedtls_code(code: i32) -> bool {
    let (high, low) = mbedtls_parts(code);
    match magnitude(code).map(split) {
        Some((0, _) | (_, 0)) => high.is_some(),
        Some(_) => high.is_some() && low.is_some(),
        None => false,
    }
}

/// The code an mbedTLS error name stands for (2.28 and 3.x names).
pub(crate) fn mbedtls_code_of(name: &str) -> Option<i32> {
    let value = V3_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(value, _)| *value)
        .or_else(|| TABLE.iter().find(|(_, n, _)| *n == name).map(|(value, _, _)| *value))?;
    Some(-i32::from(value))
}

/// mbedTLS codes that mean an allocation failed, whole or in their low-level part (`-0x4290`:
/// an RSA operation failed because a big number could not be allocated).
pub(crate) fn is_alloc_failure(code: i32) -> bool {
    let Some(magnitude) = magnitude(code) else { return false };
    let (high, low) = split(magnitude);
    [high, low]
        .into_iter()
        .filter(|part| *part != 0)
        .any(|part| entry(part).is_some_and(|(_, name, _)| name.ends_with("_ALLOC_FAILED")))
}

/// The error whose `mbedtls_strerror` text `text` starts with, and how many bytes of `text` it
/// covers. A composite text (`RSA - ... : BIGNUM - ...`) gives the composite code. A text cut
/// short by a small buffer still names its error when what is left names only one.
pub(crate) fn mbedtls_text_at(text: &str) -> Option<(i32, usize)> {
    let (high, high_len) = text_entry_at(text)?;
    let rest = &text[high_len..];
    if let Some(low_text) = rest.strip_prefix(" : ")
        && let Some((low, low_len)) = text_entry_at(low_text)
    {
        return Some((-i32::from(high | low), high_len + 3 + low_len));
    }
    Some((-i32::from(high), high_len))
}

/// One table entry whose text `text` starts with (or that a cut `text` is the start of).
fn text_entry_at(text: &str) -> Option<(u16, usize)> {
    let (module, _) = text.split_once(" - ")?;
    if module.is_empty()
        || module.len() > 12
        || !module.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    if let Some((value, _, printed)) = TABLE.iter().find(|(_, _, printed)| text.starts_with(printed)) {
        return Some((*value, printed.len()));
    }
    // Cut short: the rest of the line is the start of exactly one text, long enough to mean it.
    let cut = text.trim_end();
    if cut.len() < module.len() + 3 + 12 {
        return None;
    }
    let mut matches = TABLE.iter().filter(|(_, _, printed)| printed.starts_with(cut));
    let (value, _, _) = matches.next()?;
    matches.next().is_none().then_some((*value, cut.len()))
}

fn magnitude(code: i32) -> Option<u16> {
    if code >= 0 {
        return None;
    }
    u16::try_from(code.unsigned_abs()).ok().filter(|m| *m != 0 && *m < 0x8000)
}

fn split(magnitude: u16) -> (u16, u16) {
    (magnitude & !LOW_MASK, magnitude & LOW_MASK)
}

fn entry(magnitude: u16) -> Option<(u16, &'static str, &'static str)> {
    let index = TABLE.binary_search_by_key(&magnitude, |(value, _, _)| *value).ok()?;
    TABLE.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arduino_decimal_codes_name_the_same_errors() {
        assert_eq!(mbedtls_name(-9984), Some("MBEDTLS_ERR_X509_CERT_VERIFY_FAILED"));
        assert_eq!(mbedtls_name(-12288), Some("MBEDTLS_ERR_X509_FATAL_ERROR"));
        assert_eq!(mbedtls_name(-16256), Some("MBEDTLS_ERR_PK_ALLOC_FAILED"));
        assert_eq!(mbedtls_name(-0x7100), Some("MBEDTLS_ERR_SSL_BAD_INPUT_DATA"));
        assert_eq!(mbedtls_name(-0x6E00), Some("MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE"));
        assert_eq!(mbedtls_name(-0x0099), None);
        assert_eq!(mbedtls_name(40), None);
    }

    #[test]
    fn composite_codes_name_both_parts() {
        assert_eq!(
            mbedtls_parts(-0x4290),
            (Some("MBEDTLS_ERR_RSA_PUBLIC_FAILED"), Some("MBEDTLS_ERR_MPI_ALLOC_FAILED"))
        );
        assert!(is_alloc_failure(-0x4290));
        assert!(is_alloc_failure(-0x7F00));
        assert!(!is_alloc_failure(-0x2700));
        assert!(is_mbedtls_code(-17040));
        assert!(!is_mbedtls_code(-0x427F));
    }

    #[test]
    fn names_of_both_generations_give_the_code() {
        assert_eq!(mbedtls_code_of("MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE"), Some(-0x7780));
        assert_eq!(mbedtls_code_of("MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE"), Some(-0x7A00));
        assert_eq!(mbedtls_code_of("MBEDTLS_ERR_SSL_BAD_CERTIFICATE"), Some(-0x7A00));
        assert_eq!(mbedtls_code_of("MBEDTLS_ERR_NOPE"), None);
    }

    #[test]
    fn strerror_texts_whole_cut_and_composite() {
        let verify = "X509 - Certificate verification failed, e.g. CRL, CA or signature check failed";
        assert_eq!(mbedtls_text_at(verify), Some((-0x2700, verify.len())));
        assert_eq!(mbedtls_text_at("X509 - Certificate verification failed, e.g."), Some((-0x2700, 44)));
        let oom = "RSA - The public key operation failed : BIGNUM - Memory allocation failed";
        assert_eq!(mbedtls_text_at(oom), Some((-0x4290, oom.len())));
        assert_eq!(mbedtls_text_at("SSL - The connection indicated an EOF`"), Some((-0x7280, 37)));
        assert_eq!(mbedtls_text_at("SSL - "), None);
        assert_eq!(mbedtls_text_at("WiFi - connected"), None);
    }
}
