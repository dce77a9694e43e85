//! The hardware seam: one small trait, [`Board`], for whatever runs a cell's firmware, and its
//! backends.
//!
//! - [`serial`]: a real board on a USB serial port: serialport for the console, espflash (as a
//!   library) for flashing, reset by named DTR/RTS sequences, optional power switching by a
//!   shell command;
//! - [`twin`]: the in-process ESP32 twin, flashed by the very same espflash code over its
//!   pseudo-terminal, reset and powered through its handle.
//!
//! Both flash through [`loader`]: the ROM serial loader without the flasher stub, regions whose
//! MD5 already matches skipped, the rest written and verified. Finding a port ([`port`]) is
//! separate from using it; reset sequences are data (`reset`); power control is a capability
//! a board may lack ([`power`]).
//!
//! With the cargo feature `probe`, a third backend, [`probe`]: a board on a JTAG debug probe
//! (probe-rs), flashed through the target's flash loader and reset through its debug sequences,
//! its console on its serial port. Builds without the feature stay lean.

pub(crate) mod deadline;
pub mod loader;
pub mod port;
pub mod power;
#[cfg(feature = "probe")]
pub mod probe;
pub(crate) mod reset;
pub mod serial;
pub mod twin;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::firmware::profile::KnownBuild;
use crate::firmware::start::PowerCut;
pub use crate::image::Chip;
use crate::twin::network::LabNetwork;
pub use deadline::Limited;
pub use reset::{ResetMode, ResetStrategy};

/// Bytes to write at a flash offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Flash address of the first byte.
    pub offset: u32,
    /// What is written there, as given (see [`Region::padded`]).
    pub bytes: Vec<u8>,
}

impl Region {
    /// A region padded to whole words with 0xFF, as espflash pads a single binary; the ROM's
    /// MD5 is then taken over exactly what was written.
    pub fn padded(offset: u32, mut bytes: Vec<u8>) -> Self {
        bytes.resize(bytes.len().next_multiple_of(4), 0xFF);
        Self { offset, bytes }
    }

    /// The first offset past the region.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + self.bytes.len() as u64
    }
}

/// What flashing is doing, in order, for progress bars and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashEvent {
    /// The ROM loader answered; the chip it reported.
    Connected {
        /// The chip the loader reported.
        chip: Chip,
    },
    /// The region's MD5 in flash equals the region's: nothing to write.
    Unchanged {
        /// The region's flash address.
        offset: u32,
        /// The region's length in bytes.
        len: usize,
    },
    /// Writing starts: `blocks` blocks of the ROM loader's size.
    Writing {
        /// The region's flash address.
        offset: u32,
        /// The region's length in bytes.
        len: usize,
        /// Blocks to write.
        blocks: usize,
    },
    /// `done` of the region's blocks are written.
    Block {
        /// The region's flash address.
        offset: u32,
        /// Blocks written so far, this one included.
        done: usize,
        /// Blocks in the region.
        blocks: usize,
    },
    /// The region's MD5 is being checked after writing.
    Verifying {
        /// The region's flash address.
        offset: u32,
    },
    /// The region is written and verified.
    Written {
        /// The region's flash address.
        offset: u32,
        /// The region's length in bytes.
        len: usize,
    },
    /// Every region is in place; the chip is on its way to boot from flash.
    Booting,
}

/// Receives [`FlashEvent`]s; any `FnMut(FlashEvent)` is one.
pub trait FlashProgress {
    /// Called for each step, in order, on the flashing thread.
    fn event(&mut self, event: FlashEvent);
}

impl<F: FnMut(FlashEvent)> FlashProgress for F {
    fn event(&mut self, event: FlashEvent) {
        self(event);
    }
}

/// Progress nobody watches.
pub struct NoProgress;

impl FlashProgress for NoProgress {
    fn event(&mut self, _: FlashEvent) {}
}

/// What one region's flashing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RegionReport {
    /// The region's flash address.
    pub offset: u32,
    /// The region's length in bytes.
    pub len: usize,
    /// False when the flash already held these bytes (MD5 equal) and nothing was written.
    pub written: bool,
}

/// What a flashing did, region by region.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlashReport {
    /// One report per region, in the order given.
    pub regions: Vec<RegionReport>,
    /// From the first byte sent to the chip booting.
    pub elapsed: Duration,
}

impl FlashReport {
    /// Bytes of the regions that were written.
    pub fn bytes_written(&self) -> usize {
        self.regions.iter().filter(|r| r.written).map(|r| r.len).sum()
    }

    /// Bytes of the regions the flash already held.
    pub fn bytes_skipped(&self) -> usize {
        self.regions.iter().filter(|r| !r.written).map(|r| r.len).sum()
    }

    /// Nothing needed writing.
    pub fn all_skipped(&self) -> bool {
        self.regions.iter().all(|r| !r.written)
    }
}

/// Which backend a board is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoardKind {
    /// A real board on a USB serial port.
    Serial,
    /// The in-process ESP32 twin.
    Twin,
    /// A board on a JTAG debug probe (built with the `probe` feature).
    Probe,
}

/// A USB device's identifiers, as the system lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UsbIdentity {
    /// USB vendor id (0x10c4 Silicon Labs, 0x303a Espressif).
    pub vid: u16,
    /// USB product id.
    pub pid: u16,
    /// The device's serial number string, when it reports one.
    pub serial_number: Option<String>,
    /// The manufacturer string, when it reports one.
    pub manufacturer: Option<String>,
    /// The product string, when it reports one.
    pub product: Option<String>,
}

/// Who a board is, for reports and logs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BoardIdentity {
    /// The lab config's id: `esp32-a`, `twin-1`.
    pub id: String,
    /// The chip the lab config says the board has.
    pub chip: Chip,
    /// Which backend drives it.
    pub kind: BoardKind,
    /// The serial port, once resolved.
    pub port: Option<PathBuf>,
    /// The USB device behind the port, when it is one.
    pub usb: Option<UsbIdentity>,
    /// The DTR/RTS sequence that resets the board (`None` where reset goes another way, as
    /// on a twin).
    pub reset: ResetStrategy,
}

/// Why a board could not do what it was asked; the rig's failure, never the firmware's.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The board's port could not be found.
    #[error("{id}: {source}")]
    Port {
        /// The board's id in the lab config.
        id: String,
        /// Why no single port matched.
        source: port::PortError,
    },
    /// The serial port could not be opened (missing, busy, no permission).
    #[error("{id}: cannot open {port}: {source}")]
    Open {
        /// The board's id in the lab config.
        id: String,
        /// The serial port's device path.
        port: PathBuf,
        /// The serial driver's error.
        source: serialport::Error,
    },
    /// The chip did not answer the ROM loader's sync after a reset into download mode.
    #[error("{id}: the ROM loader did not answer on {port}: {source}")]
    Connect {
        /// The board's id in the lab config.
        id: String,
        /// The serial port's device path.
        port: PathBuf,
        /// espflash's error.
        source: Box<espflash::Error>,
    },
    /// The ROM loader reports another chip than the lab config names.
    #[error("{id}: the chip is {found}, the lab config says {}", .expected.config_label())]
    ChipMismatch {
        /// The board's id in the lab config.
        id: String,
        /// The chip the lab config names.
        expected: Chip,
        /// The chip the loader reported, by espflash's name.
        found: String,
    },
    /// A region runs past the end of the board's flash; nothing was written.
    #[error("{id}: region at {offset:#x} ends at {end:#x}, past the {size:#x}-byte flash")]
    OutOfFlash {
        /// The board's id in the lab config.
        id: String,
        /// The region's flash address.
        offset: u32,
        /// The first address past the region.
        end: u64,
        /// The flash size in bytes.
        size: u32,
    },
    /// Connecting and flashing together took longer than the lab allows.
    #[error("{id}: connecting and flashing took longer than the lab's flash limit of {} s", limit.as_secs_f64())]
    FlashTimeout {
        /// The board's id in the lab config.
        id: String,
        /// The lab's flash limit.
        limit: Duration,
    },
    /// Writing or verifying a region failed.
    #[error("{id}: flashing at {offset:#x} failed: {source}")]
    Flash {
        /// The board's id in the lab config.
        id: String,
        /// The region's flash address.
        offset: u32,
        /// espflash's error.
        source: Box<espflash::Error>,
    },
    /// The ROM loader would not leave for the app after flashing.
    #[error("{id}: starting the app from the ROM loader failed: {source}")]
    Boot {
        /// The board's id in the lab config.
        id: String,
        /// espflash's error.
        source: Box<espflash::Error>,
    },
    /// Setting the DTR/RTS lines for a reset failed.
    #[error("{id}: {mode:?} reset by {strategy:?} lines on {port}: {source}")]
    Reset {
        /// The board's id in the lab config.
        id: String,
        /// What the reset was to boot into.
        mode: ResetMode,
        /// The line sequence used.
        strategy: ResetStrategy,
        /// The serial port's device path.
        port: PathBuf,
        /// The port driver's error.
        source: std::io::Error,
    },
    /// A reset was asked of a board whose reset lines are not wired.
    #[error("{id}: cannot reset: its reset strategy is `none` (no DTR/RTS wiring)")]
    CannotReset {
        /// The board's id in the lab config.
        id: String,
    },
    /// The board's power command failed.
    #[error("{id}: power {action}: {source}")]
    Power {
        /// The board's id in the lab config.
        id: String,
        /// Whether power was being switched off or on.
        action: power::PowerAction,
        /// How the command failed.
        source: power::PowerError,
    },
    /// The console could not be set up or read on the serial port.
    #[error("{id}: console on {port}: {source}")]
    Console {
        /// The board's id in the lab config.
        id: String,
        /// The serial port's device path.
        port: PathBuf,
        /// The serial driver's error.
        source: serialport::Error,
    },
    /// A step on the debug probe failed (opening it, attaching, flashing, resetting).
    #[error("{id}: debug probe {probe}: {step}: {source}")]
    Probe {
        /// The board's id in the lab config.
        id: String,
        /// The probe's selector, as the lab config names it.
        probe: String,
        /// The step that failed, as a lowercase fragment.
        step: &'static str,
        /// probe-rs's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A reset into the ROM loader was asked of a board on a debug probe, which flashes
    /// without it.
    #[error("{id}: a board on a debug probe has no reset into the ROM loader")]
    NoDownloadOverJtag {
        /// The board's id in the lab config.
        id: String,
    },
    /// The lab config puts the board on a debug probe, but this build lacks the `probe` feature.
    #[error("{id}: the board is on a debug probe, and this otarig was built without the `probe` feature")]
    ProbeFeature {
        /// The board's id in the lab config.
        id: String,
    },
    /// The twin failed (its flash, its pseudo-terminal, its firmware).
    #[error("{id}: {source}")]
    Twin {
        /// The board's id in the lab config.
        id: String,
        /// The twin's error.
        source: crate::twin::device::TwinError,
    },
}

/// One device at the hardware seam: a board on a serial port or a debug probe, a twin.
///
/// A cell uses it as: [`flash`](Board::flash) (the chip then boots what was written, its boot
/// log on the console), [`console`](Board::console) to read it, [`reset`](Board::reset) or
/// [`power_cycle`](Board::power_cycle) for faults and retries. The line stays open between
/// calls, so nothing the chip prints after a flash or a reset is lost; drop the console reader
/// before the next `flash`.
pub trait Board: Send {
    /// Who the board is.
    fn identity(&self) -> &BoardIdentity;

    /// The lab config's id.
    fn id(&self) -> &str {
        &self.identity().id
    }

    /// The chip on the board (cells go only to boards whose chip is the firmware's).
    fn chip(&self) -> Chip {
        self.identity().chip
    }

    /// Writes `regions` through the ROM loader, skipping those whose MD5 already matches; the
    /// chip then boots from flash (reset into the app when nothing needed writing), and what it
    /// prints waits on the console.
    fn flash(&mut self, regions: &[Region], progress: &mut dyn FlashProgress) -> Result<FlashReport, BoardError>;

    /// Resets the chip into the app (boot from flash) or into the ROM's serial loader. What
    /// the console held before is dropped; what the chip prints after the reset is kept.
    fn reset(&mut self, mode: ResetMode) -> Result<(), BoardError>;

    /// Removes and restores power, then the chip boots from flash. `Ok(false)`: the board has
    /// no power control (nothing was done).
    fn power_cycle(&mut self) -> Result<bool, BoardError>;

    /// A reader of the chip's UART from now on. Reads return `TimedOut` after
    /// `CONSOLE_POLL` of silence, so callers can keep their own time limits.
    fn console(&mut self) -> Result<Box<dyn Read + Send>, BoardError>;

    /// Optional: power cuts at a chosen point of an update ([`PowerCuts`]); `None` when the
    /// device cannot (a board's power command cuts at no particular byte).
    fn power_cuts(&self) -> Option<Arc<dyn PowerCuts>> {
        None
    }

    /// Optional: what an emulated device is given per cell ([`Emulation`]); `None` for a real
    /// board, on the lab's network and running its own build.
    fn emulation(&mut self) -> Option<&mut dyn Emulation> {
        None
    }
}

/// A device that can lose power at a chosen point of an update and be powered on again: the
/// twin. Shared with a thread that watches for the cut while the console is read.
pub trait PowerCuts: Send + Sync {
    /// Arms `cut` for the next update the firmware runs (`None`: nothing armed).
    fn arm(&self, cut: Option<PowerCut>);

    /// Waits at most `timeout` for the armed cut to fire; whether it did (the chip is then off).
    fn wait_fired(&self, timeout: Duration) -> bool;

    /// Power back on: a power-on reset, booting from what the flash holds.
    fn power_on(&self);
}

/// What the rig gives an emulated device (the twin) per cell: its DNS and SNTP, on loopback, so
/// one device can serve cells whose servers listen on different ports and whose dates differ;
/// and what the fleet states about the real builds it may boot, which their images cannot say.
pub trait Emulation {
    /// The network the firmware sees from now on.
    fn set_network(&mut self, network: LabNetwork);

    /// What is stated about real builds, by image; builds not listed are read from their images
    /// alone.
    fn set_builds(&mut self, builds: Vec<KnownBuild>);
}

/// How long a console read waits for bytes before returning `TimedOut`.
pub(crate) const CONSOLE_POLL: Duration = Duration::from_millis(20);

/// espflash's name for a chip, when espflash knows it.
pub(crate) fn espflash_chip(chip: Chip) -> Option<espflash::target::Chip> {
    use espflash::target::Chip as E;
    Some(match chip {
        Chip::Esp32 => E::Esp32,
        Chip::Esp32S2 => E::Esp32s2,
        Chip::Esp32C3 => E::Esp32c3,
        Chip::Esp32S3 => E::Esp32s3,
        Chip::Esp32C2 => E::Esp32c2,
        Chip::Esp32C6 => E::Esp32c6,
        Chip::Esp32H2 => E::Esp32h2,
        Chip::Esp32P4 => E::Esp32p4,
        Chip::Unknown(_) => return None,
    })
}

/// The chip one espflash detected, when the rig knows it.
pub(crate) fn chip_from_espflash(chip: espflash::target::Chip) -> Option<Chip> {
    Chip::KNOWN.into_iter().find(|known| espflash_chip(*known) == Some(chip))
}
