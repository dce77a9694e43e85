//! An attempt's update stages after the image was written: the restart, the bootloader's
//! choice, the new image's start, and a rollback (seen or reported).

use super::{Attempt, Stage};
use crate::console::{Event, EventKind};
use crate::outcome::{Outcome, OutcomeClass};

impl Attempt {
    /// The chip reset (not a watchdog or brownout: those are failures).
    pub(in crate::verdict) fn reset(&mut self, event: &Event) {
        self.touch(event);
        match self.stage {
            Stage::Written if !self.is_concluded() => {
                self.stage = Stage::Rebooting;
                self.power_cycled = is_power_on(event);
                if self.silent_bootloader || self.power_cycled {
                    self.keep(event);
                }
            }
            // Reset again before any image started: the restart into the new image failed. A
            // power-on (or the RTC watchdog reset many boards print at power-on) is someone
            // cycling the power, not a failed boot.
            Stage::Rebooting if !self.is_concluded() && !is_power_on(event) => {
                self.after_update = Some(Outcome::of(OutcomeClass::Crashed));
                self.keep(event);
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
    pub(in crate::verdict) fn rom_entry(&mut self, event: &Event) {
        if self.stage == Stage::Rebooting && self.silent_bootloader && !self.power_cycled && !self.is_concluded() {
            self.touch(event);
            self.stage = Stage::Running;
            self.after_update = Some(Outcome::of(OutcomeClass::Updated));
            self.keep(event);
        }
    }

    /// The bootloader loaded the app at `offset`; `table` maps partition labels to offsets.
    pub(in crate::verdict) fn loaded(&mut self, event: &Event, offset: u32, table: &[(String, u32)]) {
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
                // The power went before otadata switched: the attempt was cut short, and the
                // old image, booting again, may try once more.
                self.interrupted |= self.power_cycled && !is_new;
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
    pub(in crate::verdict) fn app_started(&mut self, event: &Event) {
        match self.stage {
            // After a power cycle, an image that starts without the bootloader's word may be
            // either: the attempt was cut short, nothing is guessed.
            Stage::Rebooting if self.power_cycled => {
                self.touch(event);
                self.interrupted = true;
            }
            // The bootloader printed nothing (or its lines were not captured): the image that
            // starts after the restart is the one that was written.
            Stage::NewLoaded | Stage::Rebooting if !self.interrupted => {
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
            Stage::OldLoaded if self.after_update.is_none() && self.failure.is_none() && !self.interrupted => {
                // Written and set, yet the old image runs and nothing says why.
                self.touch(event);
                self.after_update = Some(Outcome::of(OutcomeClass::Unknown));
                self.keep(event);
            }
            _ => {}
        }
    }

    /// `Rollback to previously worked partition. Restart.`
    pub(in crate::verdict) fn rollback_requested(&mut self, event: &Event) {
        if matches!(self.stage, Stage::Running | Stage::NewLoaded) {
            self.touch(event);
            self.after_update = Some(Outcome::of(OutcomeClass::RolledBack));
            self.keep(event);
        }
    }

    /// The running image says the bootloader went back to it after an update (ESPHome's safe
    /// mode): the rollback itself happened before the log shows it.
    pub(in crate::verdict) fn rollback_reported(&mut self, event: &Event) {
        self.touch(event);
        self.stage = Stage::OldLoaded;
        self.after_update = Some(Outcome::of(OutcomeClass::RolledBack));
        self.keep(event);
    }
}

/// A reset the ROM reports at power-on: `POWERON_RESET` (1), or `RTCWDT_RTC_RESET` (16), which
/// many boards print then too.
fn is_power_on(event: &Event) -> bool {
    matches!(event.kind, EventKind::Reset { code: 1 | 16, .. })
}
