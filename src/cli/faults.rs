//! `otarig faults`: fault campaigns on twins or the lab's devices: power cuts during the update,
//! a serial port vanishing mid-cell, the update server killed or stalled mid-download. Progress
//! on standard error, the report on standard output (text or JSON), the exit code from what
//! the campaign found.

mod power;
mod scratch;
mod server;
mod vanish;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use otarig::faults::{DEFAULT_SEED, FaultsError};
use otarig::lab::{self, DeviceSpec, LabConfig};
use otarig::run::{self, LabDirs, RunOptions, WatchLimits};

use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
A campaign runs one firmware's update many times, each time with a fault at a point drawn from
a seed, through the runner of `otarig run` (the same twins, boards, servers and watch), and
reads each cell back. The seed (default 1) is printed; the same seed gives the same points.

Campaigns:
  power-cut     the power cut at byte offsets of the image write and in the otadata write;
                the device must boot the old or the new firmware, then end on the new one
  port-vanish   a board's serial port vanishing mid-cell (a USB hub dropping it); the run
                must end that cell as an error, let the board leave and go on with the other
                boards, and keep every result
  server        the update server killed (connections reset, listener closed) or stalled
                mid-download; the device must fail as its ESP-IDF client does, boot its old
                firmware, and update once the server is back

Exit status: 0 every point held, 1 a point did not (the report names it), 2 usage or lab files
in error, 3 the rig could not run a point and none failed, 130 stopped by Ctrl-C.

Examples:
  otarig faults power-cut --firmware isrg-x1-idf3.2 --scenario le-short-chain
  otarig faults power-cut --firmware bundle-idf5.2 --scenario le-short-chain --cuts 20 --seed 7
  otarig faults power-cut --firmware isrg-x1-idf3.2 --scenario le-short-chain --only image:4096 --out cut
  otarig faults port-vanish --firmware isrg-x1-idf3.2 --scenario le-short-chain --scenario gts-chain
  otarig faults server --firmware bundle-idf5.2 --scenario le-short-chain --format json";

#[derive(Debug, Args)]
pub struct FaultsArgs {
    #[command(subcommand)]
    command: FaultsCommand,
}

#[derive(Debug, Subcommand)]
enum FaultsCommand {
    /// Power cuts at byte offsets of the image write and in the otadata write.
    #[command(after_help = power::AFTER_HELP)]
    PowerCut(power::PowerCutArgs),
    /// A board's serial port vanishing mid-cell: the run must go on and keep every result.
    #[command(after_help = vanish::AFTER_HELP)]
    PortVanish(vanish::PortVanishArgs),
    /// The update server killed or stalled mid-download, then back.
    #[command(after_help = server::AFTER_HELP)]
    Server(server::ServerArgs),
}

/// What every campaign takes: where it runs, how long a cell may take, the seed, the output.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The seed the fault points are drawn from.
    #[arg(long, default_value_t = DEFAULT_SEED, value_name = "S")]
    seed: u64,
    /// The lab config: its devices run the cells (default: ./otarig.toml when present; without
    /// one, twins).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Twins side by side (default: one per CPU); with a lab config, this many twins instead of
    /// its own.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=64))]
    twins: Option<u64>,
    /// Seconds from the end of flashing to a decided update on a twin (boards: the lab
    /// config's [timeouts]).
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
    /// Times a cell the rig could not run is tried again (default: the lab config's retries,
    /// else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=10))]
    retries: Option<u64>,
    /// Output format of the report on standard output.
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// Keep the transcripts of the points that did not hold in DIR/transcripts/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The scenarios directory (its pki/ folder holds the lab authorities).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenarios: PathBuf,
    /// The fleet's manifests.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
}

impl CampaignArgs {
    fn dirs(&self) -> LabDirs {
        LabDirs { scenarios: self.scenarios.clone(), fleet: self.fleet.clone() }
    }

    /// The run's options with `out` as its directory; the exit code when the lab config cannot
    /// be used.
    fn options(&self, out: PathBuf) -> Result<RunOptions, u8> {
        let lab = self.lab().map_err(|message| {
            eprintln!("error: {message}");
            exit::USAGE
        })?;
        let mut options = RunOptions::new(out);
        options.limits = WatchLimits::new(Duration::from_secs(self.timeout));
        options.twins = self.twins.map_or_else(run::default_twins, |n| n as usize).max(1);
        options.retries = match (self.retries, &lab) {
            (Some(n), _) => n as usize,
            (None, Some(lab)) => lab.retries as usize,
            (None, None) => 1,
        };
        options.lab = lab;
        Ok(options)
    }

    /// The lab config's devices (with `--twins N` in place of its twins), or `None` for twins.
    fn lab(&self) -> Result<Option<LabConfig>, String> {
        let Some(path) = lab::config_path(self.config.as_deref()) else { return Ok(None) };
        let mut lab = lab::load(&path).map_err(|err| err.to_string())?;
        if let Some(n) = self.twins {
            let boards = lab.devices.into_iter().filter(|d| matches!(d, DeviceSpec::Board(_)));
            lab.devices = boards.chain(LabConfig::twins_only(n as usize).devices).collect();
        }
        if lab.devices.is_empty() {
            return Err(format!("no device: {} names none", path.display()));
        }
        Ok(Some(lab))
    }

    /// Where the cells run, for the header: `2 twins`, `the lab's 3 devices`.
    fn devices(options: &RunOptions) -> String {
        match &options.lab {
            None => format!("{} twin{}", options.twins, if options.twins == 1 { "" } else { "s" }),
            Some(lab) => {
                format!("the lab's {} device{}", lab.devices.len(), if lab.devices.len() == 1 { "" } else { "s" })
            }
        }
    }
}

pub fn run(args: &FaultsArgs) -> u8 {
    match &args.command {
        FaultsCommand::PowerCut(args) => power::run(args),
        FaultsCommand::PortVanish(args) => vanish::run(args),
        FaultsCommand::Server(args) => server::run(args),
    }
}

/// The exit code of a campaign that could not run, with its message and a hint.
fn campaign_error(err: &FaultsError) -> u8 {
    eprintln!("error: {err}");
    match err {
        FaultsError::Plan(plan) => {
            if matches!(plan, run::PlanError::UnknownFirmware { .. }) {
                eprintln!("hint: `otarig fleet list` shows the fleet");
            }
            exit::USAGE
        }
        FaultsError::NotAnUpdate { .. } => {
            eprintln!("hint: a campaign measures an update that succeeds: name a scenario that expects `updated`");
            exit::USAGE
        }
        FaultsError::HasFault { .. } | FaultsError::NoDevice(_) | FaultsError::Nothing(_) => exit::USAGE,
        FaultsError::Run(run::RunError::Runtime(_) | run::RunError::Results { .. } | run::RunError::Services(_)) => {
            exit::INFRA
        }
        FaultsError::Run(_) => exit::USAGE,
        FaultsError::Update { .. } | FaultsError::Transcript { .. } | FaultsError::Bench { .. } => exit::INFRA,
    }
}

/// Prints a report as JSON on standard output.
/// The end every campaign shares: its error explained, or its report printed in `format`
/// (`text` draws it for people) and the exit code `code` gives it.
fn finish<R: serde::Serialize>(
    ran: Result<R, FaultsError>,
    format: OutputFormat,
    text: impl FnOnce(&R) -> String,
    code: impl FnOnce(&R) -> u8,
) -> u8 {
    let report = match ran {
        Ok(report) => report,
        Err(err) => return campaign_error(&err),
    };
    match format {
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => eprintln!("error: the report as JSON: {err}"),
        },
        OutputFormat::Text => print!("{}", text(&report)),
    }
    code(&report)
}

/// `0.4 s`, `62.3 s`.
fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}
