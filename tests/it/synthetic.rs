//! Logs written from ESP-IDF and Arduino-ESP32 source strings, one per firmware generation and
//! outcome (`tests/data/synthetic/`, listed with their expected outcomes in `expected.tsv`).
//! Each must classify as listed, and its events and verdict are an insta snapshot.

use std::path::Path;

use otarig::console::events_of;
use otarig::outcome::Outcome;
use otarig::verdict::judge;

use crate::common::replay_render::render;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synthetic");

struct Case {
    path: String,
    outcome: String,
    reason: Option<String>,
}

fn cases() -> Vec<Case> {
    let table = std::fs::read_to_string(Path::new(DIR).join("expected.tsv")).expect("expected.tsv");
    table
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "expected.tsv: {line:?}");
            Case {
                path: fields[0].to_owned(),
                outcome: fields[1].to_owned(),
                reason: (fields[2] != "-").then(|| fields[2].to_owned()),
            }
        })
        .collect()
}

fn name_of(outcome: &Outcome) -> (String, Option<String>) {
    (outcome.outcome.as_str().to_owned(), outcome.reason.map(|r| r.as_str().to_owned()))
}

#[test]
fn every_synthetic_log_classifies_as_listed() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} synthetic logs", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(Path::new(DIR).join(&case.path)).expect(&case.path);
        let verdict = judge(&events_of(&bytes));
        let got = name_of(&verdict.outcome);
        if got != (case.outcome.clone(), case.reason.clone()) {
            wrong
                .push(format!("{}: expected {} {:?}, got {} {:?}", case.path, case.outcome, case.reason, got.0, got.1));
        }
    }
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn every_synthetic_log_is_listed() {
    let listed: Vec<String> = cases().into_iter().map(|c| c.path).collect();
    for generation in std::fs::read_dir(DIR).unwrap() {
        let generation = generation.unwrap().path();
        if !generation.is_dir() {
            continue;
        }
        for log in std::fs::read_dir(&generation).unwrap() {
            let log = log.unwrap().path();
            let relative = log.strip_prefix(DIR).unwrap().to_string_lossy().into_owned();
            assert!(listed.contains(&relative), "{relative} is not in expected.tsv");
        }
    }
}

#[test]
fn synthetic_log_snapshots() {
    for case in cases() {
        let bytes = std::fs::read(Path::new(DIR).join(&case.path)).unwrap();
        let name = case.path.trim_end_matches(".log").replace('/', "__");
        insta::assert_snapshot!(name, render(&bytes));
    }
}
