//! The update server killed or stalled in the middle of a download, on twins through the
//! campaign's library entry point: the device fails as its ESP-IDF release's client does (or
//! waits a stall out), still boots its old firmware, and updates once the server is back.

use std::path::Path;
use std::time::Duration;

use otarig::faults::server::{FaultEnd, ServerCampaign, ServerFault, run_server_faults};
use otarig::outcome::OutcomeClass;
use otarig::run::{LabDirs, RunOptions, WatchLimits};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn campaign(firmware: &str, kills: usize, stalls: usize) -> otarig::faults::server::ServerReport {
    let tmp = TempDir::new(&format!("faults-server-{firmware}"));
    let dirs = LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") };
    let campaign = ServerCampaign {
        firmware: firmware.into(),
        scenario: "le-short-chain".into(),
        kills,
        stalls,
        // Past the client's 5 s wait for a read.
        stall_seconds: 6,
        seed: 5,
    };
    let options =
        RunOptions { limits: WatchLimits::new(Duration::from_secs(20)), ..RunOptions::new(tmp.0.join("run")) };
    let kept = tmp.0.join("kept");
    let report = run_server_faults(&dirs, &campaign, &options, Some(&kept), |_| {}).unwrap();
    assert!(!kept.exists(), "every trial held: nothing kept");
    report
}

#[test]
fn a_v3_2_device_fails_boots_its_old_firmware_and_updates_once_the_server_is_back() {
    let report = campaign("isrg-x1-idf3.2", 2, 1);
    assert_eq!(report.trials.len(), 3);
    for trial in &report.trials {
        // A reset is a network failure; v3.2 takes a silence for the end of the image.
        let class = match trial.fault {
            ServerFault::Kill => OutcomeClass::Network,
            ServerFault::Stall => OutcomeClass::ImageInvalid,
        };
        assert_eq!((trial.end, trial.outcome.map(|o| o.outcome)), (FaultEnd::Failed, Some(class)), "{trial:?}");
        assert_eq!(trial.left_as_it_was, Some(true), "nothing was reflashed: {trial:?}");
        assert_eq!((trial.ran_from, trial.booted_from), (Some(0x10000), Some(0x10000)), "the old firmware: {trial:?}");
        assert_eq!(trial.back.map(|o| o.outcome), Some(OutcomeClass::Updated), "{trial:?}");
        assert!(trial.holds(), "{trial:?}");
    }
    assert_eq!(report.failing().count(), 0);
}

#[test]
fn a_v5_2_device_waits_a_stall_out_and_fails_a_kill() {
    let report = campaign("bundle-idf5.2", 1, 1);
    let ends: Vec<(ServerFault, FaultEnd, Option<OutcomeClass>)> =
        report.trials.iter().map(|t| (t.fault, t.end, t.outcome.map(|o| o.outcome))).collect();
    assert_eq!(
        ends,
        [
            (ServerFault::Kill, FaultEnd::Failed, Some(OutcomeClass::Network)),
            (ServerFault::Stall, FaultEnd::WaitedOut, Some(OutcomeClass::Updated)),
        ]
    );
    assert!(report.trials.iter().all(otarig::faults::server::Trial::holds), "{:#?}", report.trials);
    assert_eq!(report.classes, [("kill: network".to_owned(), 1), ("stall: updated".to_owned(), 1)]);
}
