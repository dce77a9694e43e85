//! The top of the page: the counts, the legend, and the grid whose cells open their details.

use std::collections::{BTreeSet, HashMap};

use maud::{Markup, html};

use super::class_of;
use super::visible::visible;
use crate::report::grid::Grid;
use crate::report::matrix::mark;
use crate::results::{CellRecord, Counts, Verdict};

/// The id of each cell's detail, `c0`, `c1`… in grid order: the grid's button and the detail
/// it opens name the same one.
pub(crate) struct DetailIds<'a>(HashMap<(&'a str, &'a str), usize>);

impl<'a> DetailIds<'a> {
    pub fn new(grid: &Grid<'a>) -> Self {
        let key = |cell: &'a CellRecord| (cell.firmware.as_str(), cell.scenario.as_str());
        Self(grid.cells().enumerate().map(|(index, cell)| (key(cell), index)).collect())
    }

    pub fn of(&self, cell: &CellRecord) -> String {
        let index = self.0.get(&(cell.firmware.as_str(), cell.scenario.as_str())).copied().unwrap_or_default();
        format!("c{index}")
    }
}

/// How many cells, by verdict; the fail and error counts stand out when not zero.
pub fn counts(cells: &[CellRecord]) -> Markup {
    let counts = Counts::of(cells);
    let alarm = |n: usize, class: &'static str| if n > 0 { class } else { "" };
    html! {
        p class="counts" {
            span { (counts.total()) " cells" }
            span class="pass" { (counts.pass) " pass" }
            span class=(alarm(counts.fail, "fail")) { (counts.fail) " fail" }
            span class=(alarm(counts.error, "error")) { (counts.error) " error" }
            span { (counts.observed) " observed" }
        }
        "\n"
    }
}

/// A swatch per outcome class on the page, then what the marks mean.
pub(crate) fn legend(grid: &Grid<'_>) -> Markup {
    let classes: BTreeSet<String> = grid.cells().map(class_of).collect();
    html! {
        p class="legend" {
            @for class in &classes {
                span class={ "swatch o-" (class) } { (class) }
            }
            " \u{a0} " (mark(Verdict::Pass)) " pass \u{a0} " (mark(Verdict::Fail))
            " fail: not the expected outcome \u{a0} " (mark(Verdict::Error))
            " error: the rig could not run the cell \u{a0} unmarked: observed, nothing expected"
        }
        "\n"
    }
}

/// Firmware rows × scenario columns; each cell that ran is a button showing its detail.
pub(crate) fn grid_table(grid: &Grid<'_>, ids: &DetailIds<'_>) -> Markup {
    html! {
        div class="grid-wrap" {
            table class="grid" {
                thead {
                    tr {
                        th { "firmware \\ scenario" }
                        @for scenario in &grid.scenarios {
                            th scope="col" { (visible(scenario)) }
                        }
                    }
                }
                "\n"
                tbody {
                    "\n"
                    @for firmware in &grid.firmware {
                        tr {
                            th scope="row" { (visible(firmware)) }
                            @for scenario in &grid.scenarios {
                                @match grid.cell(firmware, scenario) {
                                    Some(cell) => td { (cell_button(cell, ids)) },
                                    None => td class="none" title="not run" { "–" },
                                }
                            }
                        }
                        "\n"
                    }
                }
            }
        }
        "\n"
    }
}

fn cell_button(cell: &CellRecord, ids: &DetailIds<'_>) -> Markup {
    let verdict = cell.verdict.as_str();
    html! {
        button type="button" class={ "cell o-" (class_of(cell)) " v-" (verdict) } data-cell=(ids.of(cell))
            aria-pressed="false" title={ (visible(&cell.firmware)) " × " (visible(&cell.scenario)) ": " (verdict) } {
            span class="mark" { (mark(cell.verdict).trim()) }
            (cell.short_outcome())
        }
    }
}
