//! Private keys inside firmware bytes: PEM blocks (`PRIVATE KEY`, `RSA PRIVATE KEY`,
//! `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`) and DER keys (PKCS#8, PKCS#1, SEC1) whose whole
//! structure reads. A key in a firmware is the device's identity for mutual TLS, and anyone
//! holding the image holds it; what is kept is where it is and what kind of key it is, never
//! the key.

use memchr::memmem;
use sha2::{Digest, Sha256};

use super::KeyKind;
use super::der::{
    self, BIT_STRING, CONTEXT_0, CONTEXT_1, CONTEXT_1_PRIMITIVE, INTEGER, NULL, OCTET_STRING, OID, SEQUENCE, Tlv,
};
use super::pem_blocks::pem_blocks;
use super::trust::curve_name;

/// How a key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyForm {
    /// A `-----BEGIN ... PRIVATE KEY-----` block.
    Pem,
    /// Raw DER bytes.
    Der,
}

/// Which structure holds the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (PEM `PRIVATE KEY`): any algorithm.
    Pkcs8,
    /// PKCS#8 `EncryptedPrivateKeyInfo` (PEM `ENCRYPTED PRIVATE KEY`).
    EncryptedPkcs8,
    /// PKCS#1 `RSAPrivateKey` (PEM `RSA PRIVATE KEY`).
    Pkcs1,
    /// SEC1 `ECPrivateKey` (PEM `EC PRIVATE KEY`).
    Sec1,
}

/// A private key and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateKeyItem {
    /// Offset of its first byte (`-----BEGIN`, the DER `SEQUENCE`).
    pub offset: usize,
    /// Bytes it takes (a PEM block through its END line).
    pub len: usize,
    /// PEM text or raw DER.
    pub form: KeyForm,
    /// The structure that holds the key.
    pub format: KeyFormat,
    /// Encrypted (PKCS#8 encryption, or a legacy PEM `Proc-Type: 4,ENCRYPTED` header).
    pub encrypted: bool,
    /// The kind and size of the key; `None` when it is encrypted or its contents do not read.
    pub key: Option<KeyKind>,
    /// SHA-256 of the `SubjectPublicKeyInfo` of its public half, when the key holds that half
    /// (RSA keys do; EC keys when they carry their public point): a certificate with the same
    /// [`CertInfo::public_key_sha256`](super::CertInfo::public_key_sha256) is its certificate.
    pub public_key_sha256: Option<[u8; 32]>,
}

/// Every private key in `bytes`, in offset order. Never fails, never panics: bytes that are not
/// a key are skipped.
pub fn find_private_keys(bytes: &[u8]) -> Vec<PrivateKeyItem> {
    let mut keys = find_pem_keys(bytes);
    keys.extend(find_der_keys(bytes));
    keys.sort_by_key(|k| k.offset);
    keys
}

fn find_pem_keys(bytes: &[u8]) -> Vec<PrivateKeyItem> {
    let mut keys = Vec::new();
    for block in pem_blocks(bytes) {
        let format = match block.pem.tag() {
            "PRIVATE KEY" => KeyFormat::Pkcs8,
            "ENCRYPTED PRIVATE KEY" => KeyFormat::EncryptedPkcs8,
            "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
            "EC PRIVATE KEY" => KeyFormat::Sec1,
            _ => continue,
        };
        let legacy_encrypted = block.pem.headers().get("Proc-Type").is_some_and(|v| v.ends_with("ENCRYPTED"));
        let encrypted = legacy_encrypted || format == KeyFormat::EncryptedPkcs8;
        let facts = if encrypted { None } else { read_key(format, block.pem.contents(), true) };
        keys.push(PrivateKeyItem {
            offset: block.offset,
            len: block.len,
            form: KeyForm::Pem,
            format,
            encrypted,
            key: facts.as_ref().map(|f| f.key.clone()),
            public_key_sha256: facts.and_then(|f| f.spki).map(|spki| Sha256::digest(spki).into()),
        });
    }
    keys
}

/// DER keys: a `SEQUENCE` whose first element is the version `INTEGER` (0 or 1) followed by
/// what PKCS#8 (`SEQUENCE`), PKCS#1 (`INTEGER`) or SEC1 (`OCTET STRING`) puts next, and whose
/// whole structure then reads with a key algorithm and size the rig knows.
fn find_der_keys(bytes: &[u8]) -> Vec<PrivateKeyItem> {
    let mut keys = Vec::new();
    let mut resume = 0;
    for hit in memmem::find_iter(bytes, b"\x02\x01") {
        let (Some(&version), Some(&next)) = (bytes.get(hit + 2), bytes.get(hit + 3)) else { break };
        let format = match (version, next) {
            (0 | 1, SEQUENCE) => KeyFormat::Pkcs8,
            (0, INTEGER) => KeyFormat::Pkcs1,
            (1, OCTET_STRING) => KeyFormat::Sec1,
            _ => continue,
        };
        if hit < resume {
            continue;
        }
        // The SEQUENCE header before the version: 2, 3 or 4 bytes.
        let found = (2..=4).filter_map(|header| hit.checked_sub(header)).find_map(|start| {
            let outer =
                der::tlv(&bytes[start..]).filter(|t| t.tag == SEQUENCE && t.len - t.content.len() == hit - start)?;
            read_key(format, outer.raw(&bytes[start..]), false).map(|facts| (start, outer.len, facts))
        });
        if let Some((offset, len, facts)) = found {
            keys.push(PrivateKeyItem {
                offset,
                len,
                form: KeyForm::Der,
                format,
                encrypted: false,
                key: Some(facts.key),
                public_key_sha256: facts.spki.map(|spki| Sha256::digest(spki).into()),
            });
            resume = offset + len;
        }
    }
    keys
}

/// What a readable key says: its kind, and its public half as a `SubjectPublicKeyInfo`.
struct KeyFacts {
    key: KeyKind,
    spki: Option<Vec<u8>>,
}

const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const ED25519: &[u8] = &[0x2B, 0x65, 0x70];
const ED448: &[u8] = &[0x2B, 0x65, 0x71];

/// Reads a whole DER key of `format`. `lenient` (PEM, whose label already says it is a key)
/// also accepts algorithms and curves the rig cannot name.
fn read_key(format: KeyFormat, der: &[u8], lenient: bool) -> Option<KeyFacts> {
    let outer = der::tlv(der).filter(|t| t.tag == SEQUENCE && t.len == der.len())?;
    let fields = der::children(outer.content)?;
    match format {
        KeyFormat::Pkcs8 => read_pkcs8(&fields, lenient),
        KeyFormat::Pkcs1 => read_pkcs1(&fields),
        KeyFormat::Sec1 => read_sec1(&fields, None, lenient),
        KeyFormat::EncryptedPkcs8 => None,
    }
}

/// `PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey,
/// [0] attributes OPTIONAL, [1] publicKey OPTIONAL }` (RFC 5208, RFC 5958).
fn read_pkcs8(fields: &[Tlv<'_>], lenient: bool) -> Option<KeyFacts> {
    let [version, algorithm, private, rest @ ..] = fields else { return None };
    if version.tag != INTEGER || !matches!(version.content, [0 | 1]) || private.tag != OCTET_STRING {
        return None;
    }
    let algorithm = der::children(algorithm.content).filter(|_| algorithm.tag == SEQUENCE)?;
    let (oid, params) = match algorithm.as_slice() {
        [oid, rest @ ..] if oid.tag == OID && rest.len() <= 1 => (oid.content, rest.first()),
        _ => return None,
    };
    let public = rest.iter().find(|t| t.tag == CONTEXT_1_PRIMITIVE).map(|t| t.content);
    let inner = der::tlv(private.content).filter(|t| t.len == private.content.len())?;
    match oid {
        RSA_ENCRYPTION => read_pkcs1(&der::children(inner.content).filter(|_| inner.tag == SEQUENCE)?),
        EC_PUBLIC_KEY => {
            let curve = params.filter(|p| p.tag == OID).map(|p| p.content);
            read_sec1(&der::children(inner.content).filter(|_| inner.tag == SEQUENCE)?, curve, lenient)
        }
        ED25519 | ED448 => {
            let (key, size) = if oid == ED25519 { (KeyKind::Ed25519, 32) } else { (KeyKind::Ed448, 57) };
            if inner.tag != OCTET_STRING || inner.content.len() != size {
                return None;
            }
            let spki = public.map(|bits| spki(&der::encode(SEQUENCE, &[&der::encode(OID, &[oid])]), bits));
            Some(KeyFacts { key, spki })
        }
        other if lenient => Some(KeyFacts { key: KeyKind::Other { oid: der::oid_string(other) }, spki: None }),
        _ => None,
    }
}

/// `RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dP, dQ, qInv, otherPrimeInfos
/// OPTIONAL }` (RFC 8017).
fn read_pkcs1(fields: &[Tlv<'_>]) -> Option<KeyFacts> {
    let (integers, rest) = fields.split_at_checked(9)?;
    if !integers.iter().all(|t| t.tag == INTEGER) || !matches!(integers[0].content, [0 | 1]) || rest.len() > 1 {
        return None;
    }
    let (n, e) = (&integers[1], &integers[2]);
    let bits = der::unsigned_bits(n.content);
    if bits < 512 {
        return None;
    }
    let public = der::encode(SEQUENCE, &[&der::encode(INTEGER, &[n.content]), &der::encode(INTEGER, &[e.content])]);
    let algorithm = der::encode(SEQUENCE, &[&der::encode(OID, &[RSA_ENCRYPTION]), &[NULL, 0]]);
    let bits_content = [&[0u8][..], &public].concat();
    Some(KeyFacts { key: KeyKind::Rsa { bits }, spki: Some(spki(&algorithm, &bits_content)) })
}

/// `ECPrivateKey ::= SEQUENCE { version 1, OCTET STRING privateKey, [0] parameters OPTIONAL,
/// [1] publicKey OPTIONAL }` (RFC 5915). `curve` is the OID PKCS#8 gives around it.
fn read_sec1(fields: &[Tlv<'_>], curve: Option<&[u8]>, lenient: bool) -> Option<KeyFacts> {
    let [version, private, rest @ ..] = fields else { return None };
    if version.tag != INTEGER || version.content != [1] || private.tag != OCTET_STRING || rest.len() > 2 {
        return None;
    }
    let explicit = |tag: u8, inner: u8| {
        rest.iter().find(|t| t.tag == tag).and_then(|t| der::tlv(t.content)).filter(|t| t.tag == inner)
    };
    let curve = explicit(CONTEXT_0, OID).map(|t| t.content).or(curve);
    let named = curve.map(|oid| curve_name(&der::oid_string(oid)));
    let size = named.as_deref().and_then(curve_size);
    if !lenient && size != Some(private.content.len()) {
        return None;
    }
    let public = explicit(CONTEXT_1, BIT_STRING).map(|t| t.content);
    let spki = curve.zip(public).map(|(curve, bits)| {
        let algorithm = der::encode(SEQUENCE, &[&der::encode(OID, &[EC_PUBLIC_KEY]), &der::encode(OID, &[curve])]);
        spki(&algorithm, bits)
    });
    Some(KeyFacts { key: KeyKind::Ec { curve: named.unwrap_or_else(|| "unnamed".into()) }, spki })
}

/// Private key bytes of the curves the rig names.
fn curve_size(curve: &str) -> Option<usize> {
    match curve {
        "P-256" | "secp256k1" => Some(32),
        "P-384" => Some(48),
        "P-521" => Some(66),
        _ => None,
    }
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }`, the bit string's
/// content (unused-bits byte first) as given.
fn spki(algorithm: &[u8], bit_string_content: &[u8]) -> Vec<u8> {
    der::encode(SEQUENCE, &[algorithm, &der::encode(BIT_STRING, &[bit_string_content])])
}

#[cfg(test)]
mod tests;
