//! `otarig run`: the firmware × scenario matrix on the lab's boards and twins, results as JSON
//! lines; progress on standard error, one line per cell on standard output, Ctrl-C stops
//! cleanly; `--calibrate` runs each cell on a board and on a twin and shows where they differ.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use otarig::lab::{self, DeviceSpec, LabConfig};
use otarig::results::{CellRecord, Verdict};
use otarig::run::{
    self, LabDirs, Plan, PlanError, RunEvent, RunOptions, RunSummary, Selection, Shard, Stop, WatchLimits,
};
use time::OffsetDateTime;

use super::exit;

pub const AFTER_HELP: &str = "\
Each cell builds the firmware's images, starts the scenario's update server (its chain, the
update image, its fault) with the firmware's update host pointing at it, flashes a device through
espflash, and reads its console until the update is decided. DIR/results.jsonl gets one JSON
object per cell as it ends; DIR/transcripts/ keeps each console as read.

Devices: the lab config's boards and twins (--config, default ./otarig.toml when present), else
--twins twins. A cell goes to a device with the firmware's chip; one no device has is an error.
Boards are locked for the run. Their update server listens on the config's [server] listen and
tells boards apart by their `address` (their DHCP reservation): boards with one run side by
side, those without take turns. Their time limits are the config's [timeouts] (boot + update).
With a config, --twins N replaces the config's twins (0: boards only) and --retries its retries.

Cells run side by side, one per device; a twin is kept for the next cell of the same firmware,
and a board skips the regions it already holds (MD5): both then only have otadata rewritten. A
cell the rig could not run (error) is tried again on a fresh device, --retries times. A board
whose port vanished and does not come back within the config's [timeouts] power leaves the run:
its cell is an error, the other devices run the rest.
--calibrate runs each cell on a board and on a twin (DIR/twin/), writes DIR/calibration.jsonl
and lists the cells where they disagree (exit 1 if any). --shard I/N takes the I-th of N contiguous parts of the cells
sorted by firmware id then scenario id: the same on every machine. --resume DIR keeps the cells
DIR/results.jsonl has a pass, fail or observed line for, and runs the others (error cells run
again). Ctrl-C stops: finished cells stay in results.jsonl, cells under way are dropped.

Exit status: 0 every cell passed (or had nothing expected), 1 a cell failed (or, with --strict,
had nothing expected), 2 usage or lab files in error, 3 the rig could not run a cell (and none
failed), 130 stopped by Ctrl-C.

Examples:
  otarig run                                          every fleet member x every scenario
  otarig run --firmware dst-x3-idf3.2 --scenario gts-chain --out /tmp/run
  otarig run --tag founding --twins 2 --strict
  otarig run --shard 2/4 --out results/2               the 2nd of 4 CI jobs
  otarig run --config /etc/otarig/otarig.toml --twins 0    the lab's boards only
  otarig run --config otarig.toml --tag founding --calibrate
  otarig run --resume target/otarig/runs/20261125T163012Z
  jq -c '{firmware, scenario, verdict, observed: .observed.outcome}' DIR/results.jsonl";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A firmware manifest id (repeat for more; default: every member of the fleet).
    #[arg(long, value_name = "ID")]
    firmware: Vec<String>,
    /// A scenario id or a path to a .toml (repeat for more; default: every scenario).
    #[arg(long, value_name = "ID")]
    scenario: Vec<String>,
    /// Only scenarios with this tag (repeat: scenarios with any of them).
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// Only part I of N of the cells (1-based), e.g. 2/4 for the 2nd of 4 CI jobs.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Where results.jsonl and transcripts/ go (default: target/otarig/runs/<UTC time>/).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Go on with the run in DIR: cells finished there are kept, the others run and their
    /// results are added to DIR/results.jsonl (error cells run again).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Seconds from the end of flashing to a decided update on a twin; after that the cell is
    /// `timeout` (boards: the lab config's [timeouts]).
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
    /// The lab config: its boards and twins run the cells (default: ./otarig.toml when present).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Cells run side by side, each on its own twin (default: one per CPU). With a lab config:
    /// this many twins instead of the config's (0: its boards only).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=64))]
    twins: Option<u64>,
    /// Times a cell the rig could not run (error) is tried again, on a fresh device (default:
    /// the lab config's retries, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=10))]
    retries: Option<u64>,
    /// Run each cell on a board of the lab config and on a twin, and list where they disagree
    /// (DIR/calibration.jsonl; the twins' run in DIR/twin/).
    #[arg(long)]
    calibrate: bool,
    /// Exit with 1 when a cell had nothing expected (`observed`), as for a failure.
    #[arg(long)]
    strict: bool,
    /// Flash every cell onto a fresh twin instead of keeping twins between cells.
    #[arg(long)]
    fresh_twins: bool,
    /// The scenarios directory (its pki/ folder holds the lab authorities).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenarios: PathBuf,
    /// The fleet's manifests.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    text.parse().map_err(|err: run::ShardError| err.to_string())
}

pub fn run(args: &RunArgs) -> u8 {
    let (plan, options) = match plan_and_options(args) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    println!("{}", header(&plan, &options, args.shard));
    let (summary, calibration) = match run_with_progress(args, &plan, &options) {
        Ok(ran) => ran,
        Err(code) => return code,
    };
    print_reports(&options.out);
    println!("{}", summary_line(&summary));
    if let Some(calibration) = &calibration {
        println!("twins: {}", summary_line(&calibration.twins));
        print!("{}", calibration_report(calibration));
    }
    if summary.stopped || calibration.as_ref().is_some_and(|c| c.twins.stopped) {
        report_interrupted(&summary, &options.out);
        return exit::INTERRUPTED;
    }
    run_exit_code(&summary, calibration.as_ref(), args.strict)
}

/// The plan and how to run it, from the flags; the exit code when they cannot be used.
fn plan_and_options(args: &RunArgs) -> Result<(Plan, RunOptions), u8> {
    let dirs = LabDirs { scenarios: args.scenarios.clone(), fleet: args.fleet.clone() };
    let selection = Selection {
        firmware: args.firmware.clone(),
        scenarios: args.scenario.clone(),
        tags: args.tag.clone(),
        shard: args.shard,
    };
    let plan = Plan::new(&dirs, &selection).map_err(|err| {
        report_plan(&err);
        exit::USAGE
    })?;
    if let Some(dir) = &args.resume
        && !dir.is_dir()
    {
        eprintln!("error: nothing to resume: {} is not a directory", dir.display());
        return Err(exit::USAGE);
    }
    let lab = lab_devices(args).map_err(|message| {
        eprintln!("error: {message}");
        exit::USAGE
    })?;
    let chips: Vec<otarig::image::Chip> = match &lab {
        Some(lab) => lab.devices.iter().map(DeviceSpec::chip).collect(),
        // Twins are ESP32s.
        None => vec![otarig::image::Chip::Esp32],
    };
    if let Err(err) = plan.check_chips(&chips) {
        report_plan(&err);
        return Err(exit::USAGE);
    }
    if args.calibrate && lab.as_ref().is_none_or(|lab| lab.boards().next().is_none()) {
        eprintln!("error: --calibrate compares boards with twins, and the lab config names no [[board]]");
        eprintln!("hint: give --config PATH with a [[board]] (`otarig boards` prints one for each port)");
        return Err(exit::USAGE);
    }
    let out = args.resume.clone().or_else(|| args.out.clone()).unwrap_or_else(default_out);
    let mut options = RunOptions::new(&out);
    options.limits = WatchLimits::new(Duration::from_secs(args.timeout));
    options.twins = args.twins.map_or_else(run::default_twins, |n| n as usize);
    options.retries = match (args.retries, &lab) {
        (Some(n), _) => n as usize,
        (None, Some(lab)) => lab.retries as usize,
        (None, None) => 1,
    };
    options.lab = lab;
    options.resume = args.resume.is_some();
    options.reuse_twins = !args.fresh_twins;
    Ok((plan, options))
}

/// Runs the plan (on boards and on twins with `--calibrate`) under a progress bar, Ctrl-C
/// stopping it; the exit code when the run could not go on.
fn run_with_progress(
    args: &RunArgs,
    plan: &Plan,
    options: &RunOptions,
) -> Result<(RunSummary, Option<run::Calibration>), u8> {
    let sides = if args.calibrate { 2 } else { 1 };
    let bar = progress_bar(sides * plan.cells.len() as u64);
    if let Err(err) = stop_on_ctrl_c(&options.stop, &bar) {
        eprintln!("warning: Ctrl-C will not stop the run cleanly: {err}");
    }
    let ran = if args.calibrate {
        run::calibrate(plan, options, |event| show_event(&bar, event)).map(|c| (c.boards.clone(), Some(c)))
    } else {
        run::run(plan, options, |event| show_event(&bar, event)).map(|summary| (summary, None)).map_err(Into::into)
    };
    bar.finish_and_clear();
    ran.map_err(|err| {
        eprintln!("error: {err}");
        run_error_code(&err)
    })
}

/// The exit code of a run that could not go on (3 when the rig could not, else 2), with a
/// hint where one helps.
fn run_error_code(err: &run::CalibrateError) -> u8 {
    match err {
        run::CalibrateError::Run(run::RunError::Runtime(_) | run::RunError::Results { .. }) => exit::INFRA,
        run::CalibrateError::Run(run::RunError::Locked(run::RunDirLockError::Busy { .. })) => {
            eprintln!("hint: wait for that run to end, or give another --out");
            exit::USAGE
        }
        run::CalibrateError::Run(run::RunError::HoldsResults { dir }) => {
            eprintln!("hint: give another --out, or go on with that run by --resume {}", dir.display());
            exit::USAGE
        }
        run::CalibrateError::Run(run::RunError::HeapNotEmulated { .. }) => {
            eprintln!(
                "hint: run it with the otarig binary this package builds, or leave the firmware out (--firmware)"
            );
            exit::INFRA
        }
        run::CalibrateError::Run(run::RunError::Services(_)) => {
            eprintln!(
                "hint: another DNS or SNTP server may hold the address (dnsmasq, systemd-resolved, \
                 chrony), or ports below 1024 need root or CAP_NET_BIND_SERVICE"
            );
            exit::INFRA
        }
        _ => exit::USAGE,
    }
}

/// The matrix, the fleet summary and the JUnit and HTML reports, from what `out`'s
/// results.jsonl holds now.
fn print_reports(out: &Path) {
    match otarig::report::write_reports(out, &otarig::report::DetailsByCell::new()) {
        Ok(written) => {
            let colour = super::report::colour();
            print!("\n{}", otarig::report::render_matrix(&written.cells, colour));
            super::report::print_fleet_summary(&written.cells, colour);
            println!("JUnit: {}", written.junit.display());
            println!("report: {}", written.html.display());
        }
        Err(err) => eprintln!("warning: no reports: {err}"),
    }
}

/// What a stopped run left, and how to go on.
fn report_interrupted(summary: &RunSummary, out: &Path) {
    eprintln!(
        "interrupted: {} cell{} abandoned, {} not started; the finished ones are in {}",
        summary.abandoned,
        if summary.abandoned == 1 { "" } else { "s" },
        summary.not_run,
        summary.results.display()
    );
    eprintln!("hint: go on with `{}`", resume_command(out));
}

/// The exit code of a finished run: from its counts, and with `--calibrate` 1 when board and
/// twin disagree on a cell, else from both sides' counts.
fn run_exit_code(summary: &RunSummary, calibration: Option<&run::Calibration>, strict: bool) -> u8 {
    match calibration {
        Some(calibration) if calibration.disagreements().next().is_some() => exit::FAIL,
        Some(calibration) => {
            let twins = &calibration.twins;
            let both = RunSummary {
                fail: summary.fail + twins.fail,
                error: summary.error + twins.error,
                observed: summary.observed + twins.observed,
                ..RunSummary::default()
            };
            exit_code(&both, strict)
        }
        None => exit_code(summary, strict),
    }
}

/// The lab's devices: the lab config's (with `--twins N` in place of its twins), or `None`
/// for `--twins` twins.
fn lab_devices(args: &RunArgs) -> Result<Option<LabConfig>, String> {
    let Some(path) = lab::config_path(args.config.as_deref()) else {
        if args.twins == Some(0) {
            return Err("--twins 0 leaves no device to run on (without a lab config, cells run on twins)".into());
        }
        return Ok(None);
    };
    let mut lab = lab::load(&path).map_err(|err| match super::lab::config_hint(&err) {
        Some(hint) => format!("{err}\nhint: {hint}"),
        None => err.to_string(),
    })?;
    if let Some(n) = args.twins {
        let boards = lab.devices.into_iter().filter(|d| matches!(d, DeviceSpec::Board(_)));
        lab.devices = boards.chain(LabConfig::twins_only(n as usize).devices).collect();
        let mut ids: Vec<&str> = lab.devices.iter().map(DeviceSpec::id).collect();
        ids.sort_unstable();
        if let Some(twice) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!("--twins {n}: `{}` names a board of {} too", twice[0], path.display()));
        }
    }
    if lab.devices.is_empty() {
        return Err(format!("no device: {} names no board, and --twins 0 leaves out its twins", path.display()));
    }
    Ok(Some(lab))
}

/// The calibration's end: the cells where board and twin disagree, and where the file is.
fn calibration_report(calibration: &run::Calibration) -> String {
    let disagree = calibration.disagreements().count();
    let compared = calibration.lines.iter().filter(|l| l.board_observed.is_some() && l.twin_observed.is_some());
    let compared = compared.count();
    let mut text = format!(
        "calibration: {compared} of {} cells compared, {disagree} disagree{}; {}\n",
        calibration.lines.len(),
        if disagree == 0 { "" } else { ":" },
        calibration.path.display()
    );
    text.push_str(&run::calibrate::disagreement_table(&calibration.lines));
    text
}

/// 1 for a failure (or, `strict`, a cell with nothing expected), else 3 for a rig error, else 0.
fn exit_code(summary: &RunSummary, strict: bool) -> u8 {
    if summary.fail > 0 || (strict && summary.observed > 0) {
        exit::FAIL
    } else if summary.error > 0 {
        exit::INFRA
    } else {
        exit::OK
    }
}

/// `90 cells (10 firmware x 9 scenarios) on 2 twins; results in DIR`, with the shard.
fn header(plan: &Plan, options: &RunOptions, shard: Option<Shard>) -> String {
    let scenarios = plan.scenarios.len();
    let matrix = format!("{} firmware x {scenarios} scenarios", plan.unsharded / scenarios.max(1));
    let what = match shard {
        Some(shard) => format!("{} cells (shard {shard} of {}: {matrix})", plan.cells.len(), plan.unsharded),
        None => format!("{} cells ({matrix})", plan.cells.len()),
    };
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let devices = match &options.lab {
        None => plural(options.twins.min(plan.cells.len().max(1)), "twin"),
        Some(lab) => {
            let boards = lab.boards().count();
            let twins = lab.devices.len() - boards;
            match (boards, twins) {
                (0, twins) => plural(twins, "twin"),
                (boards, 0) => plural(boards, "board"),
                (boards, twins) => format!("{} and {}", plural(boards, "board"), plural(twins, "twin")),
            }
        }
    };
    let verb = if options.resume { "resuming" } else { "results in" };
    format!("{what} on {devices}; {verb} {}", options.out.display())
}

fn summary_line(summary: &RunSummary) -> String {
    let carried = match summary.carried {
        0 => String::new(),
        n => format!(" ({n} from before)"),
    };
    format!(
        "{} cells{carried}: {} pass, {} fail, {} error, {} observed; {}",
        summary.total(),
        summary.pass,
        summary.fail,
        summary.error,
        summary.observed,
        summary.results.display()
    )
}

/// A bar on standard error while cells run; hidden when standard error is not a terminal.
// Invariant: both templates are constants indicatif accepts (every run shows one).
#[allow(clippy::expect_used)]
pub(super) fn progress_bar(cells: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(cells), ProgressDrawTarget::stderr());
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let template = if colour {
        "{elapsed_precise:.dim} [{wide_bar:.cyan/blue}] {pos}/{len} cells  {msg}"
    } else {
        "{elapsed_precise} [{wide_bar}] {pos}/{len} cells  {msg}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "));
    bar
}

fn show_event(bar: &ProgressBar, event: RunEvent<'_>) {
    match event {
        RunEvent::CellStarted { firmware, scenario, board, attempt, .. } => {
            let retry = if attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
            bar.set_message(format!("{firmware} x {scenario} on {board}{retry}"));
        }
        RunEvent::CellRetrying { firmware, scenario, board, attempt, error, .. } => {
            bar.suspend(|| eprintln!("retry: {firmware} x {scenario} on {board}: attempt {attempt}: {error}"));
        }
        RunEvent::CellFinished { done, total, result, .. } => {
            bar.inc(1);
            bar.suspend(|| println!("[{done}/{total}] {}", cell_line(result)));
        }
        RunEvent::BoardLeft { board, why } => {
            bar.suspend(|| eprintln!("board {board} left the run: {why}"));
        }
        RunEvent::BoardBusy { board, error } => {
            bar.suspend(|| eprintln!("waiting for {board}: {error}"));
        }
        RunEvent::Flashed { firmware, scenario, board, report } => {
            let (written, skipped) = (report.bytes_written(), report.bytes_skipped());
            bar.set_message(format!("{firmware} x {scenario} on {board}: {written} bytes written, {skipped} held"));
        }
    }
}

/// The first Ctrl-C (SIGINT) stops the run: no new cell starts, cells under way are dropped.
/// A second one ends the process at once.
pub(super) fn stop_on_ctrl_c(stop: &Stop, bar: &ProgressBar) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Registered here, before any cell starts; what arrives before the thread waits is kept.
    let mut interrupts = {
        let _entered = runtime.enter();
        signal(SignalKind::interrupt())?
    };
    let (stop, bar) = (stop.clone(), bar.clone());
    std::thread::Builder::new().name("otarig-ctrl-c".into()).spawn(move || {
        runtime.block_on(async {
            if interrupts.recv().await.is_some() {
                stop.request();
                bar.suspend(|| eprintln!("interrupted: stopping (Ctrl-C again to quit at once)"));
            }
            if interrupts.recv().await.is_some() {
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        });
    })?;
    Ok(())
}

/// This command again, resuming in `out`: `--out` and `--resume` replaced.
fn resume_command(out: &Path) -> String {
    let mut words = vec!["otarig".to_owned()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--out" || arg == "--resume" {
            args.next();
        } else if !arg.starts_with("--out=") && !arg.starts_with("--resume=") {
            words.push(arg);
        }
    }
    words.push("--resume".into());
    words.push(out.display().to_string());
    let quote = |w: &String| {
        if w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:".contains(&b)) {
            w.clone()
        } else {
            format!("'{w}'")
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// `PASS  dst-x3-idf3.2 x gts-chain on twin-1: tls-verify / untrusted (0.4 s)`.
fn cell_line(result: &CellRecord) -> String {
    let tag = match result.verdict {
        Verdict::Pass => "PASS ",
        Verdict::Fail => "FAIL ",
        Verdict::Error => "ERROR",
        Verdict::Observed => "SEEN ",
    };
    let what = match (&result.observed, &result.error) {
        (Some(observed), _) => observed.outcome.to_string(),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    };
    let expected = match (&result.expected, result.verdict) {
        (Some(expected), Verdict::Fail) => {
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
        PlanError::UnknownTag { .. } => Some("tags are the `tags = [...]` of the scenario files"),
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
