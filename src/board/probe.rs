//! A board on a JTAG debug probe: flashed through probe-rs's flash loader for the chip's target
//! (`esp32`, `esp32c3`, `esp32s3`), reset into the app through the target's debug sequences,
//! power-cycled by its lab's command ([`super::power`]) when it has one. JTAG carries no UART:
//! the console is the board's serial port, found as a serial board's is ([`super::port`]) and
//! opened without touching DTR/RTS.
//!
//! probe-rs knows the ESP targets and the ESP USB-JTAG probe only through probe-rs-espressif's
//! plugin, registered once (`register_espressif`) before probes are listed or opened.

use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Once;
use std::time::Instant;

use probe_rs::flashing::DownloadOptions;
use probe_rs::probe::DebugProbeSelector;
use probe_rs::probe::list::Lister;
use probe_rs::{Permissions, Session};
use serialport::{ClearBuffer, SerialPort, TTYPort};

use super::port::{find_port, list_ports};
use super::serial::{SerialSpec, await_port, switch_power};
use super::{
    Board, BoardError, BoardIdentity, BoardKind, CONSOLE_POLL, FlashEvent, FlashProgress, FlashReport, Region,
    RegionReport, ResetMode, ResetStrategy, loader,
};

/// The console's baud rate: the ROM's and ESP-IDF's default.
const CONSOLE_BAUD: u32 = 115_200;

/// Adds the ESP targets, debug sequences and USB-JTAG probe driver to probe-rs, once per process.
pub(crate) fn register_espressif() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(probe_rs_espressif::register_plugin);
}

/// Why text is not a probe selector: probe-rs's parse error (which it does not export by name).
pub(crate) type SelectorError = <DebugProbeSelector as FromStr>::Err;

/// A probe selector as the lab config writes it: `VID:PID` or `VID:PID:SERIAL`, in hex.
pub(crate) fn parse_selector(text: &str) -> Result<DebugProbeSelector, SelectorError> {
    text.parse::<DebugProbeSelector>()
}

/// A debug probe on this host, as probe-rs lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListedProbe {
    /// probe-rs's human-readable name for the probe.
    pub identifier: String,
    /// USB vendor id.
    pub vid: u16,
    /// USB product id.
    pub pid: u16,
    /// The probe's USB serial number, when it reports one.
    pub serial_number: Option<String>,
}

impl ListedProbe {
    /// The selector that names this probe: with its serial number when it has one.
    pub fn selector(&self) -> String {
        match &self.serial_number {
            Some(serial) => format!("{:04x}:{:04x}:{serial}", self.vid, self.pid),
            None => format!("{:04x}:{:04x}", self.vid, self.pid),
        }
    }
}

/// The debug probes attached to this host.
pub fn list_probes() -> Vec<ListedProbe> {
    register_espressif();
    Lister::new()
        .list_all()
        .into_iter()
        .map(|info| ListedProbe {
            identifier: info.identifier,
            vid: info.vendor_id,
            pid: info.product_id,
            serial_number: info.serial_number,
        })
        .collect()
}

/// A board on a debug probe, behind the [`Board`] trait.
pub(crate) struct ProbeBoard {
    spec: SerialSpec,
    selector: DebugProbeSelector,
    identity: BoardIdentity,
    /// Attached on first use, kept between calls.
    session: Option<Session>,
    /// The console line, kept open between calls.
    console: Option<TTYPort>,
}

impl ProbeBoard {
    /// A board; nothing is opened until it is used. `spec.probe` must name the probe.
    pub fn new(spec: SerialSpec) -> Result<Self, BoardError> {
        let text = spec.probe.clone().unwrap_or_default();
        let selector = parse_selector(&text).map_err(|source| BoardError::Probe {
            id: spec.id.clone(),
            probe: text.clone(),
            step: "selector",
            source: source.into(),
        })?;
        let identity = BoardIdentity {
            id: spec.id.clone(),
            chip: spec.chip,
            kind: BoardKind::Probe,
            port: None,
            usb: None,
            // No DTR/RTS: the probe resets the chip.
            reset: ResetStrategy::None,
        };
        Ok(Self { spec, selector, identity, session: None, console: None })
    }

    fn probe_err(
        &self,
        step: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> BoardError + use<> {
        let (id, probe) = (self.spec.id.clone(), self.selector.to_string());
        move |source| BoardError::Probe { id, probe, step, source }
    }

    /// The attached session: the one kept, or the probe opened and attached to the chip now.
    fn session(&mut self) -> Result<&mut Session, BoardError> {
        let session = match self.session.take() {
            Some(session) => session,
            None => {
                register_espressif();
                let probe = Lister::new().open(self.selector.clone()).map_err(|e| self.probe_err("open")(e.into()))?;
                let target = self.spec.chip.config_name().unwrap_or("unknown");
                probe.attach(target, Permissions::default()).map_err(|e| self.probe_err("attach")(e.into()))?
            }
        };
        Ok(self.session.insert(session))
    }

    /// The console line: the one kept, or the port resolved and opened now.
    fn line(&mut self) -> Result<&mut TTYPort, BoardError> {
        if let Some(port) = self.console.take() {
            return Ok(self.console.insert(port));
        }
        {
            let id = self.spec.id.clone();
            let port_err = |source| BoardError::Port { id: id.clone(), source };
            let found = find_port(&self.spec.selector, &list_ports().map_err(port_err)?).map_err(port_err)?;
            self.identity.port = Some(found.path.clone());
            self.identity.usb = found.usb.clone();
            // dtr_on_open left unset: a USB-Serial-JTAG port would reset the chip on DTR/RTS.
            let port = serialport::new(found.path.to_string_lossy(), CONSOLE_BAUD)
                .timeout(CONSOLE_POLL)
                .open_native()
                .map_err(|source| BoardError::Open { id, port: found.path, source })?;
            Ok(self.console.insert(port))
        }
    }

    fn console_path(&self) -> PathBuf {
        self.identity.port.clone().unwrap_or_default()
    }

    /// Drops what the console holds, then resets the chip and lets it run from flash.
    fn reset_into_app(&mut self) -> Result<(), BoardError> {
        let id = self.spec.id.clone();
        self.line()?.clear(ClearBuffer::Input).map_err(|source| BoardError::Console {
            id,
            port: self.console_path(),
            source,
        })?;
        let err = self.probe_err("reset");
        let session = self.session()?;
        let result = session.core(0).and_then(|mut core| {
            core.reset()?;
            if core.core_halted()? {
                core.run()?;
            }
            Ok(())
        });
        result.map_err(|e| err(e.into()))
    }
}

impl Board for ProbeBoard {
    fn identity(&self) -> &BoardIdentity {
        &self.identity
    }

    fn flash(&mut self, regions: &[Region], progress: &mut dyn FlashProgress) -> Result<FlashReport, BoardError> {
        loader::check_fits(&self.spec.id, regions, self.spec.flash_size)?;
        let start = Instant::now();
        let (add_err, err) = (self.probe_err("flash"), self.probe_err("flash"));
        let chip = self.spec.chip;
        let session = self.session()?;
        progress.event(FlashEvent::Connected { chip });
        let mut flash = session.target().flash_loader();
        for region in regions {
            if let Err(e) = flash.add_data(region.offset.into(), &region.bytes) {
                return Err(add_err(e.into()));
            }
            progress.event(FlashEvent::Writing { offset: region.offset, len: region.bytes.len(), blocks: 1 });
        }
        // Regions the flash already holds are read back and left alone (preverify).
        let mut options = DownloadOptions::default();
        options.verify = true;
        options.preverify = true;
        flash.commit(session, options).map_err(|e| err(e.into()))?;
        for region in regions {
            progress.event(FlashEvent::Written { offset: region.offset, len: region.bytes.len() });
        }
        self.reset_into_app()?;
        progress.event(FlashEvent::Booting);
        // probe-rs does not say which regions preverify left alone: each is reported written.
        let regions =
            regions.iter().map(|r| RegionReport { offset: r.offset, len: r.bytes.len(), written: true }).collect();
        Ok(FlashReport { regions, elapsed: start.elapsed() })
    }

    fn reset(&mut self, mode: ResetMode) -> Result<(), BoardError> {
        match mode {
            ResetMode::App => self.reset_into_app(),
            ResetMode::Download => Err(BoardError::NoDownloadOverJtag { id: self.spec.id.clone() }),
        }
    }

    fn power_cycle(&mut self) -> Result<bool, BoardError> {
        let Some(control) = self.spec.power.clone() else {
            return Ok(false);
        };
        // The probe and the console go away with the power when their USB devices are switched.
        self.session = None;
        self.console = None;
        switch_power(&self.spec, &self.identity, &control)?;
        await_port(self.spec.power_timeout, || self.line().map(drop))?;
        // The boot that began at power-on was printed while the port was closed: boot again.
        self.reset_into_app()?;
        Ok(true)
    }

    fn console(&mut self) -> Result<Box<dyn Read + Send>, BoardError> {
        let id = self.spec.id.clone();
        let line = self.line()?;
        let reader = line.try_clone_native();
        let reader = reader.map_err(|source| BoardError::Console { id, port: self.console_path(), source })?;
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Chip;
    use crate::board::port::PortSelector;

    #[test]
    fn selectors_parse_as_probe_rs_reads_them() {
        let plain = parse_selector("303a:1001").unwrap();
        assert_eq!((plain.vendor_id, plain.product_id, plain.serial_number), (0x303a, 0x1001, None));
        let serial = parse_selector("303a:1001:F4:12:FA:00:11:22").unwrap();
        assert_eq!(serial.serial_number.as_deref(), Some("F4:12:FA:00:11:22"));
        assert!(matches!(parse_selector("303a"), Err(SelectorError::Format)));
        assert!(matches!(parse_selector("esp:prog"), Err(SelectorError::ParseInt(_))));
    }

    #[test]
    fn download_mode_is_refused_before_the_probe_is_opened() {
        let spec = SerialSpec {
            id: "jtag".into(),
            chip: Chip::Esp32C3,
            selector: PortSelector::Path("/nonexistent/tty".into()),
            reset: None,
            baud: None,
            flash_size: Some(0x1000),
            power: None,
            power_timeout: std::time::Duration::from_secs(1),
            flash_timeout: std::time::Duration::from_secs(120),
            probe: Some("303a:1001".into()),
            address: None,
        };
        let mut board = ProbeBoard::new(spec).unwrap();
        assert_eq!(board.identity().kind, BoardKind::Probe);
        assert!(matches!(board.reset(ResetMode::Download), Err(BoardError::NoDownloadOverJtag { .. })));
        assert!(!board.power_cycle().unwrap(), "no power control: nothing done");
        let regions = [Region::padded(0x1000, vec![0; 4])];
        let err = board.flash(&regions, &mut super::super::NoProgress).unwrap_err();
        assert!(matches!(err, BoardError::OutOfFlash { .. }), "{err:?}");
    }
}
