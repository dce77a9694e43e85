//! `otarig predict` and the twin never disagree: for every fleet member and every scenario
//! whose chain is the one the device meets (no redirect), the twin's handshake ends as the
//! prediction says — accepted, or refused with the same mbedTLS code and outcome class — and
//! where the device's log names a reason, it is the predicted one. The scenarios include a
//! chain with P-384 CAs (refused while parsing by a build without that curve) and one larger
//! than a 4 KB input buffer. Members that state the heap they leave for TLS (`tls_heap`) are
//! left out: `predict` says their heap is unknown, and only a twin counts it.

use crate::common;

use common::ota_cell::{Dns, Source, lab, load_scenario, run_cell};
use common::serial::find;
use otarig::firmware::build::build;
use otarig::firmware::profile::{FirmwareProfile, Stated};
use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::predict::{Device, predict_one};
use otarig::replay::replay_bytes;
use otarig::scenario::ServedChain;

const SCENARIOS: [&str; 10] = [
    "dst-cross-sign-rescue",
    "expired-leaf",
    "gts-chain",
    "http-404",
    "le-e5-x2-2024",
    "le-gen-y-rsa-large-leaf-2026",
    "le-long-chain-2021",
    "le-short-chain",
    "missing-intermediate",
    "wrong-hostname",
];

/// The mbedTLS code the twin printed for its handshake, if it failed.
fn printed_handshake_code(transcript: &[u8]) -> Option<i32> {
    let marker = b"mbedtls_ssl_handshake returned -0x";
    let at = find(transcript, marker)? + marker.len();
    let digits: String = transcript[at..].iter().take_while(|b| b.is_ascii_hexdigit()).map(|&b| b as char).collect();
    i32::from_str_radix(&digits, 16).ok().map(|magnitude| -magnitude)
}

#[test]
fn predict_and_the_twin_agree_on_every_fleet_member_and_chain() {
    let lab = lab();
    let firmware: Vec<String> = lab.fleet.members().filter(|m| m.tls.heap.is_none()).map(|m| m.id.clone()).collect();
    let cells: Vec<(&String, &str)> = firmware.iter().flat_map(|f| SCENARIOS.iter().map(move |s| (f, *s))).collect();
    let disagreements: Vec<String> = std::thread::scope(|scope| {
        let halves: Vec<_> = cells
            .chunks(cells.len().div_ceil(2))
            .map(|half| scope.spawn(move || half.iter().filter_map(|(f, s)| disagreement(f, s)).collect::<Vec<_>>()))
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}

/// Runs one cell on the twin and one prediction; describes how they differ, if they do.
fn disagreement(firmware: &str, scenario_id: &str) -> Option<String> {
    let lab = lab();
    let scenario = load_scenario(&Source::Named(scenario_id));
    let built = build(lab.fleet.get(firmware).unwrap(), &lab.fleet, &lab.pki).unwrap();
    let device =
        Device::from_profile(Some(firmware.to_owned()), &FirmwareProfile::read(&built.app, &Stated::default()));
    let chain = ServedChain::build(&scenario, &lab.pki).unwrap().ders();
    let prediction = predict_one(&device, &chain, scenario.date.unix_timestamp(), false).unwrap();

    let run = run_cell(firmware, Source::Named(scenario_id), Dns::Server);
    let printed = printed_handshake_code(&run.transcript);
    let observed = replay_bytes(&run.transcript).verdict.outcome;
    let cell = format!("{firmware} x {scenario_id}");
    match prediction.rejection() {
        None if printed.is_some() => {
            Some(format!("{cell}: predicted accepted, the twin's handshake returned {printed:?}"))
        }
        None => None,
        Some(_) if printed != Some(prediction.verdict.code) => {
            Some(format!("{cell}: predicted code {:#x}, the twin printed {printed:?}", prediction.verdict.code))
        }
        Some((class, reason)) => {
            let named = observed.reason.filter(|r| *r != VerifyReason::Unknown);
            if observed.outcome != class {
                Some(format!("{cell}: predicted {class:?}/{reason:?}, the twin's log reads {observed:?}"))
            } else if class == OutcomeClass::TlsVerify && named.is_some_and(|named| named != reason) {
                Some(format!("{cell}: predicted reason {reason:?}, the twin's log names {named:?}"))
            } else {
                None
            }
        }
    }
}
