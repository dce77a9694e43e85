//! `esp_crt_bundle`'s verify callback as the firmware's ESP-IDF version has it
//! (`components/mbedtls/esp_crt_bundle/esp_crt_bundle.c`, v4.4–v5.3 and v5.4+).
//!
//! It acts only on a certificate whose flags, BAD_MD aside, are exactly NOT_TRUSTED (the top of
//! a path that reached no trusted root): it binary-searches the bundle for the certificate's
//! issuer name, checks the certificate's signature with the stored key (mbedTLS's own hash
//! and public-key code), and clears the flags on success. Otherwise it fails the verification,
//! which mbedTLS turns into `MBEDTLS_ERR_X509_FATAL_ERROR` (-0x3000). A bundle stores no
//! validity, so a root's expiry is never checked. A stored key on a curve the build lacks fails
//! `mbedtls_pk_parse_public_key` with `MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE`, as any other key the
//! build cannot read.

use mbedtls::hash::{Md, Type as MdType};
use mbedtls::pk::{Pk, Type as PkType};
use mbedtls::x509::{Certificate, VerifyError};
use mbedtls::{Error, error::codes};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::LogLine;
use super::config::{Curve, Curves};
use super::release::UNKNOWN_NAMED_CURVE;
use crate::idf::IdfVersion;
use crate::image::BundleEntry;

const TAG: &str = "esp-x509-crt-bundle";

/// The bundle a firmware carries, and the version of the code that reads it.
pub(super) struct Bundle {
    entries: Vec<BundleEntry>,
    /// v5.4 rewrote the lookup (compare at most the issuer's length) and the lines.
    v5_4: bool,
    /// The curves the build lacks.
    missing: Curves,
}

impl Bundle {
    pub fn new(entries: Vec<BundleEntry>, idf: IdfVersion, missing: Curves) -> Self {
        Self { entries, v5_4: (idf.major, idf.minor) >= (5, 4), missing }
    }

    /// `esp_crt_verify_callback` for one certificate of the path.
    pub fn verify(&self, cert: &Certificate, flags: &mut VerifyError, log: &mut Vec<LogLine>) -> mbedtls::Result<()> {
        let filtered = *flags - VerifyError::CERT_BAD_MD;
        if filtered != VerifyError::CERT_NOT_TRUSTED {
            return Ok(());
        }
        let mut line = |level: char, text: String| log.push(LogLine { level, tag: TAG, text });
        if self.entries.is_empty() {
            line('E', "No certificates in bundle".to_owned());
            return Err(Error::from(codes::X509FatalError));
        }
        let verified = match self.find_issuer(cert.as_der()) {
            Some(entry) => match check_signature(cert, entry, self.missing) {
                Ok(()) => true,
                Err(failure) => {
                    line('E', failure.printed(self.v5_4));
                    if self.v5_4 {
                        line('E', "Certificate matched but signature verification failed".to_owned());
                    }
                    false
                }
            },
            None => {
                if self.v5_4 {
                    line('I', "No matching trusted root certificate found".to_owned());
                }
                false
            }
        };
        if verified {
            line('I', "Certificate validated".to_owned());
            *flags = VerifyError::empty();
            return Ok(());
        }
        line('E', "Failed to verify certificate".to_owned());
        // v5.4+ returns CERT_VERIFY_FAILED, which mbedTLS turns into FATAL_ERROR as well.
        Err(Error::from(if self.v5_4 { codes::X509CertVerifyFailed } else { codes::X509FatalError }))
    }

    /// The binary search on subject names. v4.4–v5.3 compare the stored name's length of bytes
    /// from the issuer on (reading past a shorter issuer into the certificate's next field, as
    /// the C `memcmp` does); v5.4+ compare at most the issuer's length.
    fn find_issuer(&self, der: &[u8]) -> Option<&BundleEntry> {
        let (issuer_at, issuer_len) = issuer_span(der)?;
        let (mut start, mut end) = (0i64, self.entries.len() as i64 - 1);
        while start <= end {
            let middle = (start + end) / 2;
            let entry = &self.entries[middle as usize];
            let name = &entry.subject_der;
            let len = if self.v5_4 { issuer_len.min(name.len()) } else { name.len() };
            let window = &der[issuer_at..der.len().min(issuer_at + len)];
            let ordering = window.cmp(&name[..len.min(name.len())]).then(window.len().cmp(&len));
            match ordering {
                std::cmp::Ordering::Equal => return Some(entry),
                std::cmp::Ordering::Less => end = middle - 1,
                std::cmp::Ordering::Greater => start = middle + 1,
            }
        }
        None
    }
}

/// Where the issuer `Name` starts in the certificate's DER, and its length.
fn issuer_span(der: &[u8]) -> Option<(usize, usize)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let raw = cert.issuer().as_raw();
    let at = (raw.as_ptr() as usize).checked_sub(der.as_ptr() as usize)?;
    (at + raw.len() <= der.len()).then_some((at, raw.len()))
}

/// Why `esp_crt_check_signature` refused a certificate.
#[derive(Debug, thiserror::Error)]
enum SignatureError {
    #[error("the stored public key does not parse: {0}")]
    ParseKey(#[source] Error),
    #[error("the stored key cannot check the certificate's signature algorithm")]
    UnsuitableKey,
    #[error("the certificate's signature names no known message digest")]
    UnknownDigest,
    #[error("the certificate's signed part cannot be found")]
    NoSignedPart,
    #[error("hashing the signed part failed: {0}")]
    Hash(#[source] Error),
    #[error("the certificate's signature cannot be read: {0}")]
    Signature(#[source] Error),
    #[error("the signature does not verify: {0}")]
    Verify(#[source] Error),
}

impl SignatureError {
    /// The line the firmware prints for it: v4.4–v5.3 print the (negative) code with %X, v5.4+
    /// its magnitude with 0x%x.
    fn printed(&self, v5_4: bool) -> String {
        let code = |what: &str, e: &Error| {
            let ret = e.to_int();
            if v5_4 {
                format!("{what} failed with error 0x{:x}", -ret)
            } else {
                format!("{what} failed with error {ret:X}")
            }
        };
        match self {
            Self::ParseKey(e) => code("PK parse", e),
            Self::UnsuitableKey if v5_4 => "Unsuitable public key".to_owned(),
            Self::UnsuitableKey => "Simple compare failed".to_owned(),
            Self::UnknownDigest if v5_4 => "Unknown message digest".to_owned(),
            Self::UnknownDigest => code("Internal mbedTLS", &codes::MdBadInputData.into()),
            Self::NoSignedPart => code("PK verify", &codes::X509InvalidFormat.into()),
            Self::Hash(e) => code(if v5_4 { "MD" } else { "Internal mbedTLS" }, e),
            Self::Signature(e) | Self::Verify(e) => code("PK verify", e),
        }
    }
}

/// `esp_crt_check_signature`: the certificate's signature checked with the stored key, which
/// the build parses only on a curve it has.
fn check_signature(cert: &Certificate, entry: &BundleEntry, missing: Curves) -> Result<(), SignatureError> {
    let mut key = Pk::from_public_key(&entry.public_key_der).map_err(SignatureError::ParseKey)?;
    if key.curve().ok().and_then(Curve::of_group).is_some_and(|curve| missing.contains(curve)) {
        return Err(SignatureError::ParseKey(Error::from(UNKNOWN_NAMED_CURVE)));
    }
    // mbedtls_pk_can_do(parent key, child's signature algorithm).
    let can_do = match signature_algorithm_is_rsa(cert.as_der()) {
        Some(true) => key.can_do(PkType::Rsa),
        Some(false) => key.can_do(PkType::Ecdsa),
        None => false,
    };
    if !can_do {
        return Err(SignatureError::UnsuitableKey);
    }
    let md = cert.digest_type();
    if md == MdType::None {
        return Err(SignatureError::UnknownDigest);
    }
    let tbs = tbs_of(cert.as_der()).ok_or(SignatureError::NoSignedPart)?;
    let mut hash = [0u8; 64];
    let len = Md::hash(md, tbs, &mut hash).map_err(SignatureError::Hash)?;
    let signature = cert.signature().map_err(SignatureError::Signature)?;
    key.verify(md, &hash[..len], &signature).map_err(SignatureError::Verify)
}

/// The to-be-signed part of a certificate (what its signature covers).
fn tbs_of(der: &[u8]) -> Option<&[u8]> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate.as_ref();
    let at = (tbs.as_ptr() as usize).checked_sub(der.as_ptr() as usize)?;
    der.get(at..at + tbs.len())
}

/// Whether the certificate is signed with RSA (`Some(true)`), ECDSA (`Some(false)`) or
/// something else.
fn signature_algorithm_is_rsa(der: &[u8]) -> Option<bool> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    if oid.starts_with("1.2.840.113549.1.1.") {
        Some(true)
    } else if oid.starts_with("1.2.840.10045.4.") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PublicKeyData};

    use super::*;

    /// A leaf signed by a fresh P-256 root, as DER.
    fn leaf_of_a_p256_root() -> Vec<u8> {
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = Issuer::new(root, KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["ota.example.com".to_owned()]).unwrap();
        leaf.signed_by(&leaf_key, &issuer).unwrap().der().to_vec()
    }

    fn entry_with_key(key: &KeyPair) -> BundleEntry {
        BundleEntry { subject_der: Vec::new(), public_key_der: key.subject_public_key_info() }
    }

    #[test]
    fn a_stored_key_that_did_not_sign_fails_as_the_firmware_prints_it() {
        let leaf = Certificate::from_der(&leaf_of_a_p256_root()).unwrap();
        let other_ec = entry_with_key(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
        let failure = check_signature(&leaf, &other_ec, Curves::NONE).unwrap_err();
        let SignatureError::Verify(error) = &failure else { panic!("{failure:?}") };
        let ret = error.to_int();
        assert_eq!(failure.printed(true), format!("PK verify failed with error 0x{:x}", -ret));
        assert_eq!(failure.printed(false), format!("PK verify failed with error {ret:X}"));

        let rsa = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let failure = check_signature(&leaf, &entry_with_key(&rsa), Curves::NONE).unwrap_err();
        assert!(matches!(failure, SignatureError::UnsuitableKey), "{failure:?}");
        assert_eq!(failure.printed(true), "Unsuitable public key");
        assert_eq!(failure.printed(false), "Simple compare failed");
    }

    #[test]
    fn a_stored_key_on_a_curve_the_build_lacks_does_not_parse() {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = Issuer::new(root, &root_key);
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der =
            CertificateParams::new(vec!["ota.example.com".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        let leaf = Certificate::from_der(der.der()).unwrap();
        let entry = entry_with_key(&root_key);
        assert!(check_signature(&leaf, &entry, Curves::NONE).is_ok());
        let failure = check_signature(&leaf, &entry, Curves::of(&[Curve::Secp384r1])).unwrap_err();
        // v4.4–v5.3 print the negative code with %X, v5.4+ its magnitude.
        assert_eq!(failure.printed(false), "PK parse failed with error FFFFC600");
        assert_eq!(failure.printed(true), "PK parse failed with error 0x3a00");
    }
}
