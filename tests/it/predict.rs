//! `otarig predict`: the founding case judged offline for fleet firmware, images and bare trust
//! sets; forecasts (a date-checking device's own cliff, the server's cliff for a device without
//! date checks); the command's JSON contract, usage errors and help.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::TempDir;
use otarig::device_tls::Anchors;
use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::firmware::profile::{ClockSource, Source, Sourced};
use otarig::image::CertInfo;
use otarig::image::build::merged_flash;
use otarig::image::otadata::{OTADATA_SIZE, Otadata};
use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::pki::LabPki;
use otarig::predict::{CliffKind, Device, Forecast, UNSET_CLOCK, predict, predict_one};
use otarig::scenario::{Scenario, ServedChain};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn pki() -> &'static LabPki {
    static PKI: OnceLock<LabPki> = OnceLock::new();
    PKI.get_or_init(|| LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap())
}

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| Fleet::load(&Path::new(ROOT).join("firmware-images"), pki()).unwrap())
}

/// The chain a scenario serves (DER, in its order) and the scenario's date.
fn chain(scenario: &str) -> (Vec<Vec<u8>>, i64) {
    let scenario = Scenario::load(&Path::new(ROOT).join(format!("scenarios/{scenario}.toml")), pki()).unwrap();
    (ServedChain::build(&scenario, pki()).unwrap().ders(), scenario.date.unix_timestamp())
}

fn chain_pem(scenario: &str) -> String {
    let scenario = Scenario::load(&Path::new(ROOT).join(format!("scenarios/{scenario}.toml")), pki()).unwrap();
    ServedChain::build(&scenario, pki()).unwrap().certs.iter().map(|c| c.pem.clone()).collect()
}

fn device(id: &str) -> Device {
    Device::from_manifest(fleet().get(id).unwrap(), fleet(), pki()).unwrap()
}

fn not_after(der: &[u8]) -> i64 {
    CertInfo::from_der(der).unwrap().not_after
}

fn date(text: &str) -> i64 {
    otarig::pki::spec::parse_time(text).unwrap().unix_timestamp()
}

fn outcome(device: &Device, chain: &[Vec<u8>], at: i64) -> Option<(OutcomeClass, VerifyReason)> {
    predict_one(device, chain, at, false).unwrap().rejection()
}

#[test]
fn the_founding_case_for_fleet_firmware() {
    let (gts, at) = chain("gts-chain");
    let (rescue, rescue_at) = chain("dst-cross-sign-rescue");
    let dst = device("dst-x3-idf3.2");
    assert_eq!(dst.hostname.as_deref(), Some("ota.example.com"), "the host of the OTA URL");
    assert_eq!(outcome(&dst, &gts, at), Some((OutcomeClass::TlsVerify, VerifyReason::Untrusted)));
    let rescued = predict_one(&dst, &rescue, rescue_at, false).unwrap();
    assert!(rescued.accepted(), "{:#?}", rescued.verdict);
    assert_eq!(rescued.date_check_at, None, "built without date checks");
    assert!(rescued.verdict.path[0].subject.contains("DST Root CA X3"), "{:#?}", rescued.verdict.path);

    let timecheck = predict_one(&device("dst-x3-idf3.2-timecheck"), &rescue, rescue_at, false).unwrap();
    assert_eq!(timecheck.date_check_at, Some(rescue_at), "SNTP: the clock reads the date judged");
    assert_eq!(timecheck.rejection(), Some((OutcomeClass::TlsVerify, VerifyReason::Expired)));
    assert_eq!(timecheck.verdict.flags, 0x01);

    let bundle = predict_one(&device("bundle-idf5.2"), &gts, at, false).unwrap();
    assert!(matches!(bundle.device.anchors, Anchors::Bundle { .. }));
    assert!(bundle.accepted(), "{:#?}", bundle.verdict);
    assert_eq!(bundle.verdict.log.last().unwrap().text, "Certificate validated");
}

#[test]
fn every_fleet_member_in_order() {
    let (rescue, at) = chain("dst-cross-sign-rescue");
    let devices: Vec<Device> = fleet().members().map(|m| device(&m.id)).collect();
    let predictions = predict(&devices, &rescue, at, false).unwrap();
    let ids: Vec<&str> = predictions.iter().map(|p| p.device.firmware.as_deref().unwrap()).collect();
    let members: Vec<&str> = fleet().members().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, members);
    assert!(!ids.contains(&"v2.0.0"), "the update release is not a member");
    let accepted: Vec<&str> =
        predictions.iter().filter(|p| p.accepted()).map(|p| p.device.firmware.as_deref().unwrap()).collect();
    assert!(accepted.contains(&"dst-x3-idf3.2") && accepted.contains(&"isrg-x1-idf3.2"), "{accepted:?}");
    assert!(!accepted.contains(&"dst-x3-idf3.2-timecheck") && !accepted.contains(&"pinned-r3-idf4.4"));
}

#[test]
fn an_unset_clock_reads_1970_and_nothing_is_valid_yet() {
    let (rescue, at) = chain("dst-cross-sign-rescue");
    let mut unset = device("dst-x3-idf3.2-timecheck");
    unset.clock = ClockSource::Unset;
    let prediction = predict_one(&unset, &rescue, at, false).unwrap();
    assert_eq!(prediction.date_check_at, Some(UNSET_CLOCK));
    assert_eq!(prediction.rejection(), Some((OutcomeClass::TlsVerify, VerifyReason::NotYetValid)));
}

#[test]
fn images_are_read_as_the_twin_reads_them() {
    let manifest = |id: &str| fleet().get(id).unwrap();
    let app = build(manifest("dst-x3-idf3.2"), fleet(), pki()).unwrap();
    let from_image = Device::from_image("app.bin", &app.app).unwrap();
    assert_eq!(from_image.firmware.as_deref(), Some("app.bin"));
    // The same facts; the image's come from its profile record, the manifest's from the manifest.
    assert_eq!(from_image.sources["idf"], Source::Record);
    let facts = |device: Device| {
        let idf = device.idf.clone().map(|idf| Sourced::new(idf.value, Source::Manifest));
        Device { firmware: None, idf, sources: Default::default(), ..device }
    };
    assert_eq!(facts(from_image), facts(device("dst-x3-idf3.2")));

    // A merged flash whose otadata selects ota_0 runs the ISRG X1 build, not the factory app.
    let isrg = build(manifest("isrg-x1-idf3.2"), fleet(), pki()).unwrap();
    let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    otadata.set_boot_slot(0, 2, false);
    let flash =
        merged_flash(0x40_0000, &app.bootloader, Some(&otadata), &[(0x1_0000, &app.app), (0x11_0000, &isrg.app)]);
    let running = Device::from_image("flash.bin", &flash).unwrap();
    assert_eq!(running.anchors, device("isrg-x1-idf3.2").anchors);
    // Without otadata the factory app runs.
    let flash = merged_flash(0x40_0000, &app.bootloader, None, &[(0x1_0000, &app.app), (0x11_0000, &isrg.app)]);
    assert_eq!(Device::from_image("flash.bin", &flash).unwrap().anchors, device("dst-x3-idf3.2").anchors);

    assert!(Device::from_image("notes.txt", b"not an image").is_err());
}

#[test]
fn a_date_checking_device_stops_at_the_first_expiry_in_its_path() {
    // 2021-09-15: the long chain reaches DST Root CA X3, which expires 2021-09-30 14:01:15;
    // every other certificate of the path outlives it.
    let (long_chain, _) = chain("le-long-chain-2021");
    let at = date("2021-09-15");
    let timecheck = device("dst-x3-idf3.2-timecheck");
    let prediction = predict_one(&timecheck, &long_chain, at, true).unwrap();
    assert!(prediction.accepted(), "{:#?}", prediction.verdict);
    let Some(Forecast::Cliff(cliff)) = &prediction.forecast else { panic!("{:?}", prediction.forecast) };
    let dst_end = not_after(&pki().certificate("dst_root_x3").unwrap().der);
    assert_eq!(cliff.at, dst_end + 1);
    assert_eq!(cliff.at, date("2021-09-30T14:01:16Z"));
    assert_eq!(cliff.kind, CliffKind::DeviceRejects);
    assert!(cliff.certificate.contains("DST Root CA X3") && cliff.expires, "{cliff:?}");
    assert_eq!(cliff.rejection, Some((OutcomeClass::TlsVerify, VerifyReason::Expired)));
    let path_ends = long_chain.iter().map(|der| not_after(der)).chain([dst_end]);
    assert_eq!(cliff.at, path_ends.filter(|end| *end >= at).min().unwrap() + 1);
    // The second before, it still accepts.
    assert_eq!(outcome(&timecheck, &long_chain, cliff.at - 1), None);

    // ISRG Root X1 firmware made to check dates: the leaf is the first to expire.
    let (rescue, at) = chain("dst-cross-sign-rescue");
    let mut isrg = device("isrg-x1-idf3.2");
    isrg.time_check = true;
    isrg.clock = ClockSource::Sntp;
    let prediction = predict_one(&isrg, &rescue, at, true).unwrap();
    let Some(Forecast::Cliff(cliff)) = &prediction.forecast else { panic!("{:?}", prediction.forecast) };
    assert_eq!((cliff.at, cliff.kind), (not_after(&rescue[0]) + 1, CliffKind::DeviceRejects));
    assert_eq!(cliff.certificate, "CN=ota.example.com");
}

#[test]
fn without_date_checks_the_cliff_is_the_servers() {
    let (rescue, at) = chain("dst-cross-sign-rescue");
    // DST Root CA X3 (2021) and the cross-sign (2024) are long expired and still work; the
    // first certificate of the path that expires from now on is the leaf (R11 lasts to 2027-03).
    let prediction = predict_one(&device("dst-x3-idf3.2"), &rescue, at, true).unwrap();
    let Some(Forecast::Cliff(cliff)) = &prediction.forecast else { panic!("{:?}", prediction.forecast) };
    assert_eq!(cliff.kind, CliffKind::ServerMustChange);
    assert_eq!(cliff.at, not_after(&rescue[0]) + 1);
    assert!(not_after(&rescue[0]) < not_after(&rescue[1]) && not_after(&rescue[2]) < at);
    assert_eq!(cliff.rejection, None);
    // Past the leaf's end, the same device still accepts the same chain.
    assert_eq!(outcome(&device("dst-x3-idf3.2"), &rescue, cliff.at + 86_400), None);

    let rejected = predict_one(&device("dst-x3-idf3.2-timecheck"), &rescue, at, true).unwrap();
    assert_eq!(rejected.forecast, Some(Forecast::RejectedNow));

    // Its own root expiring (DST Root CA X3, 2021-09-30) is no cliff: the server need not
    // change for it. The leaf the server sends expires first (2021-11-30).
    let (long_chain, _) = chain("le-long-chain-2021");
    let at = date("2021-09-15");
    let prediction = predict_one(&device("dst-x3-idf3.2"), &long_chain, at, true).unwrap();
    let Some(Forecast::Cliff(cliff)) = &prediction.forecast else { panic!("{:?}", prediction.forecast) };
    assert_eq!((cliff.at, cliff.kind), (not_after(&long_chain[0]) + 1, CliffKind::ServerMustChange));
    assert!(not_after(&pki().certificate("dst_root_x3").unwrap().der) < not_after(&long_chain[0]));
}

#[test]
fn a_bare_trust_set() {
    let (rescue, at) = chain("dst-cross-sign-rescue");
    let mut trust = Device::from_roots(vec![pki().certificate("isrg_root_x1").unwrap().der]);
    assert_eq!(
        (trust.firmware.clone(), trust.idf.as_ref().unwrap().value.to_string(), trust.time_check),
        (None, "v4.4".into(), false)
    );
    trust.hostname = Some("ota.example.com".into());
    assert_eq!(outcome(&trust, &rescue, at), None);
    trust.hostname = Some("other.example.com".into());
    assert_eq!(outcome(&trust, &rescue, at), Some((OutcomeClass::TlsVerify, VerifyReason::Hostname)));
}

// The command.

fn otarig(args: &[&str]) -> Output {
    let fleet = format!("{ROOT}/firmware-images");
    let pki = format!("{ROOT}/scenarios/pki");
    let mut all = vec!["predict", "--fleet", &fleet, "--pki", &pki];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_otarig")).args(&all).output().expect("run otarig")
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_is_an_array_with_the_contract_fields() {
    let dir = TempDir::new("predict-json");
    let chain = write(&dir, "chain.pem", &chain_pem("dst-cross-sign-rescue"));
    let out =
        otarig(&["--firmware", "all", "--chain", chain.to_str().unwrap(), "--at", "2026-11-25", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects = json.as_array().unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o["firmware"].as_str().unwrap()).collect();
    assert_eq!(ids, fleet().members().map(|m| m.id.as_str()).collect::<Vec<_>>());
    let by_id = |id: &str| objects.iter().find(|o| o["firmware"] == id).unwrap();
    let dst = by_id("dst-x3-idf3.2");
    assert_eq!((dst["outcome"].as_str(), dst["reason"].is_null()), (Some("accepted"), true));
    assert_eq!(dst["flags"], serde_json::json!([]));
    let path = dst["path"].as_array().unwrap();
    assert_eq!(path.len(), 4);
    assert!(path[0]["subject"].as_str().unwrap().contains("DST Root CA X3"));
    assert_eq!(path[3]["subject"], "CN=ota.example.com");
    let timecheck = by_id("dst-x3-idf3.2-timecheck");
    assert_eq!((timecheck["outcome"].as_str(), timecheck["reason"].as_str()), (Some("tls-verify"), Some("expired")));
    assert_eq!(timecheck["flags"], serde_json::json!(["expired"]));
    assert_eq!(timecheck["clock"], "2026-11-25T00:00:00Z");
    let pinned = by_id("pinned-r3-idf4.4");
    assert_eq!((pinned["reason"].as_str(), pinned["flags"][0].as_str()), (Some("untrusted"), Some("not-trusted")));
    assert!(objects.iter().all(|o| o.get("forecast").is_none()), "only with --forecast");
}

#[test]
fn a_device_s_heap_for_tls_is_unknown_offline() {
    let dir = TempDir::new("predict-heap");
    let chain = write(&dir, "chain.pem", &chain_pem("le-r10-2024"));
    let chain = chain.to_str().unwrap();
    let out = otarig(&["--firmware", "isrg-x1-ble-28k-idf3.2", "--chain", chain, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The certificate decision is made; the heap is said to be unknown, never taken as enough.
    assert_eq!((json[0]["outcome"].as_str(), json[0]["heap"].as_str()), (Some("accepted"), Some("unknown")));
    assert_eq!(json[0]["tls_heap"], 28352);
    assert!(stderr(&out).contains("not judged offline (heap: unknown)"), "{}", stderr(&out));
    let text = otarig(&["--firmware", "isrg-x1-ble-28k-idf3.2", "--chain", chain]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("accepted, heap unknown"));
    // A device without a budget says nothing of its heap.
    let out = otarig(&["--firmware", "isrg-x1-idf3.2", "--chain", chain, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json[0]["heap"].is_null() && json[0]["tls_heap"].is_null());
}

#[test]
fn trust_sets_forecasts_and_standard_input() {
    let dir = TempDir::new("predict-trust");
    let chain = write(&dir, "chain.pem", &chain_pem("dst-cross-sign-rescue"));
    // One file holding two roots.
    let roots = pki().certificate("dst_root_x3").unwrap().pem + &pki().certificate("isrg_root_x1").unwrap().pem;
    let trust = write(&dir, "roots.pem", &roots);
    let args = ["--trust", trust.to_str().unwrap(), "--hostname", "ota.example.com", "--chain"];
    let out =
        otarig(&[&args[..], &[chain.to_str().unwrap(), "--at", "2026-11-25", "--time-check", "--forecast"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(trust set)") && text.contains("PEM DST Root CA X3, ISRG Root X1"), "{text}");
    assert!(text.contains("accepted") && text.contains("device rejects (tls-verify / expired)"), "{text}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .args(["predict", "--no-hostname", "--chain", "-", "--format", "json", "--forecast", "--trust"])
        .arg(&trust)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), chain_pem("gts-chain").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["firmware"], serde_json::Value::Null);
    assert_eq!((json[0]["outcome"].as_str(), json[0]["reason"].as_str()), (Some("tls-verify"), Some("untrusted")));
    assert_eq!(json[0]["hostname"], serde_json::Value::Null);
    assert_eq!(json[0]["forecast"]["kind"], "rejected-now");
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let dir = TempDir::new("predict-usage");
    let chain = write(&dir, "chain.pem", &chain_pem("gts-chain"));
    let chain = chain.to_str().unwrap();
    let root = write(&dir, "root.pem", &pki().certificate("isrg_root_x1").unwrap().pem);

    let out = otarig(&["--trust", root.to_str().unwrap(), "--chain", chain]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--hostname") && stderr(&out).contains("--no-hostname"), "{}", stderr(&out));

    let not_pem = write(&dir, "server.der", "\u{30}\u{82} this is no PEM");
    let out = otarig(&["--firmware", "dst-x3-idf3.2", "--chain", not_pem.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("server.der") && stderr(&out).contains("no PEM certificate"), "{}", stderr(&out));

    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let bad_der = write(&dir, "bad.pem", garbage);
    let out = otarig(&["--firmware", "dst-x3-idf3.2", "--chain", bad_der.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.pem") && stderr(&out).contains("certificate 0"), "{}", stderr(&out));

    let out = otarig(&["--firmware", "no-such-firmware", "--chain", chain]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-firmware"), "{}", stderr(&out));

    let out = otarig(&["--firmware", "all", "--chain", chain, "--at", "next tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--at"), "{}", stderr(&out));

    let missing = dir.0.join("missing.pem");
    let out = otarig(&["--firmware", "all", "--chain", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.pem"), "{}", stderr(&out));

    let out = otarig(&["--chain", chain]);
    assert_eq!(out.status.code(), Some(2), "neither --firmware nor --trust");
}

#[test]
fn help_shows_examples() {
    let out = otarig(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("otarig predict --firmware all --chain chain.pem"), "{text}");
    assert!(text.contains("--forecast") && text.contains("--no-hostname"), "{text}");
}
