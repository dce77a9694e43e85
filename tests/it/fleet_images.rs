//! Images built for the fleet's manifests: real format, the right trust material and URL, a
//! profile record for the twin, realistic sizes; `inspect` of each is a reviewed snapshot.

use std::path::Path;
use std::process::Command;

use otarig::firmware::build::{PROFILE_MARKER, build};
use otarig::firmware::{Fleet, Trust};
use otarig::image::{TrustKind, find_trust, find_urls, parse_app};
use otarig::pki::LabPki;

use crate::common;

use common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn fleet_and_pki() -> (Fleet, LabPki) {
    let pki = LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap();
    (Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap(), pki)
}

#[test]
fn every_manifest_builds_a_valid_image_with_what_it_trusts() {
    let (fleet, pki) = fleet_and_pki();
    for firmware in &fleet.manifests {
        let built = build(firmware, &fleet, &pki).unwrap();
        let app = parse_app(&built.app).unwrap_or_else(|e| panic!("{}: {e}", firmware.id));
        assert!(app.is_valid(), "{}", firmware.id);
        assert_eq!(app.trailing, 0);
        assert_eq!(app.app_desc.is_some(), firmware.idf.release.has_app_descriptor(), "{}", firmware.id);
        if let Some(desc) = &app.app_desc {
            assert_eq!(desc.version, firmware.version);
            assert_eq!(desc.idf_ver, firmware.idf.to_string());
        }
        let size = built.app.len();
        match firmware.image_size {
            Some(wanted) => assert!(size.abs_diff(wanted) < 64, "{}: {size}", firmware.id),
            None => assert!((600_000..=950_000).contains(&size), "{}: {size}", firmware.id),
        }
        let trust = find_trust(&built.app);
        match &firmware.trust {
            Trust::Pem(names) => {
                let subjects: Vec<Vec<u8>> = trust
                    .iter()
                    .filter_map(|t| match &t.kind {
                        TrustKind::Pem(info) => Some(info.subject_der.clone()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(subjects.len(), names.len(), "{}", firmware.id);
            }
            Trust::Bundle(_) => {
                let roots = trust.iter().find_map(|t| match &t.kind {
                    TrustKind::Bundle { entries, sorted, .. } => Some((entries.len(), *sorted)),
                    _ => None,
                });
                assert_eq!(roots, Some((fleet.trusted_authorities(firmware).len(), true)), "{}", firmware.id);
            }
            Trust::Embedded => {}
        }
        assert!(
            find_urls(&built.app)
                .iter()
                .any(|(_, url)| Some(url.as_str()) == firmware.ota_url.as_ref().map(otarig::firmware::OtaUrl::as_str)),
            "{}",
            firmware.id
        );
        let marker = memchr::memmem::find(&built.app, PROFILE_MARKER).expect("profile record");
        let record = &built.app[marker..marker + 400.min(built.app.len() - marker)];
        let text = String::from_utf8_lossy(&record[..memchr::memchr(0, record).unwrap_or(record.len())]).into_owned();
        assert!(text.contains(&format!("id={}\n", firmware.id)), "{text}");
        assert!(text.contains(&format!("time_check={}\n", firmware.time_check)), "{text}");

        let bootloader = parse_app(&built.bootloader).unwrap();
        assert!(bootloader.is_valid() && bootloader.hash.is_none(), "{}", firmware.id);
        let banner = format!("ESP-IDF {} 2nd stage bootloader", firmware.idf);
        assert!(memchr::memmem::find(&built.bootloader, banner.as_bytes()).is_some(), "{}", firmware.id);
        let desc_magic = built.bootloader[bootloader.segments[0].data_offset];
        assert_eq!(desc_magic == 0x50, firmware.idf.release.major >= 5, "{}", firmware.id);
    }
}

#[test]
fn builds_are_reproducible() {
    let (fleet, pki) = fleet_and_pki();
    let firmware = fleet.get("dst-x3-idf3.2").unwrap();
    assert_eq!(build(firmware, &fleet, &pki).unwrap().app, build(firmware, &fleet, &pki).unwrap().app);
}

#[test]
fn inspect_of_every_built_image() {
    let tmp = TempDir::new("fleet-build");
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap();
    let out = run(&["fleet", "build", "--out", tmp.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (fleet, _) = fleet_and_pki();
    for firmware in &fleet.manifests {
        let path = tmp.0.join(format!("{}.bin", firmware.id));
        let out = run(&["inspect", "--at", "2026-11-25", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap().replace(tmp.0.to_str().unwrap(), "[build]");
        insta::assert_snapshot!(format!("inspect_{}", firmware.id), text);
    }
}
