//! URLs inside firmware bytes: the OTA URL a build was configured with, broker and API
//! endpoints, found the way `strings | grep` would find them.

use std::collections::HashSet;

use memchr::memmem;

/// Schemes worth reporting: HTTP(S) for OTA and APIs, MQTT(S) and secure WebSockets for brokers.
const SCHEMES: [&[u8]; 5] = [b"http", b"https", b"mqtt", b"mqtts", b"wss"];
/// At most this many strings are reported.
pub(crate) const MAX_URLS: usize = 1000;
/// Longer runs are cut to this many bytes, starting at the URL's scheme.
pub(crate) const MAX_URL_LEN: usize = 512;

/// Printable ASCII runs (bytes `0x20..=0x7E`; a NUL or any other byte ends one) that contain
/// `http://`, `https://`, `mqtt://`, `mqtts://` or `wss://`, with the offset of each run's first
/// byte. Each text is reported once, at its first offset, in offset order, at most
/// `MAX_URLS` of them; a run longer than `MAX_URL_LEN` is cut to that length from its
/// first scheme.
pub fn find_urls(bytes: &[u8]) -> Vec<(usize, String)> {
    let printable = |b: u8| (0x20..=0x7E).contains(&b);
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut from = 0;
    let finder = memmem::Finder::new(b"://");
    while let Some(hit) = finder.find(&bytes[from..]) {
        let sep = from + hit;
        from = sep + 3;
        let letters = bytes[..sep].iter().rev().take_while(|b| b.is_ascii_alphabetic()).count();
        let scheme_start = sep - letters;
        if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(&bytes[scheme_start..sep])) {
            continue;
        }
        let start = bytes[..scheme_start].iter().rposition(|&b| !printable(b)).map_or(0, |i| i + 1);
        let end = bytes[sep..].iter().position(|&b| !printable(b)).map_or(bytes.len(), |i| sep + i);
        // The rest of this run is reported with it; look for the next URL after it.
        from = end;
        let (start, end) =
            if end - start > MAX_URL_LEN { (scheme_start, end.min(scheme_start + MAX_URL_LEN)) } else { (start, end) };
        let text = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        if seen.insert(text.clone()) {
            found.push((start, text));
            if found.len() == MAX_URLS {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expect: &[(usize, &str)]) {
        let got = find_urls(bytes);
        let got: Vec<(usize, &str)> = got.iter().map(|(at, text)| (*at, text.as_str())).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn urls_in_binary_are_found_at_their_run() {
        let mut bytes = vec![0xA5u8, 0x00, 0x13];
        bytes.extend_from_slice(b"https://192.168.0.3:8070/hello_world.bin\0");
        bytes.extend_from_slice(&[0xFF; 5]);
        bytes.extend_from_slice(b"\x01mqtts://broker.example.com:8883\x80wss://ws.example.org/x\0");
        bytes.extend_from_slice(b"Connecting to http://%s/ota\n");
        check(
            &bytes,
            &[
                (3, "https://192.168.0.3:8070/hello_world.bin"),
                (50, "mqtts://broker.example.com:8883"),
                (82, "wss://ws.example.org/x"),
                (105, "Connecting to http://%s/ota"),
            ],
        );
    }

    #[test]
    fn repeats_other_schemes_and_no_url_are_left_out() {
        let bytes = b"\0https://a.example/\0ftp://b.example/\0xhttp://c\0https://a.example/\0mqtt://d\0://\0";
        check(bytes, &[(1, "https://a.example/"), (66, "mqtt://d")]);
        check(b"", &[]);
        check(b"://", &[]);
        check(b"http://", &[(0, "http://")]);
    }

    #[test]
    fn long_runs_and_many_urls_are_capped() {
        let mut bytes = vec![b'a'; 10_000];
        bytes.extend_from_slice(b" https://long.example/");
        bytes.extend(std::iter::repeat_n(b'b', 10_000));
        let got = find_urls(&bytes);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1.len()), (10_001, MAX_URL_LEN));
        assert!(got[0].1.starts_with("https://long.example/bbb"));

        let many: Vec<u8> = (0..MAX_URLS + 50).flat_map(|i| format!("http://h{i}/\0").into_bytes()).collect();
        assert_eq!(find_urls(&many).len(), MAX_URLS);
    }

    #[test]
    fn one_long_printable_run_with_many_separators_is_linear() {
        let bytes: Vec<u8> = std::iter::repeat_n(&b"x://"[..], 1_000_000).flatten().copied().collect();
        assert!(find_urls(&bytes).is_empty());
    }
}
