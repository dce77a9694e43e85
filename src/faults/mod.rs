//! Fault campaigns: one firmware's update, many times, each with a fault at a point drawn from a
//! seed, to show that the fleet's update path survives faults and that the rig does too. Every
//! campaign is a plan of cells run by [`crate::run::run`] (the same stations, twins, boards,
//! servers, watch and `results.jsonl` as `otarig run`), read back cell by cell:
//!
//! - [`power`]: power cuts at byte offsets of the image write and in the otadata write; after
//!   each the device must boot the old or the new firmware, and update;
//! - [`vanish`]: a board's serial port vanishing in the middle of a cell (a USB hub dropping
//!   it); the run must end that board's cells as the rig's errors, go on with the other devices
//!   and keep every result;
//! - [`server`]: the update server killed or stalled in the middle of a download; the device
//!   must fail as its ESP-IDF client does, still boot its old firmware, and update once the
//!   server is back;
//! - [`boot`]: what a transcript says about the device's boots (the partition loaded, the app
//!   started);
//! - `seed`: the seeded numbers the fault points are drawn from.
//!
//! The library reports progress as events and never prints; a campaign's report is data, its
//! text and JSON are the command line's.

pub mod boot;
pub mod power;
mod seed;
pub mod server;
pub mod vanish;

use std::path::{Path, PathBuf};

use crate::lab::DeviceSpec;
use crate::outcome::Outcome;
use crate::results::CellRecord;
use crate::run::{Cell, LabDirs, Plan, PlanError, RunError, RunOptions, Selection};
use crate::scenario::Scenario;

/// The seed a campaign draws from unless given another.
pub const DEFAULT_SEED: u64 = 1;

/// A campaign that could not run (what it found is in its report, never here).
#[derive(Debug, thiserror::Error)]
pub enum FaultsError {
    /// The lab's files, or the firmware or scenario named, do not load.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The run under the campaign could not go on (its directory, its output, its services).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The scenario does not expect the firmware to update: a fault would not be measured
    /// against an update that succeeds.
    #[error("scenario `{scenario}` does not expect `{firmware}` to update ({})", expected_text(.expected))]
    NotAnUpdate {
        /// The firmware's id.
        firmware: String,
        /// The scenario's id.
        scenario: String,
        /// What the scenario expects of the firmware instead.
        expected: Option<Outcome>,
    },
    /// The scenario already injects a fault of the kind the campaign injects.
    #[error("scenario `{scenario}` has a {what} of its own; the campaign sets its own at each point")]
    HasFault {
        /// The scenario's id.
        scenario: String,
        /// `power cut` or `server fault`.
        what: &'static str,
    },
    /// The image offered as the update could not be made (to know its length).
    #[error("the update `{id}`: {source}")]
    Update {
        /// The release's id.
        id: String,
        /// Why.
        source: Box<crate::firmware::prepare::PrepareError>,
    },
    /// No device of the lab can take the campaign's cells.
    #[error("{0}")]
    NoDevice(String),
    /// A cell's transcript could not be read back, or kept.
    #[error("{path}: {source}")]
    Transcript {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// What the campaign sets up around the run (twins standing in for boards, their links,
    /// loopback ports) could not be made.
    #[error("{what}: {source}")]
    Bench {
        /// What was being made.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A campaign that needs points has none to run (`--only` matching nothing, zero trials).
    #[error("nothing to run: {0}")]
    Nothing(String),
}

fn expected_text(expected: &Option<Outcome>) -> String {
    match expected {
        Some(outcome) => format!("it expects {outcome}"),
        None => "it expects nothing of it".to_owned(),
    }
}

/// The plan of one firmware against one scenario, whose expectation for the firmware must be
/// `updated`.
fn update_plan(dirs: &LabDirs, firmware: &str, scenario: &str) -> Result<Plan, FaultsError> {
    let selection =
        Selection { firmware: vec![firmware.to_owned()], scenarios: vec![scenario.to_owned()], ..Selection::default() };
    let plan = Plan::new(dirs, &selection)?;
    let base = &plan.scenarios[0];
    let expected = base.expect.get(firmware).map(crate::scenario::Expectation::outcome);
    if expected.is_none_or(|e| e.outcome != crate::outcome::OutcomeClass::Updated) {
        return Err(FaultsError::NotAnUpdate { firmware: firmware.to_owned(), scenario: base.id.clone(), expected });
    }
    Ok(plan)
}

/// `plan` with `variants` of its scenario in its place, one cell of its firmware each, in
/// order.
fn with_variants(mut plan: Plan, variants: Vec<Scenario>) -> Plan {
    let firmware = plan.cells.first().map(|cell| cell.firmware.clone()).unwrap_or_default();
    plan.cells = (0..variants.len()).map(|scenario| Cell { firmware: firmware.clone(), scenario }).collect();
    plan.unsharded = plan.cells.len();
    plan.scenarios = variants;
    plan
}

/// The length of the image the plan's scenario offers as the update.
fn offered_len(plan: &Plan) -> Result<u64, FaultsError> {
    let id = plan.scenarios[0].image.clone().unwrap_or_default();
    let release = plan.fleet.get(&id).ok_or_else(|| {
        FaultsError::Plan(PlanError::UnknownImage { scenario: plan.scenarios[0].id.clone(), image: id.clone() })
    })?;
    let prepared = crate::firmware::prepare::prepare(release, &plan.fleet, &plan.pki)
        .map_err(|source| FaultsError::Update { id: id.clone(), source: Box::new(source) })?;
    Ok(prepared.app.len() as u64)
}

/// Whether a device of the run can cut its power at a point of an update: a twin of the
/// firmware's chip (the run's own twins when it has no lab config).
fn check_power_cut_devices(plan: &Plan, options: &RunOptions) -> Result<(), FaultsError> {
    let Some(lab) = &options.lab else { return Ok(()) };
    let chip = plan.cells.first().and_then(|cell| plan.fleet.get(&cell.firmware)).map(|firmware| firmware.chip);
    let twin = lab.devices.iter().any(|device| matches!(device, DeviceSpec::Twin(_)) && Some(device.chip()) == chip);
    if twin {
        return Ok(());
    }
    Err(FaultsError::NoDevice(
        "power cuts at a byte of the update are armed on twins, and the lab has no twin of the firmware's chip \
         (a board's power command cuts at no particular byte)"
            .to_owned(),
    ))
}

/// A cell's transcript, read back from the run's directory.
fn read_transcript(out: &Path, record: &CellRecord) -> Result<Vec<u8>, FaultsError> {
    let path = out.join(&record.transcript);
    std::fs::read(&path).map_err(|source| FaultsError::Transcript { path, source })
}

/// Copies a cell's transcript (`transcript`, relative to the run's directory `out`) to
/// `keep/transcripts/NAME.log`; the path written.
fn keep_transcript(out: &Path, transcript: &str, keep: &Path, name: &str) -> Result<PathBuf, FaultsError> {
    let dir = keep.join("transcripts");
    std::fs::create_dir_all(&dir).map_err(|source| FaultsError::Transcript { path: dir.clone(), source })?;
    let to = dir.join(format!("{name}.log"));
    let from = out.join(transcript);
    match std::fs::copy(&from, &to) {
        Ok(_) => Ok(to),
        // A cell that never got as far as a console has no transcript: an empty one is kept.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&to, b"").map_err(|source| FaultsError::Transcript { path: to.clone(), source })?;
            Ok(to)
        }
        Err(source) => Err(FaultsError::Transcript { path: from, source }),
    }
}
