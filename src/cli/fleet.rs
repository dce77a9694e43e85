//! `otarig fleet list|build`: the firmware manifests, and images for those without a real build.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use otarig::firmware::{Fleet, Trust, build};
use otarig::pki::LabPki;

use super::exit;

pub const AFTER_HELP: &str = "\
Manifests are firmware-images/*.toml; bundles/ lists what each ESP-IDF release's certificate
bundle stands for in the lab.

Examples:
  otarig fleet list
  otarig fleet build                       every manifest without a real .bin
  otarig fleet build dst-x3-idf3.2 --out /tmp/fw
  otarig inspect firmware-images/build/dst-x3-idf3.2.bin";

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// The manifests' directory.
    #[arg(long, global = true, default_value = "firmware-images", value_name = "DIR")]
    dir: PathBuf,
    /// The lab PKI.
    #[arg(long, global = true, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// List the fleet and the update release(s).
    List,
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
    match fleet(args) {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn fleet(args: &FleetArgs) -> Result<(), String> {
    let pki = LabPki::open(&args.pki).map_err(|e| e.to_string())?;
    let fleet = Fleet::load(&args.dir, &pki).map_err(|e| e.to_string())?;
    match &args.command {
        FleetCommand::List => {
            for firmware in &fleet.manifests {
                let trust = match &firmware.trust {
                    Trust::Pem(names) => format!("PEM {}", names.join(", ")),
                    Trust::Bundle(id) => format!("bundle {id}"),
                    Trust::Embedded => "embedded in the image".into(),
                };
                let role = if firmware.update { "  (the update)" } else { "" };
                let checks = if firmware.time_check { ", checks dates" } else { "" };
                let rollback = if firmware.rollback { ", rollback" } else { "" };
                println!(
                    "{:<28} {:<14} ESP-IDF {:<8} trusts {trust}{checks}{rollback}{role}",
                    firmware.id,
                    firmware.version,
                    firmware.idf.to_string()
                );
            }
            Ok(())
        }
        FleetCommand::Build { ids, out } => {
            let out = out.clone().unwrap_or_else(|| args.dir.join("build"));
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
    }
}
