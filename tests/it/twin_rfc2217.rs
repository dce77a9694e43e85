//! The standalone twin as a remote serial port (`otarig twin --rfc2217`), driven by the real
//! tools with their default settings: esptool (its classic reset through DTR/RTS over RFC 2217,
//! from a twin that is running, not waiting in the loader), esp-idf-monitor (its start-up reset
//! and Ctrl-T Ctrl-R, typed on a terminal), one client at a time, and a client that vanishes
//! in the middle of a write.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use otarig::firmware::Fleet;
use otarig::firmware::build::{BuiltFirmware, build};
use otarig::image::partition::two_ota_table;
use otarig::pki::LabPki;
use serialport::SerialPort;

use crate::common;

use common::TempDir;
use common::serial::{count, find};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FLASH_SIZE: usize = 4 * 1024 * 1024;
/// How long a tool may take for what it is asked here (RFC 2217 costs pyserial ~0.2 s a command).
const TOOL_DEADLINE: Duration = Duration::from_secs(240);

fn venv_bin(name: &str) -> PathBuf {
    let path = Path::new(ROOT).join("target/esptool-venv/bin").join(name);
    assert!(path.is_file(), "{} not found: run ci/setup-host, which installs it there", path.display());
    path
}

fn firmware() -> BuiltFirmware {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
    build(fleet.get("bundle-idf5.2").unwrap(), &fleet, &pki).unwrap()
}

/// `otarig twin --rfc2217 0` as a child process, with its control channel.
struct RemoteTwin {
    child: Child,
    /// Held open: the control channel's end of input does not stop the twin, but it is kept
    /// as a lab script would keep it.
    _control: ChildStdin,
    _answers: BufReader<ChildStdout>,
    url: String,
}

impl RemoteTwin {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
            .args(["twin", "--rfc2217", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let control = child.stdin.take().unwrap();
        let mut answers = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        answers.read_line(&mut first).unwrap();
        let url = first.strip_prefix("serial port: ").unwrap_or_else(|| panic!("first line: {first:?}"));
        assert!(url.starts_with("rfc2217://127.0.0.1:"), "{url}");
        Self { url: url.trim_end().to_owned(), child, _control: control, _answers: answers }
    }

    fn address(&self) -> &str {
        self.url.strip_prefix("rfc2217://").unwrap()
    }

    /// esptool with its default settings on the twin's port: (succeeded, stdout and stderr).
    fn esptool_output(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(venv_bin("esptool")).args(["--port", &self.url]).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    fn esptool(&self, args: &[&str]) -> String {
        let (ok, text) = self.esptool_output(args);
        assert!(ok, "esptool {args:?} failed:\n{text}");
        text
    }
}

impl Drop for RemoteTwin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A flash file holding `firmware` as esptool would write it: bootloader, table, app.
fn flash_file_with(path: &Path, firmware: &BuiltFirmware) {
    let mut flash = vec![0xFF; FLASH_SIZE];
    flash[0x1000..0x1000 + firmware.bootloader.len()].copy_from_slice(&firmware.bootloader);
    let table = two_ota_table().to_bin().unwrap();
    flash[0x8000..0x8000 + table.len()].copy_from_slice(&table);
    flash[0x10000..0x10000 + firmware.app.len()].copy_from_slice(&firmware.app);
    std::fs::write(path, flash).unwrap();
}

/// A child's output as it comes, read on a thread.
struct Output {
    lines: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Output {
    fn of(mut stream: impl Read + Send + 'static) -> Self {
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || sender.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self { lines, seen: Vec::new() }
    }

    /// Reads until `done(seen)`; panics at the deadline with what was read.
    fn until(&mut self, done: impl Fn(&[u8]) -> bool) {
        let deadline = Instant::now() + TOOL_DEADLINE;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => panic!("timed out or ended; seen:\n{}", String::from_utf8_lossy(&self.seen)),
            }
        }
    }
}

const BANNER: &[u8] = b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)";
const APP_MAIN: &[u8] = b"Calling app_main()";

/// A file of `bytes` in `dir`, its path as text.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// esptool as a library on the twin's port: connected with its default reset, then its
/// `main` runs `args` (its own stub upload, `--after` handling) on that connection, which stays
/// open; what the chip prints next is read from the port until the app starts. Prints
/// esptool's output, then `BOOT LOG`, then what was read.
const ESPTOOL_THEN_READ: &str = r#"
import sys, time
import esptool
from esptool.cmds import detect_chip
port, args = sys.argv[1], sys.argv[2:]
esp = detect_chip(port)
esptool.main(["--port", port] + args, esp=esp)
esp._port.timeout = 0.1
seen = b""
deadline = time.monotonic() + 60
while b"Calling app_main()" not in seen and time.monotonic() < deadline:
    seen += esp._port.read(4096)
sys.stdout.write("BOOT LOG\n" + seen.decode("ascii", "replace"))
"#;

/// esptool with its defaults on three twins at once (pyserial's RFC 2217 client waits at least
/// 50 ms on every change of the port's timeout, about 0.2 s a command, so the three sessions run
/// side by side): connecting, the stub and erasing on one, writing, booting and reading back on
/// another, verifying on the third.
#[test]
fn esptool_with_its_defaults_resets_flashes_reads_verifies_erases_and_boots_the_twin() {
    let tmp = TempDir::new("rfc2217-esptool");
    let firmware = firmware();
    let bootloader = file(&tmp.0, "bootloader.bin", &firmware.bootloader);
    let table = file(&tmp.0, "partitions.bin", &two_ota_table().to_bin().unwrap());
    let app = file(&tmp.0, "app.bin", &firmware.app);
    std::thread::scope(|s| {
        s.spawn(|| connects_keeps_or_leaves_the_stub_and_erases(&tmp.0, &firmware));
        s.spawn(|| writes_boots_and_reads_back(&tmp.0, &firmware, [&bootloader, &table, &app]));
        s.spawn(|| verifies_what_is_there_and_what_is_not(&tmp.0, &firmware, [&bootloader, &app]));
    });
}

/// The twin boots the firmware in its flash: only esptool's classic reset, EN pulsed with GPIO0
/// low through RTS and DTR, gets it into the serial loader. Then the stub is kept or left, and
/// at last the whole flash is erased.
fn connects_keeps_or_leaves_the_stub_and_erases(dir: &Path, firmware: &BuiltFirmware) {
    let flash_path = dir.join("connect.flash");
    flash_file_with(&flash_path, firmware);
    let twin = RemoteTwin::spawn(&["--boot", "--flash", &flash_path.to_string_lossy()]);
    let id = twin.esptool(&["flash-id"]);
    for expected in [
        "Chip type:          ESP32-D0WD-V3 (revision v3.0)",
        "Stub flasher running.",
        "Manufacturer: ef",
        "Device: 4016",
        "Detected flash size: 4MB",
        "Hard resetting via RTS pin...",
    ] {
        assert!(id.contains(expected), "{expected:?} in:\n{id}");
    }
    // Left in the stub (`--after no-reset-stub`), the next client that does not reset finds it
    // there; `--after no-reset` leaves it in the ROM's loader (the stub resets into it).
    let chip = twin.esptool(&["--after", "no-reset-stub", "chip-id"]);
    assert!(chip.contains("MAC:                24:0a:c4:07:7a:01"), "{chip}");
    let again = twin.esptool(&["--before", "no-reset", "--after", "no-reset", "read-mac"]);
    assert!(again.contains("Stub flasher is already running. No upload is necessary."), "{again}");
    let rom = twin.esptool(&["--before", "no-reset", "--after", "no-reset", "read-mac"]);
    assert!(rom.contains("Uploading stub flasher..."), "{rom}");

    let erased = twin.esptool(&["--before", "no-reset", "erase-flash"]);
    assert!(erased.contains("Flash memory erased successfully"), "{erased}");
    assert!(std::fs::read(&flash_path).unwrap().iter().all(|&b| b == 0xFF), "the whole flash is erased");
}

/// The whole firmware written compressed (FLASH_DEFL_*) and checked by the stub's MD5, then
/// `--after hard-reset`: EN pulsed through RTS, the firmware boots and its log comes on the port;
/// then read back byte for byte.
fn writes_boots_and_reads_back(dir: &Path, firmware: &BuiltFirmware, [bootloader, table, app]: [&str; 3]) {
    let flash_path = dir.join("write.flash");
    let twin = RemoteTwin::spawn(&["--boot", "--flash", &flash_path.to_string_lossy()]);
    let output = Command::new(venv_bin("python"))
        .args(["-c", ESPTOOL_THEN_READ, &twin.url, "--after", "hard-reset", "write-flash"])
        .args(["0x1000", bootloader, "0x8000", table, "0x10000", app])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    let (written, boot) = text.split_once("BOOT LOG\n").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(written.matches("Hash of data verified.").count(), 3, "{written}");
    assert!(written.contains("Hard resetting via RTS pin..."), "{written}");
    for line in ["rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)", "ESP-IDF v5.2.5 2nd stage bootloader"] {
        assert!(boot.contains(line), "{line:?} in:\n{boot}");
    }
    assert!(boot.contains("Calling app_main()"), "{boot}");

    // From the bootloader to the app's end: everything write-flash wrote, and the erased gaps.
    let read_back = dir.join("read-back.bin");
    let end = 0x10000 + firmware.app.len();
    twin.esptool(&["read-flash", "0x1000", &(end - 0x1000).to_string(), &read_back.to_string_lossy()]);
    let mut expected = vec![0xFF; end];
    expected[0x1000..0x1000 + firmware.bootloader.len()].copy_from_slice(&firmware.bootloader);
    let table = two_ota_table().to_bin().unwrap();
    expected[0x8000..0x8000 + table.len()].copy_from_slice(&table);
    expected[0x10000..].copy_from_slice(&firmware.app);
    assert!(std::fs::read(&read_back).unwrap() == expected[0x1000..], "read-flash returns what write-flash wrote");
}

/// `verify-flash` against a twin whose flash holds the firmware: it passes for the files written
/// and fails for a file one bit away.
fn verifies_what_is_there_and_what_is_not(dir: &Path, firmware: &BuiltFirmware, [bootloader, app]: [&str; 2]) {
    let flash_path = dir.join("verify.flash");
    flash_file_with(&flash_path, firmware);
    let twin = RemoteTwin::spawn(&["--flash", &flash_path.to_string_lossy()]);
    let verified = twin.esptool(&["verify-flash", "0x1000", bootloader, "0x10000", app]);
    assert_eq!(verified.matches("Verification successful (digest matched).").count(), 2, "{verified}");
    let mut tampered = firmware.app.clone();
    tampered[0x100] ^= 1;
    let tampered = file(dir, "tampered.bin", &tampered);
    let (ok, refused) = twin.esptool_output(&["verify-flash", "0x10000", &tampered]);
    assert!(!ok && refused.contains("Verification failed"), "{refused}");
}

/// A client that vanishes in the middle of a write: the flash keeps what was written, and the
/// next client is served (and resets the twin out of the half-finished transfer).
#[test]
fn a_client_gone_mid_write_leaves_what_it_wrote_and_the_next_is_served() {
    let tmp = TempDir::new("rfc2217-dropped");
    // Noise: deflate cannot shrink it, so the write takes many blocks.
    let mut x = 0x9E37_79B9u32;
    let noise: Vec<u8> = (0..0x30000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let noise_path = file(&tmp.0, "noise.bin", &noise);
    let twin = RemoteTwin::spawn(&[]);
    let mut writer = Command::new(venv_bin("esptool"))
        .args(["--port", &twin.url, "write-flash", "0x100000", &noise_path])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = Output::of(writer.stdout.take().unwrap());
    // A few blocks in: the client goes away.
    out.until(|seen| find(seen, b"Writing at 0x00108000").is_some());
    writer.kill().unwrap();
    writer.wait().unwrap();

    let read_back = tmp.0.join("read-back.bin");
    let len = noise.len().to_string();
    twin.esptool(&["read-flash", "0x100000", &len, &read_back.to_string_lossy()]);
    let flash = std::fs::read(&read_back).unwrap();
    let written = flash.iter().zip(&noise).take_while(|(a, b)| a == b).count();
    assert!(written >= 0x4000 && written < noise.len(), "written up to {written:#x}");
    assert!(flash[written..].iter().all(|&b| b == 0xFF), "past what was written, the region is erased");
}

#[test]
fn esp_idf_monitor_resets_on_start_and_on_ctrl_t_ctrl_r() {
    let tmp = TempDir::new("rfc2217-monitor");
    let flash_path = tmp.0.join("board.flash");
    flash_file_with(&flash_path, &firmware());
    let twin = RemoteTwin::spawn(&["--boot", "--flash", &flash_path.to_string_lossy()]);
    // esp-idf-monitor reads its keys from a terminal: a pseudo-terminal stands in for one.
    let (mut keyboard, slave) = serialport::TTYPort::pair().unwrap();
    let terminal = std::fs::OpenOptions::new().read(true).write(true).open(slave.name().unwrap()).unwrap();
    let mut monitor = Command::new(venv_bin("python"))
        .args(["-m", "esp_idf_monitor", "--port", &twin.url])
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Output::of(monitor.stdout.take().unwrap());
    let _err = Output::of(monitor.stderr.take().unwrap());
    // Its own reset on start: the twin boots again and the whole boot log shows.
    out.until(|seen| find(seen, APP_MAIN).is_some());
    assert!(find(&out.seen, b"ESP-IDF v5.2.5 2nd stage bootloader").is_some());
    assert_eq!(count(&out.seen, BANNER), 1, "{}", String::from_utf8_lossy(&out.seen));
    // Ctrl-T Ctrl-R: EN pulsed through RTS, the twin boots once more.
    keyboard.write_all(b"\x14\x12").unwrap();
    out.until(|seen| count(seen, APP_MAIN) == 2);
    assert_eq!(count(&out.seen, BANNER), 2);
    assert_eq!(count(&out.seen, b"boot:0x3 (DOWNLOAD_BOOT"), 0, "no reset went into the loader");
    // Ctrl-]: the monitor quits.
    keyboard.write_all(b"\x1d").unwrap();
    assert!(monitor.wait().unwrap().success());
}

/// RFC 2217's DTR query (`IAC SB COM-PORT-OPTION SET-CONTROL 7 IAC SE`), answered "DTR off"
/// by a server that serves this client.
fn served(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(TOOL_DEADLINE)).unwrap();
    if stream.write_all(&[255, 250, 44, 5, 7, 255, 240]).is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && answer == [255, 250, 44, 105, 9, 255, 240]
}

#[test]
fn one_client_at_a_time_and_the_next_one_is_served() {
    let twin = RemoteTwin::spawn(&[]);
    let mut first = TcpStream::connect(twin.address()).unwrap();
    assert!(served(&mut first));
    // A second client while the first is connected: closed at once, without an answer.
    let mut second = TcpStream::connect(twin.address()).unwrap();
    second.set_read_timeout(Some(TOOL_DEADLINE)).unwrap();
    let mut byte = [0u8; 1];
    let closed = matches!(second.read(&mut byte), Ok(0) | Err(_));
    assert!(closed, "a second client is refused");
    assert!(served(&mut first), "the first client is still served");
    drop(first);
    // The first one gone, the next is served (the twin may take its leave a moment later).
    let deadline = Instant::now() + TOOL_DEADLINE;
    loop {
        let mut next = TcpStream::connect(twin.address()).unwrap();
        if served(&mut next) {
            break;
        }
        assert!(Instant::now() < deadline, "no client served after the first left");
    }
}

/// pyserial's client knows the modem inputs (CTS, DSR, RI, CD) only from the server's
/// NOTIFY-MODEMSTATE, which pyserial's own server sends unasked once COM-PORT-OPTION is agreed;
/// until one came, reading them fails ("remote sends no NOTIFY_MODEMSTATE"), and with it
/// esp_rfc2217_server in front of the twin, as esptool's test suite puts it in front of a board.
#[test]
fn pyserial_reads_the_modem_inputs_the_twin_tells_unasked() {
    let twin = RemoteTwin::spawn(&[]);
    let read_lines =
        "import serial, sys\nport = serial.serial_for_url(sys.argv[1])\nprint(port.cts, port.dsr, port.ri, port.cd)";
    let output = Command::new(venv_bin("python")).args(["-c", read_lines, &twin.url]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "False False False False", "nothing asserted");
}
