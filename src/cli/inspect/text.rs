//! `inspect`'s text: the file's kind, its bootloader, table, otadata and apps, the trust
//! material with each certificate's role, private keys, URLs and findings. Offsets are shown
//! as flash addresses when the file is a merged image that does not start at 0.

use std::fmt::Write as _;

use otarig::image::identify::{FileKind, Foreign};
use otarig::image::inspect::{FoundApp, Inspection};
use otarig::image::otadata::Otadata;
use otarig::image::{AppImage, CertInfo, ImageError, KeyForm, SegmentKind, TrustItem, TrustKind, VersionSource};
use time::OffsetDateTime;

use super::{date, describe_foreign, explain, hex, key, key_format, role};

pub(super) fn to_text(name: &str, inspection: &Inspection, at: OffsetDateTime) -> String {
    let base = inspection.flash_base();
    let mut out = String::new();
    let _ = writeln!(out, "{name}: {}", headline(inspection));
    if let Some(bootloader) = &inspection.bootloader {
        let _ = writeln!(out, "\nbootloader at 0x{:x}:", inspection.bootloader_offset + base);
        describe_image(&mut out, bootloader.as_ref());
        describe_bootloader_version(&mut out, inspection);
    }
    describe_table(&mut out, inspection);
    if matches!(inspection.kind, FileKind::App | FileKind::MergedFlash { .. }) {
        for app in &inspection.apps {
            describe_app(&mut out, app, base);
        }
    }
    let has_apps = matches!(inspection.kind, FileKind::App | FileKind::MergedFlash { .. });
    if has_apps || !inspection.trust.is_empty() {
        let _ = writeln!(out, "\ntrust material (validity on {}):", at.date());
        if inspection.trust.is_empty() {
            let _ = writeln!(out, "  none found");
        }
        for item in &inspection.trust {
            describe_trust_item(&mut out, item, base, at.unix_timestamp());
        }
    }
    describe_private_keys(&mut out, inspection, base);
    if !inspection.urls.is_empty() {
        let _ = writeln!(out, "\nURLs:");
        for (offset, url) in &inspection.urls {
            let _ = writeln!(out, "  0x{:06x} {url}", offset + base);
        }
    }
    if !inspection.findings.is_empty() {
        let _ = writeln!(out, "\nfindings:");
        for finding in &inspection.findings {
            let _ = writeln!(out, "  ! {}", explain(finding, base));
        }
    }
    out
}

/// The first line after the file's name: what it is and its size.
fn headline(inspection: &Inspection) -> String {
    let size = inspection.size;
    match &inspection.kind {
        FileKind::App => format!("app image, {size} bytes"),
        FileKind::Bootloader => format!("bootloader image, {size} bytes"),
        FileKind::MergedFlash { base: 0, .. } => format!("merged flash image, {size} bytes"),
        FileKind::MergedFlash { base, .. } => format!(
            "merged flash image starting at flash address 0x{base:x} (the bootloader's), {size} bytes; \
             addresses below are flash addresses"
        ),
        FileKind::Foreign(foreign) => format!("{}, {size} bytes", describe_foreign(foreign)),
        FileKind::Unknown => {
            let problem = inspection.apps.first().and_then(|a| a.image.as_ref().err());
            let problem = problem.map(|err| format!(" ({err})")).unwrap_or_default();
            format!("not an ESP image{problem}, {size} bytes")
        }
    }
}

fn describe_bootloader_version(out: &mut String, inspection: &Inspection) {
    if !matches!(inspection.bootloader, Some(Ok(_))) {
        return;
    }
    let _ = match &inspection.bootloader_version {
        Some(version) => {
            let relation = version.build.as_ref().map(otarig::idf::BuildVersion::relation).filter(|r| !r.is_empty());
            let relation = relation.map(|r| format!(" ({r})")).unwrap_or_default();
            let source = match version.source {
                VersionSource::Descriptor => "from its descriptor".to_owned(),
                VersionSource::Strings => {
                    format!("from the version string at 0x{:x} of the image", version.offset)
                }
            };
            writeln!(out, "  built with ESP-IDF {}{relation}, {source}", version.text)
        }
        None => writeln!(out, "  ESP-IDF version: not stated (no descriptor before v5.2, and no banner string)"),
    };
}

fn describe_table(out: &mut String, inspection: &Inspection) {
    let standalone = matches!(inspection.kind, FileKind::Foreign(Foreign::PartitionTable));
    match &inspection.partitions {
        Some(Err(err)) => {
            let _ = writeln!(out, "\npartition table: {err}");
        }
        Some(Ok(table)) => {
            let _ = writeln!(out, "\npartition table{}:", if standalone { "" } else { " at 0x8000" });
            for p in table.partitions() {
                let _ = writeln!(
                    out,
                    "  {:<16} {:<5} {:<9} 0x{:08x} 0x{:08x}",
                    p.name(),
                    p.ty(),
                    p.subtype(),
                    p.offset(),
                    p.size()
                );
            }
        }
        None => {}
    }
    if let Some(otadata) = &inspection.otadata {
        let boots = match (&inspection.kind, inspection.selected_slot) {
            (FileKind::Foreign(_), _) => String::new(),
            (_, Some(slot)) => format!("; boots ota_{slot}"),
            (_, None) => "; boots factory (or the first app)".into(),
        };
        let indent = if matches!(inspection.kind, FileKind::Foreign(_)) { "\n" } else { "  " };
        let _ = writeln!(out, "{indent}otadata: {}{boots}", otadata_entries(otadata));
    }
}

fn otadata_entries(otadata: &Otadata) -> String {
    let entries: Vec<String> = otadata
        .entries
        .iter()
        .map(|e| format!("seq {:#x} {:?}{}", e.seq, e.state, if e.is_valid() { "" } else { " (invalid)" }))
        .collect();
    entries.join(", ")
}

fn describe_app(out: &mut String, app: &FoundApp, base: usize) {
    let place = match &app.slot {
        Some(slot) => format!("{} at 0x{:x}", slot.name, app.offset + base),
        None => format!("0x{:x}", app.offset + base),
    };
    let _ = writeln!(out, "\napp at {place}:");
    describe_image(out, app.image.as_ref());
    let Ok(image) = &app.image else { return };
    let _ = match &image.app_desc {
        Some(desc) => writeln!(
            out,
            "  app descriptor: {} {} (ESP-IDF {}), built {} {}, ELF SHA-256 {}",
            desc.project_name, desc.version, desc.idf_ver, desc.date, desc.time, desc.app_elf_sha256
        ),
        None => writeln!(out, "  app descriptor: none (ESP-IDF v3.2 or earlier, or not an app)"),
    };
    if !app.idf_versions.is_empty() {
        let found: Vec<String> =
            app.idf_versions.iter().map(|(at, v)| format!("{v} at 0x{:x}", app.offset + at + base)).collect();
        let _ = writeln!(out, "  ESP-IDF version strings: {}", found.join(", "));
    }
}

fn describe_image(out: &mut String, image: Result<&AppImage, &ImageError>) {
    let image = match image {
        Ok(image) => image,
        Err(err) => {
            let _ = writeln!(out, "  not a valid image: {err}");
            return;
        }
    };
    let header = &image.header;
    let _ = writeln!(
        out,
        "  chip {}, entry 0x{:08x}, flash {} {} {}, {} segments, {} bytes",
        header.chip,
        header.entry_addr,
        header.spi_mode.name().unwrap_or("?"),
        header.spi_speed.name(header.chip).unwrap_or("?"),
        header.spi_size.name().unwrap_or("?"),
        image.segments.len(),
        image.length
    );
    for segment in &image.segments {
        let kind = match segment.kind {
            SegmentKind::Map => "map",
            SegmentKind::Load => "load",
            SegmentKind::Padding => "padding",
            SegmentKind::Unknown => "",
        };
        let _ = writeln!(
            out,
            "    segment {}: paddr={:08x} vaddr={:08x} size={:05x}h ({:6}) {kind}",
            segment.index, segment.data_offset, segment.load_addr, segment.length, segment.length
        );
    }
    let checksum = &image.checksum;
    let _ = if checksum.ok() {
        writeln!(out, "  checksum 0x{:02x}: ok", checksum.stored)
    } else {
        writeln!(out, "  Checksum failed. Calculated 0x{:x} read 0x{:x}", checksum.calculated, checksum.stored)
    };
    let _ = match &image.hash {
        Some(hash) if hash.ok() => writeln!(out, "  SHA-256 {}: ok", hash.stored),
        Some(hash) => writeln!(
            out,
            "  Image hash failed - image is corrupt (stored {}, calculated {})",
            hash.stored, hash.calculated
        ),
        None => writeln!(out, "  no SHA-256 appended"),
    };
}

fn describe_trust_item(out: &mut String, item: &TrustItem, base: usize, at: i64) {
    let offset = item.offset + base;
    match &item.kind {
        TrustKind::Pem(info) | TrustKind::Der(info) => {
            let form = if matches!(item.kind, TrustKind::Pem(_)) { "PEM" } else { "DER" };
            let _ = writeln!(out, "  0x{offset:06x} {form} {}: {}", role(item.role), info.subject);
            let _ = writeln!(
                out,
                "           {}, {} .. {} {}, {}{}",
                key(&info.key),
                date(info.not_before),
                date(info.not_after),
                validity(info, at),
                info.signature_algorithm,
                if info.self_signed { ", self-signed" } else { "" }
            );
            let _ = writeln!(out, "           SHA-256 {}", hex(&info.sha256));
        }
        TrustKind::Bundle { format, sorted, entries } => {
            let sorted = if *sorted { "" } else { ", NOT sorted (lookups may fail)" };
            let _ = writeln!(out, "  0x{offset:06x} certificate bundle ({format:?}), {} roots{sorted}", entries.len());
            for entry in entries {
                let _ = writeln!(out, "           {} ({})", entry.subject, key(&entry.key));
            }
        }
    }
}

fn validity(info: &CertInfo, at: i64) -> &'static str {
    if info.not_after < at {
        "EXPIRED"
    } else if info.not_before > at {
        "NOT YET VALID"
    } else {
        "valid"
    }
}

/// Where each private key is and what kind it is; never the key.
fn describe_private_keys(out: &mut String, inspection: &Inspection, base: usize) {
    if inspection.private_keys.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nprivate keys:");
    for found in &inspection.private_keys {
        let form = match found.form {
            KeyForm::Pem => "PEM",
            KeyForm::Der => "DER",
        };
        let kind = match (&found.key, found.encrypted) {
            (_, true) => "encrypted".to_owned(),
            (Some(kind), false) => key(kind),
            (None, false) => "unreadable".to_owned(),
        };
        let _ = writeln!(
            out,
            "  0x{:06x} {form} {} private key, {kind}, {} bytes",
            found.offset + base,
            key_format(found.format),
            found.len
        );
    }
}
