//! Why no chain rescues a firmware: it trusts nothing, pins a leaf or an intermediate that is no
//! longer issued from, refuses every chain that reaches what it trusts (dates past its root's
//! expiry, most often), or nothing that issues on the day leads to what it trusts.

use super::Refused;
use super::trust::{Standing, Trusted, TrustedRole};
use crate::catalogue::Catalogue;
use crate::outcome::{OutcomeClass, VerifyReason};

/// Why no chain rescues a firmware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoRescue {
    /// It trusts nothing.
    TrustsNothing,
    /// It trusts only server certificates: none can be issued again for its key.
    PinnedLeaf {
        /// The pinned certificates' subjects.
        subjects: Vec<String>,
        /// Whether one is self-signed (only a server with its key can send it).
        self_signed: bool,
    },
    /// It trusts an intermediate whose CA no longer issues (or never did).
    PinnedRetired {
        /// The intermediates' common names.
        names: Vec<String>,
        /// The last day their CA issued, when it did (Unix seconds).
        stopped: Option<i64>,
    },
    /// Every chain that reaches what it trusts is refused; `dates` when every refusal is a date
    /// (the firmware checks dates and what it trusts is past its `notAfter` or not yet valid).
    Refused {
        /// Each refusal's outcome, once.
        rejections: Vec<(OutcomeClass, VerifyReason)>,
        /// The trusted certificates expired at the device's clock: common name and `notAfter`.
        expired_roots: Vec<(String, i64)>,
    },
    /// No CA that issues to owners chains to what it trusts.
    NoPath {
        /// The common names of what it trusts.
        roots: Vec<String>,
        /// The common names of the catalogue's CAs that issue on the day.
        issuing: Vec<String>,
    },
    /// It trusts only certificates neither the catalogue nor the lab knows (perhaps the owner's
    /// own CA, whose certificates the rig does not have).
    UnknownRoots {
        /// Their subjects.
        subjects: Vec<String>,
    },
}

/// Why no chain rescues the firmware.
pub(super) fn why_not(
    trusted: &[Trusted],
    refused: &[Refused],
    catalogue: &Catalogue,
    date_check_at: Option<i64>,
    at: i64,
) -> NoRescue {
    if trusted.is_empty() {
        return NoRescue::TrustsNothing;
    }
    if !refused.is_empty() {
        let mut rejections: Vec<(OutcomeClass, VerifyReason)> = Vec::new();
        for r in refused {
            if !rejections.contains(&r.rejection) {
                rejections.push(r.rejection);
            }
        }
        let expired_roots = match date_check_at {
            Some(clock) => trusted
                .iter()
                .filter_map(|t| Some((t.common_name.clone(), t.not_after?)))
                .filter(|(_, not_after)| *not_after < clock)
                .collect(),
            None => Vec::new(),
        };
        return NoRescue::Refused { rejections, expired_roots };
    }
    let leaves: Vec<&Trusted> = trusted.iter().filter(|t| t.role == TrustedRole::Leaf).collect();
    if leaves.len() == trusted.len() {
        let self_signed = leaves.iter().any(|t| t.issuer.as_deref() == Some(t.common_name.as_str()));
        return NoRescue::PinnedLeaf { subjects: leaves.iter().map(|t| t.subject.clone()).collect(), self_signed };
    }
    let retired: Vec<&Trusted> = trusted
        .iter()
        .filter(|t| t.role == TrustedRole::Intermediate)
        .filter(|t| t.public().and_then(|at| catalogue.certs.get(at)).is_some_and(|c| !catalogue.issues_at(c, at)))
        .collect();
    let cas: Vec<&Trusted> = trusted.iter().filter(|t| t.role != TrustedRole::Leaf).collect();
    if !retired.is_empty() && retired.len() == cas.len() {
        let stopped = retired
            .iter()
            .filter_map(|t| t.public().and_then(|at| catalogue.certs.get(at)))
            .flat_map(|c| catalogue.issuing_periods(c).filter_map(|p| p.until))
            .filter(|until| *until <= at)
            .max();
        return NoRescue::PinnedRetired { names: retired.iter().map(|t| t.common_name.clone()).collect(), stopped };
    }
    if cas.iter().all(|t| t.standing == Standing::Unknown) {
        return NoRescue::UnknownRoots { subjects: cas.iter().map(|t| t.subject.clone()).collect() };
    }
    let mut issuing: Vec<String> = Vec::new();
    for cert in catalogue.certs.iter().filter(|c| catalogue.issues_at(c, at)) {
        if !issuing.contains(&cert.common_name) {
            issuing.push(cert.common_name.clone());
        }
    }
    NoRescue::NoPath { roots: cas.iter().map(|t| t.common_name.clone()).collect(), issuing }
}
