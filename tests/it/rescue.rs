//! `otarig rescue`: the founding case's answer (the R1x + ISRG Root X1-by-DST chain) confirmed
//! on a twin and written as a chain file byte for byte as published; the firmware no chain
//! rescues, each with its reason (dates past the root, a pinned leaf, a pinned intermediate
//! that no longer issues); the short chain for an ISRG Root X1 firmware; the owner's own CA for
//! a private root; a bare trust set and a real build trusting the real root, both run on
//! twins; the JSON contract, exit statuses and usage errors.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;
use otarig::image::build::{ImageSpec, SegmentSpec, write_image};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn otarig(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// `otarig rescue ARGS --format json`, its exit status and the parsed array.
fn rescue_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["rescue"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let (code, stdout, stderr) = otarig(&all);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, json, stderr)
}

/// The catalogue names of each answer's chain.
fn chains(firmware: &Value) -> Vec<Vec<String>> {
    firmware["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["chain"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect())
        .collect()
}

fn answer<'a>(firmware: &'a Value, chain: &[&str]) -> &'a Value {
    firmware["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["chain"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).eq(chain.iter().copied()))
        .unwrap_or_else(|| panic!("no answer {chain:?} in {:?}", chains(firmware)))
}

fn catalogue_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(format!("data/public-cas/certs/{name}.pem"))).unwrap()
}

#[test]
fn dst_x3_is_rescued_by_r1x_and_the_x1_cross_sign_confirmed_on_a_twin_with_its_chain_file() {
    let tmp = TempDir::new("rescue-dst");
    let chain_dir = tmp.0.join("chains");
    let out = tmp.0.join("twins");
    let (code, json, stderr) = rescue_json(&[
        "--firmware",
        "dst-x3-idf3.2",
        "--at",
        "2025-03-01",
        "--chain-file",
        &chain_dir.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{json:#}\n{stderr}");
    let firmware = &json[0];
    assert_eq!(firmware["firmware"], "dst-x3-idf3.2");
    assert_eq!(firmware["rescued"], true);
    assert_eq!(firmware["time_check"], false);
    // The lab firmware's root is taken as the real one, and says so.
    assert_eq!(firmware["trusted"][0]["standing"], "look-alike");
    assert_eq!(firmware["trusted"][0]["public"]["name"], "dst-root-ca-x3");
    assert_eq!(firmware["trusted"][0]["inferred"], true);
    // Let's Encrypt issued from R10 and R11 (and E5, E6) on that day.
    for r1x in ["r10", "r11"] {
        let answer = answer(firmware, &[r1x, "isrg-root-x1-by-dst"]);
        assert_eq!(answer["twin"]["status"], "confirmed", "{answer:#}");
        assert_eq!(answer["checks_dates"], false);
        // The cross-sign expired 2024-09-30; a device that checks no dates takes it.
        let expired: Vec<&str> =
            answer["expired_in_use"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(expired, ["ISRG Root X1", "DST Root CA X3"]);
        assert_eq!(answer["issuing_ca"]["issues_until"], "2025-08-20T00:00:00Z");
        let cross = &answer["chain"][1];
        assert_eq!(cross["not_after"], "2024-09-30T18:14:03Z");
        assert_eq!(cross["published"][0]["url"], "https://letsencrypt.org/certs/isrg-root-x1-cross-signed.pem");
        // The chain file: the certificates after the leaf, byte for byte as published.
        let file = PathBuf::from(answer["chain_file"].as_str().unwrap());
        assert!(file.starts_with(&chain_dir), "{}", file.display());
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("dst-x3-idf3.2.") && name.ends_with(&format!("{r1x}+isrg-root-x1-by-dst.pem")),
            "{name}"
        );
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(written, catalogue_file(r1x) + &catalogue_file("isrg-root-x1-by-dst"));
        // The twin's server sent the look-alikes after a leaf minted under the look-alike R1x.
        assert_eq!(answer["lookalikes"]["leaf_issuer"], r1x);
        assert_eq!(answer["lookalikes"]["chain"], serde_json::json!([r1x, "isrg_root_x1_by_dst"]));
        let transcript = std::fs::read_to_string(out.join(answer["twin"]["detail"].as_str().unwrap())).unwrap();
        assert!(transcript.contains("App version:      2.0.0"), "{transcript}");
    }
    // Twin cells are kept with their scenarios.
    assert!(out.join("results.jsonl").is_file() && out.join("scenarios/rescue-1.toml").is_file());
}

#[test]
fn the_date_checking_build_cannot_be_rescued_past_the_roots_expiry() {
    let (code, json, _) = rescue_json(&["--firmware", "dst-x3-idf3.2-timecheck", "--at", "2025-03-01", "--no-twin"]);
    assert_eq!(code, 1);
    let firmware = &json[0];
    assert_eq!(firmware["rescued"], false);
    assert!(firmware["answers"].as_array().unwrap().is_empty());
    assert_eq!(firmware["no_rescue"]["kind"], "refused");
    let why = firmware["no_rescue"]["text"].as_str().unwrap();
    assert!(why.contains("DST Root CA X3 expired 2021-09-30"), "{why}");
    // The chains that reach its root are the very ones that rescue the build without date checks.
    let refused = firmware["refused"].as_array().unwrap();
    assert!(refused.iter().any(|r| r["chain"] == serde_json::json!(["r11", "isrg-root-x1-by-dst"])), "{refused:?}");
    assert!(refused.iter().all(|r| r["outcome"] == "tls-verify" && r["reason"] == "expired"), "{refused:?}");
}

#[test]
fn an_isrg_root_x1_firmware_gets_the_short_chain() {
    let (code, json, _) = rescue_json(&["--firmware", "isrg-x1-idf4.4", "--at", "2025-03-01", "--no-twin"]);
    assert_eq!(code, 0);
    let mut got = chains(&json[0]);
    got.sort();
    assert_eq!(got, [vec!["e5-by-x1"], vec!["e6-by-x1"], vec!["r10"], vec!["r11"]]);
    assert_eq!(answer(&json[0], &["r11"])["reaches"], "C=US, O=Internet Security Research Group, CN=ISRG Root X1");
    assert_eq!(answer(&json[0], &["r11"])["twin"]["status"], "not-asked");
}

#[test]
fn a_build_without_heap_for_the_setup_is_not_rescued_by_any_chain_on_a_twin() {
    let tmp = TempDir::new("rescue-heap");
    let out = tmp.0.join("twins");
    let (code, json, stderr) =
        rescue_json(&["--firmware", "isrg-x1-ble-28k-idf3.2", "--at", "2025-03-01", "--out", &out.to_string_lossy()]);
    let firmware = &json[0];
    // Offline the chains are judged as certificates only, and the heap is said to be unknown.
    assert_eq!((firmware["heap"].as_str(), firmware["tls_heap"].as_u64()), (Some("unknown"), Some(28352)));
    let answers = firmware["answers"].as_array().unwrap();
    assert!(!answers.is_empty(), "{firmware:#}");
    // On a twin every one of them ends in mbedtls_ssl_setup, out of memory.
    for answer in answers {
        assert_eq!(answer["twin"]["status"], "contradicted", "{answer:#}");
        assert!(answer["twin"]["detail"].as_str().unwrap().starts_with("out-of-memory"), "{answer:#}");
    }
    assert_eq!((code, &firmware["rescued"]), (1, &Value::Bool(false)), "{stderr}");
}

#[test]
fn pinned_certificates_that_no_ca_issues_again_have_no_rescue() {
    let (code, json, _) = rescue_json(&[
        "--firmware",
        "leaf-pin-idf4.4",
        "--firmware",
        "pinned-r3-idf4.4",
        "--at",
        "2026-11-25",
        "--no-twin",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json[0]["no_rescue"]["kind"], "pinned-leaf", "{:#}", json[0]);
    assert_eq!(json[1]["no_rescue"]["kind"], "pinned-intermediate-retired", "{:#}", json[1]);
    let why = json[1]["no_rescue"]["text"].as_str().unwrap();
    assert!(why.contains("R3") && why.contains("2024-06-06"), "{why}");
    // While R3 issued, the pinned intermediate was its own rescue: the leaf alone.
    let (code, json, _) = rescue_json(&["--firmware", "pinned-r3-idf4.4", "--at", "2022-01-01", "--no-twin"]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(chains(&json[0]), [Vec::<String>::new()]);
    assert_eq!(json[0]["answers"][0]["judged_on_lookalikes"], true);
}

#[test]
fn a_private_root_is_rescued_by_the_owners_own_ca_on_a_twin() {
    let tmp = TempDir::new("rescue-private");
    let out = tmp.0.join("twins");
    let (code, json, stderr) =
        rescue_json(&["--firmware", "private-root-idf5.2", "--at", "2026-11-25", "--out", &out.to_string_lossy()]);
    assert_eq!(code, 0, "{json:#}\n{stderr}");
    let firmware = &json[0];
    assert_eq!(firmware["trusted"][0]["standing"], "own-ca");
    let answer = answer(firmware, &["acme_update_ca"]);
    assert_eq!(answer["issuing_ca"]["own"], true);
    assert_eq!(answer["chain"][0]["own_ca"], "scenarios/pki/certs/acme_update_ca.pem");
    assert_eq!(answer["twin"]["status"], "confirmed", "{answer:#}");
}

#[test]
fn a_trust_set_is_judged_and_run_on_a_twin_as_a_lab_firmware_of_its_release() {
    let tmp = TempDir::new("rescue-trust");
    let out = tmp.0.join("twins");
    let root = Path::new(ROOT).join("data/public-cas/certs/isrg-root-x1.pem");
    let (code, json, stderr) = rescue_json(&[
        "--trust",
        &root.to_string_lossy(),
        "--time-check",
        "--at",
        "2026-11-25",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{json:#}\n{stderr}");
    let firmware = &json[0];
    assert_eq!(firmware["firmware"], Value::Null);
    assert_eq!(firmware["trusted"][0]["standing"], "public");
    assert_eq!(firmware["sources"]["idf"], "default");
    // Gen Y issues on that day; its RSA chain reaches X1 through the Root YR cross-sign.
    let answer = answer(firmware, &["yr1", "root-yr-by-x1"]);
    assert_eq!(answer["checks_dates"], true);
    assert_eq!(answer["until"]["certificate"], "YR1");
    assert_eq!(answer["until"]["at"], "2028-09-03T00:00:00Z");
    assert_eq!(answer["twin"]["status"], "confirmed", "{answer:#}");
    let manifest = std::fs::read_to_string(out.join("scenarios/rescue-1.toml")).unwrap();
    assert!(manifest.contains("\"trust-set\" = \"updated\""), "{manifest}");
}

/// A v5.0.1 app that embeds `pem` (and its OTA URL), as a real build carries them.
fn product_embedding(pem: &str) -> Vec<u8> {
    let mut desc = vec![0u8; 256];
    desc[0..4].copy_from_slice(&0xABCD_5432u32.to_le_bytes());
    for (at, text) in
        [(0x10, "3.1.0"), (0x30, "my_product"), (0x50, "10:07:28"), (0x60, "Feb  9 2023"), (0x70, "v5.0.1")]
    {
        desc[at..at + text.len()].copy_from_slice(text.as_bytes());
    }
    let mut rodata = desc;
    for string in [pem, "https://ota.example.com/firmware.bin"] {
        rodata.extend_from_slice(string.as_bytes());
        rodata.push(0);
    }
    let mut segments = vec![
        SegmentSpec { load_addr: 0x3F40_0020, data: rodata },
        SegmentSpec { load_addr: 0x3FFB_0000, data: vec![0; 256] },
    ];
    // The code segment's data where the flash cache maps it (offset congruent to its address).
    let offset = 24 + segments.iter().map(|s| 8 + s.data.len().div_ceil(4) * 4).sum::<usize>();
    let gap = (0x20 + 0x10000 - (offset + 8 + 8) % 0x10000) % 0x10000;
    segments.push(SegmentSpec { load_addr: 0, data: vec![0; gap] });
    segments.push(SegmentSpec { load_addr: 0x400D_0020, data: (0..30_000u32).map(|i| (i * 13) as u8).collect() });
    write_image(&ImageSpec::esp32(0x4008_1000, segments))
}

#[test]
fn a_real_build_trusting_the_real_root_runs_with_it_transplanted_for_its_look_alike() {
    let tmp = TempDir::new("rescue-build");
    let image = tmp.0.join("product.bin");
    std::fs::write(&image, product_embedding(&catalogue_file("dst-root-ca-x3"))).unwrap();
    let out = tmp.0.join("twins");
    let (code, json, stderr) =
        rescue_json(&["--firmware", &image.to_string_lossy(), "--at", "2026-11-25", "--out", &out.to_string_lossy()]);
    assert_eq!(code, 0, "{json:#}\n{stderr}");
    let firmware = &json[0];
    // The build holds the real root: nothing about it is inferred.
    assert_eq!(firmware["trusted"][0]["standing"], "public");
    assert_eq!(firmware["trusted"][0]["inferred"], false);
    assert_eq!(firmware["idf"], "v5.0.1");
    let answer = answer(firmware, &["yr1", "root-yr-by-x1", "isrg-root-x1-by-dst"]);
    assert_eq!(answer["twin"]["status"], "confirmed", "{answer:#}");
    // The twin ran the build itself, the real root swapped for its look-alike.
    let transcript = std::fs::read_to_string(out.join(answer["twin"]["detail"].as_str().unwrap())).unwrap();
    assert!(transcript.contains("esp_https_ota: Starting OTA..."), "{transcript}");
    assert!(std::fs::read_dir(&tmp.0).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".toml")));
}

#[test]
fn the_text_names_the_chain_how_long_it_works_and_the_twin() {
    let (code, stdout, _) = otarig(&["rescue", "--firmware", "dst-x3-idf3.2", "--at", "2025-03-01", "--no-twin"]);
    assert_eq!(code, 0);
    for line in [
        "dst-x3-idf3.2: 4 chains rescue it on 2025-03-01",
        "       C=US, O=Internet Security Research Group, CN=ISRG Root X1, issued by DST Root CA X3",
        "         SHA-256 6d99fb265eb1c5b3744765fcbc648f3cd8e1bffafdc4c2f99b9d47cf7ff1c24f",
        "         https://letsencrypt.org/certs/isrg-root-x1-cross-signed.pem",
        "     twin: not asked (--no-twin)",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} not in:\n{stdout}");
    }
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    for args in [
        vec!["rescue"],
        vec!["rescue", "--firmware", "dst-x3-idf3.2", "--at", "someday"],
        vec!["rescue", "--firmware", "no-such-firmware"],
        vec!["rescue", "--firmware", "dst-x3-idf3.2", "--catalogue", "/nonexistent"],
        vec!["rescue", "--firmware", "dst-x3-idf3.2", "--twins", "0"],
    ] {
        let (code, _, stderr) = otarig(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
    // Twin cells never empty an earlier run's results.
    let tmp = TempDir::new("rescue-out-taken");
    std::fs::write(tmp.0.join("results.jsonl"), "{}\n").unwrap();
    let taken = tmp.0.to_string_lossy().into_owned();
    let (code, _, stderr) = otarig(&["rescue", "--firmware", "isrg-x1-idf4.4", "--at", "2026-11-25", "--out", &taken]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read_to_string(tmp.0.join("results.jsonl")).unwrap(), "{}\n");
    let (code, stdout, _) = otarig(&["rescue", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Examples:") && stdout.contains("--chain-file"), "{stdout}");
}
