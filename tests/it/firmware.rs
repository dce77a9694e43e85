//! Firmware manifests: every shipped one loads; mistakes are located and named.

use std::path::Path;

use otarig::firmware::profile::ClockSource as Clock;
use otarig::firmware::{Fleet, ManifestError, Trust};
use otarig::idf::IdfVersion;
use otarig::pki::{LabPki, SpecErrorKind};

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn pki() -> LabPki {
    LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap()
}

#[test]
fn the_shipped_fleet_loads() {
    let fleet = Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki()).unwrap();
    let ids: Vec<&str> = fleet.members().map(|m| m.id.as_str()).collect();
    for id in [
        "dst-x3-idf3.2",
        "dst-x3-idf3.2-timecheck",
        "isrg-x1-idf3.2",
        "bundle-idf4.4",
        "bundle-idf5.2",
        "bundle-idf5.4",
        "private-root-idf5.2",
        "pinned-r3-idf4.4",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(!ids.contains(&"v2.0.0"), "the update release is not a member of the fleet");
    let update = fleet.get("v2.0.0").unwrap();
    assert!(update.update);

    let founding = fleet.get("dst-x3-idf3.2").unwrap();
    assert_eq!(founding.idf.release, IdfVersion { major: 3, minor: 2, patch: 0 });
    assert_eq!(founding.trust, Trust::Pem(vec!["dst_root_x3".into()]));
    assert!(!founding.time_check && !founding.rollback);
    assert!(!founding.idf.release.has_app_descriptor());
    let timecheck = fleet.get("dst-x3-idf3.2-timecheck").unwrap();
    assert!(timecheck.time_check);
    assert_eq!(timecheck.clock, Clock::Sntp);
    let bundled = fleet.get("bundle-idf4.4").unwrap();
    assert!(fleet.trusted_authorities(bundled).contains(&"dst_root_x3".to_owned()));
    let v6 = &fleet.bundles["idf-v6.0"];
    assert!(!v6.authorities.contains(&"globalsign_root_ca".to_owned()));
}

fn load_one(manifest: &str) -> Result<Fleet, ManifestError> {
    let dir = TempDir::new("fleet");
    std::fs::create_dir_all(dir.0.join("bundles")).unwrap();
    std::fs::write(dir.0.join("bundles/idf-v4.4.toml"), "title = \"b\"\nauthorities = [\"isrg_root_x1\"]\n").unwrap();
    std::fs::write(dir.0.join("fw.toml"), manifest).unwrap();
    Fleet::load(&dir.0, &pki())
}

fn located_error(manifest: &str) -> (SpecErrorKind, usize) {
    match load_one(manifest) {
        Err(ManifestError::Spec(err)) => (err.kind, err.location.line),
        other => panic!("expected an error, got {other:?}"),
    }
}

const HEAD: &str = "version = \"1\"\nota_url = \"https://ota.example.com/fw.bin\"\n";

#[test]
fn mistakes_are_located() {
    let (kind, line) = located_error(&format!("{HEAD}idf = \"v4.4\"\ntrust = {{ pem = [\"nope\"] }}\n"));
    assert_eq!((kind, line), (SpecErrorKind::UnknownCertificate { name: "nope".into() }, 4));
    let (kind, line) = located_error(&format!("{HEAD}idf = \"v4.4\"\ntrust = {{ bundle = \"idf-v9\" }}\n"));
    assert!(matches!(kind, SpecErrorKind::Shape { .. }));
    assert_eq!(line, 4);
    let (_, line) =
        located_error(&format!("{HEAD}idf = \"v3.2\"\ntrust = {{ pem = [\"dst_root_x3\"] }}\nrollback = true\n"));
    assert_eq!(line, 5, "v3.2 has no rollback");
    let (_, line) = located_error(&format!("{HEAD}idf = \"v3.2\"\ntrust = {{ bundle = \"idf-v4.4\" }}\n"));
    assert_eq!(line, 4, "v3.2 has no bundle");
    let (_, line) = located_error(&format!("{HEAD}idf = \"three\"\ntrust = \"embedded\"\n"));
    assert_eq!(line, 3);
    let (_, line) = located_error(&format!("{HEAD}idf = \"v4.4\"\ntrust = \"embedded\"\ncolour = 1\n"));
    assert_eq!(line, 5);
    let (_, line) =
        located_error("version = \"1\"\nota_url = \"http://plain\"\nidf = \"v4.4\"\ntrust = \"embedded\"\n");
    assert_eq!(line, 2);
    assert!(
        load_one(&format!("{HEAD}idf = \"v4.4\"\ntrust = {{ bundle = \"idf-v4.4\" }}\nclock = \"2026-01-01\"\n"))
            .is_ok()
    );
    // The build's mbedTLS: curves the Kconfig names, once each; a buffer within its range.
    let pem = "idf = \"v4.4\"\ntrust = { pem = [\"isrg_root_x1\"] }\n";
    let (kind, line) = located_error(&format!("{HEAD}{pem}curves_off = [\"secp384r1\",\n  \"p384\"]\n"));
    assert!(matches!(kind, SpecErrorKind::Shape { .. }));
    assert_eq!(line, 6, "the unknown curve's own line");
    let (_, line) = located_error(&format!("{HEAD}{pem}curves_off = [\"secp384r1\", \"secp384r1\"]\n"));
    assert_eq!(line, 5);
    let (_, line) = located_error(&format!("{HEAD}{pem}tls_in_content_len = 256\n"));
    assert_eq!(line, 5, "below the Kconfig's 512");
    let (_, line) = located_error(&format!("{HEAD}{pem}tls_in_content_len = 32768\n"));
    assert_eq!(line, 5, "past 16384");
    let (_, line) = located_error(&format!("{HEAD}{pem}tls_heap = 0\n"));
    assert_eq!(line, 5, "no heap at all");
    let (kind, line) = located_error(&format!("{HEAD}{pem}tls_heap = 600000\n"));
    assert_eq!(line, 5, "past the ESP32's 520 KiB");
    let SpecErrorKind::Shape { message } = kind else { panic!("{kind:?}") };
    assert!(message.starts_with("tls_heap = 600000 is outside 1..=532480"), "{message}");
    let fleet = load_one(&format!("{HEAD}{pem}curves_off = [\"secp384r1\", \"bp512r1\"]\ntls_in_content_len = 4096\n"))
        .unwrap();
    let firmware = fleet.get("fw").unwrap();
    assert_eq!(firmware.tls.curves_off.names(), "secp384r1, bp512r1");
    assert_eq!(firmware.tls.in_content_len, 4096);
    assert_eq!(firmware.sources["tls_in_content_len"], otarig::firmware::profile::Source::Manifest);
}
