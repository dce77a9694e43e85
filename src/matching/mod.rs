//! From a field log to the library's cells: which firmware × scenario cells of the shipped
//! matrix end the way a captured log ends.
//!
//! A log is reduced to a [`Fingerprint`]: the outcome its last attempt ended in and that
//! attempt's decisive lines (its evidence and every error or warning line), each
//! [normalised](normalise) so that times, addresses, sizes and other numbers do not count. The
//! twins' transcripts of every cell are reduced the same way into an [`Index`], built once by
//! running the matrix ([`build`]) and kept on disk under a key of everything that shapes the
//! transcripts ([`IndexKey`]). [`rank`] orders the cells: the same outcome and reason first,
//! then by how many of the log's decisive lines the cell's transcript has too.

mod index;
mod normalise;

use serde::{Deserialize, Serialize};

use crate::console::Formats;
use crate::outcome::Outcome;
use crate::replay::{ReplayReport, replay_bytes};

pub use index::{INDEX_FILE, Index, IndexError, IndexKey, IndexedCell, build, load};
pub use normalise::normalise;

/// What a log ended in, for comparing with others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The outcome of the log's last attempt (the log's verdict).
    pub outcome: Outcome,
    /// The decisive lines of the last attempt, normalised, in log order, without repeats.
    pub lines: Vec<String>,
}

impl Fingerprint {
    /// The fingerprint of a log: its replay and the lines of its last attempt.
    pub fn of_log(bytes: &[u8]) -> Fingerprint {
        Fingerprint::of_report(&replay_bytes(bytes), bytes)
    }

    /// The fingerprint of a log already replayed into `report`.
    pub fn of_report(report: &ReplayReport, bytes: &[u8]) -> Fingerprint {
        let mut lines: Vec<String> = Vec::new();
        let mut keep = |line: String| {
            if !line.is_empty() && !lines.contains(&line) {
                lines.push(line);
            }
        };
        for line in attempt_lines(bytes, report) {
            if line.starts_with("E ") || line.starts_with("W ") {
                keep(line);
            }
        }
        if let Some(attempt) = report.verdict.attempts.last() {
            for evidence in &attempt.evidence {
                keep(normalise(&evidence.text));
            }
        }
        Fingerprint { outcome: report.verdict.outcome, lines }
    }
}

/// The lines of the log's decided (last) attempt, [normalised](normalise), empty ones left out.
pub fn attempt_lines(bytes: &[u8], report: &ReplayReport) -> Vec<String> {
    let Some(attempt) = report.verdict.attempts.last() else { return Vec::new() };
    let [first, last] = attempt.lines;
    String::from_utf8_lossy(bytes)
        .split('\n')
        .enumerate()
        .filter(|(index, _)| (first.saturating_sub(1)..last).contains(&(*index as u64)))
        .map(|(_, line)| normalise(line))
        .filter(|line| !line.is_empty())
        .collect()
}

/// A twin transcript's device output: what comes before the server's events.
pub fn device_part(transcript: &str) -> &str {
    transcript.split_once(SERVER_PART).map_or(transcript, |(device, _)| device)
}

/// The transcript's part after the device's output (the server's events).
const SERVER_PART: &str = "\n--- server ---";

/// A cell of the index and how well it matches a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Match<'a> {
    /// The cell of the index.
    pub cell: &'a IndexedCell,
    /// The same outcome class as the log.
    pub same_outcome: bool,
    /// The same class and the same reason (or both none).
    pub same_reason: bool,
    /// The log's decisive lines the cell's transcript has too.
    pub agreeing: Vec<&'a str>,
    /// The log's decisive lines.
    pub of: usize,
    /// The cell's decisive lines the log does not have.
    pub extra: usize,
}

/// The cells of `index` ranked against `log`, best first: same outcome and reason, then same
/// outcome, then by agreeing lines, then by fewest lines of their own; ties by firmware and
/// scenario id.
pub fn rank<'a>(log: &Fingerprint, index: &'a Index) -> Vec<Match<'a>> {
    let mut matches: Vec<Match<'a>> = index
        .cells
        .iter()
        .map(|cell| {
            let same_outcome = cell.fingerprint.outcome.outcome == log.outcome.outcome;
            let agreeing: Vec<&str> =
                cell.fingerprint.lines.iter().filter(|line| log.lines.contains(line)).map(String::as_str).collect();
            Match {
                extra: cell.fingerprint.lines.len() - agreeing.len(),
                cell,
                same_outcome,
                same_reason: same_outcome && cell.fingerprint.outcome.reason == log.outcome.reason,
                agreeing,
                of: log.lines.len(),
            }
        })
        .collect();
    matches.sort_by(|a, b| {
        (b.same_reason, b.same_outcome, b.agreeing.len())
            .cmp(&(a.same_reason, a.same_outcome, a.agreeing.len()))
            .then_with(|| a.extra.cmp(&b.extra))
            .then_with(|| (&a.cell.firmware, &a.cell.scenario).cmp(&(&b.cell.firmware, &b.cell.scenario)))
    });
    matches
}

/// Which of the log's lines a twin's can be compared with: a log of another program than
/// ESP-IDF's examples (Arduino-ESP32, ESPHome) shares only the library layers' lines (esp-tls,
/// the transport, the HTTP client, `esp_https_ota`, the bundle, the image checks).
pub fn comparable_layers(formats: &Formats) -> Option<&'static str> {
    (formats.arduino || formats.esphome).then_some(
        "only the ESP-IDF library layers' lines (esp-tls, transport, HTTP_CLIENT, esp_https_ota, \
         esp-x509-crt-bundle, esp_image) can agree with a twin's; the program's own lines cannot",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{OutcomeClass, VerifyReason};

    const V3_2_UNTRUSTED: &str = "I (5018) esp_https_ota: Starting OTA...\n\
        E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700\n\
        I (7513) esp-tls: Failed to verify peer certificate!\n\
        I (7513) esp-tls: verification info:   ! The certificate is not correctly signed by the trusted CA\n\
        E (7523) esp-tls: Failed to open new connection\n\
        E (7523) TRANS_SSL: Failed to open a new connection\n\
        E (7533) HTTP_CLIENT: Connection failed, sock < 0\n\
        E (7533) esp_https_ota: Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT\n";

    fn cell(firmware: &str, outcome: Outcome, lines: &[&str]) -> IndexedCell {
        IndexedCell {
            firmware: firmware.to_owned(),
            scenario: "s".to_owned(),
            fingerprint: Fingerprint { outcome, lines: lines.iter().map(|l| (*l).to_owned()).collect() },
            transcript: "t.log".into(),
        }
    }

    #[test]
    fn a_log_s_fingerprint_is_its_verdict_and_decisive_lines_without_numbers() {
        let print = Fingerprint::of_log(V3_2_UNTRUSTED.as_bytes());
        assert_eq!(print.outcome, Outcome::tls_verify(VerifyReason::Untrusted));
        assert!(print.lines.contains(&"E esp-tls: mbedtls_ssl_handshake returned -0x#".to_owned()), "{print:?}");
        assert!(
            print.lines.contains(&"E esp_https_ota: Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT".to_owned())
        );
        assert!(!print.lines.iter().any(|l| l.contains("Starting OTA")), "an INFO line that decides nothing");
    }

    #[test]
    fn cells_rank_by_outcome_then_reason_then_agreeing_lines() {
        let log = Fingerprint::of_log(V3_2_UNTRUSTED.as_bytes());
        let untrusted = Outcome::tls_verify(VerifyReason::Untrusted);
        let index = Index {
            key: IndexKey("k".into()),
            cells: vec![
                cell("a-network", Outcome::of(OutcomeClass::Network), &["E esp-tls: Failed to open new connection"]),
                cell("b-expired", Outcome::tls_verify(VerifyReason::Expired), &[]),
                cell("c-untrusted-few", untrusted, &["E esp-tls: Failed to open new connection"]),
                cell("d-untrusted-many", untrusted, &log.lines.iter().map(String::as_str).collect::<Vec<_>>()),
            ],
        };
        let ranked: Vec<&str> = rank(&log, &index).iter().map(|m| m.cell.firmware.as_str()).collect();
        assert_eq!(ranked, ["d-untrusted-many", "c-untrusted-few", "b-expired", "a-network"]);
        let best = &rank(&log, &index)[0];
        assert_eq!((best.agreeing.len(), best.of), (log.lines.len(), log.lines.len()));
    }
}
