//! Reading `DIR/results.jsonl` back: one [`CellRecord`] per line, errors located at
//! `file:line:column`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{CellKey, CellRecord, RESULTS_FILE};

/// A `results.jsonl` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error reading it.
        source: io::Error,
    },
    /// A line is not a cell result.
    #[error("{path}:{line}:{column}: not a cell result: {}", without_position(source))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What JSON parsing found.
        source: serde_json::Error,
    },
}

/// serde_json's message without the " at line L column C" it appends: a malformed result
/// names its place as `file:line:column`.
fn without_position(err: &serde_json::Error) -> String {
    let full = err.to_string();
    full.rfind(" at line ").map_or(full.as_str(), |at| &full[..at]).to_owned()
}

/// Reads `dir/results.jsonl`.
pub fn read_results(dir: &Path) -> Result<Vec<CellRecord>, ResultsError> {
    let path = dir.join(RESULTS_FILE);
    let text = fs::read_to_string(&path).map_err(|source| ResultsError::Read { path: path.clone(), source })?;
    parse_results(&text, &path)
}

/// Parses the text of a results file; `path` is only used to name errors. Blank lines are
/// skipped; any other line must be one cell result.
pub(crate) fn parse_results(text: &str, path: &Path) -> Result<Vec<CellRecord>, ResultsError> {
    let mut cells = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<CellRecord>(line).map_err(|source| ResultsError::Malformed {
            path: path.to_owned(),
            line: index + 1,
            column: source.column().max(1),
            source,
        })?;
        cells.push(record);
    }
    Ok(cells)
}

/// One result per cell, the last one read winning, in the order cells first appeared.
pub(crate) fn dedupe(cells: impl IntoIterator<Item = CellRecord>) -> Vec<CellRecord> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
