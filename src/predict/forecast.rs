//! When a device stops accepting a chain it accepts today.
//!
//! A device that checks dates against the calendar (clock set by SNTP) is judged again at every
//! date on which a certificate it could meet changes validity (each `notBefore`, and each
//! `notAfter` plus one second, of the chain's certificates and of its PEM roots); the first
//! date with a rejection is its cliff. A device that checks no dates (or whose clock does not
//! follow the calendar) accepts this chain for ever, so its cliff is the server's: the first
//! `notAfter` still ahead among the certificates the server sends that its path uses, when the
//! server must send another chain. The device's own root does not count: its expiry changes
//! nothing for a device that checks no dates.

use mbedtls::x509::Certificate;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::device::Device;
use crate::device_tls::{Anchors, ChainVerdict, DeviceTlsError, judge_chain};
use crate::outcome::{OutcomeClass, VerifyReason};

/// What happens to a chain the device accepts today.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forecast {
    /// It does not accept the chain today: there is no cliff to come.
    RejectedNow,
    /// It accepts the chain at every date a certificate changes validity.
    Holds,
    /// It accepts the chain until [`Cliff::at`].
    Cliff(Cliff),
}

/// Which kind of cliff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliffKind {
    /// The device checks dates: from this second on it rejects the chain.
    DeviceRejects,
    /// The device checks no dates and keeps accepting this chain; a certificate the server
    /// sends (one of the path) expires, so the server must send another chain by then (which
    /// the device may or may not accept).
    ServerMustChange,
}

impl CliffKind {
    /// The stable kebab-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CliffKind::DeviceRejects => "device-rejects",
            CliffKind::ServerMustChange => "server-must-change",
        }
    }
}

/// The first second something changes for the worse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cliff {
    /// Unix seconds: the first second the device rejects the chain, or the first second a
    /// certificate of its path is past its `notAfter`.
    pub at: i64,
    /// What happens at [`Cliff::at`].
    pub kind: CliffKind,
    /// The certificate whose validity changes then, as mbedTLS names its subject.
    pub certificate: String,
    /// `true`: it expires then; `false`: it becomes valid then (and the device builds another
    /// path).
    pub expires: bool,
    /// How the device rejects the chain from then on ([`CliffKind::DeviceRejects`] only).
    pub rejection: Option<(OutcomeClass, VerifyReason)>,
}

/// A certificate the device could meet, with its dates.
struct Dated {
    subject: String,
    issuer: String,
    not_before: i64,
    not_after: i64,
}

impl Dated {
    fn read(der: &[u8]) -> Option<Dated> {
        let (_, parsed) = X509Certificate::from_der(der).ok()?;
        let validity = parsed.validity();
        let cert = Certificate::from_der(der).ok()?;
        Some(Dated {
            subject: cert.subject().ok()?,
            issuer: cert.issuer().ok()?,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }
}

/// The forecast for `device` meeting `chain` from `today` on, given its verdict today.
pub fn forecast(
    device: &Device,
    chain: &[Vec<u8>],
    today: i64,
    verdict: &ChainVerdict,
) -> Result<Forecast, DeviceTlsError> {
    if !verdict.accepted() {
        return Ok(Forecast::RejectedNow);
    }
    let sent: Vec<Dated> = chain.iter().filter_map(|der| Dated::read(der)).collect();
    if !device.follows_calendar() {
        return Ok(server_cliff(verdict, today, &sent));
    }
    let mut known = sent;
    if let Anchors::Roots(roots) = &device.anchors {
        known.extend(roots.iter().filter_map(|der| Dated::read(der)));
    }
    device_cliff(device, chain, today, &known)
}

/// Judges the chain again at every later date a certificate changes validity.
fn device_cliff(device: &Device, chain: &[Vec<u8>], today: i64, known: &[Dated]) -> Result<Forecast, DeviceTlsError> {
    let mut dates: Vec<i64> = known
        .iter()
        .flat_map(|cert| [cert.not_before, cert.not_after.saturating_add(1)])
        .filter(|d| *d > today)
        .collect();
    dates.sort_unstable();
    dates.dedup();
    for at in dates {
        // (The version is known: a prediction is made only then.)
        let Some(policy) = device.policy(at) else { break };
        let verdict = judge_chain(chain, device.hostname.as_deref(), &policy)?;
        if verdict.accepted() {
            continue;
        }
        // The certificate that changed: one of the new path if it is among them.
        let changed = |cert: &&Dated| cert.not_after.saturating_add(1) == at || cert.not_before == at;
        let in_path = |cert: &&Dated| verdict.path.iter().any(|p| p.subject == cert.subject && p.issuer == cert.issuer);
        let Some(cert) = known.iter().filter(changed).find(in_path).or_else(|| known.iter().find(changed)) else {
            continue;
        };
        return Ok(Forecast::Cliff(Cliff {
            at,
            kind: CliffKind::DeviceRejects,
            certificate: cert.subject.clone(),
            expires: cert.not_after.saturating_add(1) == at,
            rejection: verdict.rejection(),
        }));
    }
    Ok(Forecast::Holds)
}

/// The first `notAfter` still ahead among the certificates the server sends that the device's
/// path uses.
fn server_cliff(verdict: &ChainVerdict, today: i64, sent: &[Dated]) -> Forecast {
    let path = verdict.path.iter().filter_map(|p| sent.iter().find(|c| c.subject == p.subject && c.issuer == p.issuer));
    match path.filter(|cert| cert.not_after >= today).min_by_key(|cert| cert.not_after) {
        Some(cert) => Forecast::Cliff(Cliff {
            at: cert.not_after.saturating_add(1),
            kind: CliffKind::ServerMustChange,
            certificate: cert.subject.clone(),
            expires: true,
            rejection: None,
        }),
        None => Forecast::Holds,
    }
}
