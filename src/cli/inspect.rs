//! `otarig inspect IMAGE`: what an ESP32 image is, what it trusts, where it updates from; and
//! for a file that is no ESP32-family image, what it is instead.

use std::path::PathBuf;

use clap::Args;
use otarig::image::identify::{FileKind, Foreign};
use otarig::image::inspect::{Finding, Inspection, inspect};
use otarig::image::{CertInfo, Chip, Esp8266Format, FlashFreq, KeyFormat, KeyKind, TrustRole};
use otarig::pki::LabPki;
use time::OffsetDateTime;

use super::{OutputFormat, exit};

mod json;
mod text;

pub const AFTER_HELP: &str = "\
Reads an app image (idf.py build, espflash save-image), a bootloader image, or a merged flash
image: from flash address 0 (bootloader at 0x1000 on the ESP32, partition table at 0x8000, apps
at their partitions), or starting with the bootloader as `esptool merge-bin` writes it from
0x1000 (addresses are then shown as flash addresses). Other files are named: an ESP8266 image,
a partition table, otadata, a PEM or ELF file. Exit status: 0 when the file was read, 2 when it
cannot be read or holds nothing otarig reads (no ESP32-family image, table, otadata or trust
material).

Examples:
  otarig inspect build/app.bin
  otarig inspect build/bootloader/bootloader.bin
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
    let bytes = match otarig::input::read_image(&args.image) {
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
    match args.format {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&json::to_json(&inspection)).unwrap_or_default());
        }
        OutputFormat::Text => print!("{}", text::to_text(&args.image.display().to_string(), &inspection, at)),
    }
    match refusal(&inspection) {
        Some(why) => {
            eprintln!("error: {}: {why}", args.image.display());
            exit::USAGE
        }
        None => exit::OK,
    }
}

/// Why the file holds nothing otarig reads, or `None` when it holds something.
fn refusal(inspection: &Inspection) -> Option<String> {
    let first_problem = || inspection.apps.first().and_then(|app| app.image.as_ref().err()).map(ToString::to_string);
    let trust_found = !inspection.trust.is_empty() || !inspection.private_keys.is_empty();
    match &inspection.kind {
        FileKind::Foreign(foreign @ (Foreign::Esp8266 { .. } | Foreign::Elf { .. })) => Some(describe_foreign(foreign)),
        FileKind::Foreign(Foreign::PartitionTable) => match &inspection.partitions {
            Some(Err(err)) => Some(err.to_string()),
            _ => None,
        },
        FileKind::Foreign(Foreign::Otadata) => None,
        FileKind::Foreign(Foreign::Pem { label }) if !trust_found => {
            Some(format!("a PEM file ({label}) with no certificate or private key otarig reads"))
        }
        FileKind::Foreign(Foreign::Pem { .. }) => None,
        FileKind::Unknown | FileKind::App | FileKind::Bootloader | FileKind::MergedFlash { .. } => {
            let nothing = inspection.apps.iter().all(|a| a.image.is_err())
                && inspection.bootloader.as_ref().is_none_or(Result::is_err)
                && !trust_found;
            nothing.then(|| format!("no ESP image: {}", first_problem().unwrap_or_else(|| "nothing read".into())))
        }
    }
}

/// What a file that is no ESP32-family image is, in a phrase.
fn describe_foreign(foreign: &Foreign) -> String {
    match foreign {
        Foreign::Esp8266 { image, sdk_version } => {
            let format = match image.format {
                Esp8266Format::V1 => "v1 format",
                Esp8266Format::V2 => "v2 format",
            };
            let built = sdk_version.as_ref().map(|v| format!("built with ESP8266 RTOS SDK {v}, ")).unwrap_or_default();
            let checksum = if image.checksum.ok() { "ok" } else { "FAILED" };
            format!(
                "an ESP8266 image ({built}{format}: entry 0x{:08x}, {} segments, flash {} {} {}, checksum 0x{:02x} {checksum}): \
                 otarig works with ESP32-family images",
                image.entry_addr,
                image.segment_count,
                image.spi_mode.name().unwrap_or("?"),
                FlashFreq(image.flash_size_freq & 0x0F).name(Chip::Esp32).unwrap_or("?"),
                image.flash_size_name().unwrap_or("?"),
                image.checksum.stored,
            )
        }
        Foreign::PartitionTable => "a partition table, not an image".into(),
        Foreign::Otadata => "an otadata partition, not an image".into(),
        Foreign::Pem { label } => format!("a PEM file ({label}), not an image"),
        Foreign::Elf { machine } => {
            let machine =
                Foreign::elf_machine_name(*machine).map_or_else(|| format!("machine {machine}"), str::to_owned);
            format!("an ELF file ({machine}), not a flash image: `esptool elf2image` makes the image from it")
        }
    }
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

/// For people: `CA root`, `intermediate CA`, `pinned leaf`, `client certificate`.
fn role(role: TrustRole) -> &'static str {
    match role {
        TrustRole::CaRoot => "CA root",
        TrustRole::IntermediateCa => "intermediate CA",
        TrustRole::PinnedLeaf => "pinned leaf",
        TrustRole::ClientCertificate => "client certificate",
    }
}

fn key_format(format: KeyFormat) -> &'static str {
    match format {
        KeyFormat::Pkcs8 => "PKCS#8",
        KeyFormat::EncryptedPkcs8 => "encrypted PKCS#8",
        KeyFormat::Pkcs1 => "PKCS#1",
        KeyFormat::Sec1 => "SEC1",
    }
}

/// A finding in words; `base` turns file offsets into flash addresses.
fn explain(finding: &Finding, base: usize) -> String {
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
        Finding::PinnedLeaf { subject, self_issued: true } => format!(
            "{subject} is a server's own certificate, not a CA: the device accepts only that exact certificate \
             (mbedTLS trusts a self-signed end-entity certificate it holds a copy of), so updates stop when the \
             server's certificate is renewed or replaced"
        ),
        Finding::PinnedLeaf { subject, self_issued: false } => format!(
            "{subject} is a server's certificate, not a CA, and not self-signed: mbedTLS trusts a non-CA \
             certificate only as an exact copy of a self-signed one, so it verifies no server"
        ),
        Finding::ClientCertificate { subject, not_after, expired } => {
            let expiry = if *expired {
                format!("; it expired {}: servers that check client certificates refuse the device", date(*not_after))
            } else {
                String::new()
            };
            format!("{subject} is the device's own certificate for mutual TLS, not something it trusts{expiry}")
        }
        Finding::PrivateKey { offset, key: kind, encrypted, certificate } => {
            let what = match (encrypted, kind) {
                (true, _) => "an encrypted private key".to_owned(),
                (false, Some(kind)) => format!("a private key ({})", key(kind)),
                (false, None) => "a private key".to_owned(),
            };
            let whose = certificate.as_ref().map(|c| format!(", the key of {c}")).unwrap_or_default();
            format!(
                "{what} at 0x{:x}{whose}: whoever has this image has the key (and, encrypted, most likely its \
                 password too)",
                offset + base
            )
        }
        Finding::NoTrustMaterial => {
            "no trusted certificate or bundle found: the image cannot verify a server (or keeps its roots elsewhere)"
                .into()
        }
        Finding::NoAppDescriptor { offset } => {
            format!("the app at 0x{:x} has no app descriptor: built with ESP-IDF v3.2 or earlier", offset + base)
        }
        Finding::RamOnlyImage { offset } => format!(
            "the image at 0x{:x} maps nothing from flash: a bootloader or a RAM-loaded program, not an app an OTA \
             update installs",
            offset + base
        ),
        Finding::Corrupt { offset } => {
            format!("the image at 0x{:x} fails its checksum or hash: the bootloader refuses it", offset + base)
        }
        Finding::LabAnchor { subject } => format!(
            "LAB ROOT: {subject} is one of otarig's lab authorities. This is a transplanted or lab-built image; \
             never ship it"
        ),
        Finding::LabBundleRoots { offset, subjects, total } => {
            let offset = offset + base;
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
