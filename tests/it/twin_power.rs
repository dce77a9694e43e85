//! Power cuts during an update, armed on the twin: after part of the new image is written, and
//! while otadata is being rewritten. When the power comes back the device boots an image that
//! works: the old one, whose otadata never switched, which updates again; or the new one, once
//! the whole otadata entry, CRC included, was written.

use crate::common;

use common::ota_cell::{Dns, Source, run_cell_then};
use common::serial::{count, find};
use otarig::firmware::start::PowerCut;
use otarig::outcome::OutcomeClass;
use otarig::replay::replay_bytes;

/// Where the power-on boot after the cut starts: the second power-on boot from flash (the
/// first follows the twin's start in download mode).
fn boot_after_the_cut(transcript: &[u8]) -> usize {
    let boot = b"rst:0x1 (POWERON_RESET),boot:0x13";
    let first = find(transcript, boot).unwrap() + 1;
    first + find(&transcript[first..], boot).unwrap()
}

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
    let after = &t[boot_after_the_cut(t)..];
    assert!(find(after, b"Defaulting to factory image").is_some(), "{}", String::from_utf8_lossy(after));
    assert_eq!(count(t, b"Loaded app from partition at offset 0x110000"), 1);
    assert_eq!(replay_bytes(t).verdict.outcome.outcome, OutcomeClass::Updated);
}

#[test]
fn a_cut_in_the_otadata_entry_boots_the_old_image_until_its_crc_is_written() {
    for firmware in ["isrg-x1-idf3.2", "bundle-idf5.2"] {
        for (programmed, boots_new) in [(4, false), (28, false), (32, true)] {
            let run = run_cell_then(
                firmware,
                Source::Named("le-short-chain"),
                Dns::Server,
                None,
                Some(PowerCut::OtadataBytes(programmed)),
                |_, _, _| {},
            );
            let t = &run.transcript;
            let after = &t[boot_after_the_cut(t)..];
            let what = format!("{firmware}, {programmed} bytes: {}", String::from_utf8_lossy(after));
            let loaded = find(after, b"Loaded app from partition at offset 0x").map(|at| {
                let digits = &after[at + 38..];
                let end = digits.iter().position(|b| !b.is_ascii_hexdigit()).unwrap();
                String::from_utf8_lossy(&digits[..end]).into_owned()
            });
            if boots_new {
                // The whole entry, CRC included: the bootloader takes it; the new image needs no
                // second download.
                assert_eq!(loaded.as_deref(), Some("110000"), "{what}");
                assert_eq!(count(t, b"esp_https_ota: Starting OTA..."), 1, "{what}");
            } else {
                // Without its CRC the entry is invalid: the factory app boots and updates again.
                assert_eq!(loaded.as_deref(), Some("10000"), "{what}");
                assert_eq!(count(t, b"esp_https_ota: Starting OTA..."), 2, "{what}");
            }
            assert_eq!(replay_bytes(t).verdict.outcome.outcome, OutcomeClass::Updated, "{what}");
        }
    }
}
