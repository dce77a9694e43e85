//! `otarig replay LOG --match` and `--reproduce`: the library's cells that end as a field log
//! ends, and the best of them run again beside the log.

use std::path::{Path, PathBuf};

use clap::Parser;
use otarig::matching::{self, Fingerprint, Index, IndexKey, Match};
use otarig::replay::ReplayReport;
use otarig::report::neutral::terminal_safe;
use otarig::run::{LabDirs, Plan, Selection};

use super::exit;

/// Where indexes are kept: one folder per key.
const INDEX_ROOT: &str = "target/otarig/match-index";
/// Cells shown.
pub const DEFAULT_TOP: usize = 5;

/// What `--match` needs besides the log.
pub struct MatchRequest<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub report: &'a ReplayReport,
    pub scenarios: &'a Path,
    pub fleet: &'a Path,
    pub top: usize,
    /// Run the best match again (`--reproduce`), on a board of this lab config when given.
    pub reproduce: Option<Option<&'a Path>>,
}

pub fn run(request: &MatchRequest<'_>) -> u8 {
    let index = match index(request.scenarios, request.fleet) {
        Ok(index) => index,
        Err(code) => return code,
    };
    let log = Fingerprint::of_report(request.report, request.bytes);
    let ranked = matching::rank(&log, &index);
    println!("{}: {}", terminal_safe(request.name), log.outcome);
    if let Some(note) = matching::comparable_layers(&request.report.formats) {
        println!("note: the log is not ESP-IDF's own program: {note}");
    }
    println!("decisive lines compared ({}):", log.lines.len());
    for line in &log.lines {
        println!("  {}", terminal_safe(line));
    }
    println!();
    let same: Vec<&Match<'_>> = ranked.iter().filter(|m| m.same_outcome).take(request.top).collect();
    if same.is_empty() {
        println!(
            "no cell of the library ({} cells) ends in {}; the nearest by outcome:",
            index.cells.len(),
            log.outcome
        );
        show(ranked.iter().take(request.top));
        return exit::OK;
    }
    println!("cells of the library ({} cells) that end the same way, best first:", index.cells.len());
    show(same.iter().copied());
    let Some(reproduce) = request.reproduce else { return exit::OK };
    let best = same[0];
    println!();
    reproduce_cell(request, best, reproduce)
}

fn show<'a>(matches: impl Iterator<Item = &'a Match<'a>>) {
    for m in matches {
        let how = if m.same_reason {
            "same outcome and reason"
        } else if m.same_outcome {
            "same outcome, other reason"
        } else {
            "other outcome"
        };
        println!(
            "  {:<28} x {:<28} {:<26} {how}; {}/{} lines agree",
            m.cell.firmware,
            m.cell.scenario,
            m.cell.fingerprint.outcome.to_string(),
            m.agreeing.len(),
            m.of
        );
    }
}

/// The index of the library in `scenarios` × `fleet`, built when it is missing or stale.
fn index(scenarios: &Path, fleet: &Path) -> Result<Index, u8> {
    let salt = program_identity();
    let key = IndexKey::of(&[scenarios, fleet], &salt).map_err(|err| {
        eprintln!("error: cannot read the library ({} and {}): {err}", scenarios.display(), fleet.display());
        exit::USAGE
    })?;
    let dir = Path::new(INDEX_ROOT).join(key.short());
    match matching::load(&dir, &key) {
        Ok(Some(index)) => return Ok(index),
        Ok(None) => {}
        Err(err) => tracing::warn!("{}: rebuilding the index", chain(&err)),
    }
    let plan = library_plan(scenarios, fleet, &Selection::default())?;
    eprintln!(
        "indexing the library's twin transcripts ({} cells, once for this library and build) in {}",
        plan.cells.len(),
        dir.display()
    );
    let bar = super::run::progress_bar(plan.cells.len() as u64);
    let built =
        matching::build(&plan, &dir, key, otarig::run::default_twins(), |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    built.map_err(|err| {
        eprintln!("error: {}", chain(&err));
        exit::INFRA
    })
}

/// The plan of `selection` in the library, for twins (ESP32s).
fn library_plan(scenarios: &Path, fleet: &Path, selection: &Selection) -> Result<Plan, u8> {
    let dirs = LabDirs { scenarios: scenarios.to_owned(), fleet: fleet.to_owned() };
    let plan = Plan::new(&dirs, selection).map_err(|err| {
        eprintln!("error: {}", chain(&err));
        exit::USAGE
    })?;
    plan.check_chips(&[otarig::image::Chip::Esp32]).map_err(|err| {
        eprintln!("error: {}", chain(&err));
        exit::USAGE
    })?;
    Ok(plan)
}

/// What this program is, for the index's key: its own bytes (another build may print other
/// lines); its version when they cannot be read.
fn program_identity() -> Vec<u8> {
    std::env::current_exe()
        .ok()
        .and_then(|path| otarig::input::read_image(&path).ok())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").as_bytes().to_vec())
}

/// An error with its causes, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `otarig run` of one cell, as the command line would give it.
#[derive(Parser)]
struct RunCommand {
    #[command(flatten)]
    run: super::run::RunArgs,
}

/// Runs `best` again (on a twin, or a board of `config`) and shows the field log's decided
/// attempt beside the new transcript's.
fn reproduce_cell(request: &MatchRequest<'_>, best: &Match<'_>, config: Option<&Path>) -> u8 {
    let out = PathBuf::from(format!(
        "target/otarig/reproduce/{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
    ));
    let mut argv: Vec<String> = ["otarig run", "--firmware", &best.cell.firmware, "--scenario", &best.cell.scenario]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for (flag, path) in [("--scenarios", request.scenarios), ("--fleet", request.fleet), ("--out", &out)] {
        argv.push(flag.to_owned());
        argv.push(path.display().to_string());
    }
    let devices = match config {
        Some(config) => vec!["--config".to_owned(), config.display().to_string(), "--twins".to_owned(), "0".to_owned()],
        None => vec!["--twins".to_owned(), "1".to_owned()],
    };
    argv.extend(devices);
    println!(
        "reproducing {} x {} ({})",
        best.cell.firmware,
        best.cell.scenario,
        if config.is_some() { "on a board" } else { "on a twin" }
    );
    let command = match RunCommand::try_parse_from(&argv) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("error: {err}");
            return exit::USAGE;
        }
    };
    let code = super::run::run(&command.run);
    if code == exit::USAGE || code == exit::INTERRUPTED {
        return code;
    }
    let records = match otarig::results::read_results(&out) {
        Ok(records) => records,
        Err(err) => {
            eprintln!("error: {}", chain(&err));
            return exit::INFRA;
        }
    };
    let Some(record) = records.last().filter(|r| r.error.is_none()) else {
        eprintln!("error: the cell could not be run; see {}", out.display());
        return exit::INFRA;
    };
    let transcript = match otarig::input::read_text(&out.join(&record.transcript)) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: cannot read {}: {err}", out.join(&record.transcript).display());
            return exit::INFRA;
        }
    };
    let device = matching::device_part(&transcript);
    let replayed = otarig::replay::replay_bytes(device.as_bytes());
    println!();
    side_by_side(
        (request.name, &matching::attempt_lines(request.bytes, request.report)),
        (
            &format!("twin: {} x {}", record.firmware, record.scenario),
            &matching::attempt_lines(device.as_bytes(), &replayed),
        ),
    );
    let same = replayed.verdict.outcome == request.report.verdict.outcome;
    println!(
        "\nfield log: {}   twin: {}{}",
        request.report.verdict.outcome,
        replayed.verdict.outcome,
        if same { "   (the same)" } else { "" }
    );
    exit::OK
}

/// Two logs in two columns; `=` where a line of the left one is also in the right one.
fn side_by_side(left: (&str, &[String]), right: (&str, &[String])) {
    const WIDTH: usize = 64;
    let cut = |text: &str| -> String {
        let safe = terminal_safe(text);
        let mut shown: String = safe.chars().take(WIDTH).collect();
        if safe.chars().count() > WIDTH {
            shown.pop();
            shown.push('~');
        }
        shown
    };
    println!("  {:<WIDTH$} | {}", cut(left.0), cut(right.0));
    println!("  {:-<WIDTH$}-+-{:-<WIDTH$}", "", "");
    for row in 0..left.1.len().max(right.1.len()) {
        let l = left.1.get(row).map_or("", String::as_str);
        let r = right.1.get(row).map_or("", String::as_str);
        let mark = if !l.is_empty() && right.1.iter().any(|line| line == l) { '=' } else { ' ' };
        println!("{mark} {:<WIDTH$} | {}", cut(l), cut(r));
    }
}
