//! Bytes from a UART → lines.
//!
//! CR, LF and CRLF each end one line (a CRLF split across two reads still counts once). Bytes
//! are kept as bytes until a line is complete, so UTF-8 split across reads needs no special
//! care. A line longer than [`MAX_LINE_BYTES`] is cut there and marked; the rest of it is
//! dropped, so memory stays bounded whatever the input.

use memchr::memchr2;

/// The longest line kept; ESP-IDF's own log buffer is far smaller.
pub const MAX_LINE_BYTES: usize = 4096;

/// One complete line, without its terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawLine<'a> {
    /// Line number, counted from 1.
    pub number: u64,
    pub bytes: &'a [u8],
    /// The line was longer than [`MAX_LINE_BYTES`] and was cut.
    pub truncated: bool,
}

/// Splits a byte stream into lines; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    partial_truncated: bool,
    has_partial: bool,
    pending_cr: bool,
    lines_emitted: u64,
}

impl LineSplitter {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of lines emitted so far.
    pub fn lines(&self) -> u64 {
        self.lines_emitted
    }

    /// Feeds the next bytes; `on_line` is called for every line they complete.
    pub fn feed(&mut self, mut input: &[u8], mut on_line: impl FnMut(RawLine<'_>)) {
        if self.pending_cr {
            self.pending_cr = false;
            if let Some((&b'\n', rest)) = input.split_first() {
                input = rest;
            }
        }
        while let Some(end) = memchr2(b'\n', b'\r', input) {
            let body = &input[..end];
            let after = if input[end] == b'\r' {
                match input.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        self.pending_cr = true;
                        end + 1
                    }
                }
            } else {
                end + 1
            };
            if self.has_partial {
                self.append_partial(body);
                self.emit_partial(&mut on_line);
            } else {
                self.lines_emitted += 1;
                let truncated = body.len() > MAX_LINE_BYTES;
                let bytes = if truncated { &body[..MAX_LINE_BYTES] } else { body };
                on_line(RawLine { number: self.lines_emitted, bytes, truncated });
            }
            input = &input[after..];
        }
        if !input.is_empty() {
            self.has_partial = true;
            self.append_partial(input);
        }
    }

    /// Ends the stream: a last line without a terminator is emitted.
    pub fn finish(&mut self, mut on_line: impl FnMut(RawLine<'_>)) {
        if self.has_partial {
            self.emit_partial(&mut on_line);
        }
        self.pending_cr = false;
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES - self.partial.len();
        if bytes.len() > room {
            self.partial.extend_from_slice(&bytes[..room]);
            self.partial_truncated = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn emit_partial(&mut self, on_line: &mut impl FnMut(RawLine<'_>)) {
        self.lines_emitted += 1;
        on_line(RawLine { number: self.lines_emitted, bytes: &self.partial, truncated: self.partial_truncated });
        self.partial.clear();
        self.partial_truncated = false;
        self.has_partial = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(u64, String, bool)> {
        let mut splitter = LineSplitter::new();
        let mut out = Vec::new();
        let mut push = |line: RawLine<'_>| {
            out.push((line.number, String::from_utf8_lossy(line.bytes).into_owned(), line.truncated));
        };
        for chunk in chunks {
            splitter.feed(chunk, &mut push);
        }
        splitter.finish(&mut push);
        out
    }

    fn texts(chunks: &[&[u8]]) -> Vec<String> {
        split(chunks).into_iter().map(|(_, text, _)| text).collect()
    }

    #[test]
    fn every_terminator_ends_one_line() {
        assert_eq!(texts(&[b"a\nb\r\nc\rd"]), ["a", "b", "c", "d"]);
        assert_eq!(texts(&[b"\n\n"]), ["", ""]);
        assert_eq!(texts(&[b"x\r\n\r\n"]), ["x", ""]);
    }

    #[test]
    fn crlf_split_across_reads_counts_once() {
        assert_eq!(texts(&[b"one\r", b"\ntwo\r\n"]), ["one", "two"]);
        assert_eq!(texts(&[b"one\r", b"two\n"]), ["one", "two"]);
    }

    #[test]
    fn utf8_split_across_reads_is_joined() {
        let text = "µs → ok\n".as_bytes();
        let (a, b) = text.split_at(1);
        assert_eq!(texts(&[a, b]), ["µs → ok"]);
    }

    #[test]
    fn line_numbers_count_from_one() {
        let lines = split(&[b"a\n", b"b", b"c\n", b"d"]);
        let numbers: Vec<u64> = lines.iter().map(|l| l.0).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(lines[1].1, "bc");
    }

    #[test]
    fn overlong_lines_are_cut_and_marked() {
        let long = vec![b'x'; MAX_LINE_BYTES * 3];
        let lines = split(&[&long, b"\nshort\n"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1.len(), MAX_LINE_BYTES);
        assert!(lines[0].2);
        assert_eq!(lines[1], (2, "short".to_string(), false));

        let mut in_one = long.clone();
        in_one.extend_from_slice(b"\n");
        let lines = split(&[&in_one]);
        assert_eq!(lines[0].1.len(), MAX_LINE_BYTES);
        assert!(lines[0].2);
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let input = b"I (10) boot: x\r\n\x1b[0m\r\nE (20) esp-tls: y\rz\n";
        let whole = split(&[input]);
        let single: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(split(&single), whole);
    }
}
