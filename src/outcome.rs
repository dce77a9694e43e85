//! Outcome classes and reasons: how an update, a TLS connection or a replayed log ended.
//!
//! The identifiers are a contract: reports, scenario expectations and external checks rely on
//! the kebab-case names below, so a variant is never renamed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How one update attempt (or one replayed log) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeClass {
    /// The new image was written and the device rebooted into it.
    Updated,
    /// The new image booted, then the bootloader went back to the old one.
    RolledBack,
    /// The device rejected the server's certificate chain.
    TlsVerify,
    /// No usable algorithm in common (curve, cipher suite, signature scheme).
    TlsCrypto,
    /// The server sent a fatal alert.
    TlsAlert,
    /// The peer did not speak TLS as expected.
    TlsProtocol,
    /// An allocation failed during TLS setup or download.
    OutOfMemory,
    /// DNS, connect, reset, EOF or timeout below TLS.
    Network,
    /// The server answered with a status the client refused.
    HttpStatus,
    /// The downloaded bytes are not a valid image.
    ImageInvalid,
    /// Panic, watchdog, brownout or reset loop.
    Crashed,
    /// Nothing decisive within the step's time limit.
    Timeout,
    /// The log ends before an outcome is known.
    Incomplete,
    /// The log says something failed but not what.
    Unknown,
}

/// Why a certificate chain was rejected (only for [`OutcomeClass::TlsVerify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyReason {
    /// No path to a trusted root: an unknown issuer, a wrong signature, a missing intermediate.
    Untrusted,
    /// A certificate's `notAfter` has passed on the device's clock.
    Expired,
    /// A certificate's `notBefore` is still ahead on the device's clock.
    NotYetValid,
    /// The leaf does not name the host the device connected to.
    Hostname,
    /// A certificate is signed with a hash the device's profile refuses (SHA-1, MD5).
    WeakHash,
    /// A key the device's profile refuses (RSA below its minimum, an unsupported curve).
    WeakKey,
    /// The leaf's key usage or extended key usage does not allow a TLS server.
    KeyUsage,
    /// The device said verification failed but no line says why.
    Unknown,
}

/// An outcome class with its reason, where the class has reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    pub outcome: OutcomeClass,
    /// Why the chain was rejected: only for [`OutcomeClass::TlsVerify`], `None` otherwise.
    pub reason: Option<VerifyReason>,
}

impl Outcome {
    /// An outcome of a class that carries no reason.
    pub const fn of(class: OutcomeClass) -> Self {
        Self { outcome: class, reason: None }
    }

    /// A certificate rejection for the given reason.
    pub const fn tls_verify(reason: VerifyReason) -> Self {
        Self { outcome: OutcomeClass::TlsVerify, reason: Some(reason) }
    }
}

impl OutcomeClass {
    /// The stable kebab-case identifier.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::RolledBack => "rolled-back",
            Self::TlsVerify => "tls-verify",
            Self::TlsCrypto => "tls-crypto",
            Self::TlsAlert => "tls-alert",
            Self::TlsProtocol => "tls-protocol",
            Self::OutOfMemory => "out-of-memory",
            Self::Network => "network",
            Self::HttpStatus => "http-status",
            Self::ImageInvalid => "image-invalid",
            Self::Crashed => "crashed",
            Self::Timeout => "timeout",
            Self::Incomplete => "incomplete",
            Self::Unknown => "unknown",
        }
    }
}

impl VerifyReason {
    /// The stable kebab-case identifier.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::Hostname => "hostname",
            Self::WeakHash => "weak-hash",
            Self::WeakKey => "weak-key",
            Self::KeyUsage => "key-usage",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for OutcomeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for VerifyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Some(reason) => write!(f, "{} / {}", self.outcome, reason),
            None => write!(f, "{}", self.outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_match_serde_names() {
        let all = [
            OutcomeClass::Updated,
            OutcomeClass::RolledBack,
            OutcomeClass::TlsVerify,
            OutcomeClass::TlsCrypto,
            OutcomeClass::TlsAlert,
            OutcomeClass::TlsProtocol,
            OutcomeClass::OutOfMemory,
            OutcomeClass::Network,
            OutcomeClass::HttpStatus,
            OutcomeClass::ImageInvalid,
            OutcomeClass::Crashed,
            OutcomeClass::Timeout,
            OutcomeClass::Incomplete,
            OutcomeClass::Unknown,
        ];
        for class in all {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
        }
        let json = serde_json::to_string(&VerifyReason::NotYetValid).unwrap();
        assert_eq!(json, "\"not-yet-valid\"");
    }
}
