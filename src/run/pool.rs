//! The stations working through a run's cells side by side: each free station takes the next
//! cell it can run best, one cell at a time; a cell the rig could not run (`error`) is tried
//! again on the same station with a fresh device, up to the run's retries; each result goes to
//! the results file as its cell ends.
//!
//! A station prefers, in order: the first waiting cell with the same setup as the twin it keeps
//! (so the twin is used again), the first of the same firmware, the first waiting cell. Results
//! therefore do not come in plan order.

use std::sync::{Mutex, PoisonError};

use crate::run::cell::{AttemptEnd, CellContext, run_cell};
use crate::run::lock::LockError;
use crate::run::results::{CellResult, CellVerdict};
use crate::run::serve::Setup;
use crate::run::station::Station;
use crate::run::{RunError, RunEvent, RunOptions, RunSummary};

/// Where finished cells go: the results file and the counts.
pub(super) struct Sink {
    pub results: crate::run::ResultsFile,
    pub summary: RunSummary,
    pub failure: Option<RunError>,
    /// Cells finished in this run.
    pub done: usize,
}

impl Sink {
    fn record(&mut self, result: &CellResult) -> usize {
        self.summary.count(result.verdict);
        if let Err(source) = self.results.append(result)
            && self.failure.is_none()
        {
            self.failure = Some(RunError::Output { path: self.results.path().to_owned(), source });
        }
        self.done += 1;
        self.done
    }
}

/// Runs the cells at `todo` (indices into the plan's cells) on `options.twins` stations.
pub(super) fn run_cells(
    todo: &[usize],
    context: &CellContext<'_>,
    options: &RunOptions,
    sink: &Mutex<Sink>,
    on_event: &(impl Fn(RunEvent<'_>) + Sync),
) {
    let plan = context.plan;
    let setups: Vec<Setup> = todo
        .iter()
        .map(|&index| {
            let cell = &plan.cells[index];
            let scenario = &plan.scenarios[cell.scenario];
            match plan.fleet.get(&cell.firmware) {
                Some(firmware) => Setup::for_cell(firmware, scenario),
                None => {
                    Setup { firmware: cell.firmware.clone(), hosts: Default::default(), sntp_time: 0, power_cut: None }
                }
            }
        })
        .collect();
    let waiting = Mutex::new((0..todo.len()).collect::<Vec<usize>>());
    let total = todo.len();
    let stations = options.twins.clamp(1, total.max(1));

    let reused: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..=stations)
            .map(|number| {
                let (setups, waiting) = (&setups, &waiting);
                scope.spawn(move || {
                    let mut station = Station::new(format!("twin-{number}"), options.reuse_twins);
                    while !context.stop.is_requested() {
                        let next = {
                            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                            pick(&waiting, setups, station.kept_setup()).map(|at| waiting.remove(at))
                        };
                        let Some(position) = next else { break };
                        let index = todo[position];
                        let ended = run_with_retries(index, total, &mut station, context, options, on_event);
                        match ended {
                            CellEnd::Result(result) => {
                                let done = sink.lock().unwrap_or_else(PoisonError::into_inner).record(&result);
                                on_event(RunEvent::CellFinished { index, done, total, result: &result });
                            }
                            CellEnd::Abandoned => {
                                sink.lock().unwrap_or_else(PoisonError::into_inner).summary.abandoned += 1
                            }
                            CellEnd::NotStarted => {
                                sink.lock().unwrap_or_else(PoisonError::into_inner).summary.not_run += 1
                            }
                        }
                    }
                    station.reused()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    let mut sink = sink.lock().unwrap_or_else(PoisonError::into_inner);
    sink.summary.not_run += waiting.into_inner().unwrap_or_else(PoisonError::into_inner).len();
    sink.summary.reused += reused;
}

/// How a cell ended on a station.
enum CellEnd {
    Result(Box<CellResult>),
    Abandoned,
    /// Stopped while waiting for the board.
    NotStarted,
}

/// Runs `plan.cells[index]`, trying again while the rig fails and retries remain.
fn run_with_retries(
    index: usize,
    total: usize,
    station: &mut Station,
    context: &CellContext<'_>,
    options: &RunOptions,
    on_event: &impl Fn(RunEvent<'_>),
) -> CellEnd {
    let cell = &context.plan.cells[index];
    let scenario = &context.plan.scenarios[cell.scenario].id;
    let _held = match &options.locks {
        None => None,
        Some(locks) => {
            let busy = |err: &LockError| on_event(RunEvent::BoardBusy { board: station.board(), error: err });
            match station.lock(locks, busy, || context.stop.is_requested()) {
                Ok(held) => Some(held),
                Err(LockError::GaveUp { .. }) => return CellEnd::NotStarted,
                Err(err) => return CellEnd::Result(Box::new(unlocked(cell, scenario, station.board(), &err, context))),
            }
        }
    };
    let mut attempt = 1;
    loop {
        let (firmware, board) = (cell.firmware.as_str(), station.board().to_owned());
        on_event(RunEvent::CellStarted { index, total, firmware, scenario, board: &board, attempt });
        match run_cell(cell, station, attempt, context) {
            AttemptEnd::Abandoned => return CellEnd::Abandoned,
            AttemptEnd::Result(result)
                if result.verdict == CellVerdict::Error
                    && attempt <= options.retries
                    && !context.stop.is_requested() =>
            {
                let error = result.error.as_deref().unwrap_or_default();
                on_event(RunEvent::CellRetrying { index, total, firmware, scenario, board: &board, attempt, error });
                attempt += 1;
            }
            AttemptEnd::Result(result) => return CellEnd::Result(result),
        }
    }
}

/// The `error` result of a cell whose board could not be locked.
fn unlocked(
    cell: &crate::run::Cell,
    scenario: &str,
    board: &str,
    err: &LockError,
    context: &CellContext<'_>,
) -> CellResult {
    CellResult {
        firmware: cell.firmware.clone(),
        scenario: scenario.to_owned(),
        board: board.to_owned(),
        expected: context.plan.scenarios[cell.scenario].expect.get(&cell.firmware).copied(),
        observed: None,
        verdict: CellVerdict::Error,
        transcript: crate::run::results::transcript_path(&cell.firmware, scenario),
        error: Some(format!("board lock: {err}")),
        duration_ms: 0,
        details: Default::default(),
    }
}

/// The position in `waiting` of the cell a station keeping a twin set up as `kept` runs next:
/// the first with the same setup, else the first of the same firmware, else the first.
fn pick(waiting: &[usize], setups: &[Setup], kept: Option<&Setup>) -> Option<usize> {
    if waiting.is_empty() {
        return None;
    }
    let Some(kept) = kept else { return Some(0) };
    waiting
        .iter()
        .position(|&at| setups[at] == *kept)
        .or_else(|| waiting.iter().position(|&at| setups[at].firmware == kept.firmware))
        .or(Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(firmware: &str, date: i64) -> Setup {
        Setup {
            firmware: firmware.into(),
            hosts: ["ota.example.com".to_owned()].into(),
            sntp_time: date,
            power_cut: None,
        }
    }

    #[test]
    fn a_station_prefers_its_twins_setup_then_its_firmware() {
        let setups = [setup("a", 1), setup("a", 2), setup("b", 2), setup("a", 2), setup("b", 1)];
        let waiting = [0, 1, 2, 3, 4];
        assert_eq!(pick(&waiting, &setups, None), Some(0));
        assert_eq!(pick(&waiting, &setups, Some(&setup("a", 2))), Some(1));
        assert_eq!(pick(&waiting, &setups, Some(&setup("b", 1))), Some(4));
        assert_eq!(pick(&[2, 3, 4], &setups, Some(&setup("a", 1))), Some(1), "same firmware");
        assert_eq!(pick(&[2, 4], &setups, Some(&setup("c", 1))), Some(0), "anything");
        assert_eq!(pick(&[], &setups, Some(&setup("a", 1))), None);
    }
}
