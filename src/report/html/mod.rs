//! One self-contained HTML file for a run: the matrix as a coloured grid, and for each cell a
//! detail (expected vs observed, evidence, server events, the served chain against the device's
//! clock, the transcript with the deciding lines highlighted) shown when the cell is clicked.
//!
//! The page is made of maud templates, one per part: `overview` (counts, legend, grid),
//! `detail` (a cell), `chain` (the served chain), `transcript`. maud escapes every string
//! spliced into them; only the page's own style and script (`inline`) are not. Those are
//! pinned by hash in the page's Content-Security-Policy, which also forbids every fetch: the file
//! opens anywhere, offline, and nothing a transcript holds can run, even beyond the escaping.

mod chain;
mod detail;
mod inline;
mod overview;
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
pub const HTML_FILE: &str = "report.html";

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

