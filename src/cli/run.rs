//! `otarig run`: the firmware × scenario matrix on twins, results as JSON lines.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use otarig::run::{
    self, CellResult, CellVerdict, LabDirs, Plan, PlanError, RunEvent, RunOptions, Selection, WatchLimits,
};
use time::OffsetDateTime;

use super::exit;

pub const AFTER_HELP: &str = "\
Each cell builds the firmware's images, starts the scenario's update server (its chain, the
update image, its fault) with the firmware's update host pointing at it, flashes a fresh twin
through espflash, and reads its console until the update is decided. DIR/results.jsonl gets
one JSON object per cell as it ends; DIR/transcripts/ keeps each console as read.

Exit status: 0 every cell passed (or had nothing expected), 1 a cell failed, 2 usage or lab
files in error, 3 the rig could not run a cell (and none failed).

Examples:
  otarig run                                          every fleet member x every scenario
  otarig run --firmware dst-x3-idf3.2 --scenario gts-chain --out /tmp/run
  otarig run --scenario dst-cross-sign-rescue --twins 2 --timeout 60
  jq -c '{firmware, scenario, verdict, observed: .observed.outcome}' DIR/results.jsonl";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A firmware manifest id (repeat for more; default: every member of the fleet).
    #[arg(long, value_name = "ID")]
    firmware: Vec<String>,
    /// A scenario id or a path to a .toml (repeat for more; default: every scenario).
    #[arg(long, value_name = "ID")]
    scenario: Vec<String>,
    /// Where results.jsonl and transcripts/ go (default: target/otarig/runs/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seconds from the end of flashing to a decided update; after that the cell is `timeout`.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Cells run side by side, each on its own twin.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=16))]
    twins: u64,
    /// The scenarios directory (its pki/ folder holds the lab authorities).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenarios: PathBuf,
    /// The fleet's manifests.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
}

pub fn run(args: &RunArgs) -> u8 {
    let dirs = LabDirs { scenarios: args.scenarios.clone(), fleet: args.fleet.clone() };
    let selection = Selection { firmware: args.firmware.clone(), scenarios: args.scenario.clone() };
    let plan = match Plan::new(&dirs, &selection) {
        Ok(plan) => plan,
        Err(err) => {
            report_plan(&err);
            return exit::USAGE;
        }
    };
    let out = args.out.clone().unwrap_or_else(default_out);
    let options = RunOptions {
        out: out.clone(),
        limits: WatchLimits::new(Duration::from_secs(args.timeout)),
        twins: args.twins as usize,
    };
    println!(
        "{} cells ({} firmware x {} scenarios) on {} twin{}; results in {}",
        plan.cells.len(),
        plan.cells.len() / plan.scenarios.len().max(1),
        plan.scenarios.len(),
        options.twins,
        if options.twins == 1 { "" } else { "s" },
        out.display()
    );
    let summary = match run::run(&plan, &options, print_event) {
        Ok(summary) => summary,
        Err(err) => {
            eprintln!("error: {err}");
            return match err {
                run::RunError::Output { .. } => exit::USAGE,
                run::RunError::Runtime(_) => exit::INFRA,
            };
        }
    };
    println!(
        "{} cells: {} pass, {} fail, {} error, {} observed; {}",
        summary.total(),
        summary.pass,
        summary.fail,
        summary.error,
        summary.observed,
        summary.results.display()
    );
    if summary.fail > 0 {
        exit::FAIL
    } else if summary.error > 0 {
        exit::INFRA
    } else {
        exit::OK
    }
}

fn print_event(event: RunEvent<'_>) {
    if let RunEvent::CellFinished { index, total, result } = event {
        println!("[{}/{total}] {}", index + 1, cell_line(result));
    }
}

/// `PASS  dst-x3-idf3.2 x gts-chain on twin-1: tls-verify / untrusted (0.4 s)`.
fn cell_line(result: &CellResult) -> String {
    let tag = match result.verdict {
        CellVerdict::Pass => "PASS ",
        CellVerdict::Fail => "FAIL ",
        CellVerdict::Error => "ERROR",
        CellVerdict::Observed => "SEEN ",
    };
    let what = match (&result.observed, &result.error) {
        (Some(observed), _) => observed.outcome.to_string(),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    };
    let expected = match (&result.expected, result.verdict) {
        (Some(expected), CellVerdict::Fail) => {
            let outcome = otarig::outcome::Outcome { outcome: expected.outcome, reason: expected.reason };
            format!(", expected {outcome}")
        }
        _ => String::new(),
    };
    format!(
        "{tag} {} x {} on {}: {what}{expected} ({:.1} s)",
        result.firmware,
        result.scenario,
        result.board,
        result.duration_ms as f64 / 1000.0
    )
}

/// `target/otarig/runs/20261125T163012Z/`, with `-2`, `-3`... when a run of the same second
/// is there.
fn default_out() -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let base = PathBuf::from("target/otarig/runs");
    let mut dir = base.join(&stamp);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-{n}"));
        n += 1;
    }
    dir
}

fn report_plan(err: &PlanError) {
    eprintln!("error: {err}");
    let hint = match err {
        PlanError::UnknownFirmware { .. } => Some("`otarig fleet list` shows the fleet"),
        PlanError::UnknownScenario { .. } => Some("name a file of the scenarios directory, without .toml, or a path"),
        PlanError::Scenario(_) => Some("`otarig scenario check` checks every scenario"),
        PlanError::NoImage { .. } | PlanError::UnknownImage { .. } => {
            Some("name a release of firmware-images/ (`update = true`) as the scenario's image")
        }
        _ => None,
    };
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}
