//! The in-process ESP32 twin as a [`Board`]: its pseudo-terminal is the serial line, flashed by
//! the same espflash code as a real board ([`super::loader`], no reset lines: a pseudo-terminal
//! has no DTR/RTS); EN, GPIO0 and power come from its [`TwinHandle`], whose calls return once
//! the chip has acted.

use std::io::Read;
use std::sync::Arc;

use serialport::{ClearBuffer, SerialPort};

use super::loader::{self, ConnectOptions, LoaderAnswer, LoaderSession};
use super::{
    Board, BoardError, BoardIdentity, BoardKind, CONSOLE_POLL, Chip, Emulation, FlashEvent, FlashProgress, FlashReport,
    PowerCuts, Region, ResetMode, ResetStrategy,
};
use crate::firmware::profile::KnownBuild;
use crate::firmware::start::PowerCut;
use crate::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use crate::twin::network::LabNetwork;

/// A twin behind the [`Board`] trait; the twin stops when this is dropped.
pub struct TwinBoard {
    identity: BoardIdentity,
    flash_size: u32,
    /// The line, kept open between calls (opened on first use).
    port: Option<espflash::connection::Port>,
    // Declared last: the port closes before the twin stops (once no watcher holds the handle).
    handle: Arc<TwinHandle>,
}

impl TwinBoard {
    /// Starts a twin named `id` (in download mode unless `config` says otherwise).
    pub fn spawn(id: &str, config: TwinConfig) -> Result<Self, BoardError> {
        let flash_size = config.flash_size;
        let handle = TwinDevice::spawn(config).map_err(|source| BoardError::Twin { id: id.to_owned(), source })?;
        let identity = BoardIdentity {
            id: id.to_owned(),
            chip: Chip::Esp32,
            kind: BoardKind::Twin,
            port: Some(handle.port_path()),
            usb: None,
            reset: ResetStrategy::None,
        };
        Ok(Self { identity, flash_size, port: None, handle: Arc::new(handle) })
    }

    /// The twin's own handle: its flash, resets, power cuts and armed faults.
    pub fn handle(&self) -> &TwinHandle {
        &self.handle
    }

    /// Connects to the ROM loader with espflash, without a reset (as a board whose strategy is
    /// `none`): the twin must be in it, as it starts or after [`Board::reset`] into download
    /// mode. The chip the twin reports; the twin stays in the loader.
    pub fn connect_loader(&mut self) -> Result<LoaderAnswer, BoardError> {
        let serial = self.take_port()?;
        let mut session = LoaderSession::connect(&self.identity.id, &self.handle.port_path(), serial, Self::options())?;
        let answer = session.answer();
        self.port = Some(session.into_port()?);
        Ok(answer)
    }

    /// No reset before SYNC (no DTR/RTS on a pseudo-terminal), the ROM's baud rate.
    fn options() -> ConnectOptions<'static> {
        ConnectOptions { usb: None, before: ResetStrategy::None.before_connect(), baud: None, expect: Chip::Esp32 }
    }

    fn take_port(&mut self) -> Result<espflash::connection::Port, BoardError> {
        match self.port.take() {
            Some(port) => Ok(port),
            None => loader::open_port(&self.identity.id, &self.handle.port_path()),
        }
    }

    fn line(&mut self) -> Result<&mut espflash::connection::Port, BoardError> {
        let port = self.take_port()?;
        Ok(self.port.insert(port))
    }

    /// Drops what the line holds, then lets `act` move the chip.
    fn fresh(&mut self, act: impl FnOnce(&TwinHandle)) -> Result<(), BoardError> {
        let id = self.identity.id.clone();
        let path = self.handle.port_path();
        self.line()?.clear(ClearBuffer::Input).map_err(|source| BoardError::Console { id, port: path, source })?;
        act(&self.handle);
        Ok(())
    }
}

impl Board for TwinBoard {
    fn identity(&self) -> &BoardIdentity {
        &self.identity
    }

    fn flash(&mut self, regions: &[Region], progress: &mut dyn FlashProgress) -> Result<FlashReport, BoardError> {
        let id = self.identity.id.clone();
        loader::check_fits(&id, regions, Some(self.flash_size))?;
        // GPIO0 low and EN pulsed: the chip waits in the ROM loader.
        self.handle.reset(true);
        let serial = self.take_port()?;
        let mut session = LoaderSession::connect(&id, &self.handle.port_path(), serial, Self::options())?;
        let report = session.write(regions, progress)?;
        if report.all_skipped() {
            // No FLASH_END was sent: the chip is still in the loader. Start the app from there,
            // as a board without reset wiring does, so it boots as after a write.
            session.run_user_code()?;
        }
        self.port = Some(session.into_port()?);
        progress.event(FlashEvent::Booting);
        Ok(report)
    }

    fn reset(&mut self, mode: ResetMode) -> Result<(), BoardError> {
        self.fresh(|twin| twin.reset(mode == ResetMode::Download))
    }

    fn power_cycle(&mut self) -> Result<bool, BoardError> {
        self.fresh(|twin| {
            twin.power_cut();
            // Power back: a power-on reset, booting from flash.
            twin.reset(false);
        })?;
        Ok(true)
    }

    fn console(&mut self) -> Result<Box<dyn Read + Send>, BoardError> {
        let id = self.identity.id.clone();
        let path = self.handle.port_path();
        let err = |source| BoardError::Console { id: id.clone(), port: path.clone(), source };
        let mut reader = self.line()?.try_clone_native().map_err(err)?;
        reader.set_timeout(CONSOLE_POLL).map_err(err)?;
        Ok(Box::new(reader))
    }

    fn power_cuts(&self) -> Option<Arc<dyn PowerCuts>> {
        Some(Arc::clone(&self.handle) as Arc<dyn PowerCuts>)
    }

    fn emulation(&mut self) -> Option<&mut dyn Emulation> {
        Some(self)
    }
}

impl Emulation for TwinBoard {
    fn set_network(&mut self, network: LabNetwork) {
        self.handle.set_network(network);
    }

    fn set_builds(&mut self, builds: Vec<KnownBuild>) {
        self.handle.set_builds(builds);
    }
}

impl PowerCuts for TwinHandle {
    fn arm(&self, cut: Option<PowerCut>) {
        self.arm_power_cut(cut);
    }

    fn wait_fired(&self, timeout: std::time::Duration) -> bool {
        self.wait_for_power_cut(timeout)
    }

    fn power_on(&self) {
        // EN released with GPIO0 high: the chip boots from flash.
        self.reset(false);
    }
}
