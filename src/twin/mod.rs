//! The ESP32 twin: a software ESP32 that a flasher and the rig talk to like a board.
//!
//! Its pure core: SLIP framing (`slip`), the NOR flash (`flash`), the ROM serial loader
//! (`rom`), the boot output ([`boot`]), RFC 2217 (`rfc2217`) and the DevKit auto-reset circuit
//! (`circuit`). [`device`] puts them on a pseudo-terminal or an RFC 2217 server (`remote`) as
//! a serial device; [`control`] is the standalone twin's reset and power channel.

pub mod boot;
pub(crate) mod circuit;
pub mod clock;
#[cfg(unix)]
pub mod control;
#[cfg(unix)]
pub mod device;
pub(crate) mod flash;
pub(crate) mod flash_file;
pub mod network;
mod ota;
#[cfg(unix)]
mod remote;
pub(crate) mod rfc2217;
pub(crate) mod rom;
pub(crate) mod slip;
mod uart;

pub use flash_file::FlashFileError;

/// The chip every twin is: an ESP32-D0WD-V3, revision v3.0 (its eFuses say so to flashers,
/// its bootloader and app say so on the console).
pub(crate) const CHIP_REVISION: (u16, u16) = (3, 0);
