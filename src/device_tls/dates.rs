//! Certificate dates for firmware built with `MBEDTLS_HAVE_TIME_DATE`: what
//! `x509_crt_verify_chain` sets for each certificate (`EXPIRED` when the device's clock is past
//! `notAfter`, `FUTURE` when it is before `notBefore`, both compared to the second).

use mbedtls::x509::VerifyError;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The date flags of a certificate at `now` (Unix seconds). A certificate x509-parser cannot
/// read gets none: mbedTLS parsed it, so its dates are well-formed.
pub(super) fn flags_at(der: &[u8], now: i64) -> VerifyError {
    let Some((not_before, not_after)) = validity(der) else {
        return VerifyError::empty();
    };
    let mut flags = VerifyError::empty();
    if now > not_after {
        flags.insert(VerifyError::CERT_EXPIRED);
    }
    if now < not_before {
        flags.insert(VerifyError::CERT_FUTURE);
    }
    flags
}

/// Whether a certificate is within its validity at `now`.
pub(super) fn valid_at(der: &[u8], now: i64) -> bool {
    flags_at(der, now).is_empty()
}

fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let validity = cert.validity();
    Some((validity.not_before.timestamp(), validity.not_after.timestamp()))
}
