//! What a file is, before it is read in detail: an ESP32-family app or 2nd-stage bootloader, a
//! merged flash image (from flash address 0, or from the bootloader's own offset as `esptool
//! merge-bin` writes it when the bootloader comes first), or something else worth naming (an
//! ESP8266 image, a partition table, otadata, a PEM or ELF file).

use crate::idf::{BuildVersion, find_versions};

use super::app::{IMAGE_HEADER_LEN, IMAGE_MAGIC, parse_segments};
use super::bootloader::is_bootloader;
use super::chip::Chip;
use super::esp8266::{ESP8266_V2_MAGIC, Esp8266Image, read_esp8266};
use super::otadata::{OTADATA_SIZE, SECTOR_SIZE};
use super::partition::{ESP32_BOOTLOADER_OFFSET, TABLE_OFFSET};

/// The partition table's first bytes (`ESP_PARTITION_MAGIC`, little-endian 0x50AA).
const TABLE_MAGIC: [u8; 2] = [0xAA, 0x50];
const ELF_MAGIC: &[u8] = b"\x7fELF";
const PEM_BEGIN: &[u8] = b"-----BEGIN ";

/// What a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An ESP32-family app image (or one whose header says so but which cannot be read).
    App,
    /// A 2nd-stage bootloader image on its own (`bootloader.bin`).
    Bootloader,
    /// A merged flash image. `base` is the flash address of its first byte: 0 for a flash dump
    /// or `esptool merge-bin` from 0, the bootloader's offset (0x1000 on the ESP32) when the file
    /// starts with the bootloader. `bootloader` is the bootloader's flash address.
    MergedFlash {
        /// Flash address of the file's first byte.
        base: u32,
        /// Flash address of the bootloader.
        bootloader: u32,
    },
    /// Not an ESP32-family image, but known.
    Foreign(Foreign),
    /// Nothing known: not an ESP image (the app reading's error says where it fails).
    Unknown,
}

/// A file that is not an ESP32-family image, and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// An ESP8266 image, with the first ESP-IDF-style version string in it (the ESP8266 RTOS
    /// SDK v3 stores its `IDF_VER` as ESP-IDF does).
    Esp8266 {
        /// What the image's header says.
        image: Esp8266Image,
        /// The SDK's version string, when the image holds one.
        sdk_version: Option<BuildVersion>,
    },
    /// A partition table (`partition-table.bin`) on its own.
    PartitionTable,
    /// An otadata partition on its own (`ota_data_initial.bin`, Arduino's `boot_app0.bin`).
    Otadata,
    /// A PEM file; `label` is its first block's (`CERTIFICATE`, `PRIVATE KEY`).
    Pem {
        /// The label of the first `-----BEGIN ...-----` line.
        label: String,
    },
    /// An ELF file (the build's `.elf`, which `esptool elf2image` turns into an image).
    Elf {
        /// The ELF header's `e_machine` (94 Xtensa, 243 RISC-V).
        machine: u16,
    },
}

impl std::fmt::Display for Foreign {
    /// What the file is, for people: `an ESP8266 image (SDK v3.2-603-g18c3a194)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Foreign::Esp8266 { sdk_version: Some(version), .. } => write!(f, "an ESP8266 image (SDK {version})"),
            Foreign::Esp8266 { .. } => f.write_str("an ESP8266 image"),
            Foreign::PartitionTable => f.write_str("a partition table"),
            Foreign::Otadata => f.write_str("an otadata partition"),
            Foreign::Pem { label } => write!(f, "a PEM file ({label})"),
            Foreign::Elf { .. } => f.write_str("an ELF file (esptool elf2image makes the image from it)"),
        }
    }
}

impl Foreign {
    /// The ELF machine's name for the chips Espressif builds for (`EM_XTENSA`, `EM_RISCV`).
    pub fn elf_machine_name(machine: u16) -> Option<&'static str> {
        match machine {
            94 => Some("Xtensa"),
            243 => Some("RISC-V"),
            _ => None,
        }
    }
}

/// Says what `bytes` are. Cheap: images' segments are located, nothing is hashed. Never panics.
pub fn identify(bytes: &[u8]) -> FileKind {
    if let Some((base, bootloader)) = merged_layout(bytes) {
        return FileKind::MergedFlash { base, bootloader };
    }
    match bytes.first() {
        Some(&(IMAGE_MAGIC | ESP8266_V2_MAGIC)) => image_kind(bytes),
        _ => foreign(bytes).map_or(FileKind::Unknown, FileKind::Foreign),
    }
}

/// The merged layouts: `(base, bootloader address)`.
fn merged_layout(bytes: &[u8]) -> Option<(u32, u32)> {
    let table_at = |at: usize| bytes.get(at..at + 2) == Some(&TABLE_MAGIC[..]);
    if table_at(TABLE_OFFSET) {
        // From 0: the ESP32's and ESP32-S2's bootloader at 0x1000, the others' at 0.
        if bytes.get(ESP32_BOOTLOADER_OFFSET) == Some(&IMAGE_MAGIC) {
            return Some((0, ESP32_BOOTLOADER_OFFSET as u32));
        }
        if bootloader_chip(bytes)?.bootloader_offset() == Some(0) {
            return Some((0, 0));
        }
    }
    // From the bootloader's offset: the file starts with the bootloader.
    let offset = bootloader_chip(bytes)?.bootloader_offset().filter(|&o| o > 0)?;
    table_at(TABLE_OFFSET - offset as usize).then_some((offset, offset))
}

/// The chip of the bootloader image `bytes` start with, if they start with one.
fn bootloader_chip(bytes: &[u8]) -> Option<Chip> {
    let read = parse_segments(bytes).ok()?;
    is_bootloader(&read.header, &read.segments).then_some(read.header.chip)
}

/// An image's kind: ESP32-family (app or bootloader) when its extended header is one, else an
/// ESP8266 image when it reads as one. esptool decides the same way: a chip id it knows and a
/// `hash_appended` of 0 or 1 make an ESP32-family header.
fn image_kind(bytes: &[u8]) -> FileKind {
    let esp32_header = bytes.get(..IMAGE_HEADER_LEN).is_some_and(|h| {
        h[0] == IMAGE_MAGIC && h[23] <= 1 && Chip::from_id(u16::from_le_bytes([h[12], h[13]])).name().is_some()
    });
    if !esp32_header && let Some(image) = read_esp8266(bytes) {
        let sdk_version = find_versions(&bytes[..image.length]).into_iter().next().map(|(_, v)| v);
        return FileKind::Foreign(Foreign::Esp8266 { image, sdk_version });
    }
    match parse_segments(bytes) {
        Ok(read) if is_bootloader(&read.header, &read.segments) => FileKind::Bootloader,
        Ok(_) => FileKind::App,
        Err(_) if esp32_header => FileKind::App,
        Err(_) => FileKind::Unknown,
    }
}

/// Files that are no image at all but are recognised by their first bytes or shape.
fn foreign(bytes: &[u8]) -> Option<Foreign> {
    if bytes.starts_with(&TABLE_MAGIC) {
        return Some(Foreign::PartitionTable);
    }
    if is_otadata(bytes) {
        return Some(Foreign::Otadata);
    }
    if bytes.starts_with(ELF_MAGIC) {
        let raw = [*bytes.get(18)?, *bytes.get(19)?];
        // EI_DATA: 1 little-endian, 2 big-endian.
        let machine = if bytes.get(5) == Some(&2) { u16::from_be_bytes(raw) } else { u16::from_le_bytes(raw) };
        return Some(Foreign::Elf { machine });
    }
    pem_label(bytes).map(|label| Foreign::Pem { label })
}

/// Two sectors holding nothing but an `esp_ota_select_entry_t` each (erased or not).
fn is_otadata(bytes: &[u8]) -> bool {
    bytes.len() == OTADATA_SIZE && bytes.iter().enumerate().all(|(at, &b)| at % SECTOR_SIZE < 32 || b == 0xFF)
}

/// The label of the PEM block a text file starts with (after blank space or a UTF-8 BOM).
fn pem_label(bytes: &[u8]) -> Option<String> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = text[start..].strip_prefix(PEM_BEGIN)?;
    let label = &rest[..rest.len().min(64)];
    let end = memchr::memmem::find(label, b"-----")?;
    let label = &label[..end];
    label.iter().all(|b| b.is_ascii_uppercase() || *b == b' ').then(|| String::from_utf8_lossy(label).into_owned())
}

#[cfg(test)]
mod tests;
