//! Fleet images: how long it takes to build and verify every firmware manifest's app and
//! bootloader images, and how long `inspect` takes on a 4 MB merged flash image.
//!
//! Why: a lab run starts by building the fleet's images for the twin, and `inspect` is run on
//! flash dumps pulled from field devices; neither may be the slow part of a run.
//!
//! `cargo bench --bench fleet_images` (release): median of 7 runs each, with checks that the
//! results are right (every image valid, every inspection finds the apps, the partition table
//! and the trust material). Under `cargo test --benches` it does one quick checked pass.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use otarig::firmware::{Fleet, build::build};
use otarig::image::build::merged_flash;
use otarig::image::inspect::{Layout, inspect};
use otarig::image::otadata::{OTADATA_SIZE, Otadata};
use otarig::image::parse_app;
use otarig::pki::LabPki;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let runs = if benching { 7 } else { 1 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pki = LabPki::open(&root.join("scenarios/pki")).expect("lab PKI");
    let fleet = Fleet::load(&root.join("firmware-images"), &pki).expect("fleet");

    // Build and verify the whole fleet.
    let mut build_times = Vec::new();
    let mut bytes = 0usize;
    let mut images = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        images.clear();
        bytes = 0;
        for firmware in &fleet.manifests {
            let built = build(firmware, &fleet, &pki).expect("build");
            let app = parse_app(&built.app).expect("app parses");
            assert!(app.is_valid(), "{}", firmware.id);
            assert!(parse_app(&built.bootloader).expect("bootloader parses").is_valid());
            bytes += built.app.len() + built.bootloader.len();
            images.push(built);
        }
        build_times.push(started.elapsed());
    }

    // A 4 MB merged flash image: bootloader, table, otadata, factory and ota_0 apps.
    let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    otadata.set_boot_slot(0, 2, false);
    let (a, b) = (&images[0].app, &images[1].app);
    let flash = merged_flash(0x400000, &images[0].bootloader, Some(&otadata), &[(0x10000, a), (0x110000, b)]);
    let mut inspect_times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let inspection = inspect(&flash, 1_795_564_800, &[]);
        inspect_times.push(started.elapsed());
        assert_eq!(inspection.layout, Layout::MergedFlash);
        assert_eq!(inspection.apps.len(), 2);
        assert!(inspection.apps.iter().all(|app| app.image.as_ref().is_ok_and(otarig::image::AppImage::is_valid)));
        assert!(!inspection.trust.is_empty());
    }

    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let build_median = median(&mut build_times);
    let inspect_median = median(&mut inspect_times);
    println!(
        "fleet_images: built and verified {} firmware (app + bootloader, {:.1} MB) in {:.1} ms (median of {runs})",
        fleet.manifests.len(),
        bytes as f64 / 1e6,
        build_median.as_secs_f64() * 1e3
    );
    println!(
        "fleet_images: inspect of a 4 MB merged flash image (bootloader, table, otadata, 2 apps): {:.1} ms, {:.0} MB/s",
        inspect_median.as_secs_f64() * 1e3,
        4.194304 / inspect_median.as_secs_f64()
    );
}
