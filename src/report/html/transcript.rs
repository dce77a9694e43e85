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

