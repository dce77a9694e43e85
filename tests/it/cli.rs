//! The `otarig` binary: output, JSON contract, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn otarig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otarig")).args(args).output().expect("run otarig")
}

fn field_log(name: &str) -> String {
    format!("{}/tests/data/field-logs/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn replay_prints_outcome_evidence_and_explanation() {
    let out = otarig(&["replay", &field_log("FL02.log")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().ends_with("tls-verify / untrusted"), "{text}");
    assert!(text.contains("     1 | E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700"), "{text}");
    assert!(text.contains("MBEDTLS_ERR_X509_CERT_VERIFY_FAILED"), "{text}");
    assert!(text.contains("What it means:"), "{text}");
    assert!(text.contains("cross-signed by DST Root CA"), "{text}");
}

#[test]
fn json_has_the_contract_fields() {
    let out = otarig(&["replay", "--format", "json", &field_log("FL26.log")]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "tls-verify");
    assert_eq!(json["reason"], "weak-hash");
    let evidence = json["evidence"].as_array().unwrap();
    assert!(evidence.iter().all(|e| e["line"].as_u64().unwrap() >= 1 && e["text"].is_string()));
    assert!(evidence.iter().any(|e| e["line"] == 4));
    assert!(json["attempts"].is_array());
}

#[test]
fn reason_is_null_for_classes_without_reasons() {
    let out = otarig(&["replay", "--format", "json", &field_log("FL35.log")]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "network");
    assert!(json["reason"].is_null());
}

#[test]
fn reads_standard_input_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .args(["replay", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::fs::read(field_log("FL08.log")).unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "out-of-memory");
}

#[test]
fn unreadable_input_exits_2_with_a_message() {
    let out = otarig(&["replay", "/nonexistent/uart.log"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent/uart.log"), "{err}");
    assert!(out.stdout.is_empty());

    let dir = env!("CARGO_MANIFEST_DIR");
    let out = otarig(&["replay", dir]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(otarig(&["replay"]).status.code(), Some(2));
    assert_eq!(otarig(&["replay", "--format", "xml", "x"]).status.code(), Some(2));
    assert_eq!(otarig(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn help_shows_examples() {
    let out = otarig(&["replay", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("Exit status"), "{text}");
}
