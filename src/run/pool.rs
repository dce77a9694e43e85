//! The stations working through a run's cells side by side, one per device of the lab: each
//! free station takes the next cell it can run best, one cell at a time; a cell the rig could
//! not run (`error`) is tried again on the same station with a fresh device, up to the run's
//! retries; each result goes to the results file as its cell ends.
//!
//! A station takes only cells its device can run (see [`Station::accepts`]); a cell no station
//! accepts is an `error` at once. Among those, it prefers the first waiting cell of the firmware
//! its device holds (only the start state is written then), else the first waiting cell.
//! Results therefore do not come in plan order.
//!
//! Boards are locked for as long as their station works (from its first cell to the end), in
//! the run's lock directory or the host's; twins only when the run names a lock directory.
//!
//! A board whose port vanished (a USB hub dropping it) and does not come back leaves the run:
//! the cell it was running is the rig's `error`, its station takes no more cells, and the
//! other stations run the rest; cells no station left can take are `error`s at once.

use std::sync::{Mutex, PoisonError};

use crate::lab::{LabConfig, assign};
use crate::results::{CellRecord, Verdict, transcript_path};
use crate::run::cell::{AttemptEnd, CellContext, run_cell, scenario_facts};
use crate::run::lock::{LockDir, LockError};
use crate::run::station::{Needs, Station, Takes};
use crate::run::{BoardLeft, RunError, RunEvent, RunOptions, RunSummary};

/// Where finished cells go: the results file and the counts.
pub(super) struct Sink {
    pub results: crate::results::ResultsFile,
    pub summary: RunSummary,
    pub failure: Option<RunError>,
    /// Cells finished in this run.
    pub done: usize,
}

impl Sink {
    /// Writes a result and counts it; returns the number of cells finished so far.
    fn record(&mut self, result: &CellRecord) -> usize {
        self.summary.count(result.verdict);
        if let Err(source) = self.results.append(result)
            && self.failure.is_none()
        {
            self.failure = Some(RunError::Results { path: self.results.path().to_owned(), source });
        }
        self.done += 1;
        self.done
    }

    /// Counts how a cell ended, writing its result if it has one; returns the number of cells
    /// finished so far for a result.
    fn end(&mut self, ended: &CellEnd) -> Option<usize> {
        match ended {
            CellEnd::Result(result) => Some(self.record(result)),
            CellEnd::Abandoned => {
                self.summary.abandoned += 1;
                None
            }
            CellEnd::NotStarted => {
                self.summary.not_run += 1;
                None
            }
        }
    }
}

/// Runs the cells at `todo` (indices into the plan's cells) on a station per device of `lab`;
/// returns the sink with every result and count.
pub(super) fn run_cells(
    todo: &[usize],
    context: &CellContext<'_>,
    options: &RunOptions,
    lab: &LabConfig,
    mut sink: Sink,
    on_event: &(impl Fn(RunEvent<'_>) + Sync),
) -> Sink {
    let plan = context.plan;
    let stations: Vec<Station> =
        lab.devices.iter().map(|device| Station::for_device(device, lab, options.reuse_twins)).collect();
    let needs: Vec<Needs> = todo.iter().map(|&index| needs_of(&plan.cells[index], plan)).collect();
    let waiting = refuse_cells_no_station_accepts(todo, &needs, &stations, lab, context, &mut sink, on_event);
    let takes: Vec<Takes> = stations.iter().map(Station::takes).collect();
    let work = Work {
        todo,
        needs,
        firmwares: todo.iter().map(|&index| plan.cells[index].firmware.as_str()).collect(),
        shared: Mutex::new(Shared { waiting, sink, left: vec![false; takes.len()] }),
        takes,
        context,
        options,
        on_event,
    };
    let reused: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = stations
            .into_iter()
            .enumerate()
            .map(|(at, station)| {
                let work = &work;
                scope.spawn(move || work.on(at, station))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    let Shared { waiting, mut sink, .. } = work.shared.into_inner().unwrap_or_else(PoisonError::into_inner);
    sink.summary.not_run += waiting.len();
    sink.summary.reused += reused;
    sink
}

/// What a cell asks of the device that runs it.
fn needs_of(cell: &crate::run::Cell, plan: &crate::run::Plan) -> Needs {
    let power_cut = plan.scenarios[cell.scenario].power_cut.is_some();
    Needs { chip: plan.fleet.get(&cell.firmware).map(|firmware| firmware.chip), power_cut }
}

/// Ends the cells no station accepts as errors of the rig; returns the positions in `todo` of
/// the others, which wait for a station.
fn refuse_cells_no_station_accepts(
    todo: &[usize],
    needs: &[Needs],
    stations: &[Station],
    lab: &LabConfig,
    context: &CellContext<'_>,
    sink: &mut Sink,
    on_event: &impl Fn(RunEvent<'_>),
) -> Vec<usize> {
    let mut waiting = Vec::with_capacity(todo.len());
    for (position, &index) in todo.iter().enumerate() {
        if stations.iter().any(|station| station.accepts(needs[position])) {
            waiting.push(position);
            continue;
        }
        let cell = &context.plan.cells[index];
        let scenario = &context.plan.scenarios[cell.scenario].id;
        let result = error_result(cell, scenario, "", no_device(lab, needs[position]), context);
        let done = sink.record(&result);
        on_event(RunEvent::CellFinished { index, done, total: todo.len(), result: &result });
    }
    waiting
}

/// What the stations share, behind one lock: the cells waiting and where the ended ones go.
struct Shared {
    /// Positions in `todo` of the cells no station has taken yet.
    waiting: Vec<usize>,
    sink: Sink,
    /// By station: its board left the run.
    left: Vec<bool>,
}

/// The cells of a run and what the stations working on them share.
struct Work<'a, E> {
    todo: &'a [usize],
    /// What each cell of `todo` asks of its device, by position.
    needs: Vec<Needs>,
    /// Each cell's firmware, by position.
    firmwares: Vec<&'a str>,
    shared: Mutex<Shared>,
    /// By station: which cells its device can take.
    takes: Vec<Takes>,
    context: &'a CellContext<'a>,
    options: &'a RunOptions,
    on_event: &'a E,
}

impl<E: Fn(RunEvent<'_>) + Sync> Work<'_, E> {
    /// Station `at`'s work: the waiting cells it accepts, one at a time, until none is left,
    /// the run is to stop or its board leaves the run. Returns how many cells it ran on a
    /// device kept from the cell before.
    fn on(&self, at: usize, mut station: Station) -> usize {
        let locks = match (&self.options.locks, station.is_board()) {
            (Some(locks), _) => Some(locks.clone()),
            (None, true) => Some(LockDir::for_host()),
            (None, false) => None,
        };
        while !self.context.stop.is_requested() {
            let Some(position) = self.take_next(&station) else { break };
            let index = self.todo[position];
            let ended = self.run_on(index, &mut station, locks.as_ref());
            let (done, failed) = {
                let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
                (shared.sink.end(&ended), shared.sink.failure.is_some())
            };
            if failed {
                // Results can no longer be kept: running more cells would only lose theirs.
                self.context.stop.request();
            }
            if let (Some(done), CellEnd::Result(result)) = (done, &ended) {
                (self.on_event)(RunEvent::CellFinished { index, done, total: self.todo.len(), result });
            }
            if let Some(why) = station.left() {
                self.leave(at, station.board(), why);
                break;
            }
        }
        station.reused()
    }

    /// Station `at`'s board left the run: the cells no station left can take end as errors.
    fn leave(&self, at: usize, board: &str, why: &str) {
        (self.on_event)(RunEvent::BoardLeft { board, why });
        let context = self.context;
        let message = format!("no device left to run it: {board} left the run ({why})");
        let ended: Vec<(usize, usize, CellRecord)> = {
            let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            shared.left[at] = true;
            shared.sink.summary.left.push(BoardLeft { board: board.to_owned(), why: why.to_owned() });
            let Shared { waiting, sink, left } = &mut *shared;
            let live: Vec<Takes> =
                self.takes.iter().zip(left.iter()).filter(|(_, gone)| !**gone).map(|(t, _)| *t).collect();
            let mut ended = Vec::new();
            waiting.retain(|&position| {
                if live.iter().any(|takes| takes.accepts(self.needs[position])) {
                    return true;
                }
                let index = self.todo[position];
                let cell = &context.plan.cells[index];
                let scenario = &context.plan.scenarios[cell.scenario].id;
                let result = error_result(cell, scenario, "", message.clone(), context);
                let done = sink.record(&result);
                ended.push((index, done, result));
                false
            });
            ended
        };
        for (index, done, result) in &ended {
            (self.on_event)(RunEvent::CellFinished { index: *index, done: *done, total: self.todo.len(), result });
        }
    }

    /// Takes the waiting cell `station` runs next (see [`pick`]): its position in `todo`.
    fn take_next(&self, station: &Station) -> Option<usize> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let takes = |at: usize| station.accepts(self.needs[at]);
        let at = pick(&shared.waiting, &self.firmwares, station.kept_firmware(), takes)?;
        Some(shared.waiting.remove(at))
    }

    /// Runs `plan.cells[index]` on `station` once it holds its board's lock (when it needs one).
    fn run_on(&self, index: usize, station: &mut Station, locks: Option<&LockDir>) -> CellEnd {
        match held(station, locks, self.context, self.on_event) {
            Ok(()) => run_with_retries(index, self.todo.len(), station, self.context, self.options, self.on_event),
            Err(LockError::GaveUp { .. }) => CellEnd::NotStarted,
            Err(err) => {
                let cell = &self.context.plan.cells[index];
                let scenario = &self.context.plan.scenarios[cell.scenario].id;
                let message = format!("board lock: {err}");
                CellEnd::Result(Box::new(error_result(cell, scenario, station.board(), message, self.context)))
            }
        }
    }
}

/// Why no device of `lab` can run a cell that `needs` this.
fn no_device(lab: &LabConfig, needs: Needs) -> String {
    let Some(chip) = needs.chip else { return "no device in the lab".to_owned() };
    match assign(lab, chip) {
        Err(err) => err.to_string(),
        // Only boards have the chip, and the scenario cuts power.
        Ok(_) => {
            format!("the scenario's power cut needs a twin, and the lab's {} devices are boards", chip.config_label())
        }
    }
}

/// Takes the station's lock, when it needs one and has none yet.
fn held(
    station: &mut Station,
    locks: Option<&LockDir>,
    context: &CellContext<'_>,
    on_event: &impl Fn(RunEvent<'_>),
) -> Result<(), LockError> {
    let Some(locks) = locks else { return Ok(()) };
    if station.holds_lock() {
        return Ok(());
    }
    let board = station.board().to_owned();
    let busy = |err: &LockError| on_event(RunEvent::BoardBusy { board: &board, error: err });
    station.hold(locks, busy, || context.stop.is_requested())
}

/// How a cell ended on a station.
enum CellEnd {
    Result(Box<CellRecord>),
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
    let mut attempt = 1;
    loop {
        let (firmware, board) = (cell.firmware.as_str(), station.board().to_owned());
        on_event(RunEvent::CellStarted { index, total, firmware, scenario, board: &board, attempt });
        match run_cell(cell, station, attempt, context) {
            AttemptEnd::Abandoned => return CellEnd::Abandoned,
            AttemptEnd::Result(mut result)
                if result.verdict == Verdict::Error && !station.still_there(context.stop) =>
            {
                // The board is gone: no retry can reach it.
                let why = station.left().unwrap_or_default();
                result.error = Some(format!("{}; {board} left the run: {why}", result.error.unwrap_or_default()));
                return CellEnd::Result(result);
            }
            AttemptEnd::Result(result)
                if result.verdict == Verdict::Error && attempt <= options.retries && !context.stop.is_requested() =>
            {
                let error = result.error.as_deref().unwrap_or_default();
                on_event(RunEvent::CellRetrying { index, total, firmware, scenario, board: &board, attempt, error });
                attempt += 1;
            }
            AttemptEnd::Result(result) => return CellEnd::Result(result),
        }
    }
}

/// The `error` result of a cell the rig could not start: its board could not be locked, or no
/// device can run it (`board` is then empty).
fn error_result(
    cell: &crate::run::Cell,
    scenario: &str,
    board: &str,
    message: String,
    context: &CellContext<'_>,
) -> CellRecord {
    CellRecord {
        firmware: cell.firmware.clone(),
        scenario: scenario.to_owned(),
        board: board.to_owned(),
        expected: context.plan.scenarios[cell.scenario]
            .expect
            .get(&cell.firmware)
            .map(super::super::scenario::Expectation::outcome),
        observed: None,
        verdict: Verdict::Error,
        transcript: transcript_path(&cell.firmware, scenario),
        error: Some(message),
        duration_ms: 0,
        details: Default::default(),
        scenario_facts: scenario_facts(&context.plan.scenarios[cell.scenario]),
        other: Default::default(),
    }
}

/// The position in `waiting` of the cell a station whose device holds firmware `kept` runs next:
/// the first of that firmware, else the first; only cells the station `takes`.
fn pick(waiting: &[usize], firmwares: &[&str], kept: Option<&str>, takes: impl Fn(usize) -> bool) -> Option<usize> {
    let first = |matches: &dyn Fn(&str) -> bool| waiting.iter().position(|&at| takes(at) && matches(firmwares[at]));
    kept.and_then(|kept| first(&|firmware| firmware == kept)).or_else(|| first(&|_| true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_station_prefers_the_firmware_its_device_holds() {
        let firmwares = ["a", "a", "b", "a", "b"];
        let waiting = [0, 1, 2, 3, 4];
        let any = |_| true;
        assert_eq!(pick(&waiting, &firmwares, None, any), Some(0));
        assert_eq!(pick(&waiting, &firmwares, Some("b"), any), Some(2));
        assert_eq!(pick(&[2, 3, 4], &firmwares, Some("a"), any), Some(1), "same firmware");
        assert_eq!(pick(&[2, 4], &firmwares, Some("c"), any), Some(0), "anything");
        assert_eq!(pick(&[], &firmwares, Some("a"), any), None);
    }

    #[test]
    fn a_station_takes_only_the_cells_its_device_can_run() {
        let firmwares = ["a", "b", "a"];
        let only_b = |at: usize| at == 1;
        assert_eq!(pick(&[0, 1, 2], &firmwares, None, only_b), Some(1));
        assert_eq!(pick(&[0, 1, 2], &firmwares, Some("a"), only_b), Some(1));
        assert_eq!(pick(&[0, 2], &firmwares, Some("a"), only_b), None, "nothing it can run");
    }
}
