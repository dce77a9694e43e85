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

fn found() -> u16 {
    302
}

fn handshake_failure() -> String {
    "handshake-failure".to_owned()
}
