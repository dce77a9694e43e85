//! `otarig run` on twins, through the library and the binary: one JSON line per cell with every
//! contract field, the transcript with the boot log, evidence that quotes the transcript, the
//! expectation taken from the scenario, exit codes that follow the verdicts, the fleet summary
//! of the founding case, and ids that name nothing refused before anything runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use otarig::results::{Verdict, compare};
use otarig::run::{self, LabDirs, Plan, PlanError, RunEvent, RunOptions, Selection, WatchLimits};
use serde_json::Value;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOADED: &str = "Loaded app from partition at offset 0x10000";
const FIELDS: [&str; 7] = ["firmware", "scenario", "board", "expected", "observed", "verdict", "transcript"];

fn dirs() -> LabDirs {
    LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") }
}

fn selection(firmware: &[&str], scenarios: &[&str]) -> Selection {
    Selection {
        firmware: firmware.iter().map(ToString::to_string).collect(),
        scenarios: scenarios.iter().map(ToString::to_string).collect(),
        ..Selection::default()
    }
}

/// The lines of `DIR/results.jsonl`, parsed.
fn results(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "every line is terminated");
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Checks one result line against the contract and against its transcript; returns the verdict.
fn check_line(dir: &Path, line: &Value, firmware: &str, scenario: &str, expected: Value) -> String {
    for field in FIELDS {
        assert!(line.get(field).is_some(), "`{field}` missing in {line}");
    }
    assert_eq!((line["firmware"].as_str(), line["scenario"].as_str()), (Some(firmware), Some(scenario)));
    assert!(line["board"].as_str().unwrap().starts_with("twin-"), "{line}");
    assert_eq!(line["expected"], expected, "the scenario's expectation for {firmware}");

    let transcript = line["transcript"].as_str().unwrap();
    assert_eq!(transcript, format!("transcripts/{firmware}__{scenario}.log"));
    let bytes = std::fs::read(dir.join(transcript)).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(LOADED), "the boot log is in the transcript:\n{text}");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();

    let verdict = line["verdict"].as_str().unwrap().to_owned();
    let observed = &line["observed"];
    if verdict == "error" {
        assert!(observed.is_null() && line["error"].is_string(), "{line}");
        return verdict;
    }
    assert!(observed["outcome"].is_string(), "{line}");
    assert!(observed["reason"].is_string() || observed["reason"].is_null(), "{line}");
    for evidence in observed["evidence"].as_array().expect("evidence is an array") {
        let number = evidence["line"].as_u64().unwrap() as usize;
        let quoted = evidence["text"].as_str().unwrap();
        assert!(lines[number - 1].contains(quoted), "line {number} of the transcript is `{quoted}`");
    }
    // The verdict is the comparison of the two.
    let expected: Option<otarig::outcome::Outcome> = match &line["expected"] {
        Value::Null => None,
        value => Some(otarig::outcome::Outcome {
            outcome: serde_json::from_value(value["outcome"].clone()).unwrap(),
            reason: serde_json::from_value(value["reason"].clone()).unwrap(),
        }),
    };
    let observed = otarig::outcome::Outcome {
        outcome: serde_json::from_value(observed["outcome"].clone()).unwrap(),
        reason: serde_json::from_value(observed["reason"].clone()).unwrap(),
    };
    assert_eq!(compare(expected.as_ref(), &observed).as_str(), verdict, "{line}");
    verdict
}

#[test]
fn one_cell_through_the_library() {
    let out = TempDir::new("run-lib");
    let plan = Plan::new(&dirs(), &selection(&["dst-x3-idf3.2"], &["gts-chain"])).unwrap();
    assert_eq!(plan.cells.len(), 1);
    let options = RunOptions { limits: WatchLimits::new(Duration::from_secs(3)), twins: 1, ..RunOptions::new(&out.0) };
    let events = Mutex::new(Vec::new());
    let summary = run::run(&plan, &options, |event| {
        let name = match event {
            RunEvent::CellStarted { board, .. } => format!("started on {board}"),
            RunEvent::CellFinished { result, .. } => format!("finished: {}", result.verdict.as_str()),
            // A fresh twin: everything written but otadata, which erased flash already holds.
            RunEvent::Flashed { board, report, .. } => {
                let written: Vec<bool> = report.regions.iter().map(|r| r.written).collect();
                format!("flashed {board}: {written:?}")
            }
            other => format!("{other:?}"),
        };
        events.lock().unwrap().push(name);
    })
    .unwrap();

    let lines = results(&out.0);
    assert_eq!(lines.len(), 1);
    let expected = serde_json::json!({"outcome": "tls-verify", "reason": "untrusted"});
    let verdict = check_line(&out.0, &lines[0], "dst-x3-idf3.2", "gts-chain", expected);
    let flashed = "flashed twin-1: [true, true, false, true]".to_owned();
    assert_eq!(*events.lock().unwrap(), ["started on twin-1".to_owned(), flashed, format!("finished: {verdict}")]);
    assert_eq!(summary.total(), 1);
    assert_eq!(summary.results, out.0.join("results.jsonl"));
    let counted = match verdict.as_str() {
        "pass" => summary.pass,
        "fail" => summary.fail,
        "error" => summary.error,
        _ => summary.observed,
    };
    assert_eq!(counted, 1, "{summary:?}");
}

fn otarig(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap()
}

fn exit_code_for(verdicts: &[String]) -> i32 {
    if verdicts.iter().any(|v| v == "fail") {
        1
    } else if verdicts.iter().any(|v| v == "error") {
        3
    } else {
        0
    }
}

#[test]
fn cells_through_the_binary_with_exit_codes_that_follow_the_verdicts() {
    let out = TempDir::new("run-bin");
    let dir = out.0.to_str().unwrap();
    let output = otarig(&[
        "run",
        "--firmware",
        "dst-x3-idf3.2",
        "--scenario",
        "gts-chain",
        "--scenario",
        "scenarios/dst-cross-sign-rescue.toml",
        "--out",
        dir,
        "--timeout",
        "3",
        "--twins",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = results(&out.0);
    assert_eq!(lines.len(), 2, "{stdout}");
    let mut verdicts = Vec::new();
    for line in &lines {
        let (scenario, expected) = match line["scenario"].as_str().unwrap() {
            "gts-chain" => ("gts-chain", serde_json::json!({"outcome": "tls-verify", "reason": "untrusted"})),
            _ => ("dst-cross-sign-rescue", serde_json::json!({"outcome": "updated", "reason": null})),
        };
        verdicts.push(check_line(&out.0, line, "dst-x3-idf3.2", scenario, expected));
        assert!(matches!(line["board"].as_str(), Some("twin-1" | "twin-2")), "{line}");
    }
    assert_ne!(lines[0]["scenario"], lines[1]["scenario"]);
    assert_eq!(output.status.code(), Some(exit_code_for(&verdicts)), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("[")).count(), 2, "a progress line per cell:\n{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('\x1b') && !stderr.contains('\r'), "no progress bar off a terminal:\n{stderr}");
}

/// The founding case as the fleet summary tells it: `dst-x3-idf3.2` updates through the long
/// chain the day after DST Root CA X3 expired, is stranded by the short chain in 2024, and
/// updates again through the rescue chain; it never updated from Google, whose chain strands
/// nothing; the 404 is a fault, no certificate event.
#[test]
fn the_fleet_summary_tells_the_founding_case_in_the_terminal_and_the_page() {
    let out = TempDir::new("run-summary");
    let dir = out.0.to_str().unwrap();
    let mut args = vec!["run", "--firmware", "dst-x3-idf3.2", "--out", dir, "--timeout", "3", "--twins", "2"];
    for scenario in ["le-long-chain-2021", "le-short-chain-2024", "dst-cross-sign-rescue", "gts-chain", "http-404"] {
        args.extend(["--scenario", scenario]);
    }
    let output = otarig(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "every cell as expected:\n{stdout}");

    let lines = results(&out.0);
    let short = lines.iter().find(|l| l["scenario"] == "le-short-chain-2024").unwrap();
    assert_eq!(short["scenario_date"], "2024-02-15", "{short}");
    assert_eq!(short["scenario_tags"], serde_json::json!(["chain", "lets-encrypt"]));
    assert!(short["scenario_title"].as_str().unwrap().starts_with("The short chain as the default"));

    let (_, summary) = stdout.split_once("\nfleet: ").unwrap_or_else(|| panic!("no fleet summary:\n{stdout}"));
    let headline = "stranded since 2024-02-15 (le-short-chain-2024: tls-verify/untrusted); \
                    updates again through dst-cross-sign-rescue (2026-11-25)";
    for line in [
        format!("dst-x3-idf3.2  {headline}"),
        "  survives: 2021-10-01 le-long-chain-2021, 2026-11-25 dst-cross-sign-rescue".to_owned(),
        "  fails: 2024-02-15 le-short-chain-2024 (tls-verify/untrusted)".to_owned(),
        "  never updated from: google (1 event)".to_owned(),
    ] {
        assert!(summary.lines().any(|l| l == line), "`{line}` in the summary:\n{summary}");
    }
    assert!(!summary.contains("http-404"), "a fault is no event:\n{summary}");
    let (counts, fleet) = (stdout.find("5 cells: 5 pass, "), stdout.find("\nfleet: "));
    assert!(counts.is_some() && fleet > counts, "after the matrix's counts:\n{stdout}");

    let page = std::fs::read_to_string(out.0.join("report.html")).unwrap();
    let (_, fleet) = page.split_once("<section id=\"fleet\">").expect("the page's fleet section");
    let fleet = &fleet[..fleet.find("</section>").unwrap()];
    assert!(fleet.contains(headline) && fleet.contains("never updated from: google (1 event)"), "{fleet}");
    assert!(fleet.contains("title=\"Serve the expired DST cross-sign"), "{fleet}");
    assert!(!fleet.contains("http-404"), "{fleet}");
}

#[test]
fn ids_that_name_nothing_are_usage_errors_before_anything_runs() {
    let out = TempDir::new("run-usage");
    let dir = out.0.join("never");
    let dir = dir.to_str().unwrap();
    for args in [
        ["run", "--firmware", "no-such-firmware", "--scenario", "gts-chain", "--out", dir],
        ["run", "--firmware", "dst-x3-idf3.2", "--scenario", "no-such-scenario", "--out", dir],
    ] {
        let output = otarig(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: "), "{args:?}");
        assert!(!PathBuf::from(dir).exists(), "nothing written for {args:?}");
    }

    let unknown_firmware = Plan::new(&dirs(), &selection(&["no-such-firmware"], &[]));
    assert!(matches!(unknown_firmware, Err(PlanError::UnknownFirmware { .. })));
    let unknown_scenario = Plan::new(&dirs(), &selection(&[], &["no-such-scenario"]));
    assert!(matches!(unknown_scenario, Err(PlanError::UnknownScenario { .. })));
    // The default: every member of the fleet against every scenario.
    let all = Plan::new(&dirs(), &Selection::default()).unwrap();
    assert_eq!(all.cells.len(), all.fleet.members().count() * all.scenarios.len());
    assert!(all.cells.iter().all(|c| c.firmware != "v2.0.0"), "the update release is no row");
}

#[test]
fn verdict_names_are_the_contract() {
    let names =
        [Verdict::Pass, Verdict::Fail, Verdict::Error, Verdict::Observed].map(|v| serde_json::to_value(v).unwrap());
    assert_eq!(names, ["pass", "fail", "error", "observed"].map(Value::from));
}
