//! Certificates rcgen cannot make: SHA-1 signatures and RSA-1024 keys, in the lab PKI (checked
//! with x509-parser and verified by OpenSSL) and served by the update server (seen by
//! `openssl s_client` and a rustls client).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use otarig::pki::{LabPki, Regenerate};
use otarig::scenario::{Scenario, ServedChain};
use otarig::server::{ServeConfig, UpdateServer};
use otarig::toml_source::TomlSource;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use x509_parser::der_parser::Oid;
use x509_parser::oid_registry::{OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::common;

use common::{Recorder, TempDir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("a certificate").1
}

/// The signature algorithm, checked to be the same inside and outside the signed part.
fn signature_oid(cert: &X509Certificate<'_>) -> Oid<'static> {
    assert_eq!(cert.signature_algorithm.algorithm, cert.tbs_certificate.signature.algorithm);
    cert.signature_algorithm.algorithm.to_owned()
}

fn rsa_bits(cert: &X509Certificate<'_>) -> usize {
    match cert.public_key().parsed().expect("a known key") {
        PublicKey::RSA(rsa) => rsa.key_size(),
        other => panic!("not RSA: {other:?}"),
    }
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
        _ => None,
    })
}

fn authority_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|id| id.0),
        _ => None,
    })
}

const LEGACY: &str = r#"
[authority.root]
subject = "C=US, O=Lab, CN=Legacy Root"
key = "rsa2048"
valid = ["2005-01-01", "2040-01-01"]

# rcgen cannot sign with SHA-1.
[authority.int_sha1]
subject = "C=US, O=Lab, CN=SHA-1 Intermediate"
key = "rsa2048"
issuer = "root"
signature = "sha1"
valid = ["2010-01-01", "2030-01-01"]
pathlen = 0
eku = ["server-auth", "client-auth"]

# A 1024-bit key certified by a 2048-bit one.
[authority.weak]
subject = "C=US, O=Lab, CN=Weak Intermediate"
key = "rsa1024"
issuer = "root"
valid = ["2008-01-01", "2030-01-01"]

# Signed by a 1024-bit key, with the default hash.
[authority.under_weak]
subject = "CN=Under Weak"
key = "p256"
issuer = "weak"
valid = ["2009-01-01", "2029-01-01"]

# Self-signed with a 1024-bit key and SHA-1, as roots of the 1990s were.
[authority.weak_root]
subject = "O=Lab, OU=Class 3, CN=Weak Root"
key = "rsa1024"
signature = "sha1"
valid = ["1996-01-29", "2028-08-01T23:59:59Z"]
"#;

/// `openssl verify` of `cert` by `issuer`. From `-auth_level 1` OpenSSL 3 refuses SHA-1
/// signatures ("CA signature digest algorithm too weak"), from level 2 RSA-1024 keys too ("CA
/// certificate key too weak"); `-auth_level 0` says so explicitly: the signatures are checked,
/// not their strength, whatever level a host's configuration would otherwise apply.
fn openssl_verify(issuer: &Path, cert: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(["verify", "-auth_level", "0", "-no_check_time", "-partial_chain", "-CAfile"])
        .arg(issuer)
        .arg(cert)
        .output()
        .expect("openssl (ci/setup-host installs it)")
}

#[test]
fn sha1_signatures_and_1024_bit_keys_are_made_and_verify() {
    let tmp = TempDir::new("pki");
    std::fs::write(tmp.0.join("authorities.toml"), LEGACY).unwrap();
    let pki = LabPki::open(&tmp.0).unwrap();
    let mut made = pki.generate(&Regenerate::Missing, |_| {}).unwrap();
    made.sort();
    assert_eq!(made, ["int_sha1", "root", "under_weak", "weak", "weak_root"]);

    let der = |name: &str| pki.certificate(name).unwrap().der;
    let (root, int_sha1, weak, under_weak, weak_root) =
        (der("root"), der("int_sha1"), der("weak"), der("under_weak"), der("weak_root"));
    let (root, int_sha1, weak, under_weak, weak_root) =
        (parse(&root), parse(&int_sha1), parse(&weak), parse(&under_weak), parse(&weak_root));

    // Signature algorithms: SHA-1 where asked, SHA-256 otherwise (also from a 1024-bit key).
    assert_eq!(signature_oid(&root), OID_PKCS1_SHA256WITHRSA);
    assert_eq!(signature_oid(&int_sha1), OID_PKCS1_SHA1WITHRSA);
    assert_eq!(signature_oid(&weak), OID_PKCS1_SHA256WITHRSA);
    assert_eq!(signature_oid(&under_weak), OID_PKCS1_SHA256WITHRSA);
    assert_eq!(signature_oid(&weak_root), OID_PKCS1_SHA1WITHRSA);

    // Key sizes.
    assert_eq!(rsa_bits(&root), 2048);
    assert_eq!(rsa_bits(&int_sha1), 2048);
    assert_eq!(rsa_bits(&weak), 1024);
    assert_eq!(rsa_bits(&weak_root), 1024);
    assert!(matches!(under_weak.public_key().parsed(), Ok(PublicKey::EC(_))));

    // The certificates made outside rcgen follow their spec as the rcgen ones do.
    for (name, cert) in [("int_sha1", &int_sha1), ("under_weak", &under_weak), ("weak_root", &weak_root)] {
        let spec = &pki.specs()[name];
        let subject: Vec<&str> = cert.subject().iter_attributes().map(|a| a.as_str().unwrap()).collect();
        let expected: Vec<&str> = spec.subject.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(subject, expected, "{name}: subject");
        // PrintableString where the text allows, as rcgen writes it.
        for attribute in cert.subject().iter_attributes() {
            assert_eq!(attribute.attr_value().tag(), asn1_rs::Tag::PrintableString, "{name}");
        }
        assert_eq!(cert.validity().not_before.timestamp(), spec.not_before.unix_timestamp(), "{name}");
        assert_eq!(cert.validity().not_after.timestamp(), spec.not_after.unix_timestamp(), "{name}");
        assert!(cert.is_ca(), "{name}");
        assert_eq!(cert.version(), X509Version::V3, "{name}");
        let key_usage = cert.key_usage().unwrap().expect("keyUsage");
        assert!(key_usage.critical, "{name}");
        assert!(key_usage.value.key_cert_sign() && key_usage.value.crl_sign() && key_usage.value.digital_signature());
        assert!(subject_key_id(cert).is_some(), "{name}: subjectKeyIdentifier");
    }
    let constraints = int_sha1.basic_constraints().unwrap().expect("basicConstraints");
    assert!(constraints.critical && constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, Some(0));
    let eku = int_sha1.extended_key_usage().unwrap().expect("extendedKeyUsage");
    assert!(!eku.critical && eku.value.server_auth && eku.value.client_auth);
    assert!(under_weak.basic_constraints().unwrap().unwrap().value.path_len_constraint.is_none());

    // Issuer names byte for byte, authority key ids matching the issuer's subject key id.
    for (name, cert, issuer) in
        [("int_sha1", &int_sha1, &root), ("weak", &weak, &root), ("under_weak", &under_weak, &weak)]
    {
        assert_eq!(cert.issuer().as_raw(), issuer.subject().as_raw(), "{name}: issuer name");
        assert_eq!(authority_key_id(cert), subject_key_id(issuer), "{name}: authorityKeyIdentifier");
    }
    assert_eq!(weak_root.issuer().as_raw(), weak_root.subject().as_raw());
    assert_eq!(authority_key_id(&weak_root), None, "self-signed without `issuer`: no AKI, as rcgen");

    // The 1024-bit keys are stored as PKCS#8, private.
    for owner in ["weak", "weak_root"] {
        let key = pki.key_pem(owner).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{owner}");
        let mode = std::fs::metadata(pki.key_path(owner)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{owner}");
    }

    // OpenSSL checks every signature.
    for name in ["root", "int_sha1", "weak", "under_weak", "weak_root"] {
        let spec = &pki.specs()[name];
        let out = openssl_verify(&pki.cert_path(spec.issuer_name()), &pki.cert_path(name));
        assert!(
            out.status.success(),
            "{name} by {}: {}{}",
            spec.issuer_name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And tells a bad one: the SHA-1 intermediate with one bit of its signature flipped.
    let mut tampered = pki.certificate("int_sha1").unwrap().der;
    *tampered.last_mut().unwrap() ^= 1;
    let tampered_path = tmp.0.join("tampered.pem");
    std::fs::write(&tampered_path, ::pem::encode(&::pem::Pem::new("CERTIFICATE", tampered))).unwrap();
    let out = openssl_verify(&pki.cert_path("root"), &tampered_path);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

fn committed_pki() -> LabPki {
    LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap()
}

fn scenario(leaf: &str, tls: &str) -> Scenario {
    let text = format!(
        "title = \"t\"\ndate = \"2026-11-25\"\n\
         [leaf]\nissuer = \"r11\"\n{leaf}\n\
         [server]\nchain = [\"leaf\", \"r11\"]\ntls = \"{tls}\"\n"
    );
    Scenario::from_source(&TomlSource::new("legacy.toml", text), &committed_pki()).unwrap()
}

struct Running {
    addr: SocketAddr,
    chain: ServedChain,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    async fn start(scenario: &Scenario) -> Self {
        let chain = ServedChain::build(scenario, &committed_pki()).unwrap();
        let config = ServeConfig {
            chain: chain.clone(),
            tls: scenario.tls,
            record_size: scenario.record_size.map(|size| size as usize),
            image: vec![0x5a; 100].into(),
            path: "/firmware.bin".into(),
            fault: None,
            hosts: Vec::new(),
        };
        let server = UpdateServer::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let addr = server.local_addr();
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(events, async {
            let _ = stopped.await;
        }));
        Self { addr, chain, stop: Some(stop) }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `openssl s_client` at security level 0 (at Debian's default level 2 OpenSSL calls a 1024-bit
/// key too weak): the certificates it was shown, and its report.
async fn s_client(addr: SocketAddr, version: &str) -> (Vec<Vec<u8>>, String) {
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-servername", "ota.example.com", "-showcerts"])
        .args([version, "-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl (ci/setup-host installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let shown = ::pem::parse_many(text.as_bytes()).unwrap().into_iter().map(::pem::Pem::into_contents).collect();
    (shown, text)
}

#[tokio::test]
async fn a_1024_bit_leaf_is_served_over_tls_1_2_and_1_3() {
    for (tls, flag, protocol) in [("1.2", "-tls1_2", "TLSv1.2"), ("1.3", "-tls1_3", "TLSv1.3")] {
        let scenario = scenario("key = \"rsa1024\"", tls);
        let server = Running::start(&scenario).await;
        let leaf = parse(&server.chain.certs[0].der);
        assert_eq!(rsa_bits(&leaf), 1024);
        // r11 (RSA-2048) signs the 1024-bit leaf with its usual SHA-256.
        assert_eq!(signature_oid(&leaf), OID_PKCS1_SHA256WITHRSA);

        let (shown, text) = s_client(server.addr, flag).await;
        // The handshake completed: the server signed its key exchange with the 1024-bit key and
        // the client checked that signature ("New, ...": TLS 1.3's session block may come only
        // after the client has quit)...
        assert!(text.contains(&format!("New, {protocol}, Cipher is")), "{tls}: {text}");
        if tls == "1.3" {
            assert!(text.contains("Peer signature type: RSA-PSS"), "{text}");
        }
        assert!(text.contains("Server public key is 1024 bit"), "{tls}: {text}");
        // ...with exactly the scenario's chain, the 1024-bit leaf first.
        assert_eq!(shown, server.chain.ders(), "{tls}");
        assert_eq!(rsa_bits(&parse(&shown[0])), 1024);
    }
}

#[tokio::test]
async fn a_sha1_signed_leaf_is_served_as_made() {
    let scenario = scenario("signature = \"sha1\"", "1.2");
    let server = Running::start(&scenario).await;

    let recorder = Arc::new(Recorder::default());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("ota.example.com").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("handshake");
    tls.write_all(b"GET /firmware.bin HTTP/1.1\r\nHost: ota.example.com\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    assert!(response.starts_with(b"HTTP/1.1 200 OK"), "{}", String::from_utf8_lossy(&response));

    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(seen, server.chain.ders());
    let leaf = parse(&seen[0]);
    assert_eq!(signature_oid(&leaf), OID_PKCS1_SHA1WITHRSA);
    assert_eq!(rsa_bits(&leaf), 2048);
    let r11 = committed_pki().certificate("r11").unwrap();
    assert_eq!(leaf.issuer().as_raw(), parse(&r11.der).subject().as_raw());
    assert_eq!(leaf.subject_alternative_name().unwrap().unwrap().value.general_names.len(), 1);

    // r11 really signed it: OpenSSL checks the SHA-1 signature.
    let tmp = TempDir::new("served");
    let leaf_path = tmp.0.join("leaf.pem");
    std::fs::write(&leaf_path, &server.chain.certs[0].pem).unwrap();
    let out = openssl_verify(&committed_pki().cert_path("r11"), &leaf_path);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
