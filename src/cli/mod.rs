//! The command line: the only place that prints, explains and chooses exit codes.

mod boards;
mod explain;
mod faults;
mod field_match;
mod fleet;
mod inspect;
mod lab;
mod logging;
mod pki;
mod predict;
mod replay;
mod report;
mod rescue;
mod run;
mod scenario;
mod serve;
mod transplant;
mod twin;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `--format` of the commands whose two outputs need no more words: text for people, JSON
/// for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The process's exit codes, a contract documented in the README ("Exit status" for `replay`,
/// the table under `otarig run` for the runner, the last paragraph of `otarig rescue`, the one
/// under "Fault campaigns" for `faults`). Every command exits [`OK`](exit::OK) or
/// [`USAGE`](exit::USAGE); `run`, `rescue` and `faults` use the others too (and `lab check`,
/// `report` and `replay --match` the ones their sections name).
pub mod exit {
    /// The work was done, whatever it found (for `replay`: the log was classified, whatever the
    /// outcome; for `run`: every cell `pass` or `observed`; for `rescue`: every firmware has a
    /// rescue; for `faults`: every point held).
    pub const OK: u8 = 0;
    /// `run`: a cell `fail` (its observed outcome is not the expected one); with `--strict`,
    /// also a cell `observed`; with `--calibrate`, a cell where board and twin disagree.
    /// `rescue`: a firmware no chain rescues.
    /// `faults`: a point did not hold (a cut that left no working image, a run that lost a
    /// result after a port vanished, a trial whose device did not come back to its update).
    pub const FAIL: u8 = 1;
    /// A usage error, or input that cannot be read or is in error (the message names the file);
    /// for `run`, also a directory that is another run's or holds results without `--resume`.
    /// clap's own usage errors exit with the same code.
    pub const USAGE: u8 = 2;
    /// `run`: the rig could not run a cell (flashing, console, server) and no cell failed, or
    /// the results could not be written. `rescue`: the rig could not run a twin cell, and every
    /// firmware has a rescue. `faults`: the rig could not run a point and none failed (or the
    /// port to vanish never did).
    pub const INFRA: u8 = 3;
    /// `run`, `faults`: stopped by Ctrl-C (SIGINT), as a shell reports a command killed by it
    /// (128 + 2).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "otarig",
    version,
    about = "Hardware-in-the-loop test rig for ESP32 HTTPS over-the-air updates",
    long_about = "otarig reads what ESP32 boards print during HTTPS OTA updates and says, with \
                  evidence, how each update ended: updated, rolled back, or which failure \
                  (certificate rejected and why, TLS, network, HTTP, image, crash).",
    after_help = "Examples:\n  \
                  otarig replay uart.log                 classify a captured UART log\n  \
                  otarig replay --format json uart.log   the same, as one JSON object\n  \
                  idf.py monitor | otarig replay -       classify a log from standard input\n\n\
                  Logging: -v / -vv for more, -q for errors only; RUST_LOG overrides both."
)]
struct Cli {
    /// More diagnostics on standard error (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on standard error.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify a captured UART log: outcome, reason, the lines that decided, what it means.
    #[command(after_help = replay::AFTER_HELP)]
    Replay(replay::ReplayArgs),
    /// The serial ports on this host, each with the [[board]] table for otarig.toml.
    #[command(after_help = boards::AFTER_HELP)]
    Boards(boards::BoardsArgs),
    /// The lab config (otarig.toml): check it and this host before a run.
    #[command(after_help = lab::AFTER_HELP)]
    Lab(lab::LabArgs),
    /// The fleet's firmware manifests: list them, build images for the twin.
    #[command(after_help = fleet::AFTER_HELP)]
    Fleet(fleet::FleetArgs),
    /// Inspect an ESP32 image: segments, checksum and hash, app descriptor, trusted roots, URLs.
    #[command(after_help = inspect::AFTER_HELP)]
    Inspect(inspect::InspectArgs),
    /// The lab certificate authorities: list, generate, export.
    #[command(after_help = pki::AFTER_HELP)]
    Pki(pki::PkiArgs),
    /// How each firmware would judge a certificate chain, offline; when it stops accepting it.
    #[command(after_help = predict::AFTER_HELP)]
    Predict(predict::PredictArgs),
    /// Which chains a server you control can still send so each firmware updates; chain files.
    #[command(after_help = rescue::AFTER_HELP)]
    Rescue(rescue::RescueArgs),
    /// Scenario files: check them, show the chain they serve.
    #[command(after_help = scenario::AFTER_HELP)]
    Scenario(scenario::ScenarioArgs),
    /// Serve a scenario over HTTPS: its exact chain, the image, its fault; events live.
    #[command(after_help = serve::AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// Put a lab root in a production image in place of a real one: same length, resealed.
    #[command(after_help = transplant::AFTER_HELP)]
    Transplant(transplant::TransplantArgs),
    /// The ESP32 twin as a serial device on a pseudo-terminal or an RFC 2217 port: flash it, watch it boot.
    #[command(after_help = twin::AFTER_HELP)]
    Twin(twin::TwinArgs),
    /// Run firmware x scenario cells on twins: flash, serve, watch, judge; results as JSON lines.
    #[command(after_help = run::AFTER_HELP)]
    Run(run::RunArgs),
    /// Reports of runs: the matrix, junit.xml and report.html again; shards merged; two runs diffed.
    #[command(after_help = report::AFTER_HELP)]
    Report(report::ReportArgs),
    /// Fault campaigns: power cuts, a serial port vanishing, the update server killed or stalled.
    #[command(after_help = faults::AFTER_HELP)]
    Faults(faults::FaultsArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    let code = match cli.command {
        Command::Replay(args) => replay::run(&args),
        Command::Boards(args) => boards::run(&args),
        Command::Lab(args) => lab::run(&args),
        Command::Pki(args) => pki::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Rescue(args) => rescue::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Fleet(args) => fleet::run(&args),
        Command::Scenario(args) => scenario::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Transplant(args) => transplant::run(&args),
        Command::Twin(args) => twin::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Faults(args) => faults::run(&args),
    };
    ExitCode::from(code)
}
