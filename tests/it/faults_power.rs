//! The power-cut campaign on twins, through its library entry point: a seeded sample of cuts in
//! the image write with its boundaries, and the otadata write. After every cut the device must
//! boot the old or the new firmware, and end on the new one.

use std::path::Path;
use std::time::Duration;

use otarig::faults::boot::Landed;
use otarig::faults::power::{AfterCut, CutOrigin, CutPhase, PowerCutCampaign, PowerCutEvent, run_power_cuts};
use otarig::run::{LabDirs, RunOptions, WatchLimits};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dirs() -> LabDirs {
    LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") }
}

#[test]
fn every_cut_of_a_seeded_sample_lands_on_the_old_or_the_new_firmware_which_then_updates() {
    let tmp = TempDir::new("faults-power");
    let campaign = PowerCutCampaign {
        firmware: "isrg-x1-idf3.2".into(),
        scenario: "le-short-chain".into(),
        // With the 7 boundaries, 20 cuts of the image write.
        seeded: 13,
        seed: 7,
        only: Vec::new(),
    };
    let options = RunOptions {
        limits: WatchLimits::new(Duration::from_secs(20)),
        twins: 2,
        ..RunOptions::new(tmp.0.join("run"))
    };
    let keep = tmp.0.join("kept");
    let reported = std::sync::atomic::AtomicUsize::new(0);
    let report = run_power_cuts(&dirs(), &campaign, &options, Some(&keep), |event| {
        if let PowerCutEvent::Cut { .. } = event {
            reported.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();

    let image: Vec<_> = report.cuts.iter().filter(|c| c.phase == CutPhase::Image).collect();
    assert_eq!(image.len(), 20);
    assert_eq!(image.iter().filter(|c| c.origin == CutOrigin::Boundary).count(), 7);
    let offsets: Vec<u64> = image.iter().map(|c| c.bytes).collect();
    for boundary in [0, 1, 4095, 4096, 4097, report.image_bytes - 1, report.image_bytes] {
        assert!(offsets.contains(&boundary), "{boundary} in {offsets:?}");
    }
    for cut in &report.cuts {
        // Until the otadata entry is whole, the old firmware boots and updates again; with it,
        // the new one boots.
        let whole_entry = cut.phase == CutPhase::Otadata && cut.bytes == 32;
        let (landed, after) =
            if whole_entry { (Landed::New, AfterCut::NotNeeded) } else { (Landed::Old, AfterCut::Updated) };
        assert_eq!((cut.booted, cut.update), (Some(landed), after), "{cut:?}");
        assert_eq!(cut.loaded, Some(if whole_entry { 0x110000 } else { 0x10000 }), "{cut:?}");
    }
    let figures = &report.figures;
    assert_eq!((figures.cuts, figures.booted_old, figures.booted_new), (25, 24, 1));
    assert_eq!((figures.booted_nothing, figures.updated, figures.errors, figures.not_run), (0, 25, 0, 0));
    assert_eq!(reported.into_inner(), 25, "each cut reported as it ended");
    assert!(!keep.exists(), "nothing failed: no transcript kept");
}

fn otarig(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap()
}

#[test]
fn the_command_runs_the_cuts_it_is_given_and_refuses_a_scenario_without_an_update() {
    let base = ["faults", "power-cut", "--firmware", "bundle-idf5.2", "--scenario", "le-short-chain", "--twins", "2"];
    let output = otarig(&[&base[..], &["--only", "4096", "--only", "otadata:32", "--format", "json"]].concat());
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cuts: Vec<(&str, u64, &str, &str)> = report["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap();
            (text("phase"), c["bytes"].as_u64().unwrap(), text("booted"), text("update"))
        })
        .collect();
    assert_eq!(cuts, [("image", 4096, "old", "updated"), ("otadata", 32, "new", "not-needed")]);
    assert_eq!(report["figures"]["cuts"], 2);
    assert_eq!(report["seed"], 1, "the default seed, printed");

    // The founding failure is no update to cut into.
    let output = otarig(&["faults", "power-cut", "--firmware", "dst-x3-idf3.2", "--scenario", "gts-chain"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not expect `dst-x3-idf3.2` to update"));
    let output = otarig(&[&base[..], &["--only", "otadata:33"]].concat());
    assert_eq!(output.status.code(), Some(2), "a cut past the otadata entry is a usage error");
}
