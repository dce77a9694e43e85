//! A TLS signing key that rustls's aws-lc-rs provider refuses: RSA under 2048 bits (a scenario
//! may serve an RSA-1024 leaf, as old hosts did). Signs with the `rsa` crate (blinded): PSS and
//! PKCS#1 v1.5 with SHA-256/384/512, each only where the modulus is long enough for it.

use std::fmt;
use std::sync::Arc;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::rand_core::OsRng;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

/// In rustls's order of preference for its own RSA keys.
const SCHEMES: [SignatureScheme; 6] = [
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// A key the `rsa` crate cannot load for signing.
#[derive(Debug, thiserror::Error)]
pub(super) enum LegacyKeyError {
    #[error("not an RSA PKCS#8 key: {0}")]
    Pkcs8(#[source] rsa::pkcs8::Error),
    #[error("not an RSA PKCS#1 key: {0}")]
    Pkcs1(#[source] rsa::pkcs1::Error),
    #[error("not an RSA key")]
    NotRsa,
    #[error("its public key: {0}")]
    PublicKey(#[source] rsa::pkcs8::spki::Error),
}

/// An RSA private key of any size, as a rustls signing key.
#[derive(Clone)]
pub(super) struct LegacyRsaKey {
    key: Arc<RsaPrivateKey>,
    spki: Vec<u8>,
}

impl LegacyRsaKey {
    /// The RSA key in `der` (PKCS#8 or PKCS#1).
    pub(super) fn from_der(der: &PrivateKeyDer<'_>) -> Result<Self, LegacyKeyError> {
        let key = match der {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                RsaPrivateKey::from_pkcs8_der(pkcs8.secret_pkcs8_der()).map_err(LegacyKeyError::Pkcs8)
            }
            PrivateKeyDer::Pkcs1(pkcs1) => {
                RsaPrivateKey::from_pkcs1_der(pkcs1.secret_pkcs1_der()).map_err(LegacyKeyError::Pkcs1)
            }
            _ => Err(LegacyKeyError::NotRsa),
        }?;
        let spki = key.to_public_key().to_public_key_der().map_err(LegacyKeyError::PublicKey)?.into_vec();
        Ok(Self { key: Arc::new(key), spki })
    }

    /// The modulus length in bits.
    pub(super) fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// Whether a `scheme` signature fits in this key's modulus: PSS (salt as long as the hash)
    /// needs 2 hash lengths + 2 bytes in the encoded message, PKCS#1 v1.5 the DigestInfo
    /// (19 bytes + hash) + 11.
    fn fits(&self, scheme: SignatureScheme) -> bool {
        let (pss, hash_len) = match scheme {
            SignatureScheme::RSA_PSS_SHA256 => (true, 32),
            SignatureScheme::RSA_PSS_SHA384 => (true, 48),
            SignatureScheme::RSA_PSS_SHA512 => (true, 64),
            SignatureScheme::RSA_PKCS1_SHA256 => (false, 32),
            SignatureScheme::RSA_PKCS1_SHA384 => (false, 48),
            SignatureScheme::RSA_PKCS1_SHA512 => (false, 64),
            _ => return false,
        };
        if pss {
            (self.bits() - 1).div_ceil(8) >= 2 * hash_len + 2
        } else {
            self.bits().div_ceil(8) >= 19 + hash_len + 11
        }
    }
}

impl fmt::Debug for LegacyRsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyRsaKey").field("bits", &self.bits()).finish_non_exhaustive()
    }
}

impl SigningKey for LegacyRsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = SCHEMES.into_iter().find(|scheme| offered.contains(scheme) && self.fits(*scheme))?;
        Some(Box::new(LegacyRsaSigner { key: self.key.clone(), scheme }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

struct LegacyRsaSigner {
    key: Arc<RsaPrivateKey>,
    scheme: SignatureScheme,
}

impl fmt::Debug for LegacyRsaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyRsaSigner").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

impl Signer for LegacyRsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        use SignatureScheme as S;
        let (key, rng) = (&self.key, &mut OsRng);
        let signed = match self.scheme {
            S::RSA_PSS_SHA256 => key.sign_with_rng(rng, Pss::new::<Sha256>(), &Sha256::digest(message)),
            S::RSA_PSS_SHA384 => key.sign_with_rng(rng, Pss::new::<Sha384>(), &Sha384::digest(message)),
            S::RSA_PSS_SHA512 => key.sign_with_rng(rng, Pss::new::<Sha512>(), &Sha512::digest(message)),
            S::RSA_PKCS1_SHA256 => key.sign_with_rng(rng, Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)),
            S::RSA_PKCS1_SHA384 => key.sign_with_rng(rng, Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message)),
            S::RSA_PKCS1_SHA512 => key.sign_with_rng(rng, Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message)),
            other => return Err(rustls::Error::General(format!("no RSA signing with {other:?}"))),
        };
        signed.map_err(|e| rustls::Error::General(format!("RSA signing failed: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1024_bit_key_offers_what_fits_and_signs_verifiably() {
        let key = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
        let legacy = LegacyRsaKey::from_der(&PrivateKeyDer::Pkcs8(der.as_bytes().to_vec().into())).unwrap();
        assert_eq!(legacy.bits(), 1024);
        // PSS with SHA-512 needs 130 bytes; a 1024-bit modulus has 128.
        assert!(legacy.choose_scheme(&[SignatureScheme::RSA_PSS_SHA512]).is_none());
        let public = key.to_public_key();
        let message = b"server key exchange";
        use SignatureScheme as S;
        for scheme in [S::RSA_PSS_SHA384, S::RSA_PSS_SHA256, S::RSA_PKCS1_SHA512] {
            let offered = [S::RSA_PSS_SHA512, scheme, S::ECDSA_NISTP256_SHA256];
            let signer = legacy.choose_scheme(&offered).unwrap();
            assert_eq!(signer.scheme(), scheme);
            let signature = signer.sign(message).unwrap();
            let verified = match scheme {
                S::RSA_PSS_SHA384 => public.verify(Pss::new::<Sha384>(), &Sha384::digest(message), &signature),
                S::RSA_PSS_SHA256 => public.verify(Pss::new::<Sha256>(), &Sha256::digest(message), &signature),
                _ => public.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message), &signature),
            };
            assert!(verified.is_ok(), "{scheme:?}");
        }
    }
}
