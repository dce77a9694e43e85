//! One update or connection attempt: the failure that decided it, or how far the update got
//! (written, rebooted, new image running, rolled back), and the lines that show it.

use serde::Serialize;

use super::classify::{self, Family};
use crate::codes;
use crate::console::{Event, EventKind};
use crate::outcome::{Outcome, OutcomeClass, VerifyReason};
use crate::verify_flags::FlagText;

/// Lines kept as evidence per attempt.
const MAX_EVIDENCE: usize = 12;
/// Error codes kept per attempt.
const MAX_CODES: usize = 8;

/// A line that decided (or supports) an outcome.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// Line number, counted from 1.
    pub line: u64,
    /// The line as printed, without terminal escape codes.
    pub text: String,
}

/// An error code printed during an attempt, with its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorCode {
    /// As printed, e.g. `-0x2700`, `-9984`, `errno 113`.
    pub code: String,
    pub name: Option<&'static str>,
}

/// The verdict on one attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptReport {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub evidence: Vec<Evidence>,
    /// First and last line that belonged to the attempt.
    pub lines: [u64; 2],
    pub codes: Vec<ErrorCode>,
    /// Certificate verification reasons the device printed.
    pub verify_flags: Vec<FlagText>,
    /// ESP-IDF's certificate bundle took part in verifying the server.
    pub certificate_bundle: bool,
}

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

#[derive(Clone, Debug)]
struct Failure {
    family: Family,
    kind: EventKind,
    /// Only follow-on lines said something failed.
    weak: bool,
}

#[derive(Debug)]
pub(super) struct Attempt {
    first_line: u64,
    last_line: u64,
    stage: Stage,
    failure: Option<Failure>,
    follow_on_seen: bool,
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
            evidence: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// The attempt has ended one way or another; later progress starts a new one.
    pub(super) fn is_concluded(&self) -> bool {
        self.failure.is_some() || self.after_update.is_some() || self.interrupted
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

    /// Whether an update-progress event (`UpdateCheck`, `OtaStarted`, `OtaWriting`) belongs
    /// here rather than starting a new attempt.
    pub(super) fn accepts_progress(&self, kind: &EventKind) -> bool {
        if self.is_concluded() {
            return false;
        }
        match kind {
            EventKind::UpdateCheck | EventKind::OtaStarted => self.stage == Stage::Checking,
            EventKind::OtaWriting { .. } => matches!(self.stage, Stage::Checking | Stage::Transferring),
            _ => true,
        }
    }

    /// Whether a failure of `family` belongs here rather than starting a new attempt.
    pub(super) fn accepts_failure(&self, family: Family) -> bool {
        if self.after_update.is_some() {
            return family == Family::Crash && self.after_update != Some(Outcome::of(OutcomeClass::RolledBack));
        }
        if self.interrupted {
            return false;
        }
        match &self.failure {
            None => true,
            Some(first) if first.weak => true,
            Some(first) => classify::continues(first.family, family, self.follow_on_seen),
        }
    }

    pub(super) fn progress(&mut self, event: &Event) {
        self.touch(event);
        match &event.kind {
            EventKind::OtaStarted => self.stage = Stage::Transferring,
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
            Some(first) if !first.weak => {
                // A consequence of the first failure; the handshake line after the bundle's
                // verdict is evidence too.
                if family != first.family || family == Family::Handshake {
                    self.keep(event);
                }
            }
            _ => {
                if self.failure.as_ref().is_some_and(|f| f.weak) {
                    self.evidence.clear();
                }
                self.failure = Some(Failure { family, kind: event.kind.clone(), weak: false });
                self.keep(event);
            }
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
        if self.failure.is_none() {
            let kind = event.kind.clone();
            self.failure = Some(Failure { family: Family::Handshake, kind, weak: false });
        }
    }

    /// A line that only says a failure happened (`Failed to open new connection`,
    /// `Firmware upgrade failed`, `esp_ota_write failed! err=0x0`).
    pub(super) fn follow_on(&mut self, event: &Event) {
        self.touch(event);
        self.follow_on_seen = true;
        if matches!(event.kind, EventKind::UpdateFailed | EventKind::ArduinoUpdateError { .. }) {
            self.closed = true;
        }
        match &self.failure {
            Some(failure) if failure.weak => {
                if self.evidence.len() < 3 {
                    self.keep(event);
                }
            }
            Some(_) => {}
            None => {
                let kind = event.kind.clone();
                if matches!(kind, EventKind::OtaEndFailed) {
                    self.failure = Some(Failure { family: Family::Image, kind, weak: false });
                } else if let EventKind::ArduinoUpdateError { code } = kind {
                    let family = classify::arduino_update_family(code);
                    self.failure = Some(Failure { family, kind, weak: false });
                } else {
                    self.failure = Some(Failure { family: Family::Transfer, kind, weak: true });
                }
                self.keep(event);
            }
        }
    }

    /// The chip reset (not a watchdog or brownout: those are failures).
    pub(super) fn reset(&mut self, event: &Event) {
        self.touch(event);
        match self.stage {
            Stage::Written if !self.is_concluded() => {
                self.stage = Stage::Rebooting;
                if self.silent_bootloader {
                    self.keep(event);
                }
            }
            Stage::Running | Stage::NewLoaded => self.stage = Stage::RebootingAgain,
            Stage::Checking | Stage::Transferring if !self.is_concluded() => {
                self.interrupted = true;
                self.keep(event);
            }
            _ => {}
        }
    }

    /// The ROM jumped to the bootloader. With a silent bootloader that is the last sign of the
    /// restart into the written image that the device gives.
    pub(super) fn rom_entry(&mut self, event: &Event) {
        if self.stage == Stage::Rebooting && self.silent_bootloader && !self.is_concluded() {
            self.touch(event);
            self.stage = Stage::Running;
            self.after_update = Some(Outcome::of(OutcomeClass::Updated));
            self.keep(event);
        }
    }

    /// The bootloader loaded the app at `offset`; `table` maps partition labels to offsets.
    pub(super) fn loaded(&mut self, event: &Event, offset: u32, table: &[(String, u32)]) {
        match self.stage {
            Stage::Rebooting => {
                self.touch(event);
                let target = self.target_offset.or_else(|| {
                    let label = self.target_label.as_deref()?;
                    table.iter().find(|(l, _)| l == label).map(|(_, o)| *o)
                });
                let is_new = match (target, self.from_offset) {
                    (Some(target), _) => offset == target,
                    (None, Some(from)) => offset != from,
                    (None, None) => true,
                };
                self.stage = if is_new { Stage::NewLoaded } else { Stage::OldLoaded };
                self.loaded_offset = Some(offset);
                self.keep(event);
            }
            Stage::RebootingAgain => {
                self.touch(event);
                if Some(offset) == self.loaded_offset {
                    self.stage = Stage::NewLoaded;
                } else {
                    self.after_update = Some(Outcome::of(OutcomeClass::RolledBack));
                    self.stage = Stage::OldLoaded;
                    self.keep(event);
                }
            }
            _ => {}
        }
    }

    /// Start-up lines of an application (`Pro cpu start user code`, `App version: ...`).
    pub(super) fn app_started(&mut self, event: &Event) {
        match self.stage {
            Stage::NewLoaded => {
                self.touch(event);
                self.stage = Stage::Running;
                if self.after_update.is_none() {
                    self.after_update = Some(Outcome::of(OutcomeClass::Updated));
                    self.keep(event);
                }
            }
            Stage::Running if matches!(event.kind, EventKind::AppVersion { .. }) => {
                self.touch(event);
                self.keep(event);
            }
            Stage::OldLoaded if self.after_update.is_none() && self.failure.is_none() => {
                // Written and set, yet the old image runs and nothing says why.
                self.touch(event);
                self.after_update = Some(Outcome::of(OutcomeClass::Unknown));
                self.keep(event);
            }
            _ => {}
        }
    }

    /// `Rollback to previously worked partition. Restart.`
    pub(super) fn rollback_requested(&mut self, event: &Event) {
        if matches!(self.stage, Stage::Running | Stage::NewLoaded) {
            self.touch(event);
            self.after_update = Some(Outcome::of(OutcomeClass::RolledBack));
            self.keep(event);
        }
    }

    /// This attempt's outcome as things stand.
    pub(super) fn outcome(&self) -> Outcome {
        if let Some(outcome) = self.after_update {
            return outcome;
        }
        if let Some(failure) = &self.failure {
            if failure.weak {
                return Outcome::of(OutcomeClass::Unknown);
            }
            return match failure.kind {
                EventKind::PeerVerifyFailed | EventKind::VerifyInfo { .. } => {
                    Outcome::tls_verify(classify::reason_of(&self.flags))
                }
                ref kind => classify::outcome_of(kind, &self.flags, self.bundle_involved),
            };
        }
        Outcome::of(OutcomeClass::Incomplete)
    }

    pub(super) fn report(self) -> AttemptReport {
        let mut outcome = self.outcome();
        if outcome.outcome == OutcomeClass::TlsVerify && outcome.reason.is_none() {
            outcome.reason = Some(VerifyReason::Unknown);
        }
        AttemptReport {
            outcome,
            evidence: self.evidence,
            lines: [self.first_line, self.last_line],
            codes: self.codes,
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
        let code = match kind {
            EventKind::HandshakeFailed { code }
            | EventKind::TlsSetupFailed { code }
            | EventKind::CaParseFailed { code }
            | EventKind::ReadFailed { code } => {
                ErrorCode { code: format!("-0x{:04X}", code.unsigned_abs()), name: codes::mbedtls_name(*code) }
            }
            EventKind::ConnectFailed { errno: Some(errno) } => ErrorCode { code: format!("errno {errno}"), name: None },
            EventKind::OtaWriteFailed { err: Some(err) } if *err != 0 => {
                ErrorCode { code: format!("0x{err:x}"), name: codes::esp_err_name(*err) }
            }
            _ => return,
        };
        if self.codes.len() < MAX_CODES && !self.codes.contains(&code) {
            self.codes.push(code);
        }
    }
}
