//! Flashing through the ESP32 ROM serial loader with espflash as a library, shared by every
//! backend with a serial line: connect (reset into the loader as the board's strategy says,
//! SYNC, chip detection), skip each region whose MD5 in flash already matches, write and
//! verify the rest in one go, and hand the port back for the console.
//!
//! No flasher stub: the ROM loader is on every chip and the twin runs no RAM code. espflash
//! ends a write with FLASH_END, after which the chip leaves the loader and boots; when nothing
//! needed writing it is still in the loader, and the backend boots it (a reset, or
//! `LoaderSession::run_user_code` where there is no reset wiring).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use espflash::command::{Command, CommandType};
use espflash::connection::{Connection, Port, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::Flasher;
use espflash::image_format::Segment;
use espflash::target::ProgressCallbacks;
use md5::{Digest, Md5};
use serialport::SerialPort;

use super::deadline::{self, Limited};
use super::port::espflash_port_info;
use super::{
    BoardError, Chip, FlashEvent, FlashProgress, FlashReport, Region, RegionReport, UsbIdentity, chip_from_espflash,
};

/// The ROM loader's baud rate, and the console's (ESP-IDF's default).
pub(crate) const ROM_BAUD: u32 = 115_200;
/// The ROM loader's FLASH_DATA block size.
const ROM_BLOCK: u32 = 0x400;

/// A serial port to open for the loader.
pub fn open_port(id: &str, path: &Path) -> Result<Port, BoardError> {
    serialport::new(path.to_string_lossy(), ROM_BAUD)
        .timeout(super::CONSOLE_POLL)
        .open_native()
        .map_err(|source| BoardError::Open { id: id.to_owned(), port: path.to_owned(), source })
}

/// A connection to a chip's ROM loader.
pub struct LoaderSession {
    flasher: Flasher,
    /// The descriptor of the port inside `flasher` (espflash lends it no other way).
    port_fd: RawFd,
    id: String,
    port: PathBuf,
    chip: Chip,
}

/// What a chip's ROM loader told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderAnswer {
    /// The chip the loader identified.
    pub chip: Chip,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
}

/// How to reach the loader.
#[derive(Clone, Copy, Debug)]
pub struct ConnectOptions<'a> {
    /// The USB device behind the port (espflash picks the USB-JTAG sequences by its PID).
    pub usb: Option<&'a UsbIdentity>,
    /// What happens before SYNC: a reset into the loader, or nothing.
    pub before: ResetBeforeOperation,
    /// Switch to this baud rate after connecting (ROM CHANGE_BAUDRATE); `None`: stay at 115200.
    pub baud: Option<u32>,
    /// The chip the board must have.
    pub expect: Chip,
}

impl LoaderSession {
    /// Connects to the ROM loader on `serial` (the port at `path`) and checks the chip.
    pub fn connect(id: &str, path: &Path, serial: Port, options: ConnectOptions<'_>) -> Result<Self, BoardError> {
        let port_fd = serial.as_raw_fd();
        let connection = Connection::new(
            serial,
            espflash_port_info(options.usb),
            // espflash does nothing after writing: the backend boots the chip (see the module).
            ResetAfterOperation::NoResetNoStub,
            options.before,
            ROM_BAUD,
        );
        // No stub, MD5 verification after each write; skipping is done here, region by region.
        let flasher = Flasher::connect(connection, false, true, false, None, options.baud).map_err(|source| {
            BoardError::Connect { id: id.to_owned(), port: path.to_owned(), source: Box::new(source) }
        })?;
        let found = flasher.chip();
        let chip = chip_from_espflash(found).filter(|chip| *chip == options.expect).ok_or_else(|| {
            BoardError::ChipMismatch { id: id.to_owned(), expected: options.expect, found: found.to_string() }
        })?;
        Ok(Self { flasher, port_fd, id: id.to_owned(), port: path.to_owned(), chip })
    }

    /// What the loader says of the chip: its kind, and its Wi-Fi MAC address from eFuse (what a
    /// lab's DHCP reservation names), `None` when the loader would not tell.
    pub(crate) fn answer(&mut self) -> LoaderAnswer {
        let mac = self.flasher.chip().mac_address(self.flasher.connection());
        LoaderAnswer { chip: self.chip, mac: mac.inspect_err(|e| tracing::debug!("{}: no MAC: {e}", self.id)).ok() }
    }

    /// Writes the regions whose MD5 in flash differs, verifying each; reports every region.
    pub fn write(&mut self, regions: &[Region], progress: &mut dyn FlashProgress) -> Result<FlashReport, BoardError> {
        let started = Instant::now();
        progress.event(FlashEvent::Connected { chip: self.chip });
        let mut reports = Vec::with_capacity(regions.len());
        let mut changed = Vec::new();
        for region in regions {
            let len = region.bytes.len();
            let in_flash = self.flasher.checksum_md5(region.offset, len as u32).map_err(|source| {
                BoardError::Flash { id: self.id.clone(), offset: region.offset, source: Box::new(source) }
            })?;
            let unchanged = in_flash == u128::from_be_bytes(Md5::digest(&region.bytes).into());
            if unchanged {
                progress.event(FlashEvent::Unchanged { offset: region.offset, len });
            } else {
                changed.push(Segment::new(region.offset, &region.bytes));
            }
            reports.push(RegionReport { offset: region.offset, len, written: !unchanged });
        }
        if !changed.is_empty() {
            let mut callbacks = Callbacks { progress, regions, offset: changed[0].addr, blocks: 0 };
            self.flasher.write_bins_to_flash(&changed, &mut callbacks).map_err(|source| BoardError::Flash {
                id: self.id.clone(),
                offset: callbacks.offset,
                source: Box::new(source),
            })?;
        }
        Ok(FlashReport { regions: reports, elapsed: started.elapsed() })
    }

    /// [`write`](Self::write) within `limit`: once it passes, the port is cut off
    /// (`deadline::run`) and the write fails; the session is then of no further use.
    pub fn write_within(
        &mut self,
        regions: &[Region],
        progress: &mut dyn FlashProgress,
        limit: Duration,
    ) -> io::Result<Limited<Result<FlashReport, BoardError>>> {
        // SAFETY: `port_fd` is the descriptor of the port `self.flasher` owns. espflash never
        // closes or replaces its port, and `self` (with the flasher in it) is borrowed mutably
        // until `run` has returned, only to `write`, which does not move the flasher: the
        // descriptor stays open for as long as the borrow is used.
        let port = unsafe { BorrowedFd::borrow_raw(self.port_fd) };
        deadline::run(port, limit, || self.write(regions, progress))
    }

    /// Leaves the loader and starts the app from flash without a reset: FLASH_BEGIN of nothing,
    /// then FLASH_END with "run user code" (esptool's soft reset in ROM mode).
    pub(crate) fn run_user_code(&mut self) -> Result<(), BoardError> {
        let connection = self.flasher.connection();
        let begin = |c: &mut Connection| {
            c.command(Command::FlashBegin {
                size: 0,
                blocks: 0,
                block_size: ROM_BLOCK,
                offset: 0,
                supports_encryption: false,
            })
        };
        let end = |c: &mut Connection| c.command(Command::FlashEnd { reboot: false });
        connection
            .with_timeout(CommandType::FlashBegin.timeout(), begin)
            .and_then(|_| connection.with_timeout(CommandType::FlashEnd.timeout(), end))
            .map(drop)
            .map_err(|source| BoardError::Boot { id: self.id.clone(), source: Box::new(source) })
    }

    /// The port back, at the console's baud rate.
    pub(crate) fn into_port(self) -> Result<Port, BoardError> {
        let mut port: Port = self.flasher.into();
        port.set_baud_rate(ROM_BAUD).map_err(|source| BoardError::Console { id: self.id, port: self.port, source })?;
        Ok(port)
    }
}

/// espflash's progress callbacks as [`FlashEvent`]s.
struct Callbacks<'a> {
    progress: &'a mut dyn FlashProgress,
    regions: &'a [Region],
    /// The region being written.
    offset: u32,
    blocks: usize,
}

impl ProgressCallbacks for Callbacks<'_> {
    fn init(&mut self, addr: u32, total: usize) {
        self.offset = addr;
        self.blocks = total;
        let len = self.regions.iter().find(|r| r.offset == addr).map_or(0, |r| r.bytes.len());
        self.progress.event(FlashEvent::Writing { offset: addr, len, blocks: total });
    }

    fn update(&mut self, current: usize) {
        self.progress.event(FlashEvent::Block { offset: self.offset, done: current, blocks: self.blocks });
    }

    fn verifying(&mut self) {
        self.progress.event(FlashEvent::Verifying { offset: self.offset });
    }

    fn finish(&mut self, _skipped: bool) {
        let len = self.regions.iter().find(|r| r.offset == self.offset).map_or(0, |r| r.bytes.len());
        self.progress.event(FlashEvent::Written { offset: self.offset, len });
    }
}

/// Refuses regions past the end of a flash of `size` bytes, before anything is sent.
pub(crate) fn check_fits(id: &str, regions: &[Region], size: Option<u32>) -> Result<(), BoardError> {
    let Some(size) = size else { return Ok(()) };
    match regions.iter().find(|r| r.end() > u64::from(size)) {
        Some(r) => Err(BoardError::OutOfFlash { id: id.to_owned(), offset: r.offset, end: r.end(), size }),
        None => Ok(()),
    }
}
