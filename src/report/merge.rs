//! Shards into one run: results of several run directories, one per cell (the last read wins),
//! with their transcripts copied beside them.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::transcript::is_inside;
use crate::results::{CellRecord, RESULTS_FILE, ResultsError, dedupe, read_results};

/// What a merge wrote.
#[derive(Debug)]
pub struct Merged {
    /// The merged results, one per cell, in the order cells first appeared.
    pub cells: Vec<CellRecord>,
    /// Result lines read from all inputs.
    pub lines_read: usize,
    /// Transcripts named by a result but not found (or outside their run's directory).
    pub missing_transcripts: Vec<PathBuf>,
}

/// A merge that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A run's `results.jsonl` cannot be read.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// A report cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error writing it.
        source: io::Error,
    },
}

/// Merges the run directories `inputs`, in order, into `out`: `out/results.jsonl` holds one
/// line per cell (a later input's result replaces an earlier one's), `out/transcripts/` the
/// transcripts of the results kept. Every input is read before anything is written, so a bad
/// one leaves `out` as it was; `out` may be one of the inputs.
pub fn merge_runs(inputs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let mut all: Vec<(usize, CellRecord)> = Vec::new();
    for (index, dir) in inputs.iter().enumerate() {
        all.extend(read_results(dir)?.into_iter().map(|cell| (index, cell)));
    }
    let lines_read = all.len();
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| MergeError::Write { path, source }
    };
    fs::create_dir_all(out).map_err(write_err(out))?;

    let sources: std::collections::HashMap<_, _> = all.iter().map(|(index, cell)| (cell.key(), *index)).collect();
    let cells = dedupe(all.into_iter().map(|(_, cell)| cell));
    let mut missing_transcripts = Vec::new();
    for cell in &cells {
        let from_dir = &inputs[sources[&cell.key()]];
        let from = from_dir.join(&cell.transcript);
        if !is_inside(&cell.transcript) || !from.is_file() {
            missing_transcripts.push(from);
            continue;
        }
        let to = out.join(&cell.transcript);
        if same_file(&from, &to) {
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        fs::copy(&from, &to).map_err(write_err(&to))?;
    }

    let path = out.join(RESULTS_FILE);
    let mut text = Vec::new();
    for cell in &cells {
        serde_json::to_writer(&mut text, cell)
            .map_err(|e| MergeError::Write { path: path.clone(), source: e.into() })?;
        text.push(b'\n');
    }
    let tmp = out.join(format!(".{RESULTS_FILE}.merging"));
    let mut file = fs::File::create(&tmp).map_err(write_err(&tmp))?;
    file.write_all(&text).and_then(|()| file.sync_all()).map_err(write_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(write_err(&path))?;
    Ok(Merged { cells, lines_read, missing_transcripts })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
