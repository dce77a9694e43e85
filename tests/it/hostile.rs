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

#[test]
fn device_output_with_characters_xml_cannot_hold_leaves_junit_well_formed() {
    let dir = TempDir::new("hostile-junit");
    let output = run_into(&dir.0, &["gts-chain"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let transcripts: Vec<PathBuf> =
        std::fs::read_dir(dir.0.join("transcripts")).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(transcripts.len(), 1);
    let mut transcript = std::fs::read(&transcripts[0]).unwrap();
    transcript.extend_from_slice("I (9) app: \u{fffe}\u{ffff}\u{1}\u{8}\u{1b}[2J done\n".as_bytes());
    std::fs::write(&transcripts[0], transcript).unwrap();
    let report = otarig(&["report", "show", dir.0.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let xml = std::fs::read_to_string(dir.0.join("junit.xml")).unwrap();
    let illegal: Vec<char> = xml
        .chars()
        .filter(|&c| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect();
    assert!(illegal.is_empty(), "characters XML 1.0 cannot hold: {illegal:?}");
    // Terminal escape sequences are dropped from transcripts as shown; the rest is escaped.
    assert!(xml.contains("\\u{fffe}\\u{ffff}\\u{1}\\u{8} done"), "{xml}");
}

#[test]
fn replay_shows_control_characters_of_a_log_escaped_not_obeyed() {
    let dir = TempDir::new("hostile-replay");
    let log = write(
        &dir.0,
        "field\u{8}.log",
        "E (2) esp-tls: mbedtls_ssl_handshake returned -0x2700\u{8}\u{8}\u{8}\u{1b}]0;owned\u{7}\n\
         I (2) esp-tls: Failed to verify peer certificate!\n",
    );
    let output = otarig(&["replay", log.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr(&output));
    assert!(stdout.contains("field\\u{8}.log: tls-verify"), "{stdout}");
    // The terminal's escape sequence is dropped, as in every replay; the backspaces are shown.
    assert!(stdout.contains("-0x2700\\u{8}\\u{8}\\u{8}\n"), "{stdout}");
    assert!(!stdout.contains(|c: char| c.is_control() && !matches!(c, '\n' | '\t')), "{stdout:?}");
}

/// gts-chain with its `[server]` table's `image` line and fault replaced.
fn scenario_with(image: &str, fault: &str) -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join("scenarios/gts-chain.toml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("image = ") {
            out.push_str(&format!("image = {image:?}\n{fault}"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The line and column of the first line of `text` starting with `key`, value's column.
fn line_of(text: &str, key: &str) -> (usize, usize) {
    let line = text.lines().position(|l| l.starts_with(key)).unwrap();
    (line + 1, key.len() + 1)
}

#[test]
fn scenario_values_a_server_or_run_cannot_use_are_refused_at_check_with_a_location() {
    let dir = TempDir::new("hostile-scenario");
    let path_image = write(&dir.0, "path-image.toml", &scenario_with("../../etc/passwd", ""));
    let text = std::fs::read_to_string(&path_image).unwrap();
    let (line, column) = line_of(&text, "image = ");
    let scenarios = Path::new(ROOT).join("scenarios");
    let check =
        |path: &Path| otarig(&["scenario", "check", "--dir", scenarios.to_str().unwrap(), path.to_str().unwrap()]);
    refused(&check(&path_image), 2, &format!("path-image.toml:{line}:{column}: "));

    let injected = "fault = { kind = \"redirect\", location = \"https://ota.example.com/a\\r\\nSet-Cookie: x=1\" }\n";
    let redirect = write(&dir.0, "redirect.toml", &scenario_with("v2.0.0", injected));
    let text = std::fs::read_to_string(&redirect).unwrap();
    let (line, column) = line_of(&text, "fault = ");
    let output = check(&redirect);
    refused(&output, 2, &format!("redirect.toml:{line}:{column}: "));
    assert!(stderr(&output).contains("control character"), "{}", stderr(&output));
}

#[test]
fn manifest_files_outside_its_folder_and_unusable_urls_are_refused_with_a_location() {
    let dir = TempDir::new("hostile-manifest");
    let fleet = dir.0.join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    std::fs::copy(Path::new(ROOT).join("firmware-images/v2.0.0.toml"), fleet.join("v2.0.0.toml")).unwrap();
    let member = std::fs::read_to_string(Path::new(ROOT).join("firmware-images/dst-x3-idf3.2.toml")).unwrap();
    for (key, value) in [
        ("image", "../../../../etc/passwd"),
        ("ota_url", "https://[::1"),
        ("ota_url", "https://ota.example.com/fw.bin\r\nHost: evil"),
    ] {
        let text: String = member
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} ")))
            .map(|l| format!("{l}\n"))
            .chain([format!("{key} = {value:?}\n")])
            .collect();
        let manifest = write(&fleet, "hostile.toml", &text);
        let (line, column) = line_of(&text, &format!("{key} = "));
        let output = otarig(&["fleet", "list", "--dir", fleet.to_str().unwrap()]);
        refused(&output, 2, &format!("{}:{line}:{column}: ", manifest.display()));
    }
}

/// Ends with a documented exit code (0 accepted, 1 a finding, 2 refused), never a panic.
fn no_panic(output: &Output, what: &str) {
    let err = stderr(output);
    assert!(matches!(output.status.code(), Some(0..=2)), "{what}: exit {:?}\n{err}", output.status.code());
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// A small, seeded generator (xorshift64*), so that a failing case names its seed.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of the damages a file takes on the way: bytes flipped in the headers (where the
    /// counts and lengths are), bytes anywhere, a cut, a block copied over another.
    fn damage(&mut self, image: &[u8]) -> Vec<u8> {
        let mut bytes = image.to_vec();
        match self.below(4) {
            0 => {
                for _ in 0..1 + self.below(8) {
                    let at = self.below(64.min(bytes.len()));
                    bytes[at] = self.next() as u8;
                }
            }
            1 => {
                for _ in 0..1 + self.below(32) {
                    let at = self.below(bytes.len());
                    bytes[at] ^= 1 << self.below(8);
                }
            }
            2 => bytes.truncate(self.below(bytes.len())),
            _ => {
                let len = 1 + self.below(4096);
                let from = self.below(bytes.len() - len);
                let to = self.below(bytes.len() - len);
                bytes.copy_within(from..from + len, to);
            }
        }
        bytes
    }
}

#[test]
fn damaged_builds_through_inspect_and_predict_end_without_a_panic() {
    let dir = TempDir::new("hostile-damaged");
    let build = dir.0.join("build");
    let ids = ["dst-x3-idf3.2", "bundle-idf5.2"];
    let out = otarig(&[&["fleet", "build", "--out", build.to_str().unwrap()][..], &ids[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut mutator = Mutator(0x6f74_6172_6967_0001);
    for id in ids {
        let image = std::fs::read(build.join(format!("{id}.bin"))).unwrap();
        for case in 0..60 {
            let damaged = mutator.damage(&image);
            let path = dir.0.join(format!("{id}-{case}.bin"));
            std::fs::write(&path, &damaged).unwrap();
            let what = format!("{id} case {case} (generator state {:#x})", mutator.0);
            no_panic(&otarig(&["inspect", "--format", "json", path.to_str().unwrap()]), &what);
            if case % 4 == 0 {
                let predict = ["predict", "--firmware", path.to_str().unwrap(), "--chain"];
                let chain = "scenarios/pki/certs/r11.pem";
                no_panic(&otarig(&[&predict[..], &[chain, "--no-hostname"]].concat()), &what);
            }
        }
    }
}

/// Inputs the fuzzers kept, through the command a user would hand such a file to: every seed
/// (named files) and an even spread of what the fuzzers found (files named by their hash), at
/// most 40 of those a target, so that the test costs the same however large a corpus grows
/// (`fuzz_corpora` replays every input through the entry points in-process).
#[test]
fn fuzz_corpus_inputs_through_the_binary_end_without_a_panic() {
    let dir = TempDir::new("hostile-corpus");
    let corpus = |target: &str| {
        let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("fuzz/corpus").join(target))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.file_name().is_some_and(|name| name != "README.md"))
            .collect();
        files.sort();
        let is_found = |path: &PathBuf| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 40 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        let (found, mut seeds): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(is_found);
        let step = found.len().div_ceil(40).max(1);
        seeds.extend(found.into_iter().step_by(step));
        seeds
    };
    let mut ran = 0;
    for target in ["parse_app", "find_trust", "partition_table"] {
        for file in corpus(target) {
            no_panic(&otarig(&["inspect", file.to_str().unwrap()]), &file.display().to_string());
            ran += 1;
        }
    }
    for file in corpus("console") {
        no_panic(&otarig(&["replay", "--format", "json", file.to_str().unwrap()]), &file.display().to_string());
        ran += 1;
    }
    for file in corpus("scenario_toml") {
        let path = dir.0.join("hostile.toml");
        std::fs::copy(&file, &path).unwrap();
        no_panic(&otarig(&["scenario", "check", path.to_str().unwrap()]), &file.display().to_string());
        ran += 1;
    }
    let fleet = dir.0.join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    for file in corpus("manifest_toml") {
        std::fs::copy(&file, fleet.join("hostile.toml")).unwrap();
        no_panic(&otarig(&["fleet", "list", "--dir", fleet.to_str().unwrap()]), &file.display().to_string());
        ran += 1;
    }
    assert!(ran > 50, "{ran} inputs");
}
