//! The matrix runner: every firmware × scenario cell on a device, each result written to
//! `DIR/results.jsonl` as the cell ends (the contract in [`crate::results`]), each console kept in
//! `DIR/transcripts/`.
//!
//! - `plan`: the lab's files and the cells (tags, shard), every id checked first;
//! - `shard`: one of N stable parts of a plan;
//! - `pool`: stations working through the cells side by side, one per device of the lab, each
//!   cell on a device with the firmware's chip; retries of rig failures;
//! - `station`: one place cells run, one at a time, and its device (a board of the lab config,
//!   or a twin kept between cells of one firmware);
//! - `lock`: board locks every otarig process on a host respects;
//! - `cell`: one attempt at a cell, from images to the observed outcome;
//! - `cache`: images and chains made once per run;
//! - [`serve`]: the cell's update server and the lab network pointing at it;
//! - `services`: the lab's DNS and SNTP responders for boards, for the whole run;
//! - `watch`: the console until the update is decided or the time is up;
//! - [`calibrate`](mod@calibrate): every cell on a board and on a twin, and where they disagree.
//!
//! Devices are the lab config's boards and twins ([`RunOptions::lab`]), or `twins` in-process
//! twins side by side. The runner reports progress as [`RunEvent`]s and never prints; a [`Stop`]
//! ends it early, cleanly.

pub(crate) mod cache;
pub mod calibrate;
pub(crate) mod cell;
pub(crate) mod lock;
pub(crate) mod plan;
mod pool;
pub mod serve;
pub(crate) mod services;
pub(crate) mod shard;
pub(crate) mod station;
pub(crate) mod watch;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache::RunCache;
pub use calibrate::{CalibrateError, Calibration, CalibrationLine, calibrate};
use cell::CellContext;
pub use lock::{BoardLock, LockDir, LockError, RunDirLock, RunDirLockError};
pub use plan::{Cell, LabDirs, Plan, PlanError, Selection};
use services::LabServices;
pub use services::ServiceError;
pub use shard::{Shard, ShardError};
pub use watch::WatchLimits;

use crate::lab::{LabConfig, Timeouts};
use crate::results::{CellRecord, Verdict};

/// A check made before each attempt at a cell on a station; an `Err` is a failure of the rig
/// for that attempt (an `error` result, tried again while retries remain). For a lab's own
/// readiness checks, and for tests that need the rig to fail.
pub(crate) type Preflight = dyn Fn(&PreflightCheck<'_>) -> Result<(), String> + Send + Sync;

/// What a `Preflight` is asked about.
#[derive(Clone, Copy, Debug)]
pub struct PreflightCheck<'a> {
    /// The cell's firmware id.
    pub firmware: &'a str,
    /// The cell's scenario id.
    pub scenario: &'a str,
    /// The station's device id (a board's, or `twin-N`).
    pub board: &'a str,
    /// From 1.
    pub attempt: usize,
}

/// A request to stop a run, shared with whoever may make it (a Ctrl-C handler).
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// No new cell starts; cells under way are abandoned (no result written).
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a run goes.
#[derive(Clone)]
pub struct RunOptions {
    /// The run's directory: `results.jsonl` and `transcripts/` go there.
    pub out: PathBuf,
    /// The time limits of cells on twins (boards take theirs from the lab config's
    /// `[timeouts]`).
    pub limits: WatchLimits,
    /// Without a lab config: cells run side by side, each on its own twin (at least 1).
    pub twins: usize,
    /// The lab's devices, boards and twins side by side, one station each; `None`: `twins`
    /// twins. Its `retries` are not read here (see [`RunOptions::retries`]).
    pub lab: Option<LabConfig>,
    /// How many more times a cell the rig could not run (`error`) is tried, each on a fresh
    /// device, before its `error` is the result.
    pub retries: usize,
    /// Keep the finished cells of `out/results.jsonl` and run only the others (see `crate::results::resume`);
    /// otherwise the file starts empty.
    pub resume: bool,
    /// Keep a twin between cells that leave it in a known state (it is flashed again with
    /// MD5-matching regions skipped, its network set per cell); otherwise every cell gets a
    /// fresh twin, flashed whole.
    pub reuse_twins: bool,
    /// Lock each station's device in this directory from its first cell to the end of the run.
    /// Boards are always locked (in the host's directory, `LockDir::for_host`, when this is
    /// `None`); twins belong to the process that runs them and need none.
    pub locks: Option<LockDir>,
    /// Stops the run when requested.
    pub stop: Stop,
    /// Checked before each attempt at a cell; an `Err` (its text) fails that attempt as the
    /// rig's.
    pub preflight: Option<Arc<Preflight>>,
}

impl RunOptions {
    /// Defaults: 30 s to decide, a twin per CPU, one retry, kept twins, no resume, no locks.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self {
            out: out.into(),
            limits: WatchLimits::new(Duration::from_secs(30)),
            twins: default_twins(),
            lab: None,
            retries: 1,
            resume: false,
            reuse_twins: true,
            locks: None,
            stop: Stop::default(),
            preflight: None,
        }
    }
}

/// The watch limits of a cell on a board: from leaving the loader to the app's start-up, then
/// to a decided update, within the whole cell's limit.
pub(crate) fn board_limits(timeouts: &Timeouts) -> WatchLimits {
    WatchLimits::new(timeouts.boot.saturating_add(timeouts.update).min(timeouts.total))
}

/// One twin per CPU.
pub fn default_twins() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Progress of a run, in the order things happen (cells side by side interleave).
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// An attempt at a cell starts on `board`; `index` is the cell's place in the plan's cells,
    /// `total` the number of cells this run runs, `attempt` counts from 1.
    CellStarted {
        /// The cell's place in the plan's cells, from 0.
        index: usize,
        /// How many cells this run runs.
        total: usize,
        /// The cell's firmware id.
        firmware: &'a str,
        /// The cell's scenario id.
        scenario: &'a str,
        /// The device's id.
        board: &'a str,
        /// Which attempt, from 1.
        attempt: usize,
    },
    /// Attempt `attempt` failed in the rig; the cell is tried again on a fresh device.
    CellRetrying {
        /// The cell's place in the plan's cells, from 0.
        index: usize,
        /// How many cells this run runs.
        total: usize,
        /// The cell's firmware id.
        firmware: &'a str,
        /// The cell's scenario id.
        scenario: &'a str,
        /// The device the attempt failed on.
        board: &'a str,
        /// The attempt that failed, from 1.
        attempt: usize,
        /// What failed, for people.
        error: &'a str,
    },
    /// A cell ended (the `done`-th of this run); its line is in the results file.
    CellFinished {
        /// The cell's place in the plan's cells, from 0.
        index: usize,
        /// How many cells of this run have ended, this one included.
        done: usize,
        /// How many cells this run runs.
        total: usize,
        /// The line written to `results.jsonl`.
        result: &'a CellRecord,
    },
    /// `board`'s port vanished and did not come back: the board left the run, its station takes
    /// no more cells (the others run them).
    BoardLeft {
        /// The board's id.
        board: &'a str,
        /// Why, for people.
        why: &'a str,
    },
    /// Another holder has `board`; the station waits for it.
    BoardBusy {
        /// The board's id.
        board: &'a str,
        /// [`LockError::Busy`], naming the lock file and its holder.
        error: &'a LockError,
    },
    /// A device was flashed for a cell: each region written, or skipped because its MD5 already
    /// matched. Its console is read next.
    Flashed {
        /// The cell's firmware id.
        firmware: &'a str,
        /// The cell's scenario id.
        scenario: &'a str,
        /// The device's id.
        board: &'a str,
        /// Each region, written or skipped.
        report: &'a crate::board::FlashReport,
    },
}

/// How many cells ended how: those of this run and, when resuming, those finished before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Cells whose outcome was the one expected.
    pub pass: usize,
    /// Cells whose outcome was another than the one expected.
    pub fail: usize,
    /// Cells the rig could not run (retries spent).
    pub error: usize,
    /// Cells with an outcome and no expectation to compare it with.
    pub observed: usize,
    /// Of the counts above, cells finished by an earlier run (`resume`).
    pub carried: usize,
    /// Cells under way when the run was stopped: no result.
    pub abandoned: usize,
    /// Cells that never started because the run was stopped.
    pub not_run: usize,
    /// Cells that ran on a twin kept from the cell before.
    pub reused: usize,
    /// The run was stopped before every cell ended.
    pub stopped: bool,
    /// Boards that left the run (their port vanished), in the order they left.
    pub left: Vec<BoardLeft>,
    /// `DIR/results.jsonl`.
    pub results: PathBuf,
}

/// A board that left the run: its port vanished (a USB hub dropped it) and did not come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardLeft {
    /// The board's id.
    pub board: String,
    /// Why, for people.
    pub why: String,
}

impl RunSummary {
    fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Pass => self.pass += 1,
            Verdict::Fail => self.fail += 1,
            Verdict::Error => self.error += 1,
            Verdict::Observed => self.observed += 1,
        }
    }

    /// Cells with a result.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.error + self.observed
    }
}

/// A run that could not go on: its directory is another run's or holds results, its output
/// cannot be written, or no runtime for the servers.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run's directory or `results.jsonl` cannot be made, or an earlier run's results
    /// cannot be read back to resume.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A result could not be written while the run went on (a full disk): the run stopped.
    #[error("cannot write a result to {path}, run stopped: {source}")]
    Results {
        /// `results.jsonl`.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another run has the directory.
    #[error(transparent)]
    Locked(#[from] RunDirLockError),
    /// The directory holds an earlier run's results and this run does not resume it.
    #[error("{dir} already holds the results of a run")]
    HoldsResults {
        /// The run's directory.
        dir: PathBuf,
    },
    /// The tokio runtime for the update servers cannot start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A lab responder (update server listener, DNS, SNTP) cannot start.
    #[error(transparent)]
    Services(#[from] ServiceError),
    /// A firmware states the heap it leaves for TLS (`tls_heap`), the run has twins, and this
    /// binary cannot count a twin's mbedTLS allocations (it was linked without the `calloc`
    /// and `free` wrappers): the member would run unlimited.
    #[error("firmware `{firmware}` states tls_heap, which twins cannot emulate in this binary: {source}")]
    HeapNotEmulated {
        /// The firmware's id.
        firmware: String,
        /// Why.
        source: crate::heap_budget::HeapBudgetError,
    },
}

/// Refuses a run whose twins would meet a firmware with a heap budget that this binary cannot
/// keep (a board's heap is its own).
fn heap_emulated(plan: &Plan, todo: &[usize], lab: &LabConfig) -> Result<(), RunError> {
    if !lab.devices.iter().any(|device| matches!(device, crate::lab::DeviceSpec::Twin(_))) {
        return Ok(());
    }
    let budgeted = todo
        .iter()
        .map(|&index| &plan.cells[index].firmware)
        .find(|id| plan.fleet.get(id).is_some_and(|firmware| firmware.tls.heap.is_some()));
    match budgeted {
        Some(firmware) if !crate::heap_budget::in_effect() => Err(RunError::HeapNotEmulated {
            firmware: firmware.clone(),
            source: crate::heap_budget::HeapBudgetError::NotInEffect,
        }),
        _ => Ok(()),
    }
}

/// Runs the cells of `plan` (those an earlier run did not finish, when resuming), writing each
/// result as it ends; returns the counts.
pub fn run(plan: &Plan, options: &RunOptions, on_event: impl Fn(RunEvent<'_>) + Sync) -> Result<RunSummary, RunError> {
    let output = |path: &Path| {
        let path = path.to_owned();
        move |source| RunError::Output { path, source }
    };
    std::fs::create_dir_all(&options.out).map_err(output(&options.out))?;
    let _lock = RunDirLock::try_take(&options.out)?;
    if !options.resume && crate::results::holds_results(&options.out) {
        return Err(RunError::HoldsResults { dir: options.out.clone() });
    }
    let results_path = options.out.join(crate::results::RESULTS_FILE);
    let mut summary = RunSummary::default();
    let mut todo = Vec::new();
    let results = if options.resume {
        let in_plan = |firmware: &str, scenario: &str| {
            plan.cells.iter().any(|c| c.firmware == firmware && plan.scenarios[c.scenario].id == scenario)
        };
        let (results, earlier) =
            crate::results::resume::resume(&options.out, in_plan).map_err(output(&results_path))?;
        for (index, cell) in plan.cells.iter().enumerate() {
            match earlier.verdict(&cell.firmware, &plan.scenarios[cell.scenario].id) {
                Some(verdict) => {
                    summary.count(verdict);
                    summary.carried += 1;
                }
                None => todo.push(index),
            }
        }
        results
    } else {
        todo.extend(0..plan.cells.len());
        crate::results::ResultsFile::create(&options.out).map_err(output(&results_path))?
    };
    summary.results = results.path().to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("otarig-server")
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let cache = RunCache::default();
    let lab = match &options.lab {
        Some(lab) => Cow::Borrowed(lab),
        None => Cow::Owned(LabConfig::twins_only(options.twins.clamp(1, todo.len().max(1)))),
    };
    heap_emulated(plan, &todo, &lab)?;
    let board_server = Mutex::new(());
    let services = LabServices::start(&lab, runtime.handle())?;
    let context = CellContext {
        plan,
        runtime: runtime.handle(),
        out: &options.out,
        limits: options.limits,
        board_limits: board_limits(&lab.timeouts),
        board_server: &board_server,
        services: &services,
        on_event: &on_event,
        cache: &cache,
        stop: &options.stop,
        preflight: options.preflight.as_deref(),
    };
    let sink = pool::Sink { results, summary, failure: None, done: 0 };
    let sink = pool::run_cells(&todo, &context, options, &lab, sink, &on_event);
    let mut summary = sink.summary;
    summary.stopped = summary.abandoned + summary.not_run > 0;
    match sink.failure {
        Some(err) => Err(err),
        None => Ok(summary),
    }
}
