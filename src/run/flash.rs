//! Writing a cell's images into the device with espflash (as a library) over its serial port,
//! the way a board is flashed: the ROM loader without the flasher stub, MD5-verified.

use std::path::{Path, PathBuf};

use espflash::connection::{Connection, Port, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::Flasher;
use espflash::image_format::Segment;
use espflash::target::{Chip, DefaultProgressCallback};

/// The ROM loader's baud rate (a pseudo-terminal ignores it).
const BAUD: u32 = 115_200;

/// Bytes to write at a flash offset: the same regions a board is flashed with.
pub use crate::board::Region;

/// Flashing that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("cannot open {port}: {source}")]
    Open { port: PathBuf, source: serialport::Error },
    #[error("the ROM loader did not answer on {port}: {source}")]
    Connect { port: PathBuf, source: Box<espflash::Error> },
    #[error("the device is an {found}, not an ESP32")]
    Chip { found: Chip },
    #[error("writing the flash failed: {source}")]
    Write { source: Box<espflash::Error> },
}

/// Connects to the ROM loader on `port` (the device must already be in download mode: no reset
/// lines are toggled), writes every region in one go and hands the port back for the console.
///
/// espflash ends each write with FLASH_END, after which the ROM leaves the loader and the chip
/// boots; so all regions go in one call, and what the chip prints next waits on the port.
pub fn flash(port: &Path, regions: &[Region]) -> Result<Port, FlashError> {
    let serial = serialport::new(port.to_string_lossy(), BAUD)
        .open_native()
        .map_err(|source| FlashError::Open { port: port.to_owned(), source })?;
    let port_info = crate::board::port::espflash_port_info(None);
    let connection =
        Connection::new(serial, port_info, ResetAfterOperation::NoReset, ResetBeforeOperation::NoReset, BAUD);
    // No stub (the ROM loader runs no RAM code), MD5 verification on, nothing skipped.
    let mut flasher = Flasher::connect(connection, false, true, false, None, None)
        .map_err(|source| FlashError::Connect { port: port.to_owned(), source: Box::new(source) })?;
    if flasher.chip() != Chip::Esp32 {
        return Err(FlashError::Chip { found: flasher.chip() });
    }
    let segments: Vec<Segment<'_>> = regions.iter().map(|r| Segment::new(r.offset, &r.bytes)).collect();
    flasher
        .write_bins_to_flash(&segments, &mut DefaultProgressCallback)
        .map_err(|source| FlashError::Write { source: Box::new(source) })?;
    Ok(flasher.into())
}
