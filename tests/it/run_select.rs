//! Which cells `otarig run` runs: scenarios chosen by tag, shards that split a plan the same way
//! on every machine, resuming a run directory (finished cells kept, `error` cells run again),
//! and `--strict` exit codes; bad values refused with exit 2 before anything runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use otarig::run::{self, LabDirs, Plan, PlanError, RunEvent, RunOptions, Selection, Shard, WatchLimits};
use serde_json::Value;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dirs() -> LabDirs {
    LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn otarig(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap()
}

/// `(firmware, scenario)` of each cell of a plan.
fn cell_names(plan: &Plan) -> Vec<(String, String)> {
    plan.cells.iter().map(|c| (c.firmware.clone(), plan.scenarios[c.scenario].id.clone())).collect()
}

/// Runs `args`, expecting a usage error (exit 2, `error: ...`) and nothing written.
fn refused(args: &[&str], out: &Path) {
    let output = otarig(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains("error"), "{args:?}: {stderr}");
    assert!(!out.exists(), "nothing written for {args:?}");
}

#[test]
fn tags_choose_scenarios_and_a_tag_no_scenario_has_is_refused() {
    let all = Plan::new(&dirs(), &Selection::default()).unwrap();
    for scenario in &all.scenarios {
        assert!(!scenario.tags.is_empty(), "every shipped scenario is tagged: {}", scenario.id);
    }
    let tagged = |tags: &[&str]| -> BTreeSet<String> {
        all.scenarios
            .iter()
            .filter(|s| s.tags.iter().any(|t| tags.contains(&t.as_str())))
            .map(|s| s.id.clone())
            .collect()
    };
    for tags in [&["founding"][..], &["fault"], &["fault", "founding"]] {
        let plan = Plan::new(&dirs(), &Selection { tags: strings(tags), ..Selection::default() }).unwrap();
        let ids: BTreeSet<String> = plan.scenarios.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids, tagged(tags), "{tags:?}");
        assert_eq!(plan.cells.len(), all.fleet.members().count() * ids.len());
    }
    assert!(tagged(&["founding"]).contains("dst-cross-sign-rescue"));

    let unknown = Plan::new(&dirs(), &Selection { tags: strings(&["no-such-tag"]), ..Selection::default() });
    assert!(matches!(unknown, Err(PlanError::UnknownTag { ref tag, .. }) if tag == "no-such-tag"), "{unknown:?}");
    // Named scenarios are filtered too: none left is nothing to run.
    let none = Selection { scenarios: strings(&["gts-chain"]), tags: strings(&["fault"]), ..Selection::default() };
    assert!(matches!(Plan::new(&dirs(), &none), Err(PlanError::UnknownTag { .. } | PlanError::Empty)));

    let out = TempDir::new("run-tag-usage");
    let never = out.0.join("never");
    refused(&["run", "--tag", "no-such-tag", "--out", never.to_str().unwrap()], &never);
}

#[test]
fn shards_split_a_plan_into_balanced_parts_the_same_way_whatever_the_order() {
    let all = Plan::new(&dirs(), &Selection::default()).unwrap();
    let everything: BTreeSet<(String, String)> = cell_names(&all).into_iter().collect();
    let mut reversed: Vec<String> = all.fleet.members().map(|m| m.id.clone()).collect();
    reversed.reverse();
    for count in [1, 2, 4, 7] {
        let mut union = BTreeSet::new();
        let mut sizes = Vec::new();
        for index in 1..=count {
            let shard = Some(Shard::new(index, count).unwrap());
            let plan = Plan::new(&dirs(), &Selection { shard, ..Selection::default() }).unwrap();
            assert_eq!(plan.unsharded, everything.len());
            let part = cell_names(&plan);
            sizes.push(part.len());
            for cell in &part {
                assert!(union.insert(cell.clone()), "{cell:?} in two parts of {count}");
            }
            // The firmware named in another order: the same part.
            let again = Plan::new(&dirs(), &Selection { shard, firmware: reversed.clone(), ..Selection::default() });
            let again: BTreeSet<_> = cell_names(&again.unwrap()).into_iter().collect();
            assert_eq!(again, part.into_iter().collect::<BTreeSet<_>>(), "shard {index}/{count}");
        }
        assert_eq!(union, everything, "the parts of {count} cover the plan");
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    }

    let out = TempDir::new("run-shard-usage");
    let never = out.0.join("never");
    for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3"] {
        refused(&["run", "--shard", bad, "--out", never.to_str().unwrap()], &never);
    }
    // A part with no cells is a run of nothing, not an error.
    let empty = out.0.join("empty");
    let output = otarig(&[
        "run",
        "--firmware",
        "dst-x3-idf3.2",
        "--scenario",
        "gts-chain",
        "--shard",
        "1/2",
        "--out",
        empty.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("0 cells (shard 1/2 of 1:"), "{stdout}");
    assert_eq!(std::fs::read_to_string(empty.join("results.jsonl")).unwrap(), "");
}

/// A result line as an earlier run would have written it (fields beyond the three resume
/// reads are kept as they are).
fn line(firmware: &str, scenario: &str, verdict: &str) -> String {
    let observed = if verdict == "error" { "null" } else { r#"{"outcome":"updated","reason":null,"evidence":[]}"# };
    format!(
        r#"{{"firmware":"{firmware}","scenario":"{scenario}","board":"twin-9","expected":null,"observed":{observed},"verdict":"{verdict}","transcript":"transcripts/{firmware}__{scenario}.log","duration_ms":1}}"#
    ) + "\n"
}

#[test]
fn resuming_runs_only_the_cells_not_finished_and_keeps_one_line_per_cell() {
    let out = TempDir::new("run-resume");
    let finished = line("isrg-x1-idf4.4", "gts-chain", "pass");
    let elsewhere = line("dst-x3-idf3.2", "gts-chain", "fail");
    let earlier = [finished.clone(), line("isrg-x1-idf4.4", "http-404", "error"), elsewhere.clone()].concat();
    // The last line was cut short when the earlier run's machine went down.
    std::fs::write(out.0.join("results.jsonl"), format!("{earlier}{{\"firmware\":\"isrg-x1")).unwrap();

    let selection = Selection {
        firmware: strings(&["isrg-x1-idf4.4"]),
        scenarios: strings(&["gts-chain", "http-404"]),
        ..Selection::default()
    };
    let plan = Plan::new(&dirs(), &selection).unwrap();
    let options = RunOptions {
        limits: WatchLimits::new(Duration::from_secs(10)),
        twins: 1,
        resume: true,
        ..RunOptions::new(&out.0)
    };
    let started = Mutex::new(Vec::new());
    let summary = run::run(&plan, &options, |event| {
        if let RunEvent::CellStarted { scenario, .. } = event {
            started.lock().unwrap().push(scenario.to_owned());
        }
    })
    .unwrap();
    assert_eq!(*started.lock().unwrap(), ["http-404"], "only the cell without a finished line runs");
    assert_eq!((summary.carried, summary.total()), (1, 2), "{summary:?}");

    let text = std::fs::read_to_string(out.0.join("results.jsonl")).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!((lines[0], lines[1]), (finished.as_str(), elsewhere.as_str()), "earlier lines kept as written");
    let new: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!((new["scenario"].as_str(), new["board"].as_str()), (Some("http-404"), Some("twin-1")));
    assert_ne!(new["verdict"], "error", "{new}");

    // Everything finished: a resume runs nothing and says so in its counts.
    let again = run::run(&plan, &options, |_| {}).unwrap();
    assert_eq!((again.carried, again.total(), again.stopped), (2, 2, false));

    let never = out.0.join("never");
    let dir = out.0.to_str().unwrap();
    refused(&["run", "--resume", never.to_str().unwrap()], &never);
    let output = otarig(&["run", "--resume", dir, "--out", dir]);
    assert_eq!(output.status.code(), Some(2), "--resume and --out together");
}

#[test]
fn strict_makes_a_cell_with_nothing_expected_exit_1() {
    let out = TempDir::new("run-strict");
    // A scenario that expects nothing of this firmware (the shipped ones expect every cell).
    let scenario = out.0.join("unexpected.toml");
    std::fs::write(
        &scenario,
        "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"wr2\"\n[server]\nchain = [\"leaf\", \"wr2\"]\nimage = \"v2.0.0\"\n",
    )
    .unwrap();
    let scenario = scenario.to_str().unwrap();
    let plan = Plan::new(
        &dirs(),
        &Selection { firmware: strings(&["bundle-idf5.2"]), scenarios: strings(&[scenario]), ..Selection::default() },
    );
    let plan = plan.unwrap();
    assert!(!plan.scenarios[0].expect.contains_key("bundle-idf5.2"));
    let dir = out.0.join("run");
    let dir = dir.to_str().unwrap();
    let args = ["run", "--firmware", "bundle-idf5.2", "--scenario", scenario, "--timeout", "10", "--out", dir];
    let plain = otarig(&args);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(stdout.contains("SEEN "), "{stdout}");
    assert_eq!(plain.status.code(), Some(0), "{stdout}");
    // A run directory holds one run: the strict run goes to its own.
    let strict_dir = out.0.join("strict");
    let strict = otarig(&[&args[..8], &[strict_dir.to_str().unwrap(), "--strict"]].concat());
    assert_eq!(strict.status.code(), Some(1), "{}", String::from_utf8_lossy(&strict.stdout));
}
