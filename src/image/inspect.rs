//! A whole file looked at the way a firmware engineer would: an app image, or a merged flash
//! image (bootloader at 0x1000, partition table at 0x8000, apps at their partitions); the
//! trust material and URLs inside; and findings a fleet owner needs.

use esp_idf_part::PartitionTable;

use super::otadata::Otadata;
use super::partition::{self, AppSlot, ESP32_BOOTLOADER_OFFSET, TABLE_OFFSET};
use super::{AppImage, ImageError, TrustItem, TrustKind, find_trust, find_urls, parse_app};

/// What a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// An app image (`idf.py build`'s `app.bin`, `espflash save-image`).
    App,
    /// A flash dump or merged image: bootloader, partition table, apps at their offsets.
    MergedFlash,
}

/// An app found in the file, where it was found.
#[derive(Debug)]
pub struct FoundApp {
    pub offset: usize,
    /// The partition it sits in, for merged images.
    pub slot: Option<AppSlot>,
    pub image: Result<AppImage, ImageError>,
}

/// Something a fleet owner should know about the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A trust anchor is past its `notAfter` at the inspection date.
    AnchorExpired { subject: String, not_after: i64, only_anchor: bool },
    /// A trust anchor is not valid yet at the inspection date.
    AnchorNotYetValid { subject: String, not_before: i64 },
    /// An embedded CA certificate that is not self-signed: pinning an intermediate.
    IntermediatePinned { subject: String },
    /// No PEM, DER or bundle found: the firmware cannot verify any server (or keeps its roots
    /// compressed or elsewhere).
    NoTrustMaterial,
    /// No app descriptor: built with ESP-IDF v3.2 or earlier.
    NoAppDescriptor { offset: usize },
    /// The stored checksum or SHA-256 does not match: the bootloader would refuse the image.
    Corrupt { offset: usize },
    /// A trust anchor has the key of one of otarig's lab authorities: a transplanted or
    /// lab-built image.
    LabAnchor { subject: String },
    /// Roots of the bundle at `offset` (of `total`) have lab authorities' keys, as
    /// [`Finding::LabAnchor`] (one finding per bundle: a lab-built bundle is all lab roots).
    LabBundleRoots { offset: usize, subjects: Vec<String>, total: usize },
}

/// Everything learnt about a file.
#[derive(Debug)]
pub struct Inspection {
    pub layout: Layout,
    pub size: usize,
    /// The 2nd-stage bootloader of a merged image.
    pub bootloader: Option<Result<AppImage, ImageError>>,
    pub partitions: Option<Result<PartitionTable, partition::PartitionError>>,
    pub otadata: Option<Otadata>,
    /// The OTA slot the bootloader would pick (`None`: factory or first).
    pub selected_slot: Option<u32>,
    pub apps: Vec<FoundApp>,
    pub trust: Vec<TrustItem>,
    pub urls: Vec<(usize, String)>,
    pub findings: Vec<Finding>,
}

/// Looks at `bytes`. `at` is the date (unix seconds) validity is judged at; `lab_keys` are the
/// SHA-256 of the lab authorities' `SubjectPublicKeyInfo`s, to recognise lab roots: their
/// subjects equal the real ones' on purpose, and a transplant re-mints the certificate (a new
/// fingerprint) or puts only the key in a bundle, so only the key tells.
pub fn inspect(bytes: &[u8], at: i64, lab_keys: &[[u8; 32]]) -> Inspection {
    let merged = bytes.get(ESP32_BOOTLOADER_OFFSET) == Some(&0xE9)
        && bytes.get(TABLE_OFFSET..TABLE_OFFSET + 2) == Some(&[0xAA, 0x50][..]);
    let mut inspection = Inspection {
        layout: if merged { Layout::MergedFlash } else { Layout::App },
        size: bytes.len(),
        bootloader: None,
        partitions: None,
        otadata: None,
        selected_slot: None,
        apps: Vec::new(),
        trust: find_trust(bytes),
        urls: find_urls(bytes),
        findings: Vec::new(),
    };
    if merged {
        inspection.bootloader = Some(parse_app(&bytes[ESP32_BOOTLOADER_OFFSET..]));
        let table = partition::read_table(&bytes[TABLE_OFFSET..]);
        if let Ok(table) = &table {
            let slots = partition::app_slots(table);
            if let Some((offset, size)) = partition::otadata_partition(table) {
                let start = offset as usize;
                let end = (start + size as usize).min(bytes.len());
                if start < end {
                    let otadata = Otadata::decode(&bytes[start..end]);
                    let ota_count = slots.iter().filter(|s| s.ota.is_some()).count() as u32;
                    inspection.selected_slot = otadata.selected_slot(ota_count);
                    inspection.otadata = Some(otadata);
                }
            }
            for slot in slots {
                let offset = slot.offset as usize;
                if bytes.get(offset) == Some(&0xE9) {
                    let end = (offset + slot.size as usize).min(bytes.len());
                    let image = parse_app(&bytes[offset..end]);
                    inspection.apps.push(FoundApp { offset, slot: Some(slot), image });
                }
            }
        }
        inspection.partitions = Some(table);
    } else {
        inspection.apps.push(FoundApp { offset: 0, slot: None, image: parse_app(bytes) });
    }
    inspection.findings = findings(&inspection, at, lab_keys);
    inspection
}

fn findings(inspection: &Inspection, at: i64, lab_keys: &[[u8; 32]]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for app in &inspection.apps {
        if let Ok(image) = &app.image {
            if image.app_desc.is_none() {
                findings.push(Finding::NoAppDescriptor { offset: app.offset });
            }
            if !image.is_valid() {
                findings.push(Finding::Corrupt { offset: app.offset });
            }
        }
    }
    let anchors: Vec<&super::CertInfo> = inspection
        .trust
        .iter()
        .filter_map(|item| match &item.kind {
            TrustKind::Pem(info) | TrustKind::Der(info) => Some(info),
            TrustKind::Bundle { .. } => None,
        })
        .collect();
    let bundles = inspection.trust.iter().filter(|t| matches!(t.kind, TrustKind::Bundle { .. })).count();
    if anchors.is_empty() && bundles == 0 {
        findings.push(Finding::NoTrustMaterial);
    }
    let only_anchor = anchors.len() == 1 && bundles == 0;
    for anchor in &anchors {
        if anchor.not_after < at {
            findings.push(Finding::AnchorExpired {
                subject: anchor.subject.clone(),
                not_after: anchor.not_after,
                only_anchor,
            });
        } else if anchor.not_before > at {
            findings
                .push(Finding::AnchorNotYetValid { subject: anchor.subject.clone(), not_before: anchor.not_before });
        }
        if anchor.is_ca && !anchor.self_signed {
            findings.push(Finding::IntermediatePinned { subject: anchor.subject.clone() });
        }
        if lab_keys.contains(&anchor.public_key_sha256) {
            findings.push(Finding::LabAnchor { subject: anchor.subject.clone() });
        }
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
    findings
}
