//! `otarig run` on the lab config's boards. No real board is attached here, so the board is a
//! twin reached through the serial backend by its pseudo-terminal (`reset = "none"`, the way a
//! bench board without reset wiring is driven): the twin's lab network sends the firmware's update
//! host to the config's `[server] listen`, and the test puts it into download mode before each
//! cell, as a person at the bench would. Checked: result lines from the board, a second cell of
//! the same firmware that only has its otadata reset (MD5), each cell's date from the lab's
//! SNTP responder, two boards with addresses side by side each served only its own cell, cells
//! no device can take, a config in error, and calibration against twins.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otarig::lab::{self, LabConfig};
use otarig::run::{self, LabDirs, LockDir, Plan, PreflightCheck, RunEvent, RunOptions, Selection, WatchLimits};
use otarig::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use otarig::twin::network::{LabNetwork, TimeService};
use serde_json::Value;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FIRMWARE: &str = "dst-x3-idf3.2";
/// The two scenarios' expectations for the firmware: an update, then the founding failure.
const SCENARIOS: [&str; 2] = ["dst-cross-sign-rescue", "gts-chain"];
const LOADED: &str = "Loaded app from partition at offset 0x10000";

fn plan(scenarios: &[&str]) -> Plan {
    let dirs = LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") };
    let selection = Selection {
        firmware: vec![FIRMWARE.into()],
        scenarios: scenarios.iter().map(ToString::to_string).collect(),
        ..Selection::default()
    };
    Plan::new(&dirs, &selection).unwrap()
}

/// A loopback address no one listens on now: the lab's fixed server address for the test.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The twin on the bench: in download mode, its network the lab's (the firmware's update host
/// at the lab's server address, SNTP with the first scenario's date).
fn bench_twin(plan: &Plan, server: SocketAddr) -> Arc<TwinHandle> {
    board_twin(plan, FIRMWARE, server, TimeService::Answers(plan.scenarios[0].date.unix_timestamp()), None)
}

/// A twin standing in for a board on the lab network: in download mode, `firmware`'s update
/// host at the lab's `server`, the time from `time`, its connections from `address`.
fn board_twin(
    plan: &Plan,
    firmware: &str,
    server: SocketAddr,
    time: TimeService,
    address: Option<IpAddr>,
) -> Arc<TwinHandle> {
    let host = plan.fleet.get(firmware).unwrap().ota_url.as_ref().unwrap().host.clone();
    let network = LabNetwork { hosts: [(host, server)].into(), time, address };
    Arc::new(TwinDevice::spawn(TwinConfig { network, download: true, ..TwinConfig::default() }).unwrap())
}

/// A lab config with the bench board on `port`, the server at `server`, and `extra` lines.
fn write_config(dir: &Path, port: &Path, server: SocketAddr, extra: &str) -> PathBuf {
    let path = dir.join("otarig.toml");
    let text = format!(
        "retries = 0\n{extra}\n[server]\nlisten = \"{server}\"\n\n[timeouts]\nboot = 5\nupdate = 10\n\n\
         [[board]]\nid = \"bench\"\nchip = \"esp32\"\nport = \"{}\"\nreset = \"none\"\n",
        port.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Options for a run in `out` on `lab`; before each cell on the bench board, the twin is put
/// into download mode (no reset wiring: the serial backend expects the chip in the loader).
fn options(out: &Path, lab: LabConfig, twin: &Arc<TwinHandle>) -> RunOptions {
    let twin = Arc::clone(twin);
    let download = move |check: &PreflightCheck<'_>| {
        if check.board == "bench" {
            twin.reset(true);
        }
        Ok(())
    };
    RunOptions {
        limits: WatchLimits::new(Duration::from_secs(10)),
        lab: Some(lab),
        retries: 0,
        locks: Some(LockDir::new(out.join("locks"))),
        preflight: Some(Arc::new(download)),
        ..RunOptions::new(out)
    }
}

/// The lines of a results file, parsed, by scenario.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    lines.sort_by_key(|line| line["scenario"].as_str().unwrap().to_owned());
    lines
}

fn transcript(dir: &Path, line: &Value) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join(line["transcript"].as_str().unwrap())).unwrap()).into_owned()
}

#[test]
fn cells_run_on_a_board_and_the_second_only_resets_otadata() {
    let tmp = TempDir::new("run-boards");
    let server = free_addr();
    let plan = plan(&SCENARIOS);
    let twin = bench_twin(&plan, server);
    let lab = lab::load(&write_config(&tmp.0, &twin.port_path(), server, "")).unwrap();
    let out = tmp.0.join("run");
    let flashed = Mutex::new(Vec::new());
    let started = Mutex::new(Vec::new());
    let summary = run::run(&plan, &options(&out, lab, &twin), |event| match event {
        RunEvent::Flashed { scenario, board, report, .. } => {
            let written: Vec<(u32, bool)> = report.regions.iter().map(|r| (r.offset, r.written)).collect();
            flashed.lock().unwrap().push((scenario.to_owned(), board.to_owned(), written));
        }
        RunEvent::CellStarted { board, .. } => started.lock().unwrap().push(board.to_owned()),
        _ => {}
    })
    .unwrap();

    assert_eq!((summary.pass, summary.total()), (2, 2), "{summary:?}");
    assert_eq!(*started.lock().unwrap(), ["bench", "bench"]);
    let results = lines(&out.join("results.jsonl"));
    let outcomes: Vec<(&str, &str, &str)> = results
        .iter()
        .map(|l| {
            (l["board"].as_str().unwrap(), l["verdict"].as_str().unwrap(), l["observed"]["outcome"].as_str().unwrap())
        })
        .collect();
    assert_eq!(outcomes, [("bench", "pass", "updated"), ("bench", "pass", "tls-verify")]);
    for line in &results {
        assert!(transcript(&out, line).contains(LOADED), "the boot log is in the transcript: {line}");
        assert!(line["server_events"].as_array().is_some_and(|e| !e.is_empty()), "the fixed server served: {line}");
    }

    // The first cell wrote the images (the fresh flash's otadata was already erased); the
    // second found them in place and only had the updated otadata erased again.
    let flashed = flashed.lock().unwrap();
    let regions = |written: [bool; 4]| [0x1000, 0x8000, 0xd000, 0x10000].into_iter().zip(written).collect::<Vec<_>>();
    assert_eq!(flashed[0], (SCENARIOS[0].to_owned(), "bench".to_owned(), regions([true, true, false, true])));
    assert_eq!(flashed[1], (SCENARIOS[1].to_owned(), "bench".to_owned(), regions([false, false, true, false])));

    // The board was locked for the run, and is free again.
    assert!(LockDir::new(out.join("locks")).try_take("bench").is_ok());
}

/// The last day DST Root CA X3 was valid, and the day after, as two scenarios for the firmware
/// that checks dates: the same long chain, an update the first day, expired the second.
const EXPIRY_EVE: &str = "title = \"The eve of DST Root CA X3's expiry\"\ndate = \"2021-09-29\"\n\
    [leaf]\nissuer = \"r3\"\n[server]\nchain = [\"leaf\", \"r3\", \"isrg_root_x1_by_dst\"]\nimage = \"v2.0.0\"\n\
    [expect]\n\"dst-x3-idf3.2-timecheck\" = \"updated\"\n";

/// The firmware that checks dates, and a plan of it on the eve and the day after.
const TIMECHECK: &str = "dst-x3-idf3.2-timecheck";

fn expiry_plan(dir: &Path) -> Plan {
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("scenarios/pki"), scenarios.join("pki")).unwrap();
    std::fs::write(scenarios.join("dst-expiry-eve.toml"), EXPIRY_EVE).unwrap();
    std::fs::copy(
        Path::new(ROOT).join("scenarios/le-long-chain-2021.toml"),
        scenarios.join("dst-expiry-day-after.toml"),
    )
    .unwrap();
    let dirs = LabDirs { scenarios, fleet: Path::new(ROOT).join("firmware-images") };
    let plan = Plan::new(&dirs, &Selection { firmware: vec![TIMECHECK.into()], ..Selection::default() }).unwrap();
    assert_eq!(plan.cells.len(), 2);
    plan
}

/// (scenario, board, outcome, reason) of each result line, by scenario.
fn observed(results: &[Value]) -> Vec<(&str, &str, &str, &str)> {
    results
        .iter()
        .map(|l| {
            let reason = l["observed"]["reason"].as_str().unwrap_or("-");
            let (scenario, board) = (l["scenario"].as_str().unwrap(), l["board"].as_str().unwrap());
            (scenario, board, l["observed"]["outcome"].as_str().unwrap(), reason)
        })
        .collect()
}

#[test]
fn a_board_s_sntp_answers_each_cell_with_its_scenario_s_date() {
    let tmp = TempDir::new("run-boards-sntp");
    let plan = expiry_plan(&tmp.0);
    // The board asks the lab's SNTP responder, which the run starts on `[sntp] listen`: its
    // only way to learn a date.
    let server = free_addr();
    let sntp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let twin = board_twin(&plan, TIMECHECK, server, TimeService::Server(sntp), None);
    let config = write_config(&tmp.0, &twin.port_path(), server, &format!("[sntp]\nlisten = \"{sntp}\"\n"));
    let out = tmp.0.join("run");
    let summary = run::run(&plan, &options(&out, lab::load(&config).unwrap(), &twin), |_| {}).unwrap();

    // Both cells on the one board, one after the other: the eve's date let the chain through,
    // the next day's (the responder set again between the cells) found the root expired.
    let results = lines(&out.join("results.jsonl"));
    assert_eq!(
        observed(&results),
        [("dst-expiry-day-after", "bench", "tls-verify", "expired"), ("dst-expiry-eve", "bench", "updated", "-")],
        "{summary:?}"
    );
    assert_eq!((summary.pass, summary.total()), (2, 2), "{summary:?}");
}

#[test]
fn boards_with_addresses_run_side_by_side_each_served_its_own_cell() {
    let tmp = TempDir::new("run-boards-parallel");
    let plan = expiry_plan(&tmp.0);
    let server = free_addr();
    let sntp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Two boards on the lab network at their own addresses (all of 127/8 is this host's).
    let addresses: [IpAddr; 2] = [[127, 0, 0, 2].into(), [127, 0, 0, 3].into()];
    let twins: Vec<Arc<TwinHandle>> =
        addresses.iter().map(|&ip| board_twin(&plan, TIMECHECK, server, TimeService::Server(sntp), Some(ip))).collect();
    let mut text = format!(
        "retries = 0\n[server]\nlisten = \"{server}\"\n[sntp]\nlisten = \"{sntp}\"\n[timeouts]\nboot = 5\nupdate = 10\n"
    );
    for (i, twin) in twins.iter().enumerate() {
        text += &format!(
            "[[board]]\nid = \"bench-{i}\"\nchip = \"esp32\"\nport = \"{}\"\nreset = \"none\"\naddress = \"{}\"\n",
            twin.port_path().display(),
            addresses[i]
        );
    }
    let config = tmp.0.join("otarig.toml");
    std::fs::write(&config, text).unwrap();
    let out = tmp.0.join("run");
    let mut options = options(&out, lab::load(&config).unwrap(), &twins[0]);
    let resets = twins.clone();
    options.preflight = Some(Arc::new(move |check: &PreflightCheck<'_>| {
        let board: usize = check.board.strip_prefix("bench-").unwrap().parse().unwrap();
        resets[board].reset(true);
        Ok(())
    }));

    // Each board, once flashed (its cell's server routed and SNTP date set), waits for the
    // other to be flashed too: boards that took turns would never meet there.
    let flashed = (Mutex::new(0usize), std::sync::Condvar::new());
    let met = Mutex::new(Vec::new());
    let summary = run::run(&plan, &options, |event| {
        if let RunEvent::Flashed { board, .. } = event {
            let (count, arrived) = &flashed;
            let mut count = count.lock().unwrap();
            *count += 1;
            arrived.notify_all();
            let (count, waited) = arrived.wait_timeout_while(count, Duration::from_secs(20), |n| *n < 2).unwrap();
            met.lock().unwrap().push((board.to_owned(), !waited.timed_out() && *count == 2));
        }
    })
    .unwrap();
    let mut met = met.into_inner().unwrap();
    met.sort();
    assert_eq!(met, [("bench-0".to_owned(), true), ("bench-1".to_owned(), true)], "the boards ran side by side");

    // Each cell on its own board got its own scenario's date and server, though they ran at
    // the same time; every connection its server saw came from its board.
    let results = lines(&out.join("results.jsonl"));
    let seen = observed(&results);
    assert_eq!(
        seen.iter().map(|&(scenario, _, outcome, reason)| (scenario, outcome, reason)).collect::<Vec<_>>(),
        [("dst-expiry-day-after", "tls-verify", "expired"), ("dst-expiry-eve", "updated", "-")],
        "{summary:?}"
    );
    assert_ne!(seen[0].1, seen[1].1, "one cell per board");
    for line in &results {
        let board: usize = line["board"].as_str().unwrap().strip_prefix("bench-").unwrap().parse().unwrap();
        let events = line["server_events"].as_array().unwrap();
        let accepted: Vec<&str> =
            events.iter().filter_map(Value::as_str).filter(|e| e.contains("accepted from")).collect();
        assert!(!accepted.is_empty(), "{line}");
        for event in accepted {
            assert!(event.contains(&format!("accepted from {}:", addresses[board])), "{event} in {line}");
        }
    }
    assert_eq!((summary.pass, summary.total()), (2, 2), "{summary:?}");
}

#[test]
fn a_cell_no_device_can_take_is_an_error_that_says_why() {
    let tmp = TempDir::new("run-boards-chip");
    let config = tmp.0.join("otarig.toml").to_string_lossy().into_owned();
    let text = "[server]\nlisten = \"127.0.0.1:0\"\n\n[[board]]\nid = \"c3\"\nchip = \"esp32c3\"\n\
                port = \"/dev/otarig-no-such-port\"\nreset = \"none\"\n";
    std::fs::write(&config, text).unwrap();
    let lab = lab::load(Path::new(&config)).unwrap();
    let out = tmp.0.join("run");
    let options =
        RunOptions { lab: Some(lab), locks: Some(LockDir::new(tmp.0.join("locks"))), ..RunOptions::new(&out) };
    let summary = run::run(&plan(&["gts-chain"]), &options, |_| {}).unwrap();
    assert_eq!((summary.error, summary.total()), (1, 1));
    let results = lines(&out.join("results.jsonl"));
    assert_eq!(results[0]["verdict"], otarig::results::Verdict::Error.as_str());
    assert_eq!(results[0]["error"], "no esp32 device in the lab (it has: esp32c3)");
    assert!(results[0]["observed"].is_null());
}

#[test]
fn calibration_runs_each_cell_on_the_board_and_on_a_twin() {
    let tmp = TempDir::new("run-boards-calibrate");
    let server = free_addr();
    let plan = plan(&SCENARIOS);
    let twin = bench_twin(&plan, server);
    let lab = lab::load(&write_config(&tmp.0, &twin.port_path(), server, "twins = 1")).unwrap();
    let out = tmp.0.join("run");
    let calibration = run::calibrate(&plan, &options(&out, lab, &twin), |_| {}).unwrap();

    assert_eq!((calibration.boards.pass, calibration.twins.pass), (2, 2));
    assert_eq!(calibration.disagreements().count(), 0);
    assert_eq!(run::calibrate::disagreement_table(&calibration.lines), "");
    let boards: Vec<Value> = lines(&out.join("results.jsonl"));
    let twins: Vec<Value> = lines(&out.join("twin/results.jsonl"));
    assert!(boards.iter().all(|l| l["board"] == "bench"), "{boards:?}");
    assert!(twins.iter().all(|l| l["board"] == "twin-1"), "{twins:?}");
    for line in &twins {
        assert!(transcript(&out.join("twin"), line).contains(LOADED));
    }

    let calibrated = lines(&out.join("calibration.jsonl"));
    assert_eq!(calibrated.len(), 2);
    assert_eq!(
        calibrated[1],
        serde_json::json!({
            "firmware": FIRMWARE,
            "scenario": "gts-chain",
            "board": "bench",
            "board_observed": {"outcome": "tls-verify", "reason": "untrusted"},
            "twin_observed": {"outcome": "tls-verify", "reason": "untrusted"},
            "agree": true,
        })
    );
    assert_eq!(
        (&calibrated[0]["board_observed"]["outcome"], &calibrated[0]["agree"]),
        (&"updated".into(), &true.into())
    );
}

fn otarig(args: &[&str], locks: &Path) -> (u8, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(ROOT)
        .env("OTARIG_LOCK_DIR", locks)
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap() as u8, text(&output.stdout), text(&output.stderr))
}

#[test]
fn the_binary_runs_a_cell_on_the_board_of_its_config() {
    let tmp = TempDir::new("run-boards-bin");
    let server = free_addr();
    let plan = plan(&["gts-chain"]);
    let twin = bench_twin(&plan, server);
    let config = write_config(&tmp.0, &twin.port_path(), server, "");
    let out = tmp.0.join("run");
    let args = ["run", "--config", config.to_str().unwrap(), "--firmware", FIRMWARE, "--scenario", "gts-chain"];
    let (code, stdout, stderr) = otarig(&[&args[..], &["--out", out.to_str().unwrap()]].concat(), &tmp.0.join("locks"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("1 cells (1 firmware x 1 scenarios) on 1 board;"), "{stdout}");
    assert!(stdout.contains("PASS  dst-x3-idf3.2 x gts-chain on bench: tls-verify / untrusted"), "{stdout}");
    let results = lines(&out.join("results.jsonl"));
    assert_eq!((&results[0]["board"], &results[0]["verdict"]), (&"bench".into(), &"pass".into()));
}

#[test]
fn the_binary_refuses_a_config_in_error_and_calibration_without_a_board() {
    let tmp = TempDir::new("run-boards-usage");
    let locks = tmp.0.join("locks");
    let bad = tmp.0.join("otarig.toml");
    std::fs::write(&bad, "twins = 1\n[[board]\nid = \"a\"\n").unwrap();
    let cell = ["--firmware", FIRMWARE, "--scenario", "gts-chain", "--out"];
    let out = tmp.0.join("run");
    let out = out.to_str().unwrap();
    let (code, _, stderr) = otarig(&[&["run", "--config", bad.to_str().unwrap()], &cell[..], &[out]].concat(), &locks);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{}:2:", bad.display())), "file:line: {stderr}");

    let twins = tmp.0.join("twins.toml");
    std::fs::write(&twins, "twins = 1\n").unwrap();
    let calibrate = ["run", "--calibrate", "--config", twins.to_str().unwrap()];
    let (code, _, stderr) = otarig(&[&calibrate[..], &cell[..], &[out]].concat(), &locks);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--calibrate") && stderr.contains("[[board]]"), "{stderr}");
    let (code, _, stderr) = otarig(&[&["run", "--calibrate"], &cell[..], &[out]].concat(), &locks);
    assert_eq!(code, 2, "no config at all: {stderr}");
    assert!(!Path::new(out).join("results.jsonl").exists(), "nothing ran");
}
