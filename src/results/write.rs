//! Writing `DIR/results.jsonl`: one whole line per cell, flushed as the cell ends.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{CellRecord, RESULTS_FILE};

/// `results.jsonl`, open for appending one line per cell.
pub struct ResultsFile {
    path: PathBuf,
    file: File,
    /// The length of the whole lines written, where a failed write is cut back to.
    len: u64,
}

impl ResultsFile {
    /// Creates (or empties) `dir/results.jsonl`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let path = dir.join(RESULTS_FILE);
        let file = File::create(&path)?;
        Ok(Self { path, file, len: 0 })
    }

    /// Opens `dir/results.jsonl` to add lines after those already there (created if missing).
    pub(crate) fn append_to(dir: &Path) -> io::Result<Self> {
        let path = dir.join(RESULTS_FILE);
        let file = File::options().append(true).create(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(Self { path, file, len })
    }

    /// The `results.jsonl` written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one cell's line and flushes it, so a reader sees each cell as it ends. A line
    /// that cannot be written whole (a full disk) is cut off again, as far as the file allows,
    /// so the file keeps only whole lines.
    pub(crate) fn append(&mut self, result: &CellRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(result).map_err(io::Error::other)?;
        line.push(b'\n');
        match self.file.write_all(&line).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(err) => {
                // Best effort: the error that matters is the write's.
                let _ = self.file.set_len(self.len);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Outcome, OutcomeClass, VerifyReason};
    use crate::results::{Observed, Verdict, compare, transcript_path};
    use crate::verdict::Evidence;

    fn expect(outcome: OutcomeClass, reason: Option<VerifyReason>) -> Outcome {
        Outcome { outcome, reason }
    }

    #[test]
    fn verdicts_compare_class_and_reason_when_one_is_expected() {
        let untrusted = Outcome::tls_verify(VerifyReason::Untrusted);
        let check = |expected: Option<Outcome>, observed: Outcome, verdict: Verdict| {
            assert_eq!(compare(expected.as_ref(), &observed), verdict, "{expected:?} vs {observed:?}");
        };
        check(Some(expect(OutcomeClass::TlsVerify, Some(VerifyReason::Untrusted))), untrusted, Verdict::Pass);
        check(Some(expect(OutcomeClass::TlsVerify, None)), untrusted, Verdict::Pass);
        check(Some(expect(OutcomeClass::TlsVerify, Some(VerifyReason::Expired))), untrusted, Verdict::Fail);
        check(Some(expect(OutcomeClass::Updated, None)), untrusted, Verdict::Fail);
        check(Some(expect(OutcomeClass::Updated, None)), Outcome::of(OutcomeClass::Updated), Verdict::Pass);
        check(Some(expect(OutcomeClass::Updated, None)), Outcome::of(OutcomeClass::Timeout), Verdict::Fail);
        check(None, Outcome::of(OutcomeClass::Timeout), Verdict::Observed);
    }

    #[test]
    fn a_result_line_has_every_contract_field() {
        let result = CellRecord {
            firmware: "dst-x3-idf3.2".into(),
            scenario: "gts-chain".into(),
            board: "twin-1".into(),
            expected: Some(expect(OutcomeClass::TlsVerify, Some(VerifyReason::Untrusted))),
            observed: Some(Observed {
                outcome: Outcome::tls_verify(VerifyReason::Untrusted),
                evidence: vec![Evidence { line: 3, text: "E (1) esp-tls: x".into() }],
            }),
            verdict: Verdict::Pass,
            transcript: transcript_path("dst-x3-idf3.2", "gts-chain"),
            error: None,
            duration_ms: 12,
            details: Default::default(),
            scenario_facts: Default::default(),
            other: Default::default(),
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
        let error = CellRecord { observed: None, verdict: Verdict::Error, error: Some("x".into()), ..result };
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            (&json["observed"], &json["verdict"], &json["error"]),
            (&serde_json::Value::Null, &"error".into(), &"x".into())
        );
    }
}
