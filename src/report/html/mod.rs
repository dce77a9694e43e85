//! One self-contained HTML file for a run: the matrix as a coloured grid, and for each cell a
//! detail (expected vs observed, evidence, server events, the served chain against the device's
//! clock, the transcript with the deciding lines highlighted) shown when the cell is clicked.
//!
//! Styles and script are inline and pinned by hash in the page's Content-Security-Policy, which
//! also forbids every fetch: the file opens anywhere, offline, and nothing a transcript holds can
//! run, even beyond the escaping every string from the run goes through.

mod chain;
mod escape;

use std::collections::BTreeSet;
use std::fmt::Write;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use self::escape::Escaped;
pub use self::escape::escape;
use super::DetailsByCell;
use super::grid::Grid;
use super::matrix::mark;
use super::transcript::{MAX_TRANSCRIPT_BYTES, read_transcript};
use crate::results::{CellDetails, CellRecord, Counts, Verdict, short};

/// The HTML report's name inside a run's directory.
pub const HTML_FILE: &str = "report.html";

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Writes `dir/report.html` for `cells` (transcripts read from `dir`); `details` adds server
/// events and served chains by cell, in place of any the result lines carry.
pub fn write_html(cells: &[CellRecord], dir: &Path, details: &DetailsByCell) -> io::Result<PathBuf> {
    let path = dir.join(HTML_FILE);
    fs::write(&path, render_html(cells, dir, details))?;
    Ok(path)
}

/// The page as a string; see [`write_html`].
pub fn render_html(cells: &[CellRecord], dir: &Path, details: &DetailsByCell) -> String {
    let grid = Grid::new(cells);
    let title = match dir.file_name() {
        Some(name) => format!("otarig run {}", name.to_string_lossy()),
        None => "otarig run".to_owned(),
    };
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src '{}'; script-src '{}'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n",
        csp_hash(STYLE),
        csp_hash(SCRIPT),
        Escaped(&title),
        Escaped(&title)
    );
    summary(&mut out, cells, &grid);
    table(&mut out, &grid);
    out.push_str("<section id=\"detail\" aria-live=\"polite\"><p id=\"hint\">Click a cell for its transcript and evidence.</p>\n");
    for (index, cell) in grid.cells().enumerate() {
        let details = details.get(&cell.key()).unwrap_or(&cell.details);
        detail(&mut out, &format!("c{index}"), cell, details, dir);
    }
    let _ = write!(out, "</section>\n<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

/// `'sha256-…'` for a Content-Security-Policy source list.
fn csp_hash(text: &str) -> String {
    format!("sha256-{}", STANDARD.encode(Sha256::digest(text.as_bytes())))
}

fn summary(out: &mut String, cells: &[CellRecord], grid: &Grid<'_>) {
    let counts = Counts::of(cells);
    let _ = writeln!(
        out,
        "<p class=\"counts\"><span>{} cells</span><span class=\"pass\">{} pass</span>\
         <span class=\"{}\">{} fail</span><span class=\"{}\">{} error</span><span>{} observed</span></p>",
        counts.total(),
        counts.pass,
        if counts.fail > 0 { "fail" } else { "" },
        counts.fail,
        if counts.error > 0 { "error" } else { "" },
        counts.error,
        counts.observed
    );
    let classes: BTreeSet<String> = grid.cells().map(class_of).collect();
    out.push_str("<p class=\"legend\">");
    for class in &classes {
        let _ = write!(out, "<span class=\"swatch o-{class}\">{class}</span>");
    }
    let _ = writeln!(
        out,
        " &nbsp; {} pass &nbsp; {} fail: not the expected outcome &nbsp; {} error: the rig could not run the cell \
         &nbsp; unmarked: observed, nothing expected</p>",
        mark(Verdict::Pass),
        mark(Verdict::Fail),
        mark(Verdict::Error)
    );
}

/// The CSS class name of a cell's outcome: its class id, or `error`.
fn class_of(cell: &CellRecord) -> String {
    cell.observed.as_ref().map_or_else(|| "error".to_owned(), |o| o.outcome.outcome.as_str().to_owned())
}

fn table(out: &mut String, grid: &Grid<'_>) {
    out.push_str("<div class=\"grid-wrap\"><table class=\"grid\"><thead><tr><th>firmware \\ scenario</th>");
    for scenario in &grid.scenarios {
        let _ = write!(out, "<th scope=\"col\">{}</th>", Escaped(scenario));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut index = 0;
    for firmware in &grid.firmware {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", Escaped(firmware));
        for scenario in &grid.scenarios {
            let Some(cell) = grid.cell(firmware, scenario) else {
                out.push_str("<td class=\"none\" title=\"not run\">–</td>");
                continue;
            };
            let _ = write!(
                out,
                "<td><button type=\"button\" class=\"cell o-{} v-{}\" data-cell=\"c{index}\" aria-pressed=\"false\" \
                 title=\"{} × {}: {}\"><span class=\"mark\">{}</span>{}</button></td>",
                class_of(cell),
                cell.verdict.as_str(),
                Escaped(firmware),
                Escaped(scenario),
                cell.verdict.as_str(),
                mark(cell.verdict).trim(),
                Escaped(&cell.short_outcome())
            );
            index += 1;
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn detail(out: &mut String, id: &str, cell: &CellRecord, details: &CellDetails, dir: &Path) {
    let _ = write!(
        out,
        "<article class=\"cell-detail\" id=\"{id}\" hidden><h2>{} × {}</h2>\n<table class=\"facts\">",
        Escaped(&cell.firmware),
        Escaped(&cell.scenario)
    );
    let verdict = cell.verdict.as_str();
    let _ =
        write!(out, "<tr><th>verdict</th><td class=\"v-{verdict}\">{} {verdict}</td></tr>", mark(cell.verdict).trim());
    let expected = cell.expected.map_or_else(|| "nothing (observed only)".to_owned(), short);
    let _ = write!(out, "<tr><th>expected</th><td>{}</td></tr>", Escaped(&expected));
    let _ = write!(
        out,
        "<tr><th>observed</th><td class=\"o-{}\">{}</td></tr>",
        class_of(cell),
        Escaped(&cell.short_outcome())
    );
    if let Some(error) = &cell.error {
        let _ = write!(out, "<tr><th>error</th><td>{}</td></tr>", Escaped(error));
    }
    let _ = writeln!(
        out,
        "<tr><th>board</th><td>{}</td></tr><tr><th>time</th><td>{:.1} s</td></tr></table>",
        Escaped(&cell.board),
        cell.duration_ms as f64 / 1000.0
    );
    let evidence = cell.observed.as_ref().map(|o| o.evidence.as_slice()).unwrap_or_default();
    if !evidence.is_empty() {
        out.push_str("<h3>Deciding lines</h3><ul class=\"evidence\">");
        for line in evidence {
            let _ = write!(out, "<li><a href=\"#{id}-L{0}\">line {0}</a> {1}</li>", line.line, Escaped(&line.text));
        }
        out.push_str("</ul>\n");
    }
    if !details.server_events.is_empty() {
        out.push_str("<h3>Server events</h3><ol class=\"events\">");
        for event in &details.server_events {
            let _ = write!(out, "<li>{}</li>", Escaped(event));
        }
        out.push_str("</ol>\n");
    }
    if !details.chain.is_empty() {
        out.push_str("<h3>Chain served</h3>");
        chain::chain_section(out, &details.chain, details.device_clock);
        out.push('\n');
    }
    transcript(out, id, cell, dir);
    out.push_str("</article>\n");
}

fn transcript(out: &mut String, id: &str, cell: &CellRecord, dir: &Path) {
    let _ = write!(out, "<h3>Transcript <code>{}</code></h3>", Escaped(&cell.transcript));
    let transcript = read_transcript(dir, &cell.transcript);
    if let Some(missing) = &transcript.missing {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", Escaped(missing));
        return;
    }
    let deciding: BTreeSet<u64> = cell.observed.iter().flat_map(|o| o.evidence.iter().map(|e| e.line)).collect();
    out.push_str("<pre class=\"transcript\">");
    for (index, line) in transcript.lines.iter().enumerate() {
        let n = index as u64 + 1;
        // Numbers come from a CSS counter; deciding lines are marked and can be linked to. The
        // line end stays inside the line's own block: no blank line between blocks, and the
        // text copies with its line ends.
        if deciding.contains(&n) {
            let _ = write!(out, "<span class=\"l ev\" id=\"{id}-L{n}\">{}\n</span>", Escaped(line));
        } else {
            let _ = write!(out, "<span class=\"l\">{}\n</span>", Escaped(line));
        }
    }
    out.push_str("</pre>\n");
    if transcript.cut_bytes > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">Only the first {} KiB are shown; {} more bytes are in the file.</p>",
            MAX_TRANSCRIPT_BYTES / 1024,
            transcript.cut_bytes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_hashes_are_base64_sha256_with_padding() {
        assert_eq!(csp_hash(""), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
