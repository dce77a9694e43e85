//! A log line as it compares: the level and what the component said, without the time, the
//! colour, whatever was pasted around it, and every number.

/// `line` reduced for comparison: an ESP-IDF line found anywhere in it (after a host
/// timestamp, a quote mark, an indent) becomes `L tag: message`; colours go; every number
/// becomes `#` (`0x` numbers `0x#`; names that carry digits, `x509` or `ESP32`, stay); runs of
/// white space become one space.
///
/// ```
/// use otarig::matching::normalise;
/// assert_eq!(
///     normalise("> \x1b[0;31mE (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700\x1b[0m"),
///     "E esp-tls: mbedtls_ssl_handshake returned -0x#"
/// );
/// assert_eq!(normalise("E (12:01:02.345) esp_https_ota: data read -1, errno 104"), "E esp_https_ota: data read -#, errno #");
/// ```
pub fn normalise(line: &str) -> String {
    let plain = strip_colours(line);
    let text = idf_line(&plain).unwrap_or_else(|| plain.trim().trim_start_matches(['>', '*', ' ']).to_owned());
    without_numbers(&text)
}

/// The text without ANSI colour sequences, with or without their ESC byte (pastes lose it).
fn strip_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('[') {
        let (before, from) = rest.split_at(at);
        let before = before.strip_suffix('\x1b').unwrap_or(before);
        out.push_str(before);
        let sequence =
            from[1..].find('m').filter(|&end| from[1..1 + end].chars().all(|c| c.is_ascii_digit() || c == ';'));
        match sequence {
            Some(end) => rest = &from[end + 2..],
            None => {
                out.push('[');
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
    out.replace('\r', "")
}

/// `L tag: message` of the first `L (TIME) tag: message` in `line`.
fn idf_line(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    (0..bytes.len()).find_map(|at| {
        let level = *bytes.get(at)?;
        if !b"EWIDV".contains(&level) || (at > 0 && bytes[at - 1].is_ascii_alphanumeric()) {
            return None;
        }
        let rest = line.get(at + 1..)?.strip_prefix(" (")?;
        let close = rest.find(") ")?;
        let time = &rest[..close];
        if time.is_empty() || !time.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '.') {
            return None;
        }
        let message = rest[close + 2..].trim();
        message.contains(": ").then(|| format!("{} {message}", char::from(level)))
    })
}

/// Every number as `#`, white space collapsed.
fn without_numbers(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(collapsed.len());
    let mut token = String::new();
    for c in collapsed.chars() {
        if c.is_ascii_alphanumeric() {
            token.push(c);
        } else {
            push_token(&token, &mut out);
            token.clear();
            out.push(c);
        }
    }
    push_token(&token, &mut out);
    out
}

/// A run of letters and digits: `0x` numbers as `0x#`, numbers (decimal, or hex with a digit)
/// as `#`; a word that mixes digits with other letters is a name (`x509`, `ESP32`, `2nd`) and
/// stays.
fn push_token(token: &str, out: &mut String) {
    let is_hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    if token.strip_prefix("0x").is_some_and(is_hex) {
        out.push_str("0x#");
    } else if is_hex(token) && token.chars().any(|c| c.is_ascii_digit()) {
        out.push('#');
    } else {
        out.push_str(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_colours_and_pastes_do_not_count() {
        let device = "\x1b[0;31mE (4927) esp_https_ota: Complete headers were not received\x1b[0m";
        let pasted = "    [0;31mE (12) esp_https_ota: Complete headers were not received[0m";
        let monitor = "12:00:01.123 -> E (4927) esp_https_ota: Complete headers were not received";
        assert_eq!(normalise(device), "E esp_https_ota: Complete headers were not received");
        assert_eq!(normalise(pasted), normalise(device));
        assert_eq!(normalise(monitor), normalise(device));
    }

    #[test]
    fn numbers_in_every_form_become_one_mark() {
        assert_eq!(
            normalise("E (1) esp-x509-crt-bundle: PK verify failed with error FFFFBC80"),
            "E esp-x509-crt-bundle: PK verify failed with error #"
        );
        assert_eq!(
            normalise("I (1) boot: ESP-IDF v5.2.1-533-g9f4f8e24f2 2nd stage"),
            "I boot: ESP-IDF v5.#.#-#-g9f4f8e24f2 2nd stage"
        );
        assert_eq!(
            normalise("W (1) HTTP_CLIENT: esp_transport_read returned:-80 and errno:104 "),
            "W HTTP_CLIENT: esp_transport_read returned:-# and errno:#"
        );
        assert_eq!(
            normalise("[E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: (-9984) X509"),
            "[E][ssl_client.cpp:#] _handle_error(): [start_ssl_client():#]: (-#) X509"
        );
    }

    #[test]
    fn a_bracket_that_is_no_colour_stays() {
        assert_eq!(normalise("[  1234][E][HTTPUpdate.cpp:1] x"), "[ #][E][HTTPUpdate.cpp:#] x");
    }
}
