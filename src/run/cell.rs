//! One cell on one twin, step by step: the images, the scenario's server and the lab network,
//! a fresh twin in download mode, flashing through espflash over its pseudo-terminal, then the
//! console until the update is decided; the result compared with the scenario's expectation.
//!
//! Only [`on_twin`] knows the device is a twin (spawned with the lab network, flashed through
//! its pseudo-terminal); the images, the server, the watch and the result are the same for a
//! board.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::firmware::FirmwareManifest;
use crate::firmware::build::build;
use crate::firmware::prepare::{PrepareError, prepare};
use crate::image::partition::{ESP32_BOOTLOADER_OFFSET, TABLE_OFFSET, two_ota_table};
use crate::run::flash::{FlashError, Region, flash};
use crate::run::plan::{Cell, Plan};
use crate::run::results::{self, CellResult, CellVerdict, Observed};
use crate::run::serve::{CellServer, ServeError, url_path};
use crate::run::watch::{Silence, WatchError, WatchLimits, watch};
use crate::scenario::Scenario;
use crate::twin::device::{TwinConfig, TwinDevice, TwinError};
use crate::twin::network::LabNetwork;

/// Where the factory app goes in the two-OTA layout.
const FACTORY_OFFSET: u32 = 0x10000;
/// How often the console read returns while the line is quiet, so limits apply.
const READ_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Why a cell could not be run: the rig's failures, never the firmware's.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    #[error("no manifest `{id}` in the fleet")]
    NoManifest { id: String },
    #[error("firmware `{id}`: {source}")]
    Images { id: String, source: Box<PrepareError> },
    #[error("firmware `{id}`: the partition table: {message}")]
    Table { id: String, message: String },
    #[error("update server: {0}")]
    Serve(#[from] ServeError),
    #[error("twin: {0}")]
    Twin(#[from] TwinError),
    #[error("flashing: {0}")]
    Flash(#[from] FlashError),
    #[error("console: {0}")]
    Console(std::io::Error),
    #[error("transcript {path}: {source}")]
    Transcript { path: String, source: std::io::Error },
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Silence(#[from] Silence),
}

/// What every cell of a run shares.
pub struct CellContext<'a> {
    pub plan: &'a Plan,
    /// The runtime the cells' servers run on.
    pub runtime: &'a Handle,
    /// The run's directory (transcripts go in its `transcripts/`).
    pub out: &'a Path,
    pub limits: WatchLimits,
}

/// Runs `cell` on a twin named `board`; any failure of the rig becomes an `error` result.
pub fn run_cell(cell: &Cell, board: &str, context: &CellContext<'_>) -> CellResult {
    let started = Instant::now();
    let scenario = &context.plan.scenarios[cell.scenario];
    let expected = scenario.expect.get(&cell.firmware).copied();
    let transcript = results::transcript_path(&cell.firmware, &scenario.id);
    let outcome = observe(cell, scenario, &transcript, context);
    let (observed, verdict, error) = match outcome {
        Ok(observed) => {
            let verdict = results::compare(expected.as_ref(), &observed.outcome);
            (Some(observed), verdict, None)
        }
        Err(err) => {
            tracing::warn!("{} × {} on {board}: {err}", cell.firmware, scenario.id);
            (None, CellVerdict::Error, Some(err.to_string()))
        }
    };
    CellResult {
        firmware: cell.firmware.clone(),
        scenario: scenario.id.clone(),
        board: board.to_owned(),
        expected,
        observed,
        verdict,
        transcript,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The steps of a cell, up to the observed outcome.
fn observe(
    cell: &Cell,
    scenario: &Scenario,
    transcript: &str,
    context: &CellContext<'_>,
) -> Result<Observed, CellError> {
    let plan = context.plan;
    let transcript_path = context.out.join(transcript);
    let transcript_err = |source| CellError::Transcript { path: transcript_path.display().to_string(), source };
    if let Some(dir) = transcript_path.parent() {
        std::fs::create_dir_all(dir).map_err(transcript_err)?;
    }
    let mut transcript_file = File::create(&transcript_path).map_err(transcript_err)?;

    let manifest = |id: &str| plan.fleet.get(id).ok_or_else(|| CellError::NoManifest { id: id.to_owned() });
    let firmware = manifest(&cell.firmware)?;
    let regions = flash_regions(firmware, plan)?;
    let update = manifest(scenario.image.as_deref().unwrap_or_default())?;
    let update_app = images(update, plan)?.0;

    let mut server =
        CellServer::start(context.runtime, scenario, &plan.pki, Arc::from(update_app), &url_path(&firmware.ota_url))?;
    let network = server.network(&firmware.ota_url, scenario.date.unix_timestamp());
    tracing::debug!("{} × {}: server at {}, network {:?}", cell.firmware, scenario.id, server.addr(), network.hosts);
    let watch_started = Instant::now();

    let watched = on_twin(network, &regions, |console| Ok(watch(console, &mut transcript_file, &context.limits)?))?;
    for event in server.events() {
        tracing::debug!("{} × {}: server: {event:?}", cell.firmware, scenario.id);
    }
    tracing::debug!(
        "{} × {}: {:?} after {} lines, {} bytes; flashing and console {:?}",
        cell.firmware,
        scenario.id,
        watched.end,
        watched.lines,
        watched.bytes,
        watch_started.elapsed()
    );
    Ok(watched.observed(&context.limits)?)
}

/// A fresh twin on the lab network, in download mode; flashed with `regions`; its console
/// handed to `read` once the flashing is done. The twin stops when this returns.
fn on_twin<T>(
    network: LabNetwork,
    regions: &[Region],
    read: impl FnOnce(&mut espflash::connection::Port) -> Result<T, CellError>,
) -> Result<T, CellError> {
    use serialport::SerialPort;
    let twin = TwinDevice::spawn(TwinConfig { network, download: true, ..TwinConfig::default() })?;
    let started = Instant::now();
    let mut console = flash(&twin.port_path(), regions)?;
    tracing::debug!(
        "flashed {} bytes in {:?}",
        regions.iter().map(|r| r.bytes.len()).sum::<usize>(),
        started.elapsed()
    );
    console.set_timeout(READ_POLL).map_err(|e| CellError::Console(e.into()))?;
    let watched = read(&mut console);
    drop(twin);
    watched
}

/// The firmware's app and bootloader: its real build (with transplants), or built for it.
fn images(firmware: &FirmwareManifest, plan: &Plan) -> Result<(Vec<u8>, Vec<u8>), CellError> {
    let fail = |source| CellError::Images { id: firmware.id.clone(), source: Box::new(source) };
    let prepared = prepare(firmware, &plan.fleet, &plan.pki).map_err(fail)?;
    let bootloader = match prepared.bootloader {
        Some(bootloader) => bootloader,
        // A real image without its bootloader: the one of its ESP-IDF version.
        None => build(firmware, &plan.fleet, &plan.pki).map_err(|e| fail(e.into()))?.bootloader,
    };
    Ok((prepared.app, bootloader))
}

/// Bootloader, the two-OTA partition table and the app as the factory image.
fn flash_regions(firmware: &FirmwareManifest, plan: &Plan) -> Result<Vec<Region>, CellError> {
    let (app, bootloader) = images(firmware, plan)?;
    let table =
        two_ota_table().to_bin().map_err(|e| CellError::Table { id: firmware.id.clone(), message: e.to_string() })?;
    Ok(vec![
        Region::padded(ESP32_BOOTLOADER_OFFSET as u32, bootloader),
        Region::padded(TABLE_OFFSET as u32, table),
        Region::padded(FACTORY_OFFSET, app),
    ])
}
