//! What an ESP32 prints on its UART from reset until the app has started, computed from the
//! flash contents: the ROM's lines, the 2nd-stage bootloader's in the dialect of its ESP-IDF
//! version (partition table, OTA slot choice, `esp_image` verification, fallback), and the
//! app's start-up lines in the dialect of the app's ESP-IDF version.
//!
//! Pure: flash bytes in, UART bytes and what booted out. The twin feeds these bytes to the same
//! console classifier a board's UART feeds.

mod app;
mod bootloader;
mod rom;

use crate::firmware::profile::{FirmwareProfile, KnownBuild};
use crate::twin::clock::BootClock;
use crate::twin::uart::Uart;
pub(in crate::twin) use bootloader::verify_app;

/// Why the chip reset, as the ROM prints it (`rst:0x1 (POWERON_RESET)`), from ESP-IDF's
/// `components/esp_rom/include/esp32/rom/rtc.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// `POWERON_RESET`: power applied, or the EN pin released.
    PowerOn,
    /// A digital system reset (`SW_RESET`).
    Software,
    /// `OWDT_RESET`: the legacy watchdog reset the digital core.
    LegacyWatchdog,
    /// `DEEPSLEEP_RESET`: woken from deep sleep.
    DeepSleep,
    /// `SDIO_RESET`: reset by the SDIO slave.
    Sdio,
    /// `TG0WDT_SYS_RESET`: timer group 0's watchdog reset the system.
    Timer0WatchdogSystem,
    /// `TG1WDT_SYS_RESET`: timer group 1's watchdog reset the system.
    Timer1WatchdogSystem,
    /// `RTCWDT_SYS_RESET`: the RTC watchdog reset the digital core.
    RtcWatchdogSystem,
    /// `INTRUSION_RESET`: the intrusion tester reset the CPU.
    Intrusion,
    /// `TGWDT_CPU_RESET`: a timer group watchdog reset the CPU.
    TimerWatchdogCpu,
    /// `esp_restart()` and panics.
    SoftwareCpu,
    /// `RTCWDT_CPU_RESET`: the RTC watchdog reset the CPU.
    RtcWatchdogCpu,
    /// `EXT_CPU_RESET`: the other core reset this one (APP CPU by PRO CPU).
    ExternalCpu,
    /// `RTCWDT_BROWN_OUT_RESET`: the supply dipped below the brown-out level.
    Brownout,
    /// `RTCWDT_RTC_RESET`: the RTC watchdog reset the digital core and the RTC.
    RtcWatchdogRtc,
}

impl ResetReason {
    /// The code and the name the ROM prints.
    pub(crate) fn code_and_name(self) -> (u32, &'static str) {
        match self {
            ResetReason::PowerOn => (0x1, "POWERON_RESET"),
            ResetReason::Software => (0x3, "SW_RESET"),
            ResetReason::LegacyWatchdog => (0x4, "OWDT_RESET"),
            ResetReason::DeepSleep => (0x5, "DEEPSLEEP_RESET"),
            ResetReason::Sdio => (0x6, "SDIO_RESET"),
            ResetReason::Timer0WatchdogSystem => (0x7, "TG0WDT_SYS_RESET"),
            ResetReason::Timer1WatchdogSystem => (0x8, "TG1WDT_SYS_RESET"),
            ResetReason::RtcWatchdogSystem => (0x9, "RTCWDT_SYS_RESET"),
            ResetReason::Intrusion => (0xa, "INTRUSION_RESET"),
            ResetReason::TimerWatchdogCpu => (0xb, "TGWDT_CPU_RESET"),
            ResetReason::SoftwareCpu => (0xc, "SW_CPU_RESET"),
            ResetReason::RtcWatchdogCpu => (0xd, "RTCWDT_CPU_RESET"),
            ResetReason::ExternalCpu => (0xe, "EXT_CPU_RESET"),
            ResetReason::Brownout => (0xf, "RTCWDT_BROWN_OUT_RESET"),
            ResetReason::RtcWatchdogRtc => (0x10, "RTCWDT_RTC_RESET"),
        }
    }
}

/// What a boot printed and where it ended.
#[derive(Clone, Debug)]
pub struct BootOutcome {
    /// The UART bytes, `\r\n` line ends, ESP-IDF colour codes as the firmware sends them.
    pub bytes: Vec<u8>,
    /// Where the boot ended: an app started, or none (no bootloader, no app to load).
    pub result: Booted,
    /// What the bootloader wrote to otadata (rollback states): the partition's offset and its
    /// new content. The caller writes it to flash.
    pub otadata_write: Option<(u32, Vec<u8>)>,
}

/// Where a boot ended.
#[derive(Clone, Debug)]
pub enum Booted {
    /// An app was loaded and started.
    App {
        /// Offset of the app partition the bootloader loaded.
        partition_offset: u32,
        /// What the app is, as the twin runs it (its image, with what is stated about it).
        profile: Box<FirmwareProfile>,
    },
    /// No 2nd-stage bootloader at 0x1000 (the ROM prints `Invalid header: 0x…`).
    NoBootloader,
    /// The bootloader started but found no app it could load (or no partition table).
    NoBootableApp,
}

/// What an ESP32 prints from `reset` until its app has started, for this flash content
/// (bootloader at 0x1000, partition table at 0x8000); `builds` states what real builds' images
/// cannot say about themselves.
pub fn boot_log(flash: &[u8], reset: ResetReason, clock: &mut BootClock, builds: &[KnownBuild]) -> BootOutcome {
    clock.restart();
    let mut uart = Uart::new(clock);
    let mut otadata_write = None;
    let result = match rom::run(flash, reset, &mut uart) {
        None => Booted::NoBootloader,
        Some(bootloader) => match bootloader::run(flash, &bootloader, &mut uart, &mut otadata_write) {
            None => Booted::NoBootableApp,
            Some(loaded) => {
                let profile = app::profile(flash, &loaded, builds);
                app::run(&loaded, &profile, &mut uart);
                Booted::App { partition_offset: loaded.partition_offset, profile: Box::new(profile) }
            }
        },
    };
    BootOutcome { bytes: uart.bytes, result, otadata_write }
}
