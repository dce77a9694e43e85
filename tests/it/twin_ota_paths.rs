//! Every path of the update client, for each ESP-IDF generation the twin speaks (v3.2, v4.4,
//! v5.2, v5.4), as a reviewed snapshot: the twin's transcript from the end of the app's
//! start-up to the outcome (timestamps redacted), the server's events next to it, and what the
//! replay classifier makes of the transcript. A closed loop: the server's side must agree with
//! the device's (a rejected chain is an alert on the server), and the classifier must read
//! each transcript as the outcome the path stands for.

use crate::common;

use common::ota_cell::{Dns, Source, describe_events, run_cell, update_part};
use otarig::outcome::OutcomeClass;
use otarig::replay::replay_bytes;

/// One firmware per generation; bundle firmware for v4.4+ (the examples' default).
const GENERATIONS: [&str; 4] = ["isrg-x1-idf3.2", "bundle-idf4.4", "bundle-idf5.2", "bundle-idf5.4"];

/// A scenario of the lab PKI's Let's Encrypt look-alikes with one server fault.
fn with_fault(fault: &str) -> String {
    format!(
        "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n\
         [server]\nchain = [\"leaf\", \"r11\"]\nimage = \"v2.0.0\"\nfault = {fault}\n"
    )
}

/// Runs the path for each firmware; returns the reviewed text and asserts the outcome class
/// the classifier reads from each transcript.
fn path(firmware: &[&str], source: impl Fn() -> Source<'static>, dns: Dns, expected: OutcomeClass) -> String {
    let mut review = String::new();
    for id in firmware {
        let run = run_cell(id, source(), dns);
        let report = replay_bytes(&run.transcript);
        let outcome = report.verdict.outcome;
        assert_eq!(outcome.outcome, expected, "{id}: {outcome:?}\n{}", String::from_utf8_lossy(&run.transcript));
        let reason = outcome.reason.map(|r| format!(" / {}", serde_json::to_value(r).unwrap().as_str().unwrap()));
        let class = serde_json::to_value(outcome.outcome).unwrap();
        review.push_str(&format!("=== {id} ===\n{}\n", update_part(&run.transcript)));
        review.push_str(&format!("--- server ---\n{}\n", describe_events(&run.events).join("\n")));
        review.push_str(&format!("--- replay: {}{}\n\n", class.as_str().unwrap(), reason.unwrap_or_default()));
    }
    review
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[test]
fn success() {
    let review = path(&GENERATIONS, || Source::Named("le-short-chain"), Dns::Server, OutcomeClass::Updated);
    insta::assert_snapshot!(review);
}

#[test]
fn untrusted_chain() {
    // A private root no bundle and no PEM list of these firmware holds; and the PEM firmware
    // of v4.4 and v5.2 (their lines differ from the bundle's).
    let private = "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"acme_update_ca\"\n\
                   [server]\nchain = [\"leaf\", \"acme_update_ca\"]\nimage = \"v2.0.0\"\n";
    let mut firmware = GENERATIONS.to_vec();
    firmware.extend(["pinned-r3-idf4.4"]);
    let review = path(&firmware, || Source::Inline(private), Dns::Server, OutcomeClass::TlsVerify);
    let pem_v5 = path(&["private-root-idf5.2"], || Source::Named("gts-chain"), Dns::Server, OutcomeClass::TlsVerify);
    insta::assert_snapshot!(review + &pem_v5);
}

#[test]
fn wrong_hostname() {
    let review = path(&GENERATIONS, || Source::Named("wrong-hostname"), Dns::Server, OutcomeClass::TlsVerify);
    insta::assert_snapshot!(review);
}

#[test]
fn expired_leaf_with_and_without_date_checks() {
    let checked = path(
        &["dst-x3-idf3.2-timecheck"],
        || Source::Named("dst-cross-sign-rescue"),
        Dns::Server,
        OutcomeClass::TlsVerify,
    );
    let unchecked = path(
        &["isrg-x1-idf3.2", "bundle-idf5.2"],
        || Source::Named("expired-leaf"),
        Dns::Server,
        OutcomeClass::Updated,
    );
    insta::assert_snapshot!(checked + &unchecked);
}

#[test]
fn http_404() {
    let v3 = path(&GENERATIONS[..1], || Source::Named("http-404"), Dns::Server, OutcomeClass::ImageInvalid);
    let later = path(&GENERATIONS[1..], || Source::Named("http-404"), Dns::Server, OutcomeClass::HttpStatus);
    insta::assert_snapshot!(v3 + &later);
}

#[test]
fn html_page_with_status_200() {
    let text = leak(with_fault("{ kind = \"html-body\" }"));
    let review = path(&GENERATIONS, || Source::Inline(text), Dns::Server, OutcomeClass::ImageInvalid);
    insta::assert_snapshot!(review);
}

#[test]
fn redirect_to_a_cdn() {
    let v3 = path(&GENERATIONS[..1], || Source::Named("cdn-redirect"), Dns::Server, OutcomeClass::ImageInvalid);
    let later = path(&GENERATIONS[1..], || Source::Named("cdn-redirect"), Dns::Server, OutcomeClass::Updated);
    insta::assert_snapshot!(v3 + &later);
}

#[test]
fn truncated_download() {
    let text = leak(with_fault("{ kind = \"truncate\", after = 300000 }"));
    let v3 = path(&GENERATIONS[..1], || Source::Inline(text), Dns::Server, OutcomeClass::ImageInvalid);
    let later = path(&GENERATIONS[1..], || Source::Inline(text), Dns::Server, OutcomeClass::Network);
    insta::assert_snapshot!(v3 + &later);
}

#[test]
fn connection_reset_mid_download() {
    let text = leak(with_fault("{ kind = \"reset\", after = 200000 }"));
    // v3.2 prints the read error, then verifies what it got: the read error decides.
    let v3 = path(&GENERATIONS[..1], || Source::Inline(text), Dns::Server, OutcomeClass::Network);
    let later = path(&GENERATIONS[1..], || Source::Inline(text), Dns::Server, OutcomeClass::Network);
    insta::assert_snapshot!(v3 + &later);
}

#[test]
fn fatal_alert_from_the_server() {
    let text = leak(with_fault("{ kind = \"alert\", alert = \"handshake-failure\" }"));
    let review = path(&GENERATIONS, || Source::Inline(text), Dns::Server, OutcomeClass::TlsAlert);
    insta::assert_snapshot!(review);
}

#[test]
fn plaintext_server() {
    let text = leak(with_fault("{ kind = \"plaintext\" }"));
    let review = path(&GENERATIONS, || Source::Inline(text), Dns::Server, OutcomeClass::TlsProtocol);
    insta::assert_snapshot!(review);
}

#[test]
fn name_does_not_resolve() {
    let review = path(&GENERATIONS, || Source::Named("le-short-chain"), Dns::Missing, OutcomeClass::Network);
    insta::assert_snapshot!(review);
}

#[test]
fn connection_refused() {
    let review = path(&GENERATIONS, || Source::Named("le-short-chain"), Dns::ClosedPort, OutcomeClass::Network);
    insta::assert_snapshot!(review);
}

#[test]
fn image_larger_than_the_partition() {
    let text = "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n\
                [server]\nchain = [\"leaf\", \"r11\"]\nimage = \"v2.1.0-oversized\"\n";
    let review = path(&GENERATIONS, || Source::Inline(text), Dns::Server, OutcomeClass::ImageInvalid);
    insta::assert_snapshot!(review);
}
