//! `otarig rescue`: for each firmware, the chains a server its owner controls can still send so
//! that it updates, how long each keeps working, the chain file for the web server, and each
//! confirmed on a twin; or why none can.

use std::path::{Path, PathBuf};

use clap::Args;
use otarig::catalogue::Catalogue;
use otarig::firmware::Fleet;
use otarig::firmware::profile::{ClockSource, Source};
use otarig::pki::LabPki;
use otarig::rescue::{ConfirmOptions, FirmwareRescue, LabMap, RescueContext, TwinCheck, TwinFirmware};
use time::OffsetDateTime;

mod json;
mod text;

use super::predict::{emulation_note, firmware_devices, idf_option, trust_device};
use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
For each firmware: the chains a server its owner controls can send so that it still updates. The
leaf comes from a CA an owner can get one from on --at (the issuing intermediates of the public
CAs in data/public-cas/, or the owner's own CA where the firmware trusts a private root), then
real certificates exactly as their CAs published them, up to what the firmware trusts. Each
chain is judged by the device's own decision (predict's: its release's mbedTLS profile, date
checks only when it checks dates) and run on a twin against a server sending the lab's
look-alike chain. Exit status: 0 when every firmware has a rescue, 1 when one cannot be rescued,
2 for usage errors, unreadable files and an --out in use, 3 when the rig could not run the twins.

Examples:
  otarig rescue --firmware dst-x3-idf3.2
  otarig rescue --firmware all --at 2026-11-25 --chain-file chains/
  otarig rescue --firmware app.bin --no-twin --format json
  otarig rescue --trust isrg-root-x1.pem --idf v4.4 --time-check";

#[derive(Debug, Args)]
pub struct RescueArgs {
    /// A firmware: a manifest id, `all` (every fleet member), or an image file (app or merged
    /// flash). Repeatable.
    #[arg(long, value_name = "ID|IMAGE", required_unless_present = "trust", conflicts_with = "trust")]
    firmware: Vec<String>,
    /// Trusted certificates instead of a firmware: PEM files (several certificates each
    /// allowed), as one trust set in an ESP-IDF v4.4 client (see --idf).
    #[arg(long, value_name = "PEM", num_args = 1..)]
    trust: Vec<PathBuf>,
    /// The host name the owner's leaf is for (default: the host of the firmware's OTA URL,
    /// else ota.example.com).
    #[arg(long, value_name = "HOST")]
    hostname: Option<String>,
    /// The ESP-IDF version to judge as (default: the firmware's, v4.4 with --trust).
    #[arg(long, value_name = "VERSION")]
    idf: Option<String>,
    /// Check certificate dates against --at, as a build with MBEDTLS_HAVE_TIME_DATE and SNTP.
    #[arg(long, conflicts_with = "no_time_check")]
    time_check: bool,
    /// Check no certificate dates.
    #[arg(long)]
    no_time_check: bool,
    /// The day the owner gets the leaf and the device meets the chain (YYYY-MM-DD or RFC 3339;
    /// default: now).
    #[arg(long, value_name = "DATE")]
    at: Option<String>,
    /// Write each answer's chain file (the certificates after the leaf, PEM, as published) into
    /// DIR, one per firmware and answer.
    #[arg(long, value_name = "DIR")]
    chain_file: Option<PathBuf>,
    /// Do not confirm the answers on twins.
    #[arg(long)]
    no_twin: bool,
    /// Twins side by side for the confirmations (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    twins: Option<u32>,
    /// The twins' run directory: results.jsonl, transcripts/ and the cells' scenarios
    /// (default: target/otarig/rescue/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// The fleet's manifests.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
    /// The lab PKI (look-alikes, the owner's own CA).
    #[arg(long, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
    /// The catalogue of real public CA certificates.
    #[arg(long, default_value = "data/public-cas", value_name = "DIR")]
    catalogue: PathBuf,
}

pub fn run(args: &RescueArgs) -> u8 {
    match rescue_command(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn rescue_command(args: &RescueArgs) -> Result<u8, String> {
    let idf = args.idf.as_deref().map(idf_option).transpose()?;
    let at = match &args.at {
        None => OffsetDateTime::now_utc(),
        Some(text) => otarig::pki::spec::parse_time(text).map_err(|message| format!("--at: {message}"))?,
    }
    .unix_timestamp();
    let catalogue = Catalogue::open(&args.catalogue)
        .map_err(|e| format!("the catalogue of public CAs ({}): {e}", args.catalogue.display()))?;
    let pki = LabPki::open(&args.pki).map_err(|e| format!("the lab PKI ({}): {e}", args.pki.display()))?;
    let lab = LabMap::new(&pki);
    let mut devices = if args.trust.is_empty() {
        firmware_devices(&args.firmware, &args.fleet, &args.pki)?
    } else {
        vec![trust_device(&args.trust)?]
    };
    let overridden = idf.is_some() || args.time_check || args.no_time_check;
    for device in &mut devices {
        if let Some(idf) = &idf {
            device.idf = Some(idf.clone());
            device.sources.insert("idf", Source::Given);
        }
        if args.time_check {
            device.time_check = true;
            device.clock = ClockSource::Sntp;
            device.sources.insert("time_check", Source::Given);
        }
        if args.no_time_check {
            device.time_check = false;
            device.sources.insert("time_check", Source::Given);
        }
        if let Some(host) = &args.hostname {
            device.hostname = Some(host.clone());
        }
        let name = device.firmware.as_deref().unwrap_or("trust set");
        for guess in &device.guesses {
            eprintln!("warning: {name}: {guess}");
        }
    }
    if let Some(idf) = &idf {
        eprintln!("{}", emulation_note(&idf.value));
    }
    let context = RescueContext { catalogue: &catalogue, pki: &pki, lab: &lab };
    let mut rescues = Vec::with_capacity(devices.len());
    for device in &devices {
        let rescue = otarig::rescue::rescue(device, context, at).map_err(|e| match e {
            otarig::rescue::RescueError::UnknownIdf { .. } => {
                format!("{e}; give --idf VERSION, or set `idf` in a manifest that names the build")
            }
            _ => e.to_string(),
        })?;
        rescues.push(rescue);
    }

    let mut twin_dir = None;
    if !args.no_twin && rescues.iter().any(|r| !r.answers.is_empty()) {
        let fleet = Fleet::load(&args.fleet, &pki).ok();
        let how: Vec<TwinFirmware> =
            rescues.iter().map(|r| twin_firmware(r, args, overridden, fleet.as_ref())).collect();
        let out = args.out.clone().unwrap_or_else(default_out);
        match fleet {
            Some(fleet) => {
                let options = ConfirmOptions {
                    out: out.clone(),
                    twins: args.twins.map_or_else(otarig::run::default_twins, |n| n as usize),
                    fleet,
                    pki_dir: args.pki.clone(),
                };
                if let Err(err) = otarig::rescue::confirm(&mut rescues, &how, &options) {
                    eprintln!("error: the twin cells: {err}");
                    return Ok(confirm_error_code(&err));
                }
                twin_dir = Some(out);
            }
            None => {
                let why = format!("no fleet in {} to take the update release from", args.fleet.display());
                for answer in rescues.iter_mut().flat_map(|r| r.answers.iter_mut()) {
                    answer.twin = TwinCheck::NotPossible(why.clone());
                }
            }
        }
    }

    let files = match &args.chain_file {
        Some(dir) => write_chain_files(dir, &rescues)?,
        None => Vec::new(),
    };
    match args.format {
        OutputFormat::Json => {
            let value = json::to_json(&rescues, &catalogue, &files);
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        OutputFormat::Text => print!("{}", text::to_text(&rescues, &catalogue, &files, twin_dir.as_deref())),
    }
    let unrescued = rescues.iter().any(|r| !rescued(r));
    let rig_failed = rescues.iter().flat_map(|r| &r.answers).any(|a| matches!(a.twin, TwinCheck::RigFailed(_)));
    Ok(if unrescued {
        exit::FAIL
    } else if rig_failed {
        exit::INFRA
    } else {
        exit::OK
    })
}

/// The exit code of twin cells that could not run at all: 2 for a run directory that cannot be
/// written, another run holds or that holds results (give another `--out`), else 3 (the rig).
fn confirm_error_code(err: &otarig::rescue::ConfirmError) -> u8 {
    use otarig::rescue::ConfirmError;
    use otarig::run::RunError;
    match err {
        ConfirmError::Run(RunError::Locked(_) | RunError::HoldsResults { .. } | RunError::Output { .. })
        | ConfirmError::Pki(_)
        | ConfirmError::Write { .. } => {
            eprintln!("hint: give another --out, or --no-twin");
            exit::USAGE
        }
        _ => exit::INFRA,
    }
}

/// How a firmware runs on a twin.
fn twin_firmware(rescue: &FirmwareRescue, args: &RescueArgs, overridden: bool, fleet: Option<&Fleet>) -> TwinFirmware {
    let Some(id) = rescue.device.firmware.as_deref() else { return TwinFirmware::TrustSet };
    if fleet.is_some_and(|fleet| fleet.get(id).is_some()) {
        if overridden {
            return TwinFirmware::Not(
                "--idf, --time-check and --no-time-check change the firmware, and the twin runs it as its manifest says"
                    .into(),
            );
        }
        if args.hostname.is_some() {
            return TwinFirmware::Not("--hostname changes the host the firmware connects to".into());
        }
        return TwinFirmware::Fleet(id.to_owned());
    }
    let path = Path::new(id);
    if path.is_file() {
        if overridden {
            return TwinFirmware::Not(
                "--idf, --time-check and --no-time-check change the build the twin would run".into(),
            );
        }
        return TwinFirmware::Image(path.to_owned());
    }
    TwinFirmware::Not("the firmware is neither a fleet member nor an image file".into())
}

/// A rescue stands when an answer was not contradicted by its twin.
fn rescued(rescue: &FirmwareRescue) -> bool {
    rescue.answers.iter().any(|a| !matches!(a.twin, TwinCheck::Contradicted { .. }))
}

/// `target/otarig/rescue/<UTC time>/`.
fn default_out() -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    PathBuf::from("target/otarig/rescue").join(stamp)
}

/// A file name from a firmware id (an image's path keeps its file name).
fn file_stem_of(firmware: &str) -> String {
    let name =
        Path::new(firmware).file_name().map_or_else(|| firmware.to_owned(), |n| n.to_string_lossy().into_owned());
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

/// The chain file of each answer: `DIR/<firmware>.<n>.<names>.pem`; (firmware index, answer
/// index, path) for each written.
fn write_chain_files(dir: &Path, rescues: &[FirmwareRescue]) -> Result<Vec<(usize, usize, PathBuf)>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (f, rescue) in rescues.iter().enumerate() {
        let firmware = file_stem_of(rescue.device.firmware.as_deref().unwrap_or("trust-set"));
        for (a, answer) in rescue.answers.iter().enumerate() {
            if answer.chain.is_empty() {
                continue;
            }
            let names: Vec<&str> = answer.chain.iter().map(|c| c.name.as_str()).collect();
            let path = dir.join(format!("{firmware}.{}.{}.pem", a + 1, names.join("+")));
            let text: String = answer.chain.iter().map(|c| c.pem.as_str()).collect();
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push((f, a, path));
        }
    }
    Ok(written)
}
