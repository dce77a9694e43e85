//! `otarig replay FILE|-`: classify a captured UART log.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use otarig::replay::{ReplayReport, replay};
use otarig::report::neutral::terminal_safe;
use otarig::verdict::AttemptReport;

use super::{exit, explain};

pub const AFTER_HELP: &str = "\
Exit status: 0 when the log was classified (whatever the outcome), 2 when it could not be read.

With --match: the cells of the library (scenarios/ x firmware-images/) whose twin transcripts
end the same way, best first; the first use indexes the library on twins (kept under
target/otarig/match-index/, rebuilt when the library or the program changes). 3 when the
index cannot be built. --reproduce runs the best match again and shows both logs side by side.

Examples:
  otarig replay uart.log
  otarig replay --format json uart.log | jq .outcome
  cat uart.log | otarig replay -
  otarig replay field.log --match
  otarig replay field.log --reproduce                 the best match, again, on a twin
  otarig replay field.log --reproduce --config otarig.toml   ... on a board of the lab";

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The log to read, or `-` for standard input. Any format an ESP32 prints: ESP-IDF,
    /// Arduino-ESP32, ESPHome, with or without serial-monitor timestamps and colours.
    #[arg(value_name = "FILE|-")]
    input: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// List the library's cells whose twin transcripts end as this log does, best first.
    #[arg(long = "match", conflicts_with = "format")]
    find_match: bool,
    /// Run the best match again (on a twin, or a board of --config) and show both logs side by
    /// side. Implies --match.
    #[arg(long)]
    reproduce: bool,
    /// With --reproduce: the lab config whose boards run the cell (no twins).
    #[arg(long, value_name = "PATH", requires = "reproduce")]
    config: Option<PathBuf>,
    /// Cells listed by --match.
    #[arg(long, value_name = "N", default_value_t = super::field_match::DEFAULT_TOP)]
    top: usize,
    /// The scenarios of the library --match compares with (their pki/ folder too).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenarios: PathBuf,
    /// The fleet of the library --match compares with.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people: outcome, evidence, what it means.
    Text,
    /// One JSON object: `outcome`, `reason`, `evidence`, `attempts`, ...
    Json,
}

pub fn run(args: &ReplayArgs) -> u8 {
    if args.find_match || args.reproduce {
        return run_match(args);
    }
    let (name, result) = if args.input.as_os_str() == "-" {
        ("standard input".to_owned(), replay(io::stdin().lock()))
    } else {
        let name = args.input.display().to_string();
        let result = File::open(&args.input).and_then(replay);
        (name, result)
    };
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: cannot read {name}: {err}");
            return exit::USAGE;
        }
    };
    tracing::info!(lines = report.lines, attempts = report.verdict.attempts_total, "log replayed");
    let printed = match args.format {
        Format::Json => print_json(&report),
        Format::Text => print_text(&name, &report),
    };
    match printed {
        Ok(()) => exit::OK,
        // A closed pipe (`| head`) is not an error of ours.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(err) => {
            eprintln!("error: cannot write the result: {err}");
            exit::USAGE
        }
    }
}

/// `--match` / `--reproduce`: the log is held whole (at most an input's limit) to show its lines.
fn run_match(args: &ReplayArgs) -> u8 {
    const LIMIT: u64 = otarig::input::MAX_IMAGE;
    let (name, bytes) = if args.input.as_os_str() == "-" {
        ("standard input".to_owned(), otarig::input::read_capped_from(io::stdin().lock(), LIMIT))
    } else {
        (args.input.display().to_string(), otarig::input::read_capped(&args.input, LIMIT))
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("error: cannot read {name}: {err}");
            return exit::USAGE;
        }
    };
    let report = otarig::replay::replay_bytes(&bytes);
    super::field_match::run(&super::field_match::MatchRequest {
        name: &name,
        bytes: &bytes,
        report: &report,
        scenarios: &args.scenarios,
        fleet: &args.fleet,
        top: args.top,
        reproduce: args.reproduce.then_some(args.config.as_deref()),
    })
}

fn print_json(report: &ReplayReport) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, report)?;
    writeln!(out)
}

fn print_text(name: &str, report: &ReplayReport) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let verdict = &report.verdict;
    writeln!(out, "{}: {}", terminal_safe(name), verdict.outcome)?;
    if let Some(last) = verdict.attempts.last() {
        if verdict.attempts_total > 1 {
            writeln!(
                out,
                "decided by the last of {} attempts (lines {}-{})",
                verdict.attempts_total, last.lines[0], last.lines[1]
            )?;
        }
        print_evidence(&mut out, last)?;
        for code in &last.codes {
            let cause = code.cause.map(|cause| format!(" (caused by {cause})")).unwrap_or_default();
            writeln!(out, "code: {} {}{cause}", code.code, code.name.unwrap_or("(unnamed)"))?;
        }
    } else {
        writeln!(out, "no update, TLS connection or crash in {} lines", report.lines)?;
    }
    if verdict.attempts.len() > 1 {
        writeln!(out, "\nattempts:")?;
        let shown = verdict.attempts.len() as u64;
        if verdict.attempts_total > shown {
            writeln!(out, "  ({} earlier attempts not kept)", verdict.attempts_total - shown)?;
        }
        for attempt in &verdict.attempts {
            writeln!(out, "  lines {:>6}-{:<6} {}", attempt.lines[0], attempt.lines[1], attempt.outcome)?;
        }
    }
    if let Some(idf) = &report.idf_version {
        let how = if idf.exact { "printed" } else { "guessed" };
        writeln!(out, "\nESP-IDF {} ({how}: {}, line {})", terminal_safe(&idf.version), idf.basis, idf.line)?;
    }
    let explanation = explain::explain(verdict.outcome, verdict.attempts.last());
    writeln!(out, "\nWhat it means: {}", explanation.meaning)?;
    if let Some(fix) = explanation.fix {
        writeln!(out, "What usually fixes it: {fix}")?;
    }
    Ok(())
}

fn print_evidence(out: &mut impl Write, attempt: &AttemptReport) -> io::Result<()> {
    if attempt.evidence.is_empty() {
        return Ok(());
    }
    writeln!(out, "evidence:")?;
    for line in &attempt.evidence {
        writeln!(out, "  {:>6} | {}", line.line, terminal_safe(&line.text))?;
    }
    Ok(())
}
