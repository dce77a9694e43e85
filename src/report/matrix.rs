//! The run in a terminal: firmware rows × scenario columns, each cell the observed outcome in
//! short form, marked when judged (`✓` pass, `✗` fail, `!` error); the cells that need
//! attention listed under it, a legend and the counts.

use std::fmt::Write;

use super::grid::Grid;
use crate::outcome::OutcomeClass;
use crate::results::{CellRecord, Counts, Verdict, short};

/// Tables wider than this get numbered scenario headers, named in a legend above the table.
pub const MAX_WIDTH: usize = 160;

const GAP: &str = "  ";
const RESET: &str = "\x1b[0m";

/// The matrix as text. `colour` adds ANSI colours (outcome classes, marks); the caller decides,
/// from whether standard output is a terminal and `NO_COLOR`.
pub fn render_matrix(cells: &[CellRecord], colour: bool) -> String {
    let grid = Grid::new(cells);
    let mut out = String::new();
    if grid.firmware.is_empty() {
        out.push_str("no cells\n");
        return out;
    }
    let texts: Texts = grid
        .firmware
        .iter()
        .map(|f| grid.scenarios.iter().map(|s| grid.cell(f, s).map(|c| (c.verdict, c.short_outcome()))).collect())
        .collect();
    let columns = Columns::of(&grid, &texts);
    if columns.numbered {
        for (header, scenario) in columns.headers.iter().zip(&grid.scenarios) {
            let _ = writeln!(out, "{header:>5} {scenario}");
        }
        out.push('\n');
    }
    write_table(&mut out, &grid, &texts, &columns, colour);
    write_attention(&mut out, &grid, colour);
    out.push('\n');
    write_legend(&mut out, colour);
    let _ = writeln!(out, "{}", Counts::of(cells));
    out
}

/// Each cell's verdict and short outcome, by firmware row and scenario column.
type Texts = Vec<Vec<Option<(Verdict, String)>>>;

/// The table's columns: the firmware column's width, then each scenario's header and width.
struct Columns {
    row_head: usize,
    /// The scenario ids, or `[n]` when the table would be wider than [`MAX_WIDTH`].
    headers: Vec<String>,
    numbered: bool,
    widths: Vec<usize>,
}

impl Columns {
    fn of(grid: &Grid<'_>, texts: &Texts) -> Self {
        let row_head = grid.firmware.iter().map(|f| width(f)).max().unwrap_or(0).max("firmware".len());
        let content: Vec<usize> = (0..grid.scenarios.len())
            .map(|col| texts.iter().filter_map(|row| row[col].as_ref()).map(|(_, t)| 2 + width(t)).max().unwrap_or(1))
            .collect();
        let full: usize =
            row_head + content.iter().zip(&grid.scenarios).map(|(w, s)| GAP.len() + (*w).max(width(s))).sum::<usize>();
        let numbered = full > MAX_WIDTH;
        let headers: Vec<String> = if numbered {
            (1..=grid.scenarios.len()).map(|n| format!("[{n}]")).collect()
        } else {
            grid.scenarios.iter().map(ToString::to_string).collect()
        };
        let widths = content.iter().zip(&headers).map(|(w, h)| (*w).max(width(h))).collect();
        Self { row_head, headers, numbered, widths }
    }
}

/// The header line and a line per firmware: each cell's mark and outcome, `-` where none ran.
fn write_table(out: &mut String, grid: &Grid<'_>, texts: &Texts, columns: &Columns, colour: bool) {
    let row_head = columns.row_head;
    let mut line = format!("{:<row_head$}", "firmware");
    for (header, w) in columns.headers.iter().zip(&columns.widths) {
        let _ = write!(line, "{GAP}{header:<w$}");
    }
    push_line(out, &line);
    for (firmware, row) in grid.firmware.iter().zip(texts) {
        let mut line = format!("{firmware:<row_head$}");
        for ((cell, w), scenario) in row.iter().zip(&columns.widths).zip(&grid.scenarios) {
            line.push_str(GAP);
            match cell {
                Some((verdict, text)) => {
                    let record = grid.cell(firmware, scenario);
                    let class = record.and_then(|r| r.observed.as_ref()).map(|o| o.outcome.outcome);
                    let pad = w.saturating_sub(2 + width(text));
                    paint(&mut line, colour, verdict_style(*verdict), mark(*verdict));
                    line.push(' ');
                    paint(&mut line, colour, class.map_or("1;35", class_style), text);
                    line.push_str(&" ".repeat(pad));
                }
                None => {
                    let _ = write!(line, "{:<w$}", "-");
                }
            }
        }
        push_line(out, &line);
    }
}

/// The cells that failed or could not run, each with what was expected or what went wrong.
fn write_attention(out: &mut String, grid: &Grid<'_>, colour: bool) {
    let attention: Vec<&CellRecord> = grid.cells().filter(|c| c.verdict.is_bad()).collect();
    if attention.is_empty() {
        return;
    }
    out.push('\n');
    for cell in attention {
        let mut line = String::new();
        paint(&mut line, colour, verdict_style(cell.verdict), mark(cell.verdict));
        let _ = write!(line, " {} × {}: ", cell.firmware, cell.scenario);
        match cell.verdict {
            Verdict::Fail => {
                let expected = cell.expected.map_or_else(|| "nothing".to_owned(), short);
                let _ = write!(line, "expected {expected}, observed {}", cell.short_outcome());
            }
            _ => line.push_str(cell.error.as_deref().unwrap_or("the rig could not run the cell")),
        }
        push_line(out, &line);
    }
}

/// What the marks mean.
fn write_legend(out: &mut String, colour: bool) {
    let mut legend = String::new();
    for (verdict, meaning) in [
        (Verdict::Pass, "pass"),
        (Verdict::Fail, "fail (not the expected outcome)"),
        (Verdict::Error, "error (the rig could not run the cell)"),
    ] {
        paint(&mut legend, colour, verdict_style(verdict), mark(verdict));
        let _ = write!(legend, " {meaning}   ");
    }
    legend.push_str("unmarked: observed (nothing expected)");
    push_line(out, &legend);
}

/// The mark a verdict puts before a cell's outcome.
pub const fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✓",
        Verdict::Fail => "✗",
        Verdict::Error => "!",
        Verdict::Observed => " ",
    }
}

fn verdict_style(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "32",
        Verdict::Fail => "1;31",
        Verdict::Error => "1;35",
        Verdict::Observed => "",
    }
}

/// One colour per family of outcomes: updated green, rollback yellow, certificate red, other
/// TLS magenta, crashes bold red, network and HTTP blue, images cyan, undecided dim.
fn class_style(class: OutcomeClass) -> &'static str {
    use OutcomeClass::*;
    match class {
        Updated => "32",
        RolledBack => "33",
        TlsVerify => "31",
        TlsCrypto | TlsAlert | TlsProtocol => "35",
        OutOfMemory | Crashed => "1;31",
        Network | HttpStatus => "34",
        ImageInvalid => "36",
        Timeout | Incomplete | Unknown => "2",
    }
}

pub(super) fn paint(out: &mut String, colour: bool, style: &str, text: &str) {
    if colour && !style.is_empty() && !text.trim().is_empty() {
        let _ = write!(out, "\x1b[{style}m{text}{RESET}");
    } else {
        out.push_str(text);
    }
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Columns a text takes: ids and outcomes are ASCII, the marks one column each.
fn width(text: &str) -> usize {
    text.chars().count()
}
