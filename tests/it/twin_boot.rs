//! The twin's boot output: ROM, 2nd-stage bootloader and app start-up computed from flash
//! images built for the fleet's manifests, read back by the console classifier.

use std::path::Path;
use std::sync::OnceLock;

use otarig::console::{EventKind, events_of};
use otarig::firmware::Fleet;
use otarig::firmware::build::{BuiltFirmware, build};
use otarig::image::otadata::{OTADATA_SIZE, Otadata};
use otarig::image::parse_app;
use otarig::image::partition::{TABLE_MAX_LEN, two_ota_table};
use otarig::pki::LabPki;
use otarig::twin::boot::{BootOutcome, Booted, ResetReason, boot_log};
use otarig::twin::clock::BootClock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FLASH_SIZE: usize = 0x40_0000;
const FACTORY: usize = 0x10000;
const OTA_0: usize = 0x110000;

fn built(id: &str) -> &'static BuiltFirmware {
    static FLEET: OnceLock<Vec<(String, BuiltFirmware)>> = OnceLock::new();
    let all = FLEET.get_or_init(|| {
        let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
        let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
        fleet.manifests.iter().map(|m| (m.id.clone(), build(m, &fleet, &pki).unwrap())).collect()
    });
    &all.iter().find(|(name, _)| name == id).unwrap_or_else(|| panic!("no manifest {id}")).1
}

/// A 4 MB flash: `bootloader_of`'s bootloader, the two-OTA table, otadata, the factory app and
/// optionally an app in ota_0.
fn flash(bootloader_of: &str, factory: Option<&[u8]>, ota_0: Option<&[u8]>, otadata: Option<Otadata>) -> Vec<u8> {
    let mut flash = vec![0xFF; FLASH_SIZE];
    let mut put = |at: usize, bytes: &[u8]| flash[at..at + bytes.len()].copy_from_slice(bytes);
    put(0x1000, &built(bootloader_of).bootloader);
    let mut table = two_ota_table().to_bin().unwrap();
    table.resize(TABLE_MAX_LEN, 0xFF);
    put(0x8000, &table);
    put(0xd000, &otadata.map_or(vec![0xFF; OTADATA_SIZE], |o| o.encode()));
    if let Some(app) = factory {
        put(FACTORY, app);
    }
    if let Some(app) = ota_0 {
        put(OTA_0, app);
    }
    flash
}

fn boot(flash: &[u8], reset: ResetReason) -> BootOutcome {
    boot_log(flash, reset, &mut BootClock::new(7), &[])
}

fn text(outcome: &BootOutcome) -> String {
    String::from_utf8(outcome.bytes.clone()).unwrap()
}

/// Otadata that selects ota_0, as `esp_ota_set_boot_partition` writes it.
fn selecting_ota_0() -> Otadata {
    let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    otadata.set_boot_slot(0, 2, false);
    otadata
}

/// Readable for review: escape codes shown as `␛`, line ends checked and dropped.
fn reviewable(outcome: &BootOutcome) -> String {
    let text = text(outcome);
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'), "every line ends in CRLF");
    text.replace("\r\n", "\n").replace('\x1b', "␛")
}

fn idf_timestamps(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(|c: char| c != 'I' && c != 'E' && c != 'W');
            let rest = line.get(1..)?.strip_prefix(" (")?;
            rest.split_once(')')?.0.parse().ok()
        })
        .collect()
}

#[test]
fn factory_boots_in_each_dialect() {
    for id in ["dst-x3-idf3.2", "pinned-r3-idf4.4", "private-root-idf5.2", "bundle-idf5.4"] {
        let app = &built(id).app;
        let outcome = boot(&flash(id, Some(app), None, None), ResetReason::PowerOn);
        let expected_idf = match id {
            "dst-x3-idf3.2" => "v3.2",
            "pinned-r3-idf4.4" => "v4.4.8",
            "private-root-idf5.2" => "v5.2.5",
            _ => "v5.4.2",
        };
        assert_eq!(ended(&outcome.result), app_at(0x10000, expected_idf), "{id}");
        insta::assert_snapshot!(format!("factory_{id}"), reviewable(&outcome));
    }
}

#[test]
fn timestamps_restart_rise_and_stay_plausible() {
    let app = &built("private-root-idf5.2").app;
    let flash = flash("private-root-idf5.2", Some(app), None, None);
    let mut clock = BootClock::new(1);
    let first = boot_log(&flash, ResetReason::PowerOn, &mut clock, &[]);
    let again = boot_log(&flash, ResetReason::SoftwareCpu, &mut clock, &[]);
    for outcome in [&first, &again] {
        let text = text(outcome);
        let bootloader_end = text.find("Disabling RNG").unwrap();
        let stamps = idf_timestamps(&text[..bootloader_end]);
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
        assert!((20..60).contains(&stamps[0]), "{stamps:?}");
        assert!((20..=500).contains(stamps.last().unwrap()), "{stamps:?}");
    }
    assert!(text(&again).contains("rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"));
    let seeded = |seed| boot_log(&flash, ResetReason::PowerOn, &mut BootClock::new(seed), &[]).bytes;
    assert_eq!(seeded(3), seeded(3), "a seeded clock gives the same log");
}

#[test]
fn otadata_selects_ota_0() {
    let factory = &built("dst-x3-idf3.2").app;
    let update = &built("v2.0.0").app;
    let outcome =
        boot(&flash("dst-x3-idf3.2", Some(factory), Some(update), Some(selecting_ota_0())), ResetReason::SoftwareCpu);
    let text = text(&outcome);
    assert!(text.contains("I (") && text.contains(" boot: Loaded app from partition at offset 0x110000\x1b[0m\r\n"));
    assert!(!text.contains("Defaulting to factory image"));
    assert!(text.contains("esp_image: segment 0: paddr=0x00110020 vaddr=0x3f400020"), "v3.2 bootloader format");
    assert!(text.contains("cpu_start: ESP-IDF:          v5.2.5"), "the app speaks its own version");
    assert_eq!(ended(&outcome.result), app_at(0x110000, "v5.2.5"));
}

#[test]
fn a_corrupt_ota_0_falls_back_to_factory() {
    let factory = &built("pinned-r3-idf4.4").app;
    let mut update = built("v2.0.0").app.clone();
    let image = parse_app(&update).unwrap();
    update[image.segments[2].data_offset + 10] ^= 0x01; // IRAM data: the checksum no longer adds up
    let outcome =
        boot(&flash("pinned-r3-idf4.4", Some(factory), Some(&update), Some(selecting_ota_0())), ResetReason::PowerOn);
    assert_eq!(ended(&outcome.result), app_at(0x10000, "v4.4.8"));
    insta::assert_snapshot!("corrupt_ota_0_v4.4_bootloader", reviewable(&outcome));

    let events: Vec<EventKind> = events_of(&outcome.bytes).into_iter().map(|e| e.kind).collect();
    assert!(events.contains(&EventKind::ImageCorrupt), "{events:?}");
    assert!(events.contains(&EventKind::SlotNotBootable), "{events:?}");
    assert!(events.contains(&EventKind::AppLoaded { offset: 0x10000 }), "{events:?}");
}

#[test]
fn a_wrong_hash_is_named_in_the_v3_2_dialect() {
    let factory = &built("dst-x3-idf3.2").app;
    let mut update = built("v2.0.0").app.clone();
    let last = update.len() - 1;
    update[last] ^= 0xFF; // inside the appended SHA-256
    let outcome =
        boot(&flash("dst-x3-idf3.2", Some(factory), Some(&update), Some(selecting_ota_0())), ResetReason::PowerOn);
    let text = text(&outcome);
    let at = |line: &str| text.find(line).unwrap_or_else(|| panic!("{line}\n{text}"));
    let first_error = text.lines().find(|line| line.contains("E (")).unwrap();
    assert!(first_error.starts_with("\x1b[0;31mE ("), "errors in red: {first_error:?}");
    assert!(first_error.ends_with(" esp_image: Image hash failed - image is corrupt\x1b[0m"), "{first_error:?}");
    assert!(at("boot: OTA app partition slot 0 is not bootable") < at("Loaded app from partition at offset 0x10000"));
    assert!(!text.contains("Checksum failed"));
}

#[test]
fn nothing_bootable_ends_in_the_bootloader() {
    let outcome = boot(&flash("private-root-idf5.2", None, None, Some(selecting_ota_0())), ResetReason::PowerOn);
    assert_eq!(ended(&outcome.result), "no bootable app");
    let text = text(&outcome);
    let order = [
        "esp_image: image at 0x110000 has invalid magic byte (nothing flashed here?)",
        "boot: OTA app partition slot 0 is not bootable",
        "esp_image: image at 0x10000 has invalid magic byte (nothing flashed here?)",
        "boot: Factory app partition is not bootable",
        "esp_image: image at 0x210000 has invalid magic byte (nothing flashed here?)",
        "boot: OTA app partition slot 1 is not bootable",
        "boot: No bootable app partitions in the partition table",
    ];
    let positions: Vec<usize> =
        order.iter().map(|line| text.find(line).unwrap_or_else(|| panic!("{line}\n{text}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn the_classifier_reads_the_boot() {
    let factory = &built("private-root-idf5.2").app;
    let update = &built("bundle-idf4.4").app;
    let outcome = boot(
        &flash("private-root-idf5.2", Some(factory), Some(update), Some(selecting_ota_0())),
        ResetReason::SoftwareCpu,
    );
    let events: Vec<EventKind> = events_of(&outcome.bytes).into_iter().map(|e| e.kind).collect();
    let wanted = [
        EventKind::Reset { code: 0xc, reason: "SW_CPU_RESET".into() },
        EventKind::RomEntry,
        EventKind::BootloaderStarted { idf: "v5.2.5".into() },
        EventKind::AppLoaded { offset: 0x110000 },
        EventKind::AppStarted,
        EventKind::AppVersion { version: "2.1.0".into() },
        EventKind::AppIdf { version: "v4.4.8".into() },
    ];
    let mut at = 0;
    for event in wanted {
        let found = events[at..].iter().position(|e| *e == event);
        at += found.unwrap_or_else(|| panic!("{event:?} missing or out of order in {events:?}")) + 1;
    }
}

#[test]
fn erased_flash_has_no_bootloader() {
    let outcome = boot(&vec![0xFF; FLASH_SIZE], ResetReason::PowerOn);
    assert_eq!(ended(&outcome.result), "no bootloader");
    let text = text(&outcome);
    assert_eq!(text.matches("Invalid header: 0xffffffff\r\n").count(), 1, "{text}");
    assert!(!text.contains("load:") && !text.contains("entry "));
    let events: Vec<EventKind> = events_of(&outcome.bytes).into_iter().map(|e| e.kind).collect();
    assert_eq!(events, [EventKind::Reset { code: 1, reason: "POWERON_RESET".into() }]);
}

/// Where a boot ended, with the app's partition and ESP-IDF version as its profile reads it.
fn ended(booted: &Booted) -> String {
    match booted {
        Booted::App { partition_offset, profile } => {
            let idf = profile.idf.as_ref().map_or("?".to_owned(), |idf| idf.value.to_string());
            app_at(*partition_offset, &idf)
        }
        Booted::NoBootableApp => "no bootable app".to_owned(),
        Booted::NoBootloader => "no bootloader".to_owned(),
    }
}

fn app_at(partition_offset: u32, idf: &str) -> String {
    format!("app at {partition_offset:#x}, ESP-IDF {idf}")
}
