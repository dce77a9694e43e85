//! The fleet's answers on the page: per firmware, the headline (stranded since when and by
//! what), the certificate events it survives and those it fails, by date, each naming its
//! scenario's title on hover, and the families it never updated from. Shown only when the
//! results carry scenarios' dates.

use maud::{Markup, html};

use super::visible::visible;
use crate::report::summary::{EventResult, FirmwareSummary, NOT_EVENTS, fleet_summary, never_from};
use crate::results::{CellRecord, short};

/// The `<section>` with the fleet summary, or nothing when no result carries a date.
pub(crate) fn fleet_section(cells: &[CellRecord]) -> Markup {
    if cells.iter().all(|c| c.scenario_facts.scenario_date.is_none()) {
        return html! {};
    }
    let summaries = fleet_summary(cells);
    html! {
        section id="fleet" {
            h2 { "Fleet" }
            p class="note" {
                "The certificate events each firmware updates through and those it fails, by date. "
                "Stranded since: the earliest day on which it fails every event of a family (an issuer) "
                "it updated from on an earlier day. Scenarios tagged " (NOT_EVENTS.join(", ")) " are left out."
            }
            "\n"
            table class="fleet" {
                thead { tr { th { "firmware" } th { "answer" } th { "survives" } th { "fails" } } }
                "\n"
                tbody {
                    "\n"
                    @for summary in &summaries {
                        (firmware_row(summary))
                    }
                }
            }
        }
        "\n"
    }
}

fn firmware_row(summary: &FirmwareSummary<'_>) -> Markup {
    let answer = if summary.stranded_since().is_some() { "stranded" } else { "" };
    let never: Vec<String> = never_from(summary).collect();
    html! {
        tr {
            th scope="row" { (visible(summary.firmware)) }
            td class=(answer) { (visible(&summary.headline())) }
            td { (events(&summary.survives, false)) }
            td {
                (events(&summary.fails, true))
                @if !never.is_empty() {
                    p class="never" { "never updated from: " (never.join(", ")) }
                }
            }
        }
        "\n"
    }
}

/// The events, one per line: date and scenario, with the outcome when `with_outcome`.
fn events(events: &[EventResult<'_>], with_outcome: bool) -> Markup {
    html! {
        ul class="events" {
            @for event in events {
                li title=(visible(event.title.unwrap_or(event.scenario))) {
                    span class="date" { (visible(event.date)) }
                    " " (visible(event.scenario))
                    @if with_outcome {
                        " " span class={ "o-" (event.outcome.outcome.as_str()) } { (short(event.outcome)) }
                    }
                }
            }
        }
    }
}
