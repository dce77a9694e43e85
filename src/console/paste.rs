//! What chat and issue trackers do to a log pasted into them, undone for reading: Markdown
//! quote marks (`> `, nested), a code indent, `**` bold and `_` italic markers, inline
//! backticks and code fences, and colour codes whose ESC byte was lost on the way (`[0;31m`,
//! or `[1B][0;31m` as some terminal programs write ESC). Evidence still quotes the line as it
//! was pasted; only the reading uses what is left.

/// The line without paste wrappers, and whether there were any.
pub(crate) fn peel(line: &str) -> (&str, bool) {
    // Most lines are a device's own: a letter or digit first, no wrapper last.
    if starts_clean(line.as_bytes()) && ends_clean(line.as_bytes()) {
        return (line, false);
    }
    let front = peel_front(line);
    let core = peel_back(front);
    (core, core.len() != line.len())
}

/// The first byte starts no wrapper: a letter or digit (`[` too, unless a lost escape follows).
fn starts_clean(b: &[u8]) -> bool {
    match b.first() {
        Some(c) if c.is_ascii_alphanumeric() => true,
        Some(b'[') => !matches!(b.get(1), Some(c) if c.is_ascii_digit()),
        _ => false,
    }
}

/// The last byte ends no wrapper (a backtick, bold or italic marker, a blank, a lost `[0m`).
fn ends_clean(b: &[u8]) -> bool {
    !matches!(b.last(), None | Some(b' ' | b'\t' | b'`' | b'*' | b'_' | b'm' | b']'))
}

fn peel_front(mut s: &str) -> &str {
    loop {
        let before = s.len();
        s = s.trim_start_matches([' ', '\t']);
        s = s.trim_start_matches('>');
        s = s.trim_start_matches('`');
        for marker in ["**", "__"] {
            if let Some(rest) = s.strip_prefix(marker) {
                s = rest;
            }
        }
        s = strip_lost_escape_front(s);
        // An italic marker glued to the first word (`_E (169799) esp-tls...`).
        if let Some(rest) = s.strip_prefix('_').or_else(|| s.strip_prefix('*'))
            && rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
        {
            s = rest;
        }
        if s.len() == before {
            return s;
        }
    }
}

fn peel_back(mut s: &str) -> &str {
    loop {
        let before = s.len();
        s = s.trim_end_matches([' ', '\t', '`']);
        for marker in ["**", "__"] {
            if let Some(rest) = s.strip_suffix(marker) {
                s = rest;
            }
        }
        s = strip_lost_escape_back(s);
        if let Some(rest) = s.strip_suffix('_').or_else(|| s.strip_suffix('*'))
            && rest.ends_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, ')' | ']' | '.' | '!'))
        {
            s = rest;
        }
        if s.len() == before {
            return s;
        }
    }
}

/// `[1B]`, then a CSI colour sequence without its ESC: `[0;31m`, `[0m`, `[1;32m`.
fn strip_lost_escape_front(s: &str) -> &str {
    let s = s.strip_prefix("[1B]").unwrap_or(s);
    match lost_sgr_len(s) {
        Some(len) => &s[len..],
        None => s,
    }
}

fn strip_lost_escape_back(s: &str) -> &str {
    for tail in ["[1B][0m", "[0m", "[1B]"] {
        if let Some(rest) = s.strip_suffix(tail) {
            return rest;
        }
    }
    s
}

/// Length of `[` digits (`;` digits)* `m` at the start of `s`.
fn lost_sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('[')?;
    let len = body.bytes().take(12).take_while(|b| b.is_ascii_digit() || *b == b';').count();
    (len > 0 && body.as_bytes().get(len) == Some(&b'm')).then_some(len + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pasted: &str, core: &str) {
        assert_eq!(peel(pasted).0, core, "{pasted:?}");
    }

    #[test]
    fn markdown_wrappers() {
        check(
            "> [14:01:49.128][W][safe_mode:094]: OTA rollback detected!",
            "[14:01:49.128][W][safe_mode:094]: OTA rollback detected!",
        );
        check("> > E (1) esp-tls: x", "E (1) esp-tls: x");
        check("    E (1) esp-tls: x", "E (1) esp-tls: x");
        check("**E (8584) TRANS_SSL: esp_tls_conn_read error**", "E (8584) TRANS_SSL: esp_tls_conn_read error");
        check(
            "`[E][esp_crt_bundle.c:147] esp_crt_verify_callback(): Failed to verify certificate`",
            "[E][esp_crt_bundle.c:147] esp_crt_verify_callback(): Failed to verify certificate",
        );
        check(
            "_E (169799) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x7780",
            "E (169799) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x7780",
        );
        check("No client record 55_", "No client record 55");
        check("```", "");
    }

    #[test]
    fn escape_codes_that_lost_their_esc() {
        check(
            "[1B][0;31mE (73123) OTA: Connect to server failed! errno=113[1B][0m",
            "E (73123) OTA: Connect to server failed! errno=113",
        );
        check("[0;32mI (3397937) ota: esp_ota_begin succeeded", "I (3397937) ota: esp_ota_begin succeeded");
        check("[0;32mI (1) x: y[0m", "I (1) x: y");
    }

    #[test]
    fn log_lines_are_left_alone() {
        for line in [
            "[  5123][E][ssl_client.cpp:37] _handle_error(): x",
            "[D][ota:179]: Starting",
            "rst:0xc (SW_CPU_RESET)",
            "_",
        ] {
            assert_eq!(peel(line), (line, false), "{line}");
        }
        assert!(!peel("I (1) boot: x").1);
    }
}
