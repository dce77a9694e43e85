//! What happened on each connection, as typed events (the server never prints).

use std::net::SocketAddr;

use serde::Serialize;

/// One thing that happened on connection `id` (numbered from 1 in accept order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServerEvent {
    Accepted {
        id: u64,
        peer: SocketAddr,
    },
    /// What the client offered.
    ClientHello {
        id: u64,
        sni: Option<String>,
        cipher_suites: Vec<String>,
        groups: Vec<String>,
        signature_schemes: Vec<String>,
    },
    HandshakeDone {
        id: u64,
        version: String,
        cipher_suite: String,
    },
    /// The handshake failed; `alert_from_client` is what the client said (an `unknown_ca`
    /// alert is evidence that the device rejected the chain).
    HandshakeFailed {
        id: u64,
        error: String,
        alert_from_client: Option<String>,
    },
    /// A fault answered instead of TLS (a fatal alert, or plain HTTP on the TLS port).
    FaultBeforeTls {
        id: u64,
        fault: String,
    },
    Request {
        id: u64,
        method: String,
        path: String,
    },
    /// The response as sent (the status line's code, the body bytes actually sent).
    Responded {
        id: u64,
        status: u16,
        body_bytes: u64,
        fault: Option<String>,
    },
    /// The request was unreadable (too large, too slow, not HTTP).
    BadRequest {
        id: u64,
        reason: String,
    },
    Closed {
        id: u64,
        millis: u64,
        bytes_sent: u64,
    },
}

impl ServerEvent {
    /// The connection the event belongs to.
    pub fn connection(&self) -> u64 {
        match self {
            Self::Accepted { id, .. }
            | Self::ClientHello { id, .. }
            | Self::HandshakeDone { id, .. }
            | Self::HandshakeFailed { id, .. }
            | Self::FaultBeforeTls { id, .. }
            | Self::Request { id, .. }
            | Self::Responded { id, .. }
            | Self::BadRequest { id, .. }
            | Self::Closed { id, .. } => *id,
        }
    }
}

impl std::fmt::Display for ServerEvent {
    /// One line for people: `#3 handshake failed: ...; alert from client: UnknownCA`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} ", self.connection())?;
        match self {
            Self::Accepted { peer, .. } => write!(f, "accepted from {peer}"),
            Self::ClientHello { sni, cipher_suites, .. } => {
                write!(f, "client hello, SNI {}, {} cipher suites", sni.as_deref().unwrap_or("-"), cipher_suites.len())
            }
            Self::HandshakeDone { version, cipher_suite, .. } => write!(f, "handshake done: {version} {cipher_suite}"),
            Self::HandshakeFailed { error, alert_from_client, .. } => {
                write!(
                    f,
                    "handshake failed: {error}; alert from client: {}",
                    alert_from_client.as_deref().unwrap_or("-")
                )
            }
            Self::FaultBeforeTls { fault, .. } => write!(f, "fault before TLS: {fault}"),
            Self::Request { method, path, .. } => write!(f, "request {method} {path}"),
            Self::Responded { status, body_bytes, fault, .. } => {
                write!(f, "responded {status}, {body_bytes} body bytes")?;
                match fault {
                    Some(fault) => write!(f, ", fault {fault}"),
                    None => Ok(()),
                }
            }
            Self::BadRequest { reason, .. } => write!(f, "bad request: {reason}"),
            Self::Closed { millis, bytes_sent, .. } => write!(f, "closed after {millis} ms, {bytes_sent} bytes sent"),
        }
    }
}
