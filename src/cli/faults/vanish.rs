//! `otarig faults port-vanish`: a board's serial port vanishing in the middle of a cell.

use clap::Args;
use otarig::faults::vanish::{PortVanishCampaign, PortVanishEvent, PortVanishReport, run_port_vanish};
use otarig::run::{RunEvent, Selection};

use super::scratch::Scratch;
use super::{CampaignArgs, exit, finish, seconds};

pub const AFTER_HELP: &str = "\
Runs the cells (--firmware and --scenario as for `otarig run`; default: all) on boards, and one
board's serial port vanishes in the middle of one of its cells, as a USB hub drops a board. The
run must end that cell as the rig's error (never an outcome of the firmware), let the board
leave the run and run the rest on the other boards, and keep every result: results.jsonl read
back whole, one valid line per cell.

Without a lab config the boards are --boards twins reached through the serial backend, as a
lab's boards are (each on a pseudo-terminal named by a link, as udev names a USB serial device);
the chosen twin's port vanishes after a seeded number of bytes of its chosen cell: its
pseudo-terminal closes, its link goes. With --config, a board with a `power` command is switched
off a seeded time into its chosen cell (a hub port switched off drops its USB device), and on
again after the run; the config needs two boards or more.

Exit status: 0 the port vanished and every requirement held, 1 one did not, 2 usage or lab files
in error, 3 the port never vanished (the board did not reach the cell), 130 stopped by Ctrl-C.

Examples:
  otarig faults port-vanish --firmware dst-x3-idf3.2 --firmware isrg-x1-idf3.2 --tag founding
  otarig faults port-vanish --firmware isrg-x1-idf3.2 --boards 3 --seed 9 --format json
  otarig faults port-vanish --config /etc/otarig/otarig.toml --tag founding";

#[derive(Debug, Args)]
pub struct PortVanishArgs {
    /// A firmware manifest id (repeat for more; default: every member of the fleet).
    #[arg(long, value_name = "ID")]
    firmware: Vec<String>,
    /// A scenario id or a path to a .toml (repeat for more; default: every scenario).
    #[arg(long, value_name = "ID")]
    scenario: Vec<String>,
    /// Only scenarios with this tag (repeat: scenarios with any of them).
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// Twins standing in for boards, without a lab config (at least 2).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u64).range(2..=16))]
    boards: u64,
    #[command(flatten)]
    campaign: CampaignArgs,
}

pub fn run(args: &PortVanishArgs) -> u8 {
    let scratch = Scratch::new();
    let options = match args.campaign.options(scratch.path().to_owned()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let campaign = PortVanishCampaign {
        selection: Selection {
            firmware: args.firmware.clone(),
            scenarios: args.scenario.clone(),
            tags: args.tag.clone(),
            shard: None,
        },
        boards: args.boards as usize,
        seed: args.campaign.seed,
    };
    let bar = crate::cli::run::progress_bar(0);
    if let Err(err) = crate::cli::run::stop_on_ctrl_c(&options.stop, &bar) {
        eprintln!("warning: Ctrl-C will not stop the campaign cleanly: {err}");
    }
    let keep = args.campaign.out.as_deref();
    let ran = run_port_vanish(&args.campaign.dirs(), &campaign, &options, keep, |event| match event {
        PortVanishEvent::Planned { point, cells, boards } => {
            bar.set_length(cells as u64);
            let at = match (point.after_bytes, point.after_ms) {
                (Some(bytes), _) => format!("after {bytes} bytes of"),
                (_, Some(ms)) => format!("{} into", seconds(ms)),
                _ => "in".to_owned(),
            };
            bar.suspend(|| {
                eprintln!(
                    "port vanish: {cells} cells on {}; {}'s port vanishes {at} its cell {}, seed {}",
                    boards.join(", "),
                    point.board,
                    point.cell,
                    args.campaign.seed
                );
            });
        }
        PortVanishEvent::Run(RunEvent::CellFinished { done, total, result, .. }) => {
            bar.inc(1);
            if result.observed.is_none() {
                let error = result.error.as_deref().unwrap_or_default();
                bar.suspend(|| {
                    eprintln!(
                        "[{done}/{total}] ERROR {} x {} on {}: {error}",
                        result.firmware, result.scenario, result.board
                    );
                });
            }
        }
        PortVanishEvent::Run(RunEvent::BoardLeft { board, why }) => {
            bar.suspend(|| eprintln!("board {board} left the run: {why}"));
        }
        PortVanishEvent::Run(_) => {}
    });
    bar.finish_and_clear();
    finish(ran, args.campaign.format, text_report, exit_code)
}

/// 0 the port vanished and everything held, 1 something did not, 3 it never vanished.
fn exit_code(report: &PortVanishReport) -> u8 {
    if report.checks.iter().any(|check| !check.held) && report.vanished {
        exit::FAIL
    } else if report.stopped {
        exit::INTERRUPTED
    } else if !report.vanished {
        exit::INFRA
    } else {
        exit::OK
    }
}

fn text_report(report: &PortVanishReport) -> String {
    let point = &report.point;
    let mut text = format!(
        "port vanish: {}'s port, its cell {}, seed {}: {}\n",
        point.board,
        point.cell,
        report.seed,
        match (&report.hit, report.vanished) {
            (Some(hit), true) => format!("vanished during {hit}"),
            (None, true) => "vanished".to_owned(),
            (_, false) => "never vanished (the board did not get to the cell)".to_owned(),
        }
    );
    for board in &report.boards {
        let name = if board.board.is_empty() { "(no device)" } else { &board.board };
        text.push_str(&format!(
            "  {name:<12} {} pass, {} fail, {} error, {} observed\n",
            board.pass, board.fail, board.error, board.observed
        ));
    }
    for check in &report.checks {
        text.push_str(&format!("{} {}: {}\n", if check.held { "ok  " } else { "FAIL" }, check.what, check.found));
    }
    text.push_str(&format!("{} cells in {}\n", report.cells, seconds(report.wall_ms)));
    if let Some(kept) = &report.kept {
        text.push_str(&format!("the run's results.jsonl and its error cells' transcripts: {}\n", kept.display()));
    }
    text
}
