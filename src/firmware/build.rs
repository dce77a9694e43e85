//! Images for manifests that name no real build: a real-format app image and the 2nd-stage
//! bootloader image of the manifest's ESP-IDF version, carrying what the twin needs.
//!
//! App layout (ESP32), as `esptool elf2image` lays an ESP-IDF app out:
//! - segment 0, DROM at 0x3F400020 (image offset 0x20): the app descriptor (v3.3+), then the
//!   embedded roots as `EMBED_TXTFILES` stores them (PEM, NUL-terminated) or the certificate
//!   bundle, the OTA URL as a C string, and the profile record;
//! - DRAM and IRAM segments of deterministic filler;
//! - a padding segment (load address 0) so that the IROM segment's data sits at an image offset
//!   congruent to its address modulo 64 KiB, as the flash cache requires;
//! - segment IROM at 0x400D0020..: deterministic filler that brings the image to its size
//!   (0.6-0.95 MB, from the firmware id, or the manifest's `image_size`).
//!
//! The profile record (documented here because the twin reads it): the ASCII marker
//! `otarig-profile-v1\n`, then `key=value` lines (`id`, `version`, `idf`, `chip`, `ota_url`,
//! `time_check`, `clock` (`unset`, `sntp` or Unix seconds), `rollback`, `trust`, `client`, and
//! `update=true` for the release offered as the update, `confirms=false` for an app that never
//! confirms itself after an update, `curves_off=secp384r1,...` for a build without those
//! curves, `tls_in_content_len=N` for a reduced TLS input buffer, `tls_heap=N` for the heap
//! it leaves for a TLS connection), then a NUL. Real images have none; the twin then
//! infers the profile from the image and the manifest.

use sha2::Digest;

use super::profile::ClockSource;
use super::{FirmwareManifest, Fleet, Trust};
use crate::device_tls::{Curve, DEFAULT_IN_CONTENT_LEN};
use crate::image::build::{ImageSpec, SegmentSpec, write_image};
use crate::image::{BundleEntry, BundleFormat, CertBundle};
use crate::pki::{LabPki, PkiError};

/// The marker that starts the profile record.
pub const PROFILE_MARKER: &[u8] = b"otarig-profile-v1\n";
/// In the DRAM segment of a bootloader built with `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`: the
/// twin's bootloader then runs the rollback state machine. Real bootloaders carry no marker
/// (the twin treats them as built without rollback).
pub(crate) const ROLLBACK_MARKER: &[u8] = b"otarig-bootloader: app rollback\0";

const DROM: u32 = 0x3F40_0020;
const DRAM: u32 = 0x3FFB_0000;
const IRAM: u32 = 0x4008_0000;
const IROM: u32 = 0x400D_0020;

/// A firmware's built images.
#[derive(Clone, Debug)]
pub struct BuiltFirmware {
    /// The app image, carrying its profile record and trust material.
    pub app: Vec<u8>,
    /// The bootloader image (marked when the firmware rolls back).
    pub bootloader: Vec<u8>,
}

/// Builds the app and bootloader images of `firmware`.
pub fn build(firmware: &FirmwareManifest, fleet: &Fleet, pki: &LabPki) -> Result<BuiltFirmware, PkiError> {
    Ok(BuiltFirmware { app: build_app(firmware, fleet, pki)?, bootloader: build_bootloader(firmware) })
}

fn build_app(firmware: &FirmwareManifest, fleet: &Fleet, pki: &LabPki) -> Result<Vec<u8>, PkiError> {
    let mut rodata = Vec::new();
    if firmware.idf.release.has_app_descriptor() {
        rodata.extend_from_slice(&app_descriptor(firmware));
    }
    match &firmware.trust {
        Trust::Pem(names) => {
            for name in names {
                rodata.extend_from_slice(pki.certificate(name)?.pem.as_bytes());
                rodata.push(0);
            }
        }
        Trust::Bundle(_) => {
            let mut entries = Vec::new();
            for name in fleet.trusted_authorities(firmware) {
                let der = pki.certificate(&name)?.der;
                let entry =
                    BundleEntry::from_certificate_der(&der).map_err(|_| PkiError::Unreadable { name: name.clone() })?;
                entries.push(entry);
            }
            let format = if (firmware.idf.release.major, firmware.idf.release.minor) >= (5, 4) {
                BundleFormat::OffsetTableV54
            } else {
                BundleFormat::BigEndianV44
            };
            rodata.extend_from_slice(&CertBundle::encode(&entries, format));
        }
        Trust::Embedded => {}
    }
    rodata.extend_from_slice(firmware.ota_url.as_ref().map_or("", |url| url.as_str()).as_bytes());
    rodata.push(0);
    rodata.extend_from_slice(&profile(firmware));
    rodata.push(0);

    let seed = u64::from_le_bytes(sha2::Sha256::digest(firmware.id.as_bytes())[..8].try_into().unwrap_or([0; 8]));
    let target = firmware.image_size.unwrap_or(600_000 + (seed % 350_000) as usize);
    let mut segments = vec![
        SegmentSpec { load_addr: DROM, data: rodata },
        SegmentSpec { load_addr: DRAM, data: filler(seed ^ 1, 4_096) },
        SegmentSpec { load_addr: IRAM, data: filler(seed ^ 2, 24_576) },
    ];
    // Where the next segment's data would start: header, then each segment's header and data.
    let mut offset = 24 + segments.iter().map(|s| 8 + s.data.len().div_ceil(4) * 4).sum::<usize>();
    // A padding segment so that IROM data lands at offset ≡ IROM (mod 64 KiB).
    let want = IROM as usize % 0x10000;
    let gap = (want + 0x10000 - (offset + 8 + 8) % 0x10000) % 0x10000;
    segments.push(SegmentSpec { load_addr: 0, data: vec![0; gap] });
    offset += 8 + gap;
    let irom_len = target.saturating_sub(offset + 8 + 48).max(4096) / 4 * 4;
    segments.push(SegmentSpec { load_addr: IROM, data: filler(seed ^ 3, irom_len) });
    Ok(write_image(&ImageSpec::esp32(IRAM + 0x1000, segments)))
}

/// `esp_app_desc_t` (256 bytes) for v3.3 and later.
fn app_descriptor(firmware: &FirmwareManifest) -> Vec<u8> {
    let mut desc = vec![0u8; 256];
    desc[0..4].copy_from_slice(&0xABCD_5432u32.to_le_bytes());
    let put = |desc: &mut Vec<u8>, at: usize, len: usize, text: &str| {
        let bytes = text.as_bytes();
        let n = bytes.len().min(len - 1);
        desc[at..at + n].copy_from_slice(&bytes[..n]);
    };
    put(&mut desc, 0x10, 32, &firmware.version);
    put(&mut desc, 0x30, 32, &firmware.id);
    put(&mut desc, 0x50, 16, "12:00:00");
    put(&mut desc, 0x60, 16, "Jan  1 2024");
    put(&mut desc, 0x70, 32, &firmware.idf.to_string());
    let elf = sha2::Sha256::digest(format!("{}-{}", firmware.id, firmware.version).as_bytes());
    desc[0x90..0xB0].copy_from_slice(&elf);
    desc
}

fn profile(firmware: &FirmwareManifest) -> Vec<u8> {
    let trust = match &firmware.trust {
        Trust::Pem(names) => format!("pem:{}", names.join(",")),
        Trust::Bundle(id) => format!("bundle:{id}"),
        Trust::Embedded => "embedded".to_owned(),
    };
    let clock = match firmware.clock {
        ClockSource::Unset => "unset".to_owned(),
        ClockSource::Sntp => "sntp".to_owned(),
        ClockSource::Fixed(at) => at.to_string(),
    };
    let mut text = String::from_utf8_lossy(PROFILE_MARKER).into_owned();
    for (key, value) in [
        ("id", firmware.id.clone()),
        ("version", firmware.version.clone()),
        ("idf", firmware.idf.to_string()),
        ("chip", format!("{:?}", firmware.chip).to_lowercase()),
        ("ota_url", firmware.ota_url.as_ref().map(ToString::to_string).unwrap_or_default()),
        ("time_check", firmware.time_check.to_string()),
        ("clock", clock),
        ("rollback", firmware.rollback.to_string()),
        ("trust", trust),
        ("client", firmware.client.name().to_owned()),
    ] {
        text.push_str(&format!("{key}={value}\n"));
    }
    if firmware.update {
        // The release offered as the update: the twin does not look for a newer one.
        text.push_str("update=true\n");
    }
    if !firmware.confirms {
        text.push_str("confirms=false\n");
    }
    // Only where the build departs from ESP-IDF's default, so default builds keep their bytes.
    if !firmware.tls.curves_off.is_empty() {
        let names: Vec<&str> = firmware.tls.curves_off.iter().map(Curve::name).collect();
        text.push_str(&format!("curves_off={}\n", names.join(",")));
    }
    if firmware.tls.in_content_len != DEFAULT_IN_CONTENT_LEN {
        text.push_str(&format!("tls_in_content_len={}\n", firmware.tls.in_content_len));
    }
    if let Some(heap) = firmware.tls.heap {
        text.push_str(&format!("tls_heap={heap}\n"));
    }
    text.into_bytes()
}

/// The 2nd-stage bootloader image of the firmware's ESP-IDF version (an OTA never rewrites
/// it). v5.x bootloaders start their DRAM segment with `esp_bootloader_desc_t`.
fn build_bootloader(firmware: &FirmwareManifest) -> Vec<u8> {
    let idf = firmware.idf.to_string();
    let mut dram = Vec::new();
    if firmware.idf.release.major >= 5 {
        // magic_byte 0x50, reserved[3], u32 version, idf_ver[32], date_time[24], reserved2[16]
        dram.extend_from_slice(&[0x50, 0, 0, 0]);
        dram.extend_from_slice(&1u32.to_le_bytes());
        let mut field = [0u8; 32];
        field[..idf.len().min(31)].copy_from_slice(&idf.as_bytes()[..idf.len().min(31)]);
        dram.extend_from_slice(&field);
        let mut date = [0u8; 24];
        date[..20].copy_from_slice(b"Jan  1 2024 12:00:00");
        dram.extend_from_slice(&date);
        dram.extend_from_slice(&[0; 16]);
    }
    dram.extend_from_slice(format!("ESP-IDF {idf} 2nd stage bootloader\0").as_bytes());
    if firmware.rollback {
        // CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, for the twin's bootloader (see `ROLLBACK_MARKER`).
        dram.extend_from_slice(ROLLBACK_MARKER);
    }
    let seed = u64::from(firmware.idf.release.major) * 100 + u64::from(firmware.idf.release.minor);
    let segments = vec![
        SegmentSpec { load_addr: 0x3FFF_0030, data: dram },
        SegmentSpec { load_addr: 0x4007_8000, data: filler(seed, 13_600) },
        SegmentSpec { load_addr: 0x4008_0400, data: filler(seed ^ 7, 6_660) },
    ];
    write_image(&ImageSpec { hash_appended: false, ..ImageSpec::esp32(0x4008_0764, segments) })
}

/// Deterministic bytes that look like code (never all one value).
fn filler(mut seed: u64, len: usize) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as u8
        })
        .collect()
}
