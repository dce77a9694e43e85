//! The fleet's answers: per firmware, the certificate events it updates through and those it
//! fails, by date, and the day it stopped updating.
//!
//! An event is a cell whose result carries its scenario's date and whose scenario is not tagged
//! as a fault, a misconfiguration or a start state ([`NOT_EVENTS`]); cells the rig could not run
//! are left out. A firmware survives an event when it `updated`, and fails it on any other
//! outcome. Events belong to a family, the issuer their scenario is tagged with
//! ([`FAMILIES`]): a firmware that never updated from a family's servers is not stranded by
//! them, it never spoke to them. The day it stopped updating is the date of the earliest event
//! it fails after an event of the same family, dated before, that it updated through. Events of
//! that family it updates through later (a rescue chain a server can choose) are named beside
//! it; they do not undo the date.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::outcome::{Outcome, OutcomeClass};
use crate::results::{CellRecord, short};

/// Tags that name an event's family: the issuer or host whose servers the event is about, in
/// the order they are looked for (a scenario tagged with two belongs to the first here).
pub const FAMILIES: [&str; 9] =
    ["lets-encrypt", "google", "aws", "azure", "digicert", "sectigo", "github", "private-ca", "weak-hash"];

/// Tags of scenarios that are no certificate event: a server's fault (a 404, an HTML page, a
/// redirect), a server set up wrong (a missing intermediate, a wrong host name), the state a
/// device starts in.
pub const NOT_EVENTS: [&str; 3] = ["fault", "misconfigured", "start-state"];

/// The family of events without a tag of [`FAMILIES`].
const OTHER_FAMILY: &str = "other";

/// How one firmware fared in one certificate event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventResult<'a> {
    /// The scenario's id.
    pub scenario: &'a str,
    /// The scenario's title, when the results carry it.
    pub title: Option<&'a str>,
    /// The day the scenario stands at, `YYYY-MM-DD`.
    pub date: &'a str,
    /// The event's family: a tag of [`FAMILIES`], or `other`.
    pub family: &'a str,
    /// What the device did.
    pub outcome: Outcome,
}

impl EventResult<'_> {
    /// The update went through.
    pub fn survived(&self) -> bool {
        self.outcome.outcome == OutcomeClass::Updated
    }
}

/// One firmware's answer: the events it updates through and those it fails, each by date, and
/// the one that first stopped its updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareSummary<'a> {
    /// The firmware's manifest id.
    pub firmware: &'a str,
    /// The events it updated through, by date.
    pub survives: Vec<EventResult<'a>>,
    /// The events it did not update through, by date.
    pub fails: Vec<EventResult<'a>>,
    /// The earliest event it fails after updating through an earlier one of the same family.
    pub stopped: Option<EventResult<'a>>,
}

impl<'a> FirmwareSummary<'a> {
    /// The events of the stopping event's family it updates through after that date.
    pub fn updates_again(&self) -> impl Iterator<Item = &EventResult<'a>> {
        let stopped = self.stopped.as_ref();
        self.survives.iter().filter(move |e| stopped.is_some_and(|s| s.family == e.family && e.date > s.date))
    }

    /// The events it met, of either kind.
    pub fn events(&self) -> usize {
        self.survives.len() + self.fails.len()
    }

    /// The headline: stranded since when and by what, or how it fared without a stop.
    pub fn headline(&self) -> String {
        if let Some(stopped) = &self.stopped {
            let mut line =
                format!("stranded since {} ({}: {})", stopped.date, stopped.scenario, short(stopped.outcome));
            let again: Vec<String> = self.updates_again().map(|e| format!("{} ({})", e.scenario, e.date)).collect();
            if !again.is_empty() {
                let _ = write!(line, "; updates again through {}", again.join(", "));
            }
            return line;
        }
        match (self.survives.len(), self.fails.len()) {
            (0, 0) => "no certificate event in these results".to_owned(),
            (n, 0) => format!("survives every event ({n})"),
            (0, _) => "updates through no event".to_owned(),
            (n, _) => format!(
                "not stranded: updates through {n} of {} events, and fails none after updating from its family",
                self.events()
            ),
        }
    }
}

/// The summary of every firmware in `cells`, sorted by id; firmware with no event is listed
/// with none.
pub fn fleet_summary(cells: &[CellRecord]) -> Vec<FirmwareSummary<'_>> {
    let mut by_firmware: BTreeMap<&str, Vec<EventResult<'_>>> = BTreeMap::new();
    for cell in cells {
        let events = by_firmware.entry(cell.firmware.as_str()).or_default();
        if let Some(event) = event_of(cell) {
            events.push(event);
        }
    }
    by_firmware.into_iter().map(|(firmware, events)| summarise(firmware, events)).collect()
}

/// The cell as an event: it has a date and an observed outcome, and its scenario is not tagged
/// as something else than a certificate event.
fn event_of(cell: &CellRecord) -> Option<EventResult<'_>> {
    let facts = &cell.scenario_facts;
    let date = facts.scenario_date.as_deref()?;
    let observed = cell.observed.as_ref()?;
    if facts.scenario_tags.iter().any(|tag| NOT_EVENTS.contains(&tag.as_str())) {
        return None;
    }
    let family = FAMILIES
        .iter()
        .find(|family| facts.scenario_tags.iter().any(|tag| tag == *family))
        .copied()
        .unwrap_or(OTHER_FAMILY);
    Some(EventResult {
        scenario: &cell.scenario,
        title: facts.scenario_title.as_deref(),
        date,
        family,
        outcome: observed.outcome,
    })
}

fn summarise<'a>(firmware: &'a str, mut events: Vec<EventResult<'a>>) -> FirmwareSummary<'a> {
    events.sort_by(|a, b| (a.date, a.scenario).cmp(&(b.date, b.scenario)));
    let stopped = events
        .iter()
        .find(|failed| {
            !failed.survived()
                && events.iter().any(|e| e.survived() && e.family == failed.family && e.date < failed.date)
        })
        .cloned();
    let (survives, fails): (Vec<_>, Vec<_>) = events.into_iter().partition(EventResult::survived);
    FirmwareSummary { firmware, survives, fails, stopped }
}

/// The summary as terminal text, after the matrix: a headline per firmware, then the events it
/// survives and those it fails, by date. Empty when no result carries a scenario's date
/// (results written before they did). `colour` paints the headlines.
pub fn render_summary(cells: &[CellRecord], colour: bool) -> String {
    if cells.iter().all(|c| c.scenario_facts.scenario_date.is_none()) {
        return String::new();
    }
    let summaries = fleet_summary(cells);
    let head = summaries.iter().map(|s| s.firmware.chars().count()).max().unwrap_or(0);
    let mut out = String::from(
        "fleet: the certificate events each firmware updates through and those it fails, by date\n\
         (scenarios tagged fault, misconfigured or start-state left out)\n",
    );
    for summary in &summaries {
        let style = match (&summary.stopped, summary.fails.is_empty()) {
            (Some(_), _) => "1;31",
            (None, true) if !summary.survives.is_empty() => "32",
            _ => "",
        };
        let _ = write!(out, "{:<head$}  ", summary.firmware);
        super::matrix::paint(&mut out, colour, style, &summary.headline());
        out.push('\n');
        let survives = summary.survives.iter().map(|e| format!("{} {}", e.date, e.scenario));
        write_list(&mut out, "survives", survives);
        let stranded = summary.fails.iter().map(|e| format!("{} {} ({})", e.date, e.scenario, short(e.outcome)));
        write_list(&mut out, "fails", stranded);
    }
    out
}

/// Lines wider than this wrap their list.
const WRAP: usize = 110;

/// `  label: a, b, c`, wrapped under the first item; nothing when the list is empty.
fn write_list(out: &mut String, label: &str, items: impl Iterator<Item = String>) {
    let lead = format!("  {label}: ");
    let indent = " ".repeat(lead.chars().count());
    let mut line = lead.clone();
    let mut first = true;
    for item in items {
        if !first && line.chars().count() + 2 + item.chars().count() >= WRAP {
            line.push(',');
            out.push_str(&line);
            out.push('\n');
            line = indent.clone();
        } else if !first {
            line.push_str(", ");
        }
        line.push_str(&item);
        first = false;
    }
    if !first {
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A result of `firmware` × `scenario`: `outcome` (`None`: the rig could not run it), the
    /// scenario's date and tags.
    fn cell(firmware: &str, scenario: &str, date: &str, tags: &[&str], outcome: Option<&str>) -> CellRecord {
        let observed = outcome.map(|o| {
            let (class, reason) = o.split_once('/').map_or((o, None), |(c, r)| (c, Some(r)));
            json!({"outcome": class, "reason": reason, "evidence": []})
        });
        let verdict = if observed.is_some() { "observed" } else { "error" };
        serde_json::from_value(json!({
            "firmware": firmware, "scenario": scenario, "board": "twin-1", "expected": null,
            "observed": observed, "verdict": verdict, "transcript": "t.log", "duration_ms": 1,
            "scenario_date": date, "scenario_tags": tags, "scenario_title": format!("{scenario}'s title"),
        }))
        .unwrap()
    }

    const LE: &[&str] = &["chain", "lets-encrypt"];
    const GOOGLE: &[&str] = &["chain", "google"];
    const UNTRUSTED: Option<&str> = Some("tls-verify/untrusted");
    const UPDATED: Option<&str> = Some("updated");

    fn ids<'a>(events: &'a [EventResult<'_>]) -> Vec<&'a str> {
        events.iter().map(|e| e.scenario).collect()
    }

    /// The founding case: updates through the long chain, stranded by the short chain, saved by
    /// the rescue chain; Google's events strand nothing, it never updated from Google.
    #[test]
    fn the_first_failure_after_an_update_of_its_family_is_the_stop() {
        let cells = [
            cell("dst", "short-2026", "2026-11-25", LE, UNTRUSTED),
            cell("dst", "rescue", "2026-11-25", LE, UPDATED),
            cell("dst", "gsr2", "2021-06-01", GOOGLE, UNTRUSTED),
            cell("dst", "long-2021", "2021-10-01", LE, UPDATED),
            cell("dst", "short-2024", "2024-02-15", LE, Some("network")),
            cell("dst", "html", "2024-01-01", &["fault", "http"], Some("image-invalid")),
            cell("dst", "broken", "2023-01-01", LE, None),
        ];
        let summary = fleet_summary(&cells);
        assert_eq!(summary.len(), 1);
        let dst = &summary[0];
        assert_eq!(ids(&dst.survives), ["long-2021", "rescue"]);
        assert_eq!(ids(&dst.fails), ["gsr2", "short-2024", "short-2026"]);
        let stopped = dst.stopped.as_ref().unwrap();
        assert_eq!((stopped.scenario, stopped.date, stopped.family), ("short-2024", "2024-02-15", "lets-encrypt"));
        assert_eq!(stopped.title, Some("short-2024's title"));
        assert_eq!(
            dst.headline(),
            "stranded since 2024-02-15 (short-2024: network); updates again through rescue (2026-11-25)"
        );
    }

    #[test]
    fn failures_before_any_update_of_their_family_or_on_its_day_are_no_stop() {
        let cells = [
            cell("x1", "x3-2020", "2020-11-15", LE, UNTRUSTED),
            cell("x1", "long-2021", "2021-10-01", LE, UPDATED),
            cell("x1", "pinned-2021", "2021-10-01", LE, UNTRUSTED),
            cell("x1", "gts", "2026-11-25", GOOGLE, UNTRUSTED),
            cell("all", "long-2021", "2021-10-01", LE, UPDATED),
            cell("all", "gts", "2026-11-25", GOOGLE, UPDATED),
            cell("none", "gts", "2026-11-25", GOOGLE, UNTRUSTED),
            cell("faults", "html", "2026-11-25", &["fault"], UNTRUSTED),
        ];
        let summary = fleet_summary(&cells);
        let headlines: Vec<(&str, String)> = summary.iter().map(|s| (s.firmware, s.headline())).collect();
        assert_eq!(
            headlines,
            [
                ("all", "survives every event (2)".to_owned()),
                ("faults", "no certificate event in these results".to_owned()),
                ("none", "updates through no event".to_owned()),
                (
                    "x1",
                    "not stranded: updates through 1 of 4 events, and fails none after updating from its family"
                        .to_owned()
                ),
            ]
        );
        assert!(summary.iter().all(|s| s.stopped.is_none()));
    }

    #[test]
    fn events_without_an_issuer_tag_are_one_family_and_an_issuer_comes_before_weak_hash() {
        let cells = [
            cell("fw", "a", "2020-01-01", &["expiry"], UPDATED),
            cell("fw", "b", "2021-01-01", &["hostname"], UNTRUSTED),
            cell("fw", "sha1", "2021-01-01", &["weak-hash", "lets-encrypt"], UNTRUSTED),
        ];
        let summary = fleet_summary(&cells);
        assert_eq!(summary[0].fails.iter().map(|e| e.family).collect::<Vec<_>>(), ["other", "lets-encrypt"]);
        assert_eq!(summary[0].stopped.as_ref().map(|e| e.scenario), Some("b"));
    }

    #[test]
    fn the_terminal_summary_lists_both_kinds_by_date_and_is_empty_without_dates() {
        let cells = [
            cell("dst-x3", "long-2021", "2021-10-01", LE, UPDATED),
            cell("dst-x3", "short-2024", "2024-02-15", LE, UNTRUSTED),
        ];
        let text = render_summary(&cells, false);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "dst-x3  stranded since 2024-02-15 (short-2024: tls-verify/untrusted)",
                "  survives: 2021-10-01 long-2021",
                "  fails: 2024-02-15 short-2024 (tls-verify/untrusted)",
            ]
        );
        assert!(render_summary(&cells, true).contains("\x1b[1;31mstranded since"));

        let mut undated = cells.clone();
        for cell in &mut undated {
            cell.scenario_facts = Default::default();
        }
        assert_eq!(render_summary(&undated, false), "");
    }

    #[test]
    fn a_long_list_wraps_under_its_first_item() {
        let cells: Vec<CellRecord> =
            (0..12).map(|n| cell("fw", &format!("scenario-{n:02}"), "2020-01-01", LE, UPDATED)).collect();
        let text = render_summary(&cells, false);
        let list: Vec<&str> = text.lines().skip(3).collect();
        assert!(list.len() > 1, "{text}");
        assert!(list.iter().all(|l| l.chars().count() <= WRAP), "{text}");
        assert!(list[1].starts_with(&" ".repeat("  survives: ".len())) && list[0].ends_with(','), "{text}");
        assert_eq!(text.matches("2020-01-01 scenario-").count(), 12);
    }
}
