//! Power cuts during an update, armed on the twin: after part of the new image is written, and
//! while otadata is being rewritten. When the power comes back the device boots an image that
//! works (the old one: its otadata never switched) and updates again.

use crate::common;

use common::ota_cell::{Dns, Source, run_cell_then};
use common::serial::{count, find};
use otarig::firmware::start::PowerCut;
use otarig::outcome::OutcomeClass;
use otarig::replay::replay_bytes;

#[test]
fn a_power_cut_mid_download_boots_the_old_image_which_updates_again() {
    for firmware in ["isrg-x1-idf3.2", "bundle-idf5.2"] {
        let run = run_cell_then(
            firmware,
            Source::Named("le-short-chain"),
            Dns::Server,
            None,
            Some(PowerCut::AfterBytes(300_000)),
            |_, _, _| {},
        );
        let t = &run.transcript;
        // Two power-on boots, both from the factory app; one update finished.
        assert_eq!(count(t, b"rst:0x1 (POWERON_RESET),boot:0x13"), 2, "{firmware}");
        assert_eq!(count(t, b"Loaded app from partition at offset 0x10000"), 2, "{firmware}");
        assert_eq!(count(t, b"esp_https_ota: Starting OTA..."), 2, "{firmware}");
        assert_eq!(count(t, b"Loaded app from partition at offset 0x110000"), 1, "{firmware}");
        let outcome = replay_bytes(t).verdict.outcome;
        assert_eq!(outcome.outcome, OutcomeClass::Updated, "{firmware}: {}", String::from_utf8_lossy(t));
    }
}

#[test]
fn a_power_cut_during_the_otadata_write_falls_back_to_the_old_image() {
    let run = run_cell_then(
        "bundle-idf5.2",
        Source::Named("le-short-chain"),
        Dns::Server,
        None,
        Some(PowerCut::OtadataWrite),
        |_, _, _| {},
    );
    let t = &run.transcript;
    // The image was verified twice (esp_ota_end, then set_boot_partition) before the cut.
    let second_boot = find(&t[find(t, b"rst:0x1").unwrap() + 1..], b"rst:0x1 (POWERON_RESET)").unwrap();
    let after = &t[second_boot..];
    assert!(find(after, b"Defaulting to factory image").is_some(), "{}", String::from_utf8_lossy(after));
    assert_eq!(count(t, b"Loaded app from partition at offset 0x110000"), 1);
    assert_eq!(replay_bytes(t).verdict.outcome.outcome, OutcomeClass::Updated);
}
