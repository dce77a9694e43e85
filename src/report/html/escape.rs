//! Text into HTML: every string from a results file or a transcript goes through [`Escaped`],
//! in element content and in quoted attribute values alike.

use std::fmt;

/// Displays a string with `& < > " '` as entities and control characters (other than tab) as
/// their visible Unicode pictures (`␛`, `␀`), so no byte of a transcript can become markup.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                '\u{7f}' => f.write_str("\u{2421}")?,
                c => write!(f, "{}", char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'' | '\u{7f}') || (c.is_ascii_control() && c != '\t')
}

/// Escapes `text` into a new string.
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_bytes_become_text() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("a & \"b\"\t\u{1b}[0m\u{0}"), "a &amp; &quot;b&quot;\t\u{241b}[0m\u{2400}");
        assert_eq!(escape("plain ✓"), "plain ✓");
    }
}
