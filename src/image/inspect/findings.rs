//! Findings: what a fleet owner should know about an inspected file, from its apps, the trust
//! material and its roles, lab keys and private keys.

use super::{FoundApp, Inspection};
use crate::image::{AppImage, CertInfo, KeyKind, PrivateKeyItem, SegmentKind, TrustKind, TrustRole};

/// Something a fleet owner should know about the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A trust anchor is past its `notAfter` at the inspection date.
    AnchorExpired {
        /// The certificate's subject as text.
        subject: String,
        /// End of validity, in unix seconds.
        not_after: i64,
        /// It is the firmware's only anchor (no other certificate, no bundle): no server can
        /// be verified.
        only_anchor: bool,
    },
    /// A trust anchor is not valid yet at the inspection date.
    AnchorNotYetValid {
        /// The certificate's subject as text.
        subject: String,
        /// Start of validity, in unix seconds.
        not_before: i64,
    },
    /// An embedded CA certificate that is not self-signed: pinning an intermediate.
    IntermediatePinned {
        /// The certificate's subject as text.
        subject: String,
    },
    /// A certificate that is no CA among the trust material: a server's certificate pinned.
    /// mbedTLS trusts it only as an exact copy of a self-issued server certificate, so
    /// `self_issued` false means it anchors nothing.
    PinnedLeaf {
        /// The certificate's subject as text.
        subject: String,
        /// Its subject equals its issuer.
        self_issued: bool,
    },
    /// The device's own certificate for mutual TLS; `expired` at the inspection date.
    ClientCertificate {
        /// The certificate's subject as text.
        subject: String,
        /// End of validity, in unix seconds.
        not_after: i64,
        /// `not_after` is past at the inspection date.
        expired: bool,
    },
    /// A private key in the image: anyone holding the image holds it. `certificate` is the
    /// subject of the client certificate whose key it is, when that is in the image too.
    PrivateKey {
        /// Where the key's first byte is in the file.
        offset: usize,
        /// The key's kind and size, when it reads.
        key: Option<KeyKind>,
        /// The key is encrypted (by a passphrase the firmware must also carry).
        encrypted: bool,
        /// The subject of the certificate whose key it is, when that certificate is there too.
        certificate: Option<String>,
    },
    /// No trusted PEM or DER certificate and no bundle found: the firmware cannot verify any
    /// server (or keeps its roots compressed or elsewhere).
    NoTrustMaterial,
    /// No app descriptor: built with ESP-IDF v3.2 or earlier.
    NoAppDescriptor {
        /// Where the app starts in the file.
        offset: usize,
    },
    /// The image at `offset` maps nothing from flash: it is loaded whole into RAM, as a
    /// bootloader (of a layout older or newer than the rig knows) or a test program is, and is
    /// no app an OTA update installs (ESP-IDF runs every app from flash).
    RamOnlyImage {
        /// Where the image starts in the file.
        offset: usize,
    },
    /// The stored checksum or SHA-256 does not match: the bootloader would refuse the image.
    Corrupt {
        /// Where the image starts in the file.
        offset: usize,
    },
    /// A trust anchor has the key of one of otarig's lab authorities: a transplanted or
    /// lab-built image.
    LabAnchor {
        /// The certificate's subject as text.
        subject: String,
    },
    /// Roots of the bundle at `offset` (of `total`) have lab authorities' keys, as
    /// [`Finding::LabAnchor`] (one finding per bundle: a lab-built bundle is all lab roots).
    LabBundleRoots {
        /// Where the bundle starts in the file.
        offset: usize,
        /// Subjects of the lab's roots, in stored order.
        subjects: Vec<String>,
        /// Roots in the bundle.
        total: usize,
    },
}

/// The findings for an inspection, at the date `at`, with the lab's keys.
pub(super) fn findings(inspection: &Inspection, at: i64, lab_keys: &[[u8; 32]]) -> Vec<Finding> {
    let mut findings = app_findings(&inspection.apps);
    let certificates: Vec<(&CertInfo, TrustRole)> = inspection
        .trust
        .iter()
        .filter_map(|item| match &item.kind {
            TrustKind::Pem(info) | TrustKind::Der(info) => Some((info, item.role)),
            TrustKind::Bundle { .. } => None,
        })
        .collect();
    let anchors: Vec<&CertInfo> =
        certificates.iter().filter(|(_, role)| role.is_trusted()).map(|(info, _)| *info).collect();
    let bundles = inspection.trust.iter().filter(|t| matches!(t.kind, TrustKind::Bundle { .. })).count();
    // A bootloader or a RAM-loaded program verifies no server.
    let apps = inspection.apps.iter().filter(|app| app.image.as_ref().is_ok_and(maps_flash)).count();
    if anchors.is_empty() && bundles == 0 && apps > 0 {
        findings.push(Finding::NoTrustMaterial);
    }
    let only_anchor = anchors.len() == 1 && bundles == 0;
    for &(info, role) in &certificates {
        findings.extend(certificate_findings(info, role, at, only_anchor, lab_keys));
    }
    for item in &inspection.trust {
        if let TrustKind::Bundle { entries, .. } = &item.kind {
            let lab: Vec<String> =
                entries.iter().filter(|e| lab_keys.contains(&e.public_key_sha256)).map(|e| e.subject.clone()).collect();
            if !lab.is_empty() {
                findings.push(Finding::LabBundleRoots { offset: item.offset, subjects: lab, total: entries.len() });
            }
        }
    }
    findings.extend(inspection.private_keys.iter().map(|key| key_finding(key, &certificates)));
    findings
}

fn app_findings(apps: &[FoundApp]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for app in apps {
        if let Ok(image) = &app.image {
            if !maps_flash(image) {
                findings.push(Finding::RamOnlyImage { offset: app.offset });
            } else if image.app_desc.is_none() {
                findings.push(Finding::NoAppDescriptor { offset: app.offset });
            }
            if !image.is_valid() {
                findings.push(Finding::Corrupt { offset: app.offset });
            }
        }
    }
    findings
}

/// Whether an image maps code or data from flash, as every ESP-IDF app does (segments of an
/// unknown chip may).
fn maps_flash(image: &AppImage) -> bool {
    image.segments.iter().any(|s| matches!(s.kind, SegmentKind::Map | SegmentKind::Unknown))
}

/// What to say about one certificate: its dates and role if the device trusts it, its expiry
/// if it is the device's own; a lab key either way.
fn certificate_findings(
    info: &CertInfo,
    role: TrustRole,
    at: i64,
    only_anchor: bool,
    lab_keys: &[[u8; 32]],
) -> Vec<Finding> {
    let subject = || info.subject.clone();
    let mut findings = Vec::new();
    if role == TrustRole::ClientCertificate {
        findings.push(Finding::ClientCertificate {
            subject: subject(),
            not_after: info.not_after,
            expired: info.not_after < at,
        });
        return findings;
    }
    if info.not_after < at {
        findings.push(Finding::AnchorExpired { subject: subject(), not_after: info.not_after, only_anchor });
    } else if info.not_before > at {
        findings.push(Finding::AnchorNotYetValid { subject: subject(), not_before: info.not_before });
    }
    match role {
        TrustRole::IntermediateCa => findings.push(Finding::IntermediatePinned { subject: subject() }),
        TrustRole::PinnedLeaf => {
            let self_issued = info.self_signed || info.subject == info.issuer;
            findings.push(Finding::PinnedLeaf { subject: subject(), self_issued });
        }
        TrustRole::CaRoot | TrustRole::ClientCertificate => {}
    }
    if lab_keys.contains(&info.public_key_sha256) {
        findings.push(Finding::LabAnchor { subject: subject() });
    }
    findings
}

fn key_finding(key: &PrivateKeyItem, certificates: &[(&CertInfo, TrustRole)]) -> Finding {
    let certificate = key.public_key_sha256.and_then(|public| {
        certificates.iter().find(|(info, _)| info.public_key_sha256 == public).map(|(info, _)| info.subject.clone())
    });
    Finding::PrivateKey { offset: key.offset, key: key.key.clone(), encrypted: key.encrypted, certificate }
}
