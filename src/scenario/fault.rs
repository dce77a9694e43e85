//! Faults a scenario's server can inject.

use serde::Deserialize;

/// One fault, as named in `[server.fault]` (`kind = "..."`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this status (404, 403, 500, ...) and a small HTML body.
    Status { status: u16 },
    /// Redirect (301, 302, 307, 308) to `location`.
    Redirect {
        #[serde(default = "found")]
        status: u16,
        location: String,
    },
    /// 200 with an HTML page instead of the image.
    HtmlBody,
    /// Stop after `after` bytes of the body; with `close_notify` the TLS close is clean.
    Truncate {
        after: u64,
        #[serde(default)]
        close_notify: bool,
    },
    /// Stop sending for `seconds` after `after` bytes of the body.
    Stall { after: u64, seconds: u64 },
    /// Reset the TCP connection after `after` bytes of the body.
    Reset { after: u64 },
    /// Send the body at most `bytes_per_second`.
    Throttle { bytes_per_second: u64 },
    /// Announce this Content-Length whatever the body's real length.
    WrongContentLength { length: u64 },
    /// Speak plain HTTP on the TLS port.
    Plaintext,
    /// Send this fatal alert instead of a ServerHello.
    Alert {
        #[serde(default = "handshake_failure")]
        alert: String,
    },
}

impl Fault {
    /// Checks values serde cannot: status ranges, known alert names.
    pub fn check(&self) -> Result<(), FaultError> {
        match self {
            Self::Status { status } if !(100..=599).contains(status) => Err(FaultError::Status { status: *status }),
            Self::Redirect { status, .. } if !matches!(status, 301 | 302 | 303 | 307 | 308) => {
                Err(FaultError::RedirectStatus { status: *status })
            }
            Self::Redirect { location, .. } if !is_header_value(location) => {
                Err(FaultError::Location { location: location.clone() })
            }
            Self::Throttle { bytes_per_second: 0 } => Err(FaultError::NoThroughput),
            Self::Alert { alert } if Self::alert_code(alert).is_none() => {
                Err(FaultError::UnknownAlert { alert: alert.clone() })
            }
            _ => Ok(()),
        }
    }

    /// The TLS alert description code for an alert name.
    pub(crate) fn alert_code(name: &str) -> Option<u8> {
        ALERTS.iter().find(|(known, _)| *known == name).map(|(_, code)| *code)
    }
}

/// Whether `text` can be sent as an HTTP header's value as it is: not empty, no control
/// characters (a CR or LF would end the header and start another).
fn is_header_value(text: &str) -> bool {
    !text.trim().is_empty() && !text.chars().any(char::is_control)
}

/// A fault value serde accepts but the server cannot send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("status {status} is not an HTTP status")]
    Status { status: u16 },
    #[error("redirect status {status} is not 301, 302, 303, 307 or 308")]
    RedirectStatus { status: u16 },
    /// A `location` that would end the header early (CR, LF) or is empty.
    #[error("redirect location {location:?} is empty or has a control character (CR, LF, ...)")]
    Location { location: String },
    #[error("bytes_per_second must be more than 0")]
    NoThroughput,
    #[error("unknown alert `{alert}` (known: {})", ALERTS.map(|(name, _)| name).join(", "))]
    UnknownAlert { alert: String },
}

/// TLS alert descriptions a fault may send (RFC 8446 section 6).
const ALERTS: [(&str, u8); 12] = [
    ("handshake-failure", 40),
    ("bad-certificate", 42),
    ("unsupported-certificate", 43),
    ("certificate-expired", 45),
    ("illegal-parameter", 47),
    ("unknown-ca", 48),
    ("access-denied", 49),
    ("decode-error", 50),
    ("protocol-version", 70),
    ("insufficient-security", 71),
    ("internal-error", 80),
    ("unrecognized-name", 112),
];

fn found() -> u16 {
    302
}

fn handshake_failure() -> String {
    "handshake-failure".to_owned()
}
