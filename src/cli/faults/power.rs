//! `otarig faults power-cut`: the power cut at many points of one firmware's update.

use clap::Args;
use otarig::faults::boot::Landed;
use otarig::faults::power::{
    AfterCut, CutOrigin, CutResult, PowerCutCampaign, PowerCutEvent, PowerCutReport, cut_name, parse_cut,
    run_power_cuts,
};
use otarig::firmware::start::PowerCut;

use super::scratch::Scratch;
use super::{CampaignArgs, exit, finish, seconds};

pub const AFTER_HELP: &str = "\
Each cut is a cell on a fresh twin: the firmware is flashed, the scenario's server offers the
update, the power goes where the cut says, and the twin is powered on again. The transcript
says where that boot landed (the partition the bootloader loaded, and the app starting): the
old firmware, the new one, or nothing (no bootable app, a boot loop). The device must then end
on the new firmware: the old one updates again, or the new one was already switched to.

The cuts: --cuts byte offsets of the image write drawn from --seed in 0..=length, the
boundaries 0, 1, 4095, 4096, 4097, length - 1 and length, and five in the otadata write of
esp_ota_set_boot_partition: after its sector erase (otadata:0), the sequence number (otadata:4),
half the entry (otadata:16), all but the CRC (otadata:28), the whole entry (otadata:32). The
scenario must expect the firmware to update. Cuts are armed on twins (a lab config's twins run
them; its boards cannot cut at a byte).

--only CUT (repeatable) runs only those cuts: N or image:N (N bytes of the image written),
otadata:N (N bytes of the otadata entry written), as the report names them.

Exit status: 0 every cut landed on a working image and the device then ran the new firmware,
1 a cut did not, 2 usage or lab files in error, 3 the rig could not run a cut and none failed,
130 stopped by Ctrl-C.

Examples:
  otarig faults power-cut --firmware isrg-x1-idf3.2 --scenario le-short-chain
  otarig faults power-cut --firmware bundle-idf5.2 --scenario le-short-chain --seed 42 --format json
  otarig faults power-cut --firmware isrg-x1-idf3.2 --scenario le-short-chain --only 4096 --only otadata:28 --out cuts";

#[derive(Debug, Args)]
pub struct PowerCutArgs {
    /// The firmware's manifest id.
    #[arg(long, value_name = "ID")]
    firmware: String,
    /// A scenario in which the firmware updates (e.g. le-short-chain).
    #[arg(long, value_name = "ID")]
    scenario: String,
    /// Byte offsets of the image write drawn from the seed, besides the boundaries.
    #[arg(long, default_value_t = 200, value_name = "N")]
    cuts: usize,
    /// Only this cut (repeat for more): N or image:N, otadata:N.
    #[arg(long, value_name = "CUT", value_parser = parse_only)]
    only: Vec<PowerCut>,
    #[command(flatten)]
    campaign: CampaignArgs,
}

fn parse_only(text: &str) -> Result<PowerCut, String> {
    parse_cut(text)
        .ok_or_else(|| format!("`{text}` is no cut: give N or image:N (bytes of the image), otadata:N (0 to 32)"))
}

pub fn run(args: &PowerCutArgs) -> u8 {
    let scratch = Scratch::new();
    let options = match args.campaign.options(scratch.path().to_owned()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let campaign = PowerCutCampaign {
        firmware: args.firmware.clone(),
        scenario: args.scenario.clone(),
        seeded: args.cuts,
        seed: args.campaign.seed,
        only: args.only.clone(),
    };
    let bar = crate::cli::run::progress_bar(0);
    if let Err(err) = crate::cli::run::stop_on_ctrl_c(&options.stop, &bar) {
        eprintln!("warning: Ctrl-C will not stop the campaign cleanly: {err}");
    }
    let devices = CampaignArgs::devices(&options);
    let ran =
        run_power_cuts(&args.campaign.dirs(), &campaign, &options, args.campaign.out.as_deref(), |event| match event {
            PowerCutEvent::Planned { cuts, image_bytes } => {
                bar.set_length(cuts.len() as u64);
                let count = |origin| cuts.iter().filter(|c| c.origin == origin).count();
                let what = if args.only.is_empty() {
                    format!(
                        "{} cuts ({} seeded, {} boundaries, {} in the otadata write), seed {}",
                        cuts.len(),
                        count(CutOrigin::Seeded),
                        count(CutOrigin::Boundary),
                        count(CutOrigin::Otadata),
                        args.campaign.seed
                    )
                } else {
                    format!("{} cut{} given", cuts.len(), if cuts.len() == 1 { "" } else { "s" })
                };
                bar.suspend(|| {
                    eprintln!(
                        "power cuts: {} x {}, an image of {image_bytes} bytes; {what}; on {devices}",
                        args.firmware, args.scenario
                    );
                });
            }
            PowerCutEvent::Run(otarig::run::RunEvent::CellRetrying { board, attempt, error, .. }) => {
                bar.suspend(|| eprintln!("retry: on {board}: attempt {attempt}: {error}"));
            }
            PowerCutEvent::Run(_) => {}
            PowerCutEvent::Cut { result, .. } => {
                bar.inc(1);
                bar.set_message(cut_name(result.cut()));
                if !result.holds() {
                    bar.suspend(|| eprintln!("{}", cut_line(result)));
                }
            }
        });
    bar.finish_and_clear();
    finish(ran, args.campaign.format, |report| text_report(report, args), exit_code)
}

/// 0 every cut held, 1 one did not, 3 the rig failed on one and none failed, 130 stopped.
fn exit_code(report: &PowerCutReport) -> u8 {
    if report.failing().next().is_some() {
        exit::FAIL
    } else if report.stopped {
        exit::INTERRUPTED
    } else if report.figures.errors > 0 {
        exit::INFRA
    } else {
        exit::OK
    }
}

/// The report: a line per cut, the figures, and how to run a failing cut again.
fn text_report(report: &PowerCutReport, args: &PowerCutArgs) -> String {
    let mut text = format!(
        "power cuts: {} x {}, an image of {} bytes, seed {}\n",
        report.firmware, report.scenario, report.image_bytes, report.seed
    );
    for cut in &report.cuts {
        text.push_str(&cut_line(cut));
        text.push('\n');
    }
    let f = &report.figures;
    text.push_str(&format!(
        "{} cuts in {}: booted old {}, new {}, nothing {}; on the new firmware after the cut {}; {} error{}{}\n",
        f.cuts,
        seconds(f.wall_ms),
        f.booted_old,
        f.booted_new,
        f.booted_nothing,
        f.updated,
        f.errors,
        if f.errors == 1 { "" } else { "s" },
        if f.not_run > 0 { format!("; {} not run (stopped)", f.not_run) } else { String::new() },
    ));
    let failing: Vec<String> =
        report.failing().chain(report.cuts.iter().filter(|c| c.is_error())).map(|c| cut_name(c.cut())).collect();
    if !failing.is_empty() {
        let only: Vec<String> = failing.iter().take(10).map(|name| format!("--only {name}")).collect();
        text.push_str(&format!(
            "again: otarig faults power-cut --firmware {} --scenario {} {}\n",
            args.firmware,
            args.scenario,
            only.join(" ")
        ));
    }
    if let Some(out) = &args.campaign.out
        && report.cuts.iter().any(|c| c.kept.is_some())
    {
        text.push_str(&format!("transcripts of the cuts that did not hold: {}\n", out.join("transcripts").display()));
    }
    text
}

/// `ok    image:4096      booted old (0x10000), updated again (0.4 s)`.
fn cut_line(cut: &CutResult) -> String {
    let tag = match (cut.holds(), cut.is_error()) {
        (true, _) => "ok   ",
        (false, true) => "ERROR",
        (false, false) => "FAIL ",
    };
    let booted = match (cut.booted, cut.loaded) {
        (Some(Landed::Old), Some(at)) => format!("booted old ({at:#x})"),
        (Some(Landed::New), Some(at)) => format!("booted new ({at:#x})"),
        (Some(Landed::Other), Some(at)) => format!("booted neither old nor new ({at:#x})"),
        (Some(_), _) => "booted nothing".to_owned(),
        (None, _) => String::new(),
    };
    let after = match cut.update {
        AfterCut::Updated => "updated again".to_owned(),
        AfterCut::NotNeeded => "already updated".to_owned(),
        AfterCut::Failed => match cut.outcome {
            Some(outcome) => format!("ended {outcome}"),
            None => "ended without an outcome".to_owned(),
        },
        AfterCut::Error => format!("the rig failed: {}", cut.error.as_deref().unwrap_or("?")),
    };
    let what = if booted.is_empty() { after } else { format!("{booted}, {after}") };
    format!("{tag} {:<15} {what} on {} ({})", cut_name(cut.cut()), cut.board, seconds(cut.duration_ms))
}
