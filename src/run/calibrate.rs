//! Calibration: every cell of a plan on a real board and on a twin, side by side, and every cell
//! where the two disagree (outcome class or reason). The board side is the run itself
//! (`DIR/results.jsonl`, `DIR/transcripts/`); the twin side runs in `DIR/twin/`; the comparison
//! goes to `DIR/calibration.jsonl`, one line per cell.
//!
//! A twin is only worth its speed while it prints what a board prints; calibration is how a lab
//! finds out where it does not.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::lab::{DeviceSpec, LabConfig};
use crate::outcome::Outcome;
use crate::results::{CellKey, CellRecord, ResultsError, dedupe, read_results};
use crate::run::{Plan, RunError, RunEvent, RunOptions, RunSummary, run};

/// The comparison's file in the run's directory.
pub(crate) const CALIBRATION_FILE: &str = "calibration.jsonl";
/// The twin side's run directory, inside the run's directory.
pub(crate) const TWIN_SIDE_DIR: &str = "twin";

/// One line of `calibration.jsonl`: a cell as the board and the twin ended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CalibrationLine {
    /// The cell's firmware id.
    pub firmware: String,
    /// The cell's scenario id.
    pub scenario: String,
    /// The board the cell ran on (empty when none could run it).
    pub board: String,
    /// `null` when the rig could not run the cell on a board.
    pub board_observed: Option<Outcome>,
    /// `null` when the rig could not run the cell on a twin.
    pub twin_observed: Option<Outcome>,
    /// Both sides observed the same outcome class and reason.
    pub agree: bool,
}

impl CalibrationLine {
    /// A cell's line; the sides agree when both observed an outcome and the outcomes (class
    /// and reason) are equal.
    pub fn new(
        firmware: &str,
        scenario: &str,
        board: &str,
        board_observed: Option<Outcome>,
        twin_observed: Option<Outcome>,
    ) -> Self {
        let agree = board_observed.is_some() && board_observed == twin_observed;
        Self {
            firmware: firmware.to_owned(),
            scenario: scenario.to_owned(),
            board: board.to_owned(),
            board_observed,
            twin_observed,
            agree,
        }
    }

    /// Both sides observed an outcome, and they differ: the twin is wrong about this cell (or
    /// the board's lab is).
    pub(crate) fn disagrees(&self) -> bool {
        self.board_observed.is_some() && self.twin_observed.is_some() && !self.agree
    }
}

/// What a calibration found.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The board side (the run's own results).
    pub boards: RunSummary,
    /// The twin side (`DIR/twin/`).
    pub twins: RunSummary,
    /// One per cell of the plan, in plan order.
    pub lines: Vec<CalibrationLine>,
    /// `DIR/calibration.jsonl`.
    pub path: PathBuf,
}

impl Calibration {
    /// Cells whose sides observed different outcomes.
    pub fn disagreements(&self) -> impl Iterator<Item = &CalibrationLine> {
        self.lines.iter().filter(|line| line.disagrees())
    }
}

/// A calibration that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// No lab config, or one without a `[[board]]`.
    #[error("calibration needs a real board: the lab config names none")]
    NoBoard,
    /// One of the two runs could not go on.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A side's `results.jsonl` cannot be read back.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// `calibration.jsonl` cannot be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs `plan` on the boards of `options.lab` (into `options.out`) and, at the same time, on
/// twins (the lab's own, else `options.twins` of them; into `options.out/twin/`), then compares
/// each cell's outcomes and writes `calibration.jsonl`.
pub fn calibrate(
    plan: &Plan,
    options: &RunOptions,
    on_event: impl Fn(RunEvent<'_>) + Sync,
) -> Result<Calibration, CalibrateError> {
    let lab = options.lab.as_ref().filter(|lab| lab.boards().next().is_some()).ok_or(CalibrateError::NoBoard)?;
    let side = |board: bool| LabConfig {
        devices: lab.devices.iter().filter(|d| matches!(d, DeviceSpec::Board(_)) == board).cloned().collect(),
        ..lab.clone()
    };
    let mut twins_lab = side(false);
    if twins_lab.devices.is_empty() {
        twins_lab.devices = LabConfig::twins_only(options.twins.max(1)).devices;
    }
    let board_options = RunOptions { lab: Some(side(true)), ..options.clone() };
    let twin_out = options.out.join(TWIN_SIDE_DIR);
    let twin_options = RunOptions { out: twin_out.clone(), lab: Some(twins_lab), ..options.clone() };
    let (boards, twins) = std::thread::scope(|scope| {
        let twins = scope.spawn(|| run(plan, &twin_options, &on_event));
        let boards = run(plan, &board_options, &on_event);
        (boards, twins.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let (boards, twins) = (boards?, twins?);

    let by_cell = |records: Vec<CellRecord>| -> HashMap<CellKey, CellRecord> {
        dedupe(records).into_iter().map(|record| (record.key(), record)).collect()
    };
    let on_boards = by_cell(read_results(&options.out)?);
    let on_twins = by_cell(read_results(&twin_out)?);
    let observed = |record: Option<&CellRecord>| record.and_then(|r| r.observed.as_ref()).map(|o| o.outcome);
    let lines: Vec<CalibrationLine> = plan
        .cells
        .iter()
        .map(|cell| {
            let scenario = &plan.scenarios[cell.scenario].id;
            let key = CellKey::new(&cell.firmware, scenario);
            let (board, twin) = (on_boards.get(&key), on_twins.get(&key));
            let board_id = board.map_or("", |r| r.board.as_str());
            CalibrationLine::new(&cell.firmware, scenario, board_id, observed(board), observed(twin))
        })
        .collect();

    let path = options.out.join(CALIBRATION_FILE);
    let output = |source| CalibrateError::Output { path: path.clone(), source };
    let mut text = Vec::new();
    for line in &lines {
        serde_json::to_writer(&mut text, line).map_err(|e| output(e.into()))?;
        text.push(b'\n');
    }
    std::fs::File::create(&path).and_then(|mut file| file.write_all(&text)).map_err(output)?;
    Ok(Calibration { boards, twins, lines, path })
}

/// The cells where board and twin disagree, as a table for people (empty when none do).
pub fn disagreement_table(lines: &[CalibrationLine]) -> String {
    let shown = |outcome: &Option<Outcome>| outcome.map_or_else(|| "no outcome".to_owned(), |o| o.to_string());
    let header = ["firmware", "scenario", "board", "on the board", "on the twin"].map(String::from);
    let rows: Vec<[String; 5]> = lines
        .iter()
        .filter(|line| line.disagrees())
        .map(|line| {
            [
                line.firmware.clone(),
                line.scenario.clone(),
                line.board.clone(),
                shown(&line.board_observed),
                shown(&line.twin_observed),
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        table.push_str(cells.join("  ").trim_end());
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{OutcomeClass, VerifyReason};

    fn line(board: Option<Outcome>, twin: Option<Outcome>) -> CalibrationLine {
        CalibrationLine::new("dst-x3-idf3.2", "gts-chain", "esp32-a", board, twin)
    }

    #[test]
    fn sides_agree_on_class_and_reason() {
        let untrusted = Outcome::tls_verify(VerifyReason::Untrusted);
        let expired = Outcome::tls_verify(VerifyReason::Expired);
        let updated = Outcome::of(OutcomeClass::Updated);
        let check = |board, twin, agree, disagrees| {
            let line = line(board, twin);
            assert_eq!((line.agree, line.disagrees()), (agree, disagrees), "{board:?} vs {twin:?}");
        };
        check(Some(untrusted), Some(untrusted), true, false);
        check(Some(updated), Some(updated), true, false);
        check(Some(untrusted), Some(expired), false, true);
        check(Some(untrusted), Some(updated), false, true);
        // The rig could not run one side: no agreement, but nothing the twin got wrong either.
        check(None, Some(updated), false, false);
        check(Some(updated), None, false, false);
        check(None, None, false, false);
    }

    #[test]
    fn a_line_has_the_contract_fields() {
        let json = serde_json::to_value(line(Some(Outcome::of(OutcomeClass::Updated)), None)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "firmware": "dst-x3-idf3.2",
                "scenario": "gts-chain",
                "board": "esp32-a",
                "board_observed": {"outcome": "updated", "reason": null},
                "twin_observed": null,
                "agree": false,
            })
        );
    }

    #[test]
    fn the_table_lists_only_disagreements() {
        let untrusted = Outcome::tls_verify(VerifyReason::Untrusted);
        let updated = Outcome::of(OutcomeClass::Updated);
        assert_eq!(disagreement_table(&[line(Some(updated), Some(updated)), line(None, Some(updated))]), "");
        let lines = [
            line(Some(updated), Some(updated)),
            CalibrationLine::new("isrg-x1-idf4.4", "le-short-chain", "esp32-b", Some(untrusted), Some(updated)),
        ];
        assert_eq!(
            disagreement_table(&lines),
            "firmware        scenario        board    on the board            on the twin\n\
             isrg-x1-idf4.4  le-short-chain  esp32-b  tls-verify / untrusted  updated\n"
        );
    }
}
