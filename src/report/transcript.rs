//! A cell's transcript for people: read from the run's directory (never outside it), cut at a
//! size limit, split into lines numbered as `otarig replay` numbers them (CR, LF and CRLF each
//! end one line), terminal escape codes removed.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path};

/// The most of a transcript a report includes.
pub(crate) const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;

/// A transcript as a report shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Transcript {
    /// Lines without terminators and escape codes; invalid UTF-8 replaced.
    pub lines: Vec<String>,
    /// Bytes past [`MAX_TRANSCRIPT_BYTES`] that were left out.
    pub(crate) cut_bytes: u64,
    /// Why there is no transcript (missing file, a path outside the run's directory).
    pub missing: Option<String>,
}

impl Transcript {
    /// The lines joined with LF.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Reads `relative` under `dir`, up to [`MAX_TRANSCRIPT_BYTES`]. Never fails: a transcript
/// that cannot be read says why in [`Transcript::missing`].
pub(crate) fn read_transcript(dir: &Path, relative: &str) -> Transcript {
    if !is_inside(relative) {
        return Transcript {
            missing: Some(format!("{relative}: not a path inside the run's directory")),
            ..Default::default()
        };
    }
    match read_capped(&dir.join(relative)) {
        Ok((bytes, cut_bytes)) => Transcript { lines: split_lines(&bytes), cut_bytes, missing: None },
        Err(err) => Transcript { missing: Some(format!("cannot read {relative}: {err}")), ..Default::default() },
    }
}

/// A relative path with no `..`, root or prefix: it stays inside the directory it is joined to.
pub(crate) fn is_inside(relative: &str) -> bool {
    !relative.is_empty()
        && Path::new(relative).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn read_capped(path: &Path) -> io::Result<(Vec<u8>, u64)> {
    let file = File::open(path)?;
    let total = file.metadata()?.len();
    let mut bytes = Vec::new();
    file.take(MAX_TRANSCRIPT_BYTES as u64).read_to_end(&mut bytes)?;
    Ok((bytes, total.saturating_sub(MAX_TRANSCRIPT_BYTES as u64)))
}

/// Lines of `bytes`: CR, LF and CRLF each end one; a last line without an end counts.
pub(crate) fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\n' => {
                lines.push(clean(&bytes[start..at]));
                at += 1;
                start = at;
            }
            b'\r' => {
                lines.push(clean(&bytes[start..at]));
                at += if bytes.get(at + 1) == Some(&b'\n') { 2 } else { 1 };
                start = at;
            }
            _ => at += 1,
        }
    }
    if start < bytes.len() {
        lines.push(clean(&bytes[start..]));
    }
    lines
}

/// One line as text: escape sequences removed (CSI up to its final byte, OSC up to BEL or
/// ESC `\`, any other ESC with the byte after it), invalid UTF-8 replaced.
fn clean(line: &[u8]) -> String {
    let mut out = Vec::with_capacity(line.len());
    let mut at = 0;
    while at < line.len() {
        if line[at] != 0x1b {
            out.push(line[at]);
            at += 1;
            continue;
        }
        at += match line.get(at + 1) {
            Some(b'[') => {
                line[at + 2..].iter().position(|b| (0x40..=0x7e).contains(b)).map_or(line.len() - at, |end| end + 3)
            }
            Some(b']') => osc_len(&line[at..]),
            Some(_) => 2,
            None => 1,
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Length of an OSC sequence at the start of `seq`: up to BEL or ESC `\`, or the rest.
fn osc_len(seq: &[u8]) -> usize {
    let mut at = 2;
    while at < seq.len() {
        match seq[at] {
            0x07 => return at + 1,
            0x1b if seq.get(at + 1) == Some(&b'\\') => return at + 2,
            _ => at += 1,
        }
    }
    seq.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_cr_lf_and_crlf_and_lose_their_colours() {
        let bytes = b"a\r\n\x1b[0;32mI (1) boot: x\x1b[0m\rb\n\nlast";
        assert_eq!(split_lines(bytes), ["a", "I (1) boot: x", "b", "", "last"]);
        assert_eq!(split_lines(b"\x1b]0;title\x07t\xff"), ["t\u{fffd}"]);
        assert!(split_lines(b"").is_empty());
    }

    #[test]
    fn paths_outside_the_run_are_refused() {
        assert!(is_inside("transcripts/a__b.log"));
        for bad in ["", "/etc/passwd", "../x.log", "transcripts/../../x"] {
            assert!(!is_inside(bad), "{bad}");
        }
    }
}
