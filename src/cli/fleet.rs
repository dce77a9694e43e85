//! `otarig fleet list|add|build`: the firmware manifests, a member added from a build, and images
//! for those without a real build.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use otarig::device_tls::DEFAULT_IN_CONTENT_LEN;
use otarig::firmware::add::{BuildFiles, default_id, dump_parts, find_build, manifest_text};
use otarig::firmware::{FirmwareManifest, Fleet, Trust, build};
use otarig::pki::LabPki;
use serde_json::json;

use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
Manifests are firmware-images/*.toml; bundles/ lists what each ESP-IDF release's certificate
bundle stands for in the lab. A manifest that names a real build (`image = ...`) states only
what the build cannot say; `fleet list` shows where each value came from.

Examples:
  otarig fleet list
  otarig fleet list --format json
  otarig fleet add ~/product/build                 an idf.py build directory
  otarig fleet add fw-1.4.2.bin --id product-1.4.2  an app image
  otarig fleet add dump.bin --id field-unit-7       a flash dump (esptool read-flash)
  otarig fleet build                                every manifest without a real .bin
  otarig inspect firmware-images/build/dst-x3-idf3.2.bin";

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// The manifests' directory.
    #[arg(long, visible_alias = "fleet", global = true, default_value = "firmware-images", value_name = "DIR")]
    dir: PathBuf,
    /// The lab PKI.
    #[arg(long, global = true, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// List the fleet and the update release(s), each value with where it came from.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Add a build: write DIR/ID.toml naming it, with what it says and what to set.
    Add {
        /// An app image, an idf.py build directory, or a flash dump.
        path: PathBuf,
        /// The firmware's id (default: from the file name).
        #[arg(long)]
        id: Option<String>,
        /// Replace a manifest that exists.
        #[arg(long)]
        force: bool,
    },
    /// Build app and bootloader images (ID.bin, ID.bootloader.bin).
    Build {
        /// Which firmware (default: all without a real image).
        ids: Vec<String>,
        /// Where to write (default: DIR/build).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

pub fn run(args: &FleetArgs) -> u8 {
    let result = match &args.command {
        FleetCommand::Add { path, id, force } => add(&args.dir, path, id.as_deref(), *force),
        FleetCommand::List { format } => list(args, *format),
        FleetCommand::Build { ids, out } => build_images(args, ids, out.as_deref()),
    };
    match result {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn load(args: &FleetArgs) -> Result<(LabPki, Fleet), String> {
    let pki = LabPki::open(&args.pki).map_err(|e| e.to_string())?;
    let fleet = Fleet::load(&args.dir, &pki).map_err(|e| e.to_string())?;
    Ok((pki, fleet))
}

fn list(args: &FleetArgs, format: OutputFormat) -> Result<(), String> {
    let (_, fleet) = load(args)?;
    for firmware in &fleet.manifests {
        for guess in &firmware.guesses {
            eprintln!("warning: {}: {guess}", firmware.id);
        }
    }
    match format {
        OutputFormat::Json => {
            let members: Vec<_> = fleet.manifests.iter().map(member_json).collect();
            println!("{}", serde_json::to_string_pretty(&members).unwrap_or_default());
        }
        OutputFormat::Text => print!("{}", member_table(&fleet)),
    }
    Ok(())
}

fn trust_text(firmware: &FirmwareManifest) -> String {
    match &firmware.trust {
        Trust::Pem(names) => format!("PEM {}", names.join(", ")),
        Trust::Bundle(id) => format!("bundle {id}"),
        Trust::Embedded => "embedded in the image".into(),
    }
}

/// The cells of a member's row: id, version, ESP-IDF (with its source), chip, client, OTA host,
/// what it trusts and how it checks.
fn member_row(firmware: &FirmwareManifest) -> Vec<String> {
    let source = |key: &str| firmware.sources.get(key).map_or("", |s| s.as_str());
    let host = firmware.ota_url.as_ref().map_or("(none)".to_owned(), |url| url.host.clone());
    let mut flags = Vec::new();
    if firmware.time_check {
        flags.push("checks dates".to_owned());
    }
    if firmware.rollback {
        flags.push("rollback".to_owned());
    }
    if firmware.update {
        flags.push("the update".to_owned());
    }
    if !firmware.tls.curves_off.is_empty() {
        flags.push(format!("no {} ({})", firmware.tls.curves_off.names(), source("curves_off")));
    }
    if firmware.tls.in_content_len != DEFAULT_IN_CONTENT_LEN {
        flags.push(format!("TLS input {} B ({})", firmware.tls.in_content_len, source("tls_in_content_len")));
    }
    if let Some(heap) = firmware.tls.heap {
        flags.push(format!("TLS heap {heap} B ({})", source("tls_heap")));
    }
    vec![
        firmware.id.clone(),
        firmware.version.clone(),
        format!("{} ({})", firmware.idf, source("idf")),
        firmware.chip.config_label(),
        firmware.client.name().to_owned(),
        host,
        trust_text(firmware),
        flags.join(", "),
    ]
}

/// The members as an aligned table.
fn member_table(fleet: &Fleet) -> String {
    let header = ["firmware", "version", "ESP-IDF (source)", "chip", "client", "OTA host", "trusts", ""];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    rows.extend(fleet.manifests.iter().map(member_row));
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            cells.join("  ").trim_end().to_owned() + "\n"
        })
        .collect()
}

fn member_json(firmware: &FirmwareManifest) -> serde_json::Value {
    json!({
        "id": firmware.id,
        "version": firmware.version,
        "idf": firmware.idf.text,
        "chip": firmware.chip,
        "ota_url": firmware.ota_url.as_ref().map(otarig::firmware::OtaUrl::as_str),
        "client": firmware.client,
        "log_level": firmware.log_level,
        "time_check": firmware.time_check,
        "rollback": firmware.rollback,
        "curves_off": firmware.tls.curves_off,
        "tls_in_content_len": firmware.tls.in_content_len,
        "tls_heap": firmware.tls.heap,
        "trust": trust_text(firmware),
        "update": firmware.update,
        "image": firmware.image,
        "sources": firmware.sources.iter().map(|(k, s)| (k.to_string(), json!(s.as_str()))).collect::<serde_json::Map<_, _>>(),
        "guesses": firmware.guesses,
    })
}

fn add(dir: &Path, path: &Path, id: Option<&str>, force: bool) -> Result<(), String> {
    let mut files = find_build(path).map_err(|e| e.to_string())?;
    let origin = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let bytes =
        otarig::input::read_image(&files.app).map_err(|e| format!("cannot read {}: {e}", files.app.display()))?;
    let id = id.map_or_else(|| default_id(&files), str::to_owned);
    let manifest = dir.join(format!("{id}.toml"));
    if manifest.exists() && !force {
        return Err(format!("{} exists (give --force to replace it, or --id another id)", manifest.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let app = match dump_parts(&files.app, &bytes).map_err(|e| e.to_string())? {
        Some(parts) => {
            files = write_dump_parts(dir, &id, &parts)?;
            parts.app
        }
        None => {
            let (kept, copies) = otarig::firmware::add::keep_inside(dir, &id, files)
                .map_err(|e| format!("cannot copy the build into {}: {e}", dir.join(&id).display()))?;
            for copy in copies {
                eprintln!("copied into the fleet (its files live beside its manifests): {}", copy.display());
            }
            files = kept;
            bytes
        }
    };
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let files = BuildFiles {
        app: absolute(&files.app),
        bootloader: files.bootloader.as_deref().map(absolute),
        partition_table: files.partition_table.as_deref().map(absolute),
        sdkconfig: files.sdkconfig.as_deref().map(absolute),
    };
    let text = manifest_text(&files, &origin, &app, &absolute(dir));
    std::fs::write(&manifest, text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    println!("{}", manifest.display());
    Ok(())
}

/// A dump's parts as files beside the manifests (`DIR/ID/app.bin`, ...), for it to name.
fn write_dump_parts(dir: &Path, id: &str, parts: &otarig::firmware::add::DumpParts) -> Result<BuildFiles, String> {
    let folder = dir.join(id);
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, String> {
        let path = folder.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    Ok(BuildFiles {
        app: write("app.bin", &parts.app)?,
        bootloader: parts.bootloader.as_deref().map(|b| write("bootloader.bin", b)).transpose()?,
        partition_table: parts.partition_table.as_deref().map(|t| write("partition-table.bin", t)).transpose()?,
        sdkconfig: None,
    })
}

fn build_images(args: &FleetArgs, ids: &[String], out: Option<&Path>) -> Result<(), String> {
    let (pki, fleet) = load(args)?;
    let out = out.map_or_else(|| args.dir.join("build"), Path::to_owned);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for id in ids {
        if fleet.get(id).is_none() {
            return Err(format!("no manifest `{id}` in {}", args.dir.display()));
        }
    }
    for firmware in
        fleet.manifests.iter().filter(|m| if ids.is_empty() { m.image.is_none() } else { ids.contains(&m.id) })
    {
        let built = build::build(firmware, &fleet, &pki).map_err(|e| e.to_string())?;
        let app = out.join(format!("{}.bin", firmware.id));
        let bootloader = out.join(format!("{}.bootloader.bin", firmware.id));
        std::fs::write(&app, &built.app).map_err(|e| format!("{}: {e}", app.display()))?;
        std::fs::write(&bootloader, &built.bootloader).map_err(|e| format!("{}: {e}", bootloader.display()))?;
        println!("{} ({} bytes), {}", app.display(), built.app.len(), bootloader.display());
    }
    Ok(())
}
