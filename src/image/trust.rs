//! Trust material inside firmware bytes (an app image, a merged flash image, a partition dump):
//! PEM certificates as `EMBED_TXTFILES` stores them, DER certificates, and ESP-IDF certificate
//! bundles, each with the facts a person needs to tell which roots a firmware trusts.

use std::ops::Range;

use memchr::memmem;
use sha2::{Digest, Sha256};
use x509_parser::error::X509Error;
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

use super::bundle::{self, BundleEntry, BundleFormat, CertBundle};
use super::keys::{PrivateKeyItem, find_private_keys};
use super::pem_blocks::pem_blocks;

mod role;
pub(crate) use role::TlsUsage;
pub use role::TrustRole;

/// One piece of trust material and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustItem {
    /// Offset of its first byte (`-----BEGIN`, the DER `SEQUENCE`, the bundle header).
    pub offset: usize,
    /// Bytes it takes (a PEM block through its END line, without the trailing newline or NUL).
    pub len: usize,
    /// A PEM or DER certificate, or a bundle, with its facts.
    pub kind: TrustKind,
    /// What it is for: [`CertInfo::role`] for a certificate, unless its private key is in the
    /// same bytes (then [`TrustRole::ClientCertificate`]); [`TrustRole::CaRoot`] for a bundle,
    /// which holds roots only.
    pub role: TrustRole,
}

/// What a [`TrustItem`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustKind {
    /// A `-----BEGIN CERTIFICATE-----` block.
    Pem(CertInfo),
    /// A DER certificate outside any PEM block.
    Der(CertInfo),
    /// An ESP-IDF certificate bundle; `sorted` false means the device's binary search may miss roots.
    Bundle {
        /// The layout the bundle was read as.
        format: BundleFormat,
        /// Whether the roots are in ascending subject order.
        sorted: bool,
        /// The roots in stored order.
        entries: Vec<BundleEntryInfo>,
    },
}

/// The kind and size of a public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with its modulus size in bits.
    Rsa {
        /// The modulus size in bits (2048).
        bits: usize,
    },
    /// EC with its named curve (`P-256`, `P-384`, `P-521`, `secp256k1`, or the curve's OID).
    Ec {
        /// The curve's name, or its dotted OID when it has none the rig knows.
        curve: String,
    },
    /// Ed25519 (256-bit).
    Ed25519,
    /// Ed448 (456-bit).
    Ed448,
    /// Anything else, by its algorithm OID.
    Other {
        /// The algorithm's dotted OID.
        oid: String,
    },
}

/// What a certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject as text (`C=US, O=..., CN=...`, in stored order).
    pub subject: String,
    /// Subject `Name` DER, as a bundle stores it and an issuer must match it.
    pub subject_der: Vec<u8>,
    /// Issuer as text, in the subject's form: the name a chain must lead to.
    pub issuer: String,
    /// Serial number bytes as stored, in lowercase hex.
    pub serial_hex: String,
    /// The kind and size of the certified key.
    pub key: KeyKind,
    /// Signature algorithm short name (`sha256WithRSAEncryption`, `ecdsa-with-SHA384`) or OID.
    pub signature_algorithm: String,
    /// Start of validity, in unix seconds.
    pub not_before: i64,
    /// End of validity, in unix seconds.
    pub not_after: i64,
    /// `basicConstraints CA:TRUE`.
    pub is_ca: bool,
    /// The TLS sides its extended key usage allows.
    pub(crate) tls_usage: TlsUsage,
    /// SHA-256 of the certificate's DER (the usual fingerprint).
    pub sha256: [u8; 32],
    /// SHA-256 of its `SubjectPublicKeyInfo` DER (as [`BundleEntryInfo::public_key_sha256`]):
    /// the same for every certificate of one key, re-issued or cross-signed.
    pub public_key_sha256: [u8; 32],
    /// Subject equals issuer and the signature verifies with the certificate's own key (for
    /// algorithms aws-lc-rs cannot check, such as P-521, the names alone decide).
    pub self_signed: bool,
}

/// One root of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntryInfo {
    /// Subject as text, as [`CertInfo::subject`] shows it.
    pub subject: String,
    /// Subject `Name` DER as stored: what an issuer is matched against.
    pub subject_der: Vec<u8>,
    /// The kind and size of the stored key.
    pub key: KeyKind,
    /// SHA-256 of the stored `SubjectPublicKeyInfo` DER.
    pub public_key_sha256: [u8; 32],
}

impl CertInfo {
    /// Facts of one DER certificate; `None` unless `der` is exactly one parseable certificate.
    pub fn from_der(der: &[u8]) -> Option<CertInfo> {
        let (rest, cert) = X509Certificate::from_der(der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let algorithm = &cert.signature_algorithm.algorithm;
        Some(CertInfo {
            subject: cert.subject().to_string(),
            subject_der: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().to_string(),
            serial_hex: cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect(),
            key: key_kind(cert.public_key()),
            signature_algorithm: oid2sn(algorithm, oid_registry())
                .map_or_else(|_| algorithm.to_id_string(), str::to_owned),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            tls_usage: TlsUsage::of(&cert),
            sha256: Sha256::digest(der).into(),
            public_key_sha256: Sha256::digest(cert.public_key().raw).into(),
            self_signed: is_self_signed(&cert),
        })
    }
}

impl BundleEntryInfo {
    /// Facts of a bundle root (its name and key were checked when the bundle was parsed).
    pub(crate) fn from_entry(entry: &BundleEntry) -> BundleEntryInfo {
        let subject =
            X509Name::from_der(&entry.subject_der).map_or_else(|_| String::new(), |(_, name)| name.to_string());
        let key = SubjectPublicKeyInfo::from_der(&entry.public_key_der)
            .map_or_else(|_| KeyKind::Other { oid: String::new() }, |(_, spki)| key_kind(&spki));
        BundleEntryInfo {
            subject,
            subject_der: entry.subject_der.clone(),
            key,
            public_key_sha256: Sha256::digest(&entry.public_key_der).into(),
        }
    }
}

fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> KeyKind {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => KeyKind::Rsa { bits: rsa_bits(spki) },
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            KeyKind::Ec { curve: curve.map_or_else(|| "unnamed".to_owned(), |oid| curve_name(&oid)) }
        }
        "1.3.101.112" => KeyKind::Ed25519,
        "1.3.101.113" => KeyKind::Ed448,
        _ => KeyKind::Other { oid },
    }
}

/// The name of a named curve's OID (`P-256`, `P-384`, `P-521`, `secp256k1`), else the OID.
pub(super) fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        other => other,
    }
    .to_owned()
}

/// Modulus bits counted from its most significant set bit (x509-parser's `key_size` gives 0
/// when the modulus has no leading zero byte).
fn rsa_bits(spki: &SubjectPublicKeyInfo<'_>) -> usize {
    let Ok(PublicKey::RSA(rsa)) = spki.parsed() else { return 0 };
    super::der::unsigned_bits(rsa.modulus)
}

fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    if cert.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    match cert.verify_signature(None) {
        Ok(()) => true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => true,
        // x509-parser checks SHA-2 RSA signatures only for keys of 2048 bits or more.
        Err(_) => verify_small_rsa(cert),
    }
}

fn verify_small_rsa(cert: &X509Certificate<'_>) -> bool {
    use aws_lc_rs::signature::{
        RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    };
    let algorithm = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.11" => &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        "1.2.840.113549.1.1.13" => &RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        _ => return false,
    };
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(algorithm, &cert.public_key().subject_public_key.data);
    key.verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data).is_ok()
}

/// Every certificate and bundle in `bytes`, in offset order, each with its role. Never fails:
/// bytes that are not trust material are skipped. A DER certificate inside a found PEM block, or
/// anything inside a found certificate or bundle, is not reported again.
pub fn find_trust(bytes: &[u8]) -> Vec<TrustItem> {
    scan_trust(bytes).items
}

/// What [`scan_trust`] finds: the certificates and bundles, and the private keys beside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TrustScan {
    /// As [`find_trust`] returns them.
    pub items: Vec<TrustItem>,
    /// As [`find_private_keys`] returns them.
    pub private_keys: Vec<PrivateKeyItem>,
}

/// The certificates, bundles and private keys in `bytes`, in one pass over each kind; a leaf
/// whose private key is among them is a [`TrustRole::ClientCertificate`].
pub(crate) fn scan_trust(bytes: &[u8]) -> TrustScan {
    let mut items = find_pem(bytes);
    let mut taken = Taken::from_items(&items);
    items.extend(find_der(bytes, &taken));
    taken = Taken::from_items(&items);
    items.extend(find_bundles(bytes, &taken));
    items.sort_by_key(|item| item.offset);
    let private_keys = find_private_keys(bytes);
    role::pair_with_keys(&mut items, &private_keys);
    TrustScan { items, private_keys }
}

/// Byte ranges already reported, sorted and disjoint.
struct Taken(Vec<Range<usize>>);

impl Taken {
    fn from_items(items: &[TrustItem]) -> Taken {
        let mut spans: Vec<_> = items.iter().map(|i| i.offset..i.offset + i.len).collect();
        spans.sort_by_key(|s| s.start);
        Taken(spans)
    }

    /// The end of the range holding `at`, if one does.
    fn end_of(&self, at: usize) -> Option<usize> {
        let index = self.0.partition_point(|s| s.start <= at);
        index.checked_sub(1).map(|i| &self.0[i]).filter(|s| s.contains(&at)).map(|s| s.end)
    }
}

fn find_pem(bytes: &[u8]) -> Vec<TrustItem> {
    pem_blocks(bytes)
        .into_iter()
        .filter(|block| block.pem.tag() == "CERTIFICATE")
        .filter_map(|block| {
            let info = CertInfo::from_der(block.pem.contents())?;
            let role = info.role();
            Some(TrustItem { offset: block.offset, len: block.len, kind: TrustKind::Pem(info), role })
        })
        .collect()
}

fn find_der(bytes: &[u8], taken: &Taken) -> Vec<TrustItem> {
    let mut items = Vec::new();
    let finder = memmem::Finder::new(b"\x30\x82");
    let mut from = 0;
    while let Some(hit) = finder.find(&bytes[from..]) {
        let at = from + hit;
        from = at + 1;
        if let Some(end) = taken.end_of(at) {
            from = end;
            continue;
        }
        // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, ... }, both with 2-byte lengths.
        let Some(head) = bytes.get(at..at + 8) else { break };
        if head[4..6] != [0x30, 0x82] {
            continue;
        }
        let len = 4 + usize::from(u16::from_be_bytes([head[2], head[3]]));
        let tbs_len = 4 + usize::from(u16::from_be_bytes([head[6], head[7]]));
        if tbs_len >= len - 4 {
            continue;
        }
        let Some(der) = bytes.get(at..at + len) else { continue };
        if let Some(info) = CertInfo::from_der(der) {
            let role = info.role();
            items.push(TrustItem { offset: at, len, kind: TrustKind::Der(info), role });
            from = at + len;
        }
    }
    items
}

/// The most roots a bundle found without a marker may claim (ESP-IDF's default limit is 200).
const MAX_SCANNED_ROOTS: usize = 500;

fn find_bundles(bytes: &[u8], taken: &Taken) -> Vec<TrustItem> {
    let formats = [BundleFormat::OffsetTableV54, BundleFormat::BigEndianV44];
    let mut items = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if !may_start(bytes, at) {
            at += 1;
            continue;
        }
        if let Some(end) = taken.end_of(at) {
            at = end;
            continue;
        }
        let found = formats
            .into_iter()
            .filter(|f| plausible_header(bytes, at, *f))
            .find_map(|f| CertBundle::parse_as(&bytes[at..], f).ok());
        if let Some((parsed, used)) = found {
            let entries = parsed.entries.iter().map(BundleEntryInfo::from_entry).collect();
            let kind = TrustKind::Bundle { format: parsed.format, sorted: parsed.sorted, entries };
            items.push(TrustItem { offset: at, len: used, kind, role: TrustRole::CaRoot });
            at += used;
        } else if let Some(end) = formats.into_iter().find_map(|f| bundle::record_end(bytes, at, f)) {
            // A record of a bundle whose header is damaged: step over it whole, or its last
            // bytes (`00 01`, an RSA exponent's tail) would pass for the count of a new bundle.
            at = end;
        } else {
            at += 1;
        }
    }
    items
}

/// Whether a bundle or a bundle record could start at `at`, from three bytes: a record's name
/// is a DER SEQUENCE (`0x30`) right after its 4-byte header, in a v4.4 bundle after the 2-byte
/// count; a v5.4 bundle's first offset is a multiple of 4 from 4 to 2000 (at most 500 roots),
/// so its upper two bytes are zero. Every offset [`plausible_header`] or
/// [`bundle::record_end`] accepts passes; most bytes of an image do not, and the scan steps
/// over them at once.
fn may_start(bytes: &[u8], at: usize) -> bool {
    let byte = |offset: usize| bytes.get(at + offset).copied();
    let record = byte(bundle::RECORD_HEADER) == Some(0x30);
    let v44_header = byte(2 + bundle::RECORD_HEADER) == Some(0x30);
    let v54_header = matches!(
        (byte(0), byte(1), byte(2), byte(3)),
        (Some(low), Some(high), Some(0), Some(0)) if low % 4 == 0 && (low, high) != (0, 0)
    );
    record || v44_header || v54_header
}

/// A cheap look at a bundle header: a sane count and a first record whose name is a DER
/// SEQUENCE exactly as long as the record says.
fn plausible_header(bytes: &[u8], at: usize, format: BundleFormat) -> bool {
    let Some(head) = bytes.get(at..at + 4) else { return false };
    let (count, record) = match format {
        BundleFormat::BigEndianV44 => (usize::from(u16::from_be_bytes([head[0], head[1]])), at + 2),
        BundleFormat::OffsetTableV54 => {
            let first = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if !first.is_multiple_of(4) {
                return false;
            }
            (first / 4, at + first)
        }
    };
    (1..=MAX_SCANNED_ROOTS).contains(&count) && bundle::plausible_record(bytes, record, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_pem(name: &str) -> String {
        std::fs::read_to_string(format!("{}/scenarios/pki/certs/{name}.pem", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn lab_der(name: &str) -> Vec<u8> {
        pem::parse(lab_pem(name)).unwrap().into_contents()
    }

    fn lab_entries(names: &[&str]) -> Vec<BundleEntry> {
        names.iter().map(|n| BundleEntry::from_certificate_der(&lab_der(n)).unwrap()).collect()
    }

    /// Deterministic noise standing in for code and data around the material.
    fn filler(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len).map(|_| (state ^= state << 13, state ^= state >> 7, state ^= state << 17, state as u8).3).collect()
    }

    /// Appends `part` after some filler and returns where it starts.
    fn put(image: &mut Vec<u8>, filler_len: usize, part: &[u8]) -> usize {
        image.extend(filler(filler_len, image.len() as u64 + 7));
        image.extend_from_slice(part);
        image.len() - part.len()
    }

    const ISRG_X1: &str = "C=US, O=Internet Security Research Group, CN=ISRG Root X1";

    #[test]
    fn finds_pem_der_and_both_bundles_at_their_offsets() {
        let mut image = Vec::new();
        let pem_text = lab_pem("isrg_root_x1");
        let pem_at = put(&mut image, 1001, format!("{pem_text}\0").as_bytes());
        let der = lab_der("r10");
        let der_at = put(&mut image, 777, &der);
        let v44_entries = lab_entries(&["isrg_root_x1", "digicert_global_root_g2", "isrg_root_x2"]);
        let v44 = CertBundle::encode(&v44_entries, BundleFormat::BigEndianV44);
        let v44_at = put(&mut image, 333, &v44);
        let v54_entries =
            lab_entries(&["amazon_root_ca_1", "gts_root_r1", "baltimore_cybertrust_root", "usertrust_rsa"]);
        let v54 = CertBundle::encode(&v54_entries, BundleFormat::OffsetTableV54);
        let v54_at = put(&mut image, 101, &v54);
        put(&mut image, 55, b"https://ota.lab.example/fw.bin\0");
        image.extend(filler(999, 3));

        let items = find_trust(&image);
        let spans: Vec<_> = items.iter().map(|i| (i.offset, i.len)).collect();
        let pem_len = pem_text.trim_end().len();
        assert_eq!(spans, [(pem_at, pem_len), (der_at, der.len()), (v44_at, v44.len()), (v54_at, v54.len())]);

        let TrustKind::Pem(root) = &items[0].kind else { panic!("{:?}", items[0].kind) };
        assert_eq!((root.subject.as_str(), root.issuer.as_str()), (ISRG_X1, ISRG_X1));
        assert_eq!(root.key, KeyKind::Rsa { bits: 4096 });
        assert_eq!(root.sha256, <[u8; 32]>::from(Sha256::digest(lab_der("isrg_root_x1"))));
        assert_eq!(root.signature_algorithm, "sha256WithRSAEncryption");
        assert!(root.is_ca && root.self_signed && root.not_before < root.not_after);
        assert_eq!(
            items.iter().map(|i| i.role).collect::<Vec<_>>(),
            [TrustRole::CaRoot, TrustRole::IntermediateCa, TrustRole::CaRoot, TrustRole::CaRoot]
        );
        let TrustKind::Der(r10) = &items[1].kind else { panic!("{:?}", items[1].kind) };
        assert_eq!((r10.subject.as_str(), r10.issuer.as_str()), ("C=US, O=Let's Encrypt, CN=R10", ISRG_X1));
        assert_eq!(
            (r10.key.clone(), r10.self_signed, r10.sha256),
            (KeyKind::Rsa { bits: 2048 }, false, Sha256::digest(&der).into())
        );

        for (item, format, mut entries) in [
            (&items[2], BundleFormat::BigEndianV44, v44_entries),
            (&items[3], BundleFormat::OffsetTableV54, v54_entries),
        ] {
            entries.sort_by(|a, b| a.subject_der.cmp(&b.subject_der));
            let expected: Vec<_> = entries.iter().map(BundleEntryInfo::from_entry).collect();
            assert_eq!(item.kind, TrustKind::Bundle { format, sorted: true, entries: expected.clone() });
            for (info, entry) in expected.iter().zip(&entries) {
                assert_eq!(info.public_key_sha256, <[u8; 32]>::from(Sha256::digest(&entry.public_key_der)));
                assert_eq!(info.subject_der, entry.subject_der);
            }
        }
        let TrustKind::Bundle { entries, .. } = &items[2].kind else { unreachable!() };
        let subjects: Vec<_> = entries.iter().map(|e| (e.subject.as_str(), e.key.clone())).collect();
        assert!(subjects.contains(&(ISRG_X1, KeyKind::Rsa { bits: 4096 })));
        assert!(subjects.contains(&(
            "C=US, O=Internet Security Research Group, CN=ISRG Root X2",
            KeyKind::Ec { curve: "P-384".into() }
        )));
    }

    #[test]
    fn a_crlf_chain_in_one_string_gives_one_item_per_block() {
        let chain = format!("{}{}", lab_pem("r11"), lab_pem("isrg_root_x1")).replace('\n', "\r\n");
        let image = [&filler(9, 2)[..], chain.as_bytes(), b"\0"].concat();
        let second = 9 + chain.rfind("-----BEGIN").unwrap();
        let subjects: Vec<_> = find_trust(&image)
            .into_iter()
            .map(|item| match item.kind {
                TrustKind::Pem(info) => (item.offset, info.subject),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(subjects, [(9, "C=US, O=Let's Encrypt, CN=R11".to_owned()), (second, ISRG_X1.to_owned())]);
    }

    #[test]
    fn unsorted_bundle_is_reported_with_the_flag_down() {
        let mut entries = lab_entries(&["isrg_root_x1", "amazon_root_ca_1"]);
        entries.sort_by(|a, b| b.subject_der.cmp(&a.subject_der));
        let mut image = filler(17, 1);
        image.extend(CertBundle::encode_in_order(&entries, BundleFormat::BigEndianV44));
        let items = find_trust(&image);
        assert!(matches!(&items[..], [TrustItem { offset: 17, kind: TrustKind::Bundle { sorted: false, .. }, .. }]));
    }

    #[test]
    fn truncated_bundles_hostile_headers_and_cut_certificates_are_not_reported() {
        let entries = lab_entries(&["isrg_root_x1", "digicert_global_root_g2", "gts_root_r1", "e5"]);
        for format in [BundleFormat::BigEndianV44, BundleFormat::OffsetTableV54] {
            let bundle = CertBundle::encode(&entries, format);
            for cut in [3, 9, bundle.len() / 2, bundle.len() - 1] {
                let image = [&filler(33, 5)[..], &bundle[..cut]].concat();
                assert_eq!(find_trust(&image), [], "{format:?} cut at {cut}");
            }
        }
        let mut hostile = CertBundle::encode(&entries, BundleFormat::BigEndianV44);
        hostile[..2].copy_from_slice(&[0xFF, 0xFF]);
        let mut past_end = CertBundle::encode(&entries, BundleFormat::OffsetTableV54);
        past_end[8..12].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        let der = lab_der("gts_ca_1c3");
        let pem_text = lab_pem("gts_ca_1c3");
        let cut_pem = format!("{}\0{}", &pem_text[..200], &pem_text[200..]);
        for image in [hostile, past_end, der[..der.len() - 1].to_vec(), cut_pem.into_bytes()] {
            assert!(
                find_trust(&image)
                    .iter()
                    .all(|item| !matches!(item.kind, TrustKind::Bundle { .. } | TrustKind::Pem(_)))
            );
        }
    }

    #[test]
    fn garbage_and_near_misses_find_nothing() {
        assert_eq!(find_trust(&filler(1 << 20, 99)), []);
        assert_eq!(find_trust(&[]), []);
        let near: Vec<u8> = [0x30u8, 0x82, 0x01, 0x00, 0x30, 0x82, 0x00, 0xF0].repeat(20_000);
        assert_eq!(find_trust(&near), []);
        let begins = "-----BEGIN CERTIFICATE-----\n".repeat(10_000) + "-----END CERTIFICATE-----\n";
        assert_eq!(find_trust(begins.as_bytes()), []);
        let headers: Vec<u8> = [0u8, 1, 0, 0x10, 0, 0x20, 0x30, 0x0E].repeat(20_000);
        assert_eq!(find_trust(&headers), []);
    }

    #[test]
    fn key_kinds_and_self_signature_of_generated_certificates() {
        for (alg, kind) in [
            (&rcgen::PKCS_ED25519, KeyKind::Ed25519),
            (&rcgen::PKCS_ECDSA_P256_SHA256, KeyKind::Ec { curve: "P-256".into() }),
        ] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let cert = rcgen::CertificateParams::new(vec!["lab.test".into()]).unwrap().self_signed(&key).unwrap();
            let info = CertInfo::from_der(cert.der()).unwrap();
            assert_eq!((info.key, info.self_signed), (kind, true));
        }
        // Same subject as issuer but signed by another key: self-issued, not self-signed.
        let x1 = lab_der("isrg_root_x1");
        let mut forged = x1.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(!CertInfo::from_der(&forged).unwrap().self_signed);
        assert!(CertInfo::from_der(&[x1.as_slice(), b"\0"].concat()).is_none());
    }
}
