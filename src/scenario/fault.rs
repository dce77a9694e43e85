//! Faults a scenario's server can inject.

use serde::Deserialize;

/// One fault, as named in `[server.fault]` (`kind = "..."`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this status (404, 403, 500, ...) and a small HTML body.
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// Redirect (301, 302, 307, 308) to `location`.
    Redirect {
        /// The HTTP status code; 302 by default.
        #[serde(default = "found")]
        status: u16,
        /// The `Location` header's value.
        location: String,
    },
    /// 200 with an HTML page instead of the image.
    HtmlBody,
    /// Stop after `after` bytes of the body; with `close_notify` the TLS close is clean.
    Truncate {
        /// Body bytes sent before stopping.
        after: u64,
        /// Whether TLS `close_notify` is sent before the TCP close (a clean end).
        #[serde(default)]
        close_notify: bool,
    },
    /// Stop sending for `seconds` after `after` bytes of the body.
    Stall {
        /// Body bytes sent before the stall.
        after: u64,
        /// How long nothing is sent, in seconds.
        seconds: u64,
    },
    /// Reset the TCP connection after `after` bytes of the body.
    Reset {
        /// Body bytes sent before the reset.
        after: u64,
    },
    /// The server goes away after `after` bytes of the body, as a server process that dies:
    /// every connection it has is reset and its listener closed, so it accepts nothing more
    /// (on the lab's shared listener, the route's new connections are reset at once).
    Kill {
        /// Body bytes sent before the server goes.
        after: u64,
    },
    /// Send the body at most `bytes_per_second`.
    Throttle {
        /// The most body bytes sent per second; more than 0.
        bytes_per_second: u64,
    },
    /// Announce this Content-Length whatever the body's real length.
    WrongContentLength {
        /// The announced length, in bytes.
        length: u64,
    },
    /// Speak plain HTTP on the TLS port.
    Plaintext,
    /// Send this fatal alert instead of a ServerHello.
    Alert {
        /// The alert's name, kebab-case (`unknown-ca`); `handshake-failure` by default.
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
    /// A `status` fault outside 100 to 599.
    #[error("status {status} is not an HTTP status")]
    Status {
        /// The status given.
        status: u16,
    },
    /// A redirect whose status is not a redirect's.
    #[error("redirect status {status} is not 301, 302, 303, 307 or 308")]
    RedirectStatus {
        /// The status given.
        status: u16,
    },
    /// A `location` that would end the header early (CR, LF) or is empty.
    #[error("redirect location {location:?} is empty or has a control character (CR, LF, ...)")]
    Location {
        /// The location given.
        location: String,
    },
    /// A throttle of 0 bytes per second, which never sends the image.
    #[error("bytes_per_second must be more than 0")]
    NoThroughput,
    /// An alert name not in RFC 8446's list of those a fault may send.
    #[error("unknown alert `{alert}` (known: {})", ALERTS.map(|(name, _)| name).join(", "))]
    UnknownAlert {
        /// The name given.
        alert: String,
    },
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
