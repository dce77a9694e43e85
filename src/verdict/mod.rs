//! Events → one outcome with the lines that decided it.
//!
//! A log may hold several attempts (retries, an update after failures, the new image's own
//! check). Each is judged on its own; the last one decides the log. An attempt starts at an
//! update check, at a failure that is not a consequence of the previous one, or at a start
//! of transfer after an attempt has ended. Within an attempt the first failure decides and
//! later lines refine it (verification reasons) or follow from it (`Failed to open new
//! connection`). Success is read from what the device does after writing: it restarts, the
//! bootloader loads the partition that was written, and the new image prints its start-up
//! lines; v4.4 and later print no success line of their own. Errors named in free text
//! ([`Source::FreeText`]) decide only an attempt no line of a recognised format decides.

mod attempt;
mod classify;
pub mod esp_err;
mod report;

use serde::Serialize;

pub use report::{AttemptReport, ErrorCode, Evidence};

use crate::console::{Event, EventKind, Source};
use crate::outcome::{Outcome, OutcomeClass};
use attempt::Attempt;

/// Attempts kept for the report; older ones are counted, not kept.
pub const MAX_REPORTED_ATTEMPTS: usize = 256;
/// Partition table rows remembered (a table holds at most 95).
const MAX_PARTITION_ROWS: usize = 96;

/// The judgement of a whole log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The outcome of the log: that of its last attempt.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The lines that decided the outcome (those of the last attempt).
    pub evidence: Vec<Evidence>,
    /// The most recent attempts, oldest first; the last one decided.
    pub attempts: Vec<AttemptReport>,
    /// Attempts in the whole log, including those not kept.
    pub attempts_total: u64,
}

/// Judges a stream of events; see the module documentation.
#[derive(Debug, Default)]
pub struct Judge {
    current: Option<Attempt>,
    finished: std::collections::VecDeque<AttemptReport>,
    attempts_total: u64,
    /// Offset of the app the bootloader loaded last.
    running_offset: Option<u32>,
    partition_table: Vec<(String, u32)>,
    /// MicroPython's banner said the `ssl` module is axTLS (ESP8266).
    axtls: bool,
}

impl Judge {
    /// A judge that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next event, in the order the lines were printed.
    pub fn observe(&mut self, event: &Event) {
        use EventKind as E;
        if event.source == Source::FreeText {
            self.observe_free_text(event);
            return;
        }
        if matches!(event.kind, E::EspError { .. }) {
            // A call's `esp_err_t` follows from the failure before it; alone it decides.
            if self.current.as_ref().is_some_and(|a| a.has_cause() && !a.ended_in_update()) {
                self.follow_on(event);
                return;
            }
        }
        if let Some(family) = classify::family(&event.kind) {
            let joins = self.current.as_ref().is_some_and(|a| a.accepts_failure(family, &event.kind));
            self.attempt_for(event, joins).fail(event, family);
            return;
        }
        match &event.kind {
            E::UpdateCheck | E::OtaStarted | E::OtaWriting { .. } | E::OtaProgress => {
                let joins = self.current.as_ref().is_some_and(|a| a.accepts_progress(&event.kind));
                self.attempt_for(event, joins).progress(event);
            }
            E::DownloadFinished | E::ImageSegment | E::BootPartitionSet | E::UpdateSucceeded { .. } => {
                if let Some(attempt) = &mut self.current {
                    attempt.progress(event);
                } else if matches!(event.kind, E::UpdateSucceeded { .. } | E::BootPartitionSet) {
                    self.attempt_for(event, false).progress(event);
                }
            }
            E::PeerVerifyFailed | E::VerifyInfo { .. } | E::PeerVerified | E::BundleAccepted => {
                let joins = self.current.is_some();
                self.attempt_for(event, joins).detail(event);
            }
            E::ConnectionFailed
            | E::UpdateFailed
            | E::ArduinoUpdateError { .. }
            | E::HttpClientError { .. }
            | E::OtaWriteFailed { .. }
            | E::OtaEndFailed => self.follow_on(event),
            E::TransportReadError => {
                // Printed for reads that are only to be tried again too: evidence of a failure
                // said before it, never a failure of its own.
                if self.current.as_ref().is_some_and(Attempt::has_cause) {
                    self.follow_on(event);
                }
            }
            E::RollbackReported => {
                let joins = self.current.as_ref().is_some_and(|a| !a.is_concluded());
                self.attempt_for(event, joins).rollback_reported(event);
            }
            _ => self.observe_boot(event),
        }
    }

    /// Resets, the bootloader's choice and the application's start.
    fn observe_boot(&mut self, event: &Event) {
        use EventKind as E;
        match &event.kind {
            E::Reset { .. } => {
                if let Some(attempt) = &mut self.current {
                    attempt.reset(event);
                }
            }
            E::AppLoaded { offset } => {
                if let Some(attempt) = &mut self.current {
                    attempt.loaded(event, *offset, &self.partition_table);
                }
                self.running_offset = Some(*offset);
            }
            E::AppStarted | E::AppVersion { .. } => {
                if let Some(attempt) = &mut self.current {
                    attempt.app_started(event);
                }
            }
            E::RomEntry => {
                if let Some(attempt) = &mut self.current {
                    attempt.rom_entry(event);
                }
            }
            E::RollbackRequested => {
                if let Some(attempt) = &mut self.current {
                    attempt.rollback_requested(event);
                }
            }
            E::PartitionRow { label, offset } => self.remember_partition(label, *offset),
            E::MicropythonStarted { axtls } => {
                self.axtls = *axtls;
                if let Some(attempt) = &mut self.current {
                    attempt.set_axtls(*axtls);
                }
            }
            _ => {}
        }
    }

    /// A line that follows from a failure, joining the attempt it follows from.
    fn follow_on(&mut self, event: &Event) {
        let joins = self.current.as_ref().is_some_and(|a| !a.is_concluded() || !a.ended_in_update());
        self.attempt_for(event, joins).follow_on(event);
    }

    /// An error named in free text: it decides only an attempt that nothing firmer decides,
    /// and starts none after one that something firmer decided.
    fn observe_free_text(&mut self, event: &Event) {
        let Some(family) = classify::family(&event.kind) else { return };
        match &mut self.current {
            Some(attempt) if attempt.is_decided_by_format() => {}
            Some(attempt) => attempt.fail_in_free_text(event, family),
            None => self.attempt_for(event, false).fail_in_free_text(event, family),
        }
    }

    /// The current attempt's outcome once it has come to an end that a live run can stop at:
    /// the new image has started (or the bootloader went back to the old one), the device
    /// crashed, or the application printed its closing failure line (`Firmware upgrade
    /// failed`). A log read to its end does not need this; a UART that never ends does.
    pub(crate) fn decided(&self) -> Option<Outcome> {
        self.current.as_ref().filter(|a| a.is_decided()).map(Attempt::outcome)
    }

    /// The current attempt's outcome when it has failed, decided or not: a live run whose line
    /// then stays quiet takes it as said (an app that prints no closing line of its own).
    pub(crate) fn failed(&self) -> Option<Outcome> {
        self.current.as_ref().filter(|a| a.has_failed()).map(Attempt::outcome)
    }

    /// Ends the log and gives the verdict.
    pub fn finish(mut self) -> Verdict {
        if let Some(attempt) = self.current.take() {
            self.push(attempt);
        }
        let attempts: Vec<AttemptReport> = self.finished.into();
        let (outcome, evidence) = match attempts.last() {
            Some(last) => (last.outcome, last.evidence.clone()),
            None => (Outcome::of(OutcomeClass::Incomplete), Vec::new()),
        };
        Verdict { outcome, evidence, attempts, attempts_total: self.attempts_total }
    }

    /// The attempt `event` belongs to: the current one if it `joins`, else a new one.
    fn attempt_for(&mut self, event: &Event, joins: bool) -> &mut Attempt {
        if !joins {
            if let Some(done) = self.current.take() {
                self.push(done);
            }
            let mut attempt = Attempt::new(event.line, self.running_offset);
            attempt.set_axtls(self.axtls);
            self.current = Some(attempt);
        }
        self.current.get_or_insert_with(|| Attempt::new(event.line, None))
    }

    fn push(&mut self, attempt: Attempt) {
        self.attempts_total += 1;
        if self.finished.len() == MAX_REPORTED_ATTEMPTS {
            self.finished.pop_front();
        }
        self.finished.push_back(attempt.report());
    }

    fn remember_partition(&mut self, label: &str, offset: u32) {
        if let Some(row) = self.partition_table.iter_mut().find(|(l, _)| l == label) {
            row.1 = offset;
        } else if self.partition_table.len() < MAX_PARTITION_ROWS {
            self.partition_table.push((label.to_owned(), offset));
        }
    }
}

/// Judges a complete list of events.
pub fn judge(events: &[Event]) -> Verdict {
    let mut judge = Judge::new();
    for event in events {
        judge.observe(event);
    }
    judge.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::Console;

    /// The line at which the judge first says the log's attempt is decided, and the outcome
    /// the log ends in.
    fn decided_at(log: &str) -> (Option<u64>, OutcomeClass) {
        let path = format!("{}/tests/data/synthetic/{log}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let mut console = Console::new();
        let mut judge = Judge::new();
        let mut at = None;
        console.feed(&bytes, |event| {
            judge.observe(&event);
            if at.is_none() && judge.decided().is_some() {
                at = Some(event.line);
            }
        });
        (at, judge.finish().outcome.outcome)
    }

    #[test]
    fn an_update_is_decided_once_the_new_image_starts() {
        // The second boot's `Pro cpu start user code`, from the written slot.
        assert_eq!(decided_at("idf-v3.2/updated.log"), (Some(115), OutcomeClass::Updated));
        assert_eq!(decided_at("idf-v5.2/updated.log"), (Some(126), OutcomeClass::Updated));
        // Arduino's bootloader is silent: the ROM's jump to it is the last sign.
        assert_eq!(decided_at("arduino-2.x/updated.log").0, Some(30));
    }

    #[test]
    fn a_failure_is_decided_at_the_applications_closing_line() {
        assert_eq!(decided_at("idf-v3.2/tls-verify-untrusted.log"), (Some(62), OutcomeClass::TlsVerify));
        assert_eq!(decided_at("arduino-2.x/http-status-500.log"), (Some(22), OutcomeClass::HttpStatus));
        assert_eq!(decided_at("idf-v3.2/crashed-panic.log").0, Some(58));
    }

    #[test]
    fn a_response_too_short_for_an_image_header_is_no_image_unless_the_connection_broke() {
        let outcome = |log: &str| judge(&crate::console::events_of(log.as_bytes())).outcome.outcome;
        let start = "I (4915) esp_https_ota: Starting OTA...\n\
                     I (4919) esp_https_ota: Writing to partition subtype 16 at offset 0x110000\n";
        let short = "E (4927) esp_https_ota: Complete headers were not received\n\
                     E (4934) simple_ota_example: Firmware upgrade failed\n";
        assert_eq!(outcome(&format!("{start}{short}")), OutcomeClass::ImageInvalid);
        let broke = "E (4925) esp_https_ota: Connection closed, errno = 104\n";
        assert_eq!(outcome(&format!("{start}{broke}{short}")), OutcomeClass::Network);
    }

    #[test]
    fn an_interrupted_update_is_not_decided() {
        assert_eq!(decided_at("idf-v3.2/incomplete-power-cut.log").0, None);
    }

    #[test]
    fn a_power_on_after_the_image_was_written_ends_the_attempt_as_the_bootloader_chooses() {
        let boot = |reset: &str, offset: &str| {
            format!(
                "rst:{reset},boot:0x13 (SPI_FAST_FLASH_BOOT)\n\
                 I (501) boot: Loaded app from partition at offset {offset}\n\
                 I (576) cpu_start: Pro cpu start user code\n"
            )
        };
        let written = "I (4133) esp_https_ota: Starting OTA...\n\
                       I (4138) esp_https_ota: Writing to partition subtype 16 at offset 0x110000\n\
                       I (20007) esp_image: segment 0: paddr=0x00110020 vaddr=0x3f400020 size=0x01624 (  5668) map\n";
        let power_on = "0x1 (POWERON_RESET)";
        let decide = |log: &str| {
            let mut judge = Judge::new();
            let mut decided = None;
            for event in crate::console::events_of(log.as_bytes()) {
                judge.observe(&event);
                decided = decided.or_else(|| judge.decided().map(|outcome| (event.line, outcome.outcome)));
            }
            let verdict = judge.finish();
            (decided, verdict.attempts.iter().map(|a| a.outcome.outcome).collect::<Vec<_>>())
        };
        // The old image boots after the cut: the attempt was cut short, not an unexplained
        // failure, and the old image's next attempt decides.
        let again =
            format!("{written}{}{written}{}", boot(power_on, "0x10000"), boot("0xc (SW_CPU_RESET)", "0x110000"));
        let expected = vec![OutcomeClass::Incomplete, OutcomeClass::Updated];
        assert_eq!(decide(&again), (Some((12, OutcomeClass::Updated)), expected));
        // The new image boots after the cut: otadata had switched, the update took.
        let took = format!("{written}{}", boot(power_on, "0x110000"));
        assert_eq!(decide(&took), (Some((6, OutcomeClass::Updated)), vec![OutcomeClass::Updated]));
    }
}
