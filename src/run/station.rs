//! A station: one place cells run, one at a time, named by its board id (`twin-1`, ...), and
//! the device there. On twins the station keeps its twin between cells of the same firmware and
//! lab network: the twin already holds the bootloader, the partition table and the firmware's
//! image, so the next cell resets it into download mode and has espflash write only the
//! otadata partition, erased, after which the chip boots the factory image as a freshly flashed
//! one does. Any other cell gets a fresh twin, flashed whole.
//!
//! A scenario's power cut is armed on a fresh twin; once it fires the station powers the twin
//! on again (a reset that boots from flash), as a lab's power switch would, while the console is
//! read on. Such a twin is not kept.
//!
//! This is the only part of the runner that knows its devices are twins.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use crate::image::partition::{otadata_partition, two_ota_table};
use crate::run::cell::CellError;
use crate::run::flash::{Region, flash};
use crate::run::lock::{BoardLock, LockDir, LockError};
use crate::run::serve::Setup;
use crate::twin::device::{TwinConfig, TwinDevice, TwinHandle};

/// How often the console read returns while the line is quiet, so limits apply.
const READ_POLL: Duration = Duration::from_millis(20);
/// How often the watch for an armed power cut looks whether the cell is over.
const POWER_POLL: Duration = Duration::from_millis(10);

/// How a cell's device was made ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readied {
    /// A fresh twin, flashed whole: bootloader, partition table, app.
    Flashed,
    /// The twin of the cell before, reset with its otadata erased.
    Reused,
}

/// A twin kept between cells, with what it was set up with.
struct KeptTwin {
    twin: TwinHandle,
    setup: Setup,
    server: SocketAddr,
}

/// One place cells run, one at a time.
pub struct Station {
    board: String,
    reuse: bool,
    kept: Option<KeptTwin>,
    /// Cells that ran on a kept twin.
    reused: usize,
}

impl Station {
    /// A station named `board`; with `reuse`, its twin is kept between cells of equal setup.
    pub fn new(board: String, reuse: bool) -> Self {
        Self { board, reuse, kept: None, reused: 0 }
    }

    pub fn board(&self) -> &str {
        &self.board
    }

    /// How many cells ran on a kept twin.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// The setup of the twin kept here, if one is.
    pub fn kept_setup(&self) -> Option<&Setup> {
        self.kept.as_ref().map(|k| &k.setup)
    }

    /// The server port the kept twin's network points at, when it was set up as `setup`: the
    /// next cell's server listens there so the twin can be used again.
    pub fn port_for(&self, setup: &Setup) -> Option<u16> {
        self.kept.as_ref().filter(|k| k.setup == *setup).map(|k| k.server.port())
    }

    /// Lets the kept twin go (the next cell gets a fresh one).
    pub fn discard(&mut self) {
        self.kept = None;
    }

    /// Takes this station's board in the lab's lock directory for the length of a cell,
    /// waiting while another process holds it (see [`LockDir::take`]).
    pub fn lock(
        &self,
        locks: &LockDir,
        on_busy: impl FnMut(&LockError),
        give_up: impl Fn() -> bool,
    ) -> Result<BoardLock, LockError> {
        locks.take(&self.board, on_busy, give_up)
    }

    /// Readies the device for a cell set up as `setup` with its server at `server` (the kept
    /// twin when it fits, else a fresh one flashed with `regions`), then hands its console to
    /// `read`. The twin is kept for the next cell when `keep` says the cell left it in a known
    /// state; otherwise it stops.
    pub fn run<T>(
        &mut self,
        setup: &Setup,
        server: SocketAddr,
        regions: &[Region],
        read: impl FnOnce(&mut espflash::connection::Port) -> Result<T, CellError>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Readied), CellError> {
        let started = Instant::now();
        // A kept twin that does not fit stops here, before another starts.
        let kept = self.kept.take().filter(|kept| kept.setup == *setup && kept.server == server);
        let (twin, readied, mut console) = match kept {
            Some(kept) => {
                // EN pulsed with IO0 low: the chip is in the ROM's serial loader again.
                kept.twin.reset(true);
                let console = flash(&kept.twin.port_path(), &[erased_otadata()])?;
                self.reused += 1;
                (kept.twin, Readied::Reused, console)
            }
            None => {
                let network = setup.network(server);
                let config =
                    TwinConfig { network, download: true, power_cut: setup.power_cut, ..TwinConfig::default() };
                let twin = TwinDevice::spawn(config)?;
                let console = flash(&twin.port_path(), regions)?;
                (twin, Readied::Flashed, console)
            }
        };
        tracing::debug!("{}: {readied:?} in {:?}", self.board, started.elapsed());
        console.set_timeout(READ_POLL).map_err(|e| CellError::Console(e.into()))?;
        let value = match setup.power_cut {
            None => read(&mut console)?,
            Some(_) => read_powering_on(&twin, || read(&mut console))?,
        };
        if self.reuse && setup.power_cut.is_none() && keep(&value) {
            self.kept = Some(KeptTwin { twin, setup: setup.clone(), server });
        }
        Ok((value, readied))
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

/// The otadata partition of the two-OTA layout, erased: the bootloader then starts the factory
/// app, and the update client writes to ota_0, as on a freshly flashed device.
fn erased_otadata() -> Region {
    let (offset, size) = otadata_partition(&two_ota_table()).expect("the two-OTA table has otadata");
    Region::padded(offset, vec![0xFF; size as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_erased_otadata_is_the_two_ota_tables() {
        let region = erased_otadata();
        assert_eq!((region.offset, region.bytes.len()), (0xd000, 0x2000));
        assert!(region.bytes.iter().all(|&b| b == 0xFF));
    }
}
