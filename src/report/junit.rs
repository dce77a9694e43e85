//! JUnit XML for CI systems: one test suite for the run, one test case per cell
//! (`<firmware> × <scenario>`, class name the firmware), the transcript in its system-out.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::transcript::read_transcript;
use crate::results::{CellRecord, Counts, Verdict, short};

/// The JUnit file's name inside a run's directory.
pub(crate) const JUNIT_FILE: &str = "junit.xml";

/// The run as a JUnit report: `fail` cells are failures (expected vs observed), `error` cells
/// errors (what went wrong in the rig), `pass` and `observed` cells pass (`observed` marked by
/// a `verdict` property). Transcripts are read from `dir`.
pub(crate) fn junit_report(cells: &[CellRecord], dir: &Path) -> Report {
    let mut suite = TestSuite::new("otarig run");
    let mut total = Duration::ZERO;
    for cell in cells {
        let case = test_case(cell, dir);
        total += Duration::from_millis(cell.duration_ms);
        suite.add_test_case(case);
    }
    suite.set_time(total);
    suite.add_property(Property::new("cells", Counts::of(cells).to_string()));
    let mut report = Report::new("otarig");
    report.set_time(total);
    report.add_test_suite(suite);
    report
}

/// Writes `dir/junit.xml` for `cells`; returns its path.
pub fn write_junit(cells: &[CellRecord], dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join(JUNIT_FILE);
    let xml = junit_report(cells, dir).to_string().map_err(io::Error::other)?;
    fs::write(&path, xml)?;
    Ok(path)
}

fn test_case(cell: &CellRecord, dir: &Path) -> TestCase {
    let status = match cell.verdict {
        Verdict::Pass | Verdict::Observed => TestCaseStatus::success(),
        Verdict::Fail => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let expected = cell.expected.map_or_else(|| "nothing".to_owned(), short);
            status.set_message(xml(&format!("expected {expected}, observed {}", cell.short_outcome())));
            status.set_type("fail");
            if let Some(observed) = &cell.observed {
                let evidence: Vec<String> =
                    observed.evidence.iter().map(|e| format!("{:>6} | {}", e.line, e.text)).collect();
                status.set_description(xml(&evidence.join("\n")));
            }
            status
        }
        Verdict::Error => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(xml(cell.error.as_deref().unwrap_or("the rig could not run the cell")));
            status.set_type("error");
            status
        }
    };
    let mut case = TestCase::new(xml(&format!("{} × {}", cell.firmware, cell.scenario)), status);
    case.set_classname(xml(&cell.firmware));
    case.set_time(Duration::from_millis(cell.duration_ms));
    case.add_property(Property::new("verdict", cell.verdict.as_str()));
    case.add_property(Property::new("observed", xml(&cell.short_outcome())));
    if let Some(expected) = cell.expected {
        case.add_property(Property::new("expected", short(expected)));
    }
    case.add_property(Property::new("board", xml(&cell.board)));
    case.add_property(Property::new("transcript", xml(&cell.transcript)));
    let transcript = read_transcript(dir, &cell.transcript);
    let mut out = transcript.text();
    if let Some(missing) = &transcript.missing {
        out = missing.clone();
    } else if transcript.cut_bytes > 0 {
        out.push_str(&format!("\n[{} more bytes not included]", transcript.cut_bytes));
    }
    case.set_system_out(xml(&out));
    case
}

/// Text from a run (device output above all) as XML 1.0 can hold it.
fn xml(text: &str) -> String {
    super::neutral::xml_safe(text).into_owned()
}
