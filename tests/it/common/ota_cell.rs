//! One update on an in-process twin: a fleet firmware flashed (as a merged flash file), the
//! scenario's real HTTPS server on 127.0.0.1, the lab DNS map, the boot and the update read
//! from the twin's port until the example gives up or the new app has started; the server's
//! events collected once every connection has closed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use otarig::firmware::build::build;
use otarig::firmware::start::PowerCut;
use otarig::firmware::{FirmwareManifest, Fleet};
use otarig::image::build::merged_flash;
use otarig::pki::LabPki;
use otarig::scenario::Scenario;
use otarig::server::{ServeConfig, ServerEvent, UpdateServer};
use otarig::toml_source::TomlSource;
use otarig::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use otarig::twin::network::{LabNetwork, TimeService};

use super::TempDir;
use super::serial::{find, read_until, redact_timestamp};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FAILED: [&[u8]; 2] = [b"Firmware Upgrades Failed", b"Firmware upgrade failed"];
/// The app's last start-up line: v5.x, then earlier versions.
pub const STARTED: [&[u8]; 2] = [b"Calling app_main()", b"Starting scheduler on APP CPU."];

pub struct Lab {
    pub pki: LabPki,
    pub fleet: Fleet,
}

pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
        let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
        Lab { pki, fleet }
    })
}

/// Where the scenario comes from.
pub enum Source<'a> {
    /// `scenarios/<id>.toml`.
    Named(&'a str),
    /// A scenario written in the test.
    Inline(&'a str),
}

/// How the firmware's OTA host resolves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dns {
    /// To the scenario's server.
    Server,
    /// Not at all.
    Missing,
    /// To a port nothing listens on.
    ClosedPort,
}

pub struct CellRun {
    pub transcript: Vec<u8>,
    pub events: Vec<ServerEvent>,
}

pub fn load_scenario(source: &Source<'_>) -> Scenario {
    match source {
        Source::Named(id) => Scenario::load(&Path::new(ROOT).join(format!("scenarios/{id}.toml")), &lab().pki).unwrap(),
        Source::Inline(text) => Scenario::from_source(&TomlSource::new("inline.toml", *text), &lab().pki).unwrap(),
    }
}

/// A complete line containing `needle` after `from`.
fn line_done(seen: &[u8], from: usize, needle: &[u8]) -> bool {
    find(&seen[from..], needle).is_some_and(|at| find(&seen[from + at..], b"\r\n").is_some())
}

/// Decided: the example gave up, or after the update's restart the new app has started (or,
/// after a power cut that left otadata switched, the power-on boot started it from ota_0).
pub fn decided(seen: &[u8]) -> bool {
    if FAILED.iter().any(|line| line_done(seen, 0, line)) {
        return true;
    }
    let started_after = |at: usize| STARTED.iter().any(|line| line_done(seen, at, line));
    if find(seen, b"rst:0xc (SW_CPU_RESET)").is_some_and(started_after) {
        return true;
    }
    // Power-on boots from flash (the twin's start in download mode is one too, from its loader).
    let power_on = b"rst:0x1 (POWERON_RESET),boot:0x13";
    let second = find(seen, power_on).and_then(|first| find(&seen[first + 1..], power_on).map(|at| first + 1 + at));
    second.is_some_and(|at| {
        find(&seen[at..], b"Loaded app from partition at offset 0x110000")
            .is_some_and(|loaded| started_after(at + loaded))
    })
}

/// Runs `firmware` against the scenario on a fresh twin; SNTP answers the scenario's date.
pub fn run_cell(firmware: &str, source: Source<'_>, dns: Dns) -> CellRun {
    run_cell_at(firmware, source, dns, None)
}

/// [`run_cell`] with SNTP answering `sntp_time` (Unix seconds) instead of the scenario's date.
pub fn run_cell_at(firmware: &str, source: Source<'_>, dns: Dns, sntp_time: Option<i64>) -> CellRun {
    run_cell_then(firmware, source, dns, sntp_time, None, |_, _, _| {})
}

/// [`run_cell_at`], then `then` with the twin, its port and the transcript so far (to reset
/// the twin and read on, say) before the server's events are collected. With `power_cut`,
/// the twin loses power where armed and is powered on again (a reset) once it has.
pub fn run_cell_then(
    firmware: &str,
    source: Source<'_>,
    dns: Dns,
    sntp_time: Option<i64>,
    power_cut: Option<PowerCut>,
    then: impl FnOnce(&TwinHandle, &mut Box<dyn serialport::SerialPort>, &mut Vec<u8>),
) -> CellRun {
    let lab = lab();
    let built = build(lab.fleet.get(firmware).unwrap(), &lab.fleet, &lab.pki).unwrap();
    let flash = merged_flash(4 << 20, &built.bootloader, None, &[(0x10000, &built.app)]);
    run_flash_then(firmware, flash, source, dns, sntp_time, power_cut, then)
}

/// [`run_cell`] with a manifest of the test's making (a fleet member changed, say).
pub fn run_manifest(firmware: &FirmwareManifest, source: Source<'_>, dns: Dns) -> CellRun {
    let lab = lab();
    let built = build(firmware, &lab.fleet, &lab.pki).unwrap();
    let flash = merged_flash(4 << 20, &built.bootloader, None, &[(0x10000, &built.app)]);
    run_flash_then(&firmware.id, flash, source, dns, None, None, |_, _, _| {})
}

/// [`run_cell_then`] with the whole flash given (a start state other than the factory app).
pub fn run_flash_then(
    firmware: &str,
    flash: Vec<u8>,
    source: Source<'_>,
    dns: Dns,
    sntp_time: Option<i64>,
    power_cut: Option<PowerCut>,
    then: impl FnOnce(&TwinHandle, &mut Box<dyn serialport::SerialPort>, &mut Vec<u8>),
) -> CellRun {
    let lab = lab();
    let scenario = load_scenario(&source);
    let update_id = scenario.image.clone().unwrap();
    let update = build(lab.fleet.get(&update_id).unwrap(), &lab.fleet, &lab.pki).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let config = ServeConfig::for_scenario(&scenario, &lab.pki, Arc::from(update.app), "/firmware.bin").unwrap();
    let server = runtime.block_on(UpdateServer::bind("127.0.0.1:0".parse().unwrap(), config)).unwrap();
    let address = server.local_addr();
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    runtime.spawn(server.run(events, std::future::pending()));

    let tag = format!("cell-{firmware}-{}-{:x}", scenario.id, address.port());
    let tmp = TempDir::new(&tag);
    let flash_path = tmp.0.join("board.flash");
    std::fs::write(&flash_path, flash).unwrap();
    let mut hosts = BTreeMap::new();
    match dns {
        Dns::Server => {
            hosts.insert("ota.example.com".to_owned(), address);
            for route in &scenario.hosts {
                hosts.insert(route.name.clone(), address);
            }
        }
        Dns::Missing => {}
        Dns::ClosedPort => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            hosts.insert("ota.example.com".to_owned(), closed);
        }
    }
    let network = LabNetwork {
        hosts,
        time: TimeService::Answers(sntp_time.unwrap_or(scenario.date.unix_timestamp())),
        address: None,
    };
    let config = TwinConfig { flash_file: Some(flash_path), network, power_cut, ..TwinConfig::default() };
    let twin = TwinDevice::spawn(config).unwrap();
    let mut port =
        serialport::new(twin.port_path().to_string_lossy(), 115_200).timeout(Duration::from_millis(20)).open().unwrap();
    twin.reset(false);
    let mut transcript = Vec::new();
    if power_cut.is_some() {
        // Keep reading (the twin writes as a UART does, waiting for a reader) until the cut.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !twin.wait_for_power_cut(Duration::from_millis(5)) {
            assert!(
                Instant::now() < deadline,
                "the armed power cut never fired:\n{}",
                String::from_utf8_lossy(&transcript)
            );
            while let Ok(n) = std::io::Read::read(&mut port, &mut buf) {
                if n == 0 {
                    break;
                }
                transcript.extend_from_slice(&buf[..n]);
            }
        }
        // Power on again: everything printed before the cut is already on the line.
        twin.reset(false);
    }
    read_until(&mut port, &mut transcript, decided);
    then(&twin, &mut port, &mut transcript);

    // Every connection the device opened has closed by now or closes in a moment.
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        while let Ok(event) = received.try_recv() {
            events.push(event);
        }
        let accepted = events.iter().filter(|e| matches!(e, ServerEvent::Accepted { .. })).count();
        let closed = events.iter().filter(|e| matches!(e, ServerEvent::Closed { .. })).count();
        if accepted == closed || Instant::now() > deadline {
            break;
        }
        std::thread::yield_now();
    }
    CellRun { transcript, events }
}

/// The server's events, without what changes from run to run (addresses, times, sizes of
/// freshly minted handshakes).
pub fn describe_events(events: &[ServerEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| {
            let id = event.connection();
            let text = match event {
                ServerEvent::Accepted { .. } | ServerEvent::Closed { .. } => return None,
                ServerEvent::ClientHello { sni, .. } => format!("client hello, SNI {}", sni.as_deref().unwrap_or("-")),
                ServerEvent::HandshakeDone { version, cipher_suite, .. } => {
                    format!("handshake done: {version} {cipher_suite}")
                }
                ServerEvent::HandshakeFailed { error, alert_from_client, .. } => {
                    format!(
                        "handshake failed: {error}; alert from client: {}",
                        alert_from_client.as_deref().unwrap_or("-")
                    )
                }
                ServerEvent::FaultBeforeTls { fault, .. } => format!("fault before TLS: {fault}"),
                ServerEvent::Request { method, path, .. } => format!("request {method} {path}"),
                ServerEvent::Responded { status, body_bytes, fault, .. } => {
                    format!(
                        "responded {status}, {body_bytes} body bytes{}",
                        fault.as_deref().map(|f| format!(", fault {f}")).unwrap_or_default()
                    )
                }
                ServerEvent::BadRequest { reason, .. } => format!("bad request: {reason}"),
            };
            Some(format!("#{id} {text}"))
        })
        .collect()
}

/// The update part of a transcript (after the first app start-up), readable for review:
/// timestamps as `(…)`, escape codes as `␛`, CRLF checked and dropped.
pub fn update_part(transcript: &[u8]) -> String {
    let start = STARTED
        .iter()
        .filter_map(|line| find(transcript, line).map(|at| at + find(&transcript[at..], b"\r\n").unwrap() + 2))
        .min()
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&transcript[start..]).into_owned();
    assert!(!text.replace("\r\n", "").contains('\n'), "every line ends in CRLF");
    text.split("\r\n").map(redact_timestamp).collect::<Vec<_>>().join("\n").replace('\x1b', "␛")
}
