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
