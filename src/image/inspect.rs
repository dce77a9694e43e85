//! A whole file looked at the way a firmware engineer would: an app image, a bootloader, or a
//! merged flash image (bootloader, partition table, apps at their partitions, from flash address
//! 0 or from the bootloader's offset); the trust material and URLs inside; findings a fleet owner
//! needs; and, for files that are no ESP32-family image, what they are instead.

use esp_idf_part::PartitionTable;

use crate::idf::BuildVersion;

use super::identify::{FileKind, Foreign, identify};
use super::otadata::Otadata;
use super::partition::{self, AppSlot, TABLE_OFFSET};
use super::{
    AppImage, BootloaderVersion, ImageError, PrivateKeyItem, TrustItem, app_idf_versions, bootloader_version,
    find_urls, parse_app, scan_trust,
};

mod findings;
pub use findings::Finding;
use findings::findings;

/// What a file is laid out as. [`Inspection::kind`] says more (a bootloader, another chip's
/// image, a partition table); this stays two-valued for those who only need to know where the
/// apps are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One image at the start of the file (`idf.py build`'s `app.bin`, `espflash save-image`, a
    /// bootloader), or no ESP32-family image at all.
    App,
    /// A flash dump or merged image: bootloader, partition table, apps at their offsets.
    MergedFlash,
}

/// An app found in the file, where it was found.
#[derive(Debug)]
pub struct FoundApp {
    /// Offset in the file (a flash address only when the file starts at flash address 0; see
    /// [`Inspection::flash_base`]).
    pub offset: usize,
    /// The partition it sits in, for merged images.
    pub slot: Option<AppSlot>,
    /// The image as read, or why it could not be.
    pub image: Result<AppImage, ImageError>,
    /// The ESP-IDF version strings in an app without an app descriptor (see
    /// `app_idf_versions`); empty when it has one.
    pub idf_versions: Vec<(usize, BuildVersion)>,
}

/// Everything learnt about a file. Offsets are the file's; add [`Inspection::flash_base`] for
/// flash addresses.
#[derive(Debug)]
pub struct Inspection {
    /// Whether the apps sit at the file's start or at their partitions.
    pub layout: Layout,
    /// What the file is.
    pub kind: FileKind,
    /// The file's length in bytes.
    pub size: usize,
    /// The 2nd-stage bootloader of a merged image, or the file itself when it is one.
    pub bootloader: Option<Result<AppImage, ImageError>>,
    /// Where [`Inspection::bootloader`] starts in the file.
    pub bootloader_offset: usize,
    /// The ESP-IDF version the bootloader was built with, when it states one.
    pub bootloader_version: Option<BootloaderVersion>,
    /// The table of a merged image, or the file itself when it is one.
    pub partitions: Option<Result<PartitionTable, partition::PartitionError>>,
    /// The otadata partition of a merged image, or the file itself when it is one.
    pub otadata: Option<Otadata>,
    /// The OTA slot the bootloader would pick (`None`: factory or first).
    pub selected_slot: Option<u32>,
    /// The apps. A file that is no ESP32-family image keeps the reading's error here, so that
    /// whoever only looks at the apps refuses it; [`Inspection::kind`] says what it is.
    pub apps: Vec<FoundApp>,
    /// Certificates and bundles anywhere in the file, in offset order, each with its role.
    pub trust: Vec<TrustItem>,
    /// Private keys in the file (see `scan_trust`).
    pub private_keys: Vec<PrivateKeyItem>,
    /// URL-like strings and the offset of each (see [`find_urls`]).
    pub urls: Vec<(usize, String)>,
    /// What a fleet owner should know, at the inspection date.
    pub findings: Vec<Finding>,
}

impl Inspection {
    /// The flash address of the file's first byte: 0, or the bootloader's offset for a merged
    /// image that starts with the bootloader.
    pub fn flash_base(&self) -> usize {
        match self.kind {
            FileKind::MergedFlash { base, .. } => base as usize,
            _ => 0,
        }
    }
}

/// Looks at `bytes`. `at` is the date (unix seconds) validity is judged at; `lab_keys` are the
/// SHA-256 of the lab authorities' `SubjectPublicKeyInfo`s, to recognise lab roots: their
/// subjects equal the real ones' on purpose, and a transplant re-mints the certificate (a new
/// fingerprint) or puts only the key in a bundle, so only the key tells.
pub fn inspect(bytes: &[u8], at: i64, lab_keys: &[[u8; 32]]) -> Inspection {
    let kind = identify(bytes);
    let scan = scan_trust(bytes);
    let mut inspection = Inspection {
        layout: if matches!(kind, FileKind::MergedFlash { .. }) { Layout::MergedFlash } else { Layout::App },
        kind: kind.clone(),
        size: bytes.len(),
        bootloader: None,
        bootloader_offset: 0,
        bootloader_version: None,
        partitions: None,
        otadata: None,
        selected_slot: None,
        apps: Vec::new(),
        trust: scan.items,
        private_keys: scan.private_keys,
        urls: find_urls(bytes),
        findings: Vec::new(),
    };
    match kind {
        FileKind::MergedFlash { base, bootloader } => read_merged(&mut inspection, bytes, base as usize, bootloader),
        FileKind::Bootloader => read_bootloader(&mut inspection, bytes, 0),
        other => {
            match other {
                FileKind::Foreign(Foreign::PartitionTable) => {
                    inspection.partitions = Some(partition::read_table(&as_flashed_table(bytes)));
                }
                FileKind::Foreign(Foreign::Otadata) => inspection.otadata = Some(Otadata::decode(bytes)),
                _ => {}
            }
            inspection.apps.push(found_app(bytes, 0, None));
        }
    }
    if matches!(inspection.kind, FileKind::App | FileKind::Bootloader | FileKind::MergedFlash { .. }) {
        inspection.findings = findings(&inspection, at, lab_keys);
    }
    inspection
}

/// A table file as the flash holds it once written at 0x8000: `gen_esp32part.py` pads it to
/// 0xC00 bytes with 0xFF, and a shorter file leaves the rest of its sector erased.
fn as_flashed_table(bytes: &[u8]) -> Vec<u8> {
    let mut table = bytes[..bytes.len().min(partition::TABLE_MAX_LEN)].to_vec();
    table.resize(partition::TABLE_MAX_LEN, 0xFF);
    table
}

fn found_app(image: &[u8], offset: usize, slot: Option<AppSlot>) -> FoundApp {
    let parsed = parse_app(image);
    let idf_versions = match &parsed {
        Ok(app) if app.app_desc.is_some() => Vec::new(),
        _ => app_idf_versions(image),
    };
    FoundApp { offset, slot, image: parsed, idf_versions }
}

fn read_bootloader(inspection: &mut Inspection, bytes: &[u8], offset: usize) {
    let image = &bytes[offset.min(bytes.len())..];
    inspection.bootloader = Some(parse_app(image));
    inspection.bootloader_offset = offset;
    inspection.bootloader_version = bootloader_version(image);
}

/// A merged image whose first byte is at flash address `base`, its bootloader at `bootloader`.
fn read_merged(inspection: &mut Inspection, bytes: &[u8], base: usize, bootloader: u32) {
    let file_offset = |address: usize| address.checked_sub(base).filter(|&at| at < bytes.len());
    read_bootloader(inspection, bytes, bootloader as usize - base);
    let table = partition::read_table(&bytes[TABLE_OFFSET - base..]);
    if let Ok(table) = &table {
        let slots = partition::app_slots(table);
        if let Some((offset, size)) = partition::otadata_partition(table)
            && let Some(start) = file_offset(offset as usize)
        {
            let end = (start + size as usize).min(bytes.len());
            let otadata = Otadata::decode(&bytes[start..end]);
            let ota_count = slots.iter().filter(|s| s.ota.is_some()).count() as u32;
            inspection.selected_slot = otadata.selected_slot(ota_count);
            inspection.otadata = Some(otadata);
        }
        for slot in slots {
            let Some(offset) = file_offset(slot.offset as usize) else { continue };
            if bytes[offset] == 0xE9 {
                let end = (offset + slot.size as usize).min(bytes.len());
                inspection.apps.push(found_app(&bytes[offset..end], offset, Some(slot)));
            }
        }
    }
    inspection.partitions = Some(table);
}
