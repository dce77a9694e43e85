//! The run results contract: `DIR/results.jsonl`, one JSON object per cell, written and flushed
//! as each cell ends, and the comparison of what a scenario expected with what was observed.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::scenario::Expectation;
use crate::verdict::Evidence;

/// The results file's name inside the run's directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// The transcripts' folder inside the run's directory.
pub const TRANSCRIPTS_DIR: &str = "transcripts";

/// How a cell ended, compared with what its scenario expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellVerdict {
    /// The observed outcome is the expected one.
    Pass,
    /// The observed outcome differs from the expected one.
    Fail,
    /// The rig could not run the cell (flashing, the console, the server, the images).
    Error,
    /// Nothing was expected: the outcome is recorded, not judged.
    Observed,
}

impl CellVerdict {
    /// The stable kebab-case identifier.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Observed => "observed",
        }
    }
}

/// What the device was seen to do: the outcome and the lines that decided it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Lines of the transcript, numbered from 1 as `otarig replay` numbers them.
    pub evidence: Vec<Evidence>,
}

/// One line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellResult {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
    /// The device the cell ran on, e.g. `twin-1`.
    pub board: String,
    /// The scenario's expectation for this firmware, if it has one.
    pub expected: Option<Expectation>,
    /// `None` when the rig could not run the cell (`verdict` is then `error`).
    pub observed: Option<Observed>,
    pub verdict: CellVerdict,
    /// The console transcript, relative to the run's directory (`/`-separated).
    pub transcript: String,
    /// What went wrong in the rig, for `error` cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the whole cell: images, server, flashing, console.
    pub duration_ms: u64,
    /// What the report shows beside the transcript: the server's events, the chain it served
    /// and the device's clock (additions to the contract; absent when empty).
    #[serde(flatten)]
    pub details: crate::report::CellDetails,
}

/// Compares an expectation with an observed outcome: the class must match, and the reason too
/// when the expectation names one.
pub fn compare(expected: Option<&Expectation>, observed: &Outcome) -> CellVerdict {
    match expected {
        None => CellVerdict::Observed,
        Some(expected) => {
            let reason_ok = expected.reason.is_none() || expected.reason == observed.reason;
            if expected.outcome == observed.outcome && reason_ok { CellVerdict::Pass } else { CellVerdict::Fail }
        }
    }
}

/// The transcript's path for a cell, relative to the run's directory.
pub fn transcript_path(firmware: &str, scenario: &str) -> String {
    format!("{TRANSCRIPTS_DIR}/{firmware}__{scenario}.log")
}

/// `results.jsonl`, open for appending one line per cell.
pub struct ResultsFile {
    path: PathBuf,
    file: File,
}

impl ResultsFile {
    /// Creates (or empties) `dir/results.jsonl`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let path = dir.join(RESULTS_FILE);
        let file = File::create(&path)?;
        Ok(Self { path, file })
    }

    /// Opens `dir/results.jsonl` to add lines after those already there (created if missing).
    pub fn append_to(dir: &Path) -> io::Result<Self> {
        let path = dir.join(RESULTS_FILE);
        let file = File::options().append(true).create(true).open(&path)?;
        Ok(Self { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one cell's line and flushes it, so a reader sees each cell as it ends.
    pub fn append(&mut self, result: &CellResult) -> io::Result<()> {
        let mut line = serde_json::to_vec(result).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{OutcomeClass, VerifyReason};

    fn expect(outcome: OutcomeClass, reason: Option<VerifyReason>) -> Expectation {
        Expectation { outcome, reason }
    }

    #[test]
    fn verdicts_compare_class_and_reason_when_one_is_expected() {
        let untrusted = Outcome::tls_verify(VerifyReason::Untrusted);
        let check = |expected: Option<Expectation>, observed: Outcome, verdict: CellVerdict| {
            assert_eq!(compare(expected.as_ref(), &observed), verdict, "{expected:?} vs {observed:?}");
        };
        check(Some(expect(OutcomeClass::TlsVerify, Some(VerifyReason::Untrusted))), untrusted, CellVerdict::Pass);
        check(Some(expect(OutcomeClass::TlsVerify, None)), untrusted, CellVerdict::Pass);
        check(Some(expect(OutcomeClass::TlsVerify, Some(VerifyReason::Expired))), untrusted, CellVerdict::Fail);
        check(Some(expect(OutcomeClass::Updated, None)), untrusted, CellVerdict::Fail);
        check(Some(expect(OutcomeClass::Updated, None)), Outcome::of(OutcomeClass::Updated), CellVerdict::Pass);
        check(Some(expect(OutcomeClass::Updated, None)), Outcome::of(OutcomeClass::Timeout), CellVerdict::Fail);
        check(None, Outcome::of(OutcomeClass::Timeout), CellVerdict::Observed);
    }

    #[test]
    fn a_result_line_has_every_contract_field() {
        let result = CellResult {
            firmware: "dst-x3-idf3.2".into(),
            scenario: "gts-chain".into(),
            board: "twin-1".into(),
            expected: Some(expect(OutcomeClass::TlsVerify, Some(VerifyReason::Untrusted))),
            observed: Some(Observed {
                outcome: Outcome::tls_verify(VerifyReason::Untrusted),
                evidence: vec![Evidence { line: 3, text: "E (1) esp-tls: x".into() }],
            }),
            verdict: CellVerdict::Pass,
            transcript: transcript_path("dst-x3-idf3.2", "gts-chain"),
            error: None,
            duration_ms: 12,
            details: Default::default(),
        };
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "firmware": "dst-x3-idf3.2",
                "scenario": "gts-chain",
                "board": "twin-1",
                "expected": {"outcome": "tls-verify", "reason": "untrusted"},
                "observed": {"outcome": "tls-verify", "reason": "untrusted",
                             "evidence": [{"line": 3, "text": "E (1) esp-tls: x"}]},
                "verdict": "pass",
                "transcript": "transcripts/dst-x3-idf3.2__gts-chain.log",
                "duration_ms": 12,
            })
        );
        let error = CellResult { observed: None, verdict: CellVerdict::Error, error: Some("x".into()), ..result };
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            (&json["observed"], &json["verdict"], &json["error"]),
            (&serde_json::Value::Null, &"error".into(), &"x".into())
        );
    }
}
