//! The twin runs the firmware's update client after boot: the founding case end to end (a
//! DST Root CA X3 v3.2 device against today's GTS chain, the DST cross-sign rescue, and the
//! same rescue with date checks), on an in-process twin, the scenario's real HTTPS server and
//! the lab DNS map; the transcript goes back through the replay classifier.

use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::replay::replay_bytes;

use crate::common;

use common::ota_cell::{Dns, STARTED, Source, lab, run_cell, run_cell_at, run_cell_then, run_flash_then};
use common::serial::{count, find, read_until};

fn cell(firmware: &str, scenario: &str) -> Vec<u8> {
    run_cell(firmware, Source::Named(scenario), Dns::Server).transcript
}

fn text(transcript: &[u8]) -> String {
    String::from_utf8_lossy(transcript).into_owned()
}

#[test]
fn the_founding_case_fails_exactly_as_in_the_field() {
    let transcript = cell("dst-x3-idf3.2", "gts-chain");
    let text = text(&transcript);
    for line in [
        ") esp-tls: mbedtls_ssl_handshake returned -0x2700\x1b[0m\r\n",
        ") esp-tls: Failed to verify peer certificate!\x1b[0m\r\n",
        ") esp-tls: verification info:   ! The certificate is not correctly signed by the trusted CA\r\n\x1b[0m\r\n",
        ") esp_https_ota: Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT\x1b[0m\r\n",
        ") simple_ota_example: Firmware Upgrades Failed\x1b[0m\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let outcome = replay_bytes(&transcript).verdict.outcome;
    assert_eq!((outcome.outcome, outcome.reason), (OutcomeClass::TlsVerify, Some(VerifyReason::Untrusted)));
}

#[test]
fn the_dst_cross_sign_rescues_the_v3_2_device() {
    let transcript = cell("dst-x3-idf3.2", "dst-cross-sign-rescue");
    let text = text(&transcript);
    assert!(text.contains("esp_https_ota: esp_ota_set_boot_partition succeeded"), "{text}");
    assert_eq!(count(&transcript, b"rst:0xc (SW_CPU_RESET)"), 1);
    assert!(text.contains("Loaded app from partition at offset 0x110000"), "{text}");
    // The bootloader is still v3.2's: an update never rewrites it.
    assert_eq!(count(&transcript, b"ESP-IDF v3.2 2nd stage bootloader"), 2);
}

#[test]
fn with_date_checks_the_rescue_chain_is_expired() {
    let transcript = cell("dst-x3-idf3.2-timecheck", "dst-cross-sign-rescue");
    let text = text(&transcript);
    assert!(text.contains("esp-tls: verification info:   ! The certificate validity has expired\r\n"), "{text}");
    assert!(text.contains("simple_ota_example: Firmware Upgrades Failed"), "{text}");
}

#[test]
fn twins_with_different_clocks_run_side_by_side() {
    // The leaf of expired-leaf is valid from 2026-08-20 to 2026-11-18. Two date-checking
    // devices at once: one told 2026-11-25 by SNTP, one told 2026-10-01.
    let late = std::thread::spawn(|| {
        run_cell_at("isrg-x1-idf4.4-timecheck", Source::Named("expired-leaf"), Dns::Server, Some(1_795_564_800))
    });
    let early = std::thread::spawn(|| {
        run_cell_at("isrg-x1-idf4.4-timecheck", Source::Named("expired-leaf"), Dns::Server, Some(1_790_812_800))
    });
    let (late, early) = (late.join().unwrap(), early.join().unwrap());
    assert_eq!(replay_bytes(&late.transcript).verdict.outcome.outcome, OutcomeClass::TlsVerify);
    assert_eq!(replay_bytes(&early.transcript).verdict.outcome.outcome, OutcomeClass::Updated);
    // The late device refused with mbedTLS's alert for an expired certificate.
    let alerts: Vec<String> = late
        .events
        .iter()
        .filter_map(|e| match e {
            otarig::server::ServerEvent::HandshakeFailed { alert_from_client, .. } => alert_from_client.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(alerts, ["CertificateExpired"]);
}

#[test]
fn an_update_that_never_confirms_itself_is_rolled_back_at_the_next_reset() {
    let scenario = "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n\
                    [server]\nchain = [\"leaf\", \"r11\"]\nimage = \"v2.0.1-unconfirmed\"\n";
    let reset_at = std::cell::Cell::new(0);
    let run = run_cell_then("bundle-idf5.2", Source::Inline(scenario), Dns::Server, None, None, |twin, port, seen| {
        // The new app started on trial and never confirmed; the board is reset.
        reset_at.set(seen.len());
        twin.reset(false);
        read_until(port, seen, |seen| {
            let after = reset_at.get();
            find(&seen[after..], b"rst:0x1 (POWERON_RESET)").is_some_and(|at| {
                let from = after + at;
                STARTED.iter().any(|line| {
                    find(&seen[from..], line).is_some_and(|end| find(&seen[from + end..], b"\r\n").is_some())
                })
            })
        });
    });
    let transcript = run.transcript;
    let after_reset = &transcript[reset_at.get()..];
    // The bootloader gave up the unconfirmed entry and went back to the factory app.
    let factory = find(after_reset, b"Defaulting to factory image").expect("back to factory");
    assert!(find(&after_reset[factory..], b"Loaded app from partition at offset 0x10000").is_some());
    let start_up_end = after_reset
        .windows(b"Calling app_main()".len())
        .position(|w| w == b"Calling app_main()")
        .map(|at| reset_at.get() + at + find(&after_reset[at..], b"\r\n").unwrap() + 2)
        .unwrap();
    let outcome = replay_bytes(&transcript[..start_up_end]).verdict.outcome;
    assert_eq!(outcome.outcome, OutcomeClass::RolledBack, "{}", String::from_utf8_lossy(&transcript));
}

#[test]
fn an_update_that_confirms_itself_stays_after_a_reset() {
    let reset_at = std::cell::Cell::new(0);
    let run =
        run_cell_then("bundle-idf5.2", Source::Named("le-short-chain"), Dns::Server, None, None, |twin, port, seen| {
            reset_at.set(seen.len());
            twin.reset(false);
            read_until(port, seen, |seen| {
                find(&seen[reset_at.get()..], b"Loaded app from partition at offset").is_some_and(|at| {
                    let from = reset_at.get() + at;
                    find(&seen[from..], b"Calling app_main()").is_some()
                })
            });
        });
    let after_reset = &run.transcript[reset_at.get()..];
    assert!(find(after_reset, b"Loaded app from partition at offset 0x110000").is_some());
    assert!(find(after_reset, b"Defaulting to factory image").is_none());
}

#[test]
fn an_unconfirmed_running_app_may_not_begin_an_update() {
    // bundle-idf5.2 built as an app that never confirms itself, started on trial from ota_0.
    let lab = lab();
    let mut manifest = lab.fleet.get("bundle-idf5.2").unwrap().clone();
    manifest.confirms = false;
    let built = otarig::firmware::build::build(&manifest, &lab.fleet, &lab.pki).unwrap();
    let start = otarig::firmware::start::StartState::from_names("ota_0", Some("new")).unwrap();
    let flash = otarig::firmware::start::start_flash(&start, &built, 4 << 20).unwrap();
    let run =
        run_flash_then("bundle-idf5.2", flash, Source::Named("le-short-chain"), Dns::Server, None, None, |_, _, _| {});
    let text = String::from_utf8_lossy(&run.transcript);
    assert!(text.contains("Loaded app from partition at offset 0x110000"), "{text}");
    assert!(text.contains("esp_ota_ops: Running app has not confirmed state (ESP_OTA_IMG_PENDING_VERIFY)"), "{text}");
    assert!(text.contains("esp_https_ota: esp_ota_begin failed (ESP_ERR_OTA_ROLLBACK_INVALID_STATE)"), "{text}");
    assert!(text.contains("simple_ota_example: Firmware upgrade failed"), "{text}");
}
