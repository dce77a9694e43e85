//! PEM blocks inside firmware bytes, as `EMBED_TXTFILES` stores them: text between a
//! `-----BEGIN X-----` line and its `-----END X-----` line, in one C string.

use memchr::memmem;

const BEGIN: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";
/// Labels are short (`CERTIFICATE`, `ENCRYPTED PRIVATE KEY`); a longer one is no label.
const MAX_LABEL_LEN: usize = 64;

/// One PEM block and where its text is.
#[derive(Debug)]
pub(super) struct PemBlock {
    /// Offset of `-----BEGIN`.
    pub offset: usize,
    /// Bytes through the END line's last dash.
    pub len: usize,
    pub pem: pem::Pem,
}

/// Every PEM block in `bytes` that the `pem` crate reads, in offset order. A block is text
/// only (a NUL or other binary byte ends the string it is in) and ends before the next BEGIN
/// (one cut off is skipped), so each byte is looked at a bounded number of times.
pub(super) fn pem_blocks(bytes: &[u8]) -> Vec<PemBlock> {
    let begins: Vec<usize> = memmem::find_iter(bytes, BEGIN).collect();
    let mut blocks = Vec::new();
    for (i, &begin) in begins.iter().enumerate() {
        let limit = begins.get(i + 1).copied().unwrap_or(bytes.len());
        let region = &bytes[begin..limit];
        let text_len =
            region.iter().position(|b| !(b.is_ascii_graphic() || b.is_ascii_whitespace())).unwrap_or(region.len());
        let text = &region[..text_len];
        let Some(label) = label(text) else { continue };
        let end_line = [b"-----END ", label, DASHES].concat();
        let Some(end) = memmem::find(text, &end_line) else { continue };
        let block = &text[..end + end_line.len()];
        if let Ok(pem) = pem::parse(block) {
            blocks.push(PemBlock { offset: begin, len: block.len(), pem });
        }
    }
    blocks
}

/// The label of the BEGIN line `text` starts with.
fn label(text: &[u8]) -> Option<&[u8]> {
    let rest = text.strip_prefix(BEGIN)?;
    let end = memmem::find(&rest[..rest.len().min(MAX_LABEL_LEN + DASHES.len())], DASHES)?;
    let label = &rest[..end];
    (!label.is_empty() && label.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b' '))
        .then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(bytes: &[u8]) -> Vec<(usize, usize, String)> {
        pem_blocks(bytes).into_iter().map(|b| (b.offset, b.len, b.pem.tag().to_owned())).collect()
    }

    #[test]
    fn blocks_of_any_label_in_strings() {
        let key = "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----";
        let cert = "-----BEGIN CERTIFICATE-----\r\nMAA=\r\n-----END CERTIFICATE-----";
        let bytes = [b"\x01\x02", key.as_bytes(), b"\n\0\xff", cert.as_bytes(), b"\0"].concat();
        assert_eq!(
            found(&bytes),
            [(2, key.len(), "EC PRIVATE KEY".into()), (key.len() + 5, cert.len(), "CERTIFICATE".into())]
        );
    }

    #[test]
    fn cut_mismatched_and_split_blocks_are_skipped() {
        let cut = "-----BEGIN CERTIFICATE-----\nMAA=\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----";
        assert_eq!(found(cut.as_bytes()), [(33, 58, "CERTIFICATE".into())]);
        assert_eq!(found(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END PRIVATE KEY-----"), []);
        assert_eq!(found(b"-----BEGIN CERTIFICATE-----\nMA\0A=\n-----END CERTIFICATE-----"), []);
        assert_eq!(found(b"-----BEGIN certificate-----\nMAA=\n-----END certificate-----"), []);
        let long = format!("-----BEGIN {}-----\nMAA=\n-----END {0}-----", "A".repeat(MAX_LABEL_LEN + 1));
        assert_eq!(found(long.as_bytes()), []);
        assert_eq!(found(b""), []);
    }

    #[test]
    fn many_begins_without_an_end_are_linear() {
        let begins = "-----BEGIN CERTIFICATE-----\n".repeat(100_000) + "-----END CERTIFICATE-----\n";
        assert_eq!(found(begins.as_bytes()).len(), 1, "only the last BEGIN has its END");
    }
}
