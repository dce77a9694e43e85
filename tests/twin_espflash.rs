//! espflash 4.7, as a library, flashes the twin over its pseudo-terminal like a board: chip
//! detection, flash size, the v3.2 fleet firmware written with MD5 verification; then the
//! twin boots what was written and the replay classifier reads its boot log.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use espflash::connection::{Connection, Port, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::{FlashSize, Flasher};
use espflash::image_format::Segment;
use espflash::target::{Chip, DefaultProgressCallback};
use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::image::partition::two_ota_table;
use otarig::pki::LabPki;
use otarig::replay::replay_bytes;
use otarig::twin::device::{TwinConfig, TwinDevice};
use serialport::SerialPort;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOADED: &[u8] = b"Loaded app from partition at offset 0x10000";
/// Overall limit for one boot log to arrive (it takes milliseconds).
const DEADLINE: Duration = Duration::from_secs(5);

/// Reads from `port` into `seen` until `done(seen)`, or panics at the deadline.
fn read_until(port: &mut Port, seen: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    while !done(seen) {
        assert!(Instant::now() < deadline, "timed out; read so far:\n{}", String::from_utf8_lossy(seen));
        match port.read(&mut buf) {
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the twin's port: {e}"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Padded to 4 bytes with 0xFF, as `write_bin_to_flash` does.
fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.resize(bytes.len().next_multiple_of(4), 0xFF);
    bytes
}

#[test]
fn espflash_flashes_the_twin_and_it_boots_what_was_written() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
    let manifest = fleet.manifests.iter().find(|m| m.id == "dst-x3-idf3.2").unwrap();
    let firmware = build(manifest, &fleet, &pki).unwrap();
    let regions = [
        (0x1000, padded(firmware.bootloader.clone())),
        (0x8000, padded(two_ota_table().to_bin().unwrap())),
        (0x10000, padded(firmware.app.clone())),
    ];

    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let port = serialport::new(twin.port_path().to_string_lossy(), 115_200).open_native().unwrap();
    let port_info = serialport::UsbPortInfo { vid: 0, pid: 0, serial_number: None, manufacturer: None, product: None };
    let connection =
        Connection::new(port, port_info, ResetAfterOperation::NoReset, ResetBeforeOperation::NoReset, 115_200);
    // No stub (the twin runs no RAM code), MD5 verification on, no skipping.
    let mut flasher = Flasher::connect(connection, false, true, false, None, None).unwrap();
    assert_eq!(flasher.chip(), Chip::Esp32);
    assert_eq!(flasher.flash_detect().unwrap(), Some(FlashSize::_4Mb));

    // One call: espflash ends every call with FLASH_END, after which the ROM leaves the loader.
    let segments: Vec<Segment<'_>> = regions.iter().map(|(addr, data)| Segment::new(*addr, data)).collect();
    flasher.write_bins_to_flash(&segments, &mut DefaultProgressCallback).unwrap();

    let flash = twin.flash();
    for (addr, data) in &regions {
        let at = *addr as usize;
        assert!(flash[at..at + data.len()] == data[..], "flash differs at {addr:#x}");
    }

    // FLASH_END made the chip reboot: its boot log follows the reply on the line.
    let mut port: Port = flasher.into();
    port.set_timeout(Duration::from_millis(20)).unwrap();
    let mut after_flash = Vec::new();
    read_until(&mut port, &mut after_flash, |seen| find(seen, LOADED).is_some());
    assert!(find(&after_flash, b"rst:0xc (SW_CPU_RESET)").is_some());

    // A reset (EN pulsed) boots again; the new log starts at the ROM banner of a power-on reset.
    twin.reset(false);
    let mut after_reset = Vec::new();
    let power_on = b"rst:0x1 (POWERON_RESET)";
    read_until(&mut port, &mut after_reset, |seen| {
        find(seen, power_on).is_some_and(|at| find(&seen[at..], LOADED).is_some())
    });
    let start = find(&after_reset, b"ets Jun  8 2016").unwrap();
    assert!(start < find(&after_reset, power_on).unwrap());
    let report = replay_bytes(&after_reset[start..]);
    assert!(report.formats.rom, "{report:?}");
    let idf = report.idf_version.expect("an ESP-IDF version");
    assert_eq!((idf.version.as_str(), idf.exact), ("v3.2", true), "{idf:?}");
}
