//! MicroPython on ESP32 (and ESP8266): the exception that ends a traceback, and what its
//! `ssl` module prints before raising one.
//!
//! Exceptions carry the error as a number (`OSError: -202`, `OSError: -29312`), as an errno
//! (`OSError: [Errno 113] EHOSTUNREACH`), or as a (code, name) tuple, for mbedTLS errors
//! (`OSError: (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')`) and for `esp_err_t`s that
//! `esp32.Partition` and the `ota` libraries pass on (`OSError: (-5379,
//! 'ESP_ERR_OTA_VALIDATE_FAILED')`). An exception without a code still says the program
//! failed.

use super::super::event::EventKind;
use super::super::facts;
use super::super::record::split_colon_space;
use super::{failure_of_fact, is_network_errno};

/// The event a MicroPython line stands for.
pub(super) fn line(text: &str) -> Option<EventKind> {
    if let Some(rest) = text.strip_prefix("MicroPython v") {
        // `MicroPython v1.13 on 2020-09-11; ESP module with ESP8266`.
        let (_, board) = rest.split_once("; ")?;
        return Some(EventKind::MicropythonStarted { axtls: board.ends_with("with ESP8266") });
    }
    if let Some(hex) = text.strip_prefix("mbedtls_ssl_handshake error: -") {
        // `printf("mbedtls_ssl_handshake error: -%x\n", -ret)`: hex without `0x`.
        let digits = hex.trim();
        return Some(EventKind::HandshakeFailed { code: -i32::from_str_radix(digits, 16).ok()? });
    }
    // Exception names start with a capital letter; most lines can stop here.
    if !text.as_bytes().first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    let (name, args) = split_colon_space(text).or_else(|| text.strip_suffix(':').map(|name| (name, "")))?;
    if !is_exception_name(name) {
        return None;
    }
    if matches!(name, "KeyboardInterrupt" | "SystemExit") {
        return None;
    }
    Some(exception(name, args.trim()))
}

/// `OSError`, `ValueError`, `Exception`, `ota.OTAError`.
fn is_exception_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let word = last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    word && last.starts_with(|c: char| c.is_ascii_uppercase())
        && (last.ends_with("Error")
            || last.ends_with("Exception")
            || last == "KeyboardInterrupt"
            || last == "SystemExit")
}

fn exception(name: &str, args: &str) -> EventKind {
    if let Some(errno) =
        args.strip_prefix("[Errno ").and_then(|rest| rest.split_once(']')).and_then(|(n, _)| n.parse::<i32>().ok())
    {
        return match errno {
            12 => EventKind::OutOfMemory,
            110 => EventKind::NetworkTimeout,
            errno if is_network_errno(errno) => EventKind::ConnectFailed { errno: Some(errno) },
            _ => EventKind::UpdateFailed,
        };
    }
    if name.ends_with("OSError")
        && let Ok(code) = args.parse::<i32>()
    {
        return bare_code(code);
    }
    facts::agreed(&facts::scan(args)).and_then(failure_of_fact).unwrap_or(EventKind::UpdateFailed)
}

/// `OSError: -202`: `getaddrinfo` failed (lwIP's `EAI_*` 200–204, or -2 for an unknown name);
/// `OSError: -29312`: an mbedTLS code from the old `ussl` module; a small negative number: an
/// `ssl` error of the axTLS port.
fn bare_code(code: i32) -> EventKind {
    match code {
        -204..=-200 | 200..=204 | -2 => EventKind::HostLookupFailed,
        _ if code <= -0x80 && crate::codes::is_mbedtls_code(code) => {
            failure_of_fact(facts::Fact::Mbedtls(code)).unwrap_or(EventKind::UpdateFailed)
        }
        -255..=-1 => EventKind::SslError { code },
        _ => EventKind::UpdateFailed,
    }
}

/// An `OSError` as `str()` renders it inside an application's own message: `[Errno -30592]
/// MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE` or `(-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')`,
/// the code and the name agreeing.
pub(super) fn rendered_os_error(text: &str) -> Option<EventKind> {
    let (code, name) = text
        .split_once("[Errno ")
        .and_then(|(_, rest)| rest.split_once("] "))
        .or_else(|| text.split_once("(-").and_then(|(_, rest)| rest.split_once(", '")))?;
    let code: i32 = code.trim_start_matches('-').parse().ok()?;
    let name_len = name.bytes().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_').count();
    let name = &name[..name_len];
    let agrees = match crate::codes::mbedtls_code_of(name) {
        Some(named) => named == -code,
        None => crate::codes::esp_err_by_name(name).is_some_and(|err| i64::from(err) == i64::from(code)),
    };
    let fact = facts::agreed(&facts::scan(name))?;
    agrees.then(|| failure_of_fact(fact)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_and_their_codes() {
        assert_eq!(line("OSError: -202"), Some(EventKind::HostLookupFailed));
        assert_eq!(line("OSError: -29312"), Some(EventKind::TlsError { code: -0x7280 }));
        assert_eq!(line("OSError: -40"), Some(EventKind::SslError { code: -40 }));
        assert_eq!(line("OSError: [Errno 113] EHOSTUNREACH"), Some(EventKind::ConnectFailed { errno: Some(113) }));
        assert_eq!(line("OSError: [Errno 12] ENOMEM"), Some(EventKind::OutOfMemory));
        assert_eq!(line("OSError: [Errno 5] EIO"), Some(EventKind::UpdateFailed));
        assert_eq!(
            line("Exception: (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')"),
            Some(EventKind::TlsError { code: -0x7780 })
        );
        assert_eq!(line("OSError: (-5379, 'ESP_ERR_OTA_VALIDATE_FAILED')"), Some(EventKind::EspError { err: 0x1503 }));
        assert_eq!(line("KeyboardInterrupt: "), None);
        assert_eq!(line("Note: nothing"), None);
    }

    #[test]
    fn banners_name_the_port() {
        let esp8266 = "MicroPython v1.13 on 2020-09-11; ESP module with ESP8266";
        assert_eq!(line(esp8266), Some(EventKind::MicropythonStarted { axtls: true }));
        let esp32 = "MicroPython v1.22.2 on 2024-02-22; Generic ESP32 module with ESP32";
        assert_eq!(line(esp32), Some(EventKind::MicropythonStarted { axtls: false }));
    }

    #[test]
    fn an_os_error_rendered_inside_a_message() {
        let wrapped = "Error to open a secure SSL/TLS connection ([Errno -30592] MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)";
        assert_eq!(rendered_os_error(wrapped), Some(EventKind::TlsError { code: -0x7780 }));
        let tuple = "update failed: (-5379, 'ESP_ERR_OTA_VALIDATE_FAILED')";
        assert_eq!(rendered_os_error(tuple), Some(EventKind::EspError { err: 0x1503 }));
        assert_eq!(rendered_os_error("([Errno -30592] MBEDTLS_ERR_SSL_CONN_EOF)"), None);
    }

    #[test]
    fn the_handshake_error_is_hex_without_0x() {
        assert_eq!(line("mbedtls_ssl_handshake error: -4290"), Some(EventKind::HandshakeFailed { code: -0x4290 }));
    }
}
