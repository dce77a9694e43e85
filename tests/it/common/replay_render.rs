//! A replayed log as reviewable text for snapshots: outcome, evidence, attempts, and every
//! event with its line (events found in free text are marked).

use std::fmt::Write as _;

use otarig::console::{Source, events_of};
use otarig::verdict::judge;

/// Events and verdict of `bytes` as text.
pub fn render(bytes: &[u8]) -> String {
    let events = events_of(bytes);
    let verdict = judge(&events);
    let mut text = format!("outcome: {}\nevidence:\n", verdict.outcome);
    for line in &verdict.evidence {
        writeln!(text, "  {:>3} | {}", line.line, line.text).unwrap();
    }
    if verdict.attempts.len() > 1 {
        text.push_str("attempts:\n");
        for attempt in &verdict.attempts {
            writeln!(text, "  lines {}-{}: {}", attempt.lines[0], attempt.lines[1], attempt.outcome).unwrap();
        }
    }
    text.push_str("events:\n");
    for event in &events {
        let kind = serde_json::to_string(&event.kind).unwrap();
        let mark = if event.source == Source::FreeText { " (free text)" } else { "" };
        writeln!(text, "  {:>3} {kind}{mark}", event.line).unwrap();
    }
    text
}
