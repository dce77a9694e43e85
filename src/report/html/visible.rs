//! Text from a run as a reader should see it: control characters drawn, not obeyed. This is
//! not the escaping: what [`visible`] returns is still spliced into the page through maud's
//! escaping like any other string.

use std::borrow::Cow;

/// `text` with its control characters (other than tab) as their Unicode Control Pictures
/// (`␛`, `␀`, `␡`): a byte a device printed shows where it was, and none reaches the page raw.
pub fn visible(text: &str) -> Cow<'_, str> {
    if text.contains(is_drawn) { Cow::Owned(text.chars().map(picture).collect()) } else { Cow::Borrowed(text) }
}

fn is_drawn(c: char) -> bool {
    c.is_ascii_control() && c != '\t'
}

/// The picture of a control character (U+2400 + its code, U+2421 for DEL); other characters
/// as they are.
fn picture(c: char) -> char {
    match c {
        '\u{7f}' => '\u{2421}',
        c if is_drawn(c) => char::from_u32(0x2400 + u32::from(c)).unwrap_or(c),
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_their_pictures_and_the_rest_stays() {
        assert_eq!(visible("a\u{1b}[0m\u{0}\u{7}\u{7f}\tb\r"), "a\u{241b}[0m\u{2400}\u{2407}\u{2421}\tb\u{240d}");
        assert!(matches!(visible("<plain> ✓ & \"x\""), Cow::Borrowed("<plain> ✓ & \"x\"")));
    }
}
