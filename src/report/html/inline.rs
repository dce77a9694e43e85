//! The page's own style and script, and the Content-Security-Policy that allows exactly them.
//!
//! These two files of this crate, with maud's `<!DOCTYPE html>`, are the only text the page
//! holds unescaped (`PreEscaped`): nothing derived from results or transcripts ever is.
//! The policy names their SHA-256 over the very bytes written between the tags, so an edited
//! file is still allowed and nothing else is.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The page's policy: nothing fetched, no style or script but the page's own.
pub fn policy() -> String {
    format!("default-src 'none'; style-src '{}'; script-src '{}'", csp_hash(STYLE), csp_hash(SCRIPT))
}

/// `<style>` with `page.css`.
pub fn style() -> Markup {
    html! { style { (PreEscaped(STYLE)) } }
}

/// `<script>` with `page.js`.
pub fn script() -> Markup {
    html! { script { (PreEscaped(SCRIPT)) } }
}

/// `'sha256-…'` for a Content-Security-Policy source list.
fn csp_hash(text: &str) -> String {
    format!("sha256-{}", STANDARD.encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_hashes_are_base64_sha256_with_padding() {
        assert_eq!(csp_hash(""), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn the_policy_allows_the_bytes_the_page_holds() {
        let page = super::super::render_html(&[], std::path::Path::new("run"), &Default::default());
        let between =
            |open: &str, close: &str| page.split_once(open).and_then(|(_, rest)| rest.split_once(close)).unwrap().0;
        assert_eq!(between("<style>", "</style>"), STYLE);
        assert_eq!(between("<script>", "</script>"), SCRIPT);
        let policy = format!("default-src 'none'; style-src '{}'; script-src '{}'", csp_hash(STYLE), csp_hash(SCRIPT));
        assert!(page.contains(&format!("http-equiv=\"Content-Security-Policy\" content=\"{policy}\"")), "{page}");
    }

    #[test]
    fn the_inline_files_cannot_close_their_own_tags() {
        assert!(!STYLE.to_ascii_lowercase().contains("</style"));
        assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
    }
}
