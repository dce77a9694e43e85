//! Re-minting a lab authority to an exact DER length, so that a transplant can put it where a
//! real certificate of that length sits without moving a byte around it.
//!
//! Two knobs change a certificate's length and nothing a verifier looks at: the serial number's
//! length (1 to 20 bytes, RFC 5280's limit) and an optional padding extension. Everything else
//! (subject, key, validity, key usage, the issuer's signature) is the committed authority's.

use rcgen::CustomExtension;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::{MintError, Unsupported};
use super::mint::{IssuedBy, Minted, mint, params_of, sign_params, signed_without_rcgen};
use super::{CertSpec, LabPki, PkiError};

/// The padding extension's OID: 1.3.6.1.4.1.32473.1. Under the private-enterprise arc
/// (1.3.6.1.4.1), enterprise 32473 is the number IANA reserves for documentation and examples
/// (RFC 5612), so it can never mean anything to a verifier. The extension is non-critical, which
/// mbedTLS and every other verifier skip when they do not know it; its value is an OCTET STRING
/// of zero bytes whose length is tuned.
pub(crate) const PADDING_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 32473, 1];

/// The longest serial number RFC 5280 allows (and mbedTLS reads).
const MAX_SERIAL_LEN: usize = 20;
/// The serial length kept while the padding is tuned, so that the serial can still move the
/// length either way (a DER length grows by a byte more where it crosses 127 or 255).
const MID_SERIAL_LEN: usize = 10;
/// Signings one fit may take before giving up (each is one private-key operation; an ECDSA fit
/// may need several draws of the signature).
const MAX_SIGNINGS: usize = 64;

/// A lab authority re-minted to a given length.
#[derive(Clone, Debug)]
pub(crate) struct Fitted {
    pub minted: Minted,
    /// Bytes of its serial number.
    pub serial_len: usize,
    /// Bytes of the padding extension's OCTET STRING, if it has one.
    pub padding: Option<usize>,
}

impl LabPki {
    /// Signs `spec` as [`LabPki::sign`] does (same subject key, same issuer and issuer key; a
    /// self-signed root with its own key), with the serial length and padding chosen so that
    /// the DER is exactly `target_len` bytes. The serial is derived from the name and length, so
    /// an RSA-signed fit is reproducible. Fails with [`PkiError::NoFit`] when no choice hits the
    /// length (a longer key than the original's, or a length DER cannot reach this way).
    pub(crate) fn sign_with_fit(&self, spec: &CertSpec, target_len: usize) -> Result<Fitted, PkiError> {
        let keys = Keys::load(self, spec)?;
        let mut fit =
            Fit { spec, keys: &keys, target: target_len, signings: 0, signatures: Vec::new(), shortest: None };
        fit.search()
    }
}

/// The private keys and issuing certificate one fit signs with, read once.
struct Keys<'a> {
    subject: String,
    issuer: Option<(&'a CertSpec, String, String)>,
}

impl<'a> Keys<'a> {
    fn load(pki: &'a LabPki, spec: &CertSpec) -> Result<Self, PkiError> {
        let subject = pki.spec_key(spec.key_owner(), spec)?;
        if spec.issuer.is_none() || spec.issuer_name() == spec.name {
            return Ok(Self { subject, issuer: None });
        }
        let issuer_spec = pki
            .specs
            .get(spec.issuer_name())
            .ok_or_else(|| PkiError::Unknown { name: spec.issuer_name().to_owned() })?;
        let key = pki.key_pem(issuer_spec.key_owner())?;
        let cert = pki.certificate(&issuer_spec.name)?.pem;
        Ok(Self { subject, issuer: Some((issuer_spec, cert, key)) })
    }

    fn issued_by(&self) -> Option<IssuedBy<'_>> {
        self.issuer.as_ref().map(|(spec, cert_pem, key_pem)| IssuedBy { spec, cert_pem, key_pem })
    }
}

struct Fit<'a> {
    spec: &'a CertSpec,
    keys: &'a Keys<'a>,
    target: usize,
    signings: usize,
    /// Signature lengths seen, with how often: an ECDSA signature's DER length varies by a byte
    /// or two from one signing to the next (RSA and Ed25519 ones never do).
    signatures: Vec<(usize, usize)>,
    /// The shortest certificate made so far (for the error).
    shortest: Option<usize>,
}

impl Fit<'_> {
    fn no_fit(&self) -> PkiError {
        PkiError::NoFit { name: self.spec.name.clone(), target: self.target, shortest: self.shortest.unwrap_or(0) }
    }

    /// The search. What the serial and padding decide (the certificate less its signature) is
    /// the same every time they are the same, so each signing says exactly how far that part
    /// is from the target less the usual signature length; the serial's length moves it byte
    /// by byte, the padding (when the serial cannot) by as much as needed. Once that part is
    /// right, signing again with the same choice only draws another signature, until one of
    /// the usual length makes the whole certificate exactly as long as the target.
    fn search(&mut self) -> Result<Fitted, PkiError> {
        let (mut serial_len, mut padding) = (1, None);
        let mut visited: Vec<(usize, Option<usize>, usize)> = Vec::new();
        loop {
            let (fitted, signature) = self.sign(serial_len, padding)?;
            if fitted.minted.der.len() == self.target {
                return Ok(fitted);
            }
            let unsigned = fitted.minted.der.len() - signature;
            let Some(wanted) = self.target.checked_sub(self.usual_signature()) else { return Err(self.no_fit()) };
            if unsigned == wanted {
                continue; // only the signature's length was off: sign again
            }
            visited.push((serial_len, padding, unsigned));
            let desired = serial_len as isize + wanted as isize - unsigned as isize;
            (serial_len, padding) = match padding {
                _ if (1..=MAX_SERIAL_LEN as isize).contains(&desired) => (desired as usize, padding),
                None if desired < 1 => return Err(self.no_fit()),
                // A padding extension with nothing in it costs about as much as the longest
                // serial adds; the next signing says where that lands.
                None => (1, Some(0)),
                Some(0) if desired < 1 => (MAX_SERIAL_LEN, None),
                // Keep the serial mid-way, free to move either way; the padding takes the rest.
                Some(n) => {
                    let padding = (n as isize + desired - MID_SERIAL_LEN as isize).max(0) as usize;
                    (MID_SERIAL_LEN, Some(padding))
                }
            };
            // What the serial and padding decide never changes: a choice already made that
            // missed will miss again (a DER length boundary between two serial lengths), so
            // move the padding by one instead.
            if visited.iter().any(|&(s, p, u)| (s, p) == (serial_len, padding) && u != wanted) {
                (serial_len, padding) = (MID_SERIAL_LEN, Some(padding.map_or(0, |n| n + 1)));
            }
        }
    }

    /// The signature length seen most often so far.
    fn usual_signature(&self) -> usize {
        self.signatures.iter().max_by_key(|(len, count)| (*count, *len)).map_or(0, |(len, _)| *len)
    }

    /// Signs with a serial of `serial_len` bytes and the padding; returns the certificate and
    /// the length of its signature.
    fn sign(&mut self, serial_len: usize, padding: Option<usize>) -> Result<(Fitted, usize), PkiError> {
        if self.signings == MAX_SIGNINGS {
            return Err(self.no_fit());
        }
        self.signings += 1;
        let mut spec = self.spec.clone();
        spec.serial = Some(serial(&spec.name, self.target, serial_len));
        let issuer = self.keys.issued_by();
        let minted = match padding {
            None => mint(&spec, &self.keys.subject, issuer)?,
            Some(_) if signed_without_rcgen(&spec, issuer) => {
                return Err(PkiError::Unsupported { name: spec.name.clone(), what: Unsupported::LegacyPadding });
            }
            Some(n) => {
                let mut params =
                    params_of(&spec).map_err(|source| PkiError::Generate { name: spec.name.clone(), source })?;
                params.custom_extensions.push(CustomExtension::from_oid_content(PADDING_OID, octet_string(n)));
                sign_params(&spec, params, &self.keys.subject, issuer)?
            }
        };
        let signature = match X509Certificate::from_der(&minted.der) {
            Ok((_, cert)) => cert.signature_value.data.len(),
            Err(e) => return Err(PkiError::Generate { name: spec.name.clone(), source: MintError::Unreadable(e) }),
        };
        match self.signatures.iter_mut().find(|(len, _)| *len == signature) {
            Some((_, count)) => *count += 1,
            None => self.signatures.push((signature, 1)),
        }
        let len = minted.der.len();
        self.shortest = Some(self.shortest.map_or(len, |s| s.min(len)));
        Ok((Fitted { minted, serial_len, padding }, signature))
    }
}

/// `len` serial bytes derived from the name and target length: a positive INTEGER (first byte
/// 0x01..=0x7F) of exactly `len` bytes.
fn serial(name: &str, target: usize, len: usize) -> Vec<u8> {
    let digest = Sha256::digest(format!("otarig transplant fit {name} {target}"));
    let mut serial = digest[..len.min(MAX_SERIAL_LEN)].to_vec();
    serial[0] = (serial[0] & 0x7F) | 0x01;
    serial
}

/// DER OCTET STRING of `len` zero bytes.
fn octet_string(len: usize) -> Vec<u8> {
    let mut out = vec![0x04];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.resize(out.len() + len, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> LabPki {
        LabPki::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pki")).unwrap()
    }

    #[test]
    fn octet_strings_have_short_and_long_lengths() {
        assert_eq!(octet_string(0), [4, 0]);
        assert_eq!(octet_string(2), [4, 2, 0, 0]);
        assert_eq!(octet_string(200)[..3], [4, 0x81, 200]);
        assert_eq!(octet_string(300)[..4], [4, 0x82, 1, 44]);
        assert_eq!(octet_string(300).len(), 304);
    }

    #[test]
    fn every_length_from_the_shortest_on_is_reached() {
        let pki = lab();
        let spec = &pki.specs()["dst_root_x3"];
        let committed = pki.certificate("dst_root_x3").unwrap();
        let (_, original) = X509Certificate::from_der(&committed.der).unwrap();
        let shortest = committed.der.len() - original.raw_serial().len() + 1;
        for target in (shortest..shortest + 60).chain([shortest + 130, shortest + 300, committed.der.len()]) {
            let fitted = pki.sign_with_fit(spec, target).unwrap_or_else(|e| panic!("{target}: {e}"));
            assert_eq!(fitted.minted.der.len(), target);
            let (_, cert) = X509Certificate::from_der(&fitted.minted.der).unwrap();
            assert_eq!(cert.raw_serial().len(), fitted.serial_len);
            assert_eq!(cert.subject().as_raw(), original.subject().as_raw());
            assert_eq!(cert.public_key().raw, original.public_key().raw);
            assert_eq!(cert.validity(), original.validity());
            cert.verify_signature(None).unwrap();
            let padding = cert.extensions().iter().find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.32473.1");
            assert_eq!(padding.is_some(), fitted.padding.is_some());
            assert!(padding.is_none_or(|e| !e.critical));
        }
        let too_short = pki.sign_with_fit(spec, shortest - 1);
        assert!(matches!(too_short, Err(PkiError::NoFit { shortest: s, .. }) if s == shortest), "{too_short:?}");
    }

    #[test]
    fn an_issued_authority_is_signed_by_its_issuer() {
        let pki = lab();
        let r3 = pki.certificate("r3_by_dst").unwrap();
        let dst = pki.certificate("dst_root_x3").unwrap();
        let fitted = pki.sign_with_fit(&pki.specs()["r3_by_dst"], r3.der.len() + 25).unwrap();
        let (_, cert) = X509Certificate::from_der(&fitted.minted.der).unwrap();
        let (_, issuer) = X509Certificate::from_der(&dst.der).unwrap();
        cert.verify_signature(Some(issuer.public_key())).unwrap();
        assert_eq!(fitted.minted.der.len(), r3.der.len() + 25);
    }

    #[test]
    fn ecdsa_signatures_of_varying_length_still_fit() {
        let pki = lab();
        let x2 = pki.certificate("isrg_root_x2").unwrap();
        for extra in (0..40).chain([150, 400]) {
            let fitted = pki.sign_with_fit(&pki.specs()["isrg_root_x2"], x2.der.len() + extra).unwrap();
            assert_eq!(fitted.minted.der.len(), x2.der.len() + extra);
        }
    }
}
