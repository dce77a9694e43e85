//! esptool with its default settings (classic reset through DTR/RTS, the flasher stub, MD5
//! verification, hard reset after) writing 1 MB of noise into the standalone twin over RFC 2217
//! on loopback (`otarig twin --rfc2217`), and for comparison esptool in ROM mode
//! (`--before no-reset --no-stub`) writing the same 1 MB over the twin's pseudo-terminal.
//!
//! Why: an RFC 2217 port is how a lab shares a board, and how esptool, esp-idf-monitor and
//! pytest-embedded reach the twin with their default settings; the time a flash takes there
//! is what a cell on a remote twin pays.
//!
//! `cargo bench --bench twin_rfc2217` (release, esptool from `target/esptool-venv`): median of
//! 3 of each, every write checked by esptool's MD5 verification and by reading the twin's flash
//! file. Without `--bench` (`cargo test --benches`) it does one of each.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MEGABYTE: usize = 1 << 20;

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn esptool() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/esptool-venv/bin/esptool");
    assert!(path.is_file(), "{} missing: run ci/setup-host", path.display());
    path
}

/// `otarig twin` with `args`; its port and the child.
fn twin(args: &[&str]) -> (String, Child) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .arg("twin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("otarig twin");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("first line");
    let port = first.strip_prefix("serial port: ").expect("the port line").trim_end().to_owned();
    (port, child)
}

/// esptool writes `image` at 0x10000 into a fresh twin; the whole run's wall time, and
/// esptool's own figure for the write.
fn write(image: &Path, dir: &Path, remote: bool) -> (Duration, String) {
    let flash = dir.join(if remote { "remote.flash" } else { "pty.flash" });
    let _ = std::fs::remove_file(&flash);
    let flash_arg = flash.to_string_lossy().into_owned();
    let mut args = vec!["--flash", &flash_arg];
    if remote {
        args.extend(["--rfc2217", "0"]);
    }
    let (port, mut child) = twin(&args);
    let mut esptool_args = vec!["--port", &port];
    if !remote {
        esptool_args.extend(["--before", "no-reset", "--after", "no-reset", "--no-stub"]);
    }
    let image_arg = image.to_string_lossy().into_owned();
    let started = Instant::now();
    let output = Command::new(esptool())
        .args(&esptool_args)
        .args(["write-flash", "0x10000", &image_arg])
        .output()
        .expect("esptool");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("Hash of data verified."), "{text}");
    let wrote = text.lines().find(|l| l.starts_with("Wrote ")).expect("esptool's figure").to_owned();
    let _ = child.kill();
    let _ = child.wait();
    let written = std::fs::read(&flash).expect("flash file");
    assert!(written[0x10000..0x10000 + MEGABYTE] == std::fs::read(image).expect("image")[..], "the twin holds it");
    (took, wrote)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let runs = if benching { 3 } else { 1 };
    let dir = std::env::temp_dir().join(format!("otarig-bench-rfc2217-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Noise (xorshift): deflate cannot shrink it, so esptool writes the whole megabyte (it sends
    // it uncompressed); an app image shrinks to about two thirds.
    let mut x = 0x2545_F491u32;
    let data: Vec<u8> = (0..MEGABYTE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let image = dir.join("image.bin");
    std::fs::write(&image, &data).expect("image");

    for (remote, what) in [
        (true, "esptool defaults (classic reset, stub, MD5 verification, hard reset) over RFC 2217 on loopback"),
        (false, "esptool --before no-reset --no-stub over the pseudo-terminal"),
    ] {
        let (mut times, figures): (Vec<_>, Vec<_>) = (0..runs).map(|_| write(&image, &dir, remote)).unzip();
        let took = median(&mut times);
        println!(
            "twin_rfc2217: {what}: 1 MB in {:.1} s for the whole run, {:.0} kB/s (median of {runs}); esptool: {}",
            took.as_secs_f64(),
            1024.0 / took.as_secs_f64(),
            figures[figures.len() / 2]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
