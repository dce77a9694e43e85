//! `inspect`'s JSON: one object. Offsets are the file's; `flash_base` added to one gives its
//! flash address.

use otarig::image::identify::{FileKind, Foreign};
use otarig::image::inspect::{FoundApp, Inspection, Layout};
use otarig::image::{AppImage, CertInfo, Esp8266Format, ImageError, KeyForm, PrivateKeyItem, TrustItem, TrustKind};
use serde_json::{Value, json};

use super::{date, explain, hex, key, key_format};

pub(super) fn to_json(inspection: &Inspection) -> Value {
    let base = inspection.flash_base();
    let apps: Vec<Value> = match inspection.kind {
        // Another chip's image or file: no ESP32 app to speak of, not a broken one.
        FileKind::Foreign(_) | FileKind::Bootloader => Vec::new(),
        _ => inspection.apps.iter().map(app_json).collect(),
    };
    json!({
        "layout": match inspection.layout { Layout::App => "app", Layout::MergedFlash => "merged-flash" },
        "kind": kind_name(&inspection.kind),
        "flash_base": base,
        "size": inspection.size,
        "foreign": match &inspection.kind { FileKind::Foreign(foreign) => foreign_json(foreign), _ => Value::Null },
        "bootloader": inspection.bootloader.as_ref().map(|image| bootloader_json(inspection, image)),
        "partitions": inspection.partitions.as_ref().map(|table| match table {
            Err(err) => json!({ "error": err.to_string() }),
            Ok(table) => Value::Array(table.partitions().iter().map(|p| json!({
                "name": p.name(), "type": p.ty().to_string(), "subtype": p.subtype().to_string(),
                "offset": p.offset(), "size": p.size(),
            })).collect()),
        }),
        "otadata": inspection.otadata.as_ref().map(|otadata| otadata.entries.iter().map(|e| json!({
            "seq": e.seq, "state": e.state, "valid": e.is_valid(),
        })).collect::<Vec<_>>()),
        "apps": apps,
        "selected_ota_slot": inspection.selected_slot,
        "trust": inspection.trust.iter().map(trust_json).collect::<Vec<_>>(),
        "private_keys": inspection.private_keys.iter().map(private_key_json).collect::<Vec<_>>(),
        "urls": inspection.urls.iter().map(|(offset, url)| json!({ "offset": offset, "url": url })).collect::<Vec<_>>(),
        "findings": inspection.findings.iter().map(|f| explain(f, base)).collect::<Vec<_>>(),
    })
}

fn kind_name(kind: &FileKind) -> &'static str {
    match kind {
        FileKind::App => "app",
        FileKind::Bootloader => "bootloader",
        FileKind::MergedFlash { .. } => "merged-flash",
        FileKind::Foreign(Foreign::Esp8266 { .. }) => "esp8266",
        FileKind::Foreign(Foreign::PartitionTable) => "partition-table",
        FileKind::Foreign(Foreign::Otadata) => "otadata",
        FileKind::Foreign(Foreign::Pem { .. }) => "pem",
        FileKind::Foreign(Foreign::Elf { .. }) => "elf",
        FileKind::Unknown => "unknown",
    }
}

fn foreign_json(foreign: &Foreign) -> Value {
    match foreign {
        Foreign::Esp8266 { image, sdk_version } => json!({
            "chip": "esp8266",
            "format": match image.format { Esp8266Format::V1 => "v1", Esp8266Format::V2 => "v2" },
            "entry": format!("0x{:08x}", image.entry_addr),
            "segments": image.segment_count,
            "flash_mode": image.spi_mode.name(),
            "flash_size": image.flash_size_name(),
            "checksum": { "calculated": image.checksum.calculated, "stored": image.checksum.stored, "ok": image.checksum.ok() },
            "length": image.length,
            "sdk_version": sdk_version.as_ref().map(ToString::to_string),
        }),
        Foreign::Pem { label } => json!({ "label": label }),
        Foreign::Elf { machine } => json!({ "machine": machine, "machine_name": Foreign::elf_machine_name(*machine) }),
        Foreign::PartitionTable | Foreign::Otadata => json!({}),
    }
}

fn image_json(image: &Result<AppImage, ImageError>) -> Value {
    match image {
        Err(err) => json!({ "error": err.to_string() }),
        Ok(image) => json!({
            "chip": image.header.chip.to_string(),
            "entry": format!("0x{:08x}", image.header.entry_addr),
            "segments": image.segments.iter().map(|s| json!({
                "index": s.index, "offset": s.data_offset, "load_address": format!("0x{:08x}", s.load_addr), "length": s.length,
            })).collect::<Vec<_>>(),
            "length": image.length,
            "checksum": { "calculated": image.checksum.calculated, "stored": image.checksum.stored, "ok": image.checksum.ok() },
            "sha256": image.hash.as_ref().map(|h| json!({ "stored": h.stored.to_string(), "calculated": h.calculated.to_string(), "ok": h.ok() })),
            "app_descriptor": image.app_desc.as_ref().map(|d| json!({
                "version": d.version, "project_name": d.project_name, "idf_version": d.idf_ver,
                "date": d.date, "time": d.time, "elf_sha256": d.app_elf_sha256, "secure_version": d.secure_version,
            })),
        }),
    }
}

fn bootloader_json(inspection: &Inspection, image: &Result<AppImage, ImageError>) -> Value {
    let mut value = image_json(image);
    if let Some(object) = value.as_object_mut() {
        object.insert("offset".into(), json!(inspection.bootloader_offset));
        object.insert(
            "idf_version".into(),
            inspection
                .bootloader_version
                .as_ref()
                .map_or(Value::Null, |v| json!({ "text": v.text, "source": v.source.name(), "offset": v.offset })),
        );
    }
    value
}

fn app_json(app: &FoundApp) -> Value {
    json!({
        "offset": app.offset,
        "partition": app.slot.as_ref().map(|s| s.name.clone()),
        "image": image_json(&app.image),
        "idf_versions": app.idf_versions.iter().map(|(offset, v)| json!({ "offset": offset, "version": v.text })).collect::<Vec<_>>(),
    })
}

fn cert_json(info: &CertInfo) -> Value {
    json!({
        "subject": info.subject, "issuer": info.issuer, "serial": info.serial_hex, "key": key(&info.key),
        "signature_algorithm": info.signature_algorithm, "not_before": date(info.not_before), "not_after": date(info.not_after),
        "ca": info.is_ca, "self_signed": info.self_signed, "sha256": hex(&info.sha256),
    })
}

fn trust_json(item: &TrustItem) -> Value {
    let role = item.role.name();
    match &item.kind {
        TrustKind::Pem(info) => {
            json!({ "offset": item.offset, "form": "pem", "role": role, "certificate": cert_json(info) })
        }
        TrustKind::Der(info) => {
            json!({ "offset": item.offset, "form": "der", "role": role, "certificate": cert_json(info) })
        }
        TrustKind::Bundle { format, sorted, entries } => json!({
            "offset": item.offset, "form": "bundle", "role": role, "format": format!("{format:?}"), "sorted": sorted,
            "roots": entries.iter().map(|e| json!({ "subject": e.subject, "key": key(&e.key) })).collect::<Vec<_>>(),
        }),
    }
}

/// Where the key is and what kind: never the key.
fn private_key_json(found: &PrivateKeyItem) -> Value {
    json!({
        "offset": found.offset,
        "length": found.len,
        "form": match found.form { KeyForm::Pem => "pem", KeyForm::Der => "der" },
        "format": key_format(found.format),
        "encrypted": found.encrypted,
        "key": found.key.as_ref().map(key),
    })
}
