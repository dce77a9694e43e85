//! The matrix runner: every firmware × scenario cell on a device, each result written to
//! `DIR/results.jsonl` as the cell ends (the contract in [`results`]), each console kept in
//! `DIR/transcripts/`.
//!
//! - [`plan`]: the lab's files and the cells, every id checked first;
//! - [`cell`]: one cell on one device, from images to the observed outcome;
//! - [`serve`]: the cell's update server and the lab network pointing at it;
//! - [`flash`]: espflash writing the images over the device's serial port;
//! - [`watch`]: the console until the update is decided or the time is up;
//! - [`results`]: expected vs observed, and the results file.
//!
//! Devices are in-process twins for now, `--twins N` of them side by side, each cell on a fresh
//! one with its own server. The runner reports progress as [`RunEvent`]s and never prints.

pub mod cell;
pub mod flash;
pub mod plan;
pub mod results;
pub mod serve;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use cell::{CellContext, CellError, run_cell};
pub use plan::{Cell, LabDirs, Plan, PlanError, Selection};
pub use results::{CellResult, CellVerdict, Observed, ResultsFile, compare};
pub use watch::WatchLimits;

/// How a run goes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run's directory: `results.jsonl` and `transcripts/` go there.
    pub out: PathBuf,
    pub limits: WatchLimits,
    /// Cells run side by side, each on its own twin (at least 1).
    pub twins: usize,
}

/// Progress of a run, in the order things happen (cells side by side interleave).
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A cell starts on `board`; `index` counts from 0 in plan order.
    CellStarted { index: usize, total: usize, firmware: &'a str, scenario: &'a str, board: &'a str },
    /// A cell ended; its line is in the results file.
    CellFinished { index: usize, total: usize, result: &'a CellResult },
}

/// How many cells ended how.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub observed: usize,
    /// `DIR/results.jsonl`.
    pub results: PathBuf,
}

impl RunSummary {
    fn count(&mut self, verdict: CellVerdict) {
        match verdict {
            CellVerdict::Pass => self.pass += 1,
            CellVerdict::Fail => self.fail += 1,
            CellVerdict::Error => self.error += 1,
            CellVerdict::Observed => self.observed += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.error + self.observed
    }
}

/// A run that could not go on: its output cannot be written, or no runtime for the servers.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot write {path}: {source}")]
    Output { path: PathBuf, source: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs every cell of `plan`, writing each result as it ends; returns the counts.
pub fn run(plan: &Plan, options: &RunOptions, on_event: impl Fn(RunEvent<'_>) + Sync) -> Result<RunSummary, RunError> {
    let output = |path: &Path| {
        let path = path.to_owned();
        move |source| RunError::Output { path, source }
    };
    std::fs::create_dir_all(&options.out).map_err(output(&options.out))?;
    let results = ResultsFile::create(&options.out).map_err(output(&options.out.join(results::RESULTS_FILE)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("otarig-server")
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let context = CellContext { plan, runtime: runtime.handle(), out: &options.out, limits: options.limits };
    let summary = RunSummary { results: results.path().to_owned(), ..RunSummary::default() };
    let shared = Mutex::new((results, summary, None::<RunError>));
    let next = AtomicUsize::new(0);
    let total = plan.cells.len();
    let workers = options.twins.clamp(1, total.max(1));

    std::thread::scope(|scope| {
        for worker in 1..=workers {
            let (context, shared, next, on_event) = (&context, &shared, &next, &on_event);
            scope.spawn(move || {
                let board = format!("twin-{worker}");
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cell) = plan.cells.get(index) else { break };
                    let scenario = &plan.scenarios[cell.scenario].id;
                    on_event(RunEvent::CellStarted { index, total, firmware: &cell.firmware, scenario, board: &board });
                    let result = run_cell(cell, &board, context);
                    let mut guard = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let (results, summary, failure) = &mut *guard;
                    summary.count(result.verdict);
                    if let Err(source) = results.append(&result)
                        && failure.is_none()
                    {
                        *failure = Some(RunError::Output { path: results.path().to_owned(), source });
                    }
                    on_event(RunEvent::CellFinished { index, total, result: &result });
                }
            });
        }
    });

    let (_, summary, failure) = shared.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    match failure {
        Some(err) => Err(err),
        None => Ok(summary),
    }
}
