//! One cell's detail, hidden until its grid cell is clicked: the facts (verdict, expected,
//! observed, error, board, time), the deciding lines, the server's events, the served chain and
//! the transcript.

use maud::{Markup, html};

use super::visible::visible;
use super::{chain, class_of, transcript};
use crate::report::matrix::mark;
use crate::report::transcript::Transcript;
use crate::results::{CellDetails, CellRecord, short};
use crate::verdict::Evidence;

/// The `<article>` with id `id` for `cell`, with `details` (events, chain) and its transcript.
pub(crate) fn cell_detail(id: &str, cell: &CellRecord, details: &CellDetails, lines: &Transcript) -> Markup {
    let evidence = cell.observed.as_ref().map(|o| o.evidence.as_slice()).unwrap_or_default();
    html! {
        article class="cell-detail" id=(id) hidden {
            h2 { (visible(&cell.firmware)) " × " (visible(&cell.scenario)) }
            "\n"
            (facts(cell))
            "\n"
            @if !evidence.is_empty() {
                (deciding_lines(id, evidence))
                "\n"
            }
            @if !details.server_events.is_empty() {
                (server_events(&details.server_events))
                "\n"
            }
            @if !details.chain.is_empty() {
                h3 { "Chain served" }
                (chain::chain_section(&details.chain, details.device_clock))
                "\n"
            }
            (transcript::transcript(id, cell, lines))
        }
        "\n"
    }
}

fn facts(cell: &CellRecord) -> Markup {
    let verdict = cell.verdict.as_str();
    let expected = cell.expected.map_or_else(|| "nothing (observed only)".to_owned(), short);
    html! {
        table class="facts" {
            tr { th { "verdict" } td class={ "v-" (verdict) } { (mark(cell.verdict).trim()) " " (verdict) } }
            tr { th { "expected" } td { (expected) } }
            tr { th { "observed" } td class={ "o-" (class_of(cell)) } { (cell.short_outcome()) } }
            @if let Some(error) = &cell.error {
                tr { th { "error" } td { (visible(error)) } }
            }
            tr { th { "board" } td { (visible(&cell.board)) } }
            tr { th { "time" } td { (format!("{:.1} s", cell.duration_ms as f64 / 1000.0)) } }
        }
    }
}

/// The evidence, each line a link to its place in the transcript (`{id}-L{n}`).
fn deciding_lines(id: &str, evidence: &[Evidence]) -> Markup {
    html! {
        h3 { "Deciding lines" }
        ul class="evidence" {
            @for line in evidence {
                li { a href={ "#" (id) "-L" (line.line) } { "line " (line.line) } " " (visible(&line.text)) }
            }
        }
    }
}

fn server_events(events: &[String]) -> Markup {
    html! {
        h3 { "Server events" }
        ol class="events" {
            @for event in events {
                li { (visible(event)) }
            }
        }
    }
}
