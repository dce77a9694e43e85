//! `scenario new --like`: a real chain becomes look-alike authorities and a scenario.

use std::path::{Path, PathBuf};
use std::process::Command;

use otarig::pki::LabPki;
use otarig::scenario::like::plan;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use x509_parser::prelude::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn lab() -> LabPki {
    LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap()
}

fn today() -> ::time::OffsetDateTime {
    ::time::macros::datetime!(2026-11-25 00:00 UTC)
}

/// A chain from a CA the lab does not know: leaf <- "Example TLS CA" (sent), whose root is not sent.
fn foreign_chain() -> Vec<Vec<u8>> {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut root = CertificateParams::default();
    root.distinguished_name = rcgen::DistinguishedName::new();
    root.distinguished_name.push(DnType::CountryName, "NL");
    root.distinguished_name.push(DnType::OrganizationName, "Example Trust");
    root.distinguished_name.push(DnType::CommonName, "Example Trust Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_issuer = Issuer::new(root, root_key);

    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(DnType::CountryName, "NL");
    ca.distinguished_name.push(DnType::OrganizationName, "Example Trust");
    ca.distinguished_name.push(DnType::CommonName, "Example TLS CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    ca.not_before = rcgen::date_time_ymd(2025, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let ca_cert = ca.signed_by(&ca_key, &root_issuer).unwrap();
    let ca_issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["device-updates.example.org".to_owned()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_issuer).unwrap();
    vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()]
}

#[test]
fn a_chain_of_lab_certificates_reuses_the_lab() {
    let lab = lab();
    let ders = vec![lab.certificate("r11").unwrap().der, lab.certificate("isrg_root_x1_by_dst").unwrap().der];
    let planned = plan(&ders, lab.specs(), "t", today()).unwrap();
    assert!(planned.new_authorities.is_empty(), "{:?}", planned.new_authorities);
    assert_eq!(planned.chain, ["r11", "isrg_root_x1_by_dst"]);
}

#[test]
fn a_foreign_chain_gets_look_alikes_in_the_same_order() {
    let planned = plan(&foreign_chain(), lab().specs(), "t", today()).unwrap();
    assert_eq!(planned.chain, ["leaf", "example_tls_ca"]);
    let names: Vec<&str> = planned.new_authorities.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["example_trust_root", "example_tls_ca"]);
    let ca = &planned.new_authorities[1].1;
    assert!(ca.contains("subject = \"C=NL, O=Example Trust, CN=Example TLS CA\""), "{ca}");
    assert!(ca.contains("key = \"p256\""), "{ca}");
    assert!(ca.contains("issuer = \"example_trust_root\""), "{ca}");
    assert!(ca.contains("valid = [\"2025-01-01T00:00:00Z\", \"2030-01-01T00:00:00Z\"]"), "{ca}");
    assert!(ca.contains("pathlen = 0") && ca.contains("eku = [\"server-auth\"]"), "{ca}");
    assert!(planned.new_authorities[0].1.contains("approximate = true"));
    assert!(planned.scenario.contains("[leaf]\nissuer = \"example_tls_ca\"\nkey = \"p256\""), "{}", planned.scenario);
    assert!(planned.scenario.contains("# real names: device-updates.example.org"));
    assert!(planned.scenario.contains("dns = [\"ota.example.com\"]"));
}

#[test]
fn garbage_is_refused() {
    assert!(plan(&[], lab().specs(), "t", today()).is_err());
    assert!(plan(&[vec![1, 2, 3]], lab().specs(), "t", today()).is_err());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() { copy_dir(&path, &target) } else { std::fs::copy(&path, &target).map(|_| ()).unwrap() }
    }
}

#[test]
fn the_command_writes_authorities_and_a_scenario_that_serves_the_same_names() {
    let dir = std::env::temp_dir().join(format!("otarig-like-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&Path::new(ROOT).join("scenarios"), &dir);
    let real = foreign_chain();
    let pem_path: PathBuf = dir.join("chain.pem");
    let text: String = real.iter().map(|der| ::pem::encode(&::pem::Pem::new("CERTIFICATE", der.clone()))).collect();
    std::fs::write(&pem_path, format!("depth=1 ...\n---\nCertificate chain\n{text}---\n")).unwrap();

    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_otarig")).args(args).output().unwrap();
    let dir_arg = dir.to_str().unwrap();
    let out = run(&["scenario", "new", "example-cdn", "--like", pem_path.to_str().unwrap(), "--dir", dir_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Running it again refuses to overwrite.
    let again = run(&["scenario", "new", "example-cdn", "--like", pem_path.to_str().unwrap(), "--dir", dir_arg]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(run(&["scenario", "check", "--dir", dir_arg]).status.code(), Some(0));

    // The look-alike intermediate has the real one's subject, byte for byte (what the ESP-IDF
    // certificate bundle compares).
    let lab = LabPki::open(&dir.join("pki")).unwrap();
    let look_alike = lab.certificate("example_tls_ca").unwrap();
    let (_, mine) = X509Certificate::from_der(&look_alike.der).unwrap();
    let (_, theirs) = X509Certificate::from_der(&real[1]).unwrap();
    assert_eq!(mine.subject().as_raw(), theirs.subject().as_raw());
    assert_eq!(mine.issuer().as_raw(), theirs.issuer().as_raw());
    std::fs::remove_dir_all(&dir).unwrap();
}
