//! Which chains a server the owner controls can still send so that a firmware updates.
//!
//! For a device (read from its image as `predict` reads it), the search takes a leaf only from
//! a CA an owner can get one from on the day — a public CA's issuing intermediate of the
//! [catalogue](crate::catalogue), or the owner's own CA where the firmware trusts a root no
//! public CA stands behind — then real certificates exactly as their CAs published them, up to
//! a certificate the firmware trusts (`search`). A lab firmware trusts the lab's look-alikes:
//! it is judged as trusting the real certificates they stand for (`trust`, `lookalike`), which
//! is said as inferred. Each candidate is judged by the device's own decision
//! ([`crate::device_tls::judge_issuers`], its release's profile, date checks only when the
//! firmware checks dates), and what it accepts is an [`Answer`]: the certificates to send after
//! the owner's leaf, how long it keeps working, and — `confirm` — how the firmware's update
//! ended on a twin against a server sending the look-alike chain with a leaf minted under the
//! look-alike issuing CA.

mod confirm;
mod lasting;
pub mod lookalike;
mod search;
pub mod trust;
mod why;

use std::path::PathBuf;

pub use confirm::{ConfirmError, ConfirmOptions, LeafError, TwinCheck, TwinFirmware, confirm};
pub use lasting::{Lasting, Refusal};
pub use lookalike::{LabCert, LabMap, LookAlike};
pub use trust::{Standing, Trusted, TrustedRole};
pub use why::NoRescue;

use search::{Candidate, Issuing, Link};

use crate::catalogue::{Catalogue, IssuingPeriod, Publication};
use crate::device_tls::{Anchors, ChainVerdict, DevicePolicy, DeviceTlsError, judge_chain, judge_issuers};
use crate::outcome::{OutcomeClass, VerifyReason};
use crate::pki::LabPki;
use crate::predict::Device;

/// A certificate an answer sends after the owner's leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCert {
    /// Its catalogue name, or the lab authority's name for the owner's own CA.
    pub name: String,
    /// Its subject as text.
    pub subject: String,
    /// Its subject's common name.
    pub common_name: String,
    /// SHA-256 of its DER, 64 hex digits.
    pub sha256: String,
    /// Its DER.
    pub der: Vec<u8>,
    /// Its PEM file's text, byte for byte as published (or as the lab PKI holds it).
    pub pem: String,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Where it comes from.
    pub origin: Origin,
}

/// Where a sent certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Published by its CA: where.
    Published(Vec<Publication>),
    /// The owner's own CA, as the lab PKI holds it: its file.
    OwnCa(PathBuf),
}

/// The CA that issues the owner's leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuingCa {
    /// Its common name (`R11`, `YR1`, `Acme Update Server CA 2026`).
    pub common_name: String,
    /// Its catalogue or lab name.
    pub name: String,
    /// A public CA's issuing period that covers the day; `None` for the owner's own CA.
    pub period: Option<IssuingPeriod>,
    /// Its certificate's `notAfter` (Unix seconds): no leaf from it after.
    pub not_after: i64,
    /// The owner's own CA.
    pub own: bool,
}

/// A chain the firmware accepts.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Who issues the leaf.
    pub issuing: IssuingCa,
    /// What the server sends after the leaf, in order (empty: the leaf alone).
    pub chain: Vec<SentCert>,
    /// The trusted certificate the chain ends under (index into [`FirmwareRescue::trusted`]).
    pub anchor: usize,
    /// The device's decision on the real certificates (or, for the leaf alone, on look-alikes).
    pub verdict: ChainVerdict,
    /// The decision was made on the lab's look-alikes (a leaf directly under a trusted
    /// certificate: no real leaf to judge), not on the real certificates.
    pub judged_on_lookalikes: bool,
    /// How long it keeps working.
    pub lasting: Lasting,
    /// The lab names of the look-alikes of `chain`, in order, and of the leaf's issuer; else
    /// why there are none (a certificate without a look-alike).
    pub lookalikes: Result<LookAlikeChain, String>,
    /// How the update ended on a twin.
    pub twin: TwinCheck,
}

/// The look-alike of an answer, as a twin's server sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookAlikeChain {
    /// The lab authority that issues the minted leaf.
    pub leaf_issuer: String,
    /// The lab authorities sent after the leaf, in order.
    pub chain: Vec<String>,
    /// Certificates whose look-alike's validity is not the real one's, by catalogue name.
    pub validity_differs: Vec<String>,
}

/// A chain the firmware refuses.
#[derive(Clone, Debug)]
pub struct Refused {
    /// Who would issue the leaf.
    pub issuing: String,
    /// What the server would send after the leaf, by catalogue or lab name.
    pub chain: Vec<String>,
    /// How the update would end.
    pub rejection: (OutcomeClass, VerifyReason),
    /// The device's decision.
    pub verdict: ChainVerdict,
}

/// The answer for one firmware.
#[derive(Clone, Debug)]
pub struct FirmwareRescue {
    /// The device, as read from its image (and the command line's changes).
    pub device: Device,
    /// The day of the question (Unix seconds): leaves are issued then.
    pub at: i64,
    /// What the device's clock reads when it checks dates on that day; `None`: it checks none.
    pub date_check_at: Option<i64>,
    /// What it trusts, each placed in the real world.
    pub trusted: Vec<Trusted>,
    /// Chains it accepts, shortest first.
    pub answers: Vec<Answer>,
    /// Chains it refuses (shown when nothing rescues it).
    pub refused: Vec<Refused>,
    /// Why nothing rescues it; `None` when an answer does.
    pub no_rescue: Option<NoRescue>,
}

/// A rescue that cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub enum RescueError {
    /// The firmware's ESP-IDF version is unknown.
    #[error("{firmware}: the ESP-IDF version is unknown (no app descriptor, no version string)")]
    UnknownIdf {
        /// The firmware's id.
        firmware: String,
    },
    /// A certificate does not parse as mbedTLS reads it.
    #[error("{firmware}: {source}")]
    Tls {
        /// The firmware's id.
        firmware: String,
        /// What did not parse.
        source: DeviceTlsError,
    },
    /// A leaf could not be minted under a look-alike.
    #[error("{firmware}: {source}")]
    Mint {
        /// The firmware's id.
        firmware: String,
        /// What failed.
        source: Box<LeafError>,
    },
}

/// What a rescue is worked out with.
#[derive(Clone, Copy, Debug)]
pub struct RescueContext<'a> {
    /// The real certificates.
    pub catalogue: &'a Catalogue,
    /// The lab PKI (look-alikes, the owner's own CA).
    pub pki: &'a LabPki,
    /// Its committed authorities, read once.
    pub lab: &'a LabMap,
}

/// The chains `device` accepts from a server its owner controls, on `at` (Unix seconds).
pub fn rescue(device: &Device, context: RescueContext<'_>, at: i64) -> Result<FirmwareRescue, RescueError> {
    let RescueContext { catalogue, lab, .. } = context;
    let firmware = device.firmware.clone().unwrap_or_else(|| "trust set".into());
    let trusted = trust::trusted_of(&device.anchors, catalogue, lab);
    let mut real = device.clone();
    real.anchors = trust::real_anchors(&device.anchors, &trusted, catalogue);
    let policy = real.policy(at).ok_or_else(|| RescueError::UnknownIdf { firmware: firmware.clone() })?;
    let tls = |source| RescueError::Tls { firmware: firmware.clone(), source };

    let mut answers: Vec<Answer> = Vec::new();
    let mut refused = Vec::new();
    for candidate in search::candidates(catalogue, &trusted, lab, at) {
        let issuing = issuing_ca(&candidate, catalogue, lab, at);
        // A longer chain from the same CA adds nothing once a shorter one is accepted.
        let shorter =
            |a: &Answer| a.issuing.common_name == issuing.common_name && a.chain.len() < candidate.chain.len();
        if answers.iter().any(shorter) {
            continue;
        }
        let chain = sent(&candidate.chain, catalogue, context.pki, lab);
        let lookalikes = lookalike_chain(&candidate, &trusted, catalogue, lab);
        let (verdict, judged_on_lookalikes) = if chain.is_empty() {
            let Ok(lookalikes) = &lookalikes else { continue };
            let verdict = judge_on_lookalikes(device.hostname.as_deref(), lookalikes, &policy, context, at).map_err(
                |e| match e {
                    DirectError::Tls(source) => tls(source),
                    DirectError::Mint(source) => {
                        RescueError::Mint { firmware: firmware.clone(), source: Box::new(source) }
                    }
                },
            )?;
            (verdict, true)
        } else {
            let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.der.clone()).collect();
            (judge_issuers(&ders, &policy).map_err(tls)?, false)
        };
        match verdict.rejection() {
            Some(rejection) => refused.push(Refused {
                issuing: issuing.common_name,
                chain: chain.iter().map(|c| c.name.clone()).collect(),
                rejection,
                verdict,
            }),
            None => {
                let Some(anchor) = trusted.get(candidate.anchor) else { continue };
                let lasting = lasting::lasting(&real, &chain, anchor, &issuing, at).map_err(tls)?;
                answers.push(Answer {
                    issuing,
                    chain,
                    anchor: candidate.anchor,
                    verdict,
                    judged_on_lookalikes,
                    lasting,
                    twin: TwinCheck::NotAsked,
                    lookalikes,
                });
            }
        }
    }
    // One answer per issuing CA: the shortest chain, then the one with the fewest expired
    // certificates, then the one that expires last.
    let better = |a: &Answer| {
        let first_expiry = a.chain.iter().map(|c| c.not_after).min().unwrap_or(i64::MAX);
        (a.chain.len(), a.lasting.expired.len(), std::cmp::Reverse(first_expiry))
    };
    answers.sort_by_key(|a| (a.issuing.common_name.clone(), better(a)));
    answers.dedup_by(|later, first| later.issuing.common_name == first.issuing.common_name);
    answers.sort_by(|a, b| a.chain.len().cmp(&b.chain.len()).then_with(|| a.issuing.name.cmp(&b.issuing.name)));
    let date_check_at = policy.date_check_at;
    let no_rescue =
        if answers.is_empty() { Some(why::why_not(&trusted, &refused, catalogue, date_check_at, at)) } else { None };
    Ok(FirmwareRescue { device: device.clone(), at, date_check_at, trusted, answers, refused, no_rescue })
}

/// The certificates a chain of links sends.
fn sent(links: &[Link], catalogue: &Catalogue, pki: &LabPki, lab: &LabMap) -> Vec<SentCert> {
    links
        .iter()
        .filter_map(|link| match link {
            Link::Public(at) => catalogue.certs.get(*at).map(|c| SentCert {
                name: c.name.clone(),
                subject: c.subject.clone(),
                common_name: c.common_name.clone(),
                sha256: c.sha256_hex(),
                der: c.der.clone(),
                pem: c.pem.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                origin: Origin::Published(c.published.clone()),
            }),
            Link::Own(name) => {
                let cert = lab.get(name)?;
                let minted = pki.certificate(name).ok()?;
                let info = crate::image::CertInfo::from_der(&cert.der)?;
                Some(SentCert {
                    name: name.clone(),
                    common_name: common_name_of(&info.subject),
                    subject: info.subject,
                    sha256: sha256_hex(&cert.der),
                    der: cert.der.clone(),
                    pem: minted.pem,
                    not_before: cert.validity.0,
                    not_after: cert.validity.1,
                    origin: Origin::OwnCa(pki.cert_path(name)),
                })
            }
        })
        .collect()
}

fn common_name_of(subject: &str) -> String {
    subject.split(", ").find_map(|part| part.strip_prefix("CN=")).unwrap_or(subject).to_owned()
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

fn issuing_ca(candidate: &Candidate, catalogue: &Catalogue, lab: &LabMap, at: i64) -> IssuingCa {
    match &candidate.issuing {
        Issuing::Public(index) => {
            let cert = catalogue.certs.get(*index);
            let period = cert.and_then(|c| catalogue.issuing_periods(c).find(|p| p.covers(at)).cloned());
            IssuingCa {
                common_name: cert.map(|c| c.common_name.clone()).unwrap_or_default(),
                name: cert.map(|c| c.name.clone()).unwrap_or_default(),
                period,
                not_after: cert.map_or(0, |c| c.not_after),
                own: false,
            }
        }
        Issuing::Own(name) => {
            let cert = lab.get(name);
            let common_name = cert
                .and_then(|c| crate::image::CertInfo::from_der(&c.der))
                .map_or_else(|| name.clone(), |info| common_name_of(&info.subject));
            IssuingCa {
                common_name,
                name: name.clone(),
                period: None,
                not_after: cert.map_or(0, |c| c.validity.1),
                own: true,
            }
        }
    }
}

/// The look-alikes of a candidate, for the twin (and for judging a leaf alone); else why
/// there are none.
fn lookalike_chain(
    candidate: &Candidate,
    trusted: &[Trusted],
    catalogue: &Catalogue,
    lab: &LabMap,
) -> Result<LookAlikeChain, String> {
    let mut chain = Vec::new();
    let mut validity_differs = Vec::new();
    for link in &candidate.chain {
        match link {
            Link::Public(at) => {
                let Some(real) = catalogue.certs.get(*at) else { return Err("a certificate is missing".into()) };
                let Some(alike) = lab.lookalike_of(real) else {
                    return Err(format!("no look-alike of {} ({}) in the lab PKI", real.common_name, real.name));
                };
                if !alike.same_validity {
                    validity_differs.push(real.name.clone());
                }
                chain.push(alike.lab.name.clone());
            }
            Link::Own(name) => chain.push(name.clone()),
        }
    }
    let leaf_issuer = match chain.first() {
        Some(first) => first.clone(),
        None => {
            let anchor = trusted.get(candidate.anchor).ok_or("no trusted certificate")?;
            anchor
                .on_twin()
                .ok_or_else(|| format!("no look-alike of {} in the lab PKI", anchor.common_name))?
                .to_owned()
        }
    };
    Ok(LookAlikeChain { leaf_issuer, chain, validity_differs })
}

enum DirectError {
    Tls(DeviceTlsError),
    Mint(LeafError),
}

/// A leaf directly under a trusted certificate: the device's decision on a leaf minted under
/// the trusted certificate's lab counterpart, the device trusting that counterpart (the only
/// certificate a leaf it issues meets).
fn judge_on_lookalikes(
    hostname: Option<&str>,
    lookalikes: &LookAlikeChain,
    policy: &DevicePolicy,
    context: RescueContext<'_>,
    at: i64,
) -> Result<ChainVerdict, DirectError> {
    let leaf = confirm::mint_leaf(&lookalikes.leaf_issuer, hostname, context.pki, at).map_err(DirectError::Mint)?;
    let anchor = context.lab.get(&lookalikes.leaf_issuer).map(|c| c.der.clone()).into_iter().collect();
    let policy = DevicePolicy { anchors: Anchors::Roots(anchor), ..policy.clone() };
    judge_chain(&[leaf], hostname, &policy).map_err(DirectError::Tls)
}
