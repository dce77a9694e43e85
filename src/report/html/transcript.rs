//! A cell's transcript as a `<pre>`: one block per line, numbered by a CSS counter, the
//! deciding lines marked and linkable; or a note saying why there is none.

use std::collections::BTreeSet;

use maud::{Markup, html};

use super::visible::visible;
use crate::report::transcript::{MAX_TRANSCRIPT_BYTES, Transcript};
use crate::results::CellRecord;

/// The transcript section of detail `id`: the file's name, then its lines (or why there are
/// none), and a note when the file was cut.
pub fn transcript(id: &str, cell: &CellRecord, transcript: &Transcript) -> Markup {
    let deciding: BTreeSet<u64> = cell.observed.iter().flat_map(|o| o.evidence.iter().map(|e| e.line)).collect();
    html! {
        h3 { "Transcript " code { (visible(&cell.transcript)) } }
        @if let Some(missing) = &transcript.missing {
            p class="note" { (visible(missing)) }
            "\n"
        } @else {
            pre class="transcript" {
                @for (index, line) in transcript.lines.iter().enumerate() {
                    // Numbers come from a CSS counter; deciding lines are marked and can be
                    // linked to. The line end stays inside the line's own block: no blank line
                    // between blocks, and the text copies with its line ends.
                    @let n = index as u64 + 1;
                    @if deciding.contains(&n) {
                        span class="l ev" id={ (id) "-L" (n) } { (visible(line)) "\n" }
                    } @else {
                        span class="l" { (visible(line)) "\n" }
                    }
                }
            }
            "\n"
            @if transcript.cut_bytes > 0 {
                p class="note" {
                    "Only the first " (MAX_TRANSCRIPT_BYTES / 1024) " KiB are shown; "
                    (transcript.cut_bytes) " more bytes are in the file."
                }
                "\n"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lines_are_text_in_their_own_blocks_and_deciding_ones_are_marked() {
        let cell: CellRecord = serde_json::from_value(json!({
            "firmware": "fw", "scenario": "s", "board": "twin-1", "expected": null,
            "observed": {"outcome": "crashed", "reason": null, "evidence": [{"line": 2, "text": "x"}]},
            "verdict": "observed", "transcript": "transcripts/fw__s.log", "duration_ms": 1,
        }))
        .unwrap();
        let lines = Transcript {
            lines: vec!["a </pre><script>x()</script>".into(), "b \u{0}".into()],
            cut_bytes: 10,
            missing: None,
        };
        let html = transcript("c3", &cell, &lines).into_string();
        assert!(html.contains(
            "<pre class=\"transcript\"><span class=\"l\">a &lt;/pre&gt;&lt;script&gt;x()&lt;/script&gt;\n</span>\
             <span class=\"l ev\" id=\"c3-L2\">b \u{2400}\n</span></pre>"
        ));
        assert!(html.contains("Only the first 256 KiB are shown; 10 more bytes are in the file."));
    }
}
