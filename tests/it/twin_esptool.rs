//! esptool, the reference flasher (PyPI, pinned by `ci/setup-host`), against the standalone
//! twin (`otarig twin`) in ROM mode: flash-id, chip-id, plain and compressed write-flash,
//! verify-flash (and a verification that must fail), read-flash, erase-region; the control
//! channel on standard input resets the twin to boot what was written and back into the
//! serial loader; the flash file holds what esptool wrote.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::image::partition::two_ota_table;
use otarig::pki::LabPki;

use crate::common;

use common::TempDir;
use common::serial::{find, read_until};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FLASH_SIZE: usize = 4 * 1024 * 1024;
/// Far more than any esptool command here takes on a pseudo-terminal (a few seconds).
const ESPTOOL_DEADLINE: Duration = Duration::from_secs(60);

/// esptool in the virtual environment `ci/setup-host` makes; `OTARIG_ESPTOOL` overrides.
fn esptool_path() -> PathBuf {
    let path = std::env::var_os("OTARIG_ESPTOOL")
        .map_or_else(|| Path::new(ROOT).join("target/esptool-venv/bin/esptool"), PathBuf::from);
    assert!(path.is_file(), "esptool not found at {}: run ci/setup-host, which installs it there", path.display());
    path
}

/// `otarig twin` as a child process, with its control channel.
struct StandaloneTwin {
    child: Child,
    control: ChildStdin,
    answers: BufReader<ChildStdout>,
    port: String,
}

impl StandaloneTwin {
    fn spawn(flash_file: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
            .args(["twin", "--flash-size", "4MB", "--flash"])
            .arg(flash_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let control = child.stdin.take().unwrap();
        let mut answers = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        answers.read_line(&mut first).unwrap();
        let port = first.strip_prefix("serial port: ").unwrap_or_else(|| panic!("first line: {first:?}"));
        Self { port: port.trim_end().to_owned(), child, control, answers }
    }

    /// Sends one control line and returns the answer line.
    fn control(&mut self, line: &str) -> String {
        writeln!(self.control, "{line}").unwrap();
        self.control.flush().unwrap();
        let mut answer = String::new();
        self.answers.read_line(&mut answer).unwrap();
        answer.trim_end().to_owned()
    }

    /// Runs esptool on the twin's port in ROM mode; returns its output, or panics with it.
    fn esptool(&self, args: &[&str]) -> String {
        let output = self.esptool_output(args);
        assert!(output.0, "esptool {args:?} failed:\n{}", output.1);
        output.1
    }

    /// Runs esptool on the twin's port in ROM mode: (succeeded, stdout and stderr).
    fn esptool_output(&self, args: &[&str]) -> (bool, String) {
        self.esptool_as_given(&[&["--before", "no-reset", "--after", "no-reset", "--no-stub"], args].concat())
    }

    /// Runs esptool on the twin's port with only `--chip`, `--port` and `--baud` added (a
    /// pseudo-terminal has no DTR/RTS: pass a `--before` that does not reset).
    /// esptool waits for some answers without end: one that does not come in
    /// [`ESPTOOL_DEADLINE`] fails the test instead of hanging it.
    fn esptool_as_given(&self, args: &[&str]) -> (bool, String) {
        let child = Command::new(esptool_path())
            .args(["--chip", "esp32", "--port", &self.port, "--baud", "115200"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(child.wait_with_output()));
        let Ok(output) = finished.recv_timeout(ESPTOOL_DEADLINE) else {
            // SAFETY: kill(2) of our own child, not yet reaped (its waiting thread still runs).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("esptool {args:?} did not finish within {ESPTOOL_DEADLINE:?}");
        };
        let output = output.unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    /// [`Self::esptool_as_given`] that must succeed.
    fn esptool_stub(&self, args: &[&str]) -> String {
        let (ok, text) = self.esptool_as_given(args);
        assert!(ok, "esptool {args:?} failed:\n{text}");
        text
    }

    fn open_port(&self) -> Box<dyn serialport::SerialPort> {
        serialport::new(&self.port, 115_200).timeout(Duration::from_millis(20)).open().unwrap()
    }
}

impl Drop for StandaloneTwin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(offset: usize) -> String {
    format!("{offset:#x}")
}

#[test]
fn esptool_round_trip_on_the_standalone_twin() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
    let firmware = build(fleet.get("bundle-idf5.2").unwrap(), &fleet, &pki).unwrap();
    let tmp = TempDir::new("twin-esptool");
    let file = |name: &str, bytes: &[u8]| {
        let path = tmp.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    };
    let bootloader = file("bootloader.bin", &firmware.bootloader);
    let table_bytes = two_ota_table().to_bin().unwrap();
    let table = file("partitions.bin", &table_bytes);
    let app = file("app.bin", &firmware.app);
    let scratch_bytes: Vec<u8> = (0..0x3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let scratch = file("scratch.bin", &scratch_bytes);
    const SCRATCH_AT: usize = 0x300000;
    let flash_path = tmp.0.join("board.flash");
    let mut twin = StandaloneTwin::spawn(&flash_path);

    let id = twin.esptool(&["flash-id"]);
    for expected in ["Chip type:          ESP32-D0WD-V3 (revision v3.0)", "Manufacturer: ef", "Device: 4016"] {
        assert!(id.contains(expected), "{expected:?} in:\n{id}");
    }
    assert!(id.contains("Detected flash size: 4MB"), "{id}");
    let chip = twin.esptool(&["chip-id"]);
    assert!(chip.contains("MAC:                24:0a:c4:07:7a:01"), "{chip}");

    // Bootloader and table uncompressed (FLASH_BEGIN/DATA), app and scratch deflated.
    let plain = twin.esptool(&["write-flash", "--no-compress", "0x1000", &bootloader, "0x8000", &table]);
    assert_eq!(plain.matches("Hash of data verified.").count(), 2, "{plain}");
    let deflated = twin.esptool(&["write-flash", "--compress", "0x10000", &app, &hex(SCRATCH_AT), &scratch]);
    assert!(deflated.contains(&format!("Wrote {} bytes (", firmware.app.len())), "compressed write:\n{deflated}");
    assert_eq!(deflated.matches("Hash of data verified.").count(), 2, "{deflated}");

    let verified = twin.esptool(&["verify-flash", "0x1000", &bootloader, "0x10000", &app]);
    assert_eq!(verified.matches("Verification successful (digest matched).").count(), 2, "{verified}");
    let mut tampered = firmware.app.clone();
    tampered[0x100] ^= 1;
    let tampered = file("tampered.bin", &tampered);
    let (ok, refused) = twin.esptool_output(&["verify-flash", "0x10000", &tampered]);
    assert!(!ok && refused.contains("Verification failed"), "{refused}");

    let read_back = tmp.0.join("read-back.bin");
    let len = firmware.app.len().to_string();
    twin.esptool(&["read-flash", "0x10000", &len, &read_back.to_string_lossy()]);
    assert!(std::fs::read(&read_back).unwrap() == firmware.app, "read-flash returns what write-flash wrote");

    twin.esptool(&["erase-region", &hex(SCRATCH_AT + 0x1000), "0x1000"]);
    let scratch_back = tmp.0.join("scratch-back.bin");
    twin.esptool(&["read-flash", &hex(SCRATCH_AT), "0x3000", &scratch_back.to_string_lossy()]);
    let scratch_back = std::fs::read(&scratch_back).unwrap();
    assert!(scratch_back[..0x1000] == scratch_bytes[..0x1000], "the sector before is kept");
    assert!(scratch_back[0x1000..0x2000].iter().all(|&b| b == 0xFF), "the erased sector reads 0xFF");
    assert!(scratch_back[0x2000..] == scratch_bytes[0x2000..], "the sector after is kept");

    // The control channel: boot what esptool wrote, then back into the serial loader.
    let mut port = twin.open_port();
    assert_eq!(twin.control("reset"), "ok");
    let mut booted = Vec::new();
    read_until(&mut port, &mut booted, |seen| find(seen, b"Calling app_main()").is_some());
    assert!(find(&booted, b"ESP-IDF v5.2.5 2nd stage bootloader").is_some());
    assert!(find(&booted, b"Loaded app from partition at offset 0x10000").is_some());
    assert!(twin.control("reboot please").starts_with("error: unknown command"));
    assert_eq!(twin.control("reset download"), "ok");
    let mut in_loader = Vec::new();
    read_until(&mut port, &mut in_loader, |seen| find(seen, b"waiting for download\r\n").is_some());
    drop(port);
    let again = twin.esptool(&["verify-flash", "0x8000", &table]);
    assert!(again.contains("Verification successful (digest matched)."), "{again}");

    // Power off: the flash file holds exactly what esptool wrote.
    assert_eq!(twin.control("power-cut"), "ok");
    let flash = std::fs::read(&flash_path).unwrap();
    assert_eq!(flash.len(), FLASH_SIZE);
    let region = |at: usize, len: usize| &flash[at..at + len];
    assert!(region(0x1000, firmware.bootloader.len()) == firmware.bootloader);
    assert!(region(0x8000, table_bytes.len()) == table_bytes);
    assert!(region(0x10000, firmware.app.len()) == firmware.app);
    assert!(region(SCRATCH_AT + 0x1000, 0x1000).iter().all(|&b| b == 0xFF));
    assert!(region(0xd000, 0x2000).iter().all(|&b| b == 0xFF), "untouched otadata stays erased");
}

/// What esptool's own test suite (`test_esptool.py`) asks of a board, here with the stub and
/// without resets: a flasher that neither resets nor syncs (`--before no-reset-no-sync`) cannot
/// know the stub runs and uploads it again; the running stub loads it over itself and starts
/// it, and it says `OHAI` again.
#[test]
fn esptool_uploads_its_stub_over_the_running_stub_when_it_does_not_sync() {
    let tmp = TempDir::new("twin-esptool-stub");
    let twin = StandaloneTwin::spawn(&tmp.0.join("board.flash"));
    let left = twin.esptool_stub(&["--before", "no-reset", "--after", "no-reset-stub", "flash-id"]);
    assert!(left.contains("Staying in flasher stub."), "{left}");
    let again = twin.esptool_stub(&["--before", "no-reset-no-sync", "--after", "no-reset-stub", "flash-id"]);
    for expected in ["Uploading stub flasher...", "Stub flasher running.", "Manufacturer: ef"] {
        assert!(again.contains(expected), "{expected:?} in:\n{again}");
    }
}
