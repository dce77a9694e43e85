//! `otarig inspect` tells trust material apart in an app the test builds: a root, an
//! intermediate, server certificates pinned in their place, the device's client certificates
//! and private keys, each named for what it is, and no key material printed.

use std::path::Path;
use std::process::Command;

use otarig::image::build::{ImageSpec, SegmentSpec, write_image};
use otarig::image::{TrustRole, find_private_keys, find_trust};
use otarig::pki::LabPki;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A non-CA certificate for `name`, signed by the lab authority `issuer` (self-signed when
/// `None`), with `eku`; and its key.
fn leaf(pki: &LabPki, name: &str, issuer: Option<&str>, eku: &[ExtendedKeyUsagePurpose]) -> (String, KeyPair) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = eku.to_vec();
    let cert = match issuer {
        Some(issuer) => {
            let signer = KeyPair::from_pem(&pki.key_pem(issuer).unwrap()).unwrap();
            let issuer = Issuer::from_ca_cert_pem(&pki.certificate(issuer).unwrap().pem, signer).unwrap();
            params.signed_by(&key, &issuer).unwrap()
        }
        None => params.self_signed(&key).unwrap(),
    };
    (cert.pem(), key)
}

/// An app whose rodata holds `parts` as `EMBED_TXTFILES` stores them (each NUL-terminated,
/// aligned to 4).
fn app_embedding(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut rodata = b"mqtt_ssl_mutual_auth\0mqtts://broker.example.com:8883\0\0\0".to_vec();
    for part in parts {
        rodata.extend_from_slice(part);
        rodata.push(0);
        rodata.resize(rodata.len().div_ceil(4) * 4, 0);
    }
    write_image(&ImageSpec::esp32(
        0x4008_1000,
        vec![
            SegmentSpec { load_addr: 0x3F40_0020, data: rodata },
            SegmentSpec { load_addr: 0x3FFB_0000, data: vec![0; 256] },
            SegmentSpec { load_addr: 0x400D_0020, data: (0..30_000u32).map(|i| (i * 7) as u8).collect() },
        ],
    ))
}

#[test]
fn roots_intermediates_pinned_leaves_client_certificates_and_keys() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    let pem = |name: &str| pki.certificate(name).unwrap().pem.into_bytes();
    let (server, _) = leaf(&pki, "ota.example.com", Some("r10"), &[ExtendedKeyUsagePurpose::ServerAuth]);
    let (self_signed, _) = leaf(&pki, "ota.lan", None, &[]);
    let (client, _) = leaf(&pki, "device-0042", Some("acme_device_root"), &[ExtendedKeyUsagePurpose::ClientAuth]);
    let (device, device_key) = leaf(&pki, "device-0043", Some("acme_device_root"), &[]);
    let (_, der_key) = leaf(&pki, "spare", None, &[]);
    let key_pem = device_key.serialize_pem();
    let parts = [
        pem("isrg_root_x1"),
        pem("r10"),
        server.into_bytes(),
        self_signed.into_bytes(),
        client.into_bytes(),
        device.into_bytes(),
        key_pem.clone().into_bytes(),
        der_key.serialize_der(),
    ];
    let app = app_embedding(&parts);

    // The library: one role per certificate, the keys with their kind.
    let roles: Vec<TrustRole> = find_trust(&app).into_iter().map(|item| item.role).collect();
    use TrustRole::*;
    assert_eq!(roles, [CaRoot, IntermediateCa, PinnedLeaf, PinnedLeaf, ClientCertificate, ClientCertificate]);
    let keys = find_private_keys(&app);
    assert_eq!(keys.len(), 2, "{keys:?}");

    let tmp = TempDir::new("inspect-trust-roles");
    let path = tmp.0.join("mutual-auth.bin");
    std::fs::write(&path, &app).unwrap();
    let run = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_otarig"));
        command.current_dir(ROOT).args(["inspect", "--at", "2026-11-25"]);
        if json {
            command.args(["--format", "json"]);
        }
        let out = command.arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    let (text, json_text) = (run(false), run(true));
    let json: serde_json::Value = serde_json::from_str(&json_text).unwrap();

    let by_subject: Vec<(String, String)> = json["trust"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["certificate"]["subject"].as_str().unwrap().to_owned(), t["role"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("C=US, O=Internet Security Research Group, CN=ISRG Root X1", "ca-root"),
        ("C=US, O=Let's Encrypt, CN=R10", "intermediate-ca"),
        ("CN=ota.example.com", "pinned-leaf"),
        ("CN=ota.lan", "pinned-leaf"),
        ("CN=device-0042", "client-certificate"),
        ("CN=device-0043", "client-certificate"),
    ];
    assert_eq!(by_subject, expected.map(|(s, r)| (s.to_owned(), r.to_owned())));
    let keys: Vec<(&str, &str, &str)> = json["private_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["form"].as_str().unwrap(), k["format"].as_str().unwrap(), k["key"].as_str().unwrap()))
        .collect();
    assert_eq!(keys, [("pem", "PKCS#8", "EC P-256"), ("der", "PKCS#8", "EC P-256")]);

    for line in [
        "PEM CA root: C=US, O=Internet Security Research Group, CN=ISRG Root X1",
        "PEM intermediate CA: C=US, O=Let's Encrypt, CN=R10",
        "PEM pinned leaf: CN=ota.example.com",
        "PEM client certificate: CN=device-0042",
        "PEM PKCS#8 private key, EC P-256",
        "DER PKCS#8 private key, EC P-256",
        "! CN=ota.example.com is a server's certificate, not a CA, and not self-signed",
        "! CN=ota.lan is a server's own certificate, not a CA: the device accepts only that exact certificate",
        "! CN=device-0042 is the device's own certificate for mutual TLS",
        ", the key of CN=device-0043: whoever has this image has the key",
        "is an intermediate, not a root",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // Client certificates are not trust: the root and the intermediate are what is trusted,
    // and neither one is the only anchor.
    assert!(!text.contains("the only root"), "{text}");

    // Where a key is and what it is, never the key.
    let secret_lines: Vec<&str> = key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der_hex: String = der_key.serialize_der()[36..60].iter().map(|b| format!("{b:02x}")).collect();
    for output in [&text, &json_text] {
        assert!(secret_lines.iter().all(|line| !output.contains(line)), "{output}");
        assert!(!output.contains(&der_hex), "{output}");
    }
}
