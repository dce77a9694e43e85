//! One twin cell, end to end: reset, boot, the update client's handshake (leaf ← R11 ← ISRG
//! Root X1, an RSA-4096 root), the 938 KB download of `v2.0.0` into ota_0, its verification
//! (twice, as esp_ota_end and esp_ota_set_boot_partition do), otadata, the restart and the new
//! image's boot, read from the twin's port until the new app has started.
//!
//! Why: every cell of a lab run is one of these; on CI they all run on twins.
//!
//! `cargo bench --bench twin_cell` (release): median of 7 cells for a v3.2 and a v5.2 firmware,
//! each checked (the new app started from 0x110000). Without `--bench` one checked cell each.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::image::build::merged_flash;
use otarig::pki::LabPki;
use otarig::scenario::Scenario;
use otarig::server::{ServeConfig, UpdateServer};
use otarig::twin::device::{TwinConfig, TwinDevice};
use otarig::twin::network::{LabNetwork, TimeService};

const NEW_APP: &[u8] = b"Loaded app from partition at offset 0x110000";
const STARTED: [&[u8]; 2] = [b"Calling app_main()", b"Starting scheduler on APP CPU."];

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn new_app_started(seen: &[u8]) -> bool {
    find(seen, NEW_APP).is_some_and(|at| {
        STARTED.iter().any(|line| find(&seen[at..], line).is_some_and(|end| find(&seen[at + end..], b"\r\n").is_some()))
    })
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let runs = if benching { 7 } else { 1 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pki = LabPki::open(&root.join("scenarios/pki")).expect("lab PKI");
    let fleet = Fleet::load(&root.join("firmware-images"), &pki).expect("fleet");
    let scenario = Scenario::load(&root.join("scenarios/le-short-chain.toml"), &pki).expect("scenario");
    let update = build(fleet.get("v2.0.0").expect("v2.0.0"), &fleet, &pki).expect("update image");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let config = ServeConfig::for_scenario(&scenario, &pki, Arc::from(update.app), "/firmware.bin").expect("config");
    let server = runtime.block_on(UpdateServer::bind("127.0.0.1:0".parse().unwrap(), config)).expect("server");
    let address = server.local_addr();
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    runtime.spawn(server.run(events, std::future::pending()));
    let dir = std::env::temp_dir().join(format!("otarig-twin-cell-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    for firmware in ["isrg-x1-idf3.2", "bundle-idf5.2"] {
        let built = build(fleet.get(firmware).expect("firmware"), &fleet, &pki).expect("build");
        let flash = merged_flash(4 << 20, &built.bootloader, None, &[(0x10000, &built.app)]);
        let mut times = Vec::new();
        for run in 0..runs {
            let path = dir.join(format!("{firmware}-{run}.flash"));
            std::fs::write(&path, &flash).expect("flash file");
            let network = LabNetwork {
                hosts: BTreeMap::from([("ota.example.com".to_owned(), address)]),
                time: TimeService::Answers(scenario.date.unix_timestamp()),
                address: None,
            };
            let twin = TwinDevice::spawn(TwinConfig { flash_file: Some(path), network, ..TwinConfig::default() })
                .expect("twin");
            let mut port = serialport::new(twin.port_path().to_string_lossy(), 115_200)
                .timeout(Duration::from_millis(1))
                .open()
                .expect("port");
            let started = Instant::now();
            twin.reset(false);
            let mut seen = Vec::new();
            let mut buf = [0u8; 8192];
            while !new_app_started(&seen) {
                assert!(started.elapsed() < Duration::from_secs(60), "{}", String::from_utf8_lossy(&seen));
                if let Ok(n) = port.read(&mut buf) {
                    seen.extend_from_slice(&buf[..n]);
                }
            }
            times.push(started.elapsed());
            while received.try_recv().is_ok() {}
        }
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "twin_cell: {firmware}: boot, RSA-4096-rooted handshake, 938 KB download, verify, reboot: {:.0} ms (median of {runs})",
            median.as_secs_f64() * 1e3
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
