//! Reports of an `otarig run`: what a run directory's `results.jsonl` and transcripts say, for
//! people and for CI systems.
//!
//! - [`matrix`]: firmware × scenario as terminal text ([`render_matrix`]);
//! - `summary`: per firmware, the certificate events it survives and those it fails, and
//!   since when it is stranded ([`fleet_summary`], [`render_summary`]);
//! - `junit`: `DIR/junit.xml` ([`write_junit`]);
//! - `html`: `DIR/report.html`, one self-contained file ([`write_html`]);
//! - `merge`: shards into one run directory ([`merge_runs`]);
//! - `diff`: two runs cell by cell ([`diff_runs`]).
//!
//! At the end of a run, [`write_reports`] reads the results back and writes both files:
//!
//! ```no_run
//! # use otarig::report::{self, DetailsByCell};
//! # let out = std::path::Path::new("target/otarig/runs/x");
//! let written = report::write_reports(out, &DetailsByCell::new())?;
//! print!("{}", report::render_matrix(&written.cells, false));
//! # Ok::<(), report::ReportError>(())
//! ```

pub(crate) mod diff;
pub(crate) mod grid;
pub(crate) mod html;
pub(crate) mod junit;
pub mod matrix;
pub(crate) mod merge;
pub mod neutral;
pub(crate) mod summary;
pub(crate) mod transcript;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::results::{CellDetails, CellKey, CellRecord, ResultsError, read_results};
pub use diff::{CellChange, CellState, ChangeKind, RunDiff, diff_runs};
pub(crate) use html::HTML_FILE;
pub use html::{render_html, write_html};
pub(crate) use junit::JUNIT_FILE;
pub use junit::write_junit;
pub use matrix::render_matrix;
pub use merge::{MergeError, Merged, merge_runs};
pub use summary::{EventResult, FAMILIES, FirmwareSummary, NOT_EVENTS, fleet_summary, render_summary};

/// Details supplied by the caller, by cell; they take the place of what a result line carries.
pub type DetailsByCell = HashMap<CellKey, CellDetails>;

/// The files [`write_reports`] wrote, and the cells they show.
#[derive(Debug)]
pub struct WrittenReports {
    /// One result per cell (the last line of a cell wins), in the order cells first appeared.
    pub cells: Vec<CellRecord>,
    /// `junit.xml` in the run's directory.
    pub junit: PathBuf,
    /// `report.html` in the run's directory.
    pub html: PathBuf,
}

/// A run directory whose reports could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run's `results.jsonl` cannot be read.
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

/// Reads `dir/results.jsonl` and writes `dir/junit.xml` and `dir/report.html` from it.
/// `details` adds server events and served chains by cell (empty: what the results carry).
pub fn write_reports(dir: &Path, details: &DetailsByCell) -> Result<WrittenReports, ReportError> {
    let cells = crate::results::dedupe(read_results(dir)?);
    let junit = write_junit(&cells, dir).map_err(|source| ReportError::Write { path: dir.join(JUNIT_FILE), source })?;
    let html =
        write_html(&cells, dir, details).map_err(|source| ReportError::Write { path: dir.join(HTML_FILE), source })?;
    Ok(WrittenReports { cells, junit, html })
}
