//! `otarig run`: the firmware × scenario matrix on twins, results as JSON lines; progress on
//! standard error, one line per cell on standard output, Ctrl-C stops cleanly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use otarig::run::{
    self, CellResult, CellVerdict, LabDirs, Plan, PlanError, RunEvent, RunOptions, RunSummary, Selection, Shard, Stop,
    WatchLimits,
};
use time::OffsetDateTime;

use super::exit;

pub const AFTER_HELP: &str = "\
Each cell builds the firmware's images, starts the scenario's update server (its chain, the
update image, its fault) with the firmware's update host pointing at it, flashes a twin through
espflash, and reads its console until the update is decided. DIR/results.jsonl gets one JSON
object per cell as it ends; DIR/transcripts/ keeps each console as read.

Cells run side by side, one per twin; a twin is kept for the next cell of the same firmware,
which then only has otadata rewritten. A cell the rig could not run (error) is tried again on
a fresh twin, --retries times. --shard I/N takes the I-th of N contiguous parts of the cells
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
    /// Seconds from the end of flashing to a decided update; after that the cell is `timeout`.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Cells run side by side, each on its own twin (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    twins: Option<u64>,
    /// Times a cell the rig could not run (error) is tried again, on a fresh twin.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=10))]
    retries: u64,
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
    let dirs = LabDirs { scenarios: args.scenarios.clone(), fleet: args.fleet.clone() };
    let selection = Selection {
        firmware: args.firmware.clone(),
        scenarios: args.scenario.clone(),
        tags: args.tag.clone(),
        shard: args.shard,
    };
    let plan = match Plan::new(&dirs, &selection) {
        Ok(plan) => plan,
        Err(err) => {
            report_plan(&err);
            return exit::USAGE;
        }
    };
    if let Some(dir) = &args.resume
        && !dir.is_dir()
    {
        eprintln!("error: nothing to resume: {} is not a directory", dir.display());
        return exit::USAGE;
    }
    let out = args.resume.clone().or_else(|| args.out.clone()).unwrap_or_else(default_out);
    let mut options = RunOptions::new(&out);
    options.limits = WatchLimits::new(Duration::from_secs(args.timeout));
    options.twins = args.twins.map_or_else(run::default_twins, |n| n as usize);
    options.retries = args.retries as usize;
    options.resume = args.resume.is_some();
    options.reuse_twins = !args.fresh_twins;
    println!("{}", header(&plan, &options, args.shard));

    let bar = progress_bar(plan.cells.len() as u64);
    if let Err(err) = stop_on_ctrl_c(&options.stop, &bar) {
        eprintln!("warning: Ctrl-C will not stop the run cleanly: {err}");
    }
    let summary = match run::run(&plan, &options, |event| show_event(&bar, event)) {
        Ok(summary) => summary,
        Err(err) => {
            bar.finish_and_clear();
            eprintln!("error: {err}");
            return match err {
                run::RunError::Output { .. } => exit::USAGE,
                run::RunError::Runtime(_) => exit::INFRA,
            };
        }
    };
    bar.finish_and_clear();
    // The matrix and the JUnit and HTML reports, from what results.jsonl holds now.
    match otarig::report::write_reports(&out, &otarig::report::DetailsByCell::new()) {
        Ok(written) => {
            print!("\n{}", otarig::report::render_matrix(&written.cells, super::report::colour()));
            println!("JUnit: {}", written.junit.display());
            println!("report: {}", written.html.display());
        }
        Err(err) => eprintln!("warning: no reports: {err}"),
    }
    println!("{}", summary_line(&summary));
    if summary.stopped {
        eprintln!(
            "interrupted: {} cell{} abandoned, {} not started; the finished ones are in {}",
            summary.abandoned,
            if summary.abandoned == 1 { "" } else { "s" },
            summary.not_run,
            summary.results.display()
        );
        eprintln!("hint: go on with `{}`", resume_command(&out));
        return exit::INTERRUPTED;
    }
    exit_code(&summary, args.strict)
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
    let twins = options.twins.min(plan.cells.len().max(1));
    let verb = if options.resume { "resuming" } else { "results in" };
    format!("{what} on {twins} twin{}; {verb} {}", if twins == 1 { "" } else { "s" }, options.out.display())
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
fn progress_bar(cells: u64) -> ProgressBar {
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
        RunEvent::BoardBusy { board, error } => {
            bar.suspend(|| eprintln!("waiting for {board}: {error}"));
        }
    }
}

/// The first Ctrl-C (SIGINT) stops the run: no new cell starts, cells under way are dropped.
/// A second one ends the process at once.
fn stop_on_ctrl_c(stop: &Stop, bar: &ProgressBar) -> std::io::Result<()> {
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
