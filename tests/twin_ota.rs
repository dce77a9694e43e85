//! The twin runs the firmware's update client after boot: the founding case end to end (a
//! DST Root CA X3 v3.2 device against today's GTS chain, the DST cross-sign rescue, and the
//! same rescue with date checks), on an in-process twin, the scenario's real HTTPS server and
//! the lab DNS map; the transcript goes back through the replay classifier.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::image::build::merged_flash;
use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::pki::LabPki;
use otarig::replay::replay_bytes;
use otarig::scenario::Scenario;
use otarig::server::{ServeConfig, UpdateServer};
use otarig::twin::device::{TwinConfig, TwinDevice};
use otarig::twin::network::LabNetwork;

mod common;

use common::TempDir;
use common::serial::{count, find, read_until};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FAILED: [&[u8]; 2] = [b"Firmware Upgrades Failed", b"Firmware upgrade failed"];
const STARTED: [&[u8]; 2] = [b"Calling app_main()", b"Starting scheduler on APP CPU."];

struct Lab {
    pki: LabPki,
    fleet: Fleet,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
        let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
        Lab { pki, fleet }
    })
}

/// A complete line containing `needle` after `from`.
fn line_done(seen: &[u8], from: usize, needle: &[u8]) -> bool {
    find(&seen[from..], needle).is_some_and(|at| find(&seen[from + at..], b"\r\n").is_some())
}

/// Decided: the example gave up, or after the update's restart the new app has started.
fn decided(seen: &[u8]) -> bool {
    if FAILED.iter().any(|line| line_done(seen, 0, line)) {
        return true;
    }
    find(seen, b"rst:0xc (SW_CPU_RESET)").is_some_and(|at| STARTED.iter().any(|line| line_done(seen, at, line)))
}

/// Runs `firmware` against `scenario` on a twin; returns what the twin printed.
fn cell(firmware: &str, scenario: &str) -> Vec<u8> {
    let lab = lab();
    let scenario = Scenario::load(&Path::new(ROOT).join(format!("scenarios/{scenario}.toml")), &lab.pki).unwrap();
    let manifest = lab.fleet.get(firmware).unwrap();
    let built = build(manifest, &lab.fleet, &lab.pki).unwrap();
    let update_id = scenario.image.clone().unwrap();
    let update = build(lab.fleet.get(&update_id).unwrap(), &lab.fleet, &lab.pki).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let config = ServeConfig::for_scenario(&scenario, &lab.pki, Arc::from(update.app), "/firmware.bin").unwrap();
    let server = runtime.block_on(UpdateServer::bind("127.0.0.1:0".parse().unwrap(), config)).unwrap();
    let address = server.local_addr();
    let (events, _received) = tokio::sync::mpsc::unbounded_channel();
    runtime.spawn(server.run(events, std::future::pending()));

    let tmp = TempDir::new(&format!("twin-ota-{firmware}-{}", scenario.id));
    let flash_path = tmp.0.join("board.flash");
    std::fs::write(&flash_path, merged_flash(4 << 20, &built.bootloader, None, &[(0x10000, &built.app)])).unwrap();
    let network = LabNetwork {
        hosts: BTreeMap::from([("ota.example.com".to_owned(), address)]),
        sntp_time: Some(scenario.date.unix_timestamp()),
    };
    let twin =
        TwinDevice::spawn(TwinConfig { flash_file: Some(flash_path), network, ..TwinConfig::default() }).unwrap();
    let mut port = serialport::new(twin.port_path().to_string_lossy(), 115_200)
        .timeout(std::time::Duration::from_millis(20))
        .open()
        .unwrap();
    twin.reset(false);
    let mut seen = Vec::new();
    read_until(&mut port, &mut seen, decided);
    seen
}

fn text(transcript: &[u8]) -> String {
    String::from_utf8_lossy(transcript).into_owned()
}

#[test]
fn the_founding_case_fails_exactly_as_in_the_field() {
    let transcript = cell("dst-x3-idf3.2", "gts-chain");
    let text = text(&transcript);
    for line in [
        ") esp-tls: mbedtls_ssl_handshake returned -0x2700\x1b[0m\r\n",
        ") esp-tls: Failed to verify peer certificate!\x1b[0m\r\n",
        ") esp-tls: verification info:   ! The certificate is not correctly signed by the trusted CA\r\n\x1b[0m\r\n",
        ") esp_https_ota: Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT\x1b[0m\r\n",
        ") simple_ota_example: Firmware Upgrades Failed\x1b[0m\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let outcome = replay_bytes(&transcript).verdict.outcome;
    assert_eq!((outcome.outcome, outcome.reason), (OutcomeClass::TlsVerify, Some(VerifyReason::Untrusted)));
}

#[test]
fn the_dst_cross_sign_rescues_the_v3_2_device() {
    let transcript = cell("dst-x3-idf3.2", "dst-cross-sign-rescue");
    let text = text(&transcript);
    assert!(text.contains("esp_https_ota: esp_ota_set_boot_partition succeeded"), "{text}");
    assert_eq!(count(&transcript, b"rst:0xc (SW_CPU_RESET)"), 1);
    assert!(text.contains("Loaded app from partition at offset 0x110000"), "{text}");
    // The bootloader is still v3.2's: an update never rewrites it.
    assert_eq!(count(&transcript, b"ESP-IDF v3.2 2nd stage bootloader"), 2);
}

#[test]
fn with_date_checks_the_rescue_chain_is_expired() {
    let transcript = cell("dst-x3-idf3.2-timecheck", "dst-cross-sign-rescue");
    let text = text(&transcript);
    assert!(text.contains("esp-tls: verification info:   ! The certificate validity has expired\r\n"), "{text}");
    assert!(text.contains("simple_ota_example: Firmware Upgrades Failed"), "{text}");
}
