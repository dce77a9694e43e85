//! The fleet's answers: per firmware, the certificate events it updates through and those it
//! fails, by date, and the day it stopped updating.
//!
//! An event is a cell whose result carries its scenario's date and whose scenario is not tagged
//! as a fault, a misconfiguration, a server's record size or a start state ([`NOT_EVENTS`]); cells the rig could not run
//! are left out. A firmware survives an event when it `updated`, and fails it on any other
//! outcome. Events belong to a family, the issuer their scenario is tagged with ([`FAMILIES`]):
//! a firmware that never updated from a family's servers is not stranded by them, it never
//! spoke to them, and their events are only counted. Events of one family and one day are
//! alternatives a server chooses between (a default chain and an alternate one), not a
//! sequence. The day a firmware stopped updating is the earliest day on which it fails every
//! event of a family it updated through on an earlier day. Events of that family it updates
//! through later (a rescue chain a server can choose) are named beside it; they do not undo the
//! date.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::outcome::{Outcome, OutcomeClass};
use crate::results::{CellRecord, short};

/// Tags that name an event's family: the issuer or host whose servers the event is about, or
/// the weakness it is about; a scenario tagged with two belongs to the first in its own list.
pub const FAMILIES: [&str; 9] =
    ["lets-encrypt", "google", "aws", "azure", "digicert", "sectigo", "github", "private-ca", "weak-hash"];

/// Tags of scenarios that are no certificate event: a server's fault (a 404, an HTML page, a
/// redirect), a server set up wrong (a missing intermediate, a wrong host name), a server set
/// up for devices with a reduced TLS input buffer (its record size), the state a device starts
/// in.
pub const NOT_EVENTS: [&str; 4] = ["fault", "misconfigured", "records", "start-state"];

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
/// those that stopped its updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareSummary<'a> {
    /// The firmware's manifest id.
    pub firmware: &'a str,
    /// The events it updated through, by date.
    pub survives: Vec<EventResult<'a>>,
    /// The events it did not update through, of the families it updated from, by date.
    pub fails: Vec<EventResult<'a>>,
    /// The families it never updated from, each with how many of their events it failed.
    pub never_from: Vec<(&'a str, usize)>,
    /// How the events of the families it never updated from ended (`out-of-memory`,
    /// `tls-verify/untrusted`), each with how many did.
    pub never_outcomes: Vec<(String, usize)>,
    /// The events of the day it stopped updating: every event of one family on the earliest day
    /// it failed them all, after updating from that family on an earlier day. Empty when it
    /// never stopped.
    pub stopped: Vec<EventResult<'a>>,
}

impl<'a> FirmwareSummary<'a> {
    /// The day it stopped updating, if it did.
    pub fn stranded_since(&self) -> Option<&'a str> {
        self.stopped.first().map(|e| e.date)
    }

    /// The events of the stopping family it updates through after that day.
    pub fn updates_again(&self) -> impl Iterator<Item = &EventResult<'a>> {
        let stopped = self.stopped.first();
        self.survives.iter().filter(move |e| stopped.is_some_and(|s| s.family == e.family && e.date > s.date))
    }

    /// The events it met, of either kind, in every family.
    pub fn events(&self) -> usize {
        self.survives.len() + self.fails.len() + self.never_from.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// The headline: stranded since when and by what, or how it fared without a stop.
    pub fn headline(&self) -> String {
        if let Some(since) = self.stranded_since() {
            let by: Vec<String> =
                self.stopped.iter().map(|e| format!("{}: {}", e.scenario, short(e.outcome))).collect();
            let mut line = format!("stranded since {since} ({})", by.join(", "));
            let again: Vec<String> = self.updates_again().map(|e| format!("{} ({})", e.scenario, e.date)).collect();
            if !again.is_empty() {
                let _ = write!(line, "; updates again through {}", again.join(", "));
            }
            return line;
        }
        match (self.survives.len(), self.events()) {
            (0, 0) => "no certificate event in these results".to_owned(),
            (0, _) => match self.never_outcomes.as_slice() {
                [(outcome, _)] => format!("updates through no event: every one ends {outcome}"),
                _ => "updates through no event".to_owned(),
            },
            (n, all) if n == all => format!("survives every event ({n})"),
            (n, all) => format!("not stranded (updates through {n} of {all} events)"),
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
    let family =
        facts.scenario_tags.iter().map(String::as_str).find(|tag| FAMILIES.contains(tag)).unwrap_or(OTHER_FAMILY);
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
    let updated_from: BTreeSet<&str> = events.iter().filter(|e| e.survived()).map(|e| e.family).collect();
    let stopped = stopping_day(&events);
    let mut never_from: BTreeMap<&str, usize> = BTreeMap::new();
    let mut never_outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let (mut survives, mut fails) = (Vec::new(), Vec::new());
    for event in events {
        if event.survived() {
            survives.push(event);
        } else if updated_from.contains(event.family) {
            fails.push(event);
        } else {
            *never_from.entry(event.family).or_default() += 1;
            *never_outcomes.entry(short(event.outcome)).or_default() += 1;
        }
    }
    FirmwareSummary {
        firmware,
        survives,
        fails,
        never_from: never_from.into_iter().collect(),
        never_outcomes: never_outcomes.into_iter().collect(),
        stopped,
    }
}

/// The events of the earliest (day, family) on which every event fails, after an event of the
/// family survived on an earlier day; `events` sorted by date.
fn stopping_day<'a>(events: &[EventResult<'a>]) -> Vec<EventResult<'a>> {
    let mut days: BTreeMap<(&str, &str), Vec<&EventResult<'a>>> = BTreeMap::new();
    for event in events {
        days.entry((event.date, event.family)).or_default().push(event);
    }
    let updated_before =
        |date: &str, family: &str| events.iter().any(|e| e.survived() && e.family == family && e.date < date);
    days.into_iter()
        .find(|((date, family), day)| day.iter().all(|e| !e.survived()) && updated_before(date, family))
        .map(|(_, day)| day.into_iter().cloned().collect())
        .unwrap_or_default()
}

/// The summary as terminal text, after the matrix: a headline per firmware, then the events it
/// survives and those it fails, by date, and the families it never updated from. Empty when no
/// result carries a scenario's date (results written before they did). `colour` paints the
/// headlines.
pub fn render_summary(cells: &[CellRecord], colour: bool) -> String {
    if cells.iter().all(|c| c.scenario_facts.scenario_date.is_none()) {
        return String::new();
    }
    let summaries = fleet_summary(cells);
    let head = summaries.iter().map(|s| s.firmware.chars().count()).max().unwrap_or(0);
    let mut out = String::from(
        "fleet: the certificate events each firmware updates through and those it fails, by date\n\
         (scenarios tagged fault, misconfigured, records or start-state left out)\n",
    );
    for summary in &summaries {
        let style = match (summary.stranded_since(), summary.survives.len()) {
            (Some(_), _) => "1;31",
            (None, n) if n > 0 && n == summary.events() => "32",
            _ => "",
        };
        let _ = write!(out, "{:<head$}  ", summary.firmware);
        super::matrix::paint(&mut out, colour, style, &summary.headline());
        out.push('\n');
        let survives = summary.survives.iter().map(|e| format!("{} {}", e.date, e.scenario));
        write_list(&mut out, "survives", survives);
        let fails = summary.fails.iter().map(|e| format!("{} {} ({})", e.date, e.scenario, short(e.outcome)));
        write_list(&mut out, "fails", fails);
        write_list(&mut out, "never updated from", never_from(summary));
    }
    out
}

/// `google (4 events)`, `aws (1 event)`: the families a firmware never updated from.
pub(crate) fn never_from<'s>(summary: &'s FirmwareSummary<'_>) -> impl Iterator<Item = String> + 's {
    summary.never_from.iter().map(|(family, n)| format!("{family} ({n} event{})", if *n == 1 { "" } else { "s" }))
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
    fn the_first_day_it_fails_a_family_it_updated_from_is_the_stop() {
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
        assert_eq!(ids(&dst.fails), ["short-2024", "short-2026"]);
        assert_eq!(dst.never_from, [("google", 1)]);
        assert_eq!(ids(&dst.stopped), ["short-2024"]);
        assert_eq!((dst.stopped[0].date, dst.stopped[0].family), ("2024-02-15", "lets-encrypt"));
        assert_eq!(dst.stopped[0].title, Some("short-2024's title"));
        assert_eq!(
            dst.headline(),
            "stranded since 2024-02-15 (short-2024: network); updates again through rescue (2026-11-25)"
        );
    }

    #[test]
    fn failures_before_any_update_of_their_family_or_beside_an_update_of_their_day_are_no_stop() {
        let cells = [
            cell("x1", "x3-2020", "2020-11-15", LE, UNTRUSTED),
            cell("x1", "long-2021", "2021-10-01", LE, UPDATED),
            cell("x1", "pinned-2021", "2021-10-01", LE, UNTRUSTED),
            cell("x1", "gts", "2026-11-25", GOOGLE, UNTRUSTED),
            cell("alt", "long-2021", "2021-10-01", LE, UPDATED),
            cell("alt", "e5-x2", "2024-06-10", LE, UNTRUSTED),
            cell("alt", "e5-cross", "2024-06-10", LE, UPDATED),
            cell("all", "long-2021", "2021-10-01", LE, UPDATED),
            cell("all", "gts", "2026-11-25", GOOGLE, UPDATED),
            cell("none", "gts", "2026-11-25", GOOGLE, UNTRUSTED),
            cell("mixed", "gts", "2026-11-25", GOOGLE, UNTRUSTED),
            cell("mixed", "long-2021", "2021-10-01", LE, Some("out-of-memory")),
            cell("faults", "html", "2026-11-25", &["fault"], UNTRUSTED),
            cell("faults", "r10-4k-records", "2024-06-10", &["chain", "lets-encrypt", "records"], UPDATED),
        ];
        let summary = fleet_summary(&cells);
        let headlines: Vec<(&str, String)> = summary.iter().map(|s| (s.firmware, s.headline())).collect();
        let expected = [
            ("all", "survives every event (2)"),
            ("alt", "not stranded (updates through 2 of 3 events)"),
            ("faults", "no certificate event in these results"),
            ("mixed", "updates through no event"),
            ("none", "updates through no event: every one ends tls-verify/untrusted"),
            ("x1", "not stranded (updates through 1 of 4 events)"),
        ];
        assert_eq!(headlines, expected.map(|(f, h)| (f, h.to_owned())));
        assert!(summary.iter().all(|s| s.stopped.is_empty() && s.stranded_since().is_none()));
        assert_eq!(ids(&summary[5].fails), ["x3-2020", "pinned-2021"]);
        assert_eq!(summary[5].never_from, [("google", 1)]);
        assert_eq!(
            summary[3].never_outcomes,
            [("out-of-memory".to_owned(), 1), ("tls-verify/untrusted".to_owned(), 1)]
        );
    }

    #[test]
    fn a_scenario_takes_its_first_family_tag_and_every_failure_of_the_stopping_day_is_named() {
        let cells = [
            cell("fw", "a", "2020-01-01", &["expiry"], UPDATED),
            cell("fw", "b", "2021-01-01", &["hostname"], UNTRUSTED),
            cell("fw", "c", "2021-01-01", &["expiry"], Some("tls-verify/expired")),
            cell("fw", "sha1", "2020-06-01", &["weak-hash", "lets-encrypt"], UNTRUSTED),
            cell("fw", "r10", "2021-01-01", &["chain", "lets-encrypt", "weak-hash"], UPDATED),
        ];
        let summary = fleet_summary(&cells);
        let fw = &summary[0];
        assert_eq!(fw.survives.iter().map(|e| e.family).collect::<Vec<_>>(), ["other", "lets-encrypt"]);
        assert_eq!(fw.never_from, [("weak-hash", 1)]);
        assert_eq!(ids(&fw.stopped), ["b", "c"]);
        assert_eq!(fw.headline(), "stranded since 2021-01-01 (b: tls-verify/untrusted, c: tls-verify/expired)");
    }

    #[test]
    fn the_terminal_summary_lists_both_kinds_by_date_and_is_empty_without_dates() {
        let cells = [
            cell("dst-x3", "long-2021", "2021-10-01", LE, UPDATED),
            cell("dst-x3", "short-2024", "2024-02-15", LE, UNTRUSTED),
            cell("dst-x3", "gsr2", "2021-06-01", GOOGLE, UNTRUSTED),
            cell("dst-x3", "gts", "2026-11-25", GOOGLE, UNTRUSTED),
        ];
        let text = render_summary(&cells, false);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "dst-x3  stranded since 2024-02-15 (short-2024: tls-verify/untrusted)",
                "  survives: 2021-10-01 long-2021",
                "  fails: 2024-02-15 short-2024 (tls-verify/untrusted)",
                "  never updated from: google (2 events)",
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
