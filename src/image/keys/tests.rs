use super::*;
use crate::image::CertInfo;

fn lab(name: &str, kind: &str) -> String {
    let dir = if kind == "key" { "keys" } else { "certs" };
    let suffix = if kind == "key" { ".key.pem" } else { ".pem" };
    std::fs::read_to_string(format!("{}/scenarios/pki/{dir}/{name}{suffix}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn der_of(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text).unwrap().into_contents()
}

fn pem_of(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

/// The key inside a PKCS#8 `PrivateKeyInfo` (PKCS#1 for RSA, SEC1 for EC).
fn inner_key(pkcs8: &[u8]) -> Vec<u8> {
    let outer = der::tlv(pkcs8).unwrap();
    let fields = der::children(outer.content).unwrap();
    fields[2].content.to_vec()
}

/// A SEC1 key with its curve written in `[0]`, as `openssl ec` writes it.
fn sec1_with_curve(sec1: &[u8], curve: &[u8]) -> Vec<u8> {
    let fields = der::children(der::tlv(sec1).unwrap().content).unwrap();
    let raw = |t: &Tlv<'_>| der::encode(t.tag, &[t.content]);
    let params = der::encode(CONTEXT_0, &[&der::encode(OID, &[curve])]);
    let rest: Vec<Vec<u8>> = fields[2..].iter().filter(|t| t.tag != CONTEXT_0).map(raw).collect();
    let mut parts = vec![raw(&fields[0]), raw(&fields[1]), params];
    parts.extend(rest);
    der::encode(SEQUENCE, &parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len).map(|_| (state ^= state << 13, state ^= state >> 7, state ^= state << 17, state as u8).3).collect()
}

const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];

#[test]
fn pem_keys_of_every_label_with_their_kind_and_public_half() {
    let rsa = der_of(&lab("isrg_root_x1", "key"));
    let ec = der_of(&lab("isrg_root_x2", "key"));
    let rsa_cert = CertInfo::from_der(&der_of(&lab("isrg_root_x1", "cert"))).unwrap();
    let ec_cert = CertInfo::from_der(&der_of(&lab("isrg_root_x2", "cert"))).unwrap();
    let blocks = [
        pem_of("PRIVATE KEY", &rsa),
        pem_of("RSA PRIVATE KEY", &inner_key(&rsa)),
        pem_of("PRIVATE KEY", &ec),
        pem_of("EC PRIVATE KEY", &sec1_with_curve(&inner_key(&ec), P384)),
    ];
    let mut image = filler(100, 1);
    let mut offsets = Vec::new();
    for block in &blocks {
        offsets.push(image.len());
        image.extend_from_slice(block.as_bytes());
        image.push(0);
        image.extend(filler(33, offsets.len() as u64));
    }
    let keys = find_private_keys(&image);
    let got: Vec<_> = keys.iter().map(|k| (k.offset, k.form, k.format, k.key.clone(), k.encrypted)).collect();
    let rsa4096 = Some(KeyKind::Rsa { bits: 4096 });
    let p384 = Some(KeyKind::Ec { curve: "P-384".into() });
    assert_eq!(
        got,
        [
            (offsets[0], KeyForm::Pem, KeyFormat::Pkcs8, rsa4096.clone(), false),
            (offsets[1], KeyForm::Pem, KeyFormat::Pkcs1, rsa4096, false),
            (offsets[2], KeyForm::Pem, KeyFormat::Pkcs8, p384.clone(), false),
            (offsets[3], KeyForm::Pem, KeyFormat::Sec1, p384, false),
        ]
    );
    assert_eq!(keys[0].len, blocks[0].trim_end().len());
    let publics: Vec<_> = keys.iter().map(|k| k.public_key_sha256).collect();
    let (rsa_key, ec_key) = (Some(rsa_cert.public_key_sha256), Some(ec_cert.public_key_sha256));
    assert_eq!(publics, [rsa_key, rsa_key, ec_key, ec_key], "each key's public half is its certificate's");
}

#[test]
fn der_keys_among_binary_bytes() {
    let rsa = der_of(&lab("isrg_root_x1", "key"));
    let ec = der_of(&lab("isrg_root_x2", "key"));
    let parts = [rsa.clone(), inner_key(&rsa), ec.clone(), sec1_with_curve(&inner_key(&ec), P384)];
    let mut image = Vec::new();
    let mut offsets = Vec::new();
    for part in &parts {
        image.extend(filler(77, image.len() as u64));
        offsets.push(image.len());
        image.extend_from_slice(part);
    }
    image.extend(filler(77, 5));
    let keys = find_private_keys(&image);
    let got: Vec<_> = keys.iter().map(|k| (k.offset, k.len, k.form, k.format)).collect();
    assert_eq!(
        got,
        [
            (offsets[0], parts[0].len(), KeyForm::Der, KeyFormat::Pkcs8),
            (offsets[1], parts[1].len(), KeyForm::Der, KeyFormat::Pkcs1),
            (offsets[2], parts[2].len(), KeyForm::Der, KeyFormat::Pkcs8),
            (offsets[3], parts[3].len(), KeyForm::Der, KeyFormat::Sec1),
        ]
    );
    assert!(keys.iter().all(|k| k.key.is_some() && k.public_key_sha256.is_some()));
}

#[test]
fn ed25519_and_generated_ec_keys_match_their_certificates() {
    for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256] {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["device.lab.test".into()]).unwrap().self_signed(&key).unwrap();
        let info = CertInfo::from_der(cert.der()).unwrap();
        let keys = find_private_keys(key.serialize_pem().as_bytes());
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key.as_ref(), Some(&info.key));
        // PKCS#8 v1 carries no public half for Ed25519; when it does, it is the certificate's.
        assert!(keys[0].public_key_sha256.is_none_or(|public| public == info.public_key_sha256));
        let der = find_private_keys(&[&filler(9, 3)[..], &key.serialize_der()].concat());
        assert_eq!(der.iter().map(|k| (k.offset, k.form)).collect::<Vec<_>>(), [(9, KeyForm::Der)]);
    }
}

#[test]
fn encrypted_keys_are_named_without_a_kind() {
    let encrypted = pem_of("ENCRYPTED PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----";
    let image = [encrypted.as_bytes(), b"\0", legacy.as_bytes(), b"\0"].concat();
    let keys = find_private_keys(&image);
    let got: Vec<_> = keys.iter().map(|k| (k.format, k.encrypted, k.key.clone(), k.public_key_sha256)).collect();
    assert_eq!(got, [(KeyFormat::EncryptedPkcs8, true, None, None), (KeyFormat::Pkcs1, true, None, None)]);
}

#[test]
fn unreadable_pem_keys_are_still_keys_and_der_near_misses_are_nothing() {
    let keys = find_private_keys(pem_of("PRIVATE KEY", &[0x30, 0x00]).as_bytes());
    assert_eq!(keys.iter().map(|k| (k.format, k.key.clone())).collect::<Vec<_>>(), [(KeyFormat::Pkcs8, None)]);
    assert_eq!(find_private_keys(pem_of("PUBLIC KEY", &[0x30, 0x00]).as_bytes()), []);

    let rsa = der_of(&lab("isrg_root_x1", "key"));
    for cut in [10, rsa.len() / 2, rsa.len() - 1] {
        assert_eq!(find_private_keys(&rsa[..cut]), [], "cut at {cut}");
    }
    let mut pkcs1 = inner_key(&rsa);
    assert_eq!(&pkcs1[4..7], [0x02, 0x01, 0x00]);
    pkcs1[6] = 2; // no RSAPrivateKey version
    assert_eq!(find_private_keys(&pkcs1), []);
    let mut pkcs1 = inner_key(&rsa);
    let last = pkcs1.len() - 1;
    pkcs1.truncate(last); // qInv one byte short: the INTEGERs no longer fill the SEQUENCE
    assert_eq!(find_private_keys(&pkcs1), []);
    let patterns: Vec<u8> =
        [0x30u8, 0x0A, 0x02, 0x01, 0x00, 0x30, 0x02, 0x05, 0x00, 0x04, 0x00, 0x02, 0x01, 0x01, 0x04, 0x00]
            .repeat(50_000);
    assert_eq!(find_private_keys(&patterns), []);
    assert_eq!(find_private_keys(&filler(1 << 20, 42)), []);
    assert_eq!(find_private_keys(&[]), []);
}

#[test]
fn what_is_kept_about_a_key_holds_none_of_it() {
    let pem_text = lab("isrg_root_x2", "key");
    let key = &find_private_keys(pem_text.as_bytes())[0];
    let shown = format!("{key:?}");
    let secret = &inner_key(&der_of(&pem_text));
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.contains(&hex[16..48]) && !shown.contains(&pem_text.lines().nth(2).unwrap()[..20]), "{shown}");
}
