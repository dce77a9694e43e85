//! `otarig faults server`: the update server killed or stalled in the middle of a download.

use clap::Args;
use otarig::faults::server::{
    FaultEnd, ServerCampaign, ServerCampaignEvent, ServerReport, Trial, fault_label, run_server_faults,
};
use otarig::run::RunEvent;

use super::scratch::Scratch;
use super::{CampaignArgs, exit, finish, seconds};

pub const AFTER_HELP: &str = "\
Each trial is two cells on one device: the update against a server that is killed (every
connection reset, its listener closed) or stalls (sends nothing for --stall-seconds) after a
seeded number of body bytes, then the same device against the server back as it was. The first
cell must end as the firmware's ESP-IDF client ends it (its failure class, or the update where
the client waits a stall out: from v3.3.2 esp_https_ota keeps asking while nothing comes); after
a failure the second cell must find the device as it was left (nothing reflashed), boot its old
firmware, and update.

The cells run on one device: a twin kept between them, or the lab config's first device of the
firmware's chip. The scenario must expect the firmware to update.

Exit status: 0 every trial held, 1 one did not, 2 usage or lab files in error, 3 the rig could
not run a trial and none failed, 130 stopped by Ctrl-C.

Examples:
  otarig faults server --firmware isrg-x1-idf3.2 --scenario le-short-chain
  otarig faults server --firmware bundle-idf5.2 --scenario le-short-chain --kills 5 --stalls 0
  otarig faults server --firmware bundle-idf5.2 --scenario le-short-chain --stall-seconds 20 --format json";

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The firmware's manifest id.
    #[arg(long, value_name = "ID")]
    firmware: String,
    /// A scenario in which the firmware updates (e.g. le-short-chain).
    #[arg(long, value_name = "ID")]
    scenario: String,
    /// Trials with the server killed at a seeded byte offset.
    #[arg(long, default_value_t = 3, value_name = "N")]
    kills: usize,
    /// Trials with the server stalled at a seeded byte offset.
    #[arg(long, default_value_t = 3, value_name = "N")]
    stalls: usize,
    /// How long a stall lasts (ESP-IDF's HTTP client waits 5 s for each read).
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    stall_seconds: u64,
    #[command(flatten)]
    campaign: CampaignArgs,
}

pub fn run(args: &ServerArgs) -> u8 {
    let scratch = Scratch::new();
    let options = match args.campaign.options(scratch.path().to_owned()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let campaign = ServerCampaign {
        firmware: args.firmware.clone(),
        scenario: args.scenario.clone(),
        kills: args.kills,
        stalls: args.stalls,
        stall_seconds: args.stall_seconds,
        seed: args.campaign.seed,
    };
    let bar = crate::cli::run::progress_bar(0);
    if let Err(err) = crate::cli::run::stop_on_ctrl_c(&options.stop, &bar) {
        eprintln!("warning: Ctrl-C will not stop the campaign cleanly: {err}");
    }
    let keep = args.campaign.out.as_deref();
    let ran = run_server_faults(&args.campaign.dirs(), &campaign, &options, keep, |event| match event {
        ServerCampaignEvent::Planned { trials, image_bytes, device } => {
            bar.set_length(2 * trials.len() as u64);
            bar.suspend(|| {
                eprintln!(
                    "server faults: {} x {}, an image of {image_bytes} bytes; {} trials, seed {}; on {device}",
                    args.firmware,
                    args.scenario,
                    trials.len(),
                    args.campaign.seed
                );
            });
        }
        ServerCampaignEvent::Run(RunEvent::CellFinished { .. }) => bar.inc(1),
        ServerCampaignEvent::Run(RunEvent::CellRetrying { board, attempt, error, .. }) => {
            bar.suspend(|| eprintln!("retry: on {board}: attempt {attempt}: {error}"));
        }
        ServerCampaignEvent::Run(_) => {}
        ServerCampaignEvent::Trial { trial, .. } => {
            if !trial.holds() {
                bar.suspend(|| eprintln!("{}", trial_line(trial)));
            }
        }
    });
    bar.finish_and_clear();
    finish(ran, args.campaign.format, text_report, exit_code)
}

/// 0 every trial held, 1 one did not, 3 the rig failed on one and none failed, 130 stopped.
fn exit_code(report: &ServerReport) -> u8 {
    if report.failing().next().is_some() {
        exit::FAIL
    } else if report.stopped {
        exit::INTERRUPTED
    } else if report.trials.iter().any(Trial::is_error) {
        exit::INFRA
    } else {
        exit::OK
    }
}

fn text_report(report: &ServerReport) -> String {
    let mut text = format!(
        "server faults: {} x {}, an image of {} bytes, stalls of {} s, seed {}\n",
        report.firmware, report.scenario, report.image_bytes, report.stall_seconds, report.seed
    );
    for trial in &report.trials {
        text.push_str(&trial_line(trial));
        text.push('\n');
    }
    let held = report.trials.iter().filter(|t| t.holds()).count();
    let classes: Vec<String> = report.classes.iter().map(|(class, n)| format!("{class} {n}")).collect();
    text.push_str(&format!(
        "{} trials in {}: {held} held; the update against the failing server ended {}\n",
        report.trials.len(),
        seconds(report.wall_ms),
        classes.join(", ")
    ));
    if let Some(kept) = report.trials.iter().flat_map(|t| t.kept.first()).next().and_then(|p| p.parent()) {
        text.push_str(&format!(
            "transcripts of the trials that did not hold: {}
",
            kept.display()
        ));
    }
    text
}

/// `ok    kill at 123456    network; boots old (0x10000) as left; updated once back (1.2 s)`.
fn trial_line(trial: &Trial) -> String {
    let tag = match (trial.holds(), trial.is_error()) {
        (true, _) => "ok   ",
        (false, true) => "ERROR",
        (false, false) => "FAIL ",
    };
    let outcome = trial.outcome.map_or_else(|| "no outcome".to_owned(), |o| o.to_string());
    let first = match trial.end {
        FaultEnd::Failed => format!("failed: {outcome}"),
        FaultEnd::WaitedOut => "waited it out and updated".to_owned(),
        FaultEnd::Undecided => format!("never decided: {outcome}"),
        FaultEnd::Error => format!("the rig failed: {}", trial.error.as_deref().unwrap_or("?")),
    };
    let boot = match (trial.end, trial.booted_from, trial.left_as_it_was) {
        (FaultEnd::Failed, Some(at), Some(true)) if trial.booted_from == trial.ran_from => {
            format!("; then booted its old firmware ({at:#x}), nothing reflashed")
        }
        (FaultEnd::Failed, Some(at), Some(true)) => format!("; then booted {at:#x}, not the old firmware"),
        (FaultEnd::Failed, _, Some(false)) => "; then the device was found changed (regions reflashed)".to_owned(),
        _ => String::new(),
    };
    let back = match trial.back {
        Some(outcome) if outcome.outcome == otarig::outcome::OutcomeClass::Updated => "; updated once back".to_owned(),
        Some(outcome) => format!("; once back: {outcome}"),
        None if trial.end == FaultEnd::Error => String::new(),
        None => "; once back: no outcome".to_owned(),
    };
    let at = format!("{} at {}", fault_label(trial.fault), trial.after);
    format!("{tag} {at:<17} {first}{boot}{back} on {} ({})", trial.board, seconds(trial.duration_ms))
}
