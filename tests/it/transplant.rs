//! `transplant` on images the test builds around a stand-in "production" DST Root CA X3 (same
//! subject as the lab's, its own RSA-2048 key): PEM (LF and CRLF), DER, v4.4 and v5.4 bundles,
//! a merged flash image; the refusals; the command's naming rule and exit codes.

use std::ops::Range;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use otarig::image::build::{ImageSpec, SegmentSpec, merged_flash, write_image};
use otarig::image::inspect::{Finding, inspect};
use otarig::image::otadata::{OTADATA_SIZE, Otadata};

use otarig::image::transplant::{Form, Replacement, Target, TransplantError, Transplanted, transplant};
use otarig::image::{BundleEntry, BundleFormat, CertBundle, CertInfo, TrustKind, find_trust, parse_app};
use otarig::pki::LabPki;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa, KeyPair,
    KeyUsagePurpose, RsaKeySize, SerialNumber,
};
use sha2::{Digest, Sha256};

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DST: &str = "O=Digital Signature Trust Co., CN=DST Root CA X3";
/// The real DST Root CA X3's serial number.
const DST_SERIAL: [u8; 16] =
    [0x44, 0xaf, 0xb0, 0x80, 0xd6, 0xa3, 0x27, 0xba, 0x89, 0x30, 0x39, 0x86, 0x2e, 0xf8, 0x40, 0x6b];

fn lab() -> &'static LabPki {
    static LAB: OnceLock<LabPki> = OnceLock::new();
    LAB.get_or_init(|| LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap())
}

fn lab_der(name: &str) -> Vec<u8> {
    lab().certificate(name).unwrap().der
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of the lab authority's SubjectPublicKeyInfo.
fn lab_key(name: &str) -> [u8; 32] {
    CertInfo::from_der(&lab_der(name)).unwrap().public_key_sha256
}

/// A self-signed CA named like DST Root CA X3 with a key of its own, `extra` bytes of an
/// extension the lab's does not have (to make it longer), as rcgen writes it.
fn stand_in(key: &KeyPair, extra: usize) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, DnValue::PrintableString("Digital Signature Trust Co.".try_into().unwrap()));
    name.push(DnType::CommonName, DnValue::PrintableString("DST Root CA X3".try_into().unwrap()));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::macros::datetime!(2000-09-30 21:12:19 UTC);
    params.not_after = time::macros::datetime!(2021-09-30 14:01:15 UTC);
    params.serial_number = Some(SerialNumber::from_slice(&DST_SERIAL));
    if extra > 0 {
        params.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 2, 3, 4],
            vec![0x04, extra as u8].into_iter().chain(vec![7; extra]).collect(),
        ));
    }
    params.self_signed(key).unwrap().der().to_vec()
}

fn production_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap())
}

/// The stand-in production DST Root CA X3 (16-byte serial, RSA-2048).
fn production_dst() -> Vec<u8> {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| stand_in(production_key(), 0)).clone()
}

fn pem_of(der: &[u8], crlf: bool) -> String {
    let ending = if crlf { pem::LineEnding::CRLF } else { pem::LineEnding::LF };
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), pem::EncodeConfig::new().set_line_ending(ending))
}

/// An app image whose rodata holds `parts` (each NUL-terminated, as EMBED_TXTFILES stores text)
/// between code-like bytes; returns it and where each part starts.
fn app_holding(parts: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
    let mut rodata = b"https_ota\0https://ota.example.com/firmware.bin\0\0\0".to_vec();
    let mut starts = Vec::new();
    for part in parts {
        rodata.extend((0..37u8).map(|i| i.wrapping_mul(29)));
        starts.push(rodata.len());
        rodata.extend_from_slice(part);
        rodata.push(0);
    }
    let image = write_image(&ImageSpec::esp32(
        0x4008_1000,
        vec![
            SegmentSpec { load_addr: 0x3F40_0020, data: rodata },
            SegmentSpec { load_addr: 0x3FFB_0000, data: vec![0; 256] },
            SegmentSpec { load_addr: 0x400D_0020, data: (0..20_000u32).map(|i| (i * 7) as u8).collect() },
        ],
    ));
    // The first segment's data starts after the 24-byte header and its 8-byte segment header.
    (image, starts.into_iter().map(|s| s + 32).collect())
}

fn dst_with(name: &str) -> Replacement<'static> {
    Replacement::lab(lab(), name).unwrap()
}

fn run(image: &[u8], target: Target) -> Result<Transplanted, TransplantError> {
    transplant(image, &target, &dst_with("dst_root_x3"))
}

/// What every transplant must be: same length; changed only in the replaced ranges, the checksum
/// byte and the hash; a valid image; the lab key at the same offsets; inspect says LAB ROOT.
fn check(input: &[u8], done: &Transplanted, expected: &[Range<usize>]) {
    let output = &done.bytes;
    assert_eq!(output.len(), input.len());
    let ranges: Vec<_> = done.replaced.iter().map(|r| r.range.clone()).collect();
    assert_eq!(ranges, expected);
    let app = parse_app(input).unwrap();
    let (checksum, hash) = (app.checksum.offset, app.hash.unwrap().offset);
    for (at, (a, b)) in input.iter().zip(output).enumerate() {
        let allowed = ranges.iter().any(|r| r.contains(&at)) || at == checksum || (hash..hash + 32).contains(&at);
        assert!(a == b || allowed, "byte {at:#x} changed outside the replaced ranges");
    }
    let parsed = parse_app(output).unwrap();
    assert!(parsed.is_valid(), "{parsed:?}");
    assert_eq!((parsed.length, parsed.checksum.offset), (app.length, checksum));

    let before = find_trust(input);
    let after = find_trust(output);
    assert_eq!(after.iter().map(|t| t.offset).collect::<Vec<_>>(), before.iter().map(|t| t.offset).collect::<Vec<_>>());
    let dst_key = lab_key("dst_root_x3");
    for replaced in &done.replaced {
        let item =
            after.iter().find(|t| t.offset <= replaced.range.start && replaced.range.end <= t.offset + t.len).unwrap();
        match (&item.kind, replaced.form) {
            (TrustKind::Pem(info), Form::Pem { .. }) | (TrustKind::Der(info), Form::Der { .. }) => {
                assert_eq!((item.offset, item.len), (replaced.range.start, replaced.range.len()));
                assert_eq!(
                    (info.subject.as_str(), info.public_key_sha256, info.sha256),
                    (DST, dst_key, replaced.after)
                );
                // Signed by the lab key: the lab DST is self-signed.
                assert!(info.self_signed && info.is_ca);
                assert_ne!(replaced.before, replaced.after);
            }
            (TrustKind::Bundle { entries, sorted: true, .. }, Form::BundleRoot { index, bundle_offset, .. }) => {
                assert_eq!(item.offset, bundle_offset);
                assert_eq!((entries[index].subject.as_str(), entries[index].public_key_sha256), (DST, dst_key));
                assert_eq!(replaced.after, dst_key);
            }
            other => panic!("{other:?}"),
        }
    }
    // Only the lab DST's key counts here: other lab roots in the test's bundles are not news.
    let lab_findings = |bytes: &[u8]| {
        let findings = inspect(bytes, 1_600_000_000, &[dst_key]).findings;
        findings
            .into_iter()
            .filter(|f| matches!(f, Finding::LabAnchor { .. } | Finding::LabBundleRoots { .. }))
            .collect::<Vec<_>>()
    };
    let findings = lab_findings(output);
    for replaced in &done.replaced {
        let flagged = findings.iter().any(|f| match (f, replaced.form) {
            (Finding::LabAnchor { subject }, Form::Pem { .. } | Form::Der { .. }) => subject == DST,
            (Finding::LabBundleRoots { offset, subjects, .. }, Form::BundleRoot { bundle_offset, .. }) => {
                *offset == bundle_offset && subjects == &[DST]
            }
            _ => false,
        });
        assert!(flagged, "{replaced:?} not flagged: {findings:?}");
    }
    assert_eq!(lab_findings(input), []);
}

#[test]
fn a_pem_root_is_replaced_in_place_by_subject_common_name_or_fingerprint() {
    let production = production_dst();
    for crlf in [false, true] {
        let pem_text = pem_of(&production, crlf);
        let (input, starts) = app_holding(&[pem_text.as_bytes()]);
        let block = starts[0]..starts[0] + pem_text.trim_end().len();
        let colons: Vec<String> = sha256(&production).iter().map(|b| format!("{b:02X}")).collect();
        for target in [DST.to_owned(), "DST Root CA X3".to_owned(), colons.join(":")] {
            let done = run(&input, Target::parse(&target)).unwrap();
            check(&input, &done, std::slice::from_ref(&block));
            // Same lines: every line end stays where it was, and the block still reads as PEM.
            let new_block = &done.bytes[block.clone()];
            let ends = |bytes: &[u8]| {
                bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\r' || **b == b'\n')
                    .map(|(i, b)| (i, *b))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ends(new_block), ends(&input[block.clone()]), "crlf {crlf}");
            let der = pem::parse(new_block).unwrap().into_contents();
            assert_eq!(der.len(), production.len());
            assert!(matches!(done.replaced[0].form, Form::Pem { .. }));
        }
    }
}

#[test]
fn a_der_root_is_replaced_and_verifies_with_the_lab_key_in_openssl() {
    let production = production_dst();
    let (input, starts) = app_holding(&[&production]);
    let done = run(&input, Target::Fingerprint(sha256(&production))).unwrap();
    check(&input, &done, std::slice::from_ref(&(starts[0]..starts[0] + production.len())));

    // OpenSSL reads it, its self-signature verifies, and its key is the lab's.
    let tmp = TempDir::new("transplant-openssl");
    let new_pem = tmp.0.join("new.pem");
    std::fs::write(&new_pem, pem_of(&done.bytes[starts[0]..starts[0] + production.len()], false)).unwrap();
    let openssl = |args: &[&str], path: &Path| {
        let out = Command::new("openssl").args(args).arg(path).output().expect("openssl (ci/setup-host installs it)");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    openssl(&["verify", "-no_check_time", "-check_ss_sig", "-CAfile", new_pem.to_str().unwrap()], &new_pem);
    let key = |path: &Path| openssl(&["x509", "-noout", "-pubkey", "-in"], path);
    assert_eq!(key(&new_pem), key(&lab().cert_path("dst_root_x3")));
}

#[test]
fn a_longer_original_is_matched_with_padding() {
    let production = stand_in(production_key(), 90);
    let (input, starts) = app_holding(&[&production]);
    let done = run(&input, Target::parse(DST)).unwrap();
    check(&input, &done, std::slice::from_ref(&(starts[0]..starts[0] + production.len())));
    assert!(matches!(done.replaced[0].form, Form::Der { padding: Some(_), .. }), "{:?}", done.replaced[0].form);
}

fn bundle_entries(names: &[&str]) -> Vec<BundleEntry> {
    let mut entries: Vec<_> = names.iter().map(|n| BundleEntry::from_certificate_der(&lab_der(n)).unwrap()).collect();
    entries.push(BundleEntry::from_certificate_der(&production_dst()).unwrap());
    entries
}

#[test]
fn a_bundle_root_gets_the_lab_key_in_both_formats() {
    let production_key_der = BundleEntry::from_certificate_der(&production_dst()).unwrap().public_key_der;
    for (format, target) in [
        (BundleFormat::BigEndianV44, Target::parse("DST Root CA X3")),
        (BundleFormat::OffsetTableV54, Target::Fingerprint(sha256(&production_key_der))),
    ] {
        let bundle =
            CertBundle::encode(&bundle_entries(&["isrg_root_x1", "amazon_root_ca_1", "globalsign_root_ca"]), format);
        let (input, starts) = app_holding(&[&bundle]);
        let key_at = starts[0] + memchr::memmem::find(&bundle, &production_key_der).unwrap();
        let done = run(&input, target).unwrap();
        check(&input, &done, std::slice::from_ref(&(key_at..key_at + production_key_der.len())));
        let (parsed, _) = CertBundle::parse_as(&done.bytes[starts[0]..], format).unwrap();
        assert!(parsed.sorted);
        assert_eq!(parsed.entries.len(), 4);
    }
}

#[test]
fn every_copy_of_one_root_is_replaced() {
    let production = production_dst();
    let pem_text = pem_of(&production, false);
    let bundle = CertBundle::encode(&bundle_entries(&["isrg_root_x1"]), BundleFormat::OffsetTableV54);
    let (input, starts) = app_holding(&[pem_text.as_bytes(), &production, &bundle, pem_text.as_bytes()]);
    let key = BundleEntry::from_certificate_der(&production).unwrap().public_key_der;
    let key_at = starts[2] + memchr::memmem::find(&bundle, &key).unwrap();
    let pem_len = pem_text.trim_end().len();
    let done = run(&input, Target::parse("DST Root CA X3")).unwrap();
    let expected = [
        starts[0]..starts[0] + pem_len,
        starts[1]..starts[1] + production.len(),
        key_at..key_at + key.len(),
        starts[3]..starts[3] + pem_len,
    ];
    check(&input, &done, &expected);
    // One re-mint serves every copy of the certificate.
    assert_eq!(done.replaced[0].after, done.replaced[1].after);
    assert_eq!(done.replaced[0].after, done.replaced[3].after);
}

#[test]
fn an_app_in_a_merged_flash_image_is_resealed() {
    let production = production_dst();
    let (app, starts) = app_holding(&[pem_of(&production, false).as_bytes()]);
    let bootloader = write_image(&ImageSpec {
        hash_appended: false,
        ..ImageSpec::esp32(0x4008_0400, vec![SegmentSpec { load_addr: 0x3FFF_0000, data: vec![1; 64] }])
    });
    let erased = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    let flash = merged_flash(0x200000, &bootloader, Some(&erased), &[(0x10000, &app)]);

    let done = run(&flash, Target::parse(DST)).unwrap();
    assert_eq!(done.bytes.len(), flash.len());
    assert_eq!(done.resealed.len(), 1);
    assert_eq!(done.resealed[0].image_offset, 0x10000);
    assert_eq!(done.replaced[0].range.start, 0x10000 + starts[0]);
    let new_app = parse_app(&done.bytes[0x10000..0x110000]).unwrap();
    assert!(new_app.is_valid());
    let changed: Vec<usize> = (0..flash.len()).filter(|&i| flash[i] != done.bytes[i]).collect();
    assert!(changed.iter().all(|&i| (0x10000..0x10000 + app.len()).contains(&i)));
}

#[test]
fn refusals_say_why() {
    let production = production_dst();
    let pem_text = pem_of(&production, false);
    let (input, _) = app_holding(&[pem_text.as_bytes()]);

    assert!(matches!(run(&input, Target::parse("ISRG Root X9")), Err(TransplantError::NotFound { .. })));
    assert!(matches!(run(&input, Target::Fingerprint([7; 32])), Err(TransplantError::NotFound { .. })));

    // Two different roots of that name: the subject is ambiguous, a fingerprint is not.
    let other = stand_in(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(), 0);
    let (two, starts) = app_holding(&[pem_text.as_bytes(), &other]);
    let Err(TransplantError::Ambiguous { candidates, .. }) = run(&two, Target::parse(DST)) else {
        panic!("not ambiguous")
    };
    assert_eq!(
        candidates.iter().map(|c| (c.offset, c.sha256)).collect::<Vec<_>>(),
        [(starts[0], sha256(&production)), (starts[1], sha256(&other))]
    );
    let done = run(&two, Target::Fingerprint(sha256(&production))).unwrap();
    assert_eq!(done.replaced.len(), 1);
    assert_eq!(done.bytes[starts[1]..starts[1] + other.len()], other[..]);

    // An EC P-256 original is shorter than any certificate of the lab's RSA-2048 key.
    let (small, _) = app_holding(&[&other]);
    assert!(matches!(run(&small, Target::parse(DST)), Err(TransplantError::NoSameLength { .. })));
    // ... and its bundle root's key is shorter than the lab key.
    let ec_bundle =
        CertBundle::encode(&[BundleEntry::from_certificate_der(&other).unwrap()], BundleFormat::BigEndianV44);
    let (ec, _) = app_holding(&[&ec_bundle]);
    assert!(matches!(run(&ec, Target::parse(DST)), Err(TransplantError::KeyLength { .. })));

    // Another authority than the root's look-alike.
    let wrong = transplant(&input, &Target::parse(DST), &dst_with("isrg_root_x1"));
    assert!(matches!(wrong, Err(TransplantError::SubjectDiffers { .. })), "{wrong:?}");

    // Signed: a secure boot v2 signature sector right after the image, or at the next 4 KiB.
    let mut signed = input.clone();
    signed.push(0xE7);
    signed.extend([0x02, 0, 0]);
    signed.resize(input.len() + 4096, 0);
    assert!(
        matches!(run(&signed, Target::parse(DST)), Err(TransplantError::Signed { signature_offset, .. }) if signature_offset == input.len())
    );
    let mut padded = input.clone();
    padded.resize(input.len().div_ceil(4096) * 4096, 0xFF);
    let sector = padded.len();
    padded.push(0xE7);
    padded.resize(sector + 4096, 0);
    assert!(
        matches!(run(&padded, Target::parse(DST)), Err(TransplantError::Signed { signature_offset, .. }) if signature_offset == sector)
    );
    // Secure boot v1: a zero version word and a 64-byte signature.
    let mut v1 = input.clone();
    v1.extend([0, 0, 0, 0]);
    v1.extend((0..64u8).map(|i| i.wrapping_mul(73) | 1));
    assert!(matches!(run(&v1, Target::parse(DST)), Err(TransplantError::Signed { .. })));
    // Zero fill after an image is no signature.
    let mut filled = input.clone();
    filled.resize(input.len() + 4096, 0);
    assert!(run(&filled, Target::parse(DST)).is_ok());

    // An image that already fails its checksum is not resealed.
    let mut corrupt = input.clone();
    let checksum = parse_app(&input).unwrap().checksum.offset;
    corrupt[checksum] ^= 1;
    assert!(matches!(run(&corrupt, Target::parse(DST)), Err(TransplantError::Corrupt { .. })));
}

fn otarig(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(dir)
        .args(args)
        .arg("--pki")
        .arg(Path::new(ROOT).join("scenarios/pki"))
        .output()
        .unwrap()
}

#[test]
fn the_command_names_its_output_lab_and_never_overwrites_the_input() {
    let tmp = TempDir::new("transplant-cli");
    let (input, _) = app_holding(&[pem_of(&production_dst(), false).as_bytes()]);
    std::fs::write(tmp.0.join("app.bin"), &input).unwrap();

    let out = otarig(
        &tmp.0,
        &["transplant", "app.bin", "--replace", "DST Root CA X3", "--with", "dst_root_x3", "-o", "out.bin"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("wrote out.lab.bin"), "{text}");
    assert!(text.contains("replaced PEM certificate at") && text.contains("checksum at"), "{text}");
    assert!(!tmp.0.join("out.bin").exists());
    let written = std::fs::read(tmp.0.join("out.lab.bin")).unwrap();
    assert_eq!(written.len(), input.len());
    assert_eq!(std::fs::read(tmp.0.join("app.bin")).unwrap(), input);

    let inspected = Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(ROOT)
        .arg("inspect")
        .arg(tmp.0.join("out.lab.bin"))
        .output()
        .unwrap();
    assert_eq!(inspected.status.code(), Some(0));
    let report = String::from_utf8(inspected.stdout).unwrap();
    assert!(report.contains("! LAB ROOT: O=Digital Signature Trust Co., CN=DST Root CA X3"), "{report}");
    assert!(report.contains("checksum 0x") && !report.contains("failed"), "{report}");

    // A name that says lab is kept; one that resolves to the input is refused.
    let out =
        otarig(&tmp.0, &["transplant", "app.bin", "--replace", DST, "--with", "dst_root_x3", "-o", "sub/../lab-copy"]);
    assert_eq!(out.status.code(), Some(2), "sub/ does not exist");
    let out = otarig(&tmp.0, &["transplant", "app.bin", "--replace", DST, "--with", "dst_root_x3", "-o", "lab-copy"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().contains("wrote lab-copy"));
    std::fs::copy(tmp.0.join("app.bin"), tmp.0.join("fw.lab.bin")).unwrap();
    for out_name in ["fw.lab.bin", "fw.bin", "./fw.lab.bin"] {
        let out =
            otarig(&tmp.0, &["transplant", "fw.lab.bin", "--replace", DST, "--with", "dst_root_x3", "-o", out_name]);
        assert_eq!(out.status.code(), Some(2), "{out_name}");
        assert!(String::from_utf8(out.stderr).unwrap().contains("is the input"));
    }
    assert_eq!(std::fs::read(tmp.0.join("fw.lab.bin")).unwrap(), input);

    // Refusals and unreadable input: exit 2 with a hint.
    let out =
        otarig(&tmp.0, &["transplant", "app.bin", "--replace", "ISRG Root X9", "--with", "dst_root_x3", "-o", "x.bin"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("error:") && err.contains("hint:"), "{err}");
    assert!(!tmp.0.join("x.lab.bin").exists());
    let out = otarig(&tmp.0, &["transplant", "missing.bin", "--replace", DST, "--with", "dst_root_x3", "-o", "y.bin"]);
    assert_eq!(out.status.code(), Some(2));
    let out = otarig(&tmp.0, &["transplant", "app.bin", "--replace", DST, "--with", "no_such_root", "-o", "y.bin"]);
    assert_eq!(out.status.code(), Some(2));
    let out = otarig(&tmp.0, &["transplant", "app.bin", "--with", "dst_root_x3", "-o", "y.bin"]);
    assert_eq!(out.status.code(), Some(2), "--replace is required");
}

#[test]
fn a_manifest_asks_for_the_transplant_before_flashing() {
    use otarig::firmware::Fleet;
    use otarig::firmware::prepare::prepare;

    let tmp = TempDir::new("transplant-manifest");
    let pem = pem_of(&production_dst(), false);
    let (image, _) = app_holding(&[pem.as_bytes()]);
    std::fs::write(tmp.0.join("production-1.4.2.bin"), &image).unwrap();
    std::fs::write(
        tmp.0.join("dst-x3-real.toml"),
        "version = \"1.4.2\"\nidf = \"v3.2\"\nota_url = \"https://ota.example.com/firmware.bin\"\n\
         trust = \"embedded\"\nimage = \"production-1.4.2.bin\"\n\
         transplant = [{ replace = \"DST Root CA X3\", with = \"dst_root_x3\" }]\n",
    )
    .unwrap();
    let fleet = Fleet::load(&tmp.0, lab()).unwrap();
    let firmware = fleet.get("dst-x3-real").unwrap();
    assert_eq!(firmware.transplant.len(), 1);

    let prepared = prepare(firmware, &fleet, lab()).unwrap();
    assert!(prepared.transplanted);
    assert_eq!(prepared.app.len(), image.len());
    assert!(parse_app(&prepared.app).unwrap().is_valid());
    let keys: Vec<[u8; 32]> = find_trust(&prepared.app)
        .into_iter()
        .filter_map(|t| match t.kind {
            TrustKind::Pem(info) => Some(info.public_key_sha256),
            _ => None,
        })
        .collect();
    assert_eq!(keys, [lab_key("dst_root_x3")]);

    // A transplant without a real image to work on is refused where it is written.
    std::fs::write(
        tmp.0.join("dst-x3-real.toml"),
        "version = \"1.4.2\"\nidf = \"v3.2\"\nota_url = \"https://ota.example.com/firmware.bin\"\n\
         trust = \"embedded\"\ntransplant = [{ replace = \"DST Root CA X3\", with = \"dst_root_x3\" }]\n",
    )
    .unwrap();
    let err = Fleet::load(&tmp.0, lab()).unwrap_err();
    assert!(err.to_string().contains("dst-x3-real.toml:5:"), "{err}");
}
