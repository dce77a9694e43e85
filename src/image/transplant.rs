//! Transplanting a lab root into a production image: the real root (DST Root CA X3, whose key
//! nobody has) is swapped for the lab look-alike of the same name, byte for byte in place, so
//! that the firmware under test trusts what the rig serves and nothing else about it changes.
//!
//! The replacement takes exactly the bytes the original took: a certificate is re-minted to the
//! same DER length (`LabPki::sign_with_fit`), a PEM block keeps every byte that is not base64
//! (line lengths, `\n` or `\r\n`), a bundle root keeps its name and gets the lab key of the same
//! length. Then the checksum and SHA-256 of the app image holding it are recomputed; every other
//! byte is left as it was. A signed image is refused: nothing the rig can do keeps it valid.

use std::fmt;
use std::ops::Range;

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Name};

use super::{BundleFormat, CertBundle, CertInfo, ImageError, TrustKind, find_trust};
use crate::pki::{CertSpec, Fitted, LabPki, PkiError};

mod seal;

/// Which certificate or bundle root to replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Its whole subject as [`CertInfo::subject`] writes it, or its common name alone.
    Subject(String),
    /// SHA-256 of the certificate's DER; for a bundle root (which stores no certificate), of its
    /// `SubjectPublicKeyInfo`.
    Fingerprint([u8; 32]),
}

impl Target {
    /// 64 hex digits (colons and case ignored) are a fingerprint; anything else is a subject.
    pub fn parse(text: &str) -> Target {
        let hex: String = text.chars().filter(|c| *c != ':').collect();
        let mut fingerprint = [0u8; 32];
        let parsed = hex.len() == 64
            && fingerprint
                .iter_mut()
                .enumerate()
                .all(|(i, b)| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("x"), 16).map(|v| *b = v).is_ok());
        if parsed { Target::Fingerprint(fingerprint) } else { Target::Subject(text.to_owned()) }
    }

    fn matches(&self, subject: &str, subject_der: &[u8], fingerprint: &[u8; 32]) -> bool {
        match self {
            Target::Fingerprint(wanted) => wanted == fingerprint,
            Target::Subject(wanted) => {
                subject == wanted || common_name(subject_der).as_deref() == Some(wanted.as_str())
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Subject(subject) => write!(f, "subject `{subject}`"),
            Target::Fingerprint(sha256) => write!(f, "SHA-256 {}", hex(sha256)),
        }
    }
}

/// What goes in: a lab authority, re-minted to fit where it goes.
#[derive(Debug)]
pub struct Replacement<'a> {
    pki: &'a LabPki,
    spec: &'a CertSpec,
    /// The committed certificate's facts (its subject and key are what every re-mint has).
    info: CertInfo,
    /// Its `SubjectPublicKeyInfo` DER, what a bundle root gets.
    public_key_der: Vec<u8>,
}

impl<'a> Replacement<'a> {
    /// The lab authority `name` (its committed certificate must exist).
    pub fn lab(pki: &'a LabPki, name: &str) -> Result<Self, TransplantError> {
        let spec = pki.specs().get(name).ok_or_else(|| PkiError::Unknown { name: name.to_owned() })?;
        let der = pki.certificate(name)?.der;
        let entry = super::BundleEntry::from_certificate_der(&der);
        let (Some(info), Ok(entry)) = (CertInfo::from_der(&der), entry) else {
            return Err(PkiError::Unreadable { name: name.to_owned() }.into());
        };
        Ok(Self { pki, spec, info, public_key_der: entry.public_key_der })
    }

    /// The authority's name in the lab PKI.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// The image with the lab root in, and what was done to it.
#[derive(Clone, Debug)]
pub struct Transplanted {
    /// As long as the input; differs only in [`Replaced::range`]s and [`Resealed`] bytes.
    pub bytes: Vec<u8>,
    /// Every copy of the root replaced, in offset order.
    pub replaced: Vec<Replaced>,
    /// The app images whose checksum and hash were recomputed, in offset order.
    pub resealed: Vec<Resealed>,
}

/// One certificate or bundle root replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// The bytes rewritten: the PEM block, the DER certificate, or the bundle root's key.
    pub range: Range<usize>,
    /// How the root was stored, and how its replacement was fitted.
    pub form: Form,
    /// The root's subject as text, the same before and after.
    pub subject: String,
    /// SHA-256 of what was there (certificate DER; key for a bundle root).
    pub before: [u8; 32],
    /// SHA-256 of what is there now, of the same bytes as `before`.
    pub after: [u8; 32],
}

/// Where the replaced root was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A PEM block; the re-minted certificate's serial length and padding (see
    /// `crate::pki::Fitted`).
    Pem {
        /// Bytes of the re-minted certificate's serial number.
        serial_len: usize,
        /// Bytes of its padding extension's OCTET STRING, if it needed one.
        padding: Option<usize>,
    },
    /// A DER certificate; the re-minted certificate's serial length and padding, as for PEM.
    Der {
        /// Bytes of the re-minted certificate's serial number.
        serial_len: usize,
        /// Bytes of its padding extension's OCTET STRING, if it needed one.
        padding: Option<usize>,
    },
    /// Root `index` (in stored order) of the bundle at `bundle_offset`.
    BundleRoot {
        /// Where the bundle starts in the file.
        bundle_offset: usize,
        /// The bundle's layout.
        format: BundleFormat,
        /// The root's position in the bundle, from 0.
        index: usize,
    },
}

/// An app image whose checksum (and SHA-256) was recomputed; offsets are in the whole file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resealed {
    /// Where the app image starts.
    pub image_offset: usize,
    /// Where its checksum byte is.
    pub checksum_offset: usize,
    /// Where its SHA-256 is, when it has one appended.
    pub hash_offset: Option<usize>,
}

/// A secure boot signature found after an app image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureScheme {
    /// A signature sector (magic 0xE7) after the image or at its next 4 KiB boundary.
    SecureBootV2,
    /// 68 bytes after the image: version word 0, then a 64-byte ECDSA signature.
    SecureBootV1,
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureScheme::SecureBootV2 => "secure boot v2 signature block (magic 0xe7)",
            SignatureScheme::SecureBootV1 => "what looks like a secure boot v1 signature (version 0, 64 bytes)",
        })
    }
}

/// A trust item a target matched, shown when several different ones did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Where its first byte is in the file.
    pub offset: usize,
    /// How it is stored, for people: `PEM`, `DER` or `bundle root (key)`.
    pub form: &'static str,
    /// Its subject as text.
    pub subject: String,
    /// The fingerprint that selects it with [`Target::Fingerprint`].
    pub sha256: [u8; 32],
}

/// Why a transplant was refused. Tests match the variants, not the text.
#[derive(Debug, thiserror::Error)]
pub enum TransplantError {
    /// No certificate or bundle root in the file matches the target.
    #[error("no certificate or bundle root with {target} found")]
    NotFound {
        /// The target, for people.
        target: String,
    },
    /// The target matches different certificates (or keys): a fingerprint must choose.
    #[error("{target} matches different roots: {}", candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Ambiguous {
        /// The target, for people.
        target: String,
        /// Every item it matched, in offset order.
        candidates: Vec<Candidate>,
    },
    /// The app image holding the root carries a secure boot signature, which no resealing
    /// keeps valid.
    #[error("the app image at {image_offset:#x} is signed: {scheme} at {signature_offset:#x}")]
    Signed {
        /// Where the app image starts.
        image_offset: usize,
        /// Which signature was found.
        scheme: SignatureScheme,
        /// Where the signature starts.
        signature_offset: usize,
    },
    /// The app image holding the root already fails verification: resealing would hide that.
    #[error("the app image at {offset:#x} already fails its checksum or SHA-256")]
    Corrupt {
        /// Where the app image starts.
        offset: usize,
    },
    /// The app image holding the root does not read.
    #[error("the app image at {offset:#x} cannot be read: {source}")]
    Image {
        /// Where the app image starts.
        offset: usize,
        /// Why it does not read.
        source: ImageError,
    },
    /// The root is not inside one segment's data (it straddles two, or covers a header).
    #[error("the root at {offset:#x} is not inside one segment of the app image at {image_offset:#x}")]
    OutsideSegments {
        /// Where the root starts.
        offset: usize,
        /// Where the app image starts.
        image_offset: usize,
    },
    /// The matched root's subject is not the lab authority's: the authority is no look-alike
    /// of it.
    #[error("the root at {offset:#x} is `{found}`, the lab authority is `{lab}`")]
    SubjectDiffers {
        /// Where the root starts.
        offset: usize,
        /// The root's subject.
        found: String,
        /// The lab authority's subject.
        lab: String,
    },
    /// A bundle root's key and the lab key differ in length, so one cannot take the other's place.
    #[error("bundle root at {offset:#x} ({subject}): its key takes {original} bytes, the lab key {lab}")]
    KeyLength {
        /// Where the root's key starts.
        offset: usize,
        /// The root's subject.
        subject: String,
        /// Bytes of the root's key DER.
        original: usize,
        /// Bytes of the lab key's DER.
        lab: usize,
    },
    /// A PEM block's base64 and the re-minted certificate's differ in length.
    #[error("the PEM block at {offset:#x} holds {original} base64 characters, the re-minted certificate {new}")]
    PemLayout {
        /// Where the block starts.
        offset: usize,
        /// Base64 characters in the block.
        original: usize,
        /// Base64 characters of the re-minted certificate.
        new: usize,
    },
    /// The lab authority could not be re-minted to the root's DER length.
    #[error("no same-length certificate for the root at {offset:#x}: {source}")]
    NoSameLength {
        /// Where the root starts.
        offset: usize,
        /// Why fitting failed.
        source: PkiError,
    },
    /// The lab PKI failed (an unknown or unreadable authority).
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} {} {} (SHA-256 {})", self.offset, self.form, self.subject, hex(&self.sha256))
    }
}

/// Replaces the root `target` names in `image` with `replacement`, keeping every other byte
/// (but the checksum and SHA-256 of the app image holding it) where and as it was. Every copy
/// of one root is replaced (a PEM block and a bundle root of the same key, say); different roots
/// that match are an error.
pub fn transplant(
    image: &[u8],
    target: &Target,
    replacement: &Replacement<'_>,
) -> Result<Transplanted, TransplantError> {
    let found = find_matches(image, target)?;
    let lab = &replacement.info;
    for item in &found {
        let same_name = match item.kind {
            FoundKind::BundleRoot { .. } => item.subject_der == lab.subject_der,
            FoundKind::Pem | FoundKind::Der => item.subject == lab.subject,
        };
        if !same_name {
            let (found, lab) = (item.subject.clone(), lab.subject.clone());
            return Err(TransplantError::SubjectDiffers { offset: item.range.start, found, lab });
        }
        if matches!(item.kind, FoundKind::BundleRoot { .. }) && item.range.len() != replacement.public_key_der.len() {
            let (original, lab, subject) = (item.range.len(), replacement.public_key_der.len(), item.subject.clone());
            return Err(TransplantError::KeyLength { offset: item.range.start, subject, original, lab });
        }
    }
    let ranges: Vec<Range<usize>> = found.iter().map(|f| f.range.clone()).collect();
    let resealed = seal::plan_reseal(image, &ranges)?;

    let mut bytes = image.to_vec();
    let mut fits: Vec<Fitted> = Vec::new();
    let mut replaced = Vec::with_capacity(found.len());
    for item in found {
        let offset = item.range.start;
        let (form, object, written) = match item.kind {
            FoundKind::BundleRoot { bundle_offset, format, index } => {
                let key = replacement.public_key_der.clone();
                (Form::BundleRoot { bundle_offset, format, index }, key.clone(), key)
            }
            FoundKind::Pem | FoundKind::Der => {
                // Copies of one certificate share one re-mint.
                let fitted = match fits.iter().find(|f| f.minted.der.len() == item.der_len) {
                    Some(fitted) => fitted.clone(),
                    None => {
                        let fitted = replacement.pki.sign_with_fit(replacement.spec, item.der_len);
                        fits.push(fitted.map_err(|source| TransplantError::NoSameLength { offset, source })?);
                        fits[fits.len() - 1].clone()
                    }
                };
                let (serial_len, padding, der) = (fitted.serial_len, fitted.padding, fitted.minted.der);
                if item.kind == FoundKind::Pem {
                    let block = rewrite_pem(&image[item.range.clone()], &der)
                        .map_err(|(original, new)| TransplantError::PemLayout { offset, original, new })?;
                    (Form::Pem { serial_len, padding }, der, block)
                } else {
                    (Form::Der { serial_len, padding }, der.clone(), der)
                }
            }
        };
        bytes[item.range.clone()].copy_from_slice(&written);
        let after = Sha256::digest(&object).into();
        replaced.push(Replaced { range: item.range, form, subject: item.subject, before: item.sha256, after });
    }
    for seal in &resealed {
        seal::reseal(&mut bytes, seal);
    }
    Ok(Transplanted { bytes, replaced, resealed })
}

/// One matched certificate or bundle root.
struct Found {
    /// The PEM block, the DER certificate, or the bundle root's key.
    range: Range<usize>,
    kind: FoundKind,
    subject: String,
    subject_der: Vec<u8>,
    /// The fingerprint that selects it (certificate DER, or key for a bundle root).
    sha256: [u8; 32],
    key_sha256: [u8; 32],
    /// DER length of the certificate (for PEM and DER).
    der_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FoundKind {
    Pem,
    Der,
    BundleRoot { bundle_offset: usize, format: BundleFormat, index: usize },
}

fn find_matches(image: &[u8], target: &Target) -> Result<Vec<Found>, TransplantError> {
    let mut found = Vec::new();
    for item in find_trust(image) {
        match &item.kind {
            TrustKind::Pem(info) | TrustKind::Der(info) => {
                if target.matches(&info.subject, &info.subject_der, &info.sha256) {
                    let pem = matches!(item.kind, TrustKind::Pem(_));
                    let der_len = if pem { pem_der_len(&image[item.offset..item.offset + item.len]) } else { item.len };
                    found.push(Found {
                        range: item.offset..item.offset + item.len,
                        kind: if pem { FoundKind::Pem } else { FoundKind::Der },
                        subject: info.subject.clone(),
                        subject_der: info.subject_der.clone(),
                        sha256: info.sha256,
                        key_sha256: info.public_key_sha256,
                        der_len,
                    });
                }
            }
            TrustKind::Bundle { format, entries, .. } => {
                let keys = bundle_key_ranges(&image[item.offset..], *format);
                for (index, (entry, key)) in entries.iter().zip(keys).enumerate() {
                    if target.matches(&entry.subject, &entry.subject_der, &entry.public_key_sha256) {
                        found.push(Found {
                            range: item.offset + key.start..item.offset + key.end,
                            kind: FoundKind::BundleRoot { bundle_offset: item.offset, format: *format, index },
                            subject: entry.subject.clone(),
                            subject_der: entry.subject_der.clone(),
                            sha256: entry.public_key_sha256,
                            key_sha256: entry.public_key_sha256,
                            der_len: key.len(),
                        });
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return Err(TransplantError::NotFound { target: target.to_string() });
    }
    // Copies of one root: one certificate (however often embedded) and bundle roots of its key.
    let mut certificates: Vec<[u8; 32]> =
        found.iter().filter(|f| f.kind == FoundKind::Pem || f.kind == FoundKind::Der).map(|f| f.sha256).collect();
    certificates.sort_unstable();
    certificates.dedup();
    let one_key = found.iter().all(|f| f.key_sha256 == found[0].key_sha256);
    if certificates.len() > 1 || !one_key {
        let candidates = found
            .iter()
            .map(|f| Candidate {
                offset: f.range.start,
                form: match f.kind {
                    FoundKind::Pem => "PEM",
                    FoundKind::Der => "DER",
                    FoundKind::BundleRoot { .. } => "bundle root (key)",
                },
                subject: f.subject.clone(),
                sha256: f.sha256,
            })
            .collect();
        return Err(TransplantError::Ambiguous { target: target.to_string(), candidates });
    }
    Ok(found)
}

/// The key of each root of the bundle at the start of `bytes`, in stored order (the bundle was
/// parsed once already; records follow each other with no gaps in both formats).
fn bundle_key_ranges(bytes: &[u8], format: BundleFormat) -> Vec<Range<usize>> {
    let Ok((bundle, _)) = CertBundle::parse_as(bytes, format) else { return Vec::new() };
    let mut at = match format {
        BundleFormat::BigEndianV44 => 2,
        BundleFormat::OffsetTableV54 => 4 * bundle.entries.len(),
    };
    let mut keys = Vec::with_capacity(bundle.entries.len());
    for entry in &bundle.entries {
        let key_start = at + 4 + entry.subject_der.len();
        keys.push(key_start..key_start + entry.public_key_der.len());
        at = key_start + entry.public_key_der.len();
    }
    keys
}

const PEM_BODY_START: usize = "-----BEGIN CERTIFICATE-----".len();
const PEM_END_LEN: usize = "-----END CERTIFICATE-----".len();

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// DER length of a PEM block's certificate, from its base64 characters.
fn pem_der_len(block: &[u8]) -> usize {
    pem::parse(block).map_or(0, |p| p.contents().len())
}

/// `block` with its base64 characters replaced by those of `der`, every other byte (line
/// ends, indentation) kept: the same length and line structure. Errs with both character
/// counts when they differ.
fn rewrite_pem(block: &[u8], der: &[u8]) -> Result<Vec<u8>, (usize, usize)> {
    let encoded = pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
    let end = encoded.rfind("-----END").unwrap_or(encoded.len());
    let new: Vec<u8> = encoded.as_bytes()[PEM_BODY_START..end].iter().copied().filter(|b| is_base64(*b)).collect();
    let body = PEM_BODY_START..block.len() - PEM_END_LEN;
    let original = block[body.clone()].iter().filter(|b| is_base64(**b)).count();
    if original != new.len() {
        return Err((original, new.len()));
    }
    let mut out = block.to_vec();
    // As many base64 characters in the body as in `new` (counted above): zip pairs them all.
    let slots = out[body].iter_mut().filter(|byte| is_base64(**byte));
    for (slot, byte) in slots.zip(new) {
        *slot = byte;
    }
    Ok(out)
}

fn common_name(subject_der: &[u8]) -> Option<String> {
    let (_, name) = X509Name::from_der(subject_der).ok()?;
    name.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_64_hex_digits_with_or_without_colons() {
        let hex = "0A".repeat(32);
        assert_eq!(Target::parse(&hex), Target::Fingerprint([10; 32]));
        assert_eq!(Target::parse(&vec!["0a"; 32].join(":")), Target::Fingerprint([10; 32]));
        for subject in ["DST Root CA X3", &hex[..62], &"0g".repeat(32), "é".repeat(32).as_str()] {
            assert_eq!(Target::parse(subject), Target::Subject(subject.to_owned()));
        }
    }

    #[test]
    fn a_pem_rewrite_keeps_every_byte_that_is_not_base64() {
        let der: Vec<u8> = (0..200u8).collect();
        let other: Vec<u8> = (0..200u8).rev().collect();
        let body: String = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()))
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        // 76-character lines, indented, CRLF: none of it is PEM's usual layout.
        let lines: Vec<String> =
            body.as_bytes().chunks(76).map(|c| format!("  {}\r\n", String::from_utf8_lossy(c))).collect();
        let block = format!("-----BEGIN CERTIFICATE-----\r\n{}-----END CERTIFICATE-----", lines.concat());
        let rewritten = rewrite_pem(block.as_bytes(), &other).unwrap();
        assert_eq!(rewritten.len(), block.len());
        for (a, b) in block.bytes().zip(&rewritten) {
            assert!(a == *b || (is_base64(a) && is_base64(*b)));
        }
        assert_eq!(pem::parse(&rewritten).unwrap().into_contents(), other);
        assert_eq!(rewrite_pem(block.as_bytes(), &other[2..]), Err((body.len(), 264)));
    }
}
