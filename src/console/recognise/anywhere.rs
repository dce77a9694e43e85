//! Messages that stand for the same thing whoever prints them and wherever in a line they
//! stand: the mbedTLS and `esp_ota_*` calls every OTA client makes and logs under its own tag
//! (`E (13597) ota: mbedtls_ssl_handshake returned -0x2700`, `E (9444) in: failed  !
//! mbedtls_ssl_handshake returned -0x4290`), and the lines ESP-IDF's examples and applications
//! print around an update.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::super::event::EventKind;
use super::super::facts::{self, Fact};
use super::{facts_of_failure_line, failure_of_fact, is_network_errno, parse_code, verify_info};

/// Searchers built once (building one costs more than searching a line with it).
static CALLS: LazyLock<[Finder<'static>; 5]> = LazyLock::new(|| {
    [
        "mbedtls_ssl_handshake returned ",
        "mbedtls_ssl_setup returned ",
        "mbedtls_x509_crt_parse returned ",
        "mbedtls_x509_crt_parse of CA cert returned ",
        " returned ",
    ]
    .map(Finder::new)
});
static PEER_VERIFY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Failed to verify peer certificate"));
static VERIFY_INFO: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("verification info:"));
static OPEN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Failed to open HTTP connection"));
static OTA_CALLS: LazyLock<[(Finder<'static>, &str); 5]> = LazyLock::new(|| {
    ["esp_ota_begin", "esp_ota_write", "esp_ota_end", "esp_ota_set_boot_partition", "esp_https_ota"]
        .map(|call| (Finder::new(call), call))
});
static ERRNO: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("errno"));
/// What several needles share: a line without it needs none of them searched.
static RETURNED: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" returned "));
static FAILED_TO: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Failed to "));
static ESP_CALL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("esp_"));

/// A known message anywhere in `msg`, and the byte where it starts.
pub(super) fn message_at(msg: &str) -> Option<(EventKind, usize)> {
    mbedtls_call(msg).or_else(|| ota_call(msg)).or_else(|| connection(msg))
}

/// A known message anywhere in `msg`.
pub(super) fn message(msg: &str) -> Option<EventKind> {
    message_at(msg).map(|(kind, _)| kind)
}

/// `mbedtls_ssl_handshake returned -0x2700` and the other mbedTLS calls clients log.
fn mbedtls_call(msg: &str) -> Option<(EventKind, usize)> {
    let calls = if RETURNED.find(msg.as_bytes()).is_some() { &CALLS[..] } else { &[] };
    for (n, call) in calls.iter().enumerate() {
        let Some(at) = call.find(msg.as_bytes()) else { continue };
        let Some(code) = parse_code(&msg[at + call.needle().len()..]).filter(|c| *c < 0) else { continue };
        let kind = match n {
            0 => EventKind::HandshakeFailed { code },
            1 => EventKind::TlsSetupFailed { code },
            2 | 3 => EventKind::CaParseFailed { code },
            // `net_connect returned -0x0052`, `x509_verify_cert() returned -12288 (-0x3000)`:
            // any call, when the code is one mbedTLS knows (and not `-1`, every library's).
            _ if code.unsigned_abs() >= facts::MIN_BARE_CODE && crate::codes::is_mbedtls_code(code) => {
                match failure_of_fact(Fact::Mbedtls(code)) {
                    Some(kind) => kind,
                    None => continue,
                }
            }
            _ => continue,
        };
        return Some((kind, at));
    }
    if FAILED_TO.find(msg.as_bytes()).is_some()
        && let Some(at) = PEER_VERIFY.find(msg.as_bytes())
    {
        return Some((EventKind::PeerVerifyFailed, at));
    }
    let at = VERIFY_INFO.find(msg.as_bytes())?;
    Some((verify_info(&msg[at + "verification info:".len()..], false), at))
}

/// `esp_ota_begin failed (ESP_ERR_...)`, `Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT`
/// (v3.x prints the number: `: 28674`), `esp_ota_end failed!`.
fn ota_call(msg: &str) -> Option<(EventKind, usize)> {
    if FAILED_TO.find(msg.as_bytes()).is_some()
        && let Some(at) = OPEN.find(msg.as_bytes())
    {
        let arg = msg[at + OPEN.needle().len()..].trim_start_matches([':', ' ']);
        let decimal = arg.parse::<u32>().ok().filter(|v| crate::codes::esp_err_name(*v).is_some());
        let kind = decimal
            .map(|err| EventKind::EspError { err })
            .or_else(|| facts_of_failure_line(arg))
            .unwrap_or(EventKind::ConnectionFailed);
        return Some((kind, at));
    }
    let calls = if ESP_CALL.find(msg.as_bytes()).is_some() { &OTA_CALLS[..] } else { &[] };
    for (finder, call) in calls {
        let call = *call;
        let Some(at) = finder.find(msg.as_bytes()) else { continue };
        let after = &msg[at + call.len()..];
        if !after.trim_start_matches(['(', ')']).trim_start().starts_with("failed") {
            continue;
        }
        let kind = match facts_of_failure_line(after) {
            Some(kind) => kind,
            None if call == "esp_ota_end" || call == "esp_ota_set_boot_partition" => EventKind::OtaEndFailed,
            None => EventKind::UpdateFailed,
        };
        return Some((kind, at));
    }
    None
}

/// `Connect to server failed! errno=113` and the like: a connection that failed with a socket
/// error.
fn connection(msg: &str) -> Option<(EventKind, usize)> {
    ERRNO.find(msg.as_bytes())?;
    let errno = facts::scan(msg).into_iter().find_map(|f| match f.fact {
        Fact::Errno(errno) if is_network_errno(errno) => Some(errno),
        _ => None,
    })?;
    let lower = msg.to_ascii_lowercase();
    let failed = lower.contains("connect") && (lower.contains("fail") || lower.contains("error"));
    failed.then_some((EventKind::ConnectFailed { errno: Some(errno) }, 0))
}

/// Lines that applications (ESP-IDF's examples, sketches, ESPHome) print around an update.
pub(super) fn app_message(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Starting OTA example"
        | "Starting OTA example..."
        | "Starting OTA example task"
        | "Connect to Wifi ! Start to Connect to Server...." => EventKind::UpdateCheck,
        _ if msg.starts_with("Attempting to download update from") => EventKind::UpdateCheck,
        "OTA Succeed, Rebooting..." | "Prepare to restart system!" => {
            EventKind::UpdateSucceeded { silent_bootloader: false }
        }
        "Firmware upgrade failed" | "Firmware Upgrades Failed" | "Exiting task due to fatal error..." => {
            EventKind::UpdateFailed
        }
        _ => return None,
    })
}

/// An application's own error line about its update (`OTA: OTA Update failed`, `[Web] OTA end
/// failed, aborting!`): the update failed, the line does not say why. The message itself
/// must speak of the update; a tag that does (`native_ota_example: Diagnostics failed!`) is
/// not enough.
pub(super) fn app_failure(msg: &str) -> Option<EventKind> {
    let lower = msg.to_ascii_lowercase();
    let about_update = ["ota", "firmware", "upgrade"].iter().any(|w| lower.contains(w));
    let failed = ["fail", "error", "abort"].iter().any(|w| lower.contains(w));
    (about_update && failed).then_some(EventKind::UpdateFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbedtls_calls_under_any_tag() {
        assert_eq!(
            message("failed  ! mbedtls_ssl_handshake returned -0x4290"),
            Some(EventKind::HandshakeFailed { code: -0x4290 })
        );
        assert_eq!(message(" failed ! net_connect returned -0x0052"), Some(EventKind::TlsError { code: -0x52 }));
        assert_eq!(
            message("ssl_tls.c:8765 x509_verify_cert() returned -12288 (-0x3000)"),
            Some(EventKind::TlsError { code: -0x3000 })
        );
        assert_eq!(message("wolfSSL_connect returned -0x1"), None);
        assert_eq!(message("Failed to verify peer certificate 28!"), Some(EventKind::PeerVerifyFailed));
    }

    #[test]
    fn ota_calls_with_their_esp_err() {
        assert_eq!(
            message("esp_ota_begin failed (ESP_ERR_OTA_PARTITION_CONFLICT)"),
            Some(EventKind::EspError { err: 0x1501 })
        );
        assert_eq!(message("esp_ota_begin failed (err=0x105)"), Some(EventKind::EspError { err: 0x105 }));
        assert_eq!(message("Failed to open HTTP connection: 28674"), Some(EventKind::EspError { err: 0x7002 }));
        assert_eq!(
            message("Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT"),
            Some(EventKind::EspError { err: 0x7002 })
        );
        assert_eq!(message("esp_ota_end failed!"), Some(EventKind::OtaEndFailed));
        assert_eq!(message("esp_ota_set_boot_partition failed! err=0x1503"), Some(EventKind::EspError { err: 0x1503 }));
        assert_eq!(message("esp_ota_begin succeeded"), None);
    }

    #[test]
    fn connections_that_failed_with_a_socket_error() {
        assert_eq!(message("Connect to server failed! errno=113"), Some(EventKind::ConnectFailed { errno: Some(113) }));
        assert_eq!(message("esp_transport_read returned:-26880 and errno:11"), None);
    }

    #[test]
    fn application_failure_lines() {
        assert_eq!(app_failure("OTA Update failed"), Some(EventKind::UpdateFailed));
        assert_eq!(app_failure("Firmware upgrade failed, restarting audio service"), Some(EventKind::UpdateFailed));
        assert_eq!(app_failure("Diagnostics failed! Start rollback to the previous version ..."), None);
        assert_eq!(app_failure("Error transport connect"), None);
        assert_eq!(app_failure("i2c_master_cmd_begin(1480): I2C bus is busy"), None);
    }
}
