//! `otarig inspect` on images the test builds: an app that trusts one lab root, a merged flash
//! image, and files that are not images.

use std::path::Path;
use std::process::Command;

use otarig::image::build::{ImageSpec, SegmentSpec, merged_flash, write_image};
use otarig::image::otadata::{OTADATA_SIZE, Otadata};
use otarig::pki::LabPki;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// An ESP-IDF v3.2-style app (no app descriptor) embedding `pem` as EMBED_TXTFILES does.
fn app_trusting(pem: &str) -> Vec<u8> {
    let mut rodata = b"simple_ota_example\0https://ota.example.com/firmware.bin\0\0\0".to_vec();
    rodata.extend_from_slice(pem.as_bytes());
    rodata.push(0);
    write_image(&ImageSpec::esp32(
        0x4008_1000,
        vec![
            SegmentSpec { load_addr: 0x3F40_0020, data: rodata },
            SegmentSpec { load_addr: 0x3FFB_0000, data: vec![0; 256] },
            SegmentSpec { load_addr: 0x400D_0020, data: (0..40_000u32).map(|i| (i * 7) as u8).collect() },
        ],
    ))
}

fn inspect_json(path: &Path, at: &str) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(ROOT)
        .args(["inspect", "--format", "json", "--at", at])
        .arg(path)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn an_app_trusting_only_an_expired_root_is_called_out() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    let dst = pki.certificate("dst_root_x3").unwrap();
    let tmp = TempDir::new("inspect-app");
    let path = tmp.0.join("app.bin");
    std::fs::write(&path, app_trusting(&dst.pem)).unwrap();

    let (code, json) = inspect_json(&path, "2026-11-25");
    assert_eq!(code, 0);
    assert_eq!(json["layout"], "app");
    let app = &json["apps"][0]["image"];
    assert_eq!(app["chip"], "ESP32");
    assert_eq!(app["checksum"]["ok"], true);
    assert_eq!(app["sha256"]["ok"], true);
    assert!(app["app_descriptor"].is_null());
    let trust = json["trust"].as_array().unwrap();
    assert_eq!(trust.len(), 1);
    assert_eq!(trust[0]["form"], "pem");
    assert_eq!(trust[0]["certificate"]["subject"], "O=Digital Signature Trust Co., CN=DST Root CA X3");
    assert_eq!(trust[0]["certificate"]["not_after"], "2021-09-30");
    assert_eq!(json["urls"][0]["url"], "https://ota.example.com/firmware.bin");
    let findings: Vec<&str> = json["findings"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(
        findings.iter().any(|f| f.starts_with("the only root this image trusts") && f.contains("2021-09-30")),
        "{findings:?}"
    );
    assert!(findings.iter().any(|f| f.starts_with("LAB ROOT")), "{findings:?}");
    assert!(findings.iter().any(|f| f.contains("no app descriptor")), "{findings:?}");

    // Before the root expired there is nothing to say about its dates.
    let (_, json) = inspect_json(&path, "2020-01-01");
    let findings = json["findings"].to_string();
    assert!(!findings.contains("expired"), "{findings}");
}

#[test]
fn a_merged_flash_image_shows_its_partitions_and_boot_choice() {
    let bootloader = write_image(&ImageSpec {
        hash_appended: false,
        ..ImageSpec::esp32(0x4008_0400, vec![SegmentSpec { load_addr: 0x3FFF_0000, data: vec![1; 64] }])
    });
    let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    otadata.set_boot_slot(0, 2, false);
    let app = app_trusting("");
    let flash = merged_flash(0x400000, &bootloader, Some(&otadata), &[(0x10000, &app), (0x110000, &app)]);

    let tmp = TempDir::new("inspect-merged");
    let path = tmp.0.join("flash.bin");
    std::fs::write(&path, &flash).unwrap();
    let (code, json) = inspect_json(&path, "2026-11-25");
    assert_eq!(code, 0);
    assert_eq!(json["layout"], "merged-flash");
    assert_eq!(json["bootloader"]["checksum"]["ok"], true);
    let partitions: Vec<&str> =
        json["apps"].as_array().unwrap().iter().map(|a| a["partition"].as_str().unwrap()).collect();
    assert_eq!(partitions, ["factory", "ota_0"]);
    assert_eq!(json["selected_ota_slot"], 0);
}

#[test]
fn files_that_are_not_images_are_refused_with_the_offset() {
    let tmp = TempDir::new("inspect-bad");
    let random = tmp.0.join("random.bin");
    std::fs::write(&random, (0..5000u32).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_otarig")).args(["inspect"]).arg(&random).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid magic byte") && err.contains("0x0"), "{err}");

    let mut cut = app_trusting("");
    cut.truncate(600);
    let truncated = tmp.0.join("truncated.bin");
    std::fs::write(&truncated, &cut).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_otarig")).args(["inspect"]).arg(&truncated).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("segment") && err.contains("past the end"), "{err}");

    let missing = Command::new(env!("CARGO_BIN_EXE_otarig")).args(["inspect", "/nonexistent.bin"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
