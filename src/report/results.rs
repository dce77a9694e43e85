//! Reading `DIR/results.jsonl` back: one [`CellRecord`] per line, errors located at
//! `file:line:column`. Every report (matrix, JUnit, HTML, merge, diff) reads through here.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::details::CellDetails;
use crate::outcome::{Outcome, OutcomeClass, VerifyReason};

/// The results file's name inside a run's directory.
pub const RESULTS_FILE: &str = "results.jsonl";

/// How a cell ended, compared with what its scenario expected (the `verdict` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The observed outcome is the expected one.
    Pass,
    /// The observed outcome differs from the expected one.
    Fail,
    /// The rig could not run the cell.
    Error,
    /// Nothing was expected: the outcome is recorded, not judged.
    Observed,
}

impl Verdict {
    /// The stable kebab-case identifier.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Observed => "observed",
        }
    }

    /// `fail` or `error`: the cell needs someone's attention.
    pub const fn is_bad(self) -> bool {
        matches!(self, Self::Fail | Self::Error)
    }
}

/// A line of the transcript quoted as evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceLine {
    /// Counted from 1, as `otarig replay` counts.
    pub line: u64,
    /// As printed, without terminal escape codes.
    pub text: String,
}

/// What the device was seen to do (the `observed` field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRecord {
    pub outcome: OutcomeClass,
    #[serde(default)]
    pub reason: Option<VerifyReason>,
    pub evidence: Vec<EvidenceLine>,
}

impl ObservedRecord {
    /// The class with its reason.
    pub fn outcome(&self) -> Outcome {
        Outcome { outcome: self.outcome, reason: self.reason }
    }
}

/// One line of `results.jsonl`, as the run results contract describes it. Fields the contract
/// does not name yet are kept in [`CellRecord::other`], so a merge passes them on unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
    /// Where the cell ran, e.g. `twin-1`.
    pub board: String,
    /// The scenario's expectation for this firmware, if it has one.
    pub expected: Option<Outcome>,
    /// `None` when the rig could not run the cell.
    pub observed: Option<ObservedRecord>,
    pub verdict: Verdict,
    /// The console transcript, relative to the run's directory.
    pub transcript: String,
    /// What went wrong in the rig, for `error` cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the whole cell.
    pub duration_ms: u64,
    /// Server events and the served chain, when the results carry them.
    #[serde(flatten)]
    pub details: CellDetails,
    /// Any other field, kept as read.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CellRecord {
    /// The cell's key: firmware and scenario.
    pub fn key(&self) -> CellKey {
        CellKey::new(&self.firmware, &self.scenario)
    }

    /// The observed outcome in short form (`tls-verify/untrusted`), or `error`.
    pub fn short_outcome(&self) -> String {
        match &self.observed {
            Some(observed) => short(observed.outcome()),
            None => "error".into(),
        }
    }
}

/// An outcome in short form: `updated`, `tls-verify/untrusted`.
pub fn short(outcome: Outcome) -> String {
    match outcome.reason {
        Some(reason) => format!("{}/{}", outcome.outcome, reason),
        None => outcome.outcome.to_string(),
    }
}

/// A cell of the matrix: firmware × scenario.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub firmware: String,
    pub scenario: String,
}

impl CellKey {
    pub fn new(firmware: &str, scenario: &str) -> Self {
        Self { firmware: firmware.into(), scenario: scenario.into() }
    }
}

/// A `results.jsonl` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}:{column}: not a cell result: {message}")]
    Malformed { path: PathBuf, line: usize, column: usize, message: String },
}

/// Reads `dir/results.jsonl`.
pub fn read_results(dir: &Path) -> Result<Vec<CellRecord>, ResultsError> {
    let path = dir.join(RESULTS_FILE);
    let text = fs::read_to_string(&path).map_err(|source| ResultsError::Read { path: path.clone(), source })?;
    parse_results(&text, &path)
}

/// Parses the text of a results file; `path` is only used to name errors. Blank lines are
/// skipped; any other line must be one cell result.
pub fn parse_results(text: &str, path: &Path) -> Result<Vec<CellRecord>, ResultsError> {
    let mut cells = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<CellRecord>(line).map_err(|err| {
            let full = err.to_string();
            // serde_json appends " at line L column C"; the position is given separately.
            let message = full.rfind(" at line ").map_or(full.as_str(), |at| &full[..at]).to_owned();
            ResultsError::Malformed { path: path.to_owned(), line: index + 1, column: err.column().max(1), message }
        })?;
        cells.push(record);
    }
    Ok(cells)
}

/// One result per cell, the last one read winning, in the order cells first appeared.
pub fn dedupe(cells: impl IntoIterator<Item = CellRecord>) -> Vec<CellRecord> {
    let mut slots: HashMap<CellKey, usize> = HashMap::new();
    let mut kept: Vec<CellRecord> = Vec::new();
    for cell in cells {
        match slots.get(&cell.key()) {
            Some(&slot) => kept[slot] = cell,
            None => {
                slots.insert(cell.key(), kept.len());
                kept.push(cell);
            }
        }
    }
    kept
}

/// Cells per verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub observed: usize,
}

impl Counts {
    pub fn of(cells: &[CellRecord]) -> Self {
        let mut counts = Self::default();
        for cell in cells {
            match cell.verdict {
                Verdict::Pass => counts.pass += 1,
                Verdict::Fail => counts.fail += 1,
                Verdict::Error => counts.error += 1,
                Verdict::Observed => counts.observed += 1,
            }
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.error + self.observed
    }
}

impl std::fmt::Display for Counts {
    /// `90 cells: 19 pass, 0 fail, 0 error, 71 observed`, as `otarig run` ends.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cells: {} pass, {} fail, {} error, {} observed",
            self.total(),
            self.pass,
            self.fail,
            self.error,
            self.observed
        )
    }
}

#[cfg(unix)]
impl From<&crate::run::CellResult> for CellRecord {
    /// A result the runner holds in memory, as it would be read back from its line.
    fn from(result: &crate::run::CellResult) -> Self {
        let verdict = match result.verdict {
            crate::run::CellVerdict::Pass => Verdict::Pass,
            crate::run::CellVerdict::Fail => Verdict::Fail,
            crate::run::CellVerdict::Error => Verdict::Error,
            crate::run::CellVerdict::Observed => Verdict::Observed,
        };
        Self {
            firmware: result.firmware.clone(),
            scenario: result.scenario.clone(),
            board: result.board.clone(),
            expected: result.expected.map(|e| Outcome { outcome: e.outcome, reason: e.reason }),
            observed: result.observed.as_ref().map(|o| ObservedRecord {
                outcome: o.outcome.outcome,
                reason: o.outcome.reason,
                evidence: o.evidence.iter().map(|e| EvidenceLine { line: e.line, text: e.text.clone() }).collect(),
            }),
            verdict,
            transcript: result.transcript.clone(),
            error: result.error.clone(),
            duration_ms: result.duration_ms,
            details: result.details.clone(),
            other: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"firmware":"a","scenario":"s","board":"twin-1","expected":null,"observed":{"outcome":"tls-verify","reason":"untrusted","evidence":[{"line":3,"text":"x"}]},"verdict":"observed","transcript":"transcripts/a__s.log","duration_ms":5}"#;

    #[test]
    fn a_contract_line_reads_and_writes_back_the_same() {
        let cells = parse_results(&format!("{LINE}\n\n"), Path::new("r.jsonl")).unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].short_outcome(), "tls-verify/untrusted");
        let back: Value = serde_json::to_value(&cells[0]).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(LINE).unwrap());
    }

    #[test]
    fn unknown_fields_are_kept_and_details_read() {
        let line = LINE.replace(
            r#""duration_ms":5"#,
            r#""duration_ms":5,"shard":"1/2","server_events":["tls: handshake"],"device_clock":5"#,
        );
        let cells = parse_results(&line, Path::new("r.jsonl")).unwrap();
        assert_eq!(cells[0].other.get("shard"), Some(&Value::from("1/2")));
        assert_eq!(cells[0].details.server_events, ["tls: handshake"]);
        assert_eq!(cells[0].details.device_clock, Some(5));
        assert!(!cells[0].other.contains_key("server_events"));
    }

    #[test]
    fn a_bad_line_is_located() {
        let text = format!("{LINE}\n{}\n", LINE.replace(r#""verdict":"observed""#, r#""verdict":"maybe""#));
        let err = parse_results(&text, Path::new("r.jsonl")).unwrap_err();
        assert!(matches!(err, ResultsError::Malformed { line: 2, .. }), "{err:?}");
    }
}
