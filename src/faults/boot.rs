//! What a cell's transcript says about the device's boots, read with the console's events (so
//! a board's transcript reads like a twin's): the partition the app ran from when its update
//! began, the partition the update wrote, and each boot after that with the partition its
//! bootloader loaded and whether the app started.

use serde::Serialize;

use crate::console::{Console, EventKind};

/// One boot: a reset, the partition the bootloader loaded (if it loaded one), whether the app
/// then started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Boot {
    /// The transcript line of the reset (`rst:0x1 (POWERON_RESET),boot:...`), from 1.
    pub line: u64,
    /// The reset's cause as the ROM named it (`POWERON_RESET`, `SW_CPU_RESET`).
    pub reason: String,
    /// Flash offset of the partition the bootloader loaded; `None` when it loaded none (`No
    /// bootable app partitions`, a boot cut short, a boot loop).
    pub loaded: Option<u32>,
    /// The app's start-up code ran after the load, before the next reset.
    pub started: bool,
}

/// A device's update as its transcript shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpdateTrace {
    /// The partition the app ran from when the first update began (the last one loaded before
    /// the app first started).
    pub running: Option<u32>,
    /// The partition the first update wrote (`Writing to ... at offset 0x...`), when the app
    /// printed it.
    pub target: Option<u32>,
    /// The boots after the app first started, in order.
    pub boots: Vec<Boot>,
}

/// Which image a boot landed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Landed {
    /// The partition the device ran from before the update: the old firmware.
    Old,
    /// The partition the update wrote: the new firmware.
    New,
    /// An app started from another partition (neither the old nor the new firmware).
    Other,
    /// No app started: nothing bootable was loaded, or the boot did not get as far as the app
    /// (a boot loop, a device that stayed silent).
    Nothing,
}

impl UpdateTrace {
    /// Reads a transcript.
    pub fn read(transcript: &[u8]) -> Self {
        let mut trace = UpdateTrace::default();
        let mut loaded = None;
        let mut app_started = false;
        let mut on_event = |event: crate::console::Event| match event.kind {
            EventKind::Reset { reason, .. } if app_started => {
                trace.boots.push(Boot { line: event.line, reason, loaded: None, started: false });
            }
            EventKind::AppLoaded { offset } => match trace.boots.last_mut() {
                Some(boot) => boot.loaded = Some(offset),
                None => loaded = Some(offset),
            },
            EventKind::AppStarted => match trace.boots.last_mut() {
                Some(boot) => boot.started |= boot.loaded.is_some(),
                None if !app_started => {
                    app_started = true;
                    trace.running = loaded;
                }
                None => {}
            },
            EventKind::OtaWriting { offset, .. } if trace.target.is_none() && trace.boots.is_empty() => {
                trace.target = offset;
            }
            _ => {}
        };
        let mut console = Console::new();
        console.feed(transcript, &mut on_event);
        console.finish(&mut on_event);
        trace
    }

    /// Where the first boot after the app first started landed; `None` when there was none.
    pub fn first_landing(&self) -> Option<(Landed, &Boot)> {
        let boot = self.boots.first()?;
        Some((self.landed(boot), boot))
    }

    /// Which image `boot` landed on: the partition the app ran from is the old firmware, the
    /// one the update wrote the new (any other, when the app did not say which it wrote).
    pub fn landed(&self, boot: &Boot) -> Landed {
        match boot.loaded {
            Some(_) if !boot.started => Landed::Nothing,
            None => Landed::Nothing,
            Some(at) if Some(at) == self.running => Landed::Old,
            Some(at) if self.target.is_none_or(|target| target == at) => Landed::New,
            Some(_) => Landed::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boot of the ROM and ESP-IDF's bootloader, loading `offset` (or nothing).
    fn boot(reason: &str, code: u8, offset: Option<u32>, started: bool) -> String {
        let mut text = format!("rst:0x{code:x} ({reason}),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n");
        text.push_str("I (27) boot: ESP-IDF v4.4.8 2nd stage bootloader\r\n");
        match offset {
            Some(offset) => {
                text.push_str(&format!("I (501) boot: Loaded app from partition at offset {offset:#x}\r\n"));
            }
            None => text.push_str("E (118) boot: No bootable app partitions in the partition table\r\n"),
        }
        if started {
            text.push_str("I (576) cpu_start: Pro cpu start user code\r\n");
        }
        text
    }

    const UPDATE: &str = "I (4133) esp_https_ota: Starting OTA...\r\n\
                          I (4138) esp_https_ota: Writing to partition subtype 16 at offset 0x110000\r\n";

    #[test]
    fn the_boot_after_the_update_began_lands_on_the_old_or_the_new_image_or_nothing() {
        let before = format!("{}{UPDATE}", boot("SW_CPU_RESET", 12, Some(0x10000), true));
        let cases = [
            (boot("POWERON_RESET", 1, Some(0x10000), true), Landed::Old),
            (boot("POWERON_RESET", 1, Some(0x110000), true), Landed::New),
            (boot("POWERON_RESET", 1, Some(0x210000), true), Landed::Other),
            (boot("POWERON_RESET", 1, None, false), Landed::Nothing),
            (boot("POWERON_RESET", 1, Some(0x110000), false), Landed::Nothing),
        ];
        for (after, landed) in cases {
            let trace = UpdateTrace::read(format!("{before}{after}").as_bytes());
            assert_eq!((trace.running, trace.target), (Some(0x10000), Some(0x110000)));
            let (got, first) = trace.first_landing().unwrap();
            assert_eq!(got, landed, "{after}");
            assert_eq!((first.reason.as_str(), first.line), ("POWERON_RESET", 7));
        }
    }

    #[test]
    fn a_transcript_without_a_boot_after_the_app_started_has_no_landing() {
        let trace = UpdateTrace::read(format!("{}{UPDATE}", boot("SW_CPU_RESET", 12, Some(0x10000), true)).as_bytes());
        assert_eq!(trace.first_landing(), None);
        assert_eq!(UpdateTrace::read(b"").first_landing(), None);
        // A boot loop: resets that never start the app.
        let looping = format!(
            "{}{UPDATE}{}{}",
            boot("SW_CPU_RESET", 12, Some(0x10000), true),
            boot("POWERON_RESET", 1, None, false),
            boot("RTCWDT_RTC_RESET", 16, None, false)
        );
        let trace = UpdateTrace::read(looping.as_bytes());
        assert_eq!(trace.boots.len(), 2);
        assert!(trace.boots.iter().all(|b| trace.landed(b) == Landed::Nothing));
    }
}
