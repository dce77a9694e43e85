//! Just enough DER to walk a private key found among firmware bytes and to write the
//! `SubjectPublicKeyInfo` of its public half: one TLV at a time, lengths bounded by the input.

use std::borrow::Cow;

use x509_parser::oid_registry::Oid;

pub(super) const INTEGER: u8 = 0x02;
pub(super) const BIT_STRING: u8 = 0x03;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const NULL: u8 = 0x05;
pub(super) const OID: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
/// `[0]` and `[1]`, constructed (EXPLICIT tagging).
pub(super) const CONTEXT_0: u8 = 0xA0;
pub(super) const CONTEXT_1: u8 = 0xA1;
/// `[1]`, primitive (IMPLICIT tagging of a BIT STRING).
pub(super) const CONTEXT_1_PRIMITIVE: u8 = 0x81;

/// One tag-length-value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// Bytes the whole TLV takes: header and content.
    pub len: usize,
}

impl<'a> Tlv<'a> {
    /// The bytes of the whole TLV, given the slice it was read from.
    pub fn raw(&self, from: &'a [u8]) -> &'a [u8] {
        &from[..self.len]
    }
}

/// The TLV at the start of `bytes`: a one-byte tag and a definite length of at most four
/// bytes, the content within `bytes`.
pub(super) fn tlv(bytes: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if !(1..=4).contains(&count) {
            return None;
        }
        let (digits, rest) = rest.split_at_checked(count)?;
        (digits.iter().fold(0usize, |len, &d| (len << 8) | usize::from(d)), rest)
    };
    let content = rest.get(..len)?;
    Some(Tlv { tag, content, len: bytes.len() - rest.len() + len })
}

/// The TLVs that fill `content` exactly, in order; `None` when its bytes are not a series of
/// TLVs.
pub(super) fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut found = Vec::new();
    while !content.is_empty() {
        let next = tlv(content)?;
        content = &content[next.len..];
        found.push(next);
    }
    Some(found)
}

/// A TLV with `tag` around `parts`, laid end to end.
pub(super) fn encode(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let digits: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&d| d == 0).collect();
        out.push(0x80 | digits.len() as u8);
        out.extend_from_slice(&digits);
    }
    parts.iter().for_each(|p| out.extend_from_slice(p));
    out
}

/// Bits of an unsigned big-endian number, counted from its most significant set bit (an RSA
/// modulus's size).
pub(super) fn unsigned_bits(number: &[u8]) -> usize {
    let skip = number.iter().take_while(|b| **b == 0).count();
    match number.get(skip) {
        Some(first) => (number.len() - skip) * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// An OID's content bytes in dotted form (`1.2.840.10045.3.1.7`).
pub(super) fn oid_string(content: &[u8]) -> String {
    if content.is_empty() {
        return String::new();
    }
    Oid::new(Cow::Borrowed(content)).to_id_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths_read_and_write_alike() {
        for len in [0usize, 5, 0x7F, 0x80, 0xFF, 0x100, 0x1_0000] {
            let content = vec![7u8; len];
            let bytes = encode(OCTET_STRING, &[&content]);
            let read = tlv(&bytes).expect("a TLV");
            assert_eq!((read.tag, read.content.len(), read.len), (OCTET_STRING, len, bytes.len()));
        }
    }

    #[test]
    fn lengths_past_the_input_or_indefinite_are_refused() {
        assert_eq!(tlv(&[]), None);
        assert_eq!(tlv(&[0x30]), None);
        assert_eq!(tlv(&[0x30, 0x03, 1, 2]), None);
        assert_eq!(tlv(&[0x30, 0x80, 0, 0]), None, "indefinite length");
        assert_eq!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None, "five length bytes");
        assert_eq!(tlv(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(children(&[0x02, 0x01, 0x00, 0x02]), None, "a trailing byte");
        assert_eq!(children(&[0x02, 0x01, 0x00, 0x05, 0x00]).map(|c| c.len()), Some(2));
    }

    #[test]
    fn numbers_and_oids() {
        assert_eq!(unsigned_bits(&[0x00, 0xC0, 0x00]), 16);
        assert_eq!(unsigned_bits(&[0x01]), 1);
        assert_eq!(unsigned_bits(&[0, 0]), 0);
        assert_eq!(oid_string(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]), "1.2.840.10045.3.1.7");
        assert_eq!(oid_string(&[]), "");
    }
}
