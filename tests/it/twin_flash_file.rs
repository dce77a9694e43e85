//! The twin's flash kept in a file: a twin started on a flash file boots what is in it, a
//! power cut and a reset boot it again, and the file holds exactly the flash.

use std::path::Path;
use std::time::Duration;

use otarig::firmware::Fleet;
use otarig::firmware::build::build;
use otarig::image::build::merged_flash;
use otarig::pki::LabPki;
use otarig::twin::device::{TwinConfig, TwinDevice};

use crate::common;

use common::TempDir;
use common::serial::{count, read_until};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOADED: &[u8] = b"Loaded app from partition at offset 0x10000";

#[test]
fn a_twin_boots_its_flash_file_again_after_a_power_cut() {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
    let built = build(fleet.get("bundle-idf4.4").unwrap(), &fleet, &pki).unwrap();
    let flash = merged_flash(4 * 1024 * 1024, &built.bootloader, None, &[(0x10000, &built.app)]);

    let tmp = TempDir::new("twin-flash-file");
    let path = tmp.0.join("board.flash");
    std::fs::write(&path, &flash).unwrap();
    let config = TwinConfig { download: false, flash_file: Some(path.clone()), ..TwinConfig::default() };
    let twin = TwinDevice::spawn(config).unwrap();
    let mut port =
        serialport::new(twin.port_path().to_string_lossy(), 115_200).timeout(Duration::from_millis(20)).open().unwrap();
    let mut seen = Vec::new();
    read_until(&mut port, &mut seen, |seen| count(seen, LOADED) == 1);
    assert_eq!(count(&seen, b"rst:0x1 (POWERON_RESET)"), 1);
    assert!(count(&seen, b"ESP-IDF v4.4.8 2nd stage bootloader") == 1);

    // Power off, then on: the same flash boots again.
    twin.power_cut();
    twin.reset(false);
    read_until(&mut port, &mut seen, |seen| count(seen, LOADED) == 2);
    assert_eq!(count(&seen, b"rst:0x1 (POWERON_RESET)"), 2);
    assert_eq!(twin.flash(), flash);
    drop(twin);
    assert_eq!(std::fs::read(&path).unwrap(), flash);

    // A flash file of another size is refused, not truncated.
    let wrong = TwinConfig { flash_size: 8 * 1024 * 1024, flash_file: Some(path.clone()), ..TwinConfig::default() };
    assert!(TwinDevice::spawn(wrong).is_err());
    assert_eq!(std::fs::read(&path).unwrap().len(), flash.len());
}
