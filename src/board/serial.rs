//! A real board on a serial port: found by USB serial number, VID:PID or path ([`super::port`]),
//! flashed by espflash through the ROM loader ([`super::loader`]), reset by the named DTR/RTS
//! sequence of its strategy (`super::reset`), power-cycled by its lab's command
//! ([`super::power`]) when it has one. Connecting and flashing together count against the lab's
//! flash limit: connecting is bounded by espflash's own attempts, the write is cut off at the
//! limit (`super::deadline`).
//!
//! The port is resolved again whenever it is (re)opened, because USB serial ports change names
//! after a replug or a power cycle.

use std::io::Read;
use std::time::{Duration, Instant};

use serialport::SerialPort;

use super::loader::{self, ConnectOptions, LoaderAnswer, LoaderSession};
use super::port::{FoundPort, PortSelector, find_port, list_ports};
use super::power::{PowerAction, PowerControl, PowerValues};
use super::reset::{ResetMode, ResetStrategy, play};
use super::{
    Board, BoardError, BoardIdentity, BoardKind, CONSOLE_POLL, Chip, FlashEvent, FlashProgress, FlashReport, Region,
    UsbIdentity,
};

/// A board as the lab config describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialSpec {
    /// The board's id (`esp32-a`).
    pub id: String,
    /// The chip the board has; flashing refuses another.
    pub chip: Chip,
    /// How the board's port is found.
    pub selector: PortSelector,
    /// `None`: chosen from the USB device ([`choose_reset`]).
    pub reset: Option<ResetStrategy>,
    /// Flashing baud rate after connecting (`None`: the ROM's 115200).
    pub baud: Option<u32>,
    /// Flash size in bytes, when known: regions past it are refused before anything is sent.
    pub flash_size: Option<u32>,
    /// The board's power commands, when its power can be switched.
    pub power: Option<PowerControl>,
    /// How long a power command may run, and how long the port may take to come back after
    /// power returns.
    pub power_timeout: Duration,
    /// How long connecting to the ROM loader and writing the regions may take in all.
    pub flash_timeout: Duration,
    /// The debug probe that flashes and resets the board (`VID:PID[:SERIAL]`, checked when the
    /// lab config is read); the port is then its console only. `None`: the port does it all.
    pub probe: Option<String>,
    /// The board's address on the lab network (a DHCP reservation for its MAC): the rig tells
    /// its connections and SNTP requests from other boards' by it, so it runs beside them.
    /// `None`: it takes turns with the other boards without one.
    pub address: Option<std::net::IpAddr>,
}

impl SerialSpec {
    /// Whether the board's port is there now, without opening it (opening a port can reset a
    /// board): its path exists, or the system lists its USB device. A USB hub that drops the
    /// board takes its port away.
    pub fn port_present(&self) -> bool {
        match &self.selector {
            PortSelector::Path(path) => path.exists(),
            selector => list_ports().is_ok_and(|ports| find_port(selector, &ports).is_ok()),
        }
    }
}

/// Why a board resets the way it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetSource {
    /// The lab config says so.
    Configured,
    /// A USB device in the table of known bridges.
    KnownDevice(&'static str),
    /// A USB device the table does not know: the classic circuit is the common case.
    UnknownDevice,
    /// Not a listed USB port (a udev symlink resolves to one; a pseudo-terminal does not).
    NotUsb,
}

/// The reset strategy of a board: the configured one, else the USB device's, else classic.
pub fn choose_reset(configured: Option<ResetStrategy>, usb: Option<&UsbIdentity>) -> (ResetStrategy, ResetSource) {
    if let Some(strategy) = configured {
        return (strategy, ResetSource::Configured);
    }
    match usb {
        Some(usb) => match ResetStrategy::for_usb(usb.vid, usb.pid) {
            Some((strategy, name)) => (strategy, ResetSource::KnownDevice(name)),
            None => (ResetStrategy::Classic, ResetSource::UnknownDevice),
        },
        None => (ResetStrategy::Classic, ResetSource::NotUsb),
    }
}

/// A board on a serial port, behind the [`Board`] trait.
pub struct SerialBoard {
    spec: SerialSpec,
    identity: BoardIdentity,
    /// The line, kept open between calls.
    port: Option<espflash::connection::Port>,
}

impl SerialBoard {
    /// A board; nothing is opened until it is used.
    pub fn new(spec: SerialSpec) -> Self {
        let (reset, _) = choose_reset(spec.reset, None);
        let identity = BoardIdentity {
            id: spec.id.clone(),
            chip: spec.chip,
            kind: BoardKind::Serial,
            port: None,
            usb: None,
            reset,
        };
        Self { spec, identity, port: None }
    }

    /// What the lab config says about the board.
    pub fn spec(&self) -> &SerialSpec {
        &self.spec
    }

    /// Finds the board's port among those the system lists; the identity follows.
    pub(crate) fn resolve(&mut self) -> Result<(FoundPort, ResetSource), BoardError> {
        let port_err = |source| BoardError::Port { id: self.spec.id.clone(), source };
        let found = find_port(&self.spec.selector, &list_ports().map_err(port_err)?).map_err(port_err)?;
        let (reset, source) = choose_reset(self.spec.reset, found.usb.as_ref());
        self.identity.port = Some(found.path.clone());
        self.identity.usb = found.usb.clone();
        self.identity.reset = reset;
        Ok((found, source))
    }

    /// The open line: the one kept, or the port resolved and opened now.
    fn take_port(&mut self) -> Result<espflash::connection::Port, BoardError> {
        if let Some(port) = self.port.take() {
            return Ok(port);
        }
        let (found, _) = self.resolve()?;
        loader::open_port(&self.spec.id, &found.path)
    }

    fn line(&mut self) -> Result<&mut espflash::connection::Port, BoardError> {
        let port = self.take_port()?;
        Ok(self.port.insert(port))
    }

    /// Resets into the ROM loader (as the strategy says) and connects with espflash: the chip's
    /// answer, checked against the lab config. The board is then reset into the app where it
    /// has reset wiring, and left in the loader where it has none.
    pub fn connect_loader(&mut self) -> Result<LoaderAnswer, BoardError> {
        let serial = self.take_port()?;
        let mut session = self.connect(serial)?;
        let answer = session.answer();
        let port = session.into_port()?;
        self.port = Some(port);
        if self.identity.reset != ResetStrategy::None {
            self.reset(ResetMode::App)?;
        }
        Ok(answer)
    }

    fn connect(&self, serial: espflash::connection::Port) -> Result<LoaderSession, BoardError> {
        let options = ConnectOptions {
            usb: self.identity.usb.as_ref(),
            before: self.identity.reset.before_connect(),
            baud: self.spec.baud,
            expect: self.spec.chip,
        };
        let path = self.identity.port.clone().unwrap_or_default();
        LoaderSession::connect(&self.spec.id, &path, serial, options)
    }
}

/// Switches a board off for the power command's off time and on again (its `power` commands,
/// filled in with the board's identity).
pub(super) fn switch_power(
    spec: &SerialSpec,
    identity: &BoardIdentity,
    control: &PowerControl,
) -> Result<(), BoardError> {
    let usb_serial = identity.usb.as_ref().and_then(|usb| usb.serial_number.as_deref());
    let run = |action| {
        let values = PowerValues { action, id: &spec.id, port: identity.port.as_deref(), usb_serial };
        control.run(&values, spec.power_timeout).map_err(|source| BoardError::Power {
            id: spec.id.clone(),
            action,
            source,
        })
    };
    run(PowerAction::Off)?;
    std::thread::sleep(control.off_time);
    run(PowerAction::On)
}

/// Tries `open` until it succeeds or `limit` has passed (a port coming back after power-on, as
/// its USB device enumerates again); the last failure when it never does.
pub(super) fn await_port<T>(limit: Duration, mut open: impl FnMut() -> Result<T, BoardError>) -> Result<T, BoardError> {
    let deadline = Instant::now() + limit;
    loop {
        match open() {
            Ok(value) => return Ok(value),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(err) => return Err(err),
        }
    }
}

impl Board for SerialBoard {
    fn identity(&self) -> &BoardIdentity {
        &self.identity
    }

    fn flash(&mut self, regions: &[Region], progress: &mut dyn FlashProgress) -> Result<FlashReport, BoardError> {
        loader::check_fits(&self.spec.id, regions, self.spec.flash_size)?;
        let id = self.spec.id.clone();
        let limit = self.spec.flash_timeout;
        // The limit counts from here. Connecting is bounded by espflash's own attempts; the
        // write, which is not, is cut off with what is left of the limit.
        let started = Instant::now();
        let serial = self.take_port()?;
        let mut session = self.connect(serial)?;
        let Some(left) = limit.checked_sub(started.elapsed()) else {
            return Err(BoardError::FlashTimeout { id, limit });
        };
        let written = session.write_within(regions, progress, left).map_err(|source| BoardError::Console {
            id: id.clone(),
            port: self.identity.port.clone().unwrap_or_default(),
            source: source.into(),
        })?;
        if written.cut {
            // The port reads nothing any more: the next cell opens the board afresh.
            return Err(BoardError::FlashTimeout { id, limit });
        }
        let report = written.value?;
        let lines = self.identity.reset != ResetStrategy::None;
        if !lines && report.all_skipped() {
            // Still in the loader and no wiring to reset it: start the app from there.
            session.run_user_code()?;
        }
        self.port = Some(session.into_port()?);
        if lines {
            // A clean boot whatever the loader did, the console emptied while EN is low.
            self.reset(ResetMode::App)?;
        }
        progress.event(FlashEvent::Booting);
        Ok(report)
    }

    fn reset(&mut self, mode: ResetMode) -> Result<(), BoardError> {
        let strategy = self.identity.reset;
        let id = self.spec.id.clone();
        let steps = strategy.sequence(mode).ok_or_else(|| BoardError::CannotReset { id: id.clone() })?;
        let port = self.line()?;
        let path = port.name().unwrap_or_default().into();
        play(steps, port).map_err(|source| BoardError::Reset { id, mode, strategy, port: path, source })
    }

    fn power_cycle(&mut self) -> Result<bool, BoardError> {
        let Some(control) = self.spec.power.clone() else {
            return Ok(false);
        };
        // The port goes away with the power when the board's USB device is switched.
        self.port = None;
        switch_power(&self.spec, &self.identity, &control)?;
        await_port(self.spec.power_timeout, || self.line().map(drop))?;
        // The boot that began at power-on was printed while the port was closed: boot again,
        // where the board has reset wiring, so the console holds a whole boot log.
        if self.identity.reset != ResetStrategy::None {
            self.reset(ResetMode::App)?;
        }
        Ok(true)
    }

    fn console(&mut self) -> Result<Box<dyn Read + Send>, BoardError> {
        let id = self.spec.id.clone();
        let port = self.line()?;
        let path = std::path::PathBuf::from(port.name().unwrap_or_default());
        let err = |source| BoardError::Console { id: id.clone(), port: path.clone(), source };
        let mut reader = port.try_clone_native().map_err(err)?;
        reader.set_timeout(CONSOLE_POLL).map_err(err)?;
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usb(vid: u16, pid: u16) -> UsbIdentity {
        UsbIdentity { vid, pid, ..UsbIdentity::default() }
    }

    #[test]
    fn reset_strategy_from_config_then_device_then_classic() {
        let jtag = usb(0x303a, 0x1001);
        assert_eq!(
            choose_reset(Some(ResetStrategy::None), Some(&jtag)),
            (ResetStrategy::None, ResetSource::Configured)
        );
        assert_eq!(
            choose_reset(None, Some(&jtag)),
            (ResetStrategy::UsbJtag, ResetSource::KnownDevice("Espressif USB-Serial-JTAG"))
        );
        assert_eq!(
            choose_reset(None, Some(&usb(0x10c4, 0xea60))),
            (ResetStrategy::Classic, ResetSource::KnownDevice("Silicon Labs CP210x"))
        );
        assert_eq!(
            choose_reset(None, Some(&usb(0xdead, 0xbeef))),
            (ResetStrategy::Classic, ResetSource::UnknownDevice)
        );
        assert_eq!(choose_reset(None, None), (ResetStrategy::Classic, ResetSource::NotUsb));
    }

    #[test]
    fn a_board_without_wiring_cannot_reset() {
        let spec = SerialSpec {
            id: "bench".into(),
            chip: Chip::Esp32,
            selector: PortSelector::Path("/nonexistent/tty".into()),
            reset: Some(ResetStrategy::None),
            baud: None,
            flash_size: None,
            power: None,
            power_timeout: Duration::from_secs(1),
            flash_timeout: Duration::from_secs(120),
            probe: None,
            address: None,
        };
        let mut board = SerialBoard::new(spec);
        assert!(matches!(board.reset(ResetMode::App), Err(BoardError::CannotReset { .. })));
        assert!(!board.power_cycle().unwrap(), "no power control: nothing done");
        // Flashing past the configured flash is refused before the port is touched.
        board.spec.flash_size = Some(0x1000);
        let regions = [Region::padded(0x1000, vec![0; 4])];
        let err = board.flash(&regions, &mut super::super::NoProgress).unwrap_err();
        assert!(matches!(err, BoardError::OutOfFlash { offset: 0x1000, .. }), "{err:?}");
    }
}
