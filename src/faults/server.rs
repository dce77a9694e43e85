//! The server campaign: the update server killed (every connection reset, its listener
//! closed) or stalled (nothing sent for a while) at seeded byte offsets of the download. Each
//! trial is two cells on one device, one after the other: the update against the failing
//! server, then the same device against the server back as it was. What must hold:
//!
//! - the first cell ends as the firmware's ESP-IDF client ends it (its outcome class, decided
//!   from its lines: `network` for a reset, `image-invalid` where a release takes a silence for
//!   the end of the image), or with the update when the client waits a stall out;
//! - after a failure, the device still boots its old firmware: the second cell finds the flash
//!   as the failure left it (every region's MD5 the same, nothing written) and the bootloader
//!   loads the partition the app ran from;
//! - with the server back, that update succeeds.
//!
//! The cells run on one device (a twin kept between cells, or the lab's first device of the
//! firmware's chip) so that the second cell meets the device the first one left.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

use super::boot::UpdateTrace;
use super::seed::Seeded;
use super::{FaultsError, read_transcript};
use crate::lab::LabConfig;
use crate::outcome::{Outcome, OutcomeClass};
use crate::results::{CellRecord, Verdict};
use crate::run::{LabDirs, RunEvent, RunOptions};
use crate::scenario::Fault;

/// What to do to the server, and how often.
#[derive(Clone, Debug)]
pub struct ServerCampaign {
    /// The firmware's manifest id.
    pub firmware: String,
    /// A scenario in which the firmware updates (its expectation for it is `updated`).
    pub scenario: String,
    /// Kills at byte offsets drawn from the seed.
    pub kills: usize,
    /// Stalls at byte offsets drawn from the seed.
    pub stalls: usize,
    /// How long a stall lasts, in seconds (ESP-IDF's client waits 5 s for each read).
    pub stall_seconds: u64,
    /// The seed the offsets are drawn from.
    pub seed: u64,
}

/// What the server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerFault {
    /// It goes away: connections reset, listener closed.
    Kill,
    /// It sends nothing for a while, then goes on.
    Stall,
}

/// How the update against the failing server ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultEnd {
    /// The client gave up with a failure of its own (the outcome says which).
    Failed,
    /// The client waited the fault out and updated.
    WaitedOut,
    /// The device did not come to an end the firmware decided (a timeout, a crash, a log that
    /// says nothing): not what a client does.
    Undecided,
    /// The rig could not run the cell.
    Error,
}

/// One trial: the fault, and the update once the server is back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trial {
    /// What the server did.
    pub fault: ServerFault,
    /// Body bytes sent before it.
    pub after: u64,
    /// How the update against the failing server ended.
    pub end: FaultEnd,
    /// Its outcome.
    pub outcome: Option<Outcome>,
    /// The second cell wrote nothing to the device: its flash was as the first left it.
    pub left_as_it_was: Option<bool>,
    /// The partition the device ran from in the first cell, and the one its boot loaded in the
    /// second: the same after a failure (the old firmware).
    pub ran_from: Option<u32>,
    /// The partition loaded at the second cell's boot.
    pub booted_from: Option<u32>,
    /// The second cell's outcome: `updated`.
    pub back: Option<Outcome>,
    /// What went wrong in the rig, for either cell.
    pub error: Option<String>,
    /// The device both cells ran on.
    pub board: String,
    /// Both cells' wall time.
    pub duration_ms: u64,
    /// Where the two cells' transcripts were kept, for a trial that did not hold (with `keep`).
    pub kept: Vec<std::path::PathBuf>,
    /// The two cells' transcripts, relative to the run's directory.
    #[serde(skip)]
    pub transcripts: [String; 2],
}

impl Trial {
    /// Everything required held.
    pub fn holds(&self) -> bool {
        let back_updated = self.back.is_some_and(|o| o.outcome == OutcomeClass::Updated);
        match self.end {
            FaultEnd::Failed => {
                back_updated
                    && self.left_as_it_was == Some(true)
                    && self.booted_from.is_some()
                    && self.booted_from == self.ran_from
            }
            FaultEnd::WaitedOut => back_updated,
            FaultEnd::Undecided | FaultEnd::Error => false,
        }
    }

    /// The rig failed on a cell of the trial.
    pub fn is_error(&self) -> bool {
        self.end == FaultEnd::Error || self.error.is_some()
    }
}

/// What the campaign found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerReport {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
    /// The seed the offsets were drawn from.
    pub seed: u64,
    /// The length of the image offered.
    pub image_bytes: u64,
    /// How long each stall lasted, in seconds.
    pub stall_seconds: u64,
    /// Each trial, kills first.
    pub trials: Vec<Trial>,
    /// How many trials ended each way, by fault and outcome (`kill: network`, ...).
    pub classes: Vec<(String, usize)>,
    /// The campaign was stopped before every trial ended.
    pub stopped: bool,
    /// From the first cell to the last, in milliseconds.
    pub wall_ms: u64,
}

impl ServerReport {
    /// Trials where something required did not hold (the rig's errors aside).
    pub fn failing(&self) -> impl Iterator<Item = &Trial> {
        self.trials.iter().filter(|t| !t.holds() && !t.is_error())
    }
}

/// Progress of the campaign.
#[derive(Debug)]
pub enum ServerCampaignEvent<'a> {
    /// The trials are drawn; the cells start.
    Planned {
        /// Each trial's fault and offset.
        trials: &'a [(ServerFault, u64)],
        /// The length of the image offered.
        image_bytes: u64,
        /// The device the cells run on.
        device: &'a str,
    },
    /// What the run reports.
    Run(RunEvent<'a>),
    /// A trial's two cells ended and were read back.
    Trial {
        /// How many trials have ended.
        done: usize,
        /// How many there are.
        total: usize,
        /// What the trial found.
        trial: &'a Trial,
    },
}

/// What the run's events say about each cell, by scenario id: its result and the bytes its
/// flashing wrote.
#[derive(Default)]
struct Seen {
    results: HashMap<String, CellRecord>,
    written: HashMap<String, usize>,
}

/// Runs the campaign: the trials' cells in order on one device of `options`' run (its `out` a
/// fresh directory). With `keep`, the transcripts of trials that did not hold go to
/// `keep/transcripts/`.
pub fn run_server_faults(
    dirs: &LabDirs,
    campaign: &ServerCampaign,
    options: &RunOptions,
    keep: Option<&std::path::Path>,
    on_event: impl Fn(ServerCampaignEvent<'_>) + Sync,
) -> Result<ServerReport, FaultsError> {
    let plan = super::update_plan(dirs, &campaign.firmware, &campaign.scenario)?;
    let base = plan.scenarios[0].clone();
    if base.fault.is_some() {
        return Err(FaultsError::HasFault { scenario: base.id, what: "server fault" });
    }
    let image_bytes = super::offered_len(&plan)?;
    let trials = trial_points(image_bytes, campaign);
    if trials.is_empty() {
        return Err(FaultsError::Nothing("no kill and no stall".to_owned()));
    }
    let mut variants = Vec::new();
    for &(fault, after) in &trials {
        let name = fault_name(fault, after);
        let mut failing = base.clone();
        failing.id = format!("{}@{name}", base.id);
        failing.fault = Some(match fault {
            ServerFault::Kill => Fault::Kill { after },
            ServerFault::Stall => Fault::Stall { after, seconds: campaign.stall_seconds },
        });
        // How the client ends is what is measured, not expected.
        failing.expect.remove(&campaign.firmware);
        let mut back = base.clone();
        back.id = format!("{}@{name}-back", base.id);
        variants.push(failing);
        variants.push(back);
    }
    let plan = super::with_variants(plan, variants);
    let mut options = options.clone();
    // One device, kept between the cells: the second cell of a trial meets the device the
    // first one left.
    options.reuse_twins = true;
    options.twins = 1;
    if let Some(lab) = &options.lab {
        options.lab = Some(one_device(lab, &plan)?);
    }
    let device = match &options.lab {
        Some(lab) => lab.devices.first().map(|d| d.id().to_owned()).unwrap_or_default(),
        None => "twin-1".to_owned(),
    };
    on_event(ServerCampaignEvent::Planned { trials: &trials, image_bytes, device: &device });

    let started = Instant::now();
    let seen = Mutex::new(Seen::default());
    let done = Mutex::new(0usize);
    let summary = crate::run::run(&plan, &options, |event| {
        match &event {
            RunEvent::Flashed { scenario, report, .. } => {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .written
                    .insert((*scenario).to_owned(), report.bytes_written());
            }
            RunEvent::CellFinished { index, result, .. } => {
                let trial_at = index / 2;
                let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                seen.results.insert(result.scenario.clone(), (*result).clone());
                if index % 2 == 1
                    && let Some(trial) = read_trial(&seen, &plan.scenarios, trial_at, &trials, &options.out)
                {
                    let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
                    *done += 1;
                    on_event(ServerCampaignEvent::Trial { done: *done, total: trials.len(), trial: &trial });
                }
            }
            _ => {}
        }
        on_event(ServerCampaignEvent::Run(event));
    })?;
    let wall_ms = started.elapsed().as_millis() as u64;
    let seen = seen.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut read: Vec<Trial> =
        (0..trials.len()).filter_map(|at| read_trial(&seen, &plan.scenarios, at, &trials, &options.out)).collect();
    if let Some(keep) = keep {
        for trial in read.iter_mut().filter(|t| !t.holds()) {
            let name = fault_name(trial.fault, trial.after);
            for (transcript, suffix) in trial.transcripts.clone().iter().zip(["", "-back"]) {
                let kept = super::keep_transcript(&options.out, transcript, keep, &format!("{name}{suffix}"))?;
                trial.kept.push(kept);
            }
        }
    }
    let mut classes: Vec<(String, usize)> = Vec::new();
    for trial in &read {
        let outcome = trial.outcome.map_or_else(|| "error".to_owned(), crate::results::short);
        let key = format!("{}: {outcome}", fault_label(trial.fault));
        match classes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => classes.push((key, 1)),
        }
    }
    Ok(ServerReport {
        firmware: campaign.firmware.clone(),
        scenario: base.id,
        seed: campaign.seed,
        image_bytes,
        stall_seconds: campaign.stall_seconds,
        trials: read,
        classes,
        stopped: summary.stopped,
        wall_ms,
    })
}

/// The kills, then the stalls, each at a distinct offset in `1..image_len` drawn from the seed,
/// in increasing order.
pub fn trial_points(image_len: u64, campaign: &ServerCampaign) -> Vec<(ServerFault, u64)> {
    let mut seeded = Seeded::new(campaign.seed);
    let mut points = Vec::new();
    let inside = image_len.saturating_sub(1);
    for (fault, count) in [(ServerFault::Kill, campaign.kills), (ServerFault::Stall, campaign.stalls)] {
        let wanted = (count as u64).min(inside) as usize;
        let mut offsets = std::collections::BTreeSet::new();
        while offsets.len() < wanted {
            offsets.insert(1 + seeded.up_to(inside.saturating_sub(1)));
        }
        points.extend(offsets.into_iter().map(|after| (fault, after)));
    }
    points
}

/// `kill-123456`, `stall-4096`.
fn fault_name(fault: ServerFault, after: u64) -> String {
    format!("{}-{after}", fault_label(fault))
}

/// `kill`, `stall`.
pub fn fault_label(fault: ServerFault) -> &'static str {
    match fault {
        ServerFault::Kill => "kill",
        ServerFault::Stall => "stall",
    }
}

/// The lab with only its first device of the firmware's chip.
fn one_device(lab: &LabConfig, plan: &crate::run::Plan) -> Result<LabConfig, FaultsError> {
    let chip = plan.cells.first().and_then(|cell| plan.fleet.get(&cell.firmware)).map(|firmware| firmware.chip);
    let device = lab
        .devices
        .iter()
        .find(|d| Some(d.chip()) == chip)
        .cloned()
        .ok_or_else(|| FaultsError::NoDevice("no device of the lab config has the firmware's chip".to_owned()))?;
    let mut one = lab.clone();
    one.devices = vec![device];
    Ok(one)
}

/// Trial `at`, once both its cells have ended.
fn read_trial(
    seen: &Seen,
    scenarios: &[crate::scenario::Scenario],
    at: usize,
    trials: &[(ServerFault, u64)],
    out: &std::path::Path,
) -> Option<Trial> {
    let (fault, after) = *trials.get(at)?;
    let failing = seen.results.get(&scenarios.get(2 * at)?.id)?;
    let back = seen.results.get(&scenarios.get(2 * at + 1)?.id)?;
    let outcome = failing.observed.as_ref().map(|o| o.outcome);
    let end = match (failing.verdict, outcome.map(|o| o.outcome)) {
        (Verdict::Error, _) | (_, None) => FaultEnd::Error,
        (_, Some(OutcomeClass::Updated)) => FaultEnd::WaitedOut,
        (_, Some(OutcomeClass::Timeout | OutcomeClass::Incomplete | OutcomeClass::Crashed | OutcomeClass::Unknown)) => {
            FaultEnd::Undecided
        }
        (_, Some(_)) => FaultEnd::Failed,
    };
    let trace = |record: &CellRecord| read_transcript(out, record).ok().map(|t| UpdateTrace::read(&t));
    let ran_from = trace(failing).and_then(|t| t.running);
    let booted_from = trace(back).and_then(|t| t.running);
    let error = [failing, back]
        .iter()
        .filter(|r| r.verdict == Verdict::Error)
        .map(|r| r.error.clone().unwrap_or_default())
        .next();
    Some(Trial {
        fault,
        after,
        end,
        outcome,
        left_as_it_was: seen.written.get(&back.scenario).map(|written| *written == 0),
        ran_from,
        booted_from,
        back: back.observed.as_ref().map(|o| o.outcome),
        error,
        board: back.board.clone(),
        duration_ms: failing.duration_ms + back.duration_ms,
        kept: Vec::new(),
        transcripts: [failing.transcript.clone(), back.transcript.clone()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(kills: usize, stalls: usize) -> ServerCampaign {
        ServerCampaign { firmware: "f".into(), scenario: "s".into(), kills, stalls, stall_seconds: 10, seed: 1 }
    }

    #[test]
    fn trials_are_kills_then_stalls_inside_the_image() {
        let points = trial_points(938_000, &campaign(3, 2));
        let kills: Vec<u64> = points.iter().filter(|(f, _)| *f == ServerFault::Kill).map(|(_, a)| *a).collect();
        assert_eq!((kills.len(), points.len()), (3, 5));
        assert!(points.iter().all(|(_, after)| (1..938_000).contains(after)), "{points:?}");
        assert!(kills.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(trial_points(938_000, &campaign(3, 2)), points, "the same seed, the same points");
        assert_eq!(trial_points(3, &campaign(5, 0)).len(), 2, "as many as the image has inside it");
    }

    #[test]
    fn a_trial_holds_when_the_device_boots_as_it_was_left_and_updates_once_the_server_is_back() {
        let network = Outcome::of(OutcomeClass::Network);
        let updated = Outcome::of(OutcomeClass::Updated);
        let trial = Trial {
            fault: ServerFault::Kill,
            after: 1000,
            end: FaultEnd::Failed,
            outcome: Some(network),
            left_as_it_was: Some(true),
            ran_from: Some(0x10000),
            booted_from: Some(0x10000),
            back: Some(updated),
            error: None,
            board: "twin-1".into(),
            duration_ms: 900,
            kept: Vec::new(),
            transcripts: Default::default(),
        };
        assert!(trial.holds());
        assert!(!Trial { left_as_it_was: Some(false), ..trial.clone() }.holds(), "reflashed: proves nothing");
        assert!(!Trial { booted_from: Some(0x110000), ..trial.clone() }.holds(), "not the old firmware");
        assert!(!Trial { back: Some(network), ..trial.clone() }.holds(), "no update once back");
        assert!(!Trial { end: FaultEnd::Undecided, ..trial.clone() }.holds());
        let waited = Trial { end: FaultEnd::WaitedOut, outcome: Some(updated), left_as_it_was: Some(false), ..trial };
        assert!(waited.holds(), "a stall waited out needs only the next update");
    }
}
