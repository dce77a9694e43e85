//! Two runs compared cell by cell: what is new, what is gone, whose outcome or verdict changed,
//! and whether anything got worse (a cell that passed or was observed now fails or errs).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::outcome::{OutcomeClass, VerifyReason};
use crate::results::{CellKey, CellRecord, Verdict, short};

/// A cell's state in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CellState {
    /// The cell's verdict.
    pub verdict: Verdict,
    /// The observed class; `None` for `error` cells.
    pub outcome: Option<OutcomeClass>,
    /// The observed reason, for `tls-verify`.
    pub reason: Option<VerifyReason>,
}

impl CellState {
    fn of(cell: &CellRecord) -> Self {
        let observed = cell.observed.as_ref();
        Self {
            verdict: cell.verdict,
            outcome: observed.map(|o| o.outcome.outcome),
            reason: observed.and_then(|o| o.outcome.reason),
        }
    }

    /// `pass tls-verify/untrusted`, `error`.
    fn text(&self) -> String {
        match self.outcome {
            Some(outcome) => {
                format!("{} {}", self.verdict.as_str(), short(crate::outcome::Outcome { outcome, reason: self.reason }))
            }
            None => self.verdict.as_str().to_owned(),
        }
    }
}

/// How a cell differs between the runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Only in the new run.
    Added,
    /// Only in the old run.
    Removed,
    /// In both, with another outcome or verdict.
    Changed,
}

/// One cell that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CellChange {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
    /// Added, removed or changed.
    pub change: ChangeKind,
    /// The cell in the old run; `None` when it is new.
    pub old: Option<CellState>,
    /// The cell in the new run; `None` when it is gone.
    pub new: Option<CellState>,
    /// The outcome (class or reason) differs.
    pub outcome_changed: bool,
    /// The verdict differs (e.g. `pass` → `fail`).
    pub verdict_changed: bool,
    /// `pass` or `observed` before, `fail` or `error` now.
    pub worse: bool,
}

/// Every cell that differs, by firmware then scenario, and how many did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunDiff {
    /// The cells that differ.
    pub changes: Vec<CellChange>,
    /// Cells in both runs with the same outcome and verdict.
    pub unchanged: usize,
}

impl RunDiff {
    /// Some cell went from `pass`/`observed` to `fail`/`error`.
    pub fn worse(&self) -> bool {
        self.changes.iter().any(|c| c.worse)
    }

    /// One line per change, then a count line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            let tag = match change.change {
                _ if change.worse => "worse",
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
                ChangeKind::Changed => "changed",
            };
            let _ = write!(out, "{tag:<8} {} × {}: ", change.firmware, change.scenario);
            let _ = match (&change.old, &change.new) {
                (Some(old), Some(new)) => writeln!(out, "{} → {}", old.text(), new.text()),
                (None, Some(new)) => writeln!(out, "{}", new.text()),
                (Some(old), None) => writeln!(out, "was {}", old.text()),
                (None, None) => writeln!(out),
            };
        }
        let worse = self.changes.iter().filter(|c| c.worse).count();
        let _ = writeln!(out, "{} cells changed, {worse} worse; {} unchanged", self.changes.len(), self.unchanged);
        out
    }
}

/// Compares two runs' results (the last result of a cell counts).
pub fn diff_runs(old: &[CellRecord], new: &[CellRecord]) -> RunDiff {
    let by_key = |cells: &[CellRecord]| -> BTreeMap<CellKey, CellState> {
        cells.iter().map(|c| (c.key(), CellState::of(c))).collect()
    };
    let (old, new) = (by_key(old), by_key(new));
    let mut keys: Vec<&CellKey> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut diff = RunDiff::default();
    for key in keys {
        let (before, after) = (old.get(key).copied(), new.get(key).copied());
        let change = match (before, after) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            (Some(b), Some(a)) if b == a => {
                diff.unchanged += 1;
                continue;
            }
            _ => ChangeKind::Changed,
        };
        let both = before.zip(after);
        diff.changes.push(CellChange {
            firmware: key.firmware.clone(),
            scenario: key.scenario.clone(),
            change,
            old: before,
            new: after,
            outcome_changed: both.is_some_and(|(b, a)| (b.outcome, b.reason) != (a.outcome, a.reason)),
            verdict_changed: both.is_some_and(|(b, a)| b.verdict != a.verdict),
            worse: both.is_some_and(|(b, a)| !b.verdict.is_bad() && a.verdict.is_bad()),
        });
    }
    diff
}
