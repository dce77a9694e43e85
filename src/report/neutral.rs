//! Device output made harmless where it is shown: in a terminal, control characters are
//! written as escapes (`\u{8}`) instead of being obeyed; in XML, characters XML 1.0 cannot
//! hold at all (C0 controls other than tab, LF and CR; U+FFFE, U+FFFF) are written the same
//! way, so the document stays well-formed. The HTML report draws them instead
//! (`super::html`).

use std::borrow::Cow;
use std::fmt::Write;

/// `text` for a terminal: every control character but tab (C0, DEL, C1) as `\u{..}`.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c.is_control() && c != '\t')
}

#[cfg(test)]
/// `text` for a terminal, line breaks kept: as [`terminal_safe`], but LF stays.
pub(crate) fn terminal_safe_lines(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c.is_control() && !matches!(c, '\t' | '\n'))
}

/// `text` for an XML 1.0 document: characters outside its `Char` production as `\u{..}`.
pub(crate) fn xml_safe(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| !is_xml_char(c))
}

/// XML 1.0's `Char`: `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`
/// (surrogates cannot occur in a `char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape_where(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.contains(&escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_for_terminals_and_illegal_characters_for_xml() {
        assert_eq!(terminal_safe("ok\tfine"), "ok\tfine");
        assert_eq!(terminal_safe("a\u{8}\u{1b}[2J\u{9b}b\n"), "a\\u{8}\\u{1b}[2J\\u{9b}b\\u{a}");
        assert_eq!(terminal_safe_lines("a\u{7}\nb"), "a\\u{7}\nb");
        assert_eq!(
            xml_safe("a\u{fffe}\u{ffff}\u{0}\u{1f}\t\r\n\u{e000}é"),
            "a\\u{fffe}\\u{ffff}\\u{0}\\u{1f}\t\r\n\u{e000}é"
        );
        assert!(matches!(xml_safe("plain"), Cow::Borrowed(_)));
    }
}
