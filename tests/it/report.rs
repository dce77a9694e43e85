//! Reports of a run directory written here by hand: JUnit XML read back with quick-junit, the
//! terminal matrix (a reviewed snapshot; colours only when asked, and never with NO_COLOR on a
//! terminal), the HTML escaping, the fleet summary in both, merging shards, diffing runs, and
//! results files that are missing or malformed, through the library and `otarig report`.

use std::path::Path;
use std::process::{Command, Output};

use otarig::report::{self, ChangeKind, DetailsByCell, diff_runs, render_matrix};
use otarig::results::{CellDetails, ChainCert, ResultsError, Verdict, read_results};
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use serde_json::{Value, json};

use crate::common;

use common::TempDir;

/// One result line as `otarig run` writes it, and the transcript it names.
struct Cell {
    firmware: &'static str,
    scenario: &'static str,
    expected: Value,
    observed: Value,
    verdict: &'static str,
    error: Option<&'static str>,
    transcript: &'static str,
}

const UNTRUSTED_LOG: &str = "ets Jun  8 2016 00:22:57\r\n\r\n\x1b[0;31mE (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700\x1b[0m\r\n\x1b[0;32mI (7513) esp-tls: Failed to verify peer certificate!\x1b[0m\r\n";
const UPDATED_LOG: &str = "I (5317) esp_https_ota: Writing to partition subtype 16 at offset 0x110000\r\nI (531) boot: Loaded app from partition at offset 0x110000\r\n";
const EXPIRED_LOG: &str = "I (100) esp-tls: verification info: ! The certificate validity has expired\r\n";

fn untrusted() -> Value {
    json!({"outcome": "tls-verify", "reason": "untrusted",
           "evidence": [{"line": 3, "text": "E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700"},
                        {"line": 4, "text": "I (7513) esp-tls: Failed to verify peer certificate!"}]})
}

fn updated() -> Value {
    json!({"outcome": "updated", "reason": null,
           "evidence": [{"line": 2, "text": "I (531) boot: Loaded app from partition at offset 0x110000"}]})
}

fn expired() -> Value {
    json!({"outcome": "tls-verify", "reason": "expired",
           "evidence": [{"line": 1, "text": "I (100) esp-tls: verification info: ! The certificate validity has expired"}]})
}

fn cell(firmware: &'static str, scenario: &'static str, verdict: &'static str, observed: Value) -> Cell {
    let expected = match verdict {
        "observed" => Value::Null,
        _ => json!({"outcome": "tls-verify", "reason": "untrusted"}),
    };
    let transcript = match observed["outcome"].as_str() {
        Some("updated") => UPDATED_LOG,
        _ if observed["reason"] == "expired" => EXPIRED_LOG,
        _ => UNTRUSTED_LOG,
    };
    Cell { firmware, scenario, expected, observed, verdict, error: None, transcript }
}

fn error_cell(firmware: &'static str, scenario: &'static str) -> Cell {
    Cell {
        firmware,
        scenario,
        expected: json!({"outcome": "updated", "reason": null}),
        observed: Value::Null,
        verdict: "error",
        error: Some("flashing: no answer from the ROM loader"),
        transcript: "",
    }
}

/// Writes `dir/results.jsonl` and the transcripts for `cells`.
fn write_run(dir: &Path, cells: &[Cell]) {
    std::fs::create_dir_all(dir.join("transcripts")).unwrap();
    let mut lines = String::new();
    for (index, c) in cells.iter().enumerate() {
        let transcript = format!("transcripts/{}__{}.log", c.firmware, c.scenario);
        std::fs::write(dir.join(&transcript), c.transcript).unwrap();
        let mut line = json!({
            "firmware": c.firmware, "scenario": c.scenario, "board": "twin-1",
            "expected": c.expected, "observed": c.observed, "verdict": c.verdict,
            "transcript": transcript, "duration_ms": 100 * (index as u64 + 1),
        });
        if let Some(error) = c.error {
            line["error"] = error.into();
        }
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("results.jsonl"), lines).unwrap();
}

/// Four cells, one of each verdict.
fn sample_run(dir: &Path) {
    write_run(
        dir,
        &[
            cell("dst-x3-idf3.2", "gts-chain", "pass", untrusted()),
            cell("dst-x3-idf3.2", "dst-cross-sign-rescue", "observed", updated()),
            cell("bundle-idf5.2", "gts-chain", "fail", updated()),
            error_cell("bundle-idf5.2", "dst-cross-sign-rescue"),
        ],
    );
}

fn otarig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otarig")).args(args).env_remove("NO_COLOR").output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn junit_counts_cells_and_carries_clean_transcripts() {
    let tmp = TempDir::new("report-junit");
    sample_run(&tmp.0);
    let cells = read_results(&tmp.0).unwrap();
    let path = report::write_junit(&cells, &tmp.0).unwrap();
    assert_eq!(path, tmp.0.join("junit.xml"));
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(!xml.contains('\x1b'), "no escape codes in the XML");
    let junit = Report::deserialize_from_str(&xml).unwrap();
    assert_eq!((junit.tests, junit.failures, junit.errors), (4, 1, 1));
    let suite = &junit.test_suites[0];
    assert_eq!(suite.test_cases.len(), 4);

    let case = |name: &str| suite.test_cases.iter().find(|c| c.name.as_str() == name).unwrap();
    let pass = case("dst-x3-idf3.2 × gts-chain");
    assert_eq!(pass.classname.as_deref(), Some("dst-x3-idf3.2"));
    assert!(matches!(pass.status, TestCaseStatus::Success { .. }));
    assert_eq!(pass.time, Some(std::time::Duration::from_millis(100)));
    let out = pass.system_out.as_deref().unwrap();
    assert!(out.contains("E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700\nI (7513)"), "{out:?}");
    assert!(!out.contains('\x1b') && !out.contains('\r'));

    let observed = case("dst-x3-idf3.2 × dst-cross-sign-rescue");
    assert!(matches!(observed.status, TestCaseStatus::Success { .. }));
    assert!(observed.properties.iter().any(|p| p.name.as_str() == "verdict" && p.value.as_str() == "observed"));

    match &case("bundle-idf5.2 × gts-chain").status {
        TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, .. } => {
            assert_eq!(message.as_deref(), Some("expected tls-verify/untrusted, observed updated"));
        }
        other => panic!("a fail cell is a failure: {other:?}"),
    }
    match &case("bundle-idf5.2 × dst-cross-sign-rescue").status {
        TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, message, .. } => {
            assert_eq!(message.as_deref(), Some("flashing: no answer from the ROM loader"));
        }
        other => panic!("an error cell is an error: {other:?}"),
    }
}

#[test]
fn the_matrix_marks_what_was_judged() {
    let tmp = TempDir::new("report-matrix");
    sample_run(&tmp.0);
    let cells = read_results(&tmp.0).unwrap();
    let plain = render_matrix(&cells, false);
    insta::assert_snapshot!("matrix_plain", plain);
    let coloured = render_matrix(&cells, true);
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[1;31m✗\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[32mupdated\x1b[0m"));
    // The same text once the colours are taken out.
    let mut stripped = String::new();
    let mut rest = coloured.as_str();
    while let Some(at) = rest.find('\x1b') {
        stripped.push_str(&rest[..at]);
        rest = &rest[at + rest[at..].find('m').unwrap() + 1..];
    }
    stripped.push_str(rest);
    assert_eq!(stripped, plain);
}

#[test]
fn a_wide_matrix_numbers_its_scenarios() {
    let tmp = TempDir::new("report-wide");
    let scenarios = [
        "a-rather-long-scenario-id-number-one",
        "a-rather-long-scenario-id-number-two",
        "a-rather-long-scenario-id-number-three",
        "a-rather-long-scenario-id-number-four",
        "a-rather-long-scenario-id-number-five",
    ];
    let cells: Vec<Cell> = scenarios.iter().map(|s| cell("fw", s, "observed", updated())).collect();
    write_run(&tmp.0, &cells);
    let text = render_matrix(&read_results(&tmp.0).unwrap(), false);
    assert!(text.starts_with("  [1] a-rather-long-scenario-id-number-five\n"), "{text}");
    assert!(text.lines().all(|line| line.chars().count() <= report::matrix::MAX_WIDTH), "{text}");
    assert!(text.contains("firmware  [1]"), "{text}");
}

#[test]
fn html_escapes_everything_from_the_run_and_draws_the_chain_when_given() {
    let tmp = TempDir::new("report-html");
    write_run(&tmp.0, &[cell("fw<i>", "s\"x", "observed", updated())]);
    let evil = "<script>window.__pwned = 1</script>\r\n</pre><img src=x onerror=alert(1)>\r\n";
    std::fs::write(tmp.0.join("transcripts/fw<i>__s\"x.log"), evil).unwrap();
    let cells = read_results(&tmp.0).unwrap();
    let mut details = DetailsByCell::new();
    details.insert(
        cells[0].key(),
        CellDetails {
            server_events: vec!["client hello: sni=<ota>".into()],
            chain: vec![ChainCert {
                subject: "CN=leaf & co".into(),
                issuer: "CN=R3".into(),
                not_before: 1_600_000_000,
                not_after: 1_650_000_000,
            }],
            device_clock: Some(1_700_000_000),
        },
    );
    let page = report::render_html(&cells, &tmp.0, &details);
    assert!(page.contains("&lt;script&gt;window.__pwned = 1&lt;/script&gt;"));
    assert!(page.contains("&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("fw&lt;i&gt; × s&quot;x"));
    assert!(page.contains("client hello: sni=&lt;ota&gt;"));
    assert!(page.contains("CN=leaf &amp; co") && page.contains("class=\"bar expired\""));
    assert_eq!(page.matches("<script").count(), 1, "only the page's own script");
    assert!(!page.contains("<img") && !page.contains("http://") && !page.contains("https://"));

    let plain = report::render_html(&cells, &tmp.0, &DetailsByCell::new());
    assert!(!plain.contains("Server events") && !plain.contains("Chain served"));
}

#[test]
fn show_writes_both_reports_and_exits_as_run_does() {
    let tmp = TempDir::new("report-show");
    sample_run(&tmp.0);
    let out = otarig(&["report", "show", path(&tmp.0)]);
    assert_eq!(out.status.code(), Some(1), "a fail cell: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains('\x1b'), "no colours into a pipe");
    assert!(stdout.contains("4 cells: 1 pass, 1 fail, 1 error, 1 observed"));
    assert!(tmp.0.join("junit.xml").is_file() && tmp.0.join("report.html").is_file());

    write_run(&tmp.0, &[cell("a", "s", "pass", untrusted()), cell("a", "t", "observed", updated())]);
    assert_eq!(otarig(&["report", "show", path(&tmp.0)]).status.code(), Some(0));
    write_run(&tmp.0, &[cell("a", "s", "pass", untrusted()), error_cell("a", "t")]);
    assert_eq!(otarig(&["report", "show", path(&tmp.0)]).status.code(), Some(3));
}

/// Adds each scenario's title, date and tags to the result lines of `dir`, as a run writes them.
fn add_scenario_facts(dir: &Path, facts: &[(&str, &str, &str, &[&str])]) {
    let file = dir.join("results.jsonl");
    let mut lines = String::new();
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let mut line: Value = serde_json::from_str(line).unwrap();
        let (_, title, date, tags) = facts.iter().find(|f| line["scenario"] == f.0).unwrap();
        line["scenario_title"] = (*title).into();
        line["scenario_date"] = (*date).into();
        line["scenario_tags"] = json!(tags);
        lines.push_str(&format!("{line}\n"));
    }
    std::fs::write(file, lines).unwrap();
}

#[test]
fn show_prints_the_fleet_summary_after_the_matrix_and_the_page_holds_it() {
    let tmp = TempDir::new("report-fleet");
    write_run(
        &tmp.0,
        &[
            cell("dst-x3-idf3.2", "le-long-chain-2021", "observed", updated()),
            cell("dst-x3-idf3.2", "le-short-chain-2024", "pass", untrusted()),
            cell("dst-x3-idf3.2", "http-404", "observed", untrusted()),
            cell("bundle-idf5.2", "le-short-chain-2024", "observed", updated()),
            error_cell("bundle-idf5.2", "le-long-chain-2021"),
        ],
    );
    let le: &[&str] = &["chain", "lets-encrypt"];
    add_scenario_facts(
        &tmp.0,
        &[
            ("le-long-chain-2021", "The long chain & <b>DST</b>", "2021-10-01", le),
            ("le-short-chain-2024", "The short chain", "2024-02-15", le),
            ("http-404", "A 404", "2026-11-25", &["fault", "http"]),
        ],
    );
    let out = otarig(&["report", "show", path(&tmp.0)]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (matrix, summary) = stdout.split_once("\nfleet: ").unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    assert!(matrix.contains("5 cells: 1 pass, 0 fail, 1 error, 3 observed"), "{stdout}");
    let expected = [
        "bundle-idf5.2  survives every event (1)",
        "  survives: 2024-02-15 le-short-chain-2024",
        "dst-x3-idf3.2  stranded since 2024-02-15 (le-short-chain-2024: tls-verify/untrusted)",
        "  survives: 2021-10-01 le-long-chain-2021",
        "  fails: 2024-02-15 le-short-chain-2024 (tls-verify/untrusted)",
    ];
    let listed: Vec<&str> = summary.lines().skip(2).take_while(|l| !l.starts_with("reports: ")).collect();
    assert_eq!(listed, expected, "{stdout}");

    let page = std::fs::read_to_string(tmp.0.join("report.html")).unwrap();
    let (_, fleet) = page.split_once("<section id=\"fleet\">").expect("the page's fleet section");
    let fleet = &fleet[..fleet.find("</section>").unwrap()];
    assert!(fleet.contains("stranded since 2024-02-15 (le-short-chain-2024: tls-verify/untrusted)"), "{fleet}");
    assert!(fleet.contains("title=\"The long chain &amp; &lt;b&gt;DST&lt;/b&gt;\""), "{fleet}");
    assert!(!fleet.contains("http-404") && !fleet.contains("<b>"), "{fleet}");

    write_run(&tmp.0, &[cell("a", "s", "pass", untrusted())]);
    let undated = String::from_utf8(otarig(&["report", "show", path(&tmp.0)]).stdout).unwrap();
    assert!(!undated.contains("fleet: "), "results without dates have no summary:\n{undated}");
    assert!(!std::fs::read_to_string(tmp.0.join("report.html")).unwrap().contains("id=\"fleet\""));
}

#[test]
fn colours_only_on_a_terminal_without_no_color() {
    let tmp = TempDir::new("report-colour");
    sample_run(&tmp.0);
    let on_terminal = |no_color: Option<&str>| -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_otarig"));
        command.args(["report", "show", path(&tmp.0)]).env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        run_on_pty(command)
    };
    assert!(on_terminal(None).contains("\x1b["), "colours on a terminal");
    assert!(!on_terminal(Some("1")).contains('\x1b'), "NO_COLOR=1 turns them off");
    assert!(on_terminal(Some("")).contains("\x1b["), "an empty NO_COLOR does not count");
}

/// Runs `command` with its standard output on a pseudo-terminal; returns what it printed.
fn run_on_pty(mut command: Command) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers given; the name, termios and
    // window size arguments may be null.
    let rc =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = command.stdout(slave).spawn().unwrap();
    drop(command); // the parent's copy of the terminal's slave side, so reads end with the child
    let mut master = std::fs::File::from(master);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match master.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            // Linux answers EIO once the last slave descriptor is closed.
            Err(_) => break,
        }
    }
    child.wait().unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn merge_keeps_the_last_result_of_each_cell_and_copies_transcripts() {
    let tmp = TempDir::new("report-merge");
    let (one, two, out) = (tmp.0.join("shard-1"), tmp.0.join("shard-2"), tmp.0.join("merged"));
    write_run(&one, &[cell("a", "s", "fail", updated()), cell("a", "t", "observed", updated())]);
    write_run(&two, &[cell("a", "s", "pass", untrusted()), cell("b", "s", "observed", expired())]);

    let merged = report::merge_runs(&[one.clone(), two.clone()], &out).unwrap();
    assert_eq!(merged.lines_read, 4);
    assert!(merged.missing_transcripts.is_empty());
    let cells = read_results(&out).unwrap();
    let keys: Vec<(&str, &str, Verdict)> =
        cells.iter().map(|c| (c.firmware.as_str(), c.scenario.as_str(), c.verdict)).collect();
    assert_eq!(keys, [("a", "s", Verdict::Pass), ("a", "t", Verdict::Observed), ("b", "s", Verdict::Observed)]);
    assert_eq!(std::fs::read_to_string(out.join("transcripts/a__s.log")).unwrap(), UNTRUSTED_LOG, "the kept cell's");
    assert_eq!(std::fs::read_to_string(out.join("transcripts/b__s.log")).unwrap(), EXPIRED_LOG);

    // Through the binary, into one of its inputs: reports written, exit code from the verdicts.
    let run = otarig(&["report", "merge", path(&two), path(&one), "--out", path(&one)]);
    assert_eq!(run.status.code(), Some(1), "shard-1's fail wins: {}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8(run.stdout).unwrap().contains("merged 4 result lines from 2 runs into 3 cells"));
    assert!(one.join("junit.xml").is_file() && one.join("report.html").is_file());
    assert_eq!(std::fs::read_to_string(one.join("transcripts/a__s.log")).unwrap(), UPDATED_LOG);
    assert_eq!(std::fs::read_to_string(one.join("transcripts/b__s.log")).unwrap(), EXPIRED_LOG);
}

#[test]
fn malformed_or_missing_results_are_named_with_their_line() {
    let tmp = TempDir::new("report-malformed");
    sample_run(&tmp.0);
    let file = tmp.0.join("results.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken: Vec<String> = text
        .lines()
        .enumerate()
        .map(
            |(i, line)| {
                if i == 2 { line.replace("\"verdict\":\"fail\"", "\"verdict\":\"maybe\"") } else { line.into() }
            },
        )
        .collect();
    std::fs::write(&file, broken.join("\n")).unwrap();
    let err = read_results(&tmp.0).unwrap_err();
    assert!(matches!(&err, ResultsError::Malformed { line: 3, path, .. } if *path == file), "{err:?}");

    let out = otarig(&["report", "show", path(&tmp.0)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!("{}:3:", file.display())), "{stderr}");

    std::fs::write(&file, "{\"firmware\": \"a\"}\n").unwrap();
    assert!(matches!(read_results(&tmp.0), Err(ResultsError::Malformed { line: 1, .. })));
    let merged = otarig(&["report", "merge", path(&tmp.0), "--out", path(&tmp.0.join("m"))]);
    assert_eq!(merged.status.code(), Some(2));
    assert!(String::from_utf8(merged.stderr).unwrap().contains(&format!("{}:1:", file.display())));
    assert!(!tmp.0.join("m").exists(), "nothing written");

    std::fs::remove_file(&file).unwrap();
    assert!(matches!(read_results(&tmp.0), Err(ResultsError::Read { .. })));
    let out = otarig(&["report", "diff", path(&tmp.0), path(&tmp.0)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains(&file.display().to_string()));
}

#[test]
fn diff_names_each_kind_of_change_and_fails_only_when_worse() {
    let tmp = TempDir::new("report-diff");
    let (old, new) = (tmp.0.join("old"), tmp.0.join("new"));
    write_run(
        &old,
        &[
            cell("a", "same", "pass", untrusted()),
            cell("a", "outcome", "observed", updated()),
            cell("a", "worse", "pass", untrusted()),
            error_cell("a", "better"),
            cell("a", "gone", "observed", updated()),
        ],
    );
    write_run(
        &new,
        &[
            cell("a", "same", "pass", untrusted()),
            cell("a", "outcome", "observed", expired()),
            cell("a", "worse", "fail", updated()),
            cell("a", "better", "pass", untrusted()),
            cell("b", "new", "fail", updated()),
        ],
    );
    let diff = diff_runs(&read_results(&old).unwrap(), &read_results(&new).unwrap());
    assert_eq!(diff.unchanged, 1);
    let summary: Vec<(&str, &str, ChangeKind, bool, bool, bool)> = diff
        .changes
        .iter()
        .map(|c| (c.firmware.as_str(), c.scenario.as_str(), c.change, c.outcome_changed, c.verdict_changed, c.worse))
        .collect();
    assert_eq!(
        summary,
        [
            ("a", "better", ChangeKind::Changed, true, true, false),
            ("a", "gone", ChangeKind::Removed, false, false, false),
            ("a", "outcome", ChangeKind::Changed, true, false, false),
            ("a", "worse", ChangeKind::Changed, true, true, true),
            ("b", "new", ChangeKind::Added, false, false, false),
        ]
    );
    assert!(diff.worse());

    let out = otarig(&["report", "diff", path(&old), path(&new)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("worse    a × worse: pass tls-verify/untrusted → fail updated\n"), "{text}");
    assert!(text.contains("removed  a × gone: was observed updated\n"), "{text}");
    assert!(text.contains("added    b × new: fail updated\n"), "{text}");
    assert!(text.ends_with("5 cells changed, 1 worse; 1 unchanged\n"), "{text}");

    let out = otarig(&["report", "diff", path(&old), path(&new), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["worse"], true);
    assert_eq!(json["unchanged"], 1);
    let worse = json["changes"].as_array().unwrap().iter().find(|c| c["worse"] == true).unwrap();
    assert_eq!(
        worse,
        &json!({"firmware": "a", "scenario": "worse", "change": "changed",
                "old": {"verdict": "pass", "outcome": "tls-verify", "reason": "untrusted"},
                "new": {"verdict": "fail", "outcome": "updated", "reason": null},
                "outcome_changed": true, "verdict_changed": true, "worse": true})
    );

    // Cells that went away and cells that stayed are not worse.
    write_run(&new, &[cell("a", "same", "pass", untrusted()), cell("a", "worse", "pass", untrusted())]);
    let out = otarig(&["report", "diff", path(&old), path(&new)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = otarig(&["report", "diff", path(&new), path(&new), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["changes"].as_array().unwrap().len(), &json["worse"]), (0, &Value::Bool(false)));
}
