//! The hardware seam through the `Board` trait: the twin backend flashes with espflash (every
//! region written, then every region skipped by MD5), boots what it wrote onto the console,
//! resets into the app and into the ROM loader, power-cycles; the serial backend, opened on a
//! twin's pseudo-terminal by path with reset strategy `none`, runs the very same flashing code;
//! a loader write past its limit is cut off.

use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use otarig::board::loader::{self, ConnectOptions, LoaderAnswer, LoaderSession};
use otarig::board::serial::{SerialBoard, SerialSpec};
use otarig::board::twin::TwinBoard;
use otarig::board::{
    Board, BoardError, BoardKind, Chip, FlashEvent, NoProgress, Region, ResetMode, ResetStrategy, port::PortSelector,
};
use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::image::partition::two_ota_table;
use otarig::pki::LabPki;
use otarig::twin::device::{TwinConfig, TwinDevice};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long anything a twin prints may take to arrive (it takes milliseconds).
const DEADLINE: Duration = Duration::from_secs(10);
/// The app's last start-up line (the update release is v5.2: it idles after start-up).
const STARTED: &[u8] = b"Calling app_main()";
const POWER_ON: &[u8] = b"rst:0x1 (POWERON_RESET)";
const SOFTWARE_RESET: &[u8] = b"rst:0xc (SW_CPU_RESET)";

/// Bootloader, two-OTA partition table and app of the release offered as the update (its app
/// looks for no update, so the twin idles once it has started).
fn regions() -> Vec<Region> {
    static REGIONS: OnceLock<Vec<Region>> = OnceLock::new();
    REGIONS
        .get_or_init(|| {
            let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
            let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
            let built = build(fleet.get("v2.0.0").unwrap(), &fleet, &pki).unwrap();
            vec![
                Region::padded(0x1000, built.bootloader),
                Region::padded(0x8000, two_ota_table().to_bin().unwrap()),
                Region::padded(0x10000, built.app),
            ]
        })
        .clone()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the console until `needle` and the end of its line have arrived; panics at the
/// deadline with what was read.
fn read_until(console: &mut dyn Read, needle: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |seen: &[u8]| find(seen, needle).is_some_and(|at| find(&seen[at..], b"\r\n").is_some());
    while !complete(&seen) {
        assert!(Instant::now() < deadline, "timed out; read so far:\n{}", String::from_utf8_lossy(&seen));
        match console.read(&mut buf) {
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) => panic!("reading the console: {e}"),
        }
    }
    seen
}

/// Flashes `regions` and records the progress events, named.
fn flash_recorded(board: &mut dyn Board, regions: &[Region]) -> (otarig::board::FlashReport, Vec<String>) {
    let mut events = Vec::new();
    let mut record = |event: FlashEvent| {
        let name = match event {
            FlashEvent::Connected { chip } => format!("connected {chip:?}"),
            FlashEvent::Unchanged { offset, .. } => format!("unchanged {offset:#x}"),
            FlashEvent::Writing { offset, .. } => format!("writing {offset:#x}"),
            FlashEvent::Block { .. } => return,
            FlashEvent::Verifying { offset } => format!("verifying {offset:#x}"),
            FlashEvent::Written { offset, .. } => format!("written {offset:#x}"),
            FlashEvent::Booting => "booting".into(),
        };
        events.push(name);
    };
    let report = board.flash(regions, &mut record).unwrap();
    (report, events)
}

fn all_written() -> Vec<String> {
    let mut events = vec!["connected Esp32".to_owned()];
    for offset in ["0x1000", "0x8000", "0x10000"] {
        events.extend([format!("writing {offset}"), format!("verifying {offset}"), format!("written {offset}")]);
    }
    events.push("booting".into());
    events
}

fn all_unchanged() -> Vec<String> {
    ["connected Esp32", "unchanged 0x1000", "unchanged 0x8000", "unchanged 0x10000", "booting"]
        .map(String::from)
        .to_vec()
}

#[test]
fn twin_flashes_then_skips_what_it_holds() {
    let regions = regions();
    let mut board = TwinBoard::spawn("twin-1", TwinConfig::default()).unwrap();
    assert_eq!((board.id(), board.chip(), board.identity().kind), ("twin-1", Chip::Esp32, BoardKind::Twin));

    let (report, events) = flash_recorded(&mut board, &regions);
    assert_eq!(events, all_written());
    assert_eq!(report.bytes_written(), regions.iter().map(|r| r.bytes.len()).sum::<usize>());
    assert!(report.regions.iter().all(|r| r.written));
    let boot = read_until(&mut *board.console().unwrap(), STARTED);
    assert!(find(&boot, b"Loaded app from partition at offset 0x10000").is_some());
    assert_eq!(&board.handle().flash()[0x10000..0x10000 + regions[2].bytes.len()], &regions[2].bytes[..]);

    // The same images again: every MD5 matches, nothing is written, and the chip still boots,
    // started from the loader as after a write (a kept twin boots as a freshly flashed one).
    let (report, events) = flash_recorded(&mut board, &regions);
    assert_eq!(events, all_unchanged());
    assert!(report.all_skipped());
    assert_eq!((report.bytes_written(), report.bytes_skipped()), (0, regions.iter().map(|r| r.bytes.len()).sum()));
    let boot = read_until(&mut *board.console().unwrap(), STARTED);
    assert!(find(&boot, SOFTWARE_RESET).is_some(), "{}", String::from_utf8_lossy(&boot));

    // One more region (an NVS image, say): only it is written.
    let mut more = regions.clone();
    more.push(Region::padded(0x9000, b"lab wi-fi credentials".to_vec()));
    let (report, _) = flash_recorded(&mut board, &more);
    assert_eq!(report.regions.iter().map(|r| r.written).collect::<Vec<_>>(), [false, false, false, true]);
    assert_eq!(&board.handle().flash()[0x9000..0x9000 + 21], b"lab wi-fi credentials");
}

#[test]
fn twin_resets_into_the_app_and_into_the_loader() {
    let mut board = TwinBoard::spawn("twin-r", TwinConfig::default()).unwrap();
    board.flash(&regions(), &mut NoProgress).unwrap();
    read_until(&mut *board.console().unwrap(), STARTED);

    // Into the app: the console holds the new boot from its first line (nothing from before).
    board.reset(ResetMode::App).unwrap();
    let boot = read_until(&mut *board.console().unwrap(), STARTED);
    assert!(boot.starts_with(b"ets "), "{}", String::from_utf8_lossy(&boot));
    assert_eq!(find(&boot, POWER_ON), Some(find(&boot, b"rst:").unwrap()));

    // Into the ROM loader: its banner, then espflash connects.
    board.reset(ResetMode::Download).unwrap();
    read_until(&mut *board.console().unwrap(), b"waiting for download");
    let answer = LoaderAnswer { chip: Chip::Esp32, mac: Some("24:0a:c4:07:7a:01".into()) };
    assert_eq!(board.connect_loader().unwrap(), answer, "the chip and the MAC in its eFuses");

    // A power cycle: supported, and the chip boots from flash again.
    assert!(board.power_cycle().unwrap());
    let boot = read_until(&mut *board.console().unwrap(), STARTED);
    assert!(find(&boot, POWER_ON).is_some());
}

#[test]
fn twin_refuses_regions_past_its_flash() {
    let config = TwinConfig { flash_size: 0x10000, ..TwinConfig::default() };
    let mut board = TwinBoard::spawn("twin-small", config).unwrap();
    let err = board.flash(&regions(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, BoardError::OutOfFlash { offset: 0x10000, size: 0x10000, .. }), "{err:?}");
}

fn serial_spec(id: &str, port: &Path, chip: Chip) -> SerialSpec {
    SerialSpec {
        id: id.into(),
        chip,
        selector: PortSelector::Path(port.to_owned()),
        reset: Some(ResetStrategy::None),
        baud: Some(460_800),
        flash_size: Some(4 << 20),
        power: None,
        power_timeout: Duration::from_secs(5),
        flash_timeout: Duration::from_secs(120),
        probe: None,
        address: None,
    }
}

#[test]
fn serial_backend_flashes_a_twin_by_its_path() {
    let regions = regions();
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let mut board = SerialBoard::new(serial_spec("bench", &twin.port_path(), Chip::Esp32));

    let (report, events) = flash_recorded(&mut board, &regions);
    assert_eq!(events, all_written());
    assert!(report.regions.iter().all(|r| r.written));
    assert_eq!(board.identity().port.as_deref(), Some(twin.port_path().as_path()));
    assert_eq!((board.identity().usb.clone(), board.identity().reset), (None, ResetStrategy::None));
    read_until(&mut *board.console().unwrap(), STARTED);

    // No reset wiring: the bench puts the chip in download mode (here, the twin's handle).
    twin.reset(true);
    let (report, events) = flash_recorded(&mut board, &regions);
    assert_eq!(events, all_unchanged());
    assert!(report.all_skipped());
    // Nothing was written, so no FLASH_END rebooted it: the loader was told to run the app.
    let boot = read_until(&mut *board.console().unwrap(), STARTED);
    assert!(find(&boot, b"Loaded app from partition at offset 0x10000").is_some());

    assert!(matches!(board.reset(ResetMode::App), Err(BoardError::CannotReset { .. })));
    assert!(!board.power_cycle().unwrap(), "no power control configured");

    twin.reset(true);
    let answer = LoaderAnswer { chip: Chip::Esp32, mac: Some("24:0a:c4:07:7a:01".into()) };
    assert_eq!(board.connect_loader().unwrap(), answer, "the chip and the MAC in its eFuses");
}

#[test]
fn serial_backend_gives_up_at_the_flash_limit() {
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    // 3 MB take the twin's line a quarter of a second or more; the limit is 20 ms.
    let limit = Duration::from_millis(20);
    let spec = SerialSpec { flash_timeout: limit, ..serial_spec("slow", &twin.port_path(), Chip::Esp32) };
    let mut board = SerialBoard::new(spec);
    let big = [Region::padded(0x10000, vec![0x5a; 3 << 20])];
    let err = board.flash(&big, &mut NoProgress).unwrap_err();
    assert!(matches!(err, BoardError::FlashTimeout { limit: l, .. } if l == limit), "{err:?}");
    assert!(err.to_string().ends_with("longer than the lab's flash limit of 0.02 s"), "{err}");
    assert_ne!(&twin.flash()[0x10000 + (3 << 20) - 4..0x10000 + (3 << 20)], &[0x5a; 4], "cut off before the end");

    // The port was let go: the board, opened afresh with room to finish, is flashed whole.
    twin.reset(true);
    let spec = SerialSpec { flash_timeout: Duration::from_secs(120), ..board.spec().clone() };
    let (report, _) = flash_recorded(&mut SerialBoard::new(spec), &big);
    assert!(report.regions[0].written);
    assert!(twin.flash()[0x10000..0x10000 + (3 << 20)].iter().all(|b| *b == 0x5a));
}

#[test]
fn a_loader_write_past_its_limit_is_cut_off() {
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    twin.reset(true);
    let serial = loader::open_port("slow", &twin.port_path()).unwrap();
    let before = ResetStrategy::None.before_connect();
    let options = ConnectOptions { usb: None, before, baud: None, expect: Chip::Esp32 };
    let mut session = LoaderSession::connect("slow", &twin.port_path(), serial, options).unwrap();
    // 3 MB take the twin's line a quarter of a second or more; the limit is 20 ms.
    let big = [Region::padded(0x10000, vec![0x5a; 3 << 20])];
    let written = session.write_within(&big, &mut NoProgress, Duration::from_millis(20)).unwrap();
    assert!(written.cut);
    assert!(written.value.is_err(), "the write fails once the port reads nothing");
    assert_ne!(&twin.flash()[0x10000 + (3 << 20) - 4..0x10000 + (3 << 20)], &[0x5a; 4], "cut off before the end");
}

#[test]
fn serial_backend_refuses_another_chip() {
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let mut board = SerialBoard::new(serial_spec("c3-bench", &twin.port_path(), Chip::Esp32C3));
    let err = board.flash(&regions(), &mut NoProgress).unwrap_err();
    match err {
        BoardError::ChipMismatch { expected, found, .. } => {
            assert_eq!((expected, found.as_str()), (Chip::Esp32C3, "esp32"));
        }
        other => panic!("{other:?}"),
    }
    // Nothing was written.
    assert!(twin.flash()[0x1000..0x2000].iter().all(|b| *b == 0xFF));
}

#[test]
fn serial_backend_names_a_missing_port() {
    let mut board = SerialBoard::new(serial_spec("gone", Path::new("/dev/otarig-no-such-port"), Chip::Esp32));
    assert!(matches!(board.console(), Err(BoardError::Open { .. })));
    let spec = SerialSpec {
        selector: PortSelector::UsbSerial { serial: "otarig-no-such-serial".into(), vid_pid: None },
        ..serial_spec("gone", Path::new(""), Chip::Esp32)
    };
    let mut board = SerialBoard::new(spec);
    assert!(matches!(board.connect_loader(), Err(BoardError::Port { .. })));
}
