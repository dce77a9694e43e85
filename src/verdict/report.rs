//! What is kept of a finished attempt: its outcome, the lines that show it, the error codes
//! it printed with their names, and the verification reasons.

use serde::Serialize;

use crate::codes;
use crate::console::EventKind;
use crate::outcome::Outcome;
use crate::verify_flags::FlagText;

/// Lines kept as evidence per attempt.
pub(super) const MAX_EVIDENCE: usize = 12;
/// Error codes kept per attempt.
const MAX_CODES: usize = 8;

/// A line that decided (or supports) an outcome.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// Line number, counted from 1.
    pub line: u64,
    /// The line as printed, without terminal escape codes.
    pub text: String,
}

/// An error code printed during an attempt, with its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorCode {
    /// Normalised: `-0x2700` for an mbedTLS code however it was printed (`-9984` too),
    /// `0x1503` for an `esp_err_t`, `errno 113`.
    pub code: String,
    /// The code's name (`MBEDTLS_ERR_X509_CERT_VERIFY_FAILED`, `ESP_ERR_HTTP_CONNECT`), when known.
    pub name: Option<&'static str>,
    /// For an mbedTLS code made of two parts (`-0x4290`), the low-level part's name
    /// (`MBEDTLS_ERR_MPI_ALLOC_FAILED`); `name` is then the high-level part's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
}

impl ErrorCode {
    /// The code an event carries, if any.
    pub(super) fn of(kind: &EventKind) -> Option<Self> {
        Some(match kind {
            EventKind::HandshakeFailed { code }
            | EventKind::TlsError { code }
            | EventKind::TlsSetupFailed { code }
            | EventKind::CaParseFailed { code }
            | EventKind::ReadFailed { code } => {
                let (name, cause) = codes::mbedtls_parts(*code);
                ErrorCode { code: format!("-0x{:04X}", code.unsigned_abs()), name, cause }
            }
            EventKind::ConnectFailed { errno: Some(errno) } => {
                ErrorCode { code: format!("errno {errno}"), name: None, cause: None }
            }
            EventKind::OtaWriteFailed { err: Some(err) } | EventKind::EspError { err } if *err != 0 => {
                ErrorCode { code: format!("0x{err:x}"), name: codes::esp_err_name(*err), cause: None }
            }
            _ => return None,
        })
    }
}

/// The verdict on one attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptReport {
    /// How the attempt ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The lines that decided it.
    pub evidence: Vec<Evidence>,
    /// First and last line that belonged to the attempt.
    pub lines: [u64; 2],
    /// The error codes printed during the attempt, in order.
    pub codes: Vec<ErrorCode>,
    /// Certificate verification reasons the device printed.
    pub verify_flags: Vec<FlagText>,
    /// ESP-IDF's certificate bundle took part in verifying the server.
    pub certificate_bundle: bool,
}

/// Adds `code` to `codes` unless it is there already or the list is full.
pub(super) fn note(codes: &mut Vec<ErrorCode>, code: ErrorCode) {
    if codes.len() < MAX_CODES && !codes.contains(&code) {
        codes.push(code);
    }
}
