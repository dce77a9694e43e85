//! A station: one place cells run, one at a time, named by its device's id (`twin-1`,
//! `esp32-a`, ...), and the device there.
//!
//! Every device goes through the [`Board`] trait: each cell flashes the firmware's regions and
//! the start state's (and a board's `[prepare]` regions), and the backend skips those whose MD5
//! already matches, so a device that holds the firmware only has its otadata (and the start
//! slot) written. The device stays open between cells. What only some devices can do is asked
//! for through the trait's optional capabilities: what an emulated device is given
//! ([`Emulation`](crate::board::Emulation): the twin's DNS points at the cell's server on
//! loopback, its SNTP answers with the scenario's date, and what the fleet states about real
//! builds reaches it), and power cuts at a chosen point of an update ([`PowerCuts`]: once one
//! fires, power comes back, as a lab's switch would, while the console is read on).
//!
//! A board is kept open between cells and opened afresh after a failure of the rig (its port
//! resolved again); its update server is a route on the lab's shared listener, from the board's
//! address when the config gives one. A board whose port vanished (a USB hub dropping it) and
//! does not come back within the lab's `power` time leaves the run. A twin is kept only while the cells leave it in a known
//! state (an update decided, no crash, no power cut) and kept twins are asked for.
//!
//! This is the only part of the runner that knows what its devices are.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::board::{Board, Chip, FlashReport, NoProgress, PowerCuts, Region};
use crate::lab::{DeviceSpec, LabConfig};
use crate::run::cell::{CellError, CellFlash};
use crate::run::lock::{BoardLock, LockDir, LockError};
use crate::run::serve::Setup;
use crate::twin::network::LabNetwork;

/// How often the watch for an armed power cut looks whether the cell is over.
const POWER_POLL: Duration = Duration::from_millis(10);
/// How often a board's port that went away is looked for.
const PORT_POLL: Duration = Duration::from_millis(100);

/// Where a cell's update server listens for the station's device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerAt {
    /// On loopback, at any free port; the device's own network points there.
    Loopback,
    /// On the lab's shared listener (`[server] listen`, where the boards' DNS sends them), routed
    /// to from the board's address (`None`: from any, taking turns with other such boards).
    Lab(Option<IpAddr>),
}

/// What a cell asks of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Needs {
    /// The firmware's chip (`None` when the fleet lacks it: the cell fails on any device).
    pub chip: Option<Chip>,
    /// A power cut at a point of the update.
    pub power_cut: bool,
}

/// Which cells a station's device can take: its chip, and whether it is a board (which cannot
/// cut its power at a point of an update).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Takes {
    chip: Chip,
    board: bool,
}

impl Takes {
    /// Whether a cell that `needs` this can run on such a device.
    pub(crate) fn accepts(self, needs: Needs) -> bool {
        let chip_ok = needs.chip.is_none_or(|chip| chip == self.chip);
        chip_ok && !(needs.power_cut && self.board)
    }
}

/// The device a station holds, with the firmware it was last flashed with.
struct Held {
    device: Box<dyn Board>,
    firmware: String,
}

/// One place cells run, one at a time.
pub struct Station {
    spec: DeviceSpec,
    /// Keep a twin between cells (boards are always kept).
    reuse: bool,
    /// A board's `[prepare]` regions, flashed with every cell.
    prepare: Vec<Region>,
    held: Option<Held>,
    /// Cells that ran on a device kept from the cell before.
    reused: usize,
    /// The device's lock, once taken: held until the station ends.
    lock: Option<BoardLock>,
    /// How long a board's port that went away may take to come back (the lab's `power` time).
    port_return: Duration,
    /// Why the station's board left the run (its port vanished and did not come back).
    left: Option<String>,
}

impl Station {
    /// The station of one of `lab`'s devices: a twin, or a board with its `[prepare]` regions.
    pub(crate) fn for_device(device: &DeviceSpec, lab: &LabConfig, reuse: bool) -> Self {
        let prepare = match device {
            DeviceSpec::Board(_) => lab.prepare_regions(device.id()),
            DeviceSpec::Twin(_) => Vec::new(),
        };
        Self {
            spec: device.clone(),
            reuse,
            prepare,
            held: None,
            reused: 0,
            lock: None,
            port_return: lab.timeouts.power,
            left: None,
        }
    }

    pub fn board(&self) -> &str {
        self.spec.id()
    }

    /// Which cells the device can take.
    pub(crate) fn takes(&self) -> Takes {
        Takes { chip: self.spec.chip(), board: self.is_board() }
    }

    /// Whether a cell that `needs` this can run here: the device's chip, and a power cut only on
    /// a device that can cut its power at a point of the update (a twin).
    pub(crate) fn accepts(&self, needs: Needs) -> bool {
        self.takes().accepts(needs)
    }

    /// After a failure of the rig: whether the device is still there. A twin always is (a fresh
    /// one replaces it); a board's port may have vanished (its USB hub dropped it), and is
    /// given the lab's `power` time to come back, as a device that enumerates again. When it
    /// does not, the board leaves the run ([`Station::left`]).
    pub(crate) fn still_there(&mut self, stop: &crate::run::Stop) -> bool {
        let DeviceSpec::Board(spec) = &self.spec else { return true };
        let deadline = Instant::now() + self.port_return;
        while !spec.port_present() {
            if Instant::now() >= deadline || stop.is_requested() {
                let waited = self.port_return.as_secs_f64();
                self.left = Some(format!("its {} vanished and did not come back within {waited} s", spec.selector));
                self.held = None;
                return false;
            }
            std::thread::sleep(PORT_POLL);
        }
        true
    }

    /// Why the board left the run, once it has: its cells go to other devices.
    pub(crate) fn left(&self) -> Option<&str> {
        self.left.as_deref()
    }

    /// A board of the lab config rather than a twin: locked on the host even without a lock
    /// directory, and judged by the lab's time limits.
    pub(crate) fn is_board(&self) -> bool {
        matches!(self.spec, DeviceSpec::Board(_))
    }

    /// How many cells ran on a device kept from the cell before.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// The firmware the device held here was last flashed with, if one is held.
    pub(crate) fn kept_firmware(&self) -> Option<&str> {
        self.held.as_ref().map(|held| held.firmware.as_str())
    }

    /// Where the server of a cell listens: the lab's shared listener for a board, any port on
    /// loopback for a device with a network of its own.
    pub(crate) fn server_at(&self) -> ServerAt {
        match &self.spec {
            DeviceSpec::Board(_) => ServerAt::Lab(self.spec.address()),
            DeviceSpec::Twin(_) => ServerAt::Loopback,
        }
    }

    /// Lets the device go: the next cell opens it afresh (a new twin, a board's port again).
    pub(crate) fn discard(&mut self) {
        self.held = None;
    }

    /// Takes this station's device in the lab's lock directory, waiting while another process
    /// holds it (see [`LockDir::take`]); once taken it is held until the station ends.
    pub(crate) fn hold(
        &mut self,
        locks: &LockDir,
        on_busy: impl FnMut(&LockError),
        give_up: impl Fn() -> bool,
    ) -> Result<(), LockError> {
        if self.lock.is_none() {
            self.lock = Some(locks.take(self.spec.id(), on_busy, give_up)?);
        }
        Ok(())
    }

    /// Whether this station holds its device's lock.
    pub(crate) fn holds_lock(&self) -> bool {
        self.lock.is_some()
    }

    /// Readies the device for a cell set up as `setup` with its server at `server`: its own
    /// network pointed there, the scenario's power cut armed, `regions` (and `[prepare]`)
    /// flashed with MD5-matching ones skipped. Tells `flashed` what was written, then hands the
    /// console to `read`. The device is kept for the next cell when it is a board, or when
    /// `keep` says the cell left a twin in a known state.
    pub fn run<T>(
        &mut self,
        setup: &Setup,
        server: SocketAddr,
        regions: &CellFlash,
        flashed: impl FnOnce(&FlashReport),
        read: impl FnOnce(&mut dyn Read) -> Result<T, CellError>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<(T, FlashReport), CellError> {
        let board = self.spec.id().to_owned();
        let mut device = match self.held.take() {
            Some(held) => {
                self.reused += 1;
                held.device
            }
            None => self.spec.open(&LabNetwork::default())?,
        };
        let cuts = device.power_cuts();
        if setup.power_cut.is_some() && cuts.is_none() {
            return Err(CellError::PowerCut { board });
        }
        if let Some(emulation) = device.emulation() {
            emulation.set_network(setup.network(server));
            emulation.set_builds(setup.builds.clone());
        }
        if let Some(cuts) = &cuts {
            cuts.arm(setup.power_cut);
        }
        let mut all = regions.all();
        all.extend(self.prepare.iter().cloned());
        let started = Instant::now();
        let report = device.flash(&all, &mut NoProgress)?;
        tracing::debug!("{board}: flashed in {:?}, {} bytes written", started.elapsed(), report.bytes_written());
        flashed(&report);
        let mut console = device.console()?;
        let value = match (setup.power_cut, cuts) {
            (Some(_), Some(cuts)) => read_powering_on(&*cuts, || read(&mut *console))?,
            _ => read(&mut *console)?,
        };
        drop(console);
        let kept = self.is_board() || (self.reuse && setup.power_cut.is_none() && keep(&value));
        if kept {
            self.held = Some(Held { device, firmware: setup.firmware.clone() });
        }
        Ok((value, report))
    }
}

/// Runs `read` while watching for the device's armed power cut: once it fires, power comes back
/// (a reset that boots from flash).
fn read_powering_on<T>(cuts: &dyn PowerCuts, read: impl FnOnce() -> T) -> T {
    let over = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !over.load(Ordering::SeqCst) {
                if cuts.wait_fired(POWER_POLL) {
                    // Power back on: the chip boots from what the flash holds.
                    cuts.power_on();
                    return;
                }
            }
        });
        let value = read();
        over.store(true, Ordering::SeqCst);
        value
    })
}
