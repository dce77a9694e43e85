//! A board's serial port vanishing in the middle of a cell, as a USB hub drops it: `otarig
//! run`'s runner must end that cell as the rig's error, let the board leave the run and run its
//! other cells on the other board, and keep every result. The boards are twins reached through
//! the serial backend by udev-like links; one twin's port vanishes at a seeded point.

use std::path::Path;
use std::time::Duration;

use otarig::faults::vanish::{PortVanishCampaign, PortVanishEvent, run_port_vanish};
use otarig::results::{Verdict, read_results};
use otarig::run::{LabDirs, RunEvent, RunOptions, Selection, WatchLimits};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_vanished_board_s_cell_is_an_error_the_other_board_runs_the_rest_and_every_result_is_kept() {
    // Two points (which cell of the board's it hits depends on how the boards shared the cells:
    // flashing, or reading the console).
    for seed in [1, 3] {
        let tmp = TempDir::new(&format!("faults-vanish-{seed}"));
        let dirs =
            LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") };
        let selection = Selection {
            firmware: vec!["dst-x3-idf3.2".into(), "isrg-x1-idf3.2".into()],
            scenarios: ["dst-cross-sign-rescue", "gts-chain", "le-short-chain", "le-long-chain-2021"]
                .map(String::from)
                .to_vec(),
            ..Selection::default()
        };
        let campaign = PortVanishCampaign { selection, boards: 2, seed };
        let out = tmp.0.join("run");
        let options = RunOptions { limits: WatchLimits::new(Duration::from_secs(20)), ..RunOptions::new(&out) };
        let left = std::sync::Mutex::new(Vec::new());
        let report = run_port_vanish(&dirs, &campaign, &options, None, |event| {
            if let PortVanishEvent::Run(RunEvent::BoardLeft { board, .. }) = event {
                left.lock().unwrap().push(board.to_owned());
            }
        })
        .unwrap();

        assert!(report.vanished, "{report:#?}");
        for check in &report.checks {
            assert!(check.held, "seed {seed}: {}: {}", check.what, check.found);
        }
        assert!(report.holds());
        assert_eq!(*left.lock().unwrap(), std::slice::from_ref(&report.point.board));

        // The results as a reader finds them: a valid line for each of the 8 cells.
        let lines = read_results(&out).unwrap();
        assert_eq!(lines.len(), 8);
        let vanished = &report.point.board;
        let errors: Vec<_> = lines.iter().filter(|l| l.verdict == Verdict::Error).collect();
        assert_eq!(errors.len(), 1, "only the cell under way: {errors:#?}");
        assert_eq!(&errors[0].board, vanished);
        let error = errors[0].error.as_deref().unwrap();
        let during = error.contains("reading the console") || error.contains("flashing");
        assert!(during && error.contains("left the run"), "seed {seed}: {error}");
        let other = lines.iter().filter(|l| &l.board != vanished);
        assert!(other.clone().count() >= 4, "the other board ran the rest");
        assert!(other.clone().all(|l| l.verdict == Verdict::Pass || l.verdict == Verdict::Observed), "{lines:#?}");
        // Every line with an outcome has its transcript.
        for line in lines.iter().filter(|l| l.observed.is_some()) {
            assert!(out.join(&line.transcript).is_file(), "{}", line.transcript);
        }
    }
}
