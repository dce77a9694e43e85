//! Certificate decisions per ESP-IDF release: what each release's mbedTLS build parses and its
//! default profile accepts (`otarig::device_tls::release`), on chains made by
//! `tests/data/release-certs/make.sh`: MD2/MD4-signed intermediates left out of the chain by
//! every release (not trusted, never a weak hash), MD5 refused as a weak hash by every
//! release, SHA-224 and secp224r1/secp256k1 keys accepted by mbedTLS 2.x (v3.1–v4.4) and
//! refused by 3.x's profile (v5.0 on), and a secp224r1 key that v6.0 (mbedTLS 4) cannot parse.

use std::path::Path;
use std::process::Command;

use otarig::device_tls::{Anchors, DevicePolicy, judge_chain};
use otarig::idf::IdfVersion;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/release-certs");
const NOT_TRUSTED: u32 = 0x08;
const EXPIRED: u32 = 0x01;
const BAD_MD: u32 = 0x4000;
const BAD_KEY: u32 = 0x1_0000;
const VERIFY_FAILED: i32 = -0x2700;
const UNKNOWN_NAMED_CURVE: i32 = -0x3A00;
/// A release of each mbedTLS: 2.16, 2.28, 3.x, 4.0.
const RELEASES: [&str; 6] = ["v3.3.6", "v4.2.5", "v4.4.8", "v5.0.7", "v5.4.2", "v6.0"];

fn der(file: &str) -> Vec<u8> {
    let text = std::fs::read(Path::new(DATA).join(file)).unwrap();
    pem::parse(text).unwrap().into_contents()
}

/// (code, flags) for the chain `files` against `root` as a build of `idf` judges it.
fn judge(idf: &str, root: &str, files: &[&str], date_check_at: Option<i64>) -> (i32, u32) {
    let policy = DevicePolicy {
        idf: IdfVersion::parse(idf).unwrap(),
        anchors: Anchors::Roots(vec![der(root)]),
        date_check_at,
        config: Default::default(),
    };
    let chain: Vec<Vec<u8>> = files.iter().map(|file| der(file)).collect();
    let verdict = judge_chain(&chain, Some("ota.example"), &policy).unwrap();
    (verdict.code, verdict.flags)
}

#[test]
fn the_sha256_chain_is_accepted_by_every_release() {
    for idf in RELEASES {
        assert_eq!(judge(idf, "root.pem", &["leaf.pem", "int.pem"], None), (0, 0), "{idf}");
    }
}

#[test]
fn md2_and_md4_intermediates_are_left_out_so_the_leaf_has_no_parent() {
    for idf in RELEASES {
        for int in ["int-md2.pem", "int-md4.pem"] {
            assert_eq!(judge(idf, "root.pem", &["leaf.pem", int], None), (VERIFY_FAILED, NOT_TRUSTED), "{idf} {int}");
        }
    }
    // With date checks the leaf alone is judged: valid, so still only not trusted; an
    // all-zero date never enters since the leaf was parsed.
    let at = Some(1_893_456_000); // 2030-01-01
    assert_eq!(judge("v4.4.8", "root.pem", &["leaf.pem", "int-md2.pem"], at), (VERIFY_FAILED, NOT_TRUSTED));
    // The intermediate alone: nothing is kept, and the empty chain is not trusted and,
    // with dates, expired.
    let (code, flags) = judge("v4.4.8", "root.pem", &["int-md2.pem"], at);
    assert_eq!((code, flags & (NOT_TRUSTED | EXPIRED)), (VERIFY_FAILED, NOT_TRUSTED | EXPIRED));
}

#[test]
fn md5_is_a_weak_hash_on_every_release() {
    for idf in RELEASES {
        assert_eq!(judge(idf, "root.pem", &["leaf.pem", "int-md5.pem"], None), (VERIFY_FAILED, BAD_MD), "{idf}");
    }
}

#[test]
fn sha224_is_accepted_until_mbedtls_3() {
    for idf in ["v3.3.6", "v4.2.5", "v4.4.8"] {
        assert_eq!(judge(idf, "root.pem", &["leaf.pem", "int-sha224.pem"], None), (0, 0), "{idf}");
    }
    for idf in ["v5.0.7", "v5.4.2", "v6.0"] {
        let verdict = judge(idf, "root.pem", &["leaf.pem", "int-sha224.pem"], None);
        assert_eq!(verdict, (VERIFY_FAILED, BAD_MD), "{idf}");
    }
}

#[test]
fn small_and_koblitz_curves_are_accepted_until_mbedtls_3() {
    for idf in ["v3.3.6", "v4.2.5", "v4.4.8"] {
        assert_eq!(judge(idf, "root.pem", &["leaf-p224.pem", "int-p224.pem"], None), (0, 0), "{idf}");
        assert_eq!(judge(idf, "root-k1.pem", &["leaf-k1.pem", "int-k1.pem"], None), (0, 0), "{idf}");
    }
    for idf in ["v5.0.7", "v5.4.2"] {
        // The intermediate's secp224r1 key signs the leaf: the leaf is flagged.
        let verdict = judge(idf, "root.pem", &["leaf-p224.pem", "int-p224.pem"], None);
        assert_eq!(verdict, (VERIFY_FAILED, BAD_KEY), "{idf}");
    }
    for idf in ["v5.0.7", "v5.4.2", "v6.0"] {
        let verdict = judge(idf, "root-k1.pem", &["leaf-k1.pem", "int-k1.pem"], None);
        assert_eq!(verdict, (VERIFY_FAILED, BAD_KEY), "{idf}");
    }
    // mbedTLS 4 has no secp224r1: the handshake ends while parsing the chain.
    let verdict = judge("v6.0", "root.pem", &["leaf-p224.pem", "int-p224.pem"], None);
    assert_eq!(verdict, (UNKNOWN_NAMED_CURVE, 0));
}

fn predict(idf: &str, chain: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("otarig-predict-releases-{}-{idf}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pem_text = String::new();
    for file in chain {
        pem_text.push_str(&std::fs::read_to_string(Path::new(DATA).join(file)).unwrap());
    }
    let chain_file = dir.join("chain.pem");
    std::fs::write(&chain_file, pem_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .args(["predict", "--trust", &format!("{DATA}/root.pem"), "--hostname", "ota.example"])
        .args(["--chain", chain_file.to_str().unwrap(), "--idf", idf, "--format", "json"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

#[test]
fn predict_differs_where_releases_differ() {
    let json = |out: &std::process::Output| -> serde_json::Value { serde_json::from_slice(&out.stdout).unwrap() };
    let old = predict("v4.4.8", &["leaf.pem", "int-sha224.pem"]);
    let new = predict("v5.2.1-533-g9f4f8e24f2", &["leaf.pem", "int-sha224.pem"]);
    assert!(old.status.success() && new.status.success(), "{old:?} {new:?}");
    assert_eq!(json(&old)[0]["code"], 0, "{old:?}");
    assert_eq!(json(&new)[0]["code"], VERIFY_FAILED, "{new:?}");
    let note = String::from_utf8_lossy(&new.stderr);
    assert!(note.contains("mbedTLS 3.5.2") && note.contains("3.x default profile"), "{note}");
    let old_note = String::from_utf8_lossy(&old.stderr);
    assert!(old_note.contains("mbedTLS 2.28.8") && old_note.contains("2.x default profile"), "{old_note}");

    let md2 = predict("v4.3.1-dirty", &["leaf.pem", "int-md2.pem"]);
    assert_eq!(json(&md2)[0]["reason"], "untrusted", "{md2:?}");
    let dev = predict("v4.3-dev-2586-g526f68239", &["leaf.pem", "int.pem"]);
    assert!(dev.status.success(), "{dev:?}");
    let unsupported = predict("v3.0.7", &["leaf.pem", "int.pem"]);
    assert_eq!(unsupported.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unsupported.stderr).contains("supported: v3.1 to v6.0"));
}
