//! One self-contained HTML file for a run: the matrix as a coloured grid, the fleet summary
//! (per firmware, the certificate events it survives and those it fails), and for each
//! cell a detail (expected vs observed, evidence, server events, the served chain against the
//! device's clock, the transcript with the deciding lines highlighted) shown when the cell is
//! clicked.
//!
//! The page is made of maud templates, one per part: `overview` (counts, legend, grid),
//! `summary` (the fleet's answers), `detail` (a cell), `chain` (the served chain),
//! `transcript`. maud escapes every string spliced into them; only the page's own style and
//! script (`inline`) are not. Those are pinned by hash in the page's Content-Security-Policy,
//! which also forbids every fetch: the file opens anywhere, offline, and nothing a transcript
//! holds can run, even beyond the escaping.

mod chain;
mod detail;
mod inline;
mod overview;
mod summary;
mod transcript;
mod visible;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use maud::{DOCTYPE, html};

use self::overview::DetailIds;
use self::visible::visible;
use super::DetailsByCell;
use super::grid::Grid;
use super::transcript::read_transcript;
use crate::results::CellRecord;

/// The HTML report's name inside a run's directory.
pub(crate) const HTML_FILE: &str = "report.html";

/// Writes `dir/report.html` for `cells` (transcripts read from `dir`); `details` adds server
/// events and served chains by cell, in place of any the result lines carry.
pub fn write_html(cells: &[CellRecord], dir: &Path, details: &DetailsByCell) -> io::Result<PathBuf> {
    let path = dir.join(HTML_FILE);
    fs::write(&path, render_html(cells, dir, details))?;
    Ok(path)
}

/// The page as a string; see [`write_html`]. Transcripts are read one cell at a time, as the
/// page reaches each.
pub fn render_html(cells: &[CellRecord], dir: &Path, details: &DetailsByCell) -> String {
    let grid = Grid::new(cells);
    let ids = DetailIds::new(&grid);
    let title = match dir.file_name() {
        Some(name) => format!("otarig run {}", name.to_string_lossy()),
        None => "otarig run".to_owned(),
    };
    let page = html! {
        (DOCTYPE)
        "\n"
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(inline::policy());
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (visible(&title)) }
                (inline::style())
            }
            "\n"
            body {
                "\n"
                h1 { (visible(&title)) }
                "\n"
                (overview::counts(cells))
                (overview::legend(&grid))
                (overview::grid_table(&grid, &ids))
                (summary::fleet_section(cells))
                section id="detail" aria-live="polite" {
                    p id="hint" { "Click a cell for its transcript and evidence." }
                    "\n"
                    @for cell in grid.cells() {
                        @let transcript = read_transcript(dir, &cell.transcript);
                        @let details = details.get(&cell.key()).unwrap_or(&cell.details);
                        (detail::cell_detail(&ids.of(cell), cell, details, &transcript))
                    }
                }
                "\n"
                (inline::script())
                "\n"
            }
        }
        "\n"
    };
    page.into_string()
}

/// The CSS class name of a cell's outcome: its class id, or `error`.
fn class_of(cell: &CellRecord) -> String {
    cell.observed.as_ref().map_or_else(|| "error".to_owned(), |o| o.outcome.outcome.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::results::{CellDetails, ChainCert};

    /// Markup, quotes, an ampersand, a terminal escape and a bell.
    const HOSTILE: &str = "<script>alert('x')</script>\"&\u{1b}[0m\u{7}";
    /// [`HOSTILE`] as the page must show it.
    const SHOWN: &str = "&lt;script&gt;alert('x')&lt;/script&gt;&quot;&amp;\u{241b}[0m\u{2407}";

    #[test]
    fn a_hostile_string_is_escaped_in_every_place_it_appears() {
        let cell: CellRecord = serde_json::from_value(json!({
            "firmware": format!("fw{HOSTILE}"), "scenario": format!("sc{HOSTILE}"),
            "board": format!("board{HOSTILE}"), "error": format!("err{HOSTILE}"),
            "expected": {"outcome": "updated", "reason": null},
            "observed": {"outcome": "tls-verify", "reason": "untrusted",
                         "evidence": [{"line": 1, "text": format!("ev{HOSTILE}")}]},
            "verdict": "fail", "transcript": format!("../log{HOSTILE}"), "duration_ms": 1,
        }))
        .unwrap();
        let details = CellDetails {
            server_events: vec![format!("event{HOSTILE}")],
            chain: vec![ChainCert {
                subject: format!("subject{HOSTILE}"),
                issuer: format!("issuer{HOSTILE}"),
                not_before: 1_600_000_000,
                not_after: 1_650_000_000,
            }],
            device_clock: Some(1_700_000_000),
        };
        let by_cell = DetailsByCell::from([(cell.key(), details)]);
        // A file name cannot hold the `/` of `</script>`.
        let dir = Path::new("/nonexistent/run<b>\"&\u{1b}[0m\u{7}");
        let page = render_html(&[cell], dir, &by_cell);

        let title = "otarig run run&lt;b&gt;&quot;&amp;\u{241b}[0m\u{2407}";
        assert_eq!(page.matches(title).count(), 2, "title, heading: {page}");
        let places = [
            ("fw", 3), // row header, cell title, detail heading
            ("sc", 3), // column header, cell title, detail heading
            ("board", 1),
            ("err", 1),
            ("ev", 1),
            ("event", 1),
            ("subject", 2), // chain picture, chain table
            ("issuer", 1),
            ("../log", 2), // transcript name, the note why it is not read
        ];
        for (before, count) in places {
            assert_eq!(page.matches(&format!("{before}{SHOWN}")).count(), count, "{before}: {page}");
        }
        let total: usize = places.iter().map(|(_, count)| count).sum();
        assert_eq!(page.matches("alert('x')").count(), total, "nowhere else, in no other form");
        assert_eq!(page.matches("<script").count(), 1, "only the page's own script");
        assert!(!page.contains(['\u{1b}', '\u{7}']), "no control byte reaches the page");
    }
}
