//! One update or connection attempt: the failure that decided it, or how far the update got
//! (written, rebooted, new image running, rolled back), and the lines that show it.

mod stages;

use super::classify::{self, Family};
use super::report::{self, AttemptReport, ErrorCode, Evidence, MAX_EVIDENCE};
use crate::console::{Event, EventKind};
use crate::outcome::{Outcome, OutcomeClass, VerifyReason};
use crate::verify_flags::FlagText;

/// How far an update got without failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The application announced a check; nothing transferred yet.
    Checking,
    /// Connected; the image is being written.
    Transferring,
    /// The image was written and verified; a restart is due.
    Written,
    /// Restarted after writing; waiting for the bootloader's choice.
    Rebooting,
    /// The bootloader loaded the new image; waiting for its start-up lines.
    NewLoaded,
    /// The bootloader loaded the image that ran before.
    OldLoaded,
    /// The new image is running (`updated`); a rollback may still follow.
    Running,
    /// The new image restarted; the bootloader may go back to the old one.
    RebootingAgain,
}

/// How firmly a failure was said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strength {
    /// Only follow-on lines said something failed (`Firmware upgrade failed`).
    FollowOn,
    /// Facts found in free text: they decide only where no line of a recognised format does,
    /// and only while they agree.
    FreeText,
    /// A line of a recognised format said what failed.
    Format,
}

#[derive(Clone, Debug)]
struct Failure {
    family: Family,
    kind: EventKind,
    strength: Strength,
}

#[derive(Debug)]
pub(super) struct Attempt {
    first_line: u64,
    last_line: u64,
    stage: Stage,
    failure: Option<Failure>,
    follow_on_seen: bool,
    /// Facts found in free text named different errors: they decide nothing.
    free_text_disagrees: bool,
    /// The application printed its closing line for the update (`Firmware upgrade failed`,
    /// Arduino's `HTTP_UPDATE_FAILED`): it will not go on by itself.
    closed: bool,
    /// What happened after the new image was loaded (updated, rolled back, crashed).
    after_update: Option<Outcome>,
    interrupted: bool,
    flags: Vec<FlagText>,
    bundle_involved: bool,
    target_offset: Option<u32>,
    target_label: Option<String>,
    from_offset: Option<u32>,
    loaded_offset: Option<u32>,
    /// The firmware's bootloader prints nothing (Arduino-ESP32): the ROM's jump to it after
    /// the restart is all there is to see.
    silent_bootloader: bool,
    /// The reset after the image was written was a power-on (the power went, the app did not
    /// restart into the image): only the bootloader's choice says whether the switch was made.
    power_cycled: bool,
    /// The device's `ssl` module is axTLS (MicroPython's banner said ESP8266).
    axtls: bool,
    evidence: Vec<Evidence>,
    codes: Vec<ErrorCode>,
}

impl Attempt {
    pub(super) fn new(line: u64, from_offset: Option<u32>) -> Self {
        Self {
            first_line: line,
            last_line: line,
            stage: Stage::Checking,
            failure: None,
            follow_on_seen: false,
            free_text_disagrees: false,
            closed: false,
            after_update: None,
            interrupted: false,
            flags: Vec::new(),
            bundle_involved: false,
            target_offset: None,
            target_label: None,
            from_offset,
            loaded_offset: None,
            silent_bootloader: false,
            power_cycled: false,
            axtls: false,
            evidence: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// The log says the device's `ssl` module is axTLS (before or after this attempt's lines).
    pub(super) fn set_axtls(&mut self, axtls: bool) {
        self.axtls = axtls;
    }

    /// The attempt has ended one way or another; later progress starts a new one.
    pub(super) fn is_concluded(&self) -> bool {
        self.failure.is_some() || self.after_update.is_some() || self.interrupted
    }

    /// A line of a recognised format said this attempt failed (however firmly), or how it
    /// ended: facts in free text have nothing left to decide.
    pub(super) fn is_decided_by_format(&self) -> bool {
        self.after_update.is_some()
            || self.interrupted
            || self.failure.as_ref().is_some_and(|f| f.strength != Strength::FreeText)
    }

    /// The new image ran, or ran and was rolled back: later failure lines start a new attempt.
    pub(super) fn ended_in_update(&self) -> bool {
        matches!(self.after_update.map(|o| o.outcome), Some(OutcomeClass::Updated | OutcomeClass::RolledBack))
    }

    /// A failure was said firmly (not only by follow-on lines): later `esp_err_t` summaries
    /// and follow-on lines follow from it.
    pub(super) fn has_cause(&self) -> bool {
        self.failure.as_ref().is_some_and(|f| f.strength != Strength::FollowOn)
    }

    /// The attempt has come to the end a live run waits for: the new image started (or the
    /// old one again, or it crashed), the device crashed, or the application printed its
    /// closing failure line. Until then later lines may still change the outcome.
    pub(super) fn is_decided(&self) -> bool {
        match self.after_update {
            Some(outcome) if outcome.outcome == OutcomeClass::Updated => self.stage == Stage::Running,
            Some(outcome) if outcome.outcome == OutcomeClass::RolledBack => self.stage == Stage::OldLoaded,
            Some(_) => true,
            None => self.closed || self.failure.as_ref().is_some_and(|f| f.family == Family::Crash),
        }
    }

    /// A failure was printed (and no update followed).
    pub(super) fn has_failed(&self) -> bool {
        self.failure.is_some() && self.after_update.is_none()
    }

    /// Whether an update-progress event (`UpdateCheck`, `OtaStarted`, `OtaWriting`,
    /// `OtaProgress`) belongs here rather than starting a new attempt.
    pub(super) fn accepts_progress(&self, kind: &EventKind) -> bool {
        if self.is_concluded() {
            return false;
        }
        match kind {
            EventKind::UpdateCheck | EventKind::OtaStarted => self.stage == Stage::Checking,
            EventKind::OtaWriting { .. } | EventKind::OtaProgress => {
                matches!(self.stage, Stage::Checking | Stage::Transferring)
            }
            _ => true,
        }
    }

    /// Whether a failure of `family` belongs here rather than starting a new attempt.
    pub(super) fn accepts_failure(&self, family: Family, kind: &EventKind) -> bool {
        if self.after_update.is_some() {
            return family == Family::Crash && self.after_update != Some(Outcome::of(OutcomeClass::RolledBack));
        }
        if self.interrupted {
            return false;
        }
        match &self.failure {
            None => true,
            Some(first) if first.strength != Strength::Format => true,
            // The same error again (its text on one line, its code on the next).
            Some(first) if classify::code_of(&first.kind).is_some_and(|c| Some(c) == classify::code_of(kind)) => true,
            Some(first) => classify::continues(first.family, family, self.follow_on_seen),
        }
    }

    pub(super) fn progress(&mut self, event: &Event) {
        self.touch(event);
        match &event.kind {
            EventKind::OtaStarted | EventKind::OtaProgress => self.stage = Stage::Transferring,
            EventKind::OtaWriting { offset, label } => {
                self.stage = Stage::Transferring;
                self.target_offset = *offset;
                self.target_label.clone_from(label);
                self.keep(event);
            }
            EventKind::ImageSegment if self.stage == Stage::Transferring && self.failure.is_none() => {
                self.stage = Stage::Written;
            }
            EventKind::BootPartitionSet | EventKind::UpdateSucceeded { .. } if self.failure.is_none() => {
                self.stage = Stage::Written;
                if let EventKind::UpdateSucceeded { silent_bootloader: true } = event.kind {
                    self.silent_bootloader = true;
                }
                self.keep(event);
            }
            _ => {}
        }
    }

    /// A failure said by a line of a recognised format.
    pub(super) fn fail(&mut self, event: &Event, family: Family) {
        self.touch(event);
        self.note_code(&event.kind);
        if matches!(event.kind, EventKind::BundleNoMatch | EventKind::BundleBadSignature | EventKind::BundleRejected) {
            self.bundle_involved = true;
        }
        if self.after_update.is_some() {
            // The new image crashed after it started.
            self.after_update = Some(Outcome::of(OutcomeClass::Crashed));
            self.keep(event);
            return;
        }
        match &self.failure {
            Some(first) if first.strength == Strength::Format => {
                // A consequence of the first failure; the handshake line after the bundle's
                // verdict is evidence too.
                if family != first.family || family == Family::Handshake {
                    self.keep(event);
                }
            }
            _ => {
                // Facts from free text give way to the line that says what failed; a follow-on
                // line that came first (a wrapped line's start, an application's own summary)
                // stays as evidence.
                if self.failure.as_ref().is_some_and(|f| f.strength == Strength::FreeText) {
                    self.evidence.clear();
                }
                self.failure = Some(Failure { family, kind: event.kind.clone(), strength: Strength::Format });
                self.keep(event);
            }
        }
    }

    /// A failure named in free text: it decides only while nothing firmer has.
    pub(super) fn fail_in_free_text(&mut self, event: &Event, family: Family) {
        self.touch(event);
        match &self.failure {
            None => {
                self.note_code(&event.kind);
                self.failure = Some(Failure { family, kind: event.kind.clone(), strength: Strength::FreeText });
                self.keep(event);
            }
            Some(first) if first.strength == Strength::FreeText => {
                if first.kind != event.kind {
                    self.free_text_disagrees = true;
                }
            }
            Some(_) => {}
        }
    }

    /// `Failed to verify peer certificate!`, `verification info: ...`, `Certificate verified.`
    pub(super) fn detail(&mut self, event: &Event) {
        self.touch(event);
        match &event.kind {
            EventKind::VerifyInfo { reasons, continued } => {
                if !continued {
                    self.flags.clear();
                }
                self.flags.extend(reasons.iter().copied().take(20));
                self.keep(event);
                self.assume_verify_failure(event);
            }
            EventKind::PeerVerifyFailed => {
                self.keep(event);
                self.assume_verify_failure(event);
            }
            EventKind::BundleAccepted => self.bundle_involved = true,
            _ => {}
        }
    }

    /// Verification details without a handshake line before them (a log cut at the start).
    fn assume_verify_failure(&mut self, event: &Event) {
        if !self.has_cause() {
            if self.failure.is_some() {
                self.evidence.retain(|e| e.line == event.line);
            }
            let kind = event.kind.clone();
            self.failure = Some(Failure { family: Family::Handshake, kind, strength: Strength::Format });
        }
    }

    /// A line that only says a failure happened (`Failed to open new connection`,
    /// `Firmware upgrade failed`, `esp_ota_write failed! err=0x0`), or a summary that follows
    /// from the failure before it (`Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT`).
    pub(super) fn follow_on(&mut self, event: &Event) {
        self.touch(event);
        self.follow_on_seen = true;
        if matches!(event.kind, EventKind::UpdateFailed | EventKind::ArduinoUpdateError { .. }) {
            self.closed = true;
        }
        match &self.failure {
            Some(failure) if failure.strength != Strength::Format => {
                if self.evidence.len() < 3 {
                    self.keep(event);
                }
            }
            Some(_) => {
                // Where the failure names no class, every line that says something failed
                // shows what is known.
                if self.outcome().outcome == OutcomeClass::Unknown && self.evidence.len() < 4 {
                    self.note_code(&event.kind);
                    self.keep(event);
                }
            }
            None => {
                let kind = event.kind.clone();
                let (family, strength) = match kind {
                    EventKind::OtaEndFailed => (Family::Image, Strength::Format),
                    EventKind::ArduinoUpdateError { code } | EventKind::HttpClientError { code } => {
                        (classify::arduino_update_family(code), Strength::Format)
                    }
                    _ => (Family::Transfer, Strength::FollowOn),
                };
                self.note_code(&kind);
                self.failure = Some(Failure { family, kind, strength });
                self.keep(event);
            }
        }
    }

    /// This attempt's outcome as things stand.
    pub(super) fn outcome(&self) -> Outcome {
        if let Some(outcome) = self.after_update {
            return outcome;
        }
        if let Some(failure) = &self.failure {
            return match failure.strength {
                Strength::FollowOn => Outcome::of(OutcomeClass::Unknown),
                Strength::FreeText if self.free_text_disagrees => Outcome::of(OutcomeClass::Incomplete),
                _ => match failure.kind {
                    EventKind::PeerVerifyFailed | EventKind::VerifyInfo { .. } => {
                        Outcome::tls_verify(classify::reason_of(&self.flags))
                    }
                    EventKind::SslError { code } => classify::ssl_error_outcome(code, self.axtls),
                    ref kind => classify::outcome_of(kind, &self.flags, self.bundle_involved),
                },
            };
        }
        Outcome::of(OutcomeClass::Incomplete)
    }

    pub(super) fn report(self) -> AttemptReport {
        let mut outcome = self.outcome();
        if outcome.outcome == OutcomeClass::TlsVerify && outcome.reason.is_none() {
            outcome.reason = Some(VerifyReason::Unknown);
        }
        let disagreeing =
            self.free_text_disagrees && self.failure.as_ref().is_some_and(|f| f.strength == Strength::FreeText);
        AttemptReport {
            outcome,
            evidence: if disagreeing { Vec::new() } else { self.evidence },
            lines: [self.first_line, self.last_line],
            codes: if disagreeing { Vec::new() } else { self.codes },
            verify_flags: self.flags,
            certificate_bundle: self.bundle_involved,
        }
    }

    fn touch(&mut self, event: &Event) {
        self.last_line = self.last_line.max(event.line);
    }

    fn keep(&mut self, event: &Event) {
        if self.evidence.len() < MAX_EVIDENCE && self.evidence.last().is_none_or(|e| e.line != event.line) {
            self.evidence.push(Evidence { line: event.line, text: event.text.clone() });
        }
    }

    fn note_code(&mut self, kind: &EventKind) {
        if let Some(code) = ErrorCode::of(kind) {
            report::note(&mut self.codes, code);
        }
    }
}
