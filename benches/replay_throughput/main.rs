//! Replay throughput: how fast `otarig replay` reads a long UART log, how much memory it needs,
//! and how that compares with `grep -cE` looking for the same decisive lines.
//!
//! Why: a lab board left on a bench prints for hours, and the rig replays such captures after
//! the fact. Replay must stay I/O-class fast (the target is at least a quarter of the speed of
//! a `grep -cE` for the lines the classifier cares about) and must stream: peak memory may
//! not grow with the size of the log.
//!
//! What it does (`cargo bench --bench replay_throughput`):
//!
//! 1. [`generator`] writes two realistic ESP32 logs (≥ 10 MB and ≥ 100 MB) to disk, streaming
//!    line by line through a buffered writer: ROM and bootloader banners, hours of ordinary
//!    ESP-IDF application lines (some coloured), CRLF line endings, and periodic HTTPS OTA
//!    attempts that succeed (write, verify, reboot into the new slot) or fail (certificate,
//!    DNS, TCP, cut download, HTTP 404). A fixed-seed xorshift PRNG makes every run
//!    byte-identical. The generator counts what it wrote: lines, attempts and the outcome of
//!    each, and lines that `grep` should match.
//! 2. [`measure`] runs the already-built `otarig replay --format json FILE` as a child process
//!    (best wall time of three runs, peak RSS from `wait4`'s `rusage`), checks it exited 0 and
//!    that its JSON agrees with the generator (lines, `attempts_total`, the outcome of every
//!    kept attempt): the benchmark proves correctness as well as speed.
//! 3. The same for `grep -cE PATTERN FILE` with `LC_ALL=C`, and in the default locale when
//!    that is a different one; the match count must equal the generator's.
//! 4. Prints a table (every line starts with `replay_throughput:`), says whether the target
//!    holds, and deletes the generated files (also when a check fails).
//!
//! Without `--bench` (`cargo test --benches`) it only replays a 1 MB log once and checks the
//! result, so test runs stay quick.
//!
//! Set `REPLAY_THROUGHPUT_KEEP=1` to keep the generated logs for inspection.
//!
//! Figures are for a warm page cache: the files were just written, and the best of three runs
//! is kept. MB is 10^6 bytes; memory is in MiB.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod generator;
mod measure;
mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

/// The lines the classifier decides on, as literal strings. `grep` gets them as one ERE
/// alternation; the generator counts the lines holding any of them, so `grep -c` is checked.
const DECISIVE: &[&str] = &[
    "mbedtls_ssl_handshake returned",
    "mbedtls_ssl_setup returned",
    "verification info",
    "Failed to verify",
    "esp_https_ota",
    "esp_ota_ops",
    "Loaded app from partition",
    "rst:0x",
    "Guru Meditation",
    "esp-x509-crt-bundle",
    "Connection failed",
    "Brownout",
    "abort() was called",
    "task_wdt",
];

/// Seed of the generator's PRNG: same seed, same bytes.
const SEED: u64 = 0x5EED_E5B3_2016_0A7A;
/// Size of the small log: enough to show a stable RSS baseline.
const SMALL_BYTES: u64 = 10_000_000;
/// Size of the large log (the file ends at the first line boundary past it).
const LARGE_BYTES: u64 = 100_000_000;
/// Size of the log of a smoke run (without `--bench`).
const SMOKE_BYTES: u64 = 1_000_000;
/// Runs per measurement; the fastest counts.
const RUNS: usize = 3;
/// The target: otarig at least this fraction of `grep -cE`'s throughput.
const TARGET_RATIO: f64 = 0.25;

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let otarig = Path::new(env!("CARGO_BIN_EXE_otarig"));
    let dir = work_dir();
    if full {
        bench(otarig, &dir);
    } else {
        smoke(otarig, &dir);
    }
}

/// The full benchmark: two logs, otarig on both, grep on the large one, a table.
fn bench(otarig: &Path, dir: &Path) {
    let small = LogFile::create(dir, "small", SMALL_BYTES);
    let large = LogFile::create(dir, "large", LARGE_BYTES);

    let small_run = measure::otarig(otarig, &small, RUNS);
    let large_run = measure::otarig(otarig, &large, RUNS);
    let grep_c = measure::grep(&large, Locale::C, RUNS);
    let default_locale = measure::default_locale();
    let grep_default = (!measure::is_c_locale(&default_locale))
        .then(|| measure::grep(&large, Locale::Default(default_locale.clone()), RUNS));

    report::table(&small, &small_run, &large, &large_run, &grep_c, grep_default.as_ref());
    // `small` and `large` are deleted when dropped.
}

/// A quick correctness check for test runs: one small log, one replay.
fn smoke(otarig: &Path, dir: &Path) {
    let log = LogFile::create(dir, "smoke", SMOKE_BYTES);
    let run = measure::otarig(otarig, &log, 1);
    println!(
        "replay_throughput: smoke run (no --bench): {} lines, {} attempts replayed correctly in {:.3} s",
        log.summary.lines,
        log.summary.attempts,
        run.best.as_secs_f64()
    );
}

/// Where the logs go: the target directory's scratch space when cargo names one, else the
/// system's temporary directory.
fn work_dir() -> PathBuf {
    let dir = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|err| panic!("cannot create the scratch directory {}: {err}", dir.display()));
    dir
}

/// A generated log on disk and what the generator wrote into it; deleted on drop, so a failed
/// check does not leave 100 MB behind.
struct LogFile {
    path: PathBuf,
    summary: generator::Summary,
}

impl LogFile {
    fn create(dir: &Path, name: &str, target_bytes: u64) -> Self {
        let path = dir.join(format!("replay_throughput-{}-{name}.log", std::process::id()));
        let started = Instant::now();
        let summary = generator::write_log(&path, target_bytes, SEED)
            .unwrap_or_else(|err| panic!("cannot write the log {}: {err}", path.display()));
        println!(
            "replay_throughput: generated {} ({:.1} MB, {} lines, {} update attempts, \
             {} lines grep should match) in {:.2} s",
            path.display(),
            mb(summary.bytes),
            summary.lines,
            summary.attempts,
            summary.decisive_lines,
            started.elapsed().as_secs_f64()
        );
        LogFile { path, summary }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        if std::env::var_os("REPLAY_THROUGHPUT_KEEP").is_some_and(|v| v == "1") {
            println!("replay_throughput: kept {}", self.path.display());
            return;
        }
        if let Err(err) = std::fs::remove_file(&self.path) {
            eprintln!("replay_throughput: cannot delete {}: {err}", self.path.display());
        }
    }
}

/// Which locale `grep` runs in.
#[derive(Clone, Debug)]
enum Locale {
    /// `LC_ALL=C`: bytes, no multibyte handling.
    C,
    /// Whatever the environment says (named for the report).
    Default(String),
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

// ------------------------------------------------------------------------------------------
// Generator
// ------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------
// Measurement
// ------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------
