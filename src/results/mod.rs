//! The run results contract, `DIR/results.jsonl`: one JSON object per cell, written and
//! flushed as each cell ends. This module owns the line's types ([`CellRecord`]) and is the
//! only place that writes ([`ResultsFile`]), reads ([`read_results`]) or resumes
//! (`resume`) the file: the runner writes through it, every report (matrix,
//! JUnit, HTML, merge, diff, calibration) reads through it.

mod details;
mod read;
pub(crate) mod resume;
mod write;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use details::{CellDetails, ChainCert, ScenarioFacts};
pub(crate) use read::dedupe;
pub use read::{ResultsError, read_results};
pub use write::ResultsFile;

use crate::outcome::Outcome;
use crate::verdict::Evidence;

/// The transcripts' folder inside the run's directory.
pub(crate) const TRANSCRIPTS_DIR: &str = "transcripts";

/// The results file's name inside a run's directory.
pub const RESULTS_FILE: &str = "results.jsonl";

/// Whether `dir` holds a run's results: a `results.jsonl` with at least one byte.
pub(crate) fn holds_results(dir: &std::path::Path) -> bool {
    std::fs::metadata(dir.join(RESULTS_FILE)).is_ok_and(|m| m.is_file() && m.len() > 0)
}

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
    pub(crate) const fn is_bad(self) -> bool {
        matches!(self, Self::Fail | Self::Error)
    }
}

/// What the device was seen to do (the `observed` field): the outcome and the lines of the
/// transcript that decided it, numbered from 1 as `otarig replay` numbers them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The outcome class and reason.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The lines that decided it.
    pub evidence: Vec<Evidence>,
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
    pub observed: Option<Observed>,
    /// `pass`, `fail`, `error` or `observed`: the expectation held against the observation.
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
    /// The scenario's title, date and tags, when the results carry them.
    #[serde(flatten)]
    pub scenario_facts: ScenarioFacts,
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
    pub(crate) fn short_outcome(&self) -> String {
        match &self.observed {
            Some(observed) => short(observed.outcome),
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
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
}

impl CellKey {
    /// The cell of `firmware` × `scenario`.
    pub fn new(firmware: &str, scenario: &str) -> Self {
        Self { firmware: firmware.into(), scenario: scenario.into() }
    }
}

/// Compares an expectation with an observed outcome: the class must match, and the reason too
/// when the expectation names one.
pub fn compare(expected: Option<&Outcome>, observed: &Outcome) -> Verdict {
    match expected {
        None => Verdict::Observed,
        Some(expected) => {
            let reason_ok = expected.reason.is_none() || expected.reason == observed.reason;
            if expected.outcome == observed.outcome && reason_ok { Verdict::Pass } else { Verdict::Fail }
        }
    }
}

/// The transcript's path for a cell, relative to the run's directory.
pub(crate) fn transcript_path(firmware: &str, scenario: &str) -> String {
    format!("{TRANSCRIPTS_DIR}/{firmware}__{scenario}.log")
}

/// Cells per verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Cells whose outcome is the expected one.
    pub pass: usize,
    /// Cells whose outcome is not the expected one.
    pub fail: usize,
    /// Cells the rig could not run.
    pub error: usize,
    /// Cells without an expectation.
    pub observed: usize,
}

impl Counts {
    /// Counts `cells`.
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

    /// All cells counted.
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
