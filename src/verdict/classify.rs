//! What a single failure event means, as an outcome class.

use super::esp_err;
use crate::codes::is_alloc_failure;
use crate::console::EventKind;
use crate::outcome::{Outcome, OutcomeClass, VerifyReason};
use crate::verify_flags::FlagText;

/// Families of failures: a second failure of a compatible family in the same attempt is a
/// consequence of the first, not a new attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Handshake,
    Bundle,
    TlsSetup,
    Connect,
    Transfer,
    Http,
    Image,
    Memory,
    /// A call that returned an `esp_err_t` which names no cause (partition, state, `ESP_FAIL`).
    Call,
    Crash,
}

/// The family of a failure event, or `None` when the event is not a failure.
pub(super) fn family(kind: &EventKind) -> Option<Family> {
    use EventKind as E;
    Some(match kind {
        E::HandshakeFailed { .. } | E::SslError { .. } => Family::Handshake,
        E::TlsError { code } => code_family(*code),
        E::BundleNoMatch | E::BundleBadSignature | E::BundleRejected => Family::Bundle,
        E::TlsSetupFailed { .. } | E::CaParseFailed { .. } => Family::TlsSetup,
        E::ConnectFailed { .. } | E::HostLookupFailed | E::NetworkTimeout => Family::Connect,
        E::ReadFailed { .. } | E::DownloadCutShort => Family::Transfer,
        E::HttpStatus { .. } => Family::Http,
        E::ImageMagic { .. } | E::ImageChipMismatch | E::ImageHeaderShort | E::ImageCorrupt | E::SlotNotBootable => {
            Family::Image
        }
        E::OtaWriteFailed { err: Some(err) } if *err != 0 => Family::Image,
        E::OutOfMemory => Family::Memory,
        E::EspError { err } => esp_err::family(*err),
        E::Panic { .. }
        | E::Abort
        | E::Brownout
        | E::TaskWatchdog
        | E::StackOverflow
        | E::HeapCorrupt
        | E::ErrorCheckFailed
        | E::BootFailed
        | E::ResetLoop => Family::Crash,
        E::Reset { code, .. } if is_crash_reset(*code) => Family::Crash,
        _ => return None,
    })
}

/// The family of an mbedTLS code reported without a known operation.
fn code_family(code: i32) -> Family {
    if is_alloc_failure(code) {
        Family::Memory
    } else if is_network_code(code) {
        Family::Connect
    } else {
        Family::Handshake
    }
}

/// Whether a failure of family `next` following one of family `first` (with no new attempt
/// started in between) is part of the same attempt.
pub(super) fn continues(first: Family, next: Family, follow_on_seen: bool) -> bool {
    use Family as F;
    match (first, next) {
        // The bundle callback prints before the handshake returns -0x3000.
        (F::Bundle, F::Bundle | F::Handshake) => true,
        (F::Connect, F::Connect) => !follow_on_seen,
        // A cut download is then verified and found truncated.
        (F::Transfer, F::Transfer | F::Image) => true,
        (F::Image, F::Image) => true,
        (F::Memory, F::Memory | F::TlsSetup) => true,
        // A crash right after a failure, with no restart between, is the program tripping
        // over it (a NULL partition, an unchecked error): the failure decides.
        (_, F::Crash) => true,
        _ => false,
    }
}

/// Reset reasons of the ESP32 ROM that mean a watchdog or brownout fired.
pub(super) fn is_crash_reset(code: u32) -> bool {
    // 4 OWDT, 7 TG0WDT_SYS, 8 TG1WDT_SYS, 9 RTCWDT_SYS, 11 TGWDT_CPU, 13 RTCWDT_CPU,
    // 15 RTCWDT_BROWN_OUT. (16, RTCWDT_RTC_RESET, is also what many boards print at power-on.)
    matches!(code, 4 | 7 | 8 | 9 | 11 | 13 | 15)
}

/// TLS alert descriptions (RFC 5246, 8446): axTLS returns a received fatal alert as its number,
/// negated.
fn is_tls_alert(code: i32) -> bool {
    matches!(
        code.unsigned_abs(),
        10 | 20 | 21 | 22 | 30 | 40..=51 | 60 | 70 | 71 | 80 | 86 | 90 | 100 | 109..=116 | 120
    )
}

/// The outcome of a bare `ssl` error number.
pub(super) fn ssl_error_outcome(code: i32, axtls: bool) -> Outcome {
    if axtls && is_tls_alert(code) { Outcome::of(OutcomeClass::TlsAlert) } else { Outcome::of(OutcomeClass::Unknown) }
}

/// The outcome a failure event stands for. `flags` are the verification reasons printed in
/// the same attempt, `bundle_involved` whether the certificate bundle spoke.
pub(super) fn outcome_of(kind: &EventKind, flags: &[FlagText], bundle_involved: bool) -> Outcome {
    use EventKind as E;
    use OutcomeClass as C;
    match kind {
        E::HandshakeFailed { code } | E::TlsError { code } => code_outcome(*code, flags, bundle_involved),
        E::BundleNoMatch | E::BundleBadSignature | E::BundleRejected => Outcome::tls_verify(VerifyReason::Untrusted),
        E::TlsSetupFailed { code } | E::CaParseFailed { code } if is_alloc_failure(*code) => {
            Outcome::of(C::OutOfMemory)
        }
        E::TlsSetupFailed { .. } | E::CaParseFailed { .. } => Outcome::of(C::Unknown),
        E::ConnectFailed { .. } | E::HostLookupFailed | E::NetworkTimeout => Outcome::of(C::Network),
        E::ReadFailed { code } => match code_outcome(*code, flags, bundle_involved) {
            // A read error names no handshake failure; an unnamed code still broke the download.
            outcome if outcome.outcome == C::TlsVerify => Outcome::of(C::Unknown),
            outcome => outcome,
        },
        E::DownloadCutShort => Outcome::of(C::Network),
        E::HttpStatus { .. } => Outcome::of(C::HttpStatus),
        E::OutOfMemory => Outcome::of(C::OutOfMemory),
        E::EspError { err } => esp_err::outcome(*err),
        E::ArduinoUpdateError { code } | E::HttpClientError { code } => match arduino_update_family(*code) {
            Family::Connect => Outcome::of(C::Network),
            Family::Memory => Outcome::of(C::OutOfMemory),
            Family::Http => Outcome::of(C::HttpStatus),
            Family::Image => Outcome::of(C::ImageInvalid),
            _ => Outcome::of(C::Unknown),
        },
        // "Error: esp_ota_end failed! err=0x…. Image is invalid" with no esp_image line before
        // it: nothing (or nothing valid) was written.
        E::OtaEndFailed => Outcome::of(C::ImageInvalid),
        _ => match family(kind) {
            Some(Family::Image) => Outcome::of(C::ImageInvalid),
            Some(Family::Crash) => Outcome::of(C::Crashed),
            _ => Outcome::of(C::Unknown),
        },
    }
}

/// The family of an Arduino HTTPUpdate / HTTPClient / Updater error code.
pub(super) fn arduino_update_family(code: i32) -> Family {
    match code {
        // HTTPClient: connection refused ... read timeout; Updater: stream read timeout.
        -7..=-1 | -11..=-10 | 6 => Family::Connect,
        -8 => Family::Memory,
        // File not found, forbidden, wrong HTTP code.
        -104..=-102 => Family::Http,
        // Not enough space, wrong MD5, bad header, does not fit; Updater: space, MD5, magic,
        // activation (the new image failed its check).
        -100 | -107..=-105 | 4 | 7 | 8 | 9 => Family::Image,
        _ => Family::Transfer,
    }
}

/// mbedTLS codes of a connection that broke or never came up below TLS: EOF, reset,
/// receive/send failures, an unknown host, a refused connect, timeouts, a close notify.
fn is_network_code(code: i32) -> bool {
    matches!(
        code,
        -0x7280 | -0x7880 | -0x6800 | -0x0042 | -0x0044 | -0x0045 | -0x0047 | -0x004C | -0x004E | -0x0050 | -0x0052
    )
}

/// What an mbedTLS code returned by the handshake (or named by a failure line) means.
fn code_outcome(code: i32, flags: &[FlagText], bundle_involved: bool) -> Outcome {
    use OutcomeClass as C;
    match code {
        -0x2700 => Outcome::tls_verify(reason_of(flags)),
        -0x3000 if bundle_involved => Outcome::tls_verify(VerifyReason::Untrusted),
        -0x3000 => Outcome::tls_verify(reason_of(flags)),
        -0x7780 => Outcome::of(C::TlsAlert),
        code if is_network_code(code) => Outcome::of(C::Network),
        // No cipher suite, curve or signature scheme in common.
        -0x7380 | -0x6980 | -0x3A00 | -0x6E00 => Outcome::of(C::TlsCrypto),
        // Not TLS as expected: invalid record, unexpected or malformed message, wrong version.
        -0x7200 | -0x7700 | -0x7980 | -0x7A00 | -0x7300 | -0x6E80 | -0x2180 => Outcome::of(C::TlsProtocol),
        code if is_alloc_failure(code) => Outcome::of(C::OutOfMemory),
        _ => Outcome::of(C::Unknown),
    }
}

/// The mbedTLS code a failure event carries, to tell a repeat of the same error (its text on
/// one line, its code on the next) from a new failure.
pub(super) fn code_of(kind: &EventKind) -> Option<i32> {
    match kind {
        EventKind::HandshakeFailed { code }
        | EventKind::TlsError { code }
        | EventKind::TlsSetupFailed { code }
        | EventKind::ReadFailed { code } => Some(*code),
        _ => None,
    }
}

/// The reason of the first printed flag that names one; `unknown` when none does (v4.4+
/// prints no reason at the default log level).
pub(super) fn reason_of(flags: &[FlagText]) -> VerifyReason {
    flags
        .iter()
        .map(|f| f.flag.reason())
        .find(|reason| *reason != VerifyReason::Unknown)
        .unwrap_or(VerifyReason::Unknown)
}
