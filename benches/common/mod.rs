//! What the run benchmarks share: the shipped lab, the scenarios they can time, and the check
//! every finished cell passes.

use std::path::Path;

use otarig::results::{CellRecord, Verdict};
use otarig::run::{LabDirs, Plan, Selection};
use otarig::scenario::{Fault, Scenario};

/// The shipped scenarios and fleet.
pub fn shipped_dirs() -> LabDirs {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    LabDirs { scenarios: root.join("scenarios"), fleet: root.join("firmware-images") }
}

/// The paths of the shipped scenarios that `keep` keeps and whose faults take no set time
/// (stall, throttle): a benchmark measures the rig, not a scenario's waiting.
pub fn untimed_scenarios(keep: impl Fn(&Scenario) -> bool) -> Vec<String> {
    let lab = Plan::new(&shipped_dirs(), &Selection::default()).expect("the shipped lab");
    let timed = |fault: &Option<Fault>| matches!(fault, Some(Fault::Stall { .. } | Fault::Throttle { .. }));
    lab.scenarios
        .iter()
        .filter(|s| keep(s) && !timed(&s.fault) && !s.hosts.iter().any(|h| timed(&h.fault)))
        .map(|s| s.path.display().to_string())
        .collect()
}

/// A finished cell's `outcome reason` (`-` for none), once it is known neither the rig's
/// error nor a failed expectation: a benchmark of a broken run measures nothing.
pub fn checked_outcome(result: &CellRecord) -> String {
    assert!(
        !matches!(result.verdict, Verdict::Error | Verdict::Fail),
        "{} x {}: {:?} {:?}",
        result.firmware,
        result.scenario,
        result.verdict,
        result.error
    );
    let observed = result.observed.as_ref().expect("observed");
    let reason = observed.outcome.reason.map_or("-".to_owned(), |r| format!("{r:?}"));
    format!("{:?} {reason}", observed.outcome.outcome)
}
