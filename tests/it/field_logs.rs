//! The real field logs in `tests/data/field-logs/` classify as their README's table says, each
//! with a reviewed snapshot of its events and verdict. The logs the README holds out (kept out
//! of the classifier's development, to measure it on pastes it was not tuned on) are checked
//! by tests of their own.

use std::path::Path;

use otarig::outcome::{Outcome, OutcomeClass as C};
use otarig::replay::replay_bytes;

use crate::common::replay_render::render;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/field-logs");

/// A row of the README's table: the file and its expected outcome as written
/// (`tls-verify / hostname`, without the note in parentheses).
struct Row {
    file: String,
    expected: String,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(DIR).join("README.md")).expect("field-logs README")
}

fn rows() -> Vec<Row> {
    readme()
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let file = cells.get(1).filter(|f| f.ends_with(".log"))?;
            let expected = cells.get(3)?;
            let expected = expected.split(" (").next().unwrap_or(expected).trim();
            Some(Row { file: (*file).to_owned(), expected: expected.to_owned() })
        })
        .collect()
}

/// The files listed under `### Held out`.
fn held_out() -> Vec<String> {
    let readme = readme();
    let section = readme.split("### Held out").nth(1).expect("a Held out section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("- "))
        .filter_map(|item| item.split_whitespace().next())
        .filter(|file| file.ends_with(".log"))
        .map(str::to_owned)
        .collect()
}

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(DIR).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every row of `rows` whose log does not classify as written, as messages.
fn misclassified(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| {
            let got = replay_bytes(&read(&row.file)).verdict.outcome.to_string();
            (got != row.expected).then(|| format!("{}: expected {}, got {got}", row.file, row.expected))
        })
        .collect()
}

fn development_rows() -> Vec<Row> {
    let held = held_out();
    rows().into_iter().filter(|row| !held.contains(&row.file)).collect()
}

fn held_out_rows() -> Vec<Row> {
    let held = held_out();
    rows().into_iter().filter(|row| held.contains(&row.file)).collect()
}

#[test]
fn every_log_in_the_directory_has_a_row() {
    let rows = rows();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") {
            assert!(rows.iter().any(|row| row.file == name), "{name} has no row in the README");
        }
    }
    for file in held_out() {
        assert!(rows.iter().any(|row| row.file == file), "held-out {file} has no row");
    }
}

#[test]
fn every_development_log_classifies_as_documented() {
    let rows = development_rows();
    assert!(rows.len() >= 60, "only {} development logs", rows.len());
    let wrong = misclassified(&rows);
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), rows.len(), wrong.join("\n"));
}

#[test]
fn every_held_out_log_classifies_as_documented() {
    let rows = held_out_rows();
    assert_eq!(rows.len(), 20);
    let wrong = misclassified(&rows);
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), rows.len(), wrong.join("\n"));
}

#[test]
fn development_log_snapshots() {
    for row in development_rows() {
        insta::assert_snapshot!(row.file.trim_end_matches(".log"), render(&read(&row.file)));
    }
}

#[test]
fn held_out_log_snapshots() {
    for row in held_out_rows() {
        insta::assert_snapshot!(row.file.trim_end_matches(".log"), render(&read(&row.file)));
    }
}

#[test]
fn evidence_quotes_the_deciding_lines_with_their_numbers() {
    let bytes = read("FL02.log");
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let report = replay_bytes(&bytes);
    let evidence = &report.verdict.evidence;
    assert!(!evidence.is_empty());
    for line in evidence {
        assert_eq!(lines[(line.line - 1) as usize], line.text);
    }
    assert!(evidence.iter().any(|e| e.text.contains("returned -0x2700")));
    assert!(evidence.iter().any(|e| e.text.contains("not correctly signed by the trusted CA")));
}

#[test]
fn the_cut_second_reason_is_kept_as_truncated() {
    let report = replay_bytes(&read("FL01.log"));
    let flags = &report.verdict.attempts.last().unwrap().verify_flags;
    assert_eq!(flags.len(), 2);
    assert!(!flags[0].truncated);
    assert!(flags[1].truncated);
}

#[test]
fn misleading_certificate_verified_does_not_hide_the_protocol_error() {
    let report = replay_bytes(&read("FL12.log"));
    assert_eq!(report.verdict.outcome, Outcome::of(C::TlsProtocol));
    assert!(report.verdict.evidence.iter().any(|e| e.text.contains("-0x7200")));
}

#[test]
fn esphome_wrapped_bundle_failure_names_the_bundle() {
    let report = replay_bytes(&read("FL06.log"));
    let last = report.verdict.attempts.last().unwrap();
    assert!(last.certificate_bundle);
    assert!(report.formats.esphome);
}

#[test]
fn an_esp_err_name_and_the_applications_own_line_are_both_evidence() {
    // `esp_ota_begin failed (ESP_ERR_OTA_PARTITION_CONFLICT)`, then `OTA: OTA Update failed`.
    let report = replay_bytes(&read("FL119.log"));
    assert_eq!(report.verdict.outcome, Outcome::of(C::Unknown));
    let lines: Vec<u64> = report.verdict.evidence.iter().map(|e| e.line).collect();
    assert!(lines.ends_with(&[5, 6]), "{lines:?}");
    assert_eq!(report.verdict.attempts.last().unwrap().codes[0].name, Some("ESP_ERR_OTA_PARTITION_CONFLICT"));
}

#[test]
fn pasted_logs_are_reported_as_pasted() {
    assert!(replay_bytes(&read("FL109.log")).formats.pasted);
    assert!(replay_bytes(&read("FL115.log")).formats.pasted);
    assert!(!replay_bytes(&read("FL02.log")).formats.pasted);
}
