//! The lab config: the shipped example reads; every mistake is refused at its `file:line:column`
//! with its kind; cells go only to devices with the firmware's chip; `otarig lab check` and
//! `otarig boards` through the binary, with a twin's pseudo-terminal standing in for a board.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use otarig::board::port::PortSelector;
use otarig::board::power::PowerAction;
use otarig::board::power::TemplateError;
use otarig::board::{Chip, ResetStrategy};
use otarig::lab::{self, DeviceSpec, LabConfig, LabErrorKind, NoDevice, PowerSpecError};
use otarig::toml_source::TomlSource;
use otarig::twin::device::{TwinConfig, TwinDevice};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_otarig");

fn parse(text: &str) -> LabConfig {
    lab::parse(&TomlSource::new("lab/otarig.toml", text)).unwrap()
}

/// The error's kind, line and column.
fn error(text: &str) -> (LabErrorKind, usize, usize) {
    let err = lab::parse(&TomlSource::new("lab/otarig.toml", text)).unwrap_err();
    assert_eq!(err.location.file, Path::new("lab/otarig.toml"));
    assert!(err.to_string().starts_with(&format!("lab/otarig.toml:{}:{}: ", err.location.line, err.location.column)));
    (err.kind, err.location.line, err.location.column)
}

fn shape_at(text: &str, line: usize) {
    let (kind, at, _) = error(text);
    assert!(matches!(kind, LabErrorKind::Shape { .. }), "{kind:?}");
    assert_eq!(at, line, "{kind:?}");
}

/// A scratch folder of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otarig-lab-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SERVER: &str = "[server]\nlisten = \"0.0.0.0:8443\"\n";

#[test]
fn the_shipped_example_reads() {
    let lab = lab::load(&Path::new(ROOT).join("otarig.example.toml")).unwrap();
    let ids: Vec<&str> = lab.devices.iter().map(DeviceSpec::id).collect();
    assert_eq!(ids, ["esp32-a", "esp32c3-a", "twin-1"]);
    let boards: Vec<_> = lab.boards().collect();
    assert_eq!(boards[0].selector, PortSelector::UsbSerial { serial: "0001".into(), vid_pid: None });
    assert_eq!(
        (boards[0].reset, boards[0].baud, boards[0].flash_size),
        (Some(ResetStrategy::Classic), Some(460_800), Some(4 << 20))
    );
    let power = boards[0].power.as_ref().unwrap();
    assert_eq!(power.template(PowerAction::Off).as_str(), "uhubctl -l 1-1 -p 2 -a {action}");
    assert_eq!(power.off_time, Duration::from_secs(2));
    assert_eq!((boards[1].selector.clone(), boards[1].reset), (PortSelector::VidPid(0x303a, 0x1001), None));
    assert_eq!(lab.server.unwrap().listen.to_string(), "0.0.0.0:8443");
    assert_eq!(lab.dns.overrides["ota.example.com"].to_string(), "192.168.4.1");
    assert_eq!((lab.timeouts.update, lab.retries), (Duration::from_secs(180), 1));
}

#[test]
fn a_full_config_reads() {
    let lab = parse(
        "retries = 2\n\
         [[board]]\nid = \"bench\"\nchip = \"esp32s3\"\nusb_serial = \"24:0A:C4:00:00:01\"\nvid_pid = \"303A:1001\"\n\
         reset = \"usb-jtag\"\npower = { off = \"relay 3 off\", on = \"relay 3 on\" }\n\
         [[twin]]\nid = \"t\"\nflash_size = \"8MB\"\n\
         [server]\nlisten = \"192.168.4.1:443\"\n\
         [dns]\nlisten = \"0.0.0.0:53\"\noverrides = { \"OTA.example.com\" = \"192.168.4.1\" }\n\
         [sntp]\nlisten = \"0.0.0.0:123\"\n\
         [timeouts]\nflash = 60\n",
    );
    let bench = lab.boards().next().unwrap();
    assert_eq!(
        bench.selector,
        PortSelector::UsbSerial { serial: "24:0A:C4:00:00:01".into(), vid_pid: Some((0x303a, 0x1001)) }
    );
    assert_eq!((bench.chip, bench.reset), (Chip::Esp32S3, Some(ResetStrategy::UsbJtag)));
    assert_eq!(bench.power.as_ref().unwrap().on.as_str(), "relay 3 on");
    assert!(matches!(&lab.devices[1], DeviceSpec::Twin(t) if t.flash_size == 8 << 20));
    assert_eq!(lab.dns.overrides.keys().collect::<Vec<_>>(), ["ota.example.com"]);
    assert_eq!(lab.dns.listen.unwrap().port(), 53);
    assert_eq!(lab.sntp.unwrap().listen.port(), 123);
    assert_eq!((lab.timeouts.flash, lab.timeouts.boot), (Duration::from_secs(60), Duration::from_secs(30)));
    assert_eq!(lab.retries, 2);
}

#[test]
fn shape_mistakes_are_located() {
    shape_at("twins = 1\ncolour = \"blue\"\n", 2);
    shape_at("[[board]]\nid = \"a\"\nchip = \"esp8266\"\nport = \"/dev/x\"\n", 3);
    shape_at("[[board]]\nid = \"a\"\nchip = \"esp32\"\nport = \"/dev/x\"\nreset = \"dtr\"\n", 5);
    shape_at("[[board]]\nid = \"a\"\nchip = \"esp32\"\nport = \"/dev/x\"\nbaudrate = 9600\n", 5);
    shape_at("twins = 1\n[timeouts]\nflash = \"2m\"\n", 3);
    shape_at("twins = 1\n[dns]\noverride = {}\n", 3);
    shape_at("[[twin]]\nid = \"t\"\nchip = \"esp32\"\n", 3);
    shape_at("twins = 1\n[server\n", 2);
}

#[test]
fn every_mistake_has_its_kind_and_place() {
    let board = |rest: &str| format!("{SERVER}[[board]]\nid = \"a\"\nchip = \"esp32\"\n{rest}");
    let cases: Vec<(String, LabErrorKind, usize)> = vec![
        (board("port = \"/dev/x\"\n").replace("\"a\"", "\"a b\""), LabErrorKind::Id { text: "a b".into() }, 4),
        (
            format!("{}[[board]]\nid = \"a\"\nchip = \"esp32\"\nport = \"/dev/y\"\n", board("port = \"/dev/x\"\n")),
            LabErrorKind::Duplicate { id: "a".into() },
            8,
        ),
        (
            format!("twins = 2\n{}", board("port = \"/dev/x\"\n")).replace("\"a\"", "\"twin-2\""),
            LabErrorKind::Duplicate { id: "twin-2".into() },
            1,
        ),
        (board(""), LabErrorKind::NoPort { id: "a".into() }, 3),
        (board("port = \"/dev/x\"\nusb_serial = \"1\"\n"), LabErrorKind::PortConflict { id: "a".into() }, 3),
        (board("vid_pid = \"303a-1001\"\n"), LabErrorKind::VidPid { text: "303a-1001".into() }, 6),
        (board("port = \"/dev/x\"\nflash_size = \"3MB\"\n"), LabErrorKind::FlashSize { text: "3MB".into() }, 7),
        (board("port = \"/dev/x\"\nbaud = 300\n"), LabErrorKind::Baud { baud: 300 }, 7),
        (
            board("port = \"/dev/x\"\naddress = \"192.168.4\"\n"),
            LabErrorKind::Address { text: "192.168.4".into(), expected: "an IP address, as `192.168.4.21`" },
            7,
        ),
        (
            format!(
                "{}[[board]]\nid = \"b\"\nchip = \"esp32\"\nport = \"/dev/y\"\naddress = \"192.168.4.21\"\n",
                board("port = \"/dev/x\"\naddress = \"192.168.4.21\"\n")
            ),
            LabErrorKind::Duplicate { id: "192.168.4.21".into() },
            12,
        ),
        (
            "twins = 1\n[dns.overrides]\n\"ota_x.example.com\" = \"10.0.0.1\"\n".into(),
            LabErrorKind::HostName { text: "ota_x.example.com".into() },
            3,
        ),
        ("twins = 1\n[timeouts]\nupdate = 0\n".into(), LabErrorKind::Timeout { field: "update", max: 86_400 }, 3),
        (
            "twins = 1\n[timeouts]\nboot = 9223372036854775807\n".into(),
            LabErrorKind::Timeout { field: "boot", max: 86_400 },
            3,
        ),
        ("twins = 40000\n".into(), LabErrorKind::TooMany { what: "twins", max: 64 }, 1),
        ("twins = 1\nretries = 4000000000\n".into(), LabErrorKind::TooMany { what: "retries", max: 10 }, 2),
        (
            board("port = \"/dev/x\"\npower = { command = \"p {action}\", off_ms = 9223372036854775807 }\n"),
            LabErrorKind::TooMany { what: "power.off_ms", max: 60_000 },
            7,
        ),
        (
            "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9000, nvs = \"a.csv\", size = 0x7fffffffffff }]\n".into(),
            LabErrorKind::TooMany { what: "size", max: 16 * 1024 * 1024 },
            3,
        ),
        ("twins = 1\n[[twin]]\nid = \"t\"\n".into(), LabErrorKind::TwinsTwice, 1),
        ("retries = 1\n".into(), LabErrorKind::NoDevices, 1),
        ("[[board]]\nid = \"a\"\nchip = \"esp32\"\nport = \"/dev/x\"\n".into(), LabErrorKind::NoServer, 1),
        ("twins = 1\n[prepare]\nbench = []\n".into(), LabErrorKind::UnknownDevice { id: "bench".into() }, 3),
        (
            "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9100, file = \"nvs.bin\" }]\n".into(),
            LabErrorKind::Alignment { offset: 0x9100 },
            3,
        ),
        (
            "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9000, file = \"a.bin\", nvs = \"a.csv\" }]\n".into(),
            LabErrorKind::RegionSource,
            3,
        ),
        (
            "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9000, file = \"a.bin\", size = 0x4000 }]\n".into(),
            LabErrorKind::RegionSource,
            3,
        ),
    ];
    for (text, kind, line) in cases {
        let (got, at, _) = error(&text);
        // Kinds with a source (an I/O error) have no `==`: these are compared field by field
        // through their debug form.
        assert_eq!((format!("{got:?}"), at), (format!("{kind:?}"), line), "in:\n{text}");
    }
}

/// A board with `probe = ...`: flashed and reset over JTAG, its port the console.
fn probe_board(probe: &str) -> String {
    format!("{SERVER}[[board]]\nid = \"jtag\"\nchip = \"esp32c3\"\nvid_pid = \"303a:1001\"\nprobe = \"{probe}\"\n")
}

#[cfg(not(feature = "probe"))]
#[test]
fn a_probe_board_is_refused_where_written_without_the_feature() {
    let (kind, line, column) = error(&probe_board("303a:1001"));
    assert!(matches!(kind, LabErrorKind::ProbeFeature), "{kind:?}");
    assert_eq!((line, column), (7, 9));
}

#[cfg(feature = "probe")]
#[test]
fn the_probe_key_makes_a_probe_board() {
    use otarig::board::BoardKind;
    use otarig::twin::network::LabNetwork;

    let lab = parse(&probe_board("303a:1001:F4:12:FA:00:11:22"));
    let spec = lab.boards().next().unwrap();
    assert_eq!(spec.probe.as_deref(), Some("303a:1001:F4:12:FA:00:11:22"));
    assert_eq!(spec.selector, PortSelector::VidPid(0x303a, 0x1001), "the console's port");
    // Nothing is opened until the board is used.
    let board = lab.devices[0].open(&LabNetwork::default()).unwrap();
    assert_eq!((board.id(), board.chip(), board.identity().kind), ("jtag", Chip::Esp32C3, BoardKind::Probe));

    let (kind, line, _) = error(&probe_board("esp-prog"));
    assert!(matches!(kind, LabErrorKind::ProbeSelector { .. }), "{kind:?}");
    assert_eq!(line, 7);
}

#[test]
fn addresses_are_checked_where_they_are_written() {
    let cases = [
        ("twins = 1\n[server]\nlisten = \"localhost:8443\"\n", "localhost:8443", (3, 10), "IP:PORT"),
        ("twins = 1\n[sntp]\nlisten = \"123\"\n", "123", (3, 10), "IP:PORT"),
        ("twins = 1\n[dns]\nlisten = \"0.0.0.0\"\n", "0.0.0.0", (3, 10), "IP:PORT"),
        ("twins = 1\n[dns.overrides]\n\"ota.example.com\" = \"rig\"\n", "rig", (3, 21), "IP address"),
    ];
    for (text, bad, place, form) in cases {
        let (kind, line, column) = error(text);
        assert!(
            matches!(kind, LabErrorKind::Address { ref text, expected } if text == bad && expected.contains(form)),
            "{kind:?}"
        );
        assert_eq!((line, column), place, "{text}");
    }
}

#[test]
fn power_mistakes_are_refused() {
    let power = |value: &str| {
        error(&format!("{SERVER}[[board]]\nid = \"a\"\nchip = \"esp32\"\nport = \"/dev/x\"\npower = {value}\n"))
    };
    let unknown = TemplateError::UnknownPlaceholder { name: "acton".into() };
    for (value, expected) in [
        ("{ command = \"uhubctl -a off\" }", PowerSpecError::NoAction),
        ("{ command = \"uhubctl -a {acton}\" }", PowerSpecError::Template(unknown)),
        ("{ off = \"relay off\" }", PowerSpecError::NoCommands),
        ("{ command = \"x {action}\", on = \"y\" }", PowerSpecError::NoCommands),
        ("{ off = \"\", on = \"y\" }", PowerSpecError::Template(TemplateError::Empty)),
    ] {
        let (kind, line, _) = power(value);
        assert!(
            matches!(kind, LabErrorKind::Power { ref id, ref source } if id == "a" && *source == expected),
            "{value}: {kind:?}"
        );
        assert_eq!(line, 7, "{value}");
    }
}

#[test]
fn prepare_files_are_read_relative_to_the_config() {
    let dir = scratch("prepare");
    std::fs::write(dir.join("nvs.bin"), b"wifi!").unwrap();
    let text = "twins = 2\n[prepare]\n\"*\" = [{ offset = 0x9000, file = \"nvs.bin\" }]\n\
                twin-2 = [{ offset = 0x3f0000, file = \"nvs.bin\" }]\n";
    let lab = lab::parse(&TomlSource::new(dir.join("otarig.toml"), text)).unwrap();
    let regions = lab.prepare_regions("twin-2");
    assert_eq!(regions.iter().map(|r| r.offset).collect::<Vec<_>>(), [0x9000, 0x3f0000]);
    assert_eq!(regions[0].bytes, b"wifi!\xff\xff\xff", "padded to whole words");
    assert_eq!(lab.prepare_regions("twin-1").len(), 1);

    // Over the factory app, or the bootloader: refused where written.
    for (offset, what) in [("0x10000", "partition `factory`"), ("0x1000", "the bootloader and partition table")] {
        let text = format!("twins = 1\n[prepare]\n\"*\" = [{{ offset = {offset}, file = \"nvs.bin\" }}]\n");
        let err = lab::parse(&TomlSource::new(dir.join("otarig.toml"), text)).unwrap_err();
        assert!(matches!(err.kind, LabErrorKind::PrepareOverlap { what: ref w, .. } if w == what), "{err:?}");
        assert_eq!((err.location.line, err.location.column), (3, 19));
    }

    let missing = "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9000, file = \"gone.bin\" }]\n";
    let err = lab::parse(&TomlSource::new(dir.join("otarig.toml"), missing)).unwrap_err();
    assert!(matches!(err.kind, LabErrorKind::PrepareFile { ref path, .. } if path.ends_with("gone.bin")), "{err:?}");
    assert_eq!((err.location.line, err.location.column), (3, 34));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// ESP-IDF's NVS partition generator (PyPI, pinned by `ci/setup-host`); `OTARIG_NVS_GEN_PYTHON`
/// names another Python that has it.
fn nvs_partition_gen(csv: &Path, out: &Path, size: &str) {
    let python = std::env::var_os("OTARIG_NVS_GEN_PYTHON")
        .map_or_else(|| Path::new(ROOT).join("target/esptool-venv/bin/python"), PathBuf::from);
    assert!(python.is_file(), "no Python at {}: run ci/setup-host, which installs the generator", python.display());
    let output = Command::new(&python)
        .args(["-m", "esp_idf_nvs_partition_gen", "generate"])
        .arg(csv)
        .arg(out)
        .arg(size)
        .current_dir(csv.parent().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn an_nvs_csv_becomes_the_partition_esp_idf_s_generator_writes() {
    let dir = scratch("nvs");
    // Every kind of row a lab writes: credentials as strings, numbers of each width, a blob
    // given in hex, a CA certificate from a file (a blob over several entries), a string over
    // several entries, and a second namespace.
    let certificate: Vec<u8> = (0..1800u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("lab-ca.der"), &certificate).unwrap();
    let csv = "key,type,encoding,value\n\
               wifi,namespace,,\n\
               ssid,data,string,otarig-lab\n\
               password,data,string,correct horse battery staple\n\
               channel,data,u8,6\n\
               retries,data,i8,-3\n\
               port,data,u16,8443\n\
               offset,data,i32,-120000\n\
               serial,data,u64,81985529216486895\n\
               bssid,data,hex2bin,a4cf12b0c1d2\n\
               ota,namespace,,\n\
               url,data,string,https://ota.example.com/firmware/with/a/rather/long/path/to/the/image.bin\n\
               ca,file,binary,lab-ca.der\n";
    std::fs::write(dir.join("wifi.csv"), csv).unwrap();
    // A partition of its own past the app slots (the table's `nvs` holds 16 KiB).
    let text = "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x310000, nvs = \"wifi.csv\", size = 0x6000 }]\n";
    let lab = lab::parse(&TomlSource::new(dir.join("otarig.toml"), text)).unwrap();
    let regions = lab.prepare_regions("twin-1");
    assert_eq!((regions.len(), regions[0].offset, regions[0].bytes.len()), (1, 0x310000, 0x6000));

    nvs_partition_gen(&dir.join("wifi.csv"), &dir.join("reference.bin"), "0x6000");
    let reference = std::fs::read(dir.join("reference.bin")).unwrap();
    if let Some(at) = regions[0].bytes.iter().zip(&reference).position(|(a, b)| a != b) {
        panic!("the partition differs from ESP-IDF's at offset {at:#x}");
    }
    assert_eq!(regions[0].bytes, reference);

    // Without `size`, the two-OTA table's 16 KiB partition.
    let text = "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9000, nvs = \"wifi.csv\" }]\n";
    let lab = lab::parse(&TomlSource::new(dir.join("otarig.toml"), text)).unwrap();
    assert_eq!(lab.prepare_regions("twin-1")[0].bytes.len(), 0x4000);

    // 24 KiB at the table's `nvs` run into otadata, which every cell writes.
    let text = "twins = 1\n[prepare]\n\"*\" = [{ offset = 0x9000, nvs = \"wifi.csv\", size = 0x6000 }]\n";
    let err = lab::parse(&TomlSource::new(dir.join("otarig.toml"), text)).unwrap_err();
    let overlap = LabErrorKind::PrepareOverlap { offset: 0x9000, end: 0xf000, what: "partition `otadata`".into() };
    assert_eq!((format!("{:?}", err.kind), err.location.line, err.location.column), (format!("{overlap:?}"), 3, 19));

    // A row before any namespace, a missing CSV, a size no partition has: at the `nvs` key.
    std::fs::write(dir.join("bad.csv"), "key,type,encoding,value\nssid,data,string,x\n").unwrap();
    for (file, size) in [("bad.csv", ""), ("gone.csv", ""), ("wifi.csv", ", size = 0x2800")] {
        let text = format!("twins = 1\n[prepare]\n\"*\" = [{{ offset = 0x9000, nvs = \"{file}\"{size} }}]\n");
        let err = lab::parse(&TomlSource::new(dir.join("otarig.toml"), text)).unwrap_err();
        assert!(matches!(err.kind, LabErrorKind::Nvs { ref path, .. } if path.ends_with(file)), "{err:?}");
        assert_eq!((err.location.line, err.location.column), (3, 33), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_nvs_shows_and_writes_the_partition_of_a_csv_and_reads_a_dump() {
    let dir = scratch("nvs-cli");
    std::fs::write(
        dir.join("wifi.csv"),
        "key,type,encoding,value\nwifi,namespace,,\nssid,data,string,otarig-lab\nretries,data,u8,3\n",
    )
    .unwrap();
    let expected = "key,type,encoding,value\nwifi,namespace,,\nssid,data,string,otarig-lab\nretries,data,u8,3\n";
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let out = otarig(&["lab", "nvs", "wifi.csv", "--out", "nvs.bin"], &dir);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(0), expected.to_owned()), "{}", text(&out.stderr));
    nvs_partition_gen(&dir.join("wifi.csv"), &dir.join("reference.bin"), "0x4000");
    assert_eq!(std::fs::read(dir.join("nvs.bin")).unwrap(), std::fs::read(dir.join("reference.bin")).unwrap());

    // ESP-IDF's own partition (a dump, as a board would give it) reads the same.
    let out = otarig(&["lab", "nvs", "reference.bin"], &dir);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(0), expected.to_owned()), "{}", text(&out.stderr));

    for (args, says) in [
        (&["lab", "nvs", "reference.bin", "--out", "x.bin"][..], "is a partition already"),
        (&["lab", "nvs", "wifi.csv", "--size", "0x2000"][..], "no NVS partition size"),
        (&["lab", "nvs", "gone.csv"][..], "cannot read"),
    ] {
        let out = otarig(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    assert!(!dir.join("x.bin").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cells_go_to_devices_with_the_firmware_s_chip() {
    let lab = parse(&format!(
        "twins = 2\n{SERVER}\
         [[board]]\nid = \"c3\"\nchip = \"esp32c3\"\nvid_pid = \"303a:1001\"\n\
         [[board]]\nid = \"wroom\"\nchip = \"esp32\"\nusb_serial = \"A1\"\n"
    ));
    let ids = |chip| lab::assign(&lab, chip).unwrap().iter().map(|d| d.id().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(Chip::Esp32), ["wroom", "twin-1", "twin-2"]);
    assert_eq!(ids(Chip::Esp32C3), ["c3"]);
    let none = lab::assign(&lab, Chip::Esp32S3).unwrap_err();
    assert_eq!(none, NoDevice { chip: Chip::Esp32S3, available: vec![Chip::Esp32C3, Chip::Esp32] });
    assert_eq!(none.to_string(), "no esp32s3 device in the lab (it has: esp32c3, esp32)");

    let twins = LabConfig::twins_only(3);
    assert_eq!(lab::assign(&twins, Chip::Esp32).unwrap().len(), 3);
    assert!(lab::assign(&twins, Chip::Esp32C3).is_err());
}

fn otarig(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(cwd).output().unwrap()
}

fn lab_check(config: &Path) -> (u8, String, String) {
    let fleet = Path::new(ROOT).join("firmware-images");
    let scenarios = Path::new(ROOT).join("scenarios");
    let args = ["lab", "check", "--config", config.to_str().unwrap(), "--fleet", fleet.to_str().unwrap()];
    let out = otarig(&[&args[..], &["--scenarios", scenarios.to_str().unwrap()]].concat(), config.parent().unwrap());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap() as u8, text(&out.stdout), text(&out.stderr))
}

#[test]
fn lab_check_refuses_a_config_in_error_with_a_hint() {
    let dir = scratch("no-devices");
    let config = dir.join("otarig.toml");
    std::fs::write(&config, "retries = 1\n").unwrap();
    let (code, stdout, stderr) = lab_check(&config);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("otarig.toml:1:1: no device"), "{stderr}");
    assert!(stderr.contains("hint: add a `[[board]]`, a `[[twin]]` or `twins = N`"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_check_passes_a_lab_of_twins() {
    let dir = scratch("twins");
    let config = dir.join("otarig.toml");
    std::fs::write(&config, "twins = 2\n").unwrap();
    let (code, stdout, stderr) = lab_check(&config);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("OK    config: ") && lines[0].ends_with("otarig.toml: 0 boards, 2 twins"), "{stdout}");
    assert_eq!(lines[1], "OK    twin twin-1: the ROM loader answered: esp32, MAC 24:0a:c4:07:7a:01");
    assert_eq!(lines[2], "OK    twin twin-2: the ROM loader answered: esp32, MAC 24:0a:c4:07:7a:01");
    assert!(lines[3].starts_with("OK    dns: twins only"), "{stdout}");
    assert_eq!(lines[4], "4 checks: 4 ok, 0 warn, 0 fail");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_check_syncs_a_board_and_fails_what_is_not_ready() {
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = scratch("board");
    let config = dir.join("otarig.toml");
    let text = format!(
        "[server]\nlisten = \"{}\"\n[dns.overrides]\n\"ota.example.com\" = \"127.0.0.1\"\n\
         [[board]]\nid = \"bench\"\nchip = \"esp32\"\nport = \"{}\"\nreset = \"none\"\naddress = \"192.168.4.21\"\n\
         [[board]]\nid = \"c3\"\nchip = \"esp32c3\"\nusb_serial = \"otarig-test-no-such-serial\"\n",
        busy.local_addr().unwrap(),
        twin.port_path().display()
    );
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = lab_check(&config);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let pty = twin.port_path().display().to_string();
    let expected_lines = [
        format!("OK    board bench: port {pty}, reset none (as configured)"),
        // The MAC the lab's DHCP reservation names, and the address the reservation must give.
        "OK    board bench: the ROM loader answered: esp32, MAC 24:0a:c4:07:7a:01".to_owned(),
        "OK    board bench: cells routed by its address 192.168.4.21: the access point's DHCP must give it that address (reserved for its MAC)".to_owned(),
        "FAIL  board c3: no serial port matches USB serial number `otarig-test-no-such-serial` (`otarig boards` lists them)".to_owned(),
        "FAIL  dns ota.example.com: 127.0.0.1 is loopback: boards cannot reach it".to_owned(),
    ];
    for expected in &expected_lines {
        assert!(stdout.lines().any(|l| l == expected), "missing `{expected}` in:\n{stdout}");
    }
    let server = stdout.lines().find(|l| l.starts_with("FAIL  server: cannot bind ")).unwrap_or_default();
    assert!(!server.is_empty(), "{stdout}");
    assert!(stdout.ends_with("7 checks: 4 ok, 0 warn, 3 fail\n"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_check_names_a_board_with_another_chip_and_boards_that_take_turns() {
    let twin = TwinDevice::spawn(TwinConfig::default()).unwrap();
    let dir = scratch("chip");
    let config = dir.join("otarig.toml");
    let board = |id: &str, port: &str, rest: &str| {
        format!("[[board]]\nid = \"{id}\"\nchip = \"esp32s3\"\nport = \"{port}\"\nreset = \"none\"\n{rest}")
    };
    let pty = twin.port_path().display().to_string();
    let text = ["[server]\nlisten = \"0.0.0.0:0\"\n".to_owned(), board("s3", &pty, ""), board("s3-b", "/dev/null", "")]
        .concat();
    std::fs::write(&config, &text).unwrap();
    let (code, stdout, _) = lab_check(&config);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.lines().any(|l| l == "FAIL  board s3: the chip is esp32, the lab config says esp32s3"), "{stdout}");
    let turns = "WARN  boards: s3, s3-b have no `address`: their cells run one at a time \
                 (give each its DHCP-reserved address to run them side by side)";
    assert!(stdout.lines().any(|l| l == turns), "{stdout}");

    // With an address for one of them, no two take turns.
    let text = text.replace("port = \"/dev/null\"\n", "port = \"/dev/null\"\naddress = \"192.168.4.22\"\n");
    std::fs::write(&config, text).unwrap();
    let (_, stdout, _) = lab_check(&config);
    assert!(!stdout.contains("WARN  boards:"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_check_refuses_a_config_in_error_or_none() {
    let dir = scratch("error");
    let config = dir.join("otarig.toml");
    std::fs::write(&config, "twins = 1\n[timeouts]\nflash = 0\n").unwrap();
    let (code, stdout, stderr) = lab_check(&config);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("otarig.toml:3:9: `flash` must be from 1 to 86400 seconds"), "{stderr}");
    assert!(stdout.is_empty());

    // Without --config: ./otarig.toml, here missing.
    std::fs::remove_file(&config).unwrap();
    let out = otarig(&["lab", "check"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lab config"));
    // ... and found when present.
    std::fs::write(&config, "twins = 1\n").unwrap();
    assert_eq!(otarig(&["lab", "check"], &dir).status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn boards_lists_ports_or_says_there_are_none() {
    let dir = scratch("boards");
    let out = otarig(&["boards"], &dir);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("no serial ports found\n") || stdout.contains("[[board]]"), "{stdout}");
    let json = otarig(&["boards", "--all", "--format", "json"], &dir);
    assert_eq!(json.status.code(), Some(0));
    let ports: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(ports.is_array());

    std::fs::write(dir.join("otarig.toml"), "twins = 1\nbogus = 1\n").unwrap();
    let out = otarig(&["boards"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("otarig.toml:2:1"));
    std::fs::remove_dir_all(&dir).unwrap();
}
