//! A station: one place cells run, one at a time, named by its device's id (`twin-1`,
//! `esp32-a`, ...), and the device there.
//!
//! On twins the station keeps its twin between cells of the same firmware and lab network: the
//! twin already holds the bootloader, the partition table and the firmware's image, so the next
//! cell resets it into download mode and has espflash write only the otadata partition, erased,
//! after which the chip boots the factory image as a freshly flashed one does. Any other cell
//! gets a fresh twin, flashed whole. A scenario's power cut is armed on a fresh twin; once it
//! fires the station powers the twin on again (a reset that boots from flash), as a lab's power
//! switch would, while the console is read on. Such a twin is not kept.
//!
//! On a board of the lab config the station drives the [`Board`] trait: every cell flashes the
//! firmware's regions, the erased otadata and the board's `[prepare]` regions, and the backend
//! skips those whose MD5 already matches, so a board that holds the firmware only has its
//! otadata reset. The board's line stays open between cells; after a failure of the rig it is
//! opened afresh (its port resolved again). Its update server is a route on the lab's shared
//! listener, from the board's address when the config gives one.
//!
//! This is the only part of the runner that knows what its devices are.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use crate::board::{Board, Chip, FlashReport, NoProgress};
use crate::lab::{DeviceSpec, LabConfig};
use crate::run::cell::{CellError, CellFlash};
use crate::run::flash::{Region, flash};
use crate::run::lock::{BoardLock, LockDir, LockError};
use crate::run::serve::Setup;
use crate::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use crate::twin::network::LabNetwork;

/// How often the console read returns while the line is quiet, so limits apply.
const READ_POLL: Duration = Duration::from_millis(20);
/// How often the watch for an armed power cut looks whether the cell is over.
const POWER_POLL: Duration = Duration::from_millis(10);

/// How a cell's device was made ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readied {
    /// A fresh twin, flashed whole: bootloader, partition table, app.
    Flashed,
    /// The twin of the cell before, reset with its otadata erased.
    Reused,
    /// A board, flashed through the [`Board`] trait: what was written, what was already there.
    Board(FlashReport),
}

/// Where a cell's update server listens for the station's device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerAt {
    /// On loopback, at this port (0: any free one); the twin's lab network points there.
    Loopback(u16),
    /// On the lab's shared listener (`[server] listen`, where the boards' DNS sends them), routed
    /// to from the board's address (`None`: from any, taking turns with other such boards).
    Lab(Option<IpAddr>),
}

/// A twin kept between cells, with what it was set up with.
struct KeptTwin {
    twin: TwinHandle,
    setup: Setup,
    server: SocketAddr,
}

/// What the station runs cells on.
enum Place {
    Twin { reuse: bool, flash_size: u32, kept: Option<KeptTwin> },
    Board { spec: DeviceSpec, prepare: Vec<Region>, open: Option<Box<dyn Board>> },
}

/// One place cells run, one at a time.
pub struct Station {
    board: String,
    chip: Chip,
    place: Place,
    /// Cells that ran on a kept twin.
    reused: usize,
    /// The device's lock, once taken: held until the station ends.
    lock: Option<BoardLock>,
}

impl Station {
    /// A twin station named `board`; with `reuse`, its twin is kept between cells of equal
    /// setup.
    pub fn new(board: String, reuse: bool) -> Self {
        let place = Place::Twin { reuse, flash_size: crate::twin::flash::DEFAULT_SIZE, kept: None };
        Self { board, chip: Chip::Esp32, place, reused: 0, lock: None }
    }

    /// The station of one of `lab`'s devices: a twin as [`Station::new`] makes, or a board with
    /// its `[prepare]` regions.
    pub fn for_device(device: &DeviceSpec, lab: &LabConfig, reuse: bool) -> Self {
        let place = match device {
            DeviceSpec::Twin(twin) => Place::Twin { reuse, flash_size: twin.flash_size, kept: None },
            DeviceSpec::Board(_) => {
                Place::Board { spec: device.clone(), prepare: lab.prepare_regions(device.id()), open: None }
            }
        };
        Self { board: device.id().to_owned(), chip: device.chip(), place, reused: 0, lock: None }
    }

    pub fn board(&self) -> &str {
        &self.board
    }

    pub fn chip(&self) -> Chip {
        self.chip
    }

    /// A board of the lab config rather than a twin.
    pub fn is_board(&self) -> bool {
        matches!(self.place, Place::Board { .. })
    }

    /// Whether a cell of firmware for `chip` can run here: the chip must be the device's, and a
    /// power cut is a twin's alone.
    pub fn can_take(&self, chip: Chip, power_cut: bool) -> bool {
        chip == self.chip && !(power_cut && self.is_board())
    }

    /// How many cells ran on a kept twin.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// The setup of the twin kept here, if one is.
    pub fn kept_setup(&self) -> Option<&Setup> {
        match &self.place {
            Place::Twin { kept, .. } => kept.as_ref().map(|k| &k.setup),
            Place::Board { .. } => None,
        }
    }

    /// Where the server of a cell set up as `setup` listens: the lab's shared listener, or on
    /// loopback at the port the kept twin's network points at when it was set up so (the twin
    /// is then used again), else any port.
    pub fn server_at(&self, setup: &Setup) -> Result<ServerAt, CellError> {
        match &self.place {
            Place::Board { spec, .. } => Ok(ServerAt::Lab(spec.address())),
            Place::Twin { kept, .. } => {
                Ok(ServerAt::Loopback(kept.as_ref().filter(|k| k.setup == *setup).map_or(0, |k| k.server.port())))
            }
        }
    }

    /// Lets the device go: the next cell gets a fresh twin, or opens the board afresh.
    pub fn discard(&mut self) {
        match &mut self.place {
            Place::Twin { kept, .. } => *kept = None,
            Place::Board { open, .. } => *open = None,
        }
    }

    /// Takes this station's device in the lab's lock directory, waiting while another process
    /// holds it (see [`LockDir::take`]); once taken it is held until the station ends.
    pub fn hold(
        &mut self,
        locks: &LockDir,
        on_busy: impl FnMut(&LockError),
        give_up: impl Fn() -> bool,
    ) -> Result<(), LockError> {
        if self.lock.is_none() {
            self.lock = Some(locks.take(&self.board, on_busy, give_up)?);
        }
        Ok(())
    }

    /// Whether this station holds its device's lock.
    pub fn holds_lock(&self) -> bool {
        self.lock.is_some()
    }

    /// Readies the device for a cell set up as `setup` with its server at `server`, tells
    /// `readied` how, then hands its console to `read`.
    ///
    /// A twin: the kept one when it fits, else a fresh one flashed with `regions`; kept for the
    /// next cell when `keep` says the cell left it in a known state, otherwise stopped. A board:
    /// flashed with `regions`, the erased otadata and its `[prepare]` regions (MD5-matching ones
    /// skipped); its network is the lab's own, so `setup` only matters for a power cut, which a
    /// board cannot do.
    pub fn run<T>(
        &mut self,
        setup: &Setup,
        server: SocketAddr,
        regions: &CellFlash,
        readied: impl FnOnce(&Readied),
        read: impl FnOnce(&mut dyn Read) -> Result<T, CellError>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Readied), CellError> {
        let board = self.board.clone();
        match &mut self.place {
            Place::Twin { reuse, flash_size, kept } => {
                let cell = TwinCell { setup, server, regions, flash_size: *flash_size, board: &board };
                let (value, how, reused) = cell.run(kept, *reuse, readied, read, keep)?;
                self.reused += usize::from(reused);
                Ok((value, how))
            }
            Place::Board { spec, prepare, open, .. } => {
                if setup.power_cut.is_some() {
                    return Err(CellError::PowerCut { board });
                }
                let mut device = match open.take() {
                    Some(device) => device,
                    None => spec.open(&LabNetwork::default())?,
                };
                let mut all = regions.all();
                all.extend(prepare.iter().cloned());
                let started = Instant::now();
                let report = device.flash(&all, &mut NoProgress)?;
                tracing::debug!(
                    "{board}: flashed in {:?}, {} bytes written",
                    started.elapsed(),
                    report.bytes_written()
                );
                let how = Readied::Board(report);
                readied(&how);
                let value = read(&mut *device.console()?)?;
                // The line stays open for the next cell.
                *open = Some(device);
                Ok((value, how))
            }
        }
    }
}

/// A cell on a twin station.
struct TwinCell<'a> {
    setup: &'a Setup,
    server: SocketAddr,
    regions: &'a CellFlash,
    flash_size: u32,
    board: &'a str,
}

impl TwinCell<'_> {
    /// The cell on the kept twin or a fresh one; whether it ran on a kept twin.
    fn run<T>(
        self,
        kept: &mut Option<KeptTwin>,
        reuse: bool,
        readied: impl FnOnce(&Readied),
        read: impl FnOnce(&mut dyn Read) -> Result<T, CellError>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Readied, bool), CellError> {
        let (setup, server) = (self.setup, self.server);
        let started = Instant::now();
        // A kept twin that does not fit stops here, before another starts.
        let fits = kept.take().filter(|kept| kept.setup == *setup && kept.server == server);
        let (twin, how, mut console) = match fits {
            Some(fits) => {
                // EN pulsed with IO0 low: the chip is in the ROM's serial loader again.
                fits.twin.reset(true);
                let console = flash(&fits.twin.port_path(), &self.regions.start)?;
                (fits.twin, Readied::Reused, console)
            }
            None => {
                let config = TwinConfig {
                    flash_size: self.flash_size,
                    network: setup.network(server),
                    download: true,
                    power_cut: setup.power_cut,
                    ..TwinConfig::default()
                };
                let twin = TwinDevice::spawn(config)?;
                let console = flash(&twin.port_path(), &self.regions.all())?;
                (twin, Readied::Flashed, console)
            }
        };
        tracing::debug!("{}: {how:?} in {:?}", self.board, started.elapsed());
        readied(&how);
        console.set_timeout(READ_POLL).map_err(|e| CellError::Console(e.into()))?;
        let value = match setup.power_cut {
            None => read(&mut console)?,
            Some(_) => read_powering_on(&twin, || read(&mut console))?,
        };
        if reuse && setup.power_cut.is_none() && keep(&value) {
            *kept = Some(KeptTwin { twin, setup: setup.clone(), server });
        }
        let reused = how == Readied::Reused;
        Ok((value, how, reused))
    }
}

/// Runs `read` while watching for the twin's armed power cut: once it fires, power comes back
/// (a reset that boots from flash).
fn read_powering_on<T>(twin: &TwinHandle, read: impl FnOnce() -> T) -> T {
    let over = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !over.load(Ordering::SeqCst) {
                if twin.wait_for_power_cut(POWER_POLL) {
                    // Power back on: the chip boots from what the flash holds.
                    twin.reset(false);
                    return;
                }
            }
        });
        let value = read();
        over.store(true, Ordering::SeqCst);
        value
    })
}
