//! Builds whose mbedTLS departs from their release's default: a curve turned off
//! (`curves_off`) and a reduced TLS input buffer (`tls_in_content_len`), judged offline (what
//! `predict` uses) and on twins against the lab's server.

use crate::common;

use common::ota_cell::{Dns, Source, lab, load_scenario, run_cell};
use otarig::device_tls::release::UNKNOWN_NAMED_CURVE;
use otarig::device_tls::{
    Anchors, Curve, Curves, DevicePolicy, DeviceTlsError, SSL_BAD_INPUT_DATA, SSL_INVALID_RECORD, TlsConfig,
    judge_chain,
};
use otarig::idf::IdfVersion;
use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::replay::replay_bytes;
use otarig::scenario::ServedChain;
use otarig::server::ServerEvent;

const HOST: Option<&str> = Some("ota.example.com");

fn chain(scenario: &str) -> Vec<Vec<u8>> {
    ServedChain::build(&load_scenario(&Source::Named(scenario)), &lab().pki).unwrap().ders()
}

fn policy(idf: &str, root: &str, config: TlsConfig) -> DevicePolicy {
    DevicePolicy {
        idf: IdfVersion::parse(idf).unwrap(),
        anchors: Anchors::Roots(vec![lab().pki.certificate(root).unwrap().der]),
        date_check_at: None,
        config,
    }
}

fn no_p384() -> TlsConfig {
    TlsConfig { curves_off: Curves::of(&[Curve::Secp384r1]), ..TlsConfig::default() }
}

fn in4k() -> TlsConfig {
    TlsConfig { in_content_len: 4096, ..TlsConfig::default() }
}

#[test]
fn a_p384_ca_fails_to_parse_without_p384_and_an_rsa_chain_passes() {
    // leaf (P-256) <- E5 (P-384) <- ISRG Root X1: accepted by the default build.
    let e5 = chain("le-e5-cross-2024");
    assert!(judge_chain(&e5, HOST, &policy("v4.4.8", "isrg_root_x1", TlsConfig::default())).unwrap().accepted());
    for idf in ["v3.2", "v4.4.8", "v5.2.5"] {
        let verdict = judge_chain(&e5, HOST, &policy(idf, "isrg_root_x1", no_p384())).unwrap();
        assert_eq!((verdict.code, verdict.flags), (UNKNOWN_NAMED_CURVE, 0), "{idf}");
        assert!(verdict.path.is_empty(), "{idf}: nothing was verified");
        assert_eq!(verdict.rejection(), Some((OutcomeClass::TlsCrypto, VerifyReason::Unknown)), "{idf}");
        // An RSA chain has no P-384 key: accepted.
        assert!(judge_chain(&chain("le-r10-2024"), HOST, &policy(idf, "isrg_root_x1", no_p384())).unwrap().accepted());
    }
    // A build that cannot parse its own root is not emulated: refused, not judged.
    let own_root = judge_chain(&e5, HOST, &policy("v4.4.8", "isrg_root_x2", no_p384()));
    assert!(matches!(own_root, Err(DeviceTlsError::Root { index: 0, .. })), "{own_root:?}");
}

#[test]
fn a_chain_larger_than_the_input_buffer_is_refused_with_each_generation_s_code() {
    // The Certificate message of leaf <- R10 is about 2 KB; with 46 host names in the leaf,
    // Gen Y's is about 4.7 KB: past 4096 + 320.
    let (small, large) = (chain("le-r10-2024"), chain("le-gen-y-rsa-large-leaf-2026"));
    for (idf, code, class) in [
        ("v4.2.5", SSL_INVALID_RECORD, OutcomeClass::TlsProtocol),
        ("v4.4.8", SSL_BAD_INPUT_DATA, OutcomeClass::Unknown),
        ("v5.2.5", SSL_BAD_INPUT_DATA, OutcomeClass::Unknown),
    ] {
        assert!(judge_chain(&small, HOST, &policy(idf, "isrg_root_x1", in4k())).unwrap().accepted(), "{idf}");
        let verdict = judge_chain(&large, HOST, &policy(idf, "isrg_root_x1", in4k())).unwrap();
        assert_eq!((verdict.code, verdict.rejection().map(|(c, _)| c)), (code, Some(class)), "{idf}");
        // The default 16 KB buffer takes it.
        assert!(judge_chain(&large, HOST, &policy(idf, "isrg_root_x1", TlsConfig::default())).unwrap().accepted());
    }
}

/// The groups the device's ClientHello offered.
fn offered_groups(events: &[ServerEvent]) -> Vec<String> {
    events
        .iter()
        .find_map(|event| match event {
            ServerEvent::ClientHello { groups, .. } => Some(groups.clone()),
            _ => None,
        })
        .expect("a ClientHello")
}

#[test]
fn the_twin_without_p384_neither_offers_nor_parses_it() {
    let refused = run_cell("isrg-x1-no-p384-idf4.4", Source::Named("le-e5-cross-2024"), Dns::Server);
    let text = String::from_utf8_lossy(&refused.transcript);
    assert!(text.contains("esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x3A00"), "{text}");
    assert_eq!(replay_bytes(&refused.transcript).verdict.outcome.outcome, OutcomeClass::TlsCrypto);
    let groups = offered_groups(&refused.events);
    assert!(!groups.iter().any(|g| g.eq_ignore_ascii_case("secp384r1")), "{groups:?}");
    assert!(groups.iter().any(|g| g.eq_ignore_ascii_case("secp256r1")), "{groups:?}");

    // The same product with the default build offers P-384 (2.28's order puts it before
    // P-256, so the server picks it) and updates through the same chain.
    let default = run_cell("isrg-x1-idf4.4", Source::Named("le-e5-cross-2024"), Dns::Server);
    assert_eq!(replay_bytes(&default.transcript).verdict.outcome.outcome, OutcomeClass::Updated);
    let groups = offered_groups(&default.events);
    let at = |name: &str| groups.iter().position(|g| g.eq_ignore_ascii_case(name));
    assert!(at("secp384r1") < at("secp256r1") && at("secp384r1").is_some(), "{groups:?}");

    // Without P-384 an RSA chain still updates (ECDHE on P-256).
    let rsa = run_cell("isrg-x1-no-p384-idf4.4", Source::Named("le-r10-2024"), Dns::Server);
    assert_eq!(replay_bytes(&rsa.transcript).verdict.outcome.outcome, OutcomeClass::Updated);
}

#[test]
fn the_twin_with_a_4k_buffer_updates_only_from_4k_records() {
    let id = "isrg-x1-in4k-idf4.4";
    // 16 KB records: the handshake passes, the first record of the image does not fit.
    let big = run_cell(id, Source::Named("le-r10-2024"), Dns::Server);
    let text = String::from_utf8_lossy(&big.transcript);
    assert!(text.contains("esp-tls-mbedtls: read error :-0x7100:"), "{text}");
    assert!(!text.contains("mbedtls_ssl_handshake returned"), "{text}");
    assert_eq!(replay_bytes(&big.transcript).verdict.outcome.outcome, OutcomeClass::Unknown);
    // 4 KB records: updated.
    let small = run_cell(id, Source::Named("le-r10-4k-records-2024"), Dns::Server);
    assert_eq!(replay_bytes(&small.transcript).verdict.outcome.outcome, OutcomeClass::Updated);
    // A chain larger than the buffer: the handshake ends.
    let chain = run_cell(id, Source::Named("le-gen-y-rsa-large-leaf-2026"), Dns::Server);
    let text = String::from_utf8_lossy(&chain.transcript);
    assert!(text.contains("esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x7100"), "{text}");
}
