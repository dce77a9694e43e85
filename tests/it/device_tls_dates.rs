//! The date-check emulation against the real library's answers: Mbed TLS's own verification
//! cases for expired and not-yet-valid certificates and for trusted lists that mix a valid CA
//! with an expired, a future or an invalid one (its `test_suite_x509parse.data`, expected
//! results from the library built with `MBEDTLS_HAVE_TIME_DATE`), judged at 2026-11-25 by
//! otarig's build without it plus the emulation. Without date checks the same chains are all
//! accepted, as a default ESP-IDF build accepts them. Data: `tests/data/mbedtls-x509/`.

use std::path::Path;

use otarig::device_tls::{Anchors, DevicePolicy, judge_chain};
use otarig::idf::IdfVersion;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mbedtls-x509");
/// 2026-11-25T00:00:00Z.
const AT: i64 = 1_795_564_800;
const EXPIRED: u32 = 0x01;
const FUTURE: u32 = 0x0200;

fn certificates(file: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read(Path::new(DATA).join(file)).unwrap();
    pem::parse_many(text).unwrap().into_iter().map(pem::Pem::into_contents).collect()
}

/// (code, flags) for `crt` against the trusted list `ca`, with or without date checks.
fn verify(crt: &str, ca: &str, dates: bool) -> (i32, u32) {
    let policy = DevicePolicy {
        idf: IdfVersion::parse("v4.4.8").unwrap(),
        anchors: Anchors::Roots(certificates(ca)),
        date_check_at: dates.then_some(AT),
        config: Default::default(),
    };
    let verdict = judge_chain(&certificates(crt), None, &policy).unwrap();
    (verdict.code, verdict.flags)
}

#[test]
fn expired_and_future_leaves_as_the_suite_expects() {
    // #8a, #8b
    assert_eq!(verify("server5-expired.crt", "test-ca2.crt", true), (-0x2700, EXPIRED));
    assert_eq!(verify("server5-future.crt", "test-ca2.crt", true), (-0x2700, FUTURE));
    assert_eq!(verify("server5-expired.crt", "test-ca2.crt", false), (0, 0));
    assert_eq!(verify("server5-future.crt", "test-ca2.crt", false), (0, 0));
}

#[test]
fn a_valid_ca_is_preferred_to_an_expired_or_future_one_in_either_order() {
    // #82–#85: the library with dates picks the time-valid CA wherever it is listed.
    for ca in [
        "test-ca2_cat-future-present.crt",
        "test-ca2_cat-present-future.crt",
        "test-ca2_cat-present-past.crt",
        "test-ca2_cat-past-present.crt",
    ] {
        assert_eq!(verify("server5.crt", ca, true), (0, 0), "{ca}");
        assert_eq!(verify("server5.crt", ca, false), (0, 0), "{ca}");
    }
}

#[test]
fn an_out_of_date_ca_beside_an_unsuitable_one_is_the_fallback() {
    // #86, #87: the only suitable CA is out of date; its date flag decides.
    assert_eq!(verify("server5.crt", "test-ca2_cat-future-invalid.crt", true), (-0x2700, FUTURE));
    assert_eq!(verify("server5.crt", "test-ca2_cat-past-invalid.crt", true), (-0x2700, EXPIRED));
    assert_eq!(verify("server5.crt", "test-ca2_cat-future-invalid.crt", false), (0, 0));
    assert_eq!(verify("server5.crt", "test-ca2_cat-past-invalid.crt", false), (0, 0));
}
