//! espflash 4.7, as a library, flashes the twin over its pseudo-terminal like a board: chip
//! detection, flash size, bootloader, partition table and app written with MD5 verification;
//! then the twin boots what was written (snapshots per bootloader generation), a reset boots it
//! again, a reset into download mode takes it back to the ROM loader, and the replay
//! classifier reads its boot log.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use espflash::connection::{Connection, Port, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::{FlashSize, Flasher};
use espflash::image_format::Segment;
use espflash::target::{Chip, DefaultProgressCallback};
use md5::{Digest, Md5};
use otarig::firmware::Fleet;
use otarig::firmware::build::{BuiltFirmware, build};
use otarig::image::partition::two_ota_table;
use otarig::pki::LabPki;
use otarig::replay::replay_bytes;
use otarig::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use serialport::SerialPort;

use crate::common;

use common::serial::{count, find, read_until, redact_timestamp};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOADED: &[u8] = b"Loaded app from partition at offset 0x10000";
/// The app's last start-up line: v5.x prints `Calling app_main()`, earlier versions start the
/// scheduler on both CPUs.
const STARTED: [&[u8]; 2] = [b"Calling app_main()", b"Starting scheduler on APP CPU."];

fn built(id: &str) -> BuiltFirmware {
    static FLEET: OnceLock<(LabPki, Fleet)> = OnceLock::new();
    let (pki, fleet) = FLEET.get_or_init(|| {
        let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
        let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
        (pki, fleet)
    });
    build(fleet.get(id).unwrap(), fleet, pki).unwrap()
}

/// Padded to 4 bytes with 0xFF, as `write_bin_to_flash` does.
fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.resize(bytes.len().next_multiple_of(4), 0xFF);
    bytes
}

/// True once the app's last start-up line is complete.
fn app_started(seen: &[u8]) -> bool {
    STARTED.iter().any(|line| find(seen, line).is_some_and(|at| find(&seen[at..], b"\r\n").is_some()))
}

/// Where the app's last start-up line ends (after its CRLF).
fn started_end(seen: &[u8]) -> usize {
    STARTED
        .iter()
        .filter_map(|line| find(seen, line).and_then(|at| find(&seen[at..], b"\r\n").map(|end| at + end + 2)))
        .min()
        .unwrap_or(seen.len())
}

/// Flashes `firmware`'s bootloader, the two-OTA table and its app onto a fresh twin with
/// espflash (no stub, MD5 verification); returns the twin, the port and what the twin printed
/// after FLASH_END, up to the app's start-up.
fn flash_and_boot(firmware: &BuiltFirmware) -> (TwinHandle, Port, Vec<u8>) {
    let regions = [
        (0x1000, padded(firmware.bootloader.clone())),
        (0x8000, padded(two_ota_table().to_bin().unwrap())),
        (0x10000, padded(firmware.app.clone())),
    ];

    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let port = serialport::new(twin.port_path().to_string_lossy(), 115_200).open_native().unwrap();
    let port_info = otarig::board::port::espflash_port_info(None);
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
    read_until(&mut port, &mut after_flash, app_started);
    // What the app does next (its update client) is not part of the boot.
    after_flash.truncate(started_end(&after_flash));
    (twin, port, after_flash)
}

/// From the ROM banner on, readable for review: `I (123)` timestamps as `I (…)`, escape codes
/// as `␛`, line ends checked and dropped.
fn reviewable(log: &[u8]) -> String {
    let start = find(log, b"ets Jun  8 2016").expect("the ROM banner");
    let text = String::from_utf8(log[start..].to_vec()).unwrap();
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'), "every line ends in CRLF");
    text.split("\r\n").map(redact_timestamp).collect::<Vec<_>>().join("\n").replace('\x1b', "␛")
}

#[test]
fn timestamps_are_redacted_and_nothing_else() {
    assert_eq!(redact_timestamp("I (29) boot: ESP-IDF v3.2"), "I (…) boot: ESP-IDF v3.2");
    assert_eq!(redact_timestamp("\x1b[0;32mI (540) cpu_start: x\x1b[0m"), "\x1b[0;32mI (…) cpu_start: x\x1b[0m");
    assert_eq!(redact_timestamp("rst:0x1 (POWERON_RESET),boot:0x13"), "rst:0x1 (POWERON_RESET),boot:0x13");
    assert_eq!(redact_timestamp("I (abc) x"), "I (abc) x");
}

#[test]
fn espflash_flashes_each_bootloader_generation_and_the_twin_boots_it() {
    for (id, bootloader_line) in [
        ("dst-x3-idf3.2", "ESP-IDF v3.2 2nd stage bootloader"),
        ("bundle-idf4.4", "ESP-IDF v4.4.8 2nd stage bootloader"),
        ("bundle-idf5.2", "ESP-IDF v5.2.5 2nd stage bootloader"),
    ] {
        let (_twin, _port, after_flash) = flash_and_boot(&built(id));
        assert_eq!(count(&after_flash, b"rst:0xc (SW_CPU_RESET)"), 1, "{id}");
        assert_eq!(count(&after_flash, bootloader_line.as_bytes()), 1, "{id}");
        assert_eq!(count(&after_flash, LOADED), 1, "{id}");
        insta::assert_snapshot!(format!("boot_after_flashing_{id}"), reviewable(&after_flash));
    }
}

#[test]
fn resets_boot_again_or_return_to_the_serial_loader() {
    let (twin, mut port, _) = flash_and_boot(&built("dst-x3-idf3.2"));

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

    // A reset with GPIO0 held low: the ROM waits for a flasher, and one connects again.
    twin.reset(true);
    let mut in_loader = Vec::new();
    read_until(&mut port, &mut in_loader, |seen| find(seen, b"waiting for download\r\n").is_some());
    assert!(find(&in_loader, b"boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))").is_some());
    assert_eq!(count(&in_loader, LOADED), 0, "no boot log in download mode");
    let port_info = otarig::board::port::espflash_port_info(None);
    let connection =
        Connection::new(port, port_info, ResetAfterOperation::NoReset, ResetBeforeOperation::NoReset, 115_200);
    let mut flasher = Flasher::connect(connection, false, true, false, None, None).unwrap();
    assert_eq!(flasher.chip(), Chip::Esp32);
    let written = padded(two_ota_table().to_bin().unwrap());
    let md5 = flasher.checksum_md5(0x8000, written.len() as u32).unwrap();
    assert_eq!(md5.to_be_bytes()[..], Md5::digest(&written)[..]);
}

/// espflash with its stub (uploaded, recognised, `OHAI`): compressed writes, the stub's MD5,
/// its streamed read and its erase; the twin boots what was written.
#[test]
fn espflash_with_its_stub_writes_reads_and_erases() {
    let firmware = built("bundle-idf5.2");
    let app = padded(firmware.app.clone());
    let regions = [
        (0x1000, padded(firmware.bootloader.clone())),
        (0x8000, padded(two_ota_table().to_bin().unwrap())),
        (0x10000, app.clone()),
    ];
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let connect = |port: Port| {
        let port_info = otarig::board::port::espflash_port_info(None);
        let connection =
            Connection::new(port, port_info, ResetAfterOperation::NoReset, ResetBeforeOperation::NoReset, 115_200);
        // The stub, MD5 verification on, no skipping.
        Flasher::connect(connection, true, true, false, None, None).unwrap()
    };
    let port = serialport::new(twin.port_path().to_string_lossy(), 115_200).open_native().unwrap();
    let mut flasher = connect(port);
    assert_eq!(flasher.flash_detect().unwrap(), Some(FlashSize::_4Mb));
    let segments: Vec<Segment<'_>> = regions.iter().map(|(addr, data)| Segment::new(*addr, data)).collect();
    flasher.write_bins_to_flash(&segments, &mut DefaultProgressCallback).unwrap();
    let flash = twin.flash();
    for (addr, data) in &regions {
        let at = *addr as usize;
        assert!(flash[at..at + data.len()] == data[..], "flash differs at {addr:#x}");
    }
    // espflash left the stub with a software reset ("staying in bootloader"): the ROM waits
    // again. EN pulsed: the firmware boots.
    let mut port: Port = flasher.into();
    port.set_timeout(Duration::from_millis(20)).unwrap();
    let mut seen = Vec::new();
    read_until(&mut port, &mut seen, |seen| find(seen, b"waiting for download\r\n").is_some());
    assert!(find(&seen, b"rst:0xc (SW_CPU_RESET),boot:0x3 (DOWNLOAD_BOOT").is_some());
    twin.reset(false);
    let mut booted = Vec::new();
    read_until(&mut port, &mut booted, app_started);
    assert_eq!(count(&booted, LOADED), 1);

    // Back into the loader: the stub again, its MD5, its read and its erase.
    twin.reset(true);
    let mut flasher = connect(port);
    let md5 = flasher.checksum_md5(0x10000, app.len() as u32).unwrap();
    assert_eq!(md5.to_be_bytes()[..], Md5::digest(&app)[..]);
    let tmp = common::TempDir::new("espflash-stub-read");
    let read_back = tmp.0.join("app.bin");
    // One packet in flight: espflash clears its input before each acknowledgement it sends.
    flasher.read_flash(0x10000, app.len() as u32, 0x1000, 1, read_back.clone()).unwrap();
    assert!(std::fs::read(&read_back).unwrap() == app, "the stub's read returns what was written");
    flasher.erase_region(0x10000, 0x2000).unwrap();
    let flash = twin.flash();
    assert!(flash[0x10000..0x12000].iter().all(|&b| b == 0xFF), "erased");
    assert!(flash[0x12000..0x10000 + app.len()] == app[0x2000..], "the rest is kept");
}
