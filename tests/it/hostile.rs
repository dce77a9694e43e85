//! Hostile input and hostile conditions, through the binary as a user or an attacker drives it:
//! every case ends with an exit code and a message, never a panic (exit 101), and memory stays
//! bounded by what the input is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn otarig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit `code`, no panic, and an `error:` line that says `needle`.
fn refused(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "expected `{needle}` in:\n{err}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A short run of one firmware against `scenarios` on one twin into `out`.
fn run_into(out: &Path, scenarios: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["run", "--firmware", "dst-x3-idf3.2", "--timeout", "3", "--twins", "1"];
    for scenario in scenarios {
        args.extend(["--scenario", scenario]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    otarig(&args)
}

#[test]
fn a_run_directory_held_by_another_run_is_refused_naming_it() {
    let dir = TempDir::new("hostile-run-lock");
    let _held = otarig::run::RunDirLock::try_take(&dir.0).unwrap();
    let output = run_into(&dir.0, &["gts-chain"], &[]);
    refused(&output, 2, &format!("process {}", std::process::id()));
    assert!(!dir.0.join("results.jsonl").exists(), "nothing written");
}

#[test]
fn a_directory_with_results_is_refused_unless_resumed() {
    let dir = TempDir::new("hostile-run-again");
    let earlier = "{\"firmware\":\"x\"}\n";
    let results = write(&dir.0, "results.jsonl", earlier);
    let output = run_into(&dir.0, &["gts-chain"], &[]);
    refused(&output, 2, "already holds the results of a run");
    assert!(stderr(&output).contains("--resume"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&results).unwrap(), earlier, "earlier results kept");
}

#[test]
fn results_that_cannot_be_written_stop_the_run_as_an_infrastructure_error() {
    // The results file is the full device: every write fails with ENOSPC, as on a full disk.
    let dir = TempDir::new("hostile-disk-full");
    std::os::unix::fs::symlink("/dev/full", dir.0.join("results.jsonl")).unwrap();
    let output = run_into(&dir.0, &["gts-chain", "wrong-hostname", "expired-leaf"], &[]);
    refused(&output, 3, "results.jsonl");
    let transcripts = std::fs::read_dir(dir.0.join("transcripts")).map_or(0, Iterator::count);
    assert_eq!(transcripts, 1, "the run stops after the first result it cannot keep");
}

#[test]
fn lab_config_durations_and_counts_past_their_limits_are_errors_with_a_location() {
    let dir = TempDir::new("hostile-lab");
    for (text, at) in [
        ("twins = 1\n[timeouts]\nboot = 9223372036854775807\n", ":3:8: "),
        ("twins = 1\n[timeouts]\ntotal = 86401\n", ":3:9: "),
        ("twins = 40000\n", ":1:9: "),
        ("twins = 1\nretries = 4000000000\n", ":2:11: "),
    ] {
        let config = write(&dir.0, "otarig.toml", text);
        let output = otarig(&["lab", "check", "--config", config.to_str().unwrap()]);
        refused(&output, 2, &format!("{}{at}", config.display()));
    }
}

#[test]
fn inputs_larger_than_any_flash_are_refused_without_reading_them_whole() {
    let dir = TempDir::new("hostile-size");
    let sparse = dir.0.join("sparse.bin");
    std::fs::File::create(&sparse).unwrap().set_len(64 << 30).unwrap();
    let sparse = sparse.to_str().unwrap();
    for path in [sparse, "/dev/zero"] {
        refused(&otarig(&["inspect", path]), 2, "larger than 16777216 bytes");
        refused(&otarig(&["predict", "--firmware", "dst-x3-idf3.2", "--chain", path]), 2, "larger than");
        let out = dir.0.join("out.bin");
        let transplant = ["transplant", path, "--replace", "DST Root CA X3", "--with", "isrg_root_x1", "--out"];
        refused(&otarig(&[&transplant[..], &[out.to_str().unwrap()]].concat()), 2, "larger than");
    }
    refused(&otarig(&["predict", "--firmware", sparse, "--chain", "scenarios/pki/certs/r11.pem"]), 2, "larger than");
}

/// ESP-IDF's two-OTA rows with `factory`'s subtype `subtype` and `nvs`'s flags `flags`, MD5 row
/// and padding as a build writes them.
fn partition_table(subtype: u8, flags: u32) -> Vec<u8> {
    let mut bin = otarig::image::partition::two_ota_table().to_bin().unwrap();
    bin[3 * 32 + 3] = subtype;
    bin[28..32].copy_from_slice(&flags.to_le_bytes());
    bin
}

#[test]
fn partition_rows_no_reader_can_name_are_errors_naming_the_entry() {
    let dir = TempDir::new("hostile-table");
    for (table, entry) in
        [(partition_table(0x30, 0), "entry 3 (at 0x8060)"), (partition_table(0, 0x80), "entry 0 (at 0x8000)")]
    {
        let path = dir.0.join("table.bin");
        std::fs::write(&path, table).unwrap();
        refused(&otarig(&["inspect", path.to_str().unwrap()]), 2, entry);
    }
}

#[test]
fn the_twin_control_channel_refuses_long_and_non_utf8_lines_and_goes_on() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .args(["twin", "--flash-size", "4MB"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut control = child.stdin.take().unwrap();
    let mut answers = BufReader::new(child.stdout.take().unwrap());
    let mut answer = String::new();
    answers.read_line(&mut answer).unwrap();
    assert!(answer.starts_with("serial port: "), "{answer:?}");
    let mut ask = |line: &[u8]| {
        control.write_all(line).unwrap();
        control.write_all(b"\n").unwrap();
        control.flush().unwrap();
        let mut answer = String::new();
        answers.read_line(&mut answer).unwrap();
        answer
    };
    let not_utf8 = ask(b"reset \xff\xfe");
    let long = ask(&vec![b'A'; 8 << 20]);
    let reset = ask(b"reset download");
    let _ = child.kill();
    let _ = child.wait();
    assert!(not_utf8.starts_with("error: line is not UTF-8"), "{not_utf8:?}");
    assert!(long.starts_with("error: line longer than 4096 bytes") && long.len() < 200, "{long:?}");
    assert_eq!(reset, "ok\n");
}
