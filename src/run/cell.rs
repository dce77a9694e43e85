//! One attempt at a cell on a station, step by step: the images and the scenario's chains (made
//! once per run), the scenario's server and the lab network, the station's device readied and
//! flashed through espflash, then the console until the update is decided; the result compared
//! with the scenario's expectation.
//!
//! The images, the watch and the result are the same for a board and a twin; only the
//! [`Station`] knows which it has. A board's server is a route on the lab's shared listener
//! from the board's address; boards without one share the catch-all route, so their cells take
//! turns (see `CellContext::board_server`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::runtime::Handle;

use crate::board::{FlashReport, Region};
use crate::firmware::FirmwareManifest;
use crate::firmware::build::{BuiltFirmware, build};
use crate::firmware::prepare::{PrepareError, prepare};
use crate::firmware::profile::KnownBuild;
use crate::firmware::start::{StartState, start_regions};
use crate::image::partition::two_ota_table;
use crate::outcome::OutcomeClass;
use crate::results::{self, CellDetails, CellRecord, Observed, ScenarioFacts, Verdict};
use crate::run::cache::RunCache;
use crate::run::plan::{Cell, Plan};
use crate::run::serve::{CellServer, ScenarioChains, ServeError, Setup};
use crate::run::services::LabServices;
use crate::run::station::{ServerAt, Station};
use crate::run::watch::{Silence, Watch, WatchEnd, WatchError, WatchLimits, watch};
use crate::run::{Preflight, PreflightCheck, RunEvent, Stop};
use crate::scenario::Scenario;
use crate::server::ServeConfig;
use crate::twin::device::TwinError;

/// Why a cell could not be run: the rig's failures, never the firmware's.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    #[error("no manifest `{id}` in the fleet")]
    NoManifest { id: String },
    #[error("firmware `{id}`: no OTA URL")]
    NoOtaUrl { id: String },
    #[error("firmware `{id}`: {source}")]
    Images { id: String, source: Box<PrepareError> },
    #[error("firmware `{id}`: the partition table: {source}")]
    Table { id: String, source: crate::firmware::start::StartError },
    #[error("firmware `{id}`: cannot read its partition table {path}: {source}")]
    ReadTable { id: String, path: std::path::PathBuf, source: io::Error },
    #[error("firmware `{id}`: its partition table {path}: {source}")]
    BadTable { id: String, path: std::path::PathBuf, source: crate::image::partition::PartitionError },
    #[error("update server: {0}")]
    Serve(#[from] ServeError),
    #[error("twin: {0}")]
    Twin(#[from] TwinError),
    #[error("board {0}")]
    Board(#[from] crate::board::BoardError),
    #[error("board `{board}`: no update server address (the lab config's `[server] listen`)")]
    NoServer { board: String },
    #[error("board `{board}`: the scenario's power cut needs a twin")]
    PowerCut { board: String },
    /// The run was asked to stop while the cell was under way.
    #[error("the run was stopped")]
    Stopped,
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
    /// The time limits of cells on twins.
    pub limits: WatchLimits,
    /// The time limits of cells on boards (the lab config's `[timeouts]`).
    pub(crate) board_limits: WatchLimits,
    /// Held by a cell of a board without an address while its server has the lab listener's
    /// catch-all route: such cells run one at a time, since they share that route.
    pub(crate) board_server: &'a Mutex<()>,
    /// The lab's DNS and SNTP responders; a board cell sets the SNTP date while it holds
    /// `CellContext::board_server`.
    pub services: &'a LabServices,
    /// Progress, as the run reports it.
    pub(crate) on_event: &'a (dyn Fn(RunEvent<'_>) + Sync),
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
    Result(Box<CellRecord>),
    /// The run was stopped while the cell was under way: no result, its transcript removed.
    Abandoned,
}

/// Runs attempt `attempt` (from 1) of `cell` on `station`; any failure of the rig becomes an
/// `error` result.
pub fn run_cell(cell: &Cell, station: &mut Station, attempt: usize, context: &CellContext<'_>) -> AttemptEnd {
    let started = Instant::now();
    let scenario = &context.plan.scenarios[cell.scenario];
    let expected = scenario.expect.get(&cell.firmware).map(super::super::scenario::Expectation::outcome);
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
            (None, Verdict::Error, Some(err.to_string()))
        }
    };
    AttemptEnd::Result(Box::new(CellRecord {
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
        scenario_facts: scenario_facts(scenario),
        other: Default::default(),
    }))
}

/// The scenario's title, day and tags, as every result line of its cells carries them.
pub(crate) fn scenario_facts(scenario: &Scenario) -> ScenarioFacts {
    ScenarioFacts {
        scenario_title: Some(scenario.title.clone()),
        scenario_date: Some(scenario.date.to_offset(time::UtcOffset::UTC).date().to_string()),
        scenario_tags: scenario.tags.clone(),
    }
}

/// The steps of a cell, up to the observed outcome; with it what the report shows beside it.
fn observe(
    cell: &Cell,
    station: &mut Station,
    transcript: &str,
    context: &CellContext<'_>,
) -> Result<(Observed, CellDetails), CellError> {
    let scenario = &context.plan.scenarios[cell.scenario];
    let mut transcript_file = create_transcript(&context.out.join(transcript))?;
    let made = CellMade::get(cell, context)?;
    let url = made.firmware.ota_url.as_ref().ok_or_else(|| CellError::NoOtaUrl { id: made.firmware.id.clone() })?;
    let builds = made.regions.known.iter().chain(&made.offered.known).cloned().collect();
    let setup = Setup::for_cell(made.firmware, url, scenario, builds);
    let config = made.chains.config(scenario, Arc::clone(&made.offered.bytes), &url.path);
    let (mut server, _turn) = start_server(station, scenario, config, context)?;
    tracing::debug!("{} x {}: server at {}, hosts {:?}", cell.firmware, scenario.id, server.addr(), setup.hosts);

    let limits = if station.is_board() { context.board_limits } else { context.limits };
    let stop = context.stop;
    let board = station.board().to_owned();
    let flashed = |report: &FlashReport| {
        let (firmware, scenario) = (cell.firmware.as_str(), scenario.id.as_str());
        (context.on_event)(RunEvent::Flashed { firmware, scenario, board: &board, report });
    };
    let watched = station.run(
        &setup,
        server.addr(),
        &made.regions,
        flashed,
        |console| watch(&mut Stoppable { inner: console, stop }, &mut transcript_file, &limits).map_err(watch_error),
        leaves_device_idle,
    );
    let server_events: Vec<String> = server.events().iter().map(ToString::to_string).collect();
    server.close(context.runtime);
    let (watched, flashed) = watched?;
    tracing::debug!(
        "{} x {}: {:?} after {} lines, {} bytes ({} bytes flashed)",
        cell.firmware,
        scenario.id,
        watched.end,
        watched.lines,
        watched.bytes,
        flashed.bytes_written(),
    );
    let details = CellDetails {
        server_events,
        chain: made.chains.drawn(),
        // What SNTP told the device: the scenario's date.
        device_clock: Some(scenario.date.unix_timestamp()),
    };
    Ok((watched.observed(&limits)?, details))
}

/// The cell's transcript file, created with its folder.
fn create_transcript(path: &Path) -> Result<File, CellError> {
    let transcript_err = |source| CellError::Transcript { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(transcript_err)?;
    }
    File::create(path).map_err(transcript_err)
}

/// What a cell flashes and serves, made once per run (see [`RunCache`]).
struct CellMade<'a> {
    firmware: &'a FirmwareManifest,
    /// The firmware's regions for the scenario's start state.
    regions: Arc<CellFlash>,
    /// The app the scenario offers as the update.
    offered: Arc<OfferedApp>,
    chains: Arc<ScenarioChains>,
}

impl<'a> CellMade<'a> {
    fn get(cell: &Cell, context: &CellContext<'a>) -> Result<Self, CellError> {
        let plan = context.plan;
        let scenario = &plan.scenarios[cell.scenario];
        let manifest = |id: &str| plan.fleet.get(id).ok_or_else(|| CellError::NoManifest { id: id.to_owned() });
        let firmware = manifest(&cell.firmware)?;
        let key = format!("{} from {}", firmware.id, scenario.start);
        let regions = context.cache.regions.get_or_make(&key, || flash_regions(firmware, plan, &scenario.start))?;
        let update = manifest(scenario.image.as_deref().unwrap_or_default())?;
        let offered = context.cache.update_apps.get_or_make(&update.id, || update_app(update, plan))?;
        let chains = context.cache.chains.get_or_make(&scenario.path, || ScenarioChains::mint(scenario, &plan.pki))?;
        Ok(Self { firmware, regions, offered, chains })
    }
}

/// The cell's update server: a route on the lab's listener for a board (holding the turn of
/// boards without an address, whose SNTP date is then the scenario's), or a server of its own
/// on loopback for a device with a network of its own.
fn start_server<'c>(
    station: &Station,
    scenario: &Scenario,
    config: ServeConfig,
    context: &'c CellContext<'_>,
) -> Result<(CellServer, Option<MutexGuard<'c, ()>>), CellError> {
    match station.server_at() {
        ServerAt::Lab(address) => {
            // Boards without an address share the catch-all route and SNTP date: one at a time.
            let turn = address.is_none().then(|| context.board_server.lock().unwrap_or_else(PoisonError::into_inner));
            if context.stop.is_requested() {
                return Err(CellError::Stopped);
            }
            let listener =
                context.services.server().ok_or_else(|| CellError::NoServer { board: station.board().to_owned() })?;
            // The board asks the lab's SNTP for the time once it boots: the scenario's date.
            context.services.set_date(address, scenario.date.unix_timestamp());
            Ok((CellServer::routed(listener, address, config)?, turn))
        }
        // The device's own network is pointed at this server before the cell.
        ServerAt::Loopback => Ok((CellServer::start(context.runtime, config, 0)?, None)),
    }
}

/// Whether a watch leaves the device idle, so it can be kept for the next cell: an update
/// attempt ended; one that timed out or crashed may not have.
fn leaves_device_idle(watched: &Watch) -> bool {
    watched.end == WatchEnd::Decided
        && !matches!(watched.verdict.outcome.outcome, OutcomeClass::Crashed | OutcomeClass::Timeout)
}

/// A console that stops reading once the run is to stop: its reads then fail with
/// [`RunStopped`].
struct Stoppable<'a, R> {
    inner: R,
    stop: &'a Stop,
}

/// What a [`Stoppable`] console's read fails with once the run is to stop.
#[derive(Debug, thiserror::Error)]
#[error("the run was stopped")]
struct RunStopped;

impl<R: Read> Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_requested() {
            return Err(io::Error::other(RunStopped));
        }
        self.inner.read(buf)
    }
}

/// A watch that failed: [`CellError::Stopped`] when its console read was stopped.
fn watch_error(err: WatchError) -> CellError {
    match err {
        WatchError::Read(read)
            if read.get_ref().is_some_and(<dyn std::error::Error + Send + Sync>::is::<RunStopped>) =>
        {
            CellError::Stopped
        }
        other => CellError::Watch(other),
    }
}

/// The app a release offers as the update.
fn update_app(release: &FirmwareManifest, plan: &Plan) -> Result<OfferedApp, CellError> {
    let prepared = prepare(release, &plan.fleet, &plan.pki)
        .map_err(|source| CellError::Images { id: release.id.clone(), source: Box::new(source) })?;
    let known = known_build(release, &prepared.app);
    Ok(OfferedApp { bytes: Arc::from(prepared.app), known })
}

/// The app a release offers as the update, and what the fleet states about it when it is a
/// real build.
pub(crate) struct OfferedApp {
    pub bytes: Arc<[u8]>,
    pub known: Option<KnownBuild>,
}

/// What a twin is told about a real build (`None` for the rig's own builds, which carry
/// their profile record).
fn known_build(firmware: &FirmwareManifest, app: &[u8]) -> Option<KnownBuild> {
    firmware.image.is_some().then(|| KnownBuild::of(app, firmware.stated()))
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

/// The firmware under the two-OTA table in the scenario's start state (`firmware::start`).
fn flash_regions(firmware: &FirmwareManifest, plan: &Plan, start: &StartState) -> Result<CellFlash, CellError> {
    let (app, bootloader) = images(firmware, plan)?;
    let known = known_build(firmware, &app);
    let table = table_of(firmware)?;
    let regions = start_regions(start, &BuiltFirmware { app, bootloader }, &table)
        .map_err(|source| CellError::Table { id: firmware.id.clone(), source })?;
    let padded =
        |regions: Vec<(u32, Vec<u8>)>| regions.into_iter().map(|(at, bytes)| Region::padded(at, bytes)).collect();
    Ok(CellFlash { firmware: padded(regions.firmware), start: padded(regions.start), known })
}

/// The partition table a firmware is flashed under: its build's own, when the manifest names
/// one, else ESP-IDF's two-OTA table.
fn table_of(firmware: &FirmwareManifest) -> Result<esp_idf_part::PartitionTable, CellError> {
    let Some(path) = &firmware.partition_table else { return Ok(two_ota_table()) };
    let path = firmware.path.parent().unwrap_or(Path::new(".")).join(path);
    let bytes = crate::input::read_image(&path).map_err(|source| CellError::ReadTable {
        id: firmware.id.clone(),
        path: path.clone(),
        source,
    })?;
    crate::image::partition::read_table(&bytes).map_err(|source| CellError::BadTable {
        id: firmware.id.clone(),
        path,
        source,
    })
}

/// What a cell writes to its device.
#[derive(Clone, Debug)]
pub struct CellFlash {
    /// The firmware as first flashed: bootloader, partition table, the app as the factory image;
    /// a device that holds them already (a kept twin, a board whose MD5s match) keeps them.
    pub firmware: Vec<Region>,
    /// Written for every cell: otadata for the start state, and the app in its OTA slot.
    pub start: Vec<Region>,
    /// What the fleet states about the firmware when it is a real build.
    pub known: Option<KnownBuild>,
}

impl CellFlash {
    /// Everything, by offset: what a fresh device gets.
    pub fn all(&self) -> Vec<Region> {
        let mut all: Vec<Region> = self.firmware.iter().chain(&self.start).cloned().collect();
        all.sort_by_key(|r| r.offset);
        all
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A console whose line broke.
    struct Unplugged;

    impl Read for Unplugged {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn a_stopped_run_ends_the_watch_as_a_stop_and_a_broken_console_as_a_read_error() {
        let limits = WatchLimits::new(Duration::from_secs(5));
        let stop = Stop::default();
        stop.request();
        let mut stopped = Stoppable { inner: &b"I (31) boot: ESP-IDF v4.4.8\n"[..], stop: &stop };
        let watched = watch(&mut stopped, &mut Vec::new(), &limits).map_err(watch_error);
        assert!(matches!(watched, Err(CellError::Stopped)), "{watched:?}");

        let going_on = Stop::default();
        let mut broken = Stoppable { inner: Unplugged, stop: &going_on };
        let watched = watch(&mut broken, &mut Vec::new(), &limits).map_err(watch_error);
        assert!(matches!(watched, Err(CellError::Watch(WatchError::Read(_)))), "{watched:?}");
    }
}
