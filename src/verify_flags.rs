//! mbedTLS certificate verification flags (`MBEDTLS_X509_BADCERT_*`): their values, the text
//! `mbedtls_x509_crt_verify_info` prints for each (identical in 2.13 and 3.6), and the outcome
//! reason each one stands for.

use serde::Serialize;

use crate::outcome::VerifyReason;

/// One `MBEDTLS_X509_BADCERT_*` / `BADCRL_*` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyFlag {
    /// `BADCERT_EXPIRED`: past its `notAfter`.
    Expired,
    /// `BADCERT_REVOKED`: on a CRL.
    Revoked,
    /// `BADCERT_CN_MISMATCH`: the name does not match the expected host.
    CnMismatch,
    /// `BADCERT_NOT_TRUSTED`: not signed by a trusted CA.
    NotTrusted,
    /// `BADCRL_NOT_TRUSTED`: the CRL is not signed by a trusted CA.
    CrlNotTrusted,
    /// `BADCRL_EXPIRED`: the CRL is expired.
    CrlExpired,
    /// `BADCERT_MISSING`: no certificate.
    Missing,
    /// `BADCERT_SKIP_VERIFY`: verification was skipped.
    SkipVerify,
    /// `BADCERT_OTHER`: set by a verify callback.
    Other,
    /// `BADCERT_FUTURE`: before its `notBefore`.
    Future,
    /// `BADCRL_FUTURE`: the CRL is from the future.
    CrlFuture,
    /// `BADCERT_KEY_USAGE`: the keyUsage extension does not allow the use.
    KeyUsage,
    /// `BADCERT_EXT_KEY_USAGE`: the extendedKeyUsage extension does not allow the use.
    ExtKeyUsage,
    /// `BADCERT_NS_CERT_TYPE`: the nsCertType extension does not allow the use.
    NsCertType,
    /// `BADCERT_BAD_MD`: signed with a hash the profile refuses.
    BadMd,
    /// `BADCERT_BAD_PK`: signed with a public-key algorithm the profile refuses.
    BadPk,
    /// `BADCERT_BAD_KEY`: signed with a key the profile refuses (curve, RSA length).
    BadKey,
    /// `BADCRL_BAD_MD`: the CRL is signed with a hash the profile refuses.
    CrlBadMd,
    /// `BADCRL_BAD_PK`: the CRL is signed with an algorithm the profile refuses.
    CrlBadPk,
    /// `BADCRL_BAD_KEY`: the CRL is signed with a key the profile refuses.
    CrlBadKey,
}

/// Every flag with its value and text, in the order mbedTLS prints them.
const TABLE: [(VerifyFlag, u32, &str); 20] = [
    (VerifyFlag::Expired, 0x01, "The certificate validity has expired"),
    (VerifyFlag::Revoked, 0x02, "The certificate has been revoked (is on a CRL)"),
    (VerifyFlag::CnMismatch, 0x04, "The certificate Common Name (CN) does not match with the expected CN"),
    (VerifyFlag::NotTrusted, 0x08, "The certificate is not correctly signed by the trusted CA"),
    (VerifyFlag::CrlNotTrusted, 0x10, "The CRL is not correctly signed by the trusted CA"),
    (VerifyFlag::CrlExpired, 0x20, "The CRL is expired"),
    (VerifyFlag::Missing, 0x40, "Certificate was missing"),
    (VerifyFlag::SkipVerify, 0x80, "Certificate verification was skipped"),
    (VerifyFlag::Other, 0x0100, "Other reason (can be used by verify callback)"),
    (VerifyFlag::Future, 0x0200, "The certificate validity starts in the future"),
    (VerifyFlag::CrlFuture, 0x0400, "The CRL is from the future"),
    (VerifyFlag::KeyUsage, 0x0800, "Usage does not match the keyUsage extension"),
    (VerifyFlag::ExtKeyUsage, 0x1000, "Usage does not match the extendedKeyUsage extension"),
    (VerifyFlag::NsCertType, 0x2000, "Usage does not match the nsCertType extension"),
    (VerifyFlag::BadMd, 0x4000, "The certificate is signed with an unacceptable hash."),
    (VerifyFlag::BadPk, 0x8000, "The certificate is signed with an unacceptable PK alg (eg RSA vs ECDSA)."),
    (
        VerifyFlag::BadKey,
        0x01_0000,
        "The certificate is signed with an unacceptable key (eg bad curve, RSA too short).",
    ),
    (VerifyFlag::CrlBadMd, 0x02_0000, "The CRL is signed with an unacceptable hash."),
    (VerifyFlag::CrlBadPk, 0x04_0000, "The CRL is signed with an unacceptable PK alg (eg RSA vs ECDSA)."),
    (VerifyFlag::CrlBadKey, 0x08_0000, "The CRL is signed with an unacceptable key (eg bad curve, RSA too short)."),
];

/// A flag read back from printed text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FlagText {
    /// The flag the text stands for.
    pub flag: VerifyFlag,
    /// Only a prefix was printed (ESP-IDF's 100-byte buffer cut it), but no other text
    /// starts that way.
    pub truncated: bool,
}

impl VerifyFlag {
    #[cfg(test)]
    /// The bit mbedTLS sets for this flag.
    pub(crate) fn bit(self) -> u32 {
        TABLE.iter().find(|(flag, ..)| *flag == self).map_or(0, |(_, bit, _)| *bit)
    }

    /// The text `mbedtls_x509_crt_verify_info` prints for this flag.
    pub fn text(self) -> &'static str {
        TABLE.iter().find(|(flag, ..)| *flag == self).map_or("", |(.., text)| text)
    }

    /// Flags set in a `uint32_t` verification result, in print order.
    pub fn from_bits(bits: u32) -> Vec<Self> {
        TABLE.iter().filter(|(_, bit, _)| bits & bit != 0).map(|(flag, ..)| *flag).collect()
    }

    /// Reads one printed reason (`"  ! "` prefix already removed). A cut-off text is accepted
    /// when it is long enough to name exactly one flag.
    /// Trailing UART noise (bytes that were not UTF-8) is ignored.
    pub(crate) fn from_text(text: &str) -> Option<FlagText> {
        let text = text.trim_end_matches(|c: char| c.is_whitespace() || c == char::REPLACEMENT_CHARACTER);
        if let Some((flag, ..)) = TABLE.iter().find(|(.., full)| *full == text) {
            return Some(FlagText { flag: *flag, truncated: false });
        }
        if text.len() < 8 {
            return None;
        }
        let mut candidates = TABLE.iter().filter(|(.., full)| full.starts_with(text));
        match (candidates.next(), candidates.next()) {
            (Some((flag, ..)), None) => Some(FlagText { flag: *flag, truncated: true }),
            _ => None,
        }
    }

    /// The outcome reason this flag stands for.
    pub fn reason(self) -> VerifyReason {
        match self {
            Self::Expired => VerifyReason::Expired,
            Self::Future => VerifyReason::NotYetValid,
            Self::CnMismatch => VerifyReason::Hostname,
            Self::NotTrusted => VerifyReason::Untrusted,
            Self::BadMd => VerifyReason::WeakHash,
            Self::BadPk | Self::BadKey => VerifyReason::WeakKey,
            Self::KeyUsage | Self::ExtKeyUsage | Self::NsCertType => VerifyReason::KeyUsage,
            Self::Revoked
            | Self::CrlNotTrusted
            | Self::CrlExpired
            | Self::Missing
            | Self::SkipVerify
            | Self::Other
            | Self::CrlFuture
            | Self::CrlBadMd
            | Self::CrlBadPk
            | Self::CrlBadKey => VerifyReason::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_in_print_order() {
        let flags = VerifyFlag::from_bits(0x08 | 0x04 | 0x4000);
        assert_eq!(flags, [VerifyFlag::CnMismatch, VerifyFlag::NotTrusted, VerifyFlag::BadMd]);
        assert_eq!(VerifyFlag::BadKey.bit(), 0x10000);
    }

    #[test]
    fn reads_full_and_cut_texts() {
        let full = VerifyFlag::from_text("The certificate is signed with an unacceptable hash.");
        assert_eq!(full, Some(FlagText { flag: VerifyFlag::BadMd, truncated: false }));
        let cut = VerifyFlag::from_text("The certificate is not");
        assert_eq!(cut, Some(FlagText { flag: VerifyFlag::NotTrusted, truncated: true }));
        assert_eq!(VerifyFlag::from_text("The certificate is"), None);
        assert_eq!(VerifyFlag::from_text("The"), None);
    }
}
