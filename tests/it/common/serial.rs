//! Reading a twin's serial port in tests: until something has been seen, with a deadline
//! instead of sleeps.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

/// How long anything a twin prints may take to arrive (it takes milliseconds).
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Reads from `port` (opened with a short timeout) into `seen` until `done(seen)`; panics at
/// the deadline with what was read so far.
pub fn read_until(port: &mut impl Read, seen: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    while !done(seen) {
        assert!(Instant::now() < deadline, "timed out; read so far:\n{}", String::from_utf8_lossy(seen));
        match port.read(&mut buf) {
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) => panic!("reading the twin's port: {e}"),
        }
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How often `needle` occurs in `haystack`.
pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// `E (1234) tag: ...` → `E (…) tag: ...`, after an optional colour code.
pub fn redact_timestamp(line: &str) -> String {
    let body_at = if line.starts_with('\x1b') { line.find('m').map_or(0, |m| m + 1) } else { 0 };
    let (colour, body) = line.split_at(body_at);
    let stamped = body.len() > 3 && matches!(&body[..3], "E (" | "W (" | "I (" | "D (" | "V (");
    match body.get(3..).and_then(|rest| rest.split_once(')')) {
        Some((digits, rest)) if stamped && digits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{colour}{} (…){rest}", &body[..1])
        }
        _ => line.to_owned(),
    }
}
