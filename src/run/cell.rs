//! One attempt at a cell on a station, step by step: the images and the scenario's chains (made
//! once per run), the scenario's server and the lab network, the station's device readied and
//! flashed through espflash, then the console until the update is decided; the result compared
//! with the scenario's expectation.
//!
//! The images, the server, the watch and the result are the same for a board; only the
//! [`Station`] knows its device is a twin.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::firmware::FirmwareManifest;
use crate::firmware::build::build;
use crate::firmware::prepare::{PrepareError, prepare};
use crate::image::partition::{ESP32_BOOTLOADER_OFFSET, TABLE_OFFSET, two_ota_table};
use crate::outcome::OutcomeClass;
use crate::report::CellDetails;
use crate::run::cache::RunCache;
use crate::run::flash::{FlashError, Region};
use crate::run::plan::{Cell, Plan};
use crate::run::results::{self, CellResult, CellVerdict, Observed};
use crate::run::serve::{CellServer, ScenarioChains, ServeError, Setup, url_path};
use crate::run::station::Station;
use crate::run::watch::{Silence, WatchEnd, WatchError, WatchLimits, watch};
use crate::run::{Preflight, PreflightCheck, Stop};
use crate::twin::device::TwinError;

/// Where the factory app goes in the two-OTA layout.
const FACTORY_OFFSET: u32 = 0x10000;

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
    Console(io::Error),
    #[error("transcript {path}: {source}")]
    Transcript { path: String, source: io::Error },
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Silence(#[from] Silence),
    #[error("preflight: {0}")]
    Preflight(String),
}

/// What every cell of a run shares.
pub struct CellContext<'a> {
    pub plan: &'a Plan,
    /// The runtime the cells' servers run on.
    pub runtime: &'a Handle,
    /// The run's directory (transcripts go in its `transcripts/`).
    pub out: &'a Path,
    pub limits: WatchLimits,
    /// Images and chains made once per run.
    pub cache: &'a RunCache,
    /// Set when the run is to stop: the cell under way is abandoned.
    pub stop: &'a Stop,
    pub preflight: Option<&'a Preflight>,
}

/// How an attempt ended.
#[derive(Debug)]
pub enum AttemptEnd {
    /// A result: the device judged (`pass`, `fail`, `observed`), or the rig failed (`error`).
    Result(Box<CellResult>),
    /// The run was stopped while the cell was under way: no result, its transcript removed.
    Abandoned,
}

/// Runs attempt `attempt` (from 1) of `cell` on `station`; any failure of the rig becomes an
/// `error` result.
pub fn run_cell(cell: &Cell, station: &mut Station, attempt: usize, context: &CellContext<'_>) -> AttemptEnd {
    let started = Instant::now();
    let scenario = &context.plan.scenarios[cell.scenario];
    let expected = scenario.expect.get(&cell.firmware).copied();
    let transcript = results::transcript_path(&cell.firmware, &scenario.id);
    let outcome = match context.preflight {
        Some(preflight) => {
            let check =
                PreflightCheck { firmware: &cell.firmware, scenario: &scenario.id, board: station.board(), attempt };
            preflight(&check).map_err(CellError::Preflight)
        }
        None => Ok(()),
    }
    .and_then(|()| observe(cell, station, &transcript, context));
    let (outcome, details) = match outcome {
        Ok((observed, details)) => (Ok(observed), details),
        Err(err) => (Err(err), CellDetails::default()),
    };
    if context.stop.is_requested() && outcome.is_err() {
        station.discard();
        let _ = std::fs::remove_file(context.out.join(&transcript));
        return AttemptEnd::Abandoned;
    }
    let (observed, verdict, error) = match outcome {
        Ok(observed) => {
            let verdict = results::compare(expected.as_ref(), &observed.outcome);
            (Some(observed), verdict, None)
        }
        Err(err) => {
            station.discard();
            tracing::info!("{} x {} on {} (attempt {attempt}): {err}", cell.firmware, scenario.id, station.board());
            (None, CellVerdict::Error, Some(err.to_string()))
        }
    };
    AttemptEnd::Result(Box::new(CellResult {
        firmware: cell.firmware.clone(),
        scenario: scenario.id.clone(),
        board: station.board().to_owned(),
        expected,
        observed,
        verdict,
        transcript,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
        details,
    }))
}

/// The steps of a cell, up to the observed outcome; with it what the report shows beside it.
fn observe(
    cell: &Cell,
    station: &mut Station,
    transcript: &str,
    context: &CellContext<'_>,
) -> Result<(Observed, CellDetails), CellError> {
    let plan = context.plan;
    let scenario = &plan.scenarios[cell.scenario];
    let transcript_path = context.out.join(transcript);
    let transcript_err = |source| CellError::Transcript { path: transcript_path.display().to_string(), source };
    if let Some(dir) = transcript_path.parent() {
        std::fs::create_dir_all(dir).map_err(transcript_err)?;
    }
    let mut transcript_file = File::create(&transcript_path).map_err(transcript_err)?;

    let manifest = |id: &str| plan.fleet.get(id).ok_or_else(|| CellError::NoManifest { id: id.to_owned() });
    let firmware = manifest(&cell.firmware)?;
    let regions = context.cache.regions.get_or_make(&firmware.id, || flash_regions(firmware, plan))?;
    let update = manifest(scenario.image.as_deref().unwrap_or_default())?;
    let update_app = context.cache.update_apps.get_or_make(&update.id, || update_app(update, plan))?;
    let chains = context.cache.chains.get_or_make(&cell.scenario, || ScenarioChains::mint(scenario, &plan.pki))?;
    let config = chains.config(scenario, Arc::clone(&*update_app), &url_path(&firmware.ota_url));

    // The kept twin's network points at the port of the cell before: listen there again.
    let setup = Setup::for_cell(firmware, scenario);
    let port = station.port_for(&setup).unwrap_or(0);
    let mut server = match CellServer::start(context.runtime, config.clone(), port) {
        Ok(server) => server,
        Err(err) if port != 0 => {
            tracing::debug!("{}: port {port} taken ({err}), a fresh twin", station.board());
            station.discard();
            CellServer::start(context.runtime, config, 0)?
        }
        Err(err) => return Err(err.into()),
    };
    tracing::debug!("{} x {}: server at {}, hosts {:?}", cell.firmware, scenario.id, server.addr(), setup.hosts);

    let limits = context.limits;
    let stop = context.stop;
    let watched = station.run(
        &setup,
        server.addr(),
        &regions,
        |console| Ok(watch(&mut Stoppable { inner: console, stop }, &mut transcript_file, &limits)?),
        // A device that ended its update attempt sits idle; one that timed out or crashed may not.
        |watched| {
            watched.end == WatchEnd::Decided
                && !matches!(watched.verdict.outcome.outcome, OutcomeClass::Crashed | OutcomeClass::Timeout)
        },
    );
    let server_events: Vec<String> = server.events().iter().map(ToString::to_string).collect();
    server.close(context.runtime);
    let (watched, readied) = watched?;
    tracing::debug!(
        "{} x {}: {:?} after {} lines, {} bytes ({readied:?})",
        cell.firmware,
        scenario.id,
        watched.end,
        watched.lines,
        watched.bytes,
    );
    let details = CellDetails {
        server_events,
        chain: chains.drawn(),
        // What SNTP told the device: the scenario's date.
        device_clock: Some(scenario.date.unix_timestamp()),
    };
    Ok((watched.observed(&context.limits)?, details))
}

/// A console that stops reading once the run is to stop.
struct Stoppable<'a, R> {
    inner: R,
    stop: &'a Stop,
}

impl<R: Read> Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_requested() {
            return Err(io::Error::other("the run was stopped"));
        }
        self.inner.read(buf)
    }
}

/// The app a release offers as the update.
fn update_app(release: &FirmwareManifest, plan: &Plan) -> Result<Arc<[u8]>, CellError> {
    let prepared = prepare(release, &plan.fleet, &plan.pki)
        .map_err(|source| CellError::Images { id: release.id.clone(), source: Box::new(source) })?;
    Ok(Arc::from(prepared.app))
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
