//! How an ESP32's TLS client judges a server's certificate chain: the real mbedTLS (2.28, the
//! `mbedtls` crate, built without `MBEDTLS_HAVE_TIME_DATE` like every default ESP-IDF build),
//! configured as the firmware's ESP-IDF version configures it — default certificate profile
//! (no SHA-1, RSA ≥ 2048), the host name checked, the firmware's PEM roots or its certificate
//! bundle.
//!
//! Two seams emulate what a single build of the library cannot be:
//! - **Date checks** (firmware built with `MBEDTLS_HAVE_TIME_DATE`), against the device's own
//!   clock, per verification: the trusted roots are offered time-valid first (what the library
//!   with dates does when it picks among several candidate parents), and the verify callback
//!   sets `EXPIRED`/`FUTURE` on every certificate of the path, the trusted root included, as
//!   `x509_crt_verify_chain` does. Nothing is process-wide, so twins with different clocks run
//!   side by side.
//! - **The certificate bundle** (`esp_crt_bundle_attach`): no trusted list at all, and a verify
//!   callback that acts only on "not trusted", looks the top certificate's issuer up in the
//!   bundle by name and checks its signature with the stored key, printing the bundle's own
//!   lines of that ESP-IDF version (`bundle`).
//!
//! Where a firmware's build departs from its release's defaults ([`TlsConfig`]: curves turned
//! off, a smaller TLS input buffer) is emulated at the same seams: a curve the build lacks is
//! one the release's parse refuses and the client does not offer (`release`), and the input
//! buffer refuses records in the device's socket, below the record layer (`records`).
//!
//! [`judge_chain`] does this offline (for `otarig predict`); `client` does it inside a real
//! handshake (for the twin). Both share the callback, so they cannot disagree about a chain.

mod bundle;
pub(crate) mod client;
mod config;
mod dates;
mod offline;
mod records;
pub mod release;

use std::sync::{Arc, Mutex, PoisonError};

use mbedtls::alloc::{Box as MbedtlsBox, List as MbedtlsList};
use mbedtls::x509::{Certificate, VerifyError};
use serde::Serialize;

use crate::idf::IdfVersion;
use crate::image::{BundleEntry, BundleFormat};
use crate::outcome::{OutcomeClass, VerifyReason};
use crate::verify_flags::VerifyFlag;

pub use config::{Curve, Curves, DEFAULT_IN_CONTENT_LEN, MIN_IN_CONTENT_LEN, TlsConfig};
pub use offline::{judge_chain, judge_issuers};
pub use records::{InputBuffer, PAYLOAD_OVERHEAD, SSL_BAD_INPUT_DATA, SSL_INVALID_RECORD};

/// `MBEDTLS_ERR_X509_CERT_VERIFY_FAILED`.
pub(crate) const CERT_VERIFY_FAILED: i32 = -0x2700;
/// `MBEDTLS_ERR_X509_FATAL_ERROR`: a verify callback failed (the bundle), or the chain is too long.
pub const X509_FATAL_ERROR: i32 = -0x3000;
/// `MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE`: the chain verified but the leaf's key usage does not
/// allow the key exchange.
pub(crate) const BAD_HS_CERTIFICATE: i32 = -0x7A00;

/// What a firmware trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchors {
    /// Root certificates compiled in (`cert_pem`), DER, in the order the firmware lists them.
    Roots(Vec<Vec<u8>>),
    /// ESP-IDF's certificate bundle: subject names and keys only.
    Bundle {
        /// The bundle's entries, in the order the firmware holds them.
        entries: Vec<BundleEntry>,
        /// How the release lays the bundle out.
        format: BundleFormat,
    },
}

/// Everything that decides how a device judges a chain.
#[derive(Clone, Debug)]
pub struct DevicePolicy {
    /// The ESP-IDF version the firmware was built with (bundle behaviour and lines).
    pub idf: IdfVersion,
    /// The certificates it trusts.
    pub anchors: Anchors,
    /// `Some(unix seconds)`: the firmware checks certificate dates (`MBEDTLS_HAVE_TIME_DATE`)
    /// and its clock reads this; `None`: no date is ever checked (the ESP-IDF default).
    pub date_check_at: Option<i64>,
    /// Where the build's mbedTLS departs from the release's default (curves, input buffer).
    pub config: TlsConfig,
}

/// One line ESP-IDF prints while verifying (the bundle's lines).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `E`, `W` or `I`.
    pub level: char,
    /// The tag ESP-IDF prints it under (`esp-x509-crt-bundle`).
    pub tag: &'static str,
    /// The message, as printed.
    pub text: String,
}

/// One certificate of the path mbedTLS built, as its verify callback saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathCert {
    /// 0 for the server's leaf, counting up to the top of the path (a trusted root when one
    /// was reached).
    pub depth: u32,
    /// Subject, as mbedTLS prints a distinguished name (`C=US, O=..., CN=...`).
    pub subject: String,
    /// Issuer, as mbedTLS prints it.
    pub issuer: String,
    /// The certificate's own flags after the callback (`MBEDTLS_X509_BADCERT_*`).
    pub flags: u32,
}

/// How the device judged a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainVerdict {
    /// What verification returned: 0, `MBEDTLS_ERR_X509_CERT_VERIFY_FAILED` (-0x2700),
    /// [`X509_FATAL_ERROR`], `MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE` (-0x7A00), or another
    /// mbedTLS code.
    pub code: i32,
    /// The verification flags (`0xFFFFFFFF` after a fatal error, as mbedTLS sets them).
    pub flags: u32,
    /// The path, top first.
    pub path: Vec<PathCert>,
    /// The certificate bundle's lines, in order.
    pub log: Vec<LogLine>,
}

impl ChainVerdict {
    /// Whether the device accepts the chain (verification returned 0).
    pub fn accepted(&self) -> bool {
        self.code == 0
    }

    /// The outcome of an update that met this chain: `None` when the chain is accepted. A
    /// handshake that ended before verification is the class its code stands for (a curve the
    /// build lacks: `tls-crypto`; a record too long for the input buffer: `tls-protocol` for
    /// -0x7200, `unknown` for 2.28's -0x7100), as the log classifier reads that code.
    pub fn rejection(&self) -> Option<(OutcomeClass, VerifyReason)> {
        if self.accepted() {
            return None;
        }
        match self.code {
            release::UNKNOWN_NAMED_CURVE => return Some((OutcomeClass::TlsCrypto, VerifyReason::Unknown)),
            SSL_INVALID_RECORD => return Some((OutcomeClass::TlsProtocol, VerifyReason::Unknown)),
            SSL_BAD_INPUT_DATA => return Some((OutcomeClass::Unknown, VerifyReason::Unknown)),
            _ => {}
        }
        let bundle_failed = self.code == X509_FATAL_ERROR && !self.log.is_empty();
        let reason = if bundle_failed {
            VerifyReason::Untrusted
        } else {
            // The reason of the first flag (in mbedTLS's print order) that names one.
            let flags = if self.flags == u32::MAX { 0 } else { self.flags };
            VerifyFlag::from_bits(flags)
                .into_iter()
                .map(VerifyFlag::reason)
                .find(|reason| *reason != VerifyReason::Unknown)
                .unwrap_or(VerifyReason::Unknown)
        };
        Some((OutcomeClass::TlsVerify, reason))
    }
}

/// Why a chain or a trust list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DeviceTlsError {
    /// A certificate of the chain does not parse.
    #[error("certificate {index} of the chain is not a certificate mbedTLS can parse ({})", code(source))]
    ChainCertificate {
        /// Its place in the chain, from 0 for the leaf.
        index: usize,
        /// mbedTLS's parse error.
        source: mbedtls::Error,
    },
    /// A trusted root does not parse.
    #[error("trusted root {index} is not a certificate mbedTLS can parse ({})", code(source))]
    Root {
        /// Its place in the trust list, from 0.
        index: usize,
        /// mbedTLS's parse error.
        source: mbedtls::Error,
    },
    /// No certificate in the chain.
    #[error("the chain is empty")]
    EmptyChain,
    /// mbedTLS refused the client's configuration.
    #[error("cannot set up the TLS client: {0}")]
    Setup(#[source] mbedtls::Error),
    /// The host name cannot be given to mbedTLS (it holds a NUL byte).
    #[error("the host name contains a NUL byte")]
    HostName,
    /// The device's heap budget cannot be kept in this process.
    #[error("cannot emulate the device's TLS heap: {0}")]
    Heap(#[source] crate::heap_budget::HeapBudgetError),
}

/// An mbedTLS error as its code is written in its documentation, `-0x2180`.
fn code(err: &mbedtls::Error) -> String {
    format!("-0x{:04X}", -err.to_int())
}

impl DevicePolicy {
    /// The certificate handling of the device's mbedTLS build.
    pub(crate) fn crypto(&self) -> release::ReleaseCrypto {
        release::ReleaseCrypto::of_build(self.idf, &self.config)
    }

    /// The device's TLS input buffer.
    pub(crate) fn input_buffer(&self) -> InputBuffer {
        InputBuffer::of(self.idf, self.config.in_content_len)
    }

    /// The trusted roots as the library gets them: time-valid first at the device's clock
    /// when it checks dates (stable otherwise), none for a bundle.
    fn trusted_list(&self) -> Result<MbedtlsList<Certificate>, DeviceTlsError> {
        let mut list = MbedtlsList::new();
        if let Anchors::Roots(roots) = &self.anchors {
            let crypto = self.crypto();
            let mut parsed = Vec::with_capacity(roots.len());
            for (index, der) in roots.iter().enumerate() {
                let cert = Certificate::from_der(der).map_err(|source| DeviceTlsError::Root { index, source })?;
                // A root the build cannot parse (a key on a curve it lacks) is not emulated.
                if let release::Parse::Fails(code) = crypto.parse(&cert) {
                    return Err(DeviceTlsError::Root { index, source: mbedtls::Error::from(code) });
                }
                parsed.push(cert);
            }
            if let Some(now) = self.date_check_at {
                // Stable: among the valid ones (and among the others) the firmware's order stays.
                parsed.sort_by_key(|cert: &MbedtlsBox<Certificate>| !dates::valid_at(cert.as_der(), now));
            }
            for cert in parsed {
                list.push(cert);
            }
        }
        Ok(list)
    }

    /// The verify callback both the offline check and the handshake use; what it sees and
    /// prints goes to `record`.
    fn verify_callback(
        &self,
        record: Arc<Mutex<Recorder>>,
    ) -> impl Fn(&Certificate, i32, &mut VerifyError) -> mbedtls::Result<()> + Send + Sync + 'static {
        let date_check_at = self.date_check_at;
        let bundle = match &self.anchors {
            Anchors::Bundle { entries, .. } => {
                Some(bundle::Bundle::new(entries.clone(), self.idf, self.crypto().missing_curves()))
            }
            Anchors::Roots(_) => None,
        };
        move |cert: &Certificate, depth: i32, flags: &mut VerifyError| {
            let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(now) = date_check_at {
                flags.insert(dates::flags_at(cert.as_der(), now));
            }
            let result = match &bundle {
                Some(bundle) => bundle.verify(cert, flags, &mut record.log),
                None => Ok(()),
            };
            record.path.push(PathCert {
                depth: u32::try_from(depth).unwrap_or(0),
                subject: cert.subject().unwrap_or_default(),
                issuer: cert.issuer().unwrap_or_default(),
                flags: flags.bits(),
            });
            result
        }
    }
}

/// What the verify callback saw, shared with the caller that reads it after verification.
#[derive(Debug, Default)]
struct Recorder {
    path: Vec<PathCert>,
    log: Vec<LogLine>,
    /// The code and flags of the release's own verdict, when its TLS layer kept another chain
    /// than the linked library's (see `client`).
    device: Option<(i32, u32)>,
}

impl Recorder {
    fn take(record: &Mutex<Recorder>) -> Recorder {
        std::mem::take(&mut *record.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Parses the chain the server sends (leaf first) into the list mbedTLS verifies.
fn parse_chain(chain: &[Vec<u8>]) -> Result<MbedtlsList<Certificate>, DeviceTlsError> {
    if chain.is_empty() {
        return Err(DeviceTlsError::EmptyChain);
    }
    let mut list = MbedtlsList::new();
    for (index, der) in chain.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(|source| DeviceTlsError::ChainCertificate { index, source })?;
        list.push(cert);
    }
    Ok(list)
}
