//! The ESP-IDF certificate bundle (`x509_crt_bundle`, made by `gen_crt_bundle.py`): the subject
//! name and public key of each trusted root, which `esp_crt_bundle_attach` searches by issuer.
//!
//! Two layouts exist. v4.4 to v5.3: `u16 BE count`, then per root `u16 BE name_len, u16 BE
//! key_len, name, key`. v5.4 and later: a table of `u32 LE` offsets from the bundle's start
//! (the first is `4 * count`), then per root `u16 LE name_len, u16 LE key_len, name, key`.
//! Both are sorted by subject DER so the device can binary-search them.

use std::ops::Range;

use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate, X509Name};

/// Which layout a bundle uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BundleFormat {
    /// ESP-IDF v4.4 to v5.3: big-endian `u16` count and lengths.
    BigEndianV44,
    /// ESP-IDF v5.4 and later: little-endian `u32` offset table and `u16` lengths.
    OffsetTableV54,
}

/// One trusted root as the bundle stores it: no validity, no signature, only name and key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BundleEntry {
    /// DER of the certificate's subject `Name` (the device compares issuers with it).
    pub subject_der: Vec<u8>,
    /// DER `SubjectPublicKeyInfo` the device checks signatures with.
    pub public_key_der: Vec<u8>,
}

impl BundleEntry {
    /// The entry `gen_crt_bundle.py` writes for a certificate (its subject and key DER).
    /// A name or key longer than a record's 16-bit length field can say is refused.
    pub fn from_certificate_der(der: &[u8]) -> Result<BundleEntry, BundleError> {
        match X509Certificate::from_der(der) {
            Ok(([], cert)) => {
                let entry = BundleEntry {
                    subject_der: cert.subject().as_raw().to_vec(),
                    public_key_der: cert.public_key().raw.to_vec(),
                };
                for (what, len) in [("name", entry.subject_der.len()), ("key", entry.public_key_der.len())] {
                    if len > usize::from(u16::MAX) {
                        return Err(BundleError::TooLarge { what, len });
                    }
                }
                Ok(entry)
            }
            _ => Err(BundleError::NotACertificate),
        }
    }
}

/// A bundle read from bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertBundle {
    /// The layout the bytes were read as.
    pub format: BundleFormat,
    /// The roots in stored order.
    pub entries: Vec<BundleEntry>,
    /// Whether the roots are in ascending subject order, as the device's binary search needs.
    /// An unsorted bundle still parses; a root past the first out-of-order one may never be found.
    pub sorted: bool,
}

/// Why bytes are not a certificate bundle. Offsets count from the start of the given bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Fewer bytes than a header and one record's lengths.
    #[error("{len} bytes are too few for a bundle header and one record")]
    TooShort {
        /// The bytes given.
        len: usize,
    },
    /// The count (or the offset table) says zero roots.
    #[error("bundle holds no certificates")]
    Empty,
    /// The count's records could not even fit their length fields in the bytes given.
    #[error("count {count} needs at least {needed} bytes, {len} given")]
    CountTooLarge {
        /// The roots the header counts.
        count: usize,
        /// Bytes the header and the records' length fields take.
        needed: usize,
        /// The bytes given.
        len: usize,
    },
    /// A record's lengths run past the end of the bytes.
    #[error("record {index} at offset {offset} ends at {end}, past the end ({len})")]
    Truncated {
        /// The record's position, from 0.
        index: usize,
        /// Where the record starts.
        offset: usize,
        /// Where its lengths say it ends.
        end: usize,
        /// The bytes given.
        len: usize,
    },
    /// A record's name does not read as a DER X.509 `Name`.
    #[error("record {index} at offset {offset}: name is not a DER X.509 name")]
    BadName {
        /// The record's position, from 0.
        index: usize,
        /// Where the record starts.
        offset: usize,
    },
    /// A record's key does not read as a DER `SubjectPublicKeyInfo`.
    #[error("record {index} at offset {offset}: key is not a DER SubjectPublicKeyInfo")]
    BadKey {
        /// The record's position, from 0.
        index: usize,
        /// Where the record starts.
        offset: usize,
    },
    /// The v5.4 offset table's first entry, its own size, is not a whole number of entries.
    #[error("v5.4 offset table size {first} is not a multiple of 4")]
    MisalignedTable {
        /// The first offset, in bytes.
        first: usize,
    },
    /// A v5.4 offset does not point where the record before it ends.
    #[error("offset table entry {index} (at offset {table_offset}) is {got}, expected {expected}")]
    OffsetMismatch {
        /// The entry's position, from 0.
        index: usize,
        /// Where the entry is in the table.
        table_offset: usize,
        /// Where the record would start: right after the one before it.
        expected: usize,
        /// The offset stored.
        got: usize,
    },
    /// Read in either layout, the bytes fail.
    #[error("not a bundle: as v5.4, {v54}; as v4.4, {v44}")]
    NeitherFormat {
        /// Why the v4.4 layout failed.
        v44: Box<BundleError>,
        /// Why the v5.4 layout failed.
        v54: Box<BundleError>,
    },
    /// Bytes given as a certificate for an entry are not a DER X.509 certificate.
    #[error("not a DER certificate")]
    NotACertificate,
    /// A certificate's name or key is longer than a record's 16-bit length field can say.
    #[error("a {what} of {len} bytes is longer than a bundle record can hold (65535)")]
    TooLarge {
        /// `name` or `key`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

/// Bytes before the records: the v4.4 count.
const V44_HEADER: usize = 2;
/// Bytes of a record's two lengths.
pub(super) const RECORD_HEADER: usize = 4;

impl CertBundle {
    /// Reads a bundle at the start of `bytes` in whichever format fits (v5.4 tried first), strictly:
    /// every name must be an X.509 `Name` and every key a `SubjectPublicKeyInfo`, exactly filling
    /// their lengths. Returns the bundle and the number of bytes it takes; bytes after it are ignored.
    pub fn parse(bytes: &[u8]) -> Result<(CertBundle, usize), BundleError> {
        let v54 = match CertBundle::parse_as(bytes, BundleFormat::OffsetTableV54) {
            Ok(found) => return Ok(found),
            Err(err) => err,
        };
        CertBundle::parse_as(bytes, BundleFormat::BigEndianV44)
            .map_err(|v44| BundleError::NeitherFormat { v44: Box::new(v44), v54: Box::new(v54) })
    }

    /// Reads a bundle of a known format at the start of `bytes` (see [`CertBundle::parse`]).
    pub fn parse_as(bytes: &[u8], format: BundleFormat) -> Result<(CertBundle, usize), BundleError> {
        let (entries, used) = match format {
            BundleFormat::BigEndianV44 => parse_v44(bytes)?,
            BundleFormat::OffsetTableV54 => parse_v54(bytes)?,
        };
        let sorted = entries.windows(2).all(|pair| pair[0].subject_der <= pair[1].subject_der);
        Ok((CertBundle { format, entries, sorted }, used))
    }

    /// Writes a bundle as `gen_crt_bundle.py` does: entries sorted by subject DER bytes (a stable
    /// sort, as Python's `sorted`; the script sorts for both formats), then laid out in `format`.
    ///
    /// # Panics
    /// If a name or key is longer than 65535 bytes, or (v4.4) there are more than 65535 entries;
    /// the script would fail on those too.
    pub fn encode(entries: &[BundleEntry], format: BundleFormat) -> Vec<u8> {
        let mut sorted: Vec<&BundleEntry> = entries.iter().collect();
        sorted.sort_by(|a, b| a.subject_der.cmp(&b.subject_der));
        encode_records(&sorted, format)
    }

    /// Writes a bundle with the entries in the given order: for lab firmware whose bundle is
    /// deliberately unsorted (see [`CertBundle::sorted`]), and to check a parse round-trips.
    /// Panics as [`CertBundle::encode`] does.
    pub(crate) fn encode_in_order(entries: &[BundleEntry], format: BundleFormat) -> Vec<u8> {
        let in_order: Vec<&BundleEntry> = entries.iter().collect();
        encode_records(&in_order, format)
    }
}

fn parse_v44(bytes: &[u8]) -> Result<(Vec<BundleEntry>, usize), BundleError> {
    if bytes.len() < V44_HEADER + RECORD_HEADER {
        return Err(BundleError::TooShort { len: bytes.len() });
    }
    let count = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    if count == 0 {
        return Err(BundleError::Empty);
    }
    let needed = V44_HEADER + count * RECORD_HEADER;
    if needed > bytes.len() {
        return Err(BundleError::CountTooLarge { count, needed, len: bytes.len() });
    }
    // No capacity from `count`: entries grow only as records actually parse.
    let mut entries = Vec::new();
    let mut at = V44_HEADER;
    for index in 0..count {
        let (entry, end) = read_record(bytes, index, at, BundleFormat::BigEndianV44)?;
        entries.push(entry);
        at = end;
    }
    Ok((entries, at))
}

fn parse_v54(bytes: &[u8]) -> Result<(Vec<BundleEntry>, usize), BundleError> {
    if bytes.len() < 4 + RECORD_HEADER {
        return Err(BundleError::TooShort { len: bytes.len() });
    }
    let table_entry = |index: usize| {
        let at = index * 4;
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    };
    let first = table_entry(0);
    if first == 0 {
        return Err(BundleError::Empty);
    }
    if !first.is_multiple_of(4) {
        return Err(BundleError::MisalignedTable { first });
    }
    let count = first / 4;
    let needed = first.saturating_add(count.saturating_mul(RECORD_HEADER));
    if needed > bytes.len() {
        return Err(BundleError::CountTooLarge { count, needed, len: bytes.len() });
    }
    let mut entries = Vec::new();
    let mut at = first;
    for index in 0..count {
        let got = table_entry(index);
        if got != at {
            return Err(BundleError::OffsetMismatch { index, table_offset: index * 4, expected: at, got });
        }
        let (entry, end) = read_record(bytes, index, at, BundleFormat::OffsetTableV54)?;
        entries.push(entry);
        at = end;
    }
    Ok((entries, at))
}

/// Reads a `u16` in the format's byte order.
fn read_u16(bytes: &[u8], at: usize, format: BundleFormat) -> Option<usize> {
    let pair = [*bytes.get(at)?, *bytes.get(at + 1)?];
    Some(usize::from(match format {
        BundleFormat::BigEndianV44 => u16::from_be_bytes(pair),
        BundleFormat::OffsetTableV54 => u16::from_le_bytes(pair),
    }))
}

/// One record at `at`: lengths, name, key; returns it and its end.
fn read_record(
    bytes: &[u8],
    index: usize,
    at: usize,
    format: BundleFormat,
) -> Result<(BundleEntry, usize), BundleError> {
    let (name, key) = check_record(bytes, index, at, format)?;
    Ok((BundleEntry { subject_der: bytes[name].to_vec(), public_key_der: bytes[key.clone()].to_vec() }, key.end))
}

fn check_record(
    bytes: &[u8],
    index: usize,
    at: usize,
    format: BundleFormat,
) -> Result<(Range<usize>, Range<usize>), BundleError> {
    let len = bytes.len();
    let (Some(name_len), Some(key_len)) = (read_u16(bytes, at, format), read_u16(bytes, at + 2, format)) else {
        return Err(BundleError::Truncated { index, offset: at, end: at + RECORD_HEADER, len });
    };
    let name = at + RECORD_HEADER..at + RECORD_HEADER + name_len;
    let key = name.end..name.end + key_len;
    if key.end > len {
        return Err(BundleError::Truncated { index, offset: at, end: key.end, len });
    }
    if !matches!(X509Name::from_der(&bytes[name.clone()]), Ok((rest, _)) if rest.is_empty()) {
        return Err(BundleError::BadName { index, offset: at });
    }
    if !matches!(SubjectPublicKeyInfo::from_der(&bytes[key.clone()]), Ok((rest, _)) if rest.is_empty()) {
        return Err(BundleError::BadKey { index, offset: at });
    }
    Ok((name, key))
}

/// Whether a record's name at `at` looks right from its DER header alone (for scanning).
pub(super) fn plausible_record(bytes: &[u8], at: usize, format: BundleFormat) -> bool {
    let name_len = read_u16(bytes, at, format);
    name_len.is_some() && bytes.get(at + RECORD_HEADER..).and_then(sequence_len) == name_len
}

/// The end of a valid record at `at`, alone (for scanning past the records of a damaged bundle).
pub(super) fn record_end(bytes: &[u8], at: usize, format: BundleFormat) -> Option<usize> {
    let key_at = at + RECORD_HEADER + read_u16(bytes, at, format)?;
    if !plausible_record(bytes, at, format)
        || bytes.get(key_at..).and_then(sequence_len) != read_u16(bytes, at + 2, format)
    {
        return None;
    }
    check_record(bytes, 0, at, format).ok().map(|(_, key)| key.end)
}

/// The whole length of a DER SEQUENCE at the start of `bytes`, from its header alone.
fn sequence_len(bytes: &[u8]) -> Option<usize> {
    match *bytes.get(..4)? {
        [0x30, len, ..] if len < 0x80 => Some(2 + usize::from(len)),
        [0x30, 0x81, len, _] => Some(3 + usize::from(len)),
        [0x30, 0x82, hi, lo] => Some(4 + usize::from(u16::from_be_bytes([hi, lo]))),
        _ => None,
    }
}

// Invariant for the panics below: entries come from `BundleEntry::from_certificate_der` or a
// parsed bundle, both of which bound names and keys to 16 bits, and a bundle holds a fleet's
// trusted authorities (tens, each a committed lab certificate), far from 65535 or 4 GiB.
#[allow(clippy::panic, clippy::expect_used)]
fn encode_records(entries: &[&BundleEntry], format: BundleFormat) -> Vec<u8> {
    let length =
        |n: usize, what: &str| u16::try_from(n).unwrap_or_else(|_| panic!("bundle {what} of {n} bytes exceeds u16"));
    let mut records = Vec::new();
    let mut starts = Vec::with_capacity(entries.len());
    for entry in entries {
        starts.push(records.len());
        let name_len = length(entry.subject_der.len(), "name");
        let key_len = length(entry.public_key_der.len(), "key");
        match format {
            BundleFormat::BigEndianV44 => {
                records.extend_from_slice(&name_len.to_be_bytes());
                records.extend_from_slice(&key_len.to_be_bytes());
            }
            BundleFormat::OffsetTableV54 => {
                records.extend_from_slice(&name_len.to_le_bytes());
                records.extend_from_slice(&key_len.to_le_bytes());
            }
        }
        records.extend_from_slice(&entry.subject_der);
        records.extend_from_slice(&entry.public_key_der);
    }
    let mut out = Vec::new();
    match format {
        BundleFormat::BigEndianV44 => {
            let count = u16::try_from(entries.len()).expect("a v4.4 bundle holds at most 65535 entries");
            out.extend_from_slice(&count.to_be_bytes());
        }
        BundleFormat::OffsetTableV54 => {
            let table = 4 * entries.len();
            for start in starts {
                let offset = u32::try_from(table + start).expect("bundle larger than 4 GiB");
                out.extend_from_slice(&offset.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&records);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_entry(name: &str) -> BundleEntry {
        let path = format!("{}/scenarios/pki/certs/{name}.pem", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        BundleEntry::from_certificate_der(pem::parse(text).unwrap().contents()).unwrap()
    }

    fn lab_entries() -> Vec<BundleEntry> {
        ["isrg_root_x1", "digicert_global_root_g2", "amazon_root_ca_1", "isrg_root_x2", "baltimore_cybertrust_root"]
            .into_iter()
            .map(lab_entry)
            .collect()
    }

    #[test]
    fn both_formats_round_trip_sorted() {
        let entries = lab_entries();
        let mut expected = entries.clone();
        expected.sort_by(|a, b| a.subject_der.cmp(&b.subject_der));
        for format in [BundleFormat::BigEndianV44, BundleFormat::OffsetTableV54] {
            let mut bytes = CertBundle::encode(&entries, format);
            let len = bytes.len();
            bytes.extend_from_slice(b"\xff\xfftrailing");
            let (bundle, used) = CertBundle::parse(&bytes).unwrap();
            assert_eq!((bundle.format, used, bundle.sorted), (format, len, true));
            assert_eq!(bundle.entries, expected);
        }
    }

    #[test]
    fn layouts_are_as_gen_crt_bundle_writes_them() {
        let one = lab_entry("isrg_root_x1");
        let (name, key) = (one.subject_der.len(), one.public_key_der.len());
        let v44 = CertBundle::encode(std::slice::from_ref(&one), BundleFormat::BigEndianV44);
        assert_eq!(v44[..6], [0, 1, (name >> 8) as u8, name as u8, (key >> 8) as u8, key as u8]);
        let v54 = CertBundle::encode(&[one.clone(), one], BundleFormat::OffsetTableV54);
        let second = 8 + 4 + name + key;
        assert_eq!(v54[..8], [8, 0, 0, 0, second as u8, (second >> 8) as u8, 0, 0]);
        assert_eq!(v54[8..12], [name as u8, (name >> 8) as u8, key as u8, (key >> 8) as u8]);
    }

    #[test]
    fn unsorted_bundle_parses_with_the_flag_down() {
        let mut entries = lab_entries();
        entries.sort_by(|a, b| b.subject_der.cmp(&a.subject_der));
        for format in [BundleFormat::BigEndianV44, BundleFormat::OffsetTableV54] {
            let (bundle, _) = CertBundle::parse(&CertBundle::encode_in_order(&entries, format)).unwrap();
            assert!(!bundle.sorted);
            assert_eq!(bundle.entries, entries);
        }
    }

    #[test]
    fn hostile_counts_and_offsets_are_refused_without_allocating() {
        let v44 = |count: u16| [&count.to_be_bytes()[..], &[0u8; 30]].concat();
        assert!(matches!(
            CertBundle::parse_as(&v44(0xFFFF), BundleFormat::BigEndianV44),
            Err(BundleError::CountTooLarge { count: 65535, .. })
        ));
        assert!(matches!(CertBundle::parse_as(&v44(0), BundleFormat::BigEndianV44), Err(BundleError::Empty)));
        let v54 = |first: u32| [&first.to_le_bytes()[..], &[0u8; 30]].concat();
        assert!(matches!(
            CertBundle::parse_as(&v54(0xFFFF_FFFC), BundleFormat::OffsetTableV54),
            Err(BundleError::CountTooLarge { .. })
        ));
        assert!(matches!(
            CertBundle::parse_as(&v54(6), BundleFormat::OffsetTableV54),
            Err(BundleError::MisalignedTable { first: 6 })
        ));
        // A good v5.4 bundle whose second offset points past the end.
        let mut bytes = CertBundle::encode(&lab_entries()[..2], BundleFormat::OffsetTableV54);
        bytes[4..8].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        assert!(matches!(CertBundle::parse(&bytes), Err(BundleError::NeitherFormat { .. })));
        assert!(matches!(
            CertBundle::parse_as(&bytes, BundleFormat::OffsetTableV54),
            Err(BundleError::OffsetMismatch { index: 1, .. })
        ));
        for len in [0, 1, 5, 7] {
            assert!(CertBundle::parse(&vec![1u8; len]).is_err());
        }
    }

    #[test]
    fn every_truncation_and_a_corrupted_name_are_errors() {
        for format in [BundleFormat::BigEndianV44, BundleFormat::OffsetTableV54] {
            let bytes = CertBundle::encode(&lab_entries(), format);
            for cut in 0..bytes.len() {
                assert!(CertBundle::parse_as(&bytes[..cut], format).is_err(), "{format:?} cut at {cut}");
            }
            let mut bad = bytes.clone();
            let record = if format == BundleFormat::BigEndianV44 { 2 } else { 4 * 5 };
            bad[record + 4] = 0x31; // the first name's SEQUENCE tag
            assert!(matches!(CertBundle::parse_as(&bad, format), Err(BundleError::BadName { index: 0, .. })));
        }
    }

    #[test]
    fn garbage_never_parses() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut garbage = vec![0u8; 4096];
        for byte in &mut garbage {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        for start in 0..garbage.len() {
            assert!(CertBundle::parse(&garbage[start..]).is_err());
        }
    }
}
