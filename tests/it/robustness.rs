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
