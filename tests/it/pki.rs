//! The lab PKI: the committed authorities match their spec and verify with OpenSSL; generation
//! makes only what is missing, shares keys for cross-signs, re-signs what a new key signed, and
//! keeps keys private.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use otarig::pki::{LabPki, Regenerate};
use x509_parser::prelude::*;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("a certificate").1
}

#[test]
fn committed_authorities_match_their_spec() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    assert!(pki.missing().is_empty(), "not generated: {:?}", pki.missing());
    for (name, spec) in pki.specs() {
        let minted = pki.certificate(name).unwrap();
        let cert = parse(&minted.der);
        let subject: Vec<String> = cert.subject().iter_attributes().map(|a| a.as_str().unwrap().to_owned()).collect();
        let expected: Vec<String> = spec.subject.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(subject, expected, "{name}: subject");
        assert_eq!(cert.validity().not_before.timestamp(), spec.not_before.unix_timestamp(), "{name}");
        assert_eq!(cert.validity().not_after.timestamp(), spec.not_after.unix_timestamp(), "{name}");
        let issuer = pki.certificate(spec.issuer_name()).unwrap();
        assert_eq!(cert.issuer().as_raw(), parse(&issuer.der).subject().as_raw(), "{name}: issuer name");
        let owner = pki.certificate(spec.key_owner()).unwrap();
        assert_eq!(cert.public_key().raw, parse(&owner.der).public_key().raw, "{name}: key");
        assert_eq!(cert.is_ca(), matches!(spec.role, otarig::pki::spec::Role::Authority { .. }), "{name}");
    }
}

#[test]
fn committed_signatures_verify_with_openssl() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    for (name, spec) in pki.specs() {
        let issuer = pki.cert_path(spec.issuer_name());
        let out = Command::new("openssl")
            .args(["verify", "-no_check_time", "-partial_chain", "-CAfile"])
            .arg(&issuer)
            .arg(pki.cert_path(name))
            .output()
            .expect("openssl (ci/setup-host installs it)");
        assert!(out.status.success(), "{name} by {}: {}", spec.issuer_name(), String::from_utf8_lossy(&out.stdout));
    }
}

const SMALL: &str = r#"
[authority.root_a]
subject = "C=US, O=Lab, CN=Root A"
key = "p256"
valid = ["2020-01-01", "2040-01-01"]

[authority.root_b]
subject = "C=US, O=Lab, CN=Root B"
key = "p384"
valid = ["2020-01-01", "2030-01-01"]

[authority.root_a_by_b]
same_key_as = "root_a"
issuer = "root_b"
valid = ["2021-01-01", "2024-01-01"]

[authority.int]
subject = "C=US, O=Lab, CN=Int"
key = "p256"
issuer = "root_a"
valid = ["2022-01-01", "2027-01-01"]
pathlen = 0
"#;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn generation_shares_keys_resigns_dependents_and_keeps_keys_private() {
    let tmp = TempDir::new("gen");
    std::fs::write(tmp.0.join("authorities.toml"), SMALL).unwrap();
    let pki = LabPki::open(&tmp.0).unwrap();
    let made = pki.generate(&Regenerate::Missing, |_| {}).unwrap();
    assert_eq!(made.len(), 4);
    // Issuers first.
    let at = |n: &str| made.iter().position(|m| m == n).unwrap();
    assert!(at("root_b") < at("root_a_by_b") && at("root_a") < at("int"));

    // One key per owner, private.
    let keys: Vec<_> = std::fs::read_dir(tmp.0.join("keys")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(keys.len(), 3);
    for key in &keys {
        assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600, "{}", key.display());
    }

    // The cross-sign has the root's subject and key, and another issuer.
    let root = pki.certificate("root_a").unwrap();
    let cross = pki.certificate("root_a_by_b").unwrap();
    let (root, cross) = (parse(&root.der), parse(&cross.der));
    assert_eq!(root.subject().as_raw(), cross.subject().as_raw());
    assert_eq!(root.public_key().raw, cross.public_key().raw);
    assert_ne!(root.issuer().as_raw(), cross.issuer().as_raw());
    assert_ne!(root.raw_serial(), cross.raw_serial());

    // Nothing missing: nothing made.
    assert!(pki.generate(&Regenerate::Missing, |_| {}).unwrap().is_empty());

    // A new key for root_a re-signs what it signed and re-issues what carries it; root_b stays.
    let before_b = read(&pki.cert_path("root_b"));
    let before_int = read(&pki.cert_path("int"));
    let mut remade = pki.generate(&Regenerate::These(vec!["root_a".into()]), |_| {}).unwrap();
    remade.sort();
    assert_eq!(remade, ["int", "root_a", "root_a_by_b"]);
    assert_eq!(read(&pki.cert_path("root_b")), before_b);
    assert_ne!(read(&pki.cert_path("int")), before_int);

    // An authority added later is made alone.
    let mut spec = SMALL.to_owned();
    spec.push_str(
        "\n[authority.root_c]\nsubject = \"CN=Root C\"\nkey = \"ed25519\"\nvalid = [\"2020-01-01\", \"2030-01-01\"]\n",
    );
    std::fs::write(tmp.0.join("authorities.toml"), spec).unwrap();
    let pki = LabPki::open(&tmp.0).unwrap();
    assert_eq!(pki.generate(&Regenerate::Missing, |_| {}).unwrap(), ["root_c"]);

    // OpenSSL follows the chain through either root.
    for root in ["root_a", "root_b"] {
        let mut args: Vec<PathBuf> = vec![pki.cert_path(root)];
        if root == "root_b" {
            args.push(pki.cert_path("root_a_by_b"));
        }
        let untrusted = args.get(1).cloned();
        let mut cmd = Command::new("openssl");
        cmd.args(["verify", "-attime", "1700000000", "-CAfile"]).arg(&args[0]);
        if let Some(untrusted) = untrusted {
            cmd.arg("-untrusted").arg(untrusted);
        }
        let out = cmd.arg(pki.cert_path("int")).output().unwrap();
        assert!(out.status.success(), "via {root}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn unknown_names_and_unsupported_signatures_are_errors() {
    let tmp = TempDir::new("bad");
    std::fs::write(tmp.0.join("authorities.toml"), SMALL).unwrap();
    let pki = LabPki::open(&tmp.0).unwrap();
    assert!(matches!(
        pki.generate(&Regenerate::These(vec!["nope".into()]), |_| {}),
        Err(otarig::pki::PkiError::Unknown { .. })
    ));
    assert!(matches!(pki.certificate("root_a"), Err(otarig::pki::PkiError::NotGenerated { .. })));
    let mut spec = SMALL.to_owned();
    // ECDSA with SHA-1 exists nowhere in the field; it is refused, not approximated.
    spec.push_str("\n[authority.weak]\nsubject = \"CN=Weak\"\nkey = \"p256\"\nsignature = \"sha1\"\nvalid = [\"2020-01-01\", \"2030-01-01\"]\n");
    std::fs::write(tmp.0.join("authorities.toml"), spec).unwrap();
    let pki = LabPki::open(&tmp.0).unwrap();
    assert!(matches!(pki.generate(&Regenerate::Missing, |_| {}), Err(otarig::pki::PkiError::Unsupported { .. })));
}
