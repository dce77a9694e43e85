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

#[test]
fn esptool_resets_a_running_twin_into_its_loader_through_dtr_and_rts() {
    let tmp = TempDir::new("rfc2217-reset");
    let flash_path = tmp.0.join("board.flash");
    let firmware = firmware();
    flash_file_with(&flash_path, &firmware);
    // The twin runs its firmware: only the classic reset (EN pulsed with GPIO0 low) gets esptool
    // into the serial loader.
    let twin = RemoteTwin::spawn(&["--boot", "--flash", &flash_path.to_string_lossy()]);
    let id = twin.esptool(&["--no-stub", "flash-id"]);
    for expected in ["Chip type:          ESP32-D0WD-V3 (revision v3.0)", "Device: 4016", "Hard resetting via RTS pin"]
    {
        assert!(id.contains(expected), "{expected:?} in:\n{id}");
    }
    // The reset after the command booted the firmware again: a second connection resets it into
    // the loader again.
    let chip = twin.esptool(&["--no-stub", "--after", "no-reset", "chip-id"]);
    assert!(chip.contains("MAC:                24:0a:c4:07:7a:01"), "{chip}");
    // Left in the loader (`--after no-reset`): a client that does not reset finds it there.
    let again = twin.esptool(&["--no-stub", "--before", "no-reset", "read-mac"]);
    assert!(again.contains("24:0a:c4:07:7a:01"), "{again}");
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
