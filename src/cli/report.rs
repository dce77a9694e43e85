//! `otarig report show|merge|diff`: a run directory's matrix and reports again, shards joined,
//! two runs compared.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use otarig::report::{self, DetailsByCell, MergeError, ReportError, diff_runs, merge_runs, render_matrix};
use otarig::results::{self, CellRecord, Counts, ResultsError, read_results};

use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
A run directory is what `otarig run --out DIR` leaves: DIR/results.jsonl (one JSON object per
cell) and DIR/transcripts/. `show` and `merge` write DIR/junit.xml and DIR/report.html (one
self-contained page: click a cell for its transcript and deciding lines). Colours only on a
terminal, and never with NO_COLOR set.

Exit status: show and merge 0 when every cell passed or had nothing expected, 1 a cell failed,
3 a cell could not be run (and none failed); diff 0 when no cell got worse, 1 when a cell that
passed (or was observed) now fails or errs; 2 usage errors, a missing or malformed results.jsonl.

Examples:
  otarig report show target/otarig/runs/20261125T163012Z
  otarig report merge shard-1 shard-2 shard-3 --out merged
  otarig report diff nightly/yesterday nightly/today
  otarig report diff OLD NEW --format json | jq '.changes[] | select(.worse)'";

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Print the matrix and fleet summary of a run and write its junit.xml and report.html again.
    Show {
        /// The run directory.
        dir: PathBuf,
    },
    /// Join runs (shards) into one: one result per cell, the last given wins; transcripts copied.
    Merge {
        /// The run directories, in order.
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// The merged run's directory (created; may be one of the inputs).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// What changed from one run to another, cell by cell.
    Diff {
        /// The earlier run directory.
        old: PathBuf,
        /// The later run directory.
        new: PathBuf,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

pub fn run(args: &ReportArgs) -> u8 {
    match &args.command {
        ReportCommand::Show { dir } => show(dir),
        ReportCommand::Merge { dirs, out } => merge(dirs, out),
        ReportCommand::Diff { old, new, format } => diff(old, new, *format),
    }
}

/// Colours when standard output is a terminal and `NO_COLOR` is unset or empty.
pub(super) fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The fleet summary after a matrix, set off by a blank line; nothing when the results carry
/// no scenario's date.
pub(super) fn print_fleet_summary(cells: &[CellRecord], colour: bool) {
    let summary = report::render_summary(cells, colour);
    if !summary.is_empty() {
        print!("\n{summary}");
    }
}

fn show(dir: &Path) -> u8 {
    match report::write_reports(dir, &DetailsByCell::new()) {
        Ok(written) => {
            print!("{}", render_matrix(&written.cells, colour()));
            print_fleet_summary(&written.cells, colour());
            println!("reports: {}, {}", written.junit.display(), written.html.display());
            verdict_code(&written.cells)
        }
        Err(ReportError::Results(err)) => results_error(&err),
        Err(err) => {
            eprintln!("error: {err}");
            exit::USAGE
        }
    }
}

fn merge(dirs: &[PathBuf], out: &Path) -> u8 {
    let merged = match merge_runs(dirs, out) {
        Ok(merged) => merged,
        Err(MergeError::Results(err)) => return results_error(&err),
        Err(err) => {
            eprintln!("error: {err}");
            return exit::USAGE;
        }
    };
    for missing in &merged.missing_transcripts {
        eprintln!("warning: no transcript {}", missing.display());
    }
    let written = match report::write_reports(out, &DetailsByCell::new()) {
        Ok(written) => written,
        Err(ReportError::Results(err)) => return results_error(&err),
        Err(err) => {
            eprintln!("error: {err}");
            return exit::USAGE;
        }
    };
    print!("{}", render_matrix(&written.cells, colour()));
    print_fleet_summary(&written.cells, colour());
    println!(
        "merged {} result lines from {} run{} into {} cells: {}",
        merged.lines_read,
        dirs.len(),
        if dirs.len() == 1 { "" } else { "s" },
        merged.cells.len(),
        out.join(results::RESULTS_FILE).display()
    );
    println!("reports: {}, {}", written.junit.display(), written.html.display());
    verdict_code(&merged.cells)
}

fn diff(old: &Path, new: &Path, format: OutputFormat) -> u8 {
    let read = |dir: &Path| read_results(dir).map_err(|err| results_error(&err));
    let (old_cells, new_cells) = match (read(old), read(new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let diff = diff_runs(&old_cells, &new_cells);
    match format {
        OutputFormat::Text => print!("{}", diff.to_text()),
        OutputFormat::Json => {
            let json = serde_json::json!({
                "old": old.display().to_string(),
                "new": new.display().to_string(),
                "worse": diff.worse(),
                "unchanged": diff.unchanged,
                "changes": diff.changes,
            });
            println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
        }
    }
    if diff.worse() { exit::FAIL } else { exit::OK }
}

/// `otarig run`'s exit code for the same verdicts.
fn verdict_code(cells: &[CellRecord]) -> u8 {
    let counts = Counts::of(cells);
    if counts.fail > 0 {
        exit::FAIL
    } else if counts.error > 0 {
        exit::INFRA
    } else {
        exit::OK
    }
}

fn results_error(err: &ResultsError) -> u8 {
    eprintln!("error: {err}");
    let hint = match err {
        ResultsError::Read { .. } => "name a directory made by `otarig run --out DIR`",
        ResultsError::Malformed { .. } => {
            "each line of results.jsonl is one cell's JSON object, as `otarig run` writes it"
        }
    };
    eprintln!("hint: {hint}");
    exit::USAGE
}
