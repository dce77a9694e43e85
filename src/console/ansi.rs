//! Terminal escape codes: ESP-IDF colours its log lines (`ESC[0;31m` … `ESC[0m`), and serial
//! monitors add their own. Evidence is quoted without them.

use memchr::memchr;

const ESC: u8 = 0x1b;

/// Returns `line` without escape sequences, using `scratch` only when there is one to remove.
pub(crate) fn strip<'a>(line: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let Some(first) = memchr(ESC, line) else {
        return line;
    };
    scratch.clear();
    scratch.extend_from_slice(&line[..first]);
    let mut rest = &line[first..];
    while let Some(esc) = memchr(ESC, rest) {
        scratch.extend_from_slice(&rest[..esc]);
        rest = &rest[esc + sequence_len(&rest[esc..])..];
    }
    scratch.extend_from_slice(rest);
    scratch
}

/// Length of the escape sequence at the start of `seq` (which starts with ESC).
fn sequence_len(seq: &[u8]) -> usize {
    match seq.get(1) {
        // CSI: parameters and intermediates, then one final byte in 0x40..=0x7e.
        Some(b'[') => seq[2..].iter().position(|b| (0x40..=0x7e).contains(b)).map_or(seq.len(), |end| end + 3),
        // OSC: ends at BEL or at ESC '\'.
        Some(b']') => {
            let body = &seq[2..];
            match body.iter().position(|&b| b == 0x07 || b == ESC) {
                Some(end) if body[end] == 0x07 => end + 3,
                Some(end) if body.get(end + 1) == Some(&b'\\') => end + 4,
                Some(end) => end + 2,
                None => seq.len(),
            }
        }
        // Any other two-byte sequence, or a lone ESC at the end.
        Some(_) => 2,
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expect: &str) {
        let mut scratch = Vec::new();
        assert_eq!(String::from_utf8_lossy(strip(input, &mut scratch)), expect);
    }

    #[test]
    fn removes_esp_idf_colours() {
        check(b"\x1b[0;31mE (7513) esp-tls: x\x1b[0m", "E (7513) esp-tls: x");
        check(b"\x1b[0m", "");
        check(b"plain", "plain");
    }

    #[test]
    fn removes_other_sequences_and_survives_truncated_ones() {
        check(b"a\x1b]0;title\x07b", "ab");
        check(b"a\x1b]0;t\x1b\\b", "ab");
        check(b"a\x1b[1;", "a");
        check(b"a\x1b", "a");
        check(b"a\x1bcb", "ab");
    }
}
