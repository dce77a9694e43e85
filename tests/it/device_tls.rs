//! The device's certificate decision on mbedTLS, offline: the founding case (DST Root CA X3
//! firmware against today's GTS chain and the DST cross-sign rescue, with and without date
//! checks) and the certificate bundle.

use std::path::Path;
use std::sync::OnceLock;

use otarig::device_tls::{Anchors, ChainVerdict, DevicePolicy, DeviceTlsError, judge_chain};
use otarig::firmware::Fleet;
use otarig::idf::IdfVersion;
use otarig::image::{BundleEntry, BundleFormat};
use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::pki::LabPki;
use otarig::scenario::Scenario;
use otarig::scenario::ServedChain;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HOST: &str = "ota.example.com";

fn pki() -> &'static LabPki {
    static PKI: OnceLock<LabPki> = OnceLock::new();
    PKI.get_or_init(|| LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap())
}

fn chain(scenario: &str) -> (Vec<Vec<u8>>, i64) {
    let scenario = Scenario::load(&Path::new(ROOT).join(format!("scenarios/{scenario}.toml")), pki()).unwrap();
    (ServedChain::build(&scenario, pki()).unwrap().ders(), scenario.date.unix_timestamp())
}

fn roots(names: &[&str]) -> Anchors {
    Anchors::Roots(names.iter().map(|n| pki().certificate(n).unwrap().der).collect())
}

fn policy(idf: &str, anchors: Anchors, date_check_at: Option<i64>) -> DevicePolicy {
    DevicePolicy { idf: IdfVersion::parse(idf).unwrap(), anchors, date_check_at, config: Default::default() }
}

fn judge(scenario: &str, policy: &DevicePolicy) -> ChainVerdict {
    judge_chain(&chain(scenario).0, Some(HOST), policy).unwrap()
}

#[test]
fn chains_and_roots_mbedtls_cannot_parse_are_refused_by_kind() {
    let (mut ders, _) = chain("gts-chain");
    let v44 = |anchors| policy("v4.4", anchors, None);
    let empty = judge_chain(&[], Some(HOST), &v44(roots(&["gts_root_r1"])));
    assert!(matches!(empty, Err(DeviceTlsError::EmptyChain)), "{empty:?}");
    let bad_root = judge_chain(&ders, Some(HOST), &v44(Anchors::Roots(vec![b"not DER".to_vec()])));
    assert!(matches!(bad_root, Err(DeviceTlsError::Root { index: 0, .. })), "{bad_root:?}");
    ders[1] = b"not DER".to_vec();
    let bad_chain = judge_chain(&ders, Some(HOST), &v44(roots(&["gts_root_r1"])));
    assert!(matches!(bad_chain, Err(DeviceTlsError::ChainCertificate { index: 1, .. })), "{bad_chain:?}");
}

#[test]
fn dst_only_firmware_rejects_todays_gts_chain_as_untrusted() {
    let verdict = judge("gts-chain", &policy("v3.2", roots(&["dst_root_x3"]), None));
    assert_eq!(verdict.code, -0x2700);
    assert_eq!(verdict.flags, 0x08, "NOT_TRUSTED only");
    assert_eq!(verdict.rejection(), Some((OutcomeClass::TlsVerify, VerifyReason::Untrusted)));
}

#[test]
fn the_dst_cross_sign_rescues_firmware_without_date_checks() {
    let verdict = judge("dst-cross-sign-rescue", &policy("v3.2", roots(&["dst_root_x3"]), None));
    assert_eq!((verdict.code, verdict.flags), (0, 0), "{verdict:#?}");
    assert_eq!(verdict.path.len(), 4, "leaf, R11, ISRG X1 by DST, DST root: {verdict:#?}");
    assert!(verdict.path[0].subject.contains("DST Root CA X3"), "{:?}", verdict.path[0]);
}

#[test]
fn with_date_checks_the_expired_cross_sign_and_root_are_refused() {
    let (ders, date) = chain("dst-cross-sign-rescue");
    let verdict = judge_chain(&ders, Some(HOST), &policy("v3.2", roots(&["dst_root_x3"]), Some(date))).unwrap();
    assert_eq!(verdict.code, -0x2700);
    assert_eq!(verdict.flags, 0x01, "EXPIRED: {verdict:#?}");
    assert_eq!(verdict.rejection(), Some((OutcomeClass::TlsVerify, VerifyReason::Expired)));
    // The DST root (2021) and the cross-sign (2024) are expired; R11 and the leaf are not.
    let expired: Vec<u32> = verdict.path.iter().filter(|c| c.flags & 1 != 0).map(|c| c.depth).collect();
    assert_eq!(expired, [3, 2]);
}

#[test]
fn the_wrong_host_name_is_a_cn_mismatch() {
    let verdict = judge_chain(
        &chain("dst-cross-sign-rescue").0,
        Some("other.example.com"),
        &policy("v3.2", roots(&["dst_root_x3"]), None),
    )
    .unwrap();
    assert_eq!((verdict.code, verdict.flags), (-0x2700, 0x04));
}

#[test]
fn a_bundle_validates_by_issuer_name_and_key() {
    let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), pki()).unwrap();
    let firmware = fleet.get("bundle-idf5.2").unwrap();
    let entries: Vec<BundleEntry> = fleet
        .trusted_authorities(firmware)
        .iter()
        .map(|name| BundleEntry::from_certificate_der(&pki().certificate(name).unwrap().der).unwrap())
        .collect();
    let mut sorted = entries.clone();
    sorted.sort_by(|a, b| a.subject_der.cmp(&b.subject_der));
    let bundle =
        |idf: &str| policy(idf, Anchors::Bundle { entries: sorted.clone(), format: BundleFormat::BigEndianV44 }, None);
    let verdict = judge("gts-chain", &bundle("v5.2.5"));
    assert_eq!((verdict.code, verdict.flags), (0, 0), "{verdict:#?}");
    assert_eq!(verdict.log.len(), 1);
    assert_eq!(verdict.log[0].text, "Certificate validated");

    // A bundle without the issuer: the callback fails the handshake (-0x3000), v5.4 explains.
    let only_isrg: Vec<BundleEntry> =
        sorted.iter().filter(|e| String::from_utf8_lossy(&e.subject_der).contains("ISRG Root X1")).cloned().collect();
    assert_eq!(only_isrg.len(), 1);
    for (idf, lines) in [
        ("v4.4.8", vec!["E Failed to verify certificate"]),
        ("v5.4.2", vec!["I No matching trusted root certificate found", "E Failed to verify certificate"]),
    ] {
        let p = policy(idf, Anchors::Bundle { entries: only_isrg.clone(), format: BundleFormat::BigEndianV44 }, None);
        let verdict = judge("gts-chain", &p);
        assert_eq!((verdict.code, verdict.flags), (-0x3000, u32::MAX), "{idf}");
        let printed: Vec<String> = verdict.log.iter().map(|l| format!("{} {}", l.level, l.text)).collect();
        assert_eq!(printed, lines, "{idf}");
        assert_eq!(verdict.rejection(), Some((OutcomeClass::TlsVerify, VerifyReason::Untrusted)));
    }
}
