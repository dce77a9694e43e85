//! `otarig inspect IMAGE`: what an ESP32 image is, what it trusts, where it updates from.

use std::path::PathBuf;

use clap::Args;
use otarig::image::inspect::{Finding, FoundApp, Inspection, Layout, inspect};
use otarig::image::{AppImage, CertInfo, KeyKind, SegmentKind, TrustKind};
use otarig::pki::LabPki;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
Reads an app image (idf.py build, espflash save-image) or a merged flash image (bootloader at
0x1000, partition table at 0x8000, apps at their partitions). Exit status: 0 when the file was
read, 2 when it cannot be read or holds no ESP image at all.

Examples:
  otarig inspect build/app.bin
  otarig inspect flash-dump.bin --at 2021-10-01
  otarig inspect app.bin --format json | jq .trust";

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image file.
    image: PathBuf,
    /// Judge certificate validity on this date (YYYY-MM-DD; default: today).
    #[arg(long, value_name = "DATE")]
    at: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// The lab PKI, to recognise lab roots in transplanted or lab-built images.
    #[arg(long, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
}

pub fn run(args: &InspectArgs) -> u8 {
    let bytes = match std::fs::read(&args.image) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("error: cannot read {}: {err}", args.image.display());
            return exit::USAGE;
        }
    };
    let at = match &args.at {
        None => OffsetDateTime::now_utc(),
        Some(date) => match otarig::pki::spec::parse_time(date) {
            Ok(at) => at,
            Err(message) => {
                eprintln!("error: --at: {message}");
                return exit::USAGE;
            }
        },
    };
    // Without a lab PKI (outside the repository) lab roots are simply not recognised.
    // Lab roots are recognised by key: a transplant re-mints the certificate to fit.
    let lab: Vec<[u8; 32]> = LabPki::open(&args.pki)
        .map(|pki| {
            let certs = pki.specs().keys().filter_map(|n| pki.certificate(n).ok());
            certs.filter_map(|c| CertInfo::from_der(&c.der)).map(|info| info.public_key_sha256).collect()
        })
        .unwrap_or_default();
    let inspection = inspect(&bytes, at.unix_timestamp(), &lab);
    let nothing = inspection.apps.iter().all(|a| a.image.is_err())
        && inspection.bootloader.as_ref().is_none_or(Result::is_err)
        && inspection.trust.is_empty();
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&to_json(&inspection)).unwrap_or_default()),
        OutputFormat::Text => print!("{}", to_text(&args.image.display().to_string(), &inspection, at)),
    }
    if nothing {
        if let Some(Err(err)) = inspection.apps.first().map(|a| &a.image) {
            eprintln!("error: {}: no ESP image: {err}", args.image.display());
        }
        return exit::USAGE;
    }
    exit::OK
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).map_or_else(|_| unix.to_string(), |t| t.date().to_string())
}

fn key(kind: &KeyKind) -> String {
    match kind {
        KeyKind::Rsa { bits } => format!("RSA {bits}"),
        KeyKind::Ec { curve } => format!("EC {curve}"),
        KeyKind::Ed25519 => "Ed25519".into(),
        KeyKind::Ed448 => "Ed448".into(),
        KeyKind::Other { oid } => format!("key {oid}"),
    }
}

fn validity(info: &CertInfo, at: OffsetDateTime) -> &'static str {
    let at = at.unix_timestamp();
    if info.not_after < at {
        "EXPIRED"
    } else if info.not_before > at {
        "NOT YET VALID"
    } else {
        "valid"
    }
}

fn to_text(name: &str, inspection: &Inspection, at: OffsetDateTime) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let layout = match inspection.layout {
        Layout::App => "app image",
        Layout::MergedFlash => "merged flash image",
    };
    let _ = writeln!(out, "{name}: {layout}, {} bytes", inspection.size);
    if let Some(bootloader) = &inspection.bootloader {
        let _ = writeln!(out, "\nbootloader at 0x1000:");
        describe_image(&mut out, bootloader.as_ref());
    }
    if let Some(Err(err)) = &inspection.partitions {
        let _ = writeln!(out, "\npartition table: {err}");
    }
    if let Some(Ok(table)) = &inspection.partitions {
        let _ = writeln!(out, "\npartition table at 0x8000:");
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
        if let Some(otadata) = &inspection.otadata {
            let seqs: Vec<String> = otadata.entries.iter().map(|e| format!("seq {:#x} {:?}", e.seq, e.state)).collect();
            let boots = match inspection.selected_slot {
                Some(slot) => format!("boots ota_{slot}"),
                None => "boots factory (or the first app)".into(),
            };
            let _ = writeln!(out, "  otadata: {}; {boots}", seqs.join(", "));
        }
    }
    for app in &inspection.apps {
        describe_app(&mut out, app);
    }
    let _ = writeln!(out, "\ntrust material (validity on {}):", at.date());
    if inspection.trust.is_empty() {
        let _ = writeln!(out, "  none found");
    }
    for item in &inspection.trust {
        match &item.kind {
            TrustKind::Pem(info) | TrustKind::Der(info) => {
                let form = if matches!(item.kind, TrustKind::Pem(_)) { "PEM" } else { "DER" };
                let _ = writeln!(out, "  0x{:06x} {form}: {}", item.offset, info.subject);
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
                let _ = writeln!(
                    out,
                    "  0x{:06x} certificate bundle ({format:?}), {} roots{sorted}",
                    item.offset,
                    entries.len()
                );
                for entry in entries {
                    let _ = writeln!(out, "           {} ({})", entry.subject, key(&entry.key));
                }
            }
        }
    }
    if !inspection.urls.is_empty() {
        let _ = writeln!(out, "\nURLs:");
        for (offset, url) in &inspection.urls {
            let _ = writeln!(out, "  0x{offset:06x} {url}");
        }
    }
    if !inspection.findings.is_empty() {
        let _ = writeln!(out, "\nfindings:");
        for finding in &inspection.findings {
            let _ = writeln!(out, "  ! {}", explain(finding));
        }
    }
    out
}

fn describe_app(out: &mut String, app: &FoundApp) {
    use std::fmt::Write;
    let place = match &app.slot {
        Some(slot) => format!("{} at 0x{:x}", slot.name, app.offset),
        None => format!("0x{:x}", app.offset),
    };
    let _ = writeln!(out, "\napp at {place}:");
    describe_image(out, app.image.as_ref());
    if let Ok(image) = &app.image {
        match &image.app_desc {
            Some(desc) => {
                let _ = writeln!(
                    out,
                    "  app descriptor: {} {} (ESP-IDF {}), built {} {}, ELF SHA-256 {}",
                    desc.project_name, desc.version, desc.idf_ver, desc.date, desc.time, desc.app_elf_sha256
                );
            }
            None => {
                let _ = writeln!(out, "  app descriptor: none (ESP-IDF v3.2 or earlier, or not an app)");
            }
        }
    }
}

fn describe_image(out: &mut String, image: Result<&AppImage, &otarig::image::ImageError>) {
    use std::fmt::Write;
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
            _ => "",
        };
        let _ = writeln!(
            out,
            "    segment {}: paddr={:08x} vaddr={:08x} size={:05x}h ({:6}) {kind}",
            segment.index, segment.data_offset, segment.load_addr, segment.length, segment.length
        );
    }
    let checksum = &image.checksum;
    if checksum.ok() {
        let _ = writeln!(out, "  checksum 0x{:02x}: ok", checksum.stored);
    } else {
        let _ = writeln!(out, "  Checksum failed. Calculated 0x{:x} read 0x{:x}", checksum.calculated, checksum.stored);
    }
    match &image.hash {
        Some(hash) if hash.ok() => {
            let _ = writeln!(out, "  SHA-256 {}: ok", hash.stored);
        }
        Some(hash) => {
            let _ = writeln!(
                out,
                "  Image hash failed - image is corrupt (stored {}, calculated {})",
                hash.stored, hash.calculated
            );
        }
        None => {
            let _ = writeln!(out, "  no SHA-256 appended");
        }
    }
}

fn explain(finding: &Finding) -> String {
    match finding {
        Finding::AnchorExpired { subject, not_after, only_anchor: true } => format!(
            "the only root this image trusts ({subject}) expired {}; it can still update only while the \
             server sends a chain that reaches it, and only because ESP-IDF does not check dates by default \
             (MBEDTLS_HAVE_TIME_DATE off)",
            date(*not_after)
        ),
        Finding::AnchorExpired { subject, not_after, only_anchor: false } => {
            format!("trusted root {subject} expired {}", date(*not_after))
        }
        Finding::AnchorNotYetValid { subject, not_before } => {
            format!("trusted certificate {subject} is not valid before {}", date(*not_before))
        }
        Finding::IntermediatePinned { subject } => format!(
            "{subject} is an intermediate, not a root: the image breaks whenever the server's certificate \
             comes from another intermediate"
        ),
        Finding::NoTrustMaterial => {
            "no certificate or bundle found: the image cannot verify a server (or keeps its roots elsewhere)".into()
        }
        Finding::NoAppDescriptor { offset } => {
            format!("the app at 0x{offset:x} has no app descriptor: built with ESP-IDF v3.2 or earlier")
        }
        Finding::Corrupt { offset } => {
            format!("the image at 0x{offset:x} fails its checksum or hash: the bootloader refuses it")
        }
        Finding::LabAnchor { subject } => format!(
            "LAB ROOT: {subject} is one of otarig's lab authorities. This is a transplanted or lab-built image; \
             never ship it"
        ),
        Finding::LabBundleRoots { offset, subjects, total } => {
            let which = match subjects.as_slice() {
                all if all.len() == *total => format!("all {total} roots of the bundle at 0x{offset:x} are"),
                [one] => format!("{one} in the bundle at 0x{offset:x} is one of"),
                some => format!(
                    "{} of the {total} roots of the bundle at 0x{offset:x} ({}) are",
                    some.len(),
                    some.join("; ")
                ),
            };
            format!(
                "LAB ROOT: {which} otarig's lab authorities. This is a transplanted or lab-built image; never ship it"
            )
        }
    }
}

fn to_json(inspection: &Inspection) -> Value {
    let image_json = |image: &Result<AppImage, otarig::image::ImageError>| match image {
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
    };
    let cert_json = |info: &CertInfo| {
        json!({
            "subject": info.subject, "issuer": info.issuer, "serial": info.serial_hex, "key": key(&info.key),
            "signature_algorithm": info.signature_algorithm, "not_before": date(info.not_before), "not_after": date(info.not_after),
            "ca": info.is_ca, "self_signed": info.self_signed, "sha256": hex(&info.sha256),
        })
    };
    json!({
        "layout": match inspection.layout { Layout::App => "app", Layout::MergedFlash => "merged-flash" },
        "size": inspection.size,
        "bootloader": inspection.bootloader.as_ref().map(image_json),
        "apps": inspection.apps.iter().map(|a| json!({
            "offset": a.offset, "partition": a.slot.as_ref().map(|s| s.name.clone()), "image": image_json(&a.image),
        })).collect::<Vec<_>>(),
        "selected_ota_slot": inspection.selected_slot,
        "trust": inspection.trust.iter().map(|t| match &t.kind {
            TrustKind::Pem(info) => json!({ "offset": t.offset, "form": "pem", "certificate": cert_json(info) }),
            TrustKind::Der(info) => json!({ "offset": t.offset, "form": "der", "certificate": cert_json(info) }),
            TrustKind::Bundle { format, sorted, entries } => json!({
                "offset": t.offset, "form": "bundle", "format": format!("{format:?}"), "sorted": sorted,
                "roots": entries.iter().map(|e| json!({ "subject": e.subject, "key": key(&e.key) })).collect::<Vec<_>>(),
            }),
        }).collect::<Vec<_>>(),
        "urls": inspection.urls.iter().map(|(offset, url)| json!({ "offset": offset, "url": url })).collect::<Vec<_>>(),
        "findings": inspection.findings.iter().map(explain).collect::<Vec<_>>(),
    })
}
