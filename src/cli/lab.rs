//! `otarig lab check`: is this lab host ready for a run? One line per check. `otarig lab nvs`:
//! the NVS partition a `[prepare]` CSV becomes, or what a partition dump holds.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use otarig::firmware::Fleet;
use otarig::lab::check::{CheckCause, CheckLine, CheckStatus, OtaHost, check_lab};
use otarig::lab::{self, DeviceSpec, LabConfig, LabErrorKind, LabLoadError, PowerSpecError, nvs};
use otarig::pki::LabPki;

use super::exit;

pub const AFTER_HELP: &str = "\
The lab config is otarig.toml (--config PATH; default ./otarig.toml). `lab check` verifies,
before a nightly run: the config reads; every board's port resolves and its ROM loader answers
(the board is reset into download mode and synced with espflash, then reset into its app) with
the configured chip; twins start and answer; the OTA host of every firmware resolves to this
host through [dns.overrides]; the update server's listen address can be bound; with [dns] listen
and [sntp] listen, otarig's DNS and SNTP responders start there and answer.

Exit status: 0 every check OK (WARN lines allowed), 1 a check failed, 2 the lab config is
missing or in error (file:line:column).

Examples:
  otarig lab check
  otarig lab check --config lab/otarig.toml --fleet firmware-images";

#[derive(Debug, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Check the lab config and this host: boards answer, names resolve, addresses bind.
    #[command(after_help = AFTER_HELP)]
    Check(CheckArgs),
    /// Show the NVS partition a CSV becomes (as `[prepare]` writes it), or what a dump holds.
    #[command(after_help = NVS_AFTER_HELP)]
    Nvs(NvsArgs),
}

pub const NVS_AFTER_HELP: &str = "\
FILE is a CSV in ESP-IDF's nvs_partition_gen format (key,type,encoding,value; a namespace row
before its keys; `file` rows relative to the CSV), or an NVS partition's bytes (a dump read
from a board, say). Standard output gets the partition's entries as such a CSV, blobs in
base64: for a CSV, read back from the partition otarig writes for it, byte for byte what
ESP-IDF's generator writes. --out writes that partition.

Exit status: 0 done, 2 the file cannot be read or is no CSV or partition (the reason on
standard error).

Examples:
  otarig lab nvs lab/wifi.csv                      the entries a board will hold
  otarig lab nvs lab/wifi.csv --size 0x6000 --out nvs.bin
  esptool read-flash 0x9000 0x4000 dump.bin && otarig lab nvs dump.bin";

#[derive(Debug, Args)]
struct NvsArgs {
    /// A CSV in nvs_partition_gen format, or an NVS partition's bytes.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The partition's size for a CSV: a multiple of 0x1000, at least 0x3000.
    #[arg(long, default_value = "0x4000", value_parser = parse_size, value_name = "BYTES")]
    size: u32,
    /// Write the partition made from the CSV here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_size(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a size in bytes (0x4000 or 16384)"))
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The lab config (default: ./otarig.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The fleet's manifests, whose OTA hosts must resolve to this host.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
    /// The scenarios directory (its pki/ folder holds the lab authorities the fleet uses).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenarios: PathBuf,
}

pub fn run(args: &LabArgs) -> u8 {
    match &args.command {
        LabCommand::Check(args) => check(args),
        LabCommand::Nvs(args) => nvs(args),
    }
}

fn nvs(args: &NvsArgs) -> u8 {
    let shown = otarig::input::read_image(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))
        .and_then(|bytes| {
            let partition = if nvs::is_partition(&bytes) {
                if args.out.is_some() {
                    return Err(format!("{} is a partition already: --out takes a CSV", args.file.display()));
                }
                bytes
            } else {
                nvs::generate(&args.file, args.size).map_err(|e| e.to_string())?
            };
            let csv = nvs::entries_csv(&args.file, &partition).map_err(|e| e.to_string())?;
            if let Some(out) = &args.out {
                std::fs::write(out, &partition).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            }
            Ok(csv)
        });
    match shown {
        Ok(csv) => {
            print!("{csv}");
            exit::OK
        }
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn check(args: &CheckArgs) -> u8 {
    let Some(path) = lab::config_path(args.config.as_deref()) else {
        eprintln!("error: no lab config: give --config PATH or write ./otarig.toml (otarig.example.toml is a start)");
        return exit::USAGE;
    };
    let lab = match lab::load(&path) {
        Ok(lab) => lab,
        Err(err) => {
            report_config(&err);
            return exit::USAGE;
        }
    };
    let mut counts = [0usize; 3];
    let mut print = |line: CheckLine| {
        let tag = match line.status {
            CheckStatus::Ok => "OK  ",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        };
        counts[line.status as usize] += 1;
        let hint = match line.cause {
            Some(CheckCause::PortNotFound) => " (`otarig boards` lists them)",
            Some(CheckCause::PortAmbiguous) => ": name one by `port` or `usb_serial`",
            None => "",
        };
        println!("{tag}  {}: {}{hint}", line.subject, line.detail);
    };
    print(CheckLine { subject: "config".into(), status: CheckStatus::Ok, detail: describe(&path, &lab), cause: None });
    let hosts = fleet_hosts(&args.fleet, &args.scenarios, &lab, &mut print);
    check_lab(&lab, &hosts, &mut print);
    let [ok, warn, fail] = counts;
    println!("{} checks: {ok} ok, {warn} warn, {fail} fail", ok + warn + fail);
    if fail > 0 { exit::FAIL } else { exit::OK }
}

/// A lab config that cannot be used, with what to do about it where that is known.
pub(super) fn report_config(err: &LabLoadError) {
    eprintln!("error: {err}");
    if let Some(hint) = config_hint(err) {
        eprintln!("hint: {hint}");
    }
}

/// What to do about a lab config error, where the command line knows.
pub(super) fn config_hint(err: &LabLoadError) -> Option<&'static str> {
    let LabLoadError::Config(err) = err else { return None };
    match &err.kind {
        LabErrorKind::NoPort { .. } => {
            Some("give `port`, `usb_serial` or `vid_pid` (`otarig boards` prints each port's)")
        }
        LabErrorKind::PortConflict { .. } => Some("`port` names the port alone: leave out `usb_serial` and `vid_pid`"),
        LabErrorKind::TwinsTwice => Some("name the twins one way: `twins = N` or `[[twin]]` tables"),
        LabErrorKind::NoDevices => Some("add a `[[board]]`, a `[[twin]]` or `twins = N`"),
        LabErrorKind::ProbeFeature => Some("rebuild otarig with --features probe"),
        LabErrorKind::Power { source: PowerSpecError::NoCommands, .. } => {
            Some("give `command` (with `{action}`), or both `off` and `on`")
        }
        _ => None,
    }
}

/// `otarig.toml: 2 boards, 1 twin`.
fn describe(path: &Path, lab: &LabConfig) -> String {
    let boards = lab.boards().count();
    let twins = lab.devices.iter().filter(|d| matches!(d, DeviceSpec::Twin(_))).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}: {}, {}", path.display(), plural(boards, "board"), plural(twins, "twin"))
}

/// The OTA hosts of the fleet; a fleet that cannot be read is a failed check (boards only
/// need it: twins get their network from the rig).
fn fleet_hosts(dir: &Path, scenarios: &Path, lab: &LabConfig, print: &mut dyn FnMut(CheckLine)) -> Vec<OtaHost> {
    if lab.boards().next().is_none() {
        return Vec::new();
    }
    let fail = |detail: String| CheckLine { subject: "fleet".into(), status: CheckStatus::Fail, detail, cause: None };
    let pki = match LabPki::open(&scenarios.join("pki")) {
        Ok(pki) => pki,
        Err(err) => {
            print(fail(format!("the lab PKI: {err}")));
            return Vec::new();
        }
    };
    match Fleet::load(dir, &pki) {
        Ok(fleet) if fleet.manifests.is_empty() => {
            let detail = format!("no firmware manifests in {}: OTA hosts not checked", dir.display());
            print(CheckLine { subject: "fleet".into(), status: CheckStatus::Warn, detail, cause: None });
            Vec::new()
        }
        Ok(fleet) => {
            fleet.manifests.iter().filter_map(|m| Some(OtaHost::from_url(&m.id, m.ota_url.as_ref()?))).collect()
        }
        Err(err) => {
            print(fail(err.to_string()));
            Vec::new()
        }
    }
}
