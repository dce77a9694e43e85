//! The stations working through a run's cells side by side, one per device of the lab: each
//! free station takes the next cell it can run best, one cell at a time; a cell the rig could
//! not run (`error`) is tried again on the same station with a fresh device, up to the run's
//! retries; each result goes to the results file as its cell ends.
//!
//! A station takes only cells its device can run: the firmware's chip, and no power cut on a
//! board (see [`Station::can_take`]); a cell no device of the lab can run is an `error` at once.
//! Among those, it prefers, in order: the first waiting cell with the same setup as the twin it
//! keeps (so the twin is used again), the first of the same firmware, the first waiting cell.
//! Results therefore do not come in plan order.
//!
//! Boards are locked for as long as their station works (from its first cell to the end), in
//! the run's lock directory or the host's; twins only when the run names a lock directory.

use std::sync::{Mutex, PoisonError};

use crate::board::Chip;
use crate::lab::{DeviceSpec, LabConfig, assign};
use crate::results::{CellRecord, Verdict, transcript_path};
use crate::run::cell::{AttemptEnd, CellContext, run_cell};
use crate::run::lock::{LockDir, LockError};
use crate::run::serve::Setup;
use crate::run::station::Station;
use crate::run::{RunError, RunEvent, RunOptions, RunSummary};

/// Where finished cells go: the results file and the counts.
pub(super) struct Sink {
    pub results: crate::results::ResultsFile,
    pub summary: RunSummary,
    pub failure: Option<RunError>,
    /// Cells finished in this run.
    pub done: usize,
}

impl Sink {
    fn record(&mut self, result: &CellRecord) -> usize {
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

/// What a cell asks of a device.
#[derive(Clone, Copy, Debug)]
struct Needs {
    /// The firmware's chip (`None` when the fleet lacks it: the cell fails on any device).
    chip: Option<Chip>,
    power_cut: bool,
}

/// Runs the cells at `todo` (indices into the plan's cells) on a station per device of `lab`.
pub(super) fn run_cells(
    todo: &[usize],
    context: &CellContext<'_>,
    options: &RunOptions,
    lab: &LabConfig,
    sink: &Mutex<Sink>,
    on_event: &(impl Fn(RunEvent<'_>) + Sync),
) {
    let plan = context.plan;
    let total = todo.len();
    let mut setups = Vec::with_capacity(total);
    let mut needs = Vec::with_capacity(total);
    for &index in todo {
        let cell = &plan.cells[index];
        let scenario = &plan.scenarios[cell.scenario];
        let power_cut = scenario.power_cut.is_some();
        match plan.fleet.get(&cell.firmware) {
            Some(firmware) => {
                setups.push(Setup::for_cell(firmware, scenario));
                needs.push(Needs { chip: Some(firmware.chip), power_cut });
            }
            None => {
                let firmware = cell.firmware.clone();
                setups.push(Setup { firmware, hosts: Default::default(), sntp_time: 0, power_cut: None });
                needs.push(Needs { chip: None, power_cut });
            }
        }
    }
    let fits = |device: &DeviceSpec, needs: Needs| {
        needs.chip.is_none_or(|chip| chip == device.chip())
            && !(needs.power_cut && matches!(device, DeviceSpec::Board(_)))
    };
    // Cells no device can take end here, as errors of the rig.
    let mut waiting = Vec::with_capacity(total);
    for (position, &index) in todo.iter().enumerate() {
        if lab.devices.iter().any(|device| fits(device, needs[position])) {
            waiting.push(position);
            continue;
        }
        let cell = &plan.cells[index];
        let scenario = &plan.scenarios[cell.scenario].id;
        let message = no_device(lab, needs[position]);
        let result = error_result(cell, scenario, "", message, context);
        let done = sink.lock().unwrap_or_else(PoisonError::into_inner).record(&result);
        on_event(RunEvent::CellFinished { index, done, total, result: &result });
    }
    let waiting = Mutex::new(waiting);

    let reused: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = lab
            .devices
            .iter()
            .map(|device| {
                let (setups, needs, waiting) = (&setups, &needs, &waiting);
                scope.spawn(move || {
                    let mut station = Station::for_device(device, lab, options.reuse_twins);
                    let locks = match (&options.locks, station.is_board()) {
                        (Some(locks), _) => Some(locks.clone()),
                        (None, true) => Some(LockDir::for_host()),
                        (None, false) => None,
                    };
                    while !context.stop.is_requested() {
                        let next = {
                            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                            let takes = |at: usize| fits(device, needs[at]);
                            pick(&waiting, setups, station.kept_setup(), takes).map(|at| waiting.remove(at))
                        };
                        let Some(position) = next else { break };
                        let index = todo[position];
                        let ended = match held(&mut station, locks.as_ref(), context, on_event) {
                            Ok(()) => run_with_retries(index, total, &mut station, context, options, on_event),
                            Err(LockError::GaveUp { .. }) => CellEnd::NotStarted,
                            Err(err) => {
                                let cell = &plan.cells[index];
                                let scenario = &plan.scenarios[cell.scenario].id;
                                let message = format!("board lock: {err}");
                                CellEnd::Result(Box::new(error_result(
                                    cell,
                                    scenario,
                                    station.board(),
                                    message,
                                    context,
                                )))
                            }
                        };
                        match ended {
                            CellEnd::Result(result) => {
                                let done = sink.lock().unwrap_or_else(PoisonError::into_inner).record(&result);
                                on_event(RunEvent::CellFinished { index, done, total, result: &result });
                            }
                            CellEnd::Abandoned => {
                                sink.lock().unwrap_or_else(PoisonError::into_inner).summary.abandoned += 1;
                            }
                            CellEnd::NotStarted => {
                                sink.lock().unwrap_or_else(PoisonError::into_inner).summary.not_run += 1;
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

/// Why no device of `lab` can run a cell that `needs` this.
fn no_device(lab: &LabConfig, needs: Needs) -> String {
    let Some(chip) = needs.chip else { return "no device in the lab".to_owned() };
    match assign(lab, chip) {
        Err(err) => err.to_string(),
        // Only boards have the chip, and the scenario cuts power.
        Ok(_) => format!("the scenario's power cut needs a twin, and the lab's {chip} devices are boards"),
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
        other: Default::default(),
    }
}

/// The position in `waiting` of the cell a station keeping a twin set up as `kept` runs next:
/// the first with the same setup, else the first of the same firmware, else the first; only
/// cells the station `takes`.
fn pick(waiting: &[usize], setups: &[Setup], kept: Option<&Setup>, takes: impl Fn(usize) -> bool) -> Option<usize> {
    let first = |matches: &dyn Fn(&Setup) -> bool| waiting.iter().position(|&at| takes(at) && matches(&setups[at]));
    let Some(kept) = kept else { return first(&|_| true) };
    first(&|setup| setup == kept)
        .or_else(|| first(&|setup| setup.firmware == kept.firmware))
        .or_else(|| first(&|_| true))
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
        let any = |_| true;
        assert_eq!(pick(&waiting, &setups, None, any), Some(0));
        assert_eq!(pick(&waiting, &setups, Some(&setup("a", 2)), any), Some(1));
        assert_eq!(pick(&waiting, &setups, Some(&setup("b", 1)), any), Some(4));
        assert_eq!(pick(&[2, 3, 4], &setups, Some(&setup("a", 1)), any), Some(1), "same firmware");
        assert_eq!(pick(&[2, 4], &setups, Some(&setup("c", 1)), any), Some(0), "anything");
        assert_eq!(pick(&[], &setups, Some(&setup("a", 1)), any), None);
    }

    #[test]
    fn a_station_takes_only_the_cells_its_device_can_run() {
        let setups = [setup("a", 1), setup("b", 1), setup("a", 2)];
        let only_b = |at: usize| at == 1;
        assert_eq!(pick(&[0, 1, 2], &setups, None, only_b), Some(1));
        assert_eq!(pick(&[0, 1, 2], &setups, Some(&setup("a", 1)), only_b), Some(1));
        assert_eq!(pick(&[0, 2], &setups, Some(&setup("a", 1)), only_b), None, "nothing it can run");
    }
}
