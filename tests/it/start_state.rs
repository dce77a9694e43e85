//! The device's starting state (`[device] start`): parsed with located errors; the flash it
//! gives boots on the twin's bootloader from the expected partition with the expected otadata
//! entries, rollback firmware gives up an entry still on trial; and a device that runs from
//! ota_0 takes the update to ota_1.

use std::path::Path;

use otarig::firmware::build::{BuiltFirmware, build};
use otarig::firmware::start::{StartError, StartState, start_flash, start_regions};
use otarig::image::otadata::{OTADATA_SIZE, OtaState, Otadata};
use otarig::image::partition::two_ota_table;
use otarig::outcome::OutcomeClass;
use otarig::pki::SpecErrorKind;
use otarig::replay::replay_bytes;
use otarig::scenario::{Scenario, ScenarioError, ScenarioErrorKind};
use otarig::toml_source::TomlSource;
use otarig::twin::boot::{Booted, ResetReason, boot_log};
use otarig::twin::clock::BootClock;

use crate::common;

use common::ota_cell::{Dns, Source, lab, load_scenario, run_flash_then};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FLASH_SIZE: usize = 4 << 20;
const FACTORY: u32 = 0x10000;
const OTA_0: u32 = 0x110000;
const OTA_1: u32 = 0x210000;
const OTADATA: u32 = 0xd000;

fn images(firmware: &str) -> BuiltFirmware {
    let lab = lab();
    build(lab.fleet.get(firmware).unwrap(), &lab.fleet, &lab.pki).unwrap()
}

// --- the scenario key ---

fn check(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_source(&TomlSource::new("case.toml", text), &lab().pki)
}

fn error_of(text: &str) -> (SpecErrorKind, usize, usize) {
    match check(text) {
        Err(ScenarioError::Spec(err)) => (err.kind, err.location.line, err.location.column),
        other => panic!("expected a spec error, got {other:?}"),
    }
}

fn invalid_of(text: &str) -> (ScenarioErrorKind, usize, usize) {
    match check(text) {
        Err(ScenarioError::Invalid { location, kind }) => (kind, location.line, location.column),
        other => panic!("expected a scenario value error, got {other:?}"),
    }
}

/// Eight lines; `[device]` is line 7, `start` line 8.
fn with_start(start: &str) -> String {
    format!(
        "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n[device]\nstart = {start}\n"
    )
}

#[test]
fn start_states_parse_with_their_defaults() {
    let base = "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n";
    assert_eq!(check(base).unwrap().start, StartState::Factory, "no [device]: the factory app");
    assert_eq!(check(&format!("{base}[device]\n")).unwrap().start, StartState::Factory);
    let cases = [
        ("{ slot = \"factory\" }", StartState::Factory),
        ("{}", StartState::Factory),
        ("{ slot = \"ota_0\" }", StartState::Ota { index: 0, state: OtaState::Valid }),
        ("{ slot = \"ota_1\", state = \"valid\" }", StartState::Ota { index: 1, state: OtaState::Valid }),
        ("{ slot = \"ota_0\", state = \"new\" }", StartState::Ota { index: 0, state: OtaState::New }),
        (
            "{ slot = \"ota_1\", state = \"pending-verify\" }",
            StartState::Ota { index: 1, state: OtaState::PendingVerify },
        ),
        ("{ slot = \"ota_0\", state = \"undefined\" }", StartState::Ota { index: 0, state: OtaState::Undefined }),
    ];
    for (written, expected) in cases {
        assert_eq!(check(&with_start(written)).unwrap_or_else(|e| panic!("{written}: {e}")).start, expected);
    }
    let both = check(&format!("{base}[device]\nstart = {{ slot = \"ota_0\" }}\npower_cut = \"otadata-write\"\n"));
    let both = both.unwrap();
    assert_eq!(both.start, StartState::Ota { index: 0, state: OtaState::Valid });
    assert_eq!(both.power_cut, Some(otarig::firmware::start::PowerCut::OtadataWrite));
}

#[test]
fn unknown_start_values_are_located_where_written() {
    // start = { slot = "ota_2" }: the value starts at column 18.
    let (kind, line, column) = invalid_of(&with_start("{ slot = \"ota_2\" }"));
    assert_eq!(kind, ScenarioErrorKind::StartSlot { slot: "ota_2".into() });
    assert_eq!((line, column), (8, 18));
    // start = { slot = "ota_0", state = "aborted" }: column 35.
    let (kind, line, column) = invalid_of(&with_start("{ slot = \"ota_0\", state = \"aborted\" }"));
    assert_eq!(kind, ScenarioErrorKind::StartState { state: "aborted".into() });
    assert_eq!((line, column), (8, 35));
    // A state for the factory app (which has no otadata entry) is refused at the state.
    let (kind, line, column) = invalid_of(&with_start("{ slot = \"factory\", state = \"valid\" }"));
    assert_eq!(kind, ScenarioErrorKind::FactoryStartState { state: "valid".into() });
    assert_eq!((line, column), (8, 37));
    let (kind, line, column) = invalid_of(&with_start("{ state = \"new\" }"));
    assert_eq!(kind, ScenarioErrorKind::FactoryStartState { state: "new".into() });
    assert_eq!((line, column), (8, 19));
    // Unknown keys and wrong types are shape errors on that line.
    let (kind, line, _) = error_of(&with_start("{ slot = \"ota_0\", seq = 3 }"));
    assert!(matches!(kind, SpecErrorKind::Shape { .. }), "{kind:?}");
    assert_eq!(line, 8);
    let (_, line, _) = error_of(&with_start("\"ota_0\""));
    assert_eq!(line, 8);
    let (_, line, _) = error_of(&with_start("{ slot = 0 }"));
    assert_eq!(line, 8);
}

#[test]
fn the_shipped_update_from_ota_0_scenario_starts_from_ota_0() {
    let scenario = Scenario::load(&Path::new(ROOT).join("scenarios/update-from-ota-0.toml"), &lab().pki).unwrap();
    assert_eq!(scenario.start, StartState::Ota { index: 0, state: OtaState::Valid });
    assert_eq!(scenario.tags, ["start-state"]);
    assert_eq!(scenario.chain, ["leaf", "r11"]);
    assert_eq!(scenario.image.as_deref(), Some("v2.0.0"));
}

// --- the flash a start state gives ---

/// Every start state a scenario can write.
fn all_starts() -> Vec<StartState> {
    let mut starts = vec![StartState::Factory];
    for slot in ["ota_0", "ota_1"] {
        for (state, _) in StartState::STATE_NAMES {
            starts.push(StartState::from_names(slot, Some(state)).unwrap());
        }
    }
    starts
}

/// `regions` laid over an erased flash, as a device is left after writing them.
fn written(regions: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut flash = vec![0xFF; FLASH_SIZE];
    for (offset, bytes) in regions {
        flash[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
    }
    flash
}

fn otadata_of(flash: &[u8]) -> Otadata {
    Otadata::decode(&flash[OTADATA as usize..OTADATA as usize + OTADATA_SIZE])
}

#[test]
fn regions_and_the_merged_flash_agree_and_split_firmware_from_start() {
    let images = images("isrg-x1-idf4.4");
    let table = two_ota_table();
    for start in all_starts() {
        let regions = start_regions(&start, &images, &table).unwrap();
        let offsets = |list: &[(u32, Vec<u8>)]| list.iter().map(|(offset, _)| *offset).collect::<Vec<_>>();
        assert_eq!(offsets(&regions.firmware), [0x1000, 0x8000, FACTORY], "{start}");
        let expected_start = match start {
            StartState::Factory => vec![OTADATA],
            StartState::Ota { index: 0, .. } => vec![OTADATA, OTA_0],
            StartState::Ota { .. } => vec![OTADATA, OTA_1],
        };
        assert_eq!(offsets(&regions.start), expected_start, "{start}");
        assert_eq!(regions.start[0].1.len(), OTADATA_SIZE, "the whole otadata partition, {start}");
        let all = regions.all();
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "sorted: {:?}", offsets(&all));
        assert_eq!(written(&all), start_flash(&start, &images, FLASH_SIZE).unwrap(), "{start}");
    }
    // The factory start leaves otadata erased, as the runner's fixed layout did.
    let factory = start_regions(&StartState::Factory, &images, &table).unwrap();
    assert!(factory.start[0].1.iter().all(|&b| b == 0xFF));
}

#[test]
fn an_app_too_large_for_its_slot_is_refused() {
    let mut images = images("isrg-x1-idf4.4");
    images.app.resize(0x100001, 0);
    let start = StartState::Ota { index: 1, state: OtaState::Valid };
    let refused = start_regions(&start, &images, &two_ota_table());
    assert!(matches!(refused, Err(StartError::TooLarge { ref name, .. }) if name == "factory"), "{refused:?}");
}

#[test]
fn otadata_entries_carry_the_start_seq_and_state() {
    let images = images("isrg-x1-idf4.4");
    for start in all_starts() {
        let otadata = otadata_of(&start_flash(&start, &images, FLASH_SIZE).unwrap());
        match start {
            StartState::Factory => assert_eq!(otadata, Otadata::decode(&[]), "erased"),
            StartState::Ota { index, state } => {
                let entry = otadata.entries[0];
                assert_eq!((entry.seq, entry.state), (u32::from(index) + 1, state), "{start}");
                assert!(entry.is_valid(), "CRC right: {start}");
                assert_eq!(otadata.entries[1].seq, u32::MAX, "{start}");
                assert_eq!(otadata.selected_slot(2), Some(u32::from(index)), "{start}");
            }
        }
    }
}

/// Where the twin's bootloader starts the app, and what it writes back to otadata.
fn boot(flash: &[u8]) -> (u32, Option<Otadata>) {
    let outcome = boot_log(flash, ResetReason::PowerOn, &mut BootClock::default(), &[]);
    let Booted::App { partition_offset, .. } = outcome.result else {
        panic!("no app started: {:?}\n{}", outcome.result, String::from_utf8_lossy(&outcome.bytes));
    };
    let write = outcome.otadata_write.map(|(offset, bytes)| {
        assert_eq!(offset, OTADATA);
        Otadata::decode(&bytes)
    });
    (partition_offset, write)
}

#[test]
fn every_start_boots_from_its_slot_without_rollback() {
    // ESP-IDF v4.4 and v3.2 bootloaders built without rollback ignore the entry's state.
    for firmware in ["isrg-x1-idf4.4", "dst-x3-idf3.2"] {
        let images = images(firmware);
        for start in all_starts() {
            let (booted, write) = boot(&start_flash(&start, &images, FLASH_SIZE).unwrap());
            let expected = match start {
                StartState::Factory => FACTORY,
                StartState::Ota { index: 0, .. } => OTA_0,
                StartState::Ota { .. } => OTA_1,
            };
            assert_eq!(booted, expected, "{firmware}, {start}");
            assert_eq!(write, None, "{firmware}, {start}: otadata untouched");
        }
    }
}

#[test]
fn with_rollback_a_new_app_goes_on_trial_and_one_on_trial_is_given_up() {
    let images = images("bundle-idf5.2");
    for (index, slot) in [(0u8, OTA_0), (1, OTA_1)] {
        let start = |state| StartState::Ota { index, state };
        let seq = u32::from(index) + 1;

        for state in [OtaState::Valid, OtaState::Undefined] {
            assert_eq!(boot(&start_flash(&start(state), &images, FLASH_SIZE).unwrap()), (slot, None), "{state:?}");
        }

        // NEW: the bootloader starts it and marks it PENDING_VERIFY until the app confirms.
        let (booted, write) = boot(&start_flash(&start(OtaState::New), &images, FLASH_SIZE).unwrap());
        assert_eq!(booted, slot);
        let write = write.expect("the entry goes on trial");
        assert_eq!((write.entries[0].seq, write.entries[0].state), (seq, OtaState::PendingVerify));

        // PENDING_VERIFY at reset: the app never confirmed, the entry is aborted and the
        // bootloader falls back to the factory app.
        let (booted, write) = boot(&start_flash(&start(OtaState::PendingVerify), &images, FLASH_SIZE).unwrap());
        assert_eq!(booted, FACTORY, "ota_{index} on trial at reset");
        let write = write.expect("the entry is aborted");
        assert_eq!((write.entries[0].seq, write.entries[0].state), (seq, OtaState::Aborted));
        assert_eq!(write.selected_slot(2), None);
    }
    // The factory start is untouched by rollback.
    assert_eq!(boot(&start_flash(&StartState::Factory, &images, FLASH_SIZE).unwrap()), (FACTORY, None));
}

// --- end to end on an in-process twin ---

/// Runs `firmware` against the shipped scenario `id` on a twin flashed in the scenario's start
/// state: the transcript, and the flash at the end.
fn run_from_start(firmware: &str, id: &str) -> (Vec<u8>, Vec<u8>) {
    let scenario = load_scenario(&Source::Named(id));
    let flash = start_flash(&scenario.start, &images(firmware), FLASH_SIZE).unwrap();
    let mut end = Vec::new();
    let run = run_flash_then(firmware, flash, Source::Named(id), Dns::Server, None, None, |twin, _, _| {
        end = twin.flash();
    });
    (run.transcript, end)
}

/// The offset of the app each `Loaded app from partition at offset 0x…` line names, in order.
fn loaded_offsets(transcript: &[u8]) -> Vec<u32> {
    let text = String::from_utf8_lossy(transcript);
    text.lines()
        .filter_map(|line| line.split_once("Loaded app from partition at offset 0x"))
        .map(|(_, at)| {
            let digits: String = at.chars().take_while(char::is_ascii_hexdigit).collect();
            u32::from_str_radix(&digits, 16).unwrap()
        })
        .collect()
}

#[test]
fn a_device_running_from_ota_0_updates_to_ota_1() {
    for firmware in ["isrg-x1-idf4.4", "bundle-idf5.2"] {
        let (transcript, flash) = run_from_start(firmware, "update-from-ota-0");
        let text = String::from_utf8_lossy(&transcript);
        assert_eq!(loaded_offsets(&transcript), [OTA_0, OTA_1], "{firmware}:\n{text}");
        assert!(text.contains("Writing to partition subtype 17 at offset 0x210000"), "{firmware}:\n{text}");
        let verdict = replay_bytes(&transcript).verdict;
        assert_eq!(verdict.outcome.outcome, OutcomeClass::Updated, "{firmware}:\n{text}");
        // esp_ota_set_boot_partition wrote the sector after ota_0's entry.
        let otadata = otadata_of(&flash);
        assert_eq!(otadata.entries[0].seq, 1, "{firmware}");
        assert_eq!(otadata.entries[1].seq, 2, "{firmware}");
        assert_eq!(otadata.selected_slot(2), Some(1), "{firmware}");
        // The old app in ota_0 is intact (the update went elsewhere).
        let old = images(firmware).app;
        assert_eq!(&flash[OTA_0 as usize..OTA_0 as usize + old.len()], &old[..], "{firmware}");
    }
}

#[test]
fn the_shipped_expectations_hold_from_ota_0() {
    let mut scenario = Scenario::load(&Path::new(ROOT).join("scenarios/update-from-ota-0.toml"), &lab().pki).unwrap();
    scenario.resolve(&lab().fleet).unwrap();
    assert_eq!(scenario.expect.len(), lab().fleet.members().count());
    for (firmware, expected) in &scenario.expect {
        let (transcript, _) = run_from_start(firmware, "update-from-ota-0");
        let observed = replay_bytes(&transcript).verdict.outcome;
        assert_eq!(observed.outcome, expected.outcome, "{firmware}");
        if let Some(reason) = expected.reason {
            assert_eq!(observed.reason, Some(reason), "{firmware}");
        }
    }
}
