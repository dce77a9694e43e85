//! The README's `otarig replay` section says what the classifier does: its table of the
//! `esp_err_t` values an update can end with is checked line by line against a replay of each.

use otarig::replay::replay_bytes;
use otarig::verdict::esp_err::MEANINGS;

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));

/// `(name, outcome)` for every row of the table; "not a failure" rows have outcome `None`.
fn table() -> Vec<(String, Option<String>)> {
    let section = README.split("#### `esp_err_t` an update can end with").nth(1).expect("the esp_err_t table");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| esp_err_t"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_owned();
            let outcome = (cells[3] != "not a failure").then(|| cells[3].trim_matches('`').to_owned());
            (name, outcome)
        })
        .collect()
}

#[test]
fn every_esp_err_row_is_what_replay_says() {
    let rows = table();
    assert!(rows.len() >= 50, "only {} rows", rows.len());
    let mut wrong = Vec::new();
    for (name, outcome) in &rows {
        let log = format!("I (1) update_task: Starting OTA...\nE (2) update_task: download returned {name}\n");
        let got = replay_bytes(log.as_bytes()).verdict.outcome.to_string();
        let expected = outcome.clone().unwrap_or_else(|| "incomplete".to_owned());
        if got != expected {
            wrong.push(format!("{name}: README says {expected}, replay says {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_esp_err_the_classifier_knows_has_a_row() {
    let rows = table();
    for (value, _) in MEANINGS {
        let name = otarig::codes::esp_err_name(*value).expect("a named value");
        assert!(rows.iter().any(|(n, _)| n == name), "{name} has no row in the README");
    }
}
