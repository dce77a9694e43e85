//! The twin as a flashing target: how fast espflash (as a library, ROM protocol, no stub)
//! writes 1 MB into an in-process twin over its pseudo-terminal, how soon after a reset the
//! first boot line is on the line, and how much memory one idle standalone twin
//! (`otarig twin`, 4 MB flash) holds.
//!
//! Why: a lab run flashes a historical image for every cell, and the twin stands in for a
//! board on every CI machine; neither the flashing nor the twin's footprint may limit how many
//! cells a runner can take.
//!
//! `cargo bench --bench twin_flash` (release): median of 5 flashes, each checked against the
//! twin's flash and by espflash's MD5 verification; median of 20 resets. Without `--bench`
//! (`cargo test --benches`) it does one checked pass of each.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use espflash::connection::{Connection, Port, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::Flasher;
use espflash::image_format::Segment;
use espflash::target::DefaultProgressCallback;
use otarig::twin::device::{TwinConfig, TwinDevice};
use serialport::SerialPort;

const MEGABYTE: usize = 1 << 20;
const FIRST_LINE: &[u8] = b"ets Jun  8 2016 00:22:57\r\n";

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn connect(port: Port) -> Flasher {
    let port_info = otarig::board::port::espflash_port_info(None);
    let connection =
        Connection::new(port, port_info, ResetAfterOperation::NoReset, ResetBeforeOperation::NoReset, 115_200);
    Flasher::connect(connection, false, true, false, None, None).expect("espflash connects")
}

/// Flashes 1 MB at 0x10000 into a fresh twin; returns the time of the write (connected, to
/// the verified FLASH_END) and from its end to the first boot line read from the port.
fn flash_one_megabyte(data: &[u8]) -> (Duration, Duration) {
    let twin = TwinDevice::spawn(TwinConfig::default()).expect("twin");
    let port = serialport::new(twin.port_path().to_string_lossy(), 115_200).open_native().expect("port");
    let mut flasher = connect(port);
    let started = Instant::now();
    flasher.write_bins_to_flash(&[Segment::new(0x10000, data)], &mut DefaultProgressCallback).expect("flash");
    let took = started.elapsed();
    let mut port: Port = flasher.into();
    port.set_timeout(Duration::from_millis(1)).expect("timeout");
    let first_line = read_first_line(&mut port);
    assert!(twin.flash()[0x10000..0x10000 + data.len()] == *data, "the twin holds what was written");
    (took, first_line)
}

/// Reads until the ROM's first boot line is complete; returns how long that took.
fn read_first_line(port: &mut impl std::io::Read) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(FIRST_LINE.len()).any(|w| w == FIRST_LINE) {
        assert!(started.elapsed() < Duration::from_secs(5), "no boot line");
        if let Ok(n) = port.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
    }
    started.elapsed()
}

/// From a reset (EN pulsed) to the first complete line of the boot log read from the port.
fn reset_to_first_line(runs: usize) -> Vec<Duration> {
    let twin = TwinDevice::spawn(TwinConfig { download: false, ..TwinConfig::default() }).expect("twin");
    let mut port = serialport::new(twin.port_path().to_string_lossy(), 115_200)
        .timeout(Duration::from_millis(1))
        .open()
        .expect("port");
    let mut buf = [0u8; 4096];
    drain(&mut port, &mut buf);
    let mut times = Vec::new();
    for _ in 0..runs {
        twin.power_cut();
        // Timed from the EN pulse: the request reaching the device thread, the boot, the read.
        let pulse = Instant::now();
        twin.reset(false);
        read_first_line(&mut port);
        times.push(pulse.elapsed());
        drain(&mut port, &mut buf);
    }
    times
}

/// Reads and drops whatever is waiting on the port.
fn drain(port: &mut Box<dyn SerialPort>, buf: &mut [u8]) {
    while port.read(buf).is_ok_and(|n| n > 0) {}
}

/// Resident and peak memory (kB) of one standalone twin, idle after start-up.
fn idle_twin_memory() -> (u64, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .args(["twin", "--flash-size", "4MB"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("otarig twin");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("first line");
    assert!(first.starts_with("serial port: "), "{first}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("/proc status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).expect(name);
        line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).expect("kB")
    };
    let memory = (field("VmRSS:"), field("VmHWM:"));
    let _ = child.kill();
    let _ = child.wait();
    memory
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (flashes, resets) = if benching { (5, 20) } else { (1, 2) };
    // Incompressible-looking bytes, like an app image's code.
    let data: Vec<u8> = (0..MEGABYTE as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();

    let (mut flash_times, mut first_line_times): (Vec<_>, Vec<_>) =
        (0..flashes).map(|_| flash_one_megabyte(&data)).unzip();
    let flash_median = median(&mut flash_times);
    let first_line_median = median(&mut first_line_times);
    let mut reset_times = reset_to_first_line(resets);
    let reset_median = median(&mut reset_times);
    let (rss, peak) = idle_twin_memory();

    println!(
        "twin_flash: espflash wrote 1 MB (no stub, FLASH_DATA, MD5 verified) in {:.0} ms: {:.1} MB/s (median of {flashes})",
        flash_median.as_secs_f64() * 1e3,
        1.048576 / flash_median.as_secs_f64()
    );
    println!(
        "twin_flash: end of flashing to first boot line on the port: {:.0} µs (median of {flashes})",
        first_line_median.as_secs_f64() * 1e6
    );
    println!(
        "twin_flash: reset to first boot line on the port: {:.2} ms (median of {resets})",
        reset_median.as_secs_f64() * 1e3
    );
    println!(
        "twin_flash: idle `otarig twin` (4 MB flash): {:.1} MB resident, {:.1} MB peak",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
