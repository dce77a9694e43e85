//! Judging a chain without a handshake: the same library call, trusted list and verify
//! callback the handshake uses, followed by the checks mbedTLS's TLS layer adds after it
//! (`ssl_parse_certificate_verify`): the leaf's key usage must allow an ECDHE key exchange
//! (digitalSignature) and its extended key usage must allow a server (serverAuth or any).

use std::sync::{Arc, Mutex};

use mbedtls::x509::{Certificate, KeyUsage, VerifyError};

use super::{BAD_HS_CERTIFICATE, ChainVerdict, DevicePolicy, DeviceTlsError, Recorder, X509_FATAL_ERROR, parse_chain};

/// `id-kp-serverAuth` (1.3.6.1.5.5.7.3.1), the OID's DER content.
const SERVER_AUTH: [u8; 8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// How a device with `policy` judges `chain` (DER, leaf first, in the order the server sends
/// it) for a connection to `hostname` (`None`: no name check).
pub fn judge_chain(
    chain: &[Vec<u8>],
    hostname: Option<&str>,
    policy: &DevicePolicy,
) -> Result<ChainVerdict, DeviceTlsError> {
    let certificates = parse_chain(chain)?;
    let trusted = policy.trusted_list()?;
    let record = Arc::new(Mutex::new(Recorder::default()));
    let callback = policy.verify_callback(Arc::clone(&record));
    let result = Certificate::verify_with_callback_expected_common_name_return_verify_err(
        &certificates,
        &trusted,
        None,
        None,
        callback,
        hostname,
    );
    let (mut code, mut flags) = match result {
        Ok(()) => (0, 0),
        // mbedTLS sets every flag after a fatal error.
        Err((error, _)) if error.to_int() == X509_FATAL_ERROR => (X509_FATAL_ERROR, u32::MAX),
        Err((error, flags)) => (error.to_int(), flags.bits()),
    };
    let usage = usage_flags(certificates.iter().next().map(|leaf| &**leaf));
    flags |= usage.bits();
    if code == 0 && !usage.is_empty() {
        code = BAD_HS_CERTIFICATE;
    }
    let Recorder { path, log } = Recorder::take(&record);
    Ok(ChainVerdict { code, flags, path, log })
}

/// `mbedtls_ssl_check_cert_usage` for a client and an ECDHE key exchange.
fn usage_flags(leaf: Option<&Certificate>) -> VerifyError {
    let mut flags = VerifyError::empty();
    let Some(leaf) = leaf else {
        return flags;
    };
    if !leaf.check_key_usage(KeyUsage::DIGITAL_SIGNATURE) {
        flags.insert(VerifyError::CERT_KEY_USAGE);
    }
    let oid = SERVER_AUTH.map(|b| b as std::ffi::c_char);
    if !leaf.check_extended_key_usage(&oid) {
        flags.insert(VerifyError::CERT_EXT_KEY_USAGE);
    }
    flags
}
