//! Bad input: never a panic, a sane outcome, memory bounded; chunking never changes a result.

use otarig::console::{Console, MAX_LINE_BYTES};
use otarig::outcome::{Outcome, OutcomeClass as C, VerifyReason as R};
use otarig::replay::{ReplayReport, replay_bytes};
use otarig::verdict::Judge;

/// Deterministic bytes (xorshift64), so a failure can be reproduced.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn replay_in_chunks(bytes: &[u8], size: usize) -> (Outcome, Vec<(u64, String)>, u64) {
    let mut console = Console::new();
    let mut judge = Judge::new();
    for chunk in bytes.chunks(size) {
        console.feed(chunk, |event| judge.observe(&event));
    }
    console.finish(|event| judge.observe(&event));
    let verdict = judge.finish();
    let evidence = verdict.evidence.into_iter().map(|e| (e.line, e.text)).collect();
    (verdict.outcome, evidence, console.lines())
}

#[test]
fn empty_input_is_incomplete() {
    let report = replay_bytes(b"");
    assert_eq!(report.verdict.outcome, Outcome::of(C::Incomplete));
    assert_eq!(report.lines, 0);
    assert!(report.verdict.evidence.is_empty());
}

#[test]
fn random_bytes_and_binary_are_incomplete_without_panicking() {
    for seed in 1..=16 {
        let report = replay_bytes(&noise(64 * 1024, seed));
        assert_eq!(report.verdict.outcome, Outcome::of(C::Incomplete), "seed {seed}");
    }
    let report = replay_bytes(&[0u8; 10_000]);
    assert_eq!(report.verdict.outcome, Outcome::of(C::Incomplete));
}

#[test]
fn ten_megabyte_single_line_is_cut_not_kept() {
    let mut line = b"E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700 ".to_vec();
    line.resize(10 * 1024 * 1024, b'x');
    let report: ReplayReport = replay_bytes(&line);
    assert_eq!(report.lines, 1);
    // The line starts like a handshake failure and is recognised from its kept part.
    assert_eq!(report.verdict.outcome, Outcome::tls_verify(R::Unknown));
    assert!(report.verdict.evidence[0].text.len() <= MAX_LINE_BYTES);
}

#[test]
fn invalid_utf8_inside_a_line_does_not_hide_it() {
    let log = b"I (1) app: \xff\xfe\n\
                E (2) esp-tls: mbedtls_ssl_handshake returned -0x2700\n\
                I (2) esp-tls: verification info:   ! The certificate is not correctly signed by \xc3\n";
    let report = replay_bytes(log);
    // The reason is cut and ends in a byte of UART noise; the noise is ignored and what is
    // left still names exactly one flag.
    assert_eq!(report.verdict.outcome, Outcome::tls_verify(R::Untrusted));
}

#[test]
fn chunk_size_never_changes_the_result() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/field-logs");
    let mut coloured = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let bytes = std::fs::read(&path).unwrap();
            let whole = replay_in_chunks(&bytes, bytes.len().max(1));
            for size in [1, 2, 3, 7, 64] {
                assert_eq!(replay_in_chunks(&bytes, size), whole, "{} in chunks of {size}", path.display());
            }
            // The same log with colours and CRLF line ends classifies the same.
            coloured.clear();
            for line in bytes.split(|b| *b == b'\n') {
                coloured.extend_from_slice(b"\x1b[0;31m");
                coloured.extend_from_slice(line);
                coloured.extend_from_slice(b"\x1b[0m\r\n");
            }
            assert_eq!(replay_in_chunks(&coloured, 5).0, whole.0, "{} coloured", path.display());
        }
    }
}

/// Every error name mbedTLS and ESP-IDF define, with its code: what a changelog, a release note
/// or a pasted header would mention.
fn error_names() -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = (1..0x8000)
        .filter_map(|magnitude: i32| {
            otarig::codes::mbedtls_name(-magnitude).map(|name| (name.to_owned(), format!("-0x{magnitude:04X}")))
        })
        .collect();
    names.extend(otarig::verdict::esp_err::MEANINGS.iter().filter_map(|(value, _)| {
        otarig::codes::esp_err_name(*value).map(|name| (name.to_owned(), format!("0x{value:x}")))
    }));
    names
}

/// A long log of prose, lists, tables and source that names every error, between ordinary
/// application lines, with no update in it.
fn unrelated_text_naming_errors() -> String {
    let names = error_names();
    let mut log = String::new();
    for (n, (name, code)) in names.iter().enumerate() {
        let next = &names[(n + 1) % names.len()].0;
        log.push_str(&format!("I ({}) app_main: sensor reading {n} ok\n", 1000 + n));
        log.push_str(&format!("- esp-tls: Fixed {name} ({code}) being returned when the server closes early\n"));
        log.push_str(&format!("esp_https_ota: {name} is now reported instead of {next} in this release\n"));
        log.push_str(&format!("{name}, {next}\n"));
        log.push_str(&format!("{name}\n"));
        log.push_str(&format!("{name} {code}\n"));
        log.push_str(&format!("| {name} | {code} | the error this release adds to the list |\n"));
        log.push_str(&format!("#define {name} {code}\n"));
        log.push_str(&format!("    case {name}: return {next};\n"));
        log.push_str(&format!("> I think I saw {name} {code} yesterday but it went away after a reboot\n"));
    }
    log
}

#[test]
fn long_unrelated_text_naming_errors_decides_nothing() {
    let log = unrelated_text_naming_errors();
    assert!(log.len() > 100_000, "{} bytes", log.len());
    let report = replay_bytes(log.as_bytes());
    assert_eq!(report.verdict.outcome, Outcome::of(C::Incomplete), "{:?}", report.verdict.evidence);
}

#[test]
fn unrelated_text_after_a_decided_log_does_not_change_it() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synthetic");
    for (log, expected) in [
        ("idf-v3.2/tls-verify-untrusted.log", Outcome::tls_verify(R::Untrusted)),
        ("idf-v5.2/updated.log", Outcome::of(C::Updated)),
        ("arduino-2.x/http-status-500.log", Outcome::of(C::HttpStatus)),
    ] {
        let mut bytes = std::fs::read(format!("{dir}/{log}")).unwrap();
        bytes.extend_from_slice(unrelated_text_naming_errors().as_bytes());
        assert_eq!(replay_bytes(&bytes).verdict.outcome, expected, "{log}");
    }
}

#[test]
fn paste_shapes_around_every_trigger_never_panic_and_chunking_never_matters() {
    const FRAGMENTS: [&str; 24] = [
        "-0x",
        "-",
        "ESP_ERR_",
        "MBEDTLS_ERR_SSL_",
        " - ",
        "errno",
        "returned ",
        "E (",
        "] ",
        "[",
        "(",
        ")",
        ": ",
        "é",
        "→",
        "\u{FFFD}",
        "7",
        "2700",
        "> ",
        "    ",
        "**",
        "`",
        "X509 - Cert",
        "[0;31m",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut log = String::new();
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        log.push_str(FRAGMENTS[(seed % FRAGMENTS.len() as u64) as usize]);
        if seed.is_multiple_of(11) {
            log.push('\n');
        }
    }
    let whole = replay_in_chunks(log.as_bytes(), log.len());
    for size in [1, 3, 7, 4096] {
        assert_eq!(replay_in_chunks(log.as_bytes(), size), whole, "chunks of {size}");
    }
}
