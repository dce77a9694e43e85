//! The device's TLS input buffer: which incoming records its mbedTLS refuses, and with which
//! code, for the build's `MBEDTLS_SSL_IN_CONTENT_LEN`, read from mbedTLS's source at the
//! versions ESP-IDF ships:
//!
//! - **2.12–2.16** (`library/ssl_tls.c`, `ssl_parse_record_header` and
//!   `ssl_prepare_record_content`): a record without a transform whose length exceeds
//!   `MBEDTLS_SSL_IN_CONTENT_LEN`, one longer than the buffer, or an encrypted one whose
//!   plaintext exceeds it: "bad message length", `MBEDTLS_ERR_SSL_INVALID_RECORD` (-0x7200).
//! - **2.28, 3.x, 4.0** (`library/ssl_msg.c`, `ssl_get_next_record`): the header read, the body
//!   fetched with `mbedtls_ssl_fetch_input(5 + len)`, which refuses "requesting more data than
//!   fits", `MBEDTLS_ERR_SSL_BAD_INPUT_DATA` (-0x7100), when `5 + len` exceeds
//!   `MBEDTLS_SSL_IN_BUFFER_LEN` less the 8 bytes before the header; otherwise, after
//!   decryption, a plaintext longer than `MBEDTLS_SSL_IN_CONTENT_LEN` is "bad message length",
//!   -0x7200.
//!
//! `MBEDTLS_SSL_IN_BUFFER_LEN` is `MBEDTLS_SSL_HEADER_LEN` (13) plus the content length plus
//! `MBEDTLS_SSL_PAYLOAD_OVERHEAD`: no compression (0), `MBEDTLS_MAX_IV_LENGTH` (16),
//! `MBEDTLS_SSL_MAC_ADD` (48: CBC suites are compiled in and SHA-512 is on), 256 for CBC
//! padding and no connection-ID expansion (`MBEDTLS_SSL_DTLS_CONNECTION_ID` off) — ESP-IDF's
//! defaults at every tag (`esp_config.h` defines `MBEDTLS_CIPHER_MODE_CBC`;
//! `include/mbedtls/ssl_internal.h` in 2.x, `library/ssl_misc.h` in 3.x and 4.0). So a record
//! whose length field exceeds the content length plus 320 does not fit the buffer.
//!
//! [`RecordWatch`] sits in the device's socket, below the record layer: mbedTLS reads a
//! record's 5-byte header with one receive and its body with the next, and returns a receive's
//! error code unchanged from `mbedtls_ssl_handshake` and `mbedtls_ssl_read`, so the watch
//! answers the body's receive with the code the release's library returns at that record. The
//! body is then not read from the network (a real device reads it first in 2.28 and later; no
//! line tells the two apart).

use crate::idf::{IdfVersion, mbedtls_of};

/// `MBEDTLS_ERR_SSL_BAD_INPUT_DATA`: "requesting more data than fits" (2.28 and later).
pub const SSL_BAD_INPUT_DATA: i32 = -0x7100;
/// `MBEDTLS_ERR_SSL_INVALID_RECORD`: "bad message length".
pub const SSL_INVALID_RECORD: i32 = -0x7200;

/// `MBEDTLS_SSL_PAYLOAD_OVERHEAD` under ESP-IDF's default configuration (see the module).
pub const PAYLOAD_OVERHEAD: usize = 16 + 48 + 256;

/// A TLS record's header length.
const HEADER_LEN: usize = 5;
/// Content types.
const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
/// `server_hello`.
const SERVER_HELLO: u8 = 2;

/// How a release's mbedTLS checks a record's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// 2.12–2.16: every check in `ssl_parse_record_header` and after decryption, all -0x7200.
    HeaderParse,
    /// 2.28, 3.x, 4.0: the fetch (-0x7100), then the plaintext (-0x7200).
    FetchThenContent,
}

/// The input buffer of one device's mbedTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputBuffer {
    /// `MBEDTLS_SSL_IN_CONTENT_LEN`.
    content_len: usize,
    checks: Checks,
}

impl InputBuffer {
    /// The buffer of a build of `idf` with `content_len` (`MBEDTLS_SSL_IN_CONTENT_LEN`).
    pub fn of(idf: IdfVersion, content_len: u32) -> InputBuffer {
        let checks = match mbedtls_of(idf) {
            Some((2, minor, _)) if minor < 28 => Checks::HeaderParse,
            // Releases before v3.1 have no generation; the oldest 2.x stands for them.
            None => Checks::HeaderParse,
            Some(_) => Checks::FetchThenContent,
        };
        InputBuffer { content_len: content_len as usize, checks }
    }

    /// What mbedTLS returns for a record whose header announces `len` bytes and whose
    /// plaintext is `plaintext` bytes (`len` itself before encryption starts; `None` when it is
    /// known only after decryption, for a suite other than AES-GCM, AES-CCM or ChaCha20):
    /// `None` when the record is taken.
    pub fn refuses(&self, len: usize, plaintext: Option<usize>) -> Option<i32> {
        let too_long = plaintext.is_some_and(|plaintext| plaintext > self.content_len);
        let unfit = len > self.content_len + PAYLOAD_OVERHEAD;
        match self.checks {
            Checks::HeaderParse => (too_long || unfit).then_some(SSL_INVALID_RECORD),
            Checks::FetchThenContent if unfit => Some(SSL_BAD_INPUT_DATA),
            Checks::FetchThenContent => too_long.then_some(SSL_INVALID_RECORD),
        }
    }

    /// What mbedTLS returns for the server's `Certificate` message carrying `chain` (DER,
    /// leaf first) in a record of its own, as servers send it (TLS 1.2: a 4-byte handshake
    /// header, a 3-byte list length, each certificate behind a 3-byte length).
    pub fn refuses_chain(&self, chain: &[Vec<u8>]) -> Option<i32> {
        let len = 4 + 3 + chain.iter().map(|der| 3 + der.len()).sum::<usize>();
        self.refuses(len, Some(len))
    }
}

/// Bytes a TLS 1.2 AEAD suite adds to a record's plaintext (explicit nonce and tag), by its
/// IANA number; `None` for other suites.
fn aead_expansion(suite: u16) -> Option<usize> {
    match suite {
        // AES-GCM (RSA, DHE-RSA, ECDHE-ECDSA, ECDHE-RSA): an 8-byte nonce and a 16-byte tag.
        0x009C..=0x009F | 0xC02B..=0xC032 => Some(24),
        // AES-CCM: the same; AES-CCM-8: an 8-byte tag.
        0xC09C..=0xC09F | 0xC0AC | 0xC0AD => Some(24),
        0xC0A0..=0xC0A3 | 0xC0AE | 0xC0AF => Some(16),
        // ChaCha20-Poly1305: no explicit nonce.
        0xCCA8..=0xCCAE => Some(16),
        _ => None,
    }
}

/// Where a socket's reader stands in the server's record stream.
#[derive(Debug)]
enum Position {
    /// Reading a header: the bytes so far.
    Header { bytes: [u8; HEADER_LEN], have: usize },
    /// Reading a body: its content type, the bytes left, and its first bytes when they are a
    /// handshake message in the clear (for the ServerHello).
    Body { kind: u8, left: usize, start: Vec<u8> },
}

/// The input buffer applied to the bytes a socket hands mbedTLS (see the module).
#[derive(Debug)]
pub struct RecordWatch {
    buffer: InputBuffer,
    position: Position,
    /// The server's ChangeCipherSpec came: later records are encrypted.
    encrypted: bool,
    /// The negotiated suite's expansion, from the ServerHello.
    expansion: Option<usize>,
    /// The code every receive returns once the buffer refused a record.
    refused: Option<i32>,
}

impl RecordWatch {
    /// A watch at the start of a connection.
    pub fn new(buffer: InputBuffer) -> RecordWatch {
        RecordWatch {
            buffer,
            position: Position::Header { bytes: [0; HEADER_LEN], have: 0 },
            encrypted: false,
            expansion: None,
            refused: None,
        }
    }

    /// How many bytes the next receive may take off the network (at most `wanted`, never
    /// past the current header or body), or the code it returns instead.
    pub fn next_read(&self, wanted: usize) -> Result<usize, i32> {
        if let Some(code) = self.refused {
            return Err(code);
        }
        Ok(match &self.position {
            Position::Header { have, .. } => wanted.min(HEADER_LEN - have),
            Position::Body { left, .. } => wanted.min(*left),
        })
    }

    /// Takes note of `bytes` handed to mbedTLS (as [`RecordWatch::next_read`] allowed).
    pub fn delivered(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() && self.refused.is_none() {
            rest = self.step(rest);
        }
    }

    fn step<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        match &mut self.position {
            Position::Header { bytes: header, have } => {
                let take = bytes.len().min(HEADER_LEN - *have);
                header[*have..*have + take].copy_from_slice(&bytes[..take]);
                *have += take;
                if *have == HEADER_LEN {
                    let (kind, len) = (header[0], usize::from(u16::from_be_bytes([header[3], header[4]])));
                    self.header_done(kind, len);
                }
                &bytes[take..]
            }
            Position::Body { kind, left, start } => {
                let take = bytes.len().min(*left);
                if *kind == HANDSHAKE && !self.encrypted && start.len() < 80 {
                    let room = 80 - start.len();
                    start.extend_from_slice(&bytes[..take.min(room)]);
                }
                *left -= take;
                if *left == 0 {
                    let (kind, start) = (*kind, std::mem::take(start));
                    self.body_done(kind, &start);
                }
                &bytes[take..]
            }
        }
    }

    fn header_done(&mut self, kind: u8, len: usize) {
        let plaintext = if self.encrypted { self.expansion.map(|e| len.saturating_sub(e)) } else { Some(len) };
        self.refused = self.buffer.refuses(len, plaintext);
        self.position = if len == 0 {
            // mbedTLS refuses an empty record itself, without reading on.
            Position::Header { bytes: [0; HEADER_LEN], have: 0 }
        } else {
            Position::Body { kind, left: len, start: Vec::new() }
        };
    }

    fn body_done(&mut self, kind: u8, start: &[u8]) {
        if kind == CHANGE_CIPHER_SPEC {
            self.encrypted = true;
        }
        if kind == HANDSHAKE && !self.encrypted && start.first() == Some(&SERVER_HELLO) {
            // type, length (3), version (2), random (32), session id (1 + n), suite (2)
            let at = 4 + 2 + 32;
            let suite = start.get(at).and_then(|&n| start.get(at + 1 + usize::from(n)..at + 3 + usize::from(n)));
            self.expansion = suite.and_then(|s| aead_expansion(u16::from_be_bytes([s[0], s[1]])));
        }
        self.position = Position::Header { bytes: [0; HEADER_LEN], have: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_tls::DEFAULT_IN_CONTENT_LEN;

    fn buffer(idf: &str, content: u32) -> InputBuffer {
        InputBuffer::of(IdfVersion::parse(idf).unwrap(), content)
    }

    #[test]
    fn each_generation_refuses_with_its_code() {
        // 2.16 (v4.2.5): -0x7200 for any record that is too long.
        let old = buffer("v4.2.5", 4096);
        assert_eq!(old.refuses(4096, Some(4096)), None);
        assert_eq!(old.refuses(4097, Some(4097)), Some(SSL_INVALID_RECORD));
        assert_eq!(old.refuses(16_384, Some(16_384)), Some(SSL_INVALID_RECORD));
        // 2.28 (v4.4.8) and 3.x (v5.2.5): -0x7100 past the buffer, -0x7200 within it.
        for idf in ["v4.4.8", "v5.2.5", "v6.0"] {
            let new = buffer(idf, 4096);
            assert_eq!(new.refuses(4097, Some(4097)), Some(SSL_INVALID_RECORD), "{idf}");
            assert_eq!(new.refuses(4416, Some(4416)), Some(SSL_INVALID_RECORD), "{idf}");
            assert_eq!(new.refuses(4417, Some(4417)), Some(SSL_BAD_INPUT_DATA), "{idf}");
            // An AES-GCM record of 4096 bytes of plaintext is 4120 long: taken.
            assert_eq!(new.refuses(4120, Some(4096)), None, "{idf}");
        }
        // The default buffer takes TLS's largest record.
        assert_eq!(buffer("v4.4.8", DEFAULT_IN_CONTENT_LEN).refuses(16_408, Some(16_384)), None);
    }

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind, 3, 3];
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    /// Feeds `stream` as mbedTLS reads it: a header, then a body; the code that stopped it.
    fn feed(watch: &mut RecordWatch, stream: &[u8]) -> Option<i32> {
        let mut at = 0;
        while at < stream.len() {
            match watch.next_read(stream.len() - at) {
                Ok(n) => {
                    watch.delivered(&stream[at..at + n]);
                    at += n;
                }
                Err(code) => return Some(code),
            }
        }
        watch.next_read(1).err()
    }

    #[test]
    fn the_watch_follows_records_and_the_suite() {
        let mut hello = vec![SERVER_HELLO, 0, 0, 70, 3, 3];
        hello.extend_from_slice(&[0; 32]);
        hello.push(32);
        hello.extend_from_slice(&[7; 32]);
        hello.extend_from_slice(&0xC02Fu16.to_be_bytes());
        let mut stream = record(HANDSHAKE, &hello);
        stream.extend(record(HANDSHAKE, &[11; 3000]));
        stream.extend(record(CHANGE_CIPHER_SPEC, &[1]));
        // 4096 bytes of plaintext under AES-GCM: taken.
        stream.extend(record(23, &vec![0; 4096 + 24]));
        let mut watch = RecordWatch::new(buffer("v4.4.8", 4096));
        assert_eq!(feed(&mut watch, &stream), None);
        // 4097: refused before the body is read.
        let mut watch_more = RecordWatch::new(buffer("v4.4.8", 4096));
        stream.extend(record(23, &vec![0; 4097 + 24]));
        assert_eq!(feed(&mut watch_more, &stream), Some(SSL_INVALID_RECORD));
        // A 16 KB record: does not fit.
        let mut big = RecordWatch::new(buffer("v4.4.8", 4096));
        assert_eq!(feed(&mut big, &record(HANDSHAKE, &vec![0; 16_384])), Some(SSL_BAD_INPUT_DATA));
        assert_eq!(big.next_read(5), Err(SSL_BAD_INPUT_DATA), "the refusal stays");
    }
}
