//! `--resume DIR`: what an earlier run in DIR finished, so that only the rest runs.
//!
//! A cell counts as finished when `results.jsonl` has a line for it whose verdict is not
//! `error` (`pass`, `fail`, `observed`: the device was judged). An `error` line means the rig
//! did not get to judge the device, so the cell runs again and its old line is removed; lines
//! that do not parse (a line cut short when a machine went down) are removed too. Everything
//! else stays as it was, lines of cells outside the current selection included, and new
//! results are appended: the file keeps one line per cell.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Deserialize;

use super::{RESULTS_FILE, ResultsFile, Verdict};

/// What an earlier run left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Earlier {
    /// Finished cells, `(firmware, scenario)` → verdict.
    pub finished: HashMap<(String, String), Verdict>,
    /// `error` lines removed, their cells to run again.
    pub(crate) errors_removed: usize,
    /// Lines that did not parse, removed.
    pub unreadable: usize,
}

impl Earlier {
    pub fn verdict(&self, firmware: &str, scenario: &str) -> Option<Verdict> {
        self.finished.get(&(firmware.to_owned(), scenario.to_owned())).copied()
    }
}

/// The fields of a result line that resuming needs.
#[derive(Deserialize)]
struct Recorded {
    firmware: String,
    scenario: String,
    verdict: Verdict,
}

/// Reads `dir/results.jsonl` (missing: nothing finished), removes the lines of cells to run
/// again (`error` lines of cells `rerun` names, and unreadable lines) and opens the file for
/// appending.
pub fn resume(dir: &Path, rerun: impl Fn(&str, &str) -> bool) -> io::Result<(ResultsFile, Earlier)> {
    let path = dir.join(RESULTS_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err),
    };
    let mut earlier = Earlier::default();
    let mut kept = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // A line without its end was being written when the run stopped.
        let recorded = match serde_json::from_slice::<Recorded>(body) {
            Ok(recorded) if line.ends_with(b"\n") => recorded,
            _ => {
                earlier.unreadable += 1;
                continue;
            }
        };
        if recorded.verdict == Verdict::Error && rerun(&recorded.firmware, &recorded.scenario) {
            earlier.errors_removed += 1;
            continue;
        }
        if recorded.verdict != Verdict::Error {
            earlier.finished.insert((recorded.firmware, recorded.scenario), recorded.verdict);
        }
        kept.extend_from_slice(line);
    }
    if kept.len() != text.len() {
        // Replaced whole, so an interruption leaves the old file or the new one.
        let partial = dir.join(format!("{RESULTS_FILE}.partial"));
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&kept)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
    }
    Ok((ResultsFile::append_to(dir)?, earlier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(firmware: &str, scenario: &str, verdict: &str) -> String {
        format!(
            "{{\"firmware\":\"{firmware}\",\"scenario\":\"{scenario}\",\"board\":\"twin-1\",\"verdict\":\"{verdict}\"}}\n"
        )
    }

    #[test]
    fn finished_cells_stay_error_and_cut_lines_go() {
        let dir = std::env::temp_dir().join(format!("otarig-resume-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = [
            line("a", "x", "pass"),
            line("a", "y", "error"),
            line("b", "x", "fail"),
            line("b", "y", "observed"),
            line("c", "x", "error"),
        ];
        let text = format!("{}\n{}", lines.concat(), &lines[0][..20]);
        std::fs::write(dir.join(RESULTS_FILE), text).unwrap();

        // `c` is not in the selection: its error line stays.
        let (_, earlier) = resume(&dir, |firmware, _| firmware != "c").unwrap();
        assert_eq!(earlier.verdict("a", "x"), Some(Verdict::Pass));
        assert_eq!(earlier.verdict("b", "x"), Some(Verdict::Fail));
        assert_eq!(earlier.verdict("b", "y"), Some(Verdict::Observed));
        assert_eq!((earlier.verdict("a", "y"), earlier.verdict("c", "x")), (None, None));
        assert_eq!((earlier.finished.len(), earlier.errors_removed, earlier.unreadable), (3, 1, 1));
        let after = std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap();
        assert_eq!(after, [&lines[0], &lines[2], &lines[3], &lines[4]].map(String::as_str).concat());

        // Nothing there yet: nothing finished, the file is made.
        std::fs::remove_file(dir.join(RESULTS_FILE)).unwrap();
        let (_, earlier) = resume(&dir, |_, _| true).unwrap();
        assert_eq!(earlier, Earlier::default());
        assert!(dir.join(RESULTS_FILE).is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
