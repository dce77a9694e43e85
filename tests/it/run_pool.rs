//! How `otarig run` gets through its cells: rig failures tried again on a fresh device and never
//! counted as the firmware's outcome, twins kept between cells of one firmware giving the same
//! transcripts as fresh ones, board locks another process respects, and Ctrl-C stopping the
//! binary with the finished results kept (exit 130), then resumed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otarig::run::{self, BoardLock, LabDirs, LockDir, LockError, Plan, RunEvent, RunOptions, Selection, WatchLimits};
use serde_json::Value;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOADED: &str = "Loaded app from partition at offset 0x10000";

fn plan(firmware: &[&str], scenarios: &[&str]) -> Plan {
    let dirs = LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") };
    let selection = Selection {
        firmware: firmware.iter().map(ToString::to_string).collect(),
        scenarios: scenarios.iter().map(ToString::to_string).collect(),
        ..Selection::default()
    };
    Plan::new(&dirs, &selection).unwrap()
}

fn options(out: &Path) -> RunOptions {
    RunOptions { limits: WatchLimits::new(Duration::from_secs(10)), twins: 1, ..RunOptions::new(out) }
}

/// `DIR/results.jsonl` by scenario.
fn results_by_scenario(dir: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["scenario"].as_str().unwrap().to_owned(), v))
        .collect()
}

#[test]
fn rig_failures_are_tried_again_and_never_count_as_the_firmwares_outcome() {
    let out = TempDir::new("run-retries");
    let plan = plan(&["isrg-x1-idf4.4"], &["gts-chain", "le-short-chain"]);
    // The rig fails gts-chain's first attempt, and every attempt at le-short-chain.
    let preflight = |check: &run::PreflightCheck<'_>| match (check.scenario, check.attempt) {
        ("gts-chain", 1) | ("le-short-chain", _) => Err(format!("{} is not ready", check.board)),
        _ => Ok(()),
    };
    let options = RunOptions { retries: 2, preflight: Some(Arc::new(preflight)), ..options(&out.0) };
    let events = Mutex::new(Vec::new());
    let summary = run::run(&plan, &options, |event| match event {
        RunEvent::CellStarted { scenario, attempt, .. } => events.lock().unwrap().push(format!("{scenario} {attempt}")),
        RunEvent::CellRetrying { scenario, attempt, error, .. } => {
            events.lock().unwrap().push(format!("{scenario} {attempt} failed: {error}"));
        }
        _ => {}
    })
    .unwrap();

    let events = events.into_inner().unwrap();
    let of = |scenario: &str| events.iter().filter(|e| e.starts_with(scenario)).cloned().collect::<Vec<_>>();
    assert_eq!(of("gts-chain"), ["gts-chain 1", "gts-chain 1 failed: preflight: twin-1 is not ready", "gts-chain 2"]);
    assert_eq!(of("le-short-chain").len(), 3 + 2, "three attempts, two retries: {events:?}");

    let results = results_by_scenario(&out.0);
    assert_eq!(results.len(), 2, "one line per cell, whatever the attempts");
    assert_eq!(results["gts-chain"]["verdict"], "pass", "{}", results["gts-chain"]);
    let failed = &results["le-short-chain"];
    assert_eq!((failed["verdict"].as_str(), &failed["observed"]), (Some("error"), &Value::Null));
    assert_eq!(failed["error"], "preflight: twin-1 is not ready");
    assert_eq!((summary.pass, summary.error, summary.fail, summary.observed), (1, 1, 0, 0), "{summary:?}");
}

/// A transcript with the boot clock's timestamps taken out.
fn untimed(path: &Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '(' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.next_if(char::is_ascii_digit).is_some() {}
            out.push('T');
        }
    }
    out
}

#[test]
fn a_kept_twin_gives_the_transcripts_a_fresh_twin_does() {
    let scenarios = ["dst-cross-sign-rescue", "expired-leaf", "gts-chain", "le-short-chain"];
    let plan = plan(&["isrg-x1-idf4.4"], &scenarios);
    let kept = TempDir::new("run-kept");
    let fresh = TempDir::new("run-fresh");
    let with_kept = run::run(&plan, &options(&kept.0), |_| {}).unwrap();
    let with_fresh = run::run(&plan, &RunOptions { reuse_twins: false, ..options(&fresh.0) }, |_| {}).unwrap();
    assert_eq!(with_kept.reused, scenarios.len() - 1, "one lab network, one firmware: one twin");
    assert_eq!(with_fresh.reused, 0);

    let (kept_results, fresh_results) = (results_by_scenario(&kept.0), results_by_scenario(&fresh.0));
    for scenario in scenarios {
        let (a, b) = (&kept_results[scenario], &fresh_results[scenario]);
        assert_eq!(a["verdict"], "pass", "{a}");
        assert_eq!(
            (&a["observed"]["outcome"], &a["observed"]["reason"]),
            (&b["observed"]["outcome"], &b["observed"]["reason"])
        );
        let transcript = a["transcript"].as_str().unwrap();
        let text = untimed(&kept.0.join(transcript));
        assert!(text.contains(LOADED), "{text}");
        assert_eq!(text, untimed(&fresh.0.join(transcript)), "{scenario}: kept and fresh twins print the same");
    }
}

#[test]
fn a_power_cut_is_given_power_back_and_its_twin_is_not_kept() {
    let out = TempDir::new("run-power-cut");
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("scenarios/le-short-chain.toml")).unwrap();
    let scenario = out.0.join("power-cut-mid-download.toml");
    std::fs::write(&scenario, format!("{shipped}\n[device]\npower_cut = {{ after-bytes = 400000 }}\n")).unwrap();
    let plan = plan(&["isrg-x1-idf4.4"], &[scenario.to_str().unwrap(), "le-short-chain"]);
    let summary = run::run(&plan, &options(&out.0.join("run")), |_| {}).unwrap();
    assert_eq!(summary.reused, 0, "the twin that lost power is not used again");

    let results = results_by_scenario(&out.0.join("run"));
    let cut = &results["power-cut-mid-download"];
    assert_eq!(cut["observed"]["outcome"], "updated", "the old image boots and updates again: {cut}");
    let transcript = untimed(&out.0.join("run").join(cut["transcript"].as_str().unwrap()));
    assert_eq!(transcript.matches("rst:0x1 (POWERON_RESET)").count(), 1, "power given back once:\n{transcript}");
    assert_eq!(results["le-short-chain"]["verdict"], "pass");
}

/// Waits for `condition` until `deadline`, yielding in between.
fn wait_until(deadline: Instant, what: &str, mut condition: impl FnMut() -> bool) {
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::yield_now();
    }
}

#[test]
fn a_board_lock_is_respected_across_processes_and_waited_for() {
    let tmp = TempDir::new("run-locks");
    let locks = LockDir::new(tmp.0.join("locks"));
    let held = locks.try_take("esp32-a").unwrap();
    let me = std::process::id().to_string();
    assert!(
        matches!(locks.try_take("esp32-a"), Err(LockError::Busy { holder: Some(ref h), .. }) if *h == me),
        "a second holder is refused and told who holds it"
    );
    assert!(matches!(locks.take("esp32-a", |_| {}, || true), Err(LockError::GaveUp { .. })));
    // Another process (flock(1), the same OS lock) is refused too, then gets it once released.
    let flock = |lock: &Path| Command::new("flock").args(["-n", lock.to_str().unwrap(), "true"]).status().unwrap();
    assert_eq!(flock(held.path()).code(), Some(1), "flock -n is refused while this process holds the board");
    let path = held.path().to_owned();
    drop(held);
    assert!(flock(&path).success());

    // The other way round: a process holds the board; this one waits, and gets it on release.
    let mut holder = Command::new("flock").args([path.to_str().unwrap(), "cat"]).stdin(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    wait_until(deadline, "flock holds the board", || matches!(locks.try_take("esp32-a"), Err(LockError::Busy { .. })));
    let busy = Mutex::new(0);
    let release = Mutex::new(holder.stdin.take());
    let taken = locks.take(
        "esp32-a",
        |_| {
            *busy.lock().unwrap() += 1;
            release.lock().unwrap().take(); // cat ends, flock lets go
        },
        || Instant::now() > deadline,
    );
    assert!(taken.is_ok(), "{taken:?}");
    assert_eq!(*busy.lock().unwrap(), 1, "told once that the board is busy");
    assert!(holder.wait().unwrap().success());
}

#[test]
fn a_station_waits_for_its_board_held_elsewhere() {
    let out = TempDir::new("run-locked-station");
    let locks = LockDir::new(out.0.join("locks"));
    let held: Mutex<Option<BoardLock>> = Mutex::new(Some(locks.try_take("twin-1").unwrap()));
    let plan = plan(&["dst-x3-idf3.2"], &["gts-chain"]);
    let options = RunOptions { locks: Some(locks.clone()), ..options(&out.0) };
    let seen = Mutex::new(Vec::new());
    let summary = run::run(&plan, &options, |event| match event {
        RunEvent::BoardBusy { board, error } => {
            seen.lock().unwrap().push(format!("busy {board}"));
            assert!(matches!(error, LockError::Busy { holder: Some(_), .. }), "{error}");
            held.lock().unwrap().take(); // the other holder lets go
        }
        RunEvent::CellStarted { board, .. } => seen.lock().unwrap().push(format!("started on {board}")),
        _ => {}
    })
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["busy twin-1", "started on twin-1"]);
    assert_eq!(summary.total(), 1);
    assert!(locks.try_take("twin-1").is_ok(), "released after the cell");
}

/// Kills a child process if the test ends before the child does.
struct KillOnDrop(Option<libc::pid_t>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) of our own child, not yet waited for.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn ctrl_c_keeps_the_finished_results_exits_130_and_the_run_resumes() {
    let out = TempDir::new("run-ctrl-c");
    let dir = out.0.to_str().unwrap();
    let cells = plan(&["isrg-x1-idf4.4"], &[]).cells.len();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(ROOT)
        .args(["run", "--firmware", "isrg-x1-idf4.4", "--twins", "1", "--timeout", "10", "--out", dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut guard = KillOnDrop(Some(pid));
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = received.recv_timeout(deadline - Instant::now()).expect("a first cell ends");
        if line.starts_with("[1/") {
            break;
        }
    }
    // SAFETY: kill(2) of our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (exited, status) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait().unwrap());
    });
    let status = status.recv_timeout(deadline - Instant::now()).expect("the run stops after Ctrl-C");
    guard.0 = None;
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains(&format!("--resume {dir}")), "how to go on: {stderr}");

    let text = std::fs::read_to_string(out.0.join("results.jsonl")).unwrap();
    let finished: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("whole lines only")).collect();
    assert!(!finished.is_empty() && finished.len() < cells, "{} of {cells} cells written", finished.len());
    for line in &finished {
        assert!(out.0.join(line["transcript"].as_str().unwrap()).is_file(), "{line}");
    }

    // Going on finishes the rest: one line per cell.
    let output = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(ROOT)
        .args(["run", "--firmware", "isrg-x1-idf4.4", "--twins", "1", "--timeout", "10", "--resume", dir])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("({} from before)", finished.len())), "{stdout}");
    let after = results_by_scenario(&out.0);
    assert_eq!(after.len(), cells, "{stdout}");
    assert_eq!(std::fs::read_to_string(out.0.join("results.jsonl")).unwrap().lines().count(), cells);
    assert!(
        after.values().all(|v| v["verdict"] != serde_json::to_value(otarig::results::Verdict::Error).unwrap()),
        "{stdout}"
    );
}
