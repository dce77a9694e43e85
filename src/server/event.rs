//! What happened on each connection, as typed events (the server never prints).

use std::net::SocketAddr;

use serde::Serialize;

/// One thing that happened on connection `id` (numbered from 1 in accept order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServerEvent {
    /// A TCP connection was accepted; the first event of every connection.
    Accepted {
        /// The connection's number.
        id: u64,
        /// The client's address and port.
        peer: SocketAddr,
    },
    /// What the client offered.
    ClientHello {
        /// The connection's number.
        id: u64,
        /// The host name the client asked for (SNI); `None` when it sent none.
        sni: Option<String>,
        /// The cipher suites offered, in the client's order, by rustls's names
        /// (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
        cipher_suites: Vec<String>,
        /// The key-exchange groups offered (`secp256r1`, `X25519`); empty when none were named.
        groups: Vec<String>,
        /// The signature schemes the client accepts (`RSA_PKCS1_SHA256`).
        signature_schemes: Vec<String>,
    },
    /// The TLS handshake completed: the device accepted the chain.
    HandshakeDone {
        /// The connection's number.
        id: u64,
        /// The negotiated protocol version (`TLSv1_2`).
        version: String,
        /// The negotiated cipher suite, by rustls's name.
        cipher_suite: String,
    },
    /// The handshake failed; `alert_from_client` is what the client said (an `unknown_ca`
    /// alert is evidence that the device rejected the chain).
    HandshakeFailed {
        /// The connection's number.
        id: u64,
        /// What went wrong, for people (rustls's error, a timeout, a shed connection).
        error: String,
        /// The alert the client sent, by rustls's name (`UnknownCA`, `BadCertificate`).
        alert_from_client: Option<String>,
    },
    /// A fault answered instead of TLS (a fatal alert, or plain HTTP on the TLS port).
    FaultBeforeTls {
        /// The connection's number.
        id: u64,
        /// What was sent instead (`fatal alert 48`, `plain HTTP on the TLS port`).
        fault: String,
    },
    /// An HTTP request was read over TLS.
    Request {
        /// The connection's number.
        id: u64,
        /// The request's method as sent (`GET`).
        method: String,
        /// The request's target as sent, query included.
        path: String,
    },
    /// The response as sent (the status line's code, the body bytes actually sent).
    Responded {
        /// The connection's number.
        id: u64,
        /// The HTTP status sent.
        status: u16,
        /// Body bytes written before the response ended or was cut.
        body_bytes: u64,
        /// The scenario's fault that shaped the response, as its `Debug` form; `None` for an
        /// honest response.
        fault: Option<String>,
    },
    /// The request was unreadable (too large, too slow, not HTTP).
    BadRequest {
        /// The connection's number.
        id: u64,
        /// Why it could not be read, for people.
        reason: String,
    },
    /// The connection ended; the last event of every connection.
    Closed {
        /// The connection's number.
        id: u64,
        /// How long the connection lasted from accept to close, in milliseconds.
        millis: u64,
        /// Response body bytes sent over the connection (0 when it never got to a response).
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
