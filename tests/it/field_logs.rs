//! The real field logs in `tests/data/field-logs/` classify as their README says.

use otarig::outcome::{Outcome, OutcomeClass as C, VerifyReason as R};
use otarig::replay::replay_bytes;

const FIELD_LOGS: &[(&str, Outcome)] = &[
    ("FL01.log", Outcome::tls_verify(R::Hostname)),
    ("FL02.log", Outcome::tls_verify(R::Untrusted)),
    ("FL06.log", Outcome::tls_verify(R::Untrusted)),
    ("FL08.log", Outcome::of(C::OutOfMemory)),
    ("FL12.log", Outcome::of(C::TlsProtocol)),
    ("FL14.log", Outcome::of(C::ImageInvalid)),
    ("FL26.log", Outcome::tls_verify(R::WeakHash)),
    ("FL35.log", Outcome::of(C::Network)),
];

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/field-logs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_field_log_classifies_as_documented() {
    let mut wrong = Vec::new();
    for (name, expected) in FIELD_LOGS {
        let report = replay_bytes(&read(name));
        if report.verdict.outcome != *expected {
            wrong.push(format!("{name}: expected {expected}, got {}", report.verdict.outcome));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn evidence_quotes_the_deciding_lines_with_their_numbers() {
    let bytes = read("FL02.log");
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let report = replay_bytes(&bytes);
    let evidence = &report.verdict.evidence;
    assert!(!evidence.is_empty());
    for line in evidence {
        assert_eq!(lines[(line.line - 1) as usize], line.text);
    }
    assert!(evidence.iter().any(|e| e.text.contains("returned -0x2700")));
    assert!(evidence.iter().any(|e| e.text.contains("not correctly signed by the trusted CA")));
}

#[test]
fn the_cut_second_reason_is_kept_as_truncated() {
    let report = replay_bytes(&read("FL01.log"));
    let flags = &report.verdict.attempts.last().unwrap().verify_flags;
    assert_eq!(flags.len(), 2);
    assert!(!flags[0].truncated);
    assert!(flags[1].truncated);
}

#[test]
fn misleading_certificate_verified_does_not_hide_the_protocol_error() {
    let report = replay_bytes(&read("FL12.log"));
    assert_eq!(report.verdict.outcome, Outcome::of(C::TlsProtocol));
    assert!(report.verdict.evidence.iter().any(|e| e.text.contains("-0x7200")));
}

#[test]
fn esphome_wrapped_bundle_failure_names_the_bundle() {
    let report = replay_bytes(&read("FL06.log"));
    let last = report.verdict.attempts.last().unwrap();
    assert!(last.certificate_bundle);
    assert!(report.formats.esphome);
}
