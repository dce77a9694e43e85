//! A lab's boards: two fleet members × every shipped scenario without a time-based fault, on
//! twins standing in for boards through the serial backend (espflash over their
//! pseudo-terminals, `reset = "none"`, put into download mode before each cell as a person at
//! the bench would), their update host and SNTP the lab's (`[server] listen`, `[sntp] listen`).
//! Three labs: one board; two boards without addresses (they take turns at the shared route);
//! two boards with addresses (side by side). And what skipping reflash saves on a board: a
//! board's first cell of a firmware writes every region, the next ones only what changed.
//!
//! Why: boards are the slow part of a nightly run; more boards have to make it quicker, and a
//! board that holds the firmware must not be flashed again.
//!
//! `cargo bench --bench lab_boards` (release). Every run is checked: no `error` and no `fail`,
//! and the three labs observe the same outcome and reason for every cell. Without `--bench`
//! (`cargo test --benches`) it runs 2 cells on the two boards with addresses.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otarig::lab;
use otarig::run::serve::Setup;
use otarig::run::{self, LockDir, Plan, PreflightCheck, RunEvent, RunOptions, Selection, WatchLimits};
use otarig::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use otarig::twin::network::{LabNetwork, TimeService};

mod common;

const FIRMWARE: [&str; 2] = ["dst-x3-idf3.2", "isrg-x1-idf4.4"];

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let plan = plan(benching);
    let labs: &[(usize, bool)] = if benching { &[(1, false), (2, false), (2, true)] } else { &[(2, true)] };
    let mut runs = Vec::new();
    for &(boards, addressed) in labs {
        let figures = run_lab(&plan, boards, addressed);
        println!(
            "lab_boards: {} cells on {boards} board{}{}: {:.2} s, {:.1} cells/s; a board's first cell of a \
             firmware flashes {:.0} ms ({} KiB written), its next cells {:.0} ms ({} KiB; medians)",
            figures.cells,
            if boards == 1 { "" } else { "s" },
            match (boards, addressed) {
                (1, _) => "",
                (_, true) => " with addresses",
                (_, false) => " without addresses",
            },
            figures.seconds,
            figures.cells as f64 / figures.seconds,
            figures.whole_ms,
            figures.whole_bytes / 1024,
            figures.skipped_ms,
            figures.skipped_bytes / 1024,
        );
        runs.push(figures);
    }
    for figures in &runs[1..] {
        assert_eq!(figures.outcomes, runs[0].outcomes, "every lab observes the same");
    }
}

/// The cells: two firmware × every scenario whose faults take no set time (a quick run: 2 cells).
fn plan(all: bool) -> Plan {
    let scenarios = common::untimed_scenarios(|s| s.power_cut.is_none());
    let selection = if all {
        Selection { firmware: FIRMWARE.map(String::from).to_vec(), scenarios, ..Selection::default() }
    } else {
        Selection {
            firmware: vec![FIRMWARE[1].into()],
            scenarios: vec!["gts-chain".into(), "le-short-chain".into()],
            ..Selection::default()
        }
    };
    Plan::new(&common::shipped_dirs(), &selection).expect("the plan")
}

/// What one lab's run measured.
#[derive(Debug, Default)]
struct Figures {
    cells: usize,
    seconds: f64,
    whole_ms: f64,
    whole_bytes: usize,
    skipped_ms: f64,
    skipped_bytes: usize,
    /// `firmware scenario` → `outcome reason`.
    outcomes: BTreeMap<String, String>,
}

fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address")
}

/// One lab: `boards` twins behind the serial backend, at their own loopback addresses or not.
fn run_lab(plan: &Plan, boards: usize, addressed: bool) -> Figures {
    let server = free_tcp();
    let sntp = UdpSocket::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address");
    // Every host any cell's firmware or scenario names goes to the lab's server.
    let hosts: BTreeSet<String> = plan
        .cells
        .iter()
        .flat_map(|cell| {
            let firmware = plan.fleet.get(&cell.firmware).expect("the firmware");
            let url = firmware.ota_url.as_ref().expect("an OTA URL");
            Setup::for_cell(firmware, url, &plan.scenarios[cell.scenario], Vec::new()).hosts
        })
        .collect();
    let address = |i: usize| -> IpAddr { [127, 0, 0, 2 + i as u8].into() };
    let twins: Vec<Arc<TwinHandle>> = (0..boards)
        .map(|i| {
            let network = LabNetwork {
                hosts: hosts.iter().map(|h| (h.clone(), server)).collect(),
                time: TimeService::Server(sntp),
                address: addressed.then(|| address(i)),
            };
            Arc::new(
                TwinDevice::spawn(TwinConfig { network, download: true, ..TwinConfig::default() }).expect("a twin"),
            )
        })
        .collect();

    let dir = std::env::temp_dir().join(format!("otarig-lab-boards-{}-{boards}-{addressed}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let mut text = format!(
        "retries = 0\n[server]\nlisten = \"{server}\"\n[sntp]\nlisten = \"{sntp}\"\n[timeouts]\nboot = 10\nupdate = 30\n"
    );
    for (i, twin) in twins.iter().enumerate() {
        text += &format!(
            "[[board]]\nid = \"bench-{i}\"\nchip = \"esp32\"\nport = \"{}\"\nreset = \"none\"\n",
            twin.port_path().display()
        );
        if addressed {
            text += &format!("address = \"{}\"\n", address(i));
        }
    }
    let config = dir.join("otarig.toml");
    std::fs::write(&config, text).expect("the lab config");
    let resets = twins.clone();
    let download = move |check: &PreflightCheck<'_>| {
        let board: usize = check.board.strip_prefix("bench-").and_then(|n| n.parse().ok()).expect("a bench board");
        resets[board].reset(true);
        Ok(())
    };
    let out = dir.join("run");
    let options = RunOptions {
        limits: WatchLimits::new(Duration::from_secs(30)),
        lab: Some(lab::load(&config).expect("the lab config reads")),
        retries: 0,
        locks: Some(LockDir::new(dir.join("locks"))),
        preflight: Some(Arc::new(download)),
        ..RunOptions::new(&out)
    };

    let flashes = Mutex::new(Vec::new());
    let outcomes = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    let summary = run::run(plan, &options, |event| match event {
        RunEvent::Flashed { firmware, board, report, .. } => {
            let mut flashes = flashes.lock().unwrap();
            // A board's first cell of a firmware writes it; the next ones find it in place.
            let first = !flashes.iter().any(|(seen, _, _, _)| *seen == (firmware.to_owned(), board.to_owned()));
            flashes.push(((firmware.to_owned(), board.to_owned()), first, report.elapsed, report.bytes_written()));
        }
        RunEvent::CellFinished { result, .. } => {
            let key = format!("{} {}", result.firmware, result.scenario);
            outcomes.lock().unwrap().insert(key, common::checked_outcome(result));
        }
        _ => {}
    })
    .expect("the run");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(summary.total(), plan.cells.len());

    let flashes = flashes.into_inner().unwrap();
    let median = |first: bool| {
        let mut picked: Vec<(Duration, usize)> =
            flashes.iter().filter(|f| f.1 == first).map(|&(_, _, elapsed, bytes)| (elapsed, bytes)).collect();
        picked.sort_unstable();
        picked.get(picked.len() / 2).map_or((0.0, 0), |&(elapsed, bytes)| (elapsed.as_secs_f64() * 1e3, bytes))
    };
    let ((whole_ms, whole_bytes), (skipped_ms, skipped_bytes)) = (median(true), median(false));
    Figures {
        cells: plan.cells.len(),
        seconds,
        whole_ms,
        whole_bytes,
        skipped_ms,
        skipped_bytes,
        outcomes: outcomes.into_inner().unwrap(),
    }
}
