//! The lab's daily run on twins: every fleet member × every shipped scenario without a
//! time-based fault (stall, throttle), through the library (`otarig::run::run`), with one and
//! two twins, twins kept between cells of a firmware (only otadata rewritten) and fresh twins
//! flashed whole for every cell.
//!
//! Why: the matrix runs before every certificate change; it has to be quick enough to run on
//! every change, and adding twins has to make it quicker.
//!
//! `cargo bench --bench run_matrix` (release). Each configuration runs in a fresh process of
//! this benchmark, so its peak memory is its own: the process's `VmHWM` after the run, less its
//! `VmRSS` once the lab is loaded and before the first cell, divided by the number of twins, is
//! the memory per twin (each twin's server, images in flight and device thread). Every run is
//! checked: no `error` and no `fail`, and every configuration observes the same outcome and
//! reason for every cell. Without `--bench` (`cargo test --benches`) it runs 2 cells on one twin.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use otarig::outcome::OutcomeClass;
use otarig::run::{self, Plan, RunEvent, RunOptions, Selection, WatchLimits};

mod common;

/// Set in a child: the configuration to run (`TWINS,REUSE,CELLS`).
const CHILD: &str = "OTARIG_RUN_MATRIX_CHILD";

fn main() {
    if let Ok(config) = std::env::var(CHILD) {
        return child(&config);
    }
    let benching = std::env::args().any(|a| a == "--bench");
    let configs: &[(usize, bool)] =
        if benching { &[(1, true), (1, false), (2, true), (2, false)] } else { &[(1, true)] };
    let cells = if benching { "all" } else { "2" };
    let mut runs = Vec::new();
    for &(twins, reuse) in configs {
        let output = Command::new(std::env::current_exe().expect("this benchmark's path"))
            .env(CHILD, format!("{twins},{reuse},{cells}"))
            .output()
            .expect("a child run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let figures: Figures = parse(&stdout);
        println!(
            "run_matrix: {} cells, {twins} twin{}, {}: {:.2} s, {:.1} cells/s; median cell {:.0} ms \
             (update {:.0} ms, failure {:.0} ms); {} cells on a kept twin; peak {:.1} MiB, {:.1} MiB per twin",
            figures.cells,
            if twins == 1 { "" } else { "s" },
            if reuse { "twins kept" } else { "fresh twins" },
            figures.seconds,
            figures.cells as f64 / figures.seconds,
            figures.median_ms,
            figures.update_ms,
            figures.failure_ms,
            figures.reused,
            figures.hwm_kib as f64 / 1024.0,
            figures.hwm_kib.saturating_sub(figures.rss_before_kib) as f64 / 1024.0 / twins as f64,
        );
        runs.push(((twins, reuse), figures));
    }
    for ((twins, reuse), figures) in &runs[1..] {
        assert_eq!(figures.outcomes, runs[0].1.outcomes, "{twins} twins, kept {reuse}: the same outcomes");
    }
    if let [(_, kept), (_, fresh), ..] = &runs[..] {
        println!(
            "run_matrix: keeping twins saves {:.0} ms per cell on one twin ({:.2} s against {:.2} s)",
            (fresh.seconds - kept.seconds) * 1e3 / kept.cells as f64,
            kept.seconds,
            fresh.seconds
        );
    }
}

/// What a child run measured.
#[derive(Debug, Default)]
struct Figures {
    cells: usize,
    seconds: f64,
    median_ms: f64,
    update_ms: f64,
    failure_ms: f64,
    reused: usize,
    hwm_kib: u64,
    rss_before_kib: u64,
    /// `firmware scenario` → `outcome reason`.
    outcomes: BTreeMap<String, String>,
}

/// Reads a child's `key value` lines (`outcome FIRMWARE SCENARIO OUTCOME REASON` for cells).
fn parse(stdout: &str) -> Figures {
    let mut figures = Figures::default();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |at: usize| words[at].parse::<f64>().expect("a number");
        match words.first() {
            Some(&"cells") => figures.cells = number(1) as usize,
            Some(&"seconds") => figures.seconds = number(1),
            Some(&"median_ms") => {
                (figures.median_ms, figures.update_ms, figures.failure_ms) = (number(1), number(2), number(3));
            }
            Some(&"reused") => figures.reused = number(1) as usize,
            Some(&"memory_kib") => (figures.rss_before_kib, figures.hwm_kib) = (number(1) as u64, number(2) as u64),
            Some(&"outcome") => {
                figures.outcomes.insert(format!("{} {}", words[1], words[2]), words[3..].join(" "));
            }
            _ => {}
        }
    }
    figures
}

/// One configuration, in this process: prints its figures as `key value` lines.
fn child(config: &str) {
    let parts: Vec<&str> = config.split(',').collect();
    let twins: usize = parts[0].parse().expect("twins");
    let reuse = parts[1] == "true";
    let dirs = common::shipped_dirs();
    let scenarios = common::untimed_scenarios(|_| true);
    let mut selection = Selection { scenarios, ..Selection::default() };
    if parts[2] != "all" {
        selection.firmware = vec!["isrg-x1-idf4.4".into()];
        selection.scenarios = vec!["gts-chain".into(), "le-short-chain".into()];
    }
    let plan = Plan::new(&dirs, &selection).expect("the plan");

    let out = std::env::temp_dir().join(format!("otarig-run-matrix-{}", std::process::id()));
    let options = RunOptions {
        limits: WatchLimits::new(Duration::from_secs(30)),
        twins,
        reuse_twins: reuse,
        retries: 0,
        ..RunOptions::new(&out)
    };
    let durations = Mutex::new(Vec::new());
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let summary = run::run(&plan, &options, |event| {
        if let RunEvent::CellFinished { result, .. } = event {
            let outcome = common::checked_outcome(result);
            let updated = result.observed.as_ref().is_some_and(|o| o.outcome.outcome == OutcomeClass::Updated);
            println!("outcome {} {} {outcome}", result.firmware, result.scenario);
            durations.lock().unwrap().push((result.duration_ms, updated));
        }
    })
    .expect("the run");
    let seconds = started.elapsed().as_secs_f64();
    let hwm = status_kib("VmHWM:");
    let _ = std::fs::remove_dir_all(&out);

    assert_eq!(summary.total(), plan.cells.len());
    println!("cells {}", plan.cells.len());
    println!("seconds {seconds}");
    println!("reused {}", summary.reused);
    println!("memory_kib {rss_before} {hwm}");
    let durations = durations.into_inner().unwrap();
    let median = |keep: &dyn Fn(bool) -> bool| {
        let mut ms: Vec<u64> = durations.iter().filter(|(_, updated)| keep(*updated)).map(|(ms, _)| *ms).collect();
        ms.sort_unstable();
        ms.get(ms.len() / 2).copied().unwrap_or(0)
    };
    println!("median_ms {} {} {}", median(&|_| true), median(&|updated| updated), median(&|updated| !updated));
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("KiB")
}
