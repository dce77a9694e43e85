//! A firmware that leaves little heap for TLS (`tls_heap`): the device's real mbedTLS
//! allocations counted against its budget on the twin, and what runs out printed as its
//! release prints it.

use crate::common;

use common::ota_cell::{Dns, Source, lab, run_cell, run_manifest};
use common::serial::redact_timestamp;
use otarig::outcome::{Outcome, OutcomeClass, VerifyReason};
use otarig::replay::replay_bytes;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The transcript's lines without terminal escapes, line ends or timestamps.
fn plain_lines(transcript: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(transcript);
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: up to the final letter.
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if c != '\r' {
            plain.push(c);
        }
    }
    plain.lines().map(redact_timestamp).collect()
}

fn outcome(transcript: &[u8]) -> Outcome {
    replay_bytes(transcript).verdict.outcome
}

#[test]
fn a_heap_that_cannot_hold_the_setup_fails_as_field_log_fl08() {
    let run = run_cell("isrg-x1-ble-28k-idf3.2", Source::Named("le-r10-2024"), Dns::Server);
    let lines = plain_lines(&run.transcript);
    let at = lines.iter().position(|l| l.contains("mbedtls_ssl_setup returned")).expect("the setup's failure");
    // Field log FL08 (ESP-IDF v3.2.2 with BLE), from its setup line to the HTTP client's.
    let log = std::fs::read(format!("{ROOT}/tests/data/field-logs/FL08.log")).unwrap();
    let field = plain_lines(&log);
    let from = field.iter().position(|l| l.contains("mbedtls_ssl_setup returned")).unwrap();
    assert_eq!(lines[at..at + 6], field[from..from + 6], "{lines:#?}");
    assert_eq!(outcome(&run.transcript).outcome, OutcomeClass::OutOfMemory);
    assert_eq!(outcome(&log).outcome, OutcomeClass::OutOfMemory);
    // Nothing reached the server but the TCP connection: no ClientHello.
    assert!(!common::ota_cell::describe_events(&run.events).iter().any(|e| e.contains("ClientHello")));
}

#[test]
fn a_heap_that_holds_a_short_chain_runs_out_verifying_a_long_one() {
    let id = "isrg-x1-ble-55k-idf3.2";
    let short = run_cell(id, Source::Named("le-r10-2024"), Dns::Server);
    assert_eq!(outcome(&short.transcript).outcome, OutcomeClass::Updated);
    // leaf <- R3 <- ISRG Root X1 cross-signed by DST: one more certificate held while the
    // signatures are checked, and the RSA-4096 root's check runs out. mbedTLS reports a
    // signature it could not check as not trusted.
    let long = run_cell(id, Source::Named("le-long-chain-2021"), Dns::Server);
    let lines = plain_lines(&long.transcript);
    assert!(lines.iter().any(|l| l == "E (…) esp-tls: mbedtls_ssl_handshake returned -0x2700"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l
                == "I (…) esp-tls: verification info:   ! The certificate is not correctly signed by the trusted CA"),
        "{lines:#?}"
    );
    assert_eq!(outcome(&long.transcript), Outcome::tls_verify(VerifyReason::Untrusted));
    // The same firmware with its heap unlimited updates through that chain.
    let mut unlimited = lab().fleet.get(id).unwrap().clone();
    unlimited.tls.heap = None;
    let control = run_manifest(&unlimited, Source::Named("le-long-chain-2021"), Dns::Server);
    assert_eq!(outcome(&control.transcript).outcome, OutcomeClass::Updated);
}

#[test]
fn budgets_are_per_device_on_twins_side_by_side() {
    let cells = [
        ("isrg-x1-ble-28k-idf3.2", OutcomeClass::OutOfMemory),
        ("isrg-x1-ble-55k-idf3.2", OutcomeClass::Updated),
        ("isrg-x1-idf3.2", OutcomeClass::Updated),
    ];
    std::thread::scope(|scope| {
        let runs: Vec<_> = cells
            .iter()
            .map(|(id, _)| scope.spawn(move || run_cell(id, Source::Named("le-short-chain"), Dns::Server)))
            .collect();
        for (run, (id, expected)) in runs.into_iter().zip(cells) {
            assert_eq!(outcome(&run.join().unwrap().transcript).outcome, expected, "{id}");
        }
    });
}
