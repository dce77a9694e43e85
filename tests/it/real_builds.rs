//! Builds as a fleet owner brings them, made here to reproduce what real builds have: the app
//! descriptor where ESP-IDF puts it (0x20 into the image) with the version strings real builds
//! carry, no descriptor but an `IDF_VER` string, another chip, an Arduino project, trust
//! material and URLs among other strings; read at their word by manifests, `predict` and the
//! twin, every value with its source, guesses said, what cannot be known asked for.

use std::path::{Path, PathBuf};
use std::process::Command;

use otarig::firmware::Fleet;
use otarig::firmware::profile::{Client, FirmwareProfile, LogLevel, Source, Stated};
use otarig::idf::IdfVersion;
use otarig::image::Chip;
use otarig::image::build::{ImageSpec, SegmentSpec, write_image};
use otarig::pki::LabPki;

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a test build holds.
struct Build<'a> {
    chip: Chip,
    /// `(project name, app version, ESP-IDF version)` for the descriptor.
    desc: Option<(&'a str, &'a str, &'a str)>,
    /// C strings in the read-only data, as a build carries them.
    strings: Vec<String>,
}

impl Build<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut rodata = Vec::new();
        if let Some((project, version, idf)) = self.desc {
            let mut desc = vec![0u8; 256];
            desc[0..4].copy_from_slice(&0xABCD_5432u32.to_le_bytes());
            let put =
                |desc: &mut [u8], at: usize, text: &str| desc[at..at + text.len()].copy_from_slice(text.as_bytes());
            put(&mut desc, 0x10, version);
            put(&mut desc, 0x30, project);
            put(&mut desc, 0x50, "10:07:28");
            put(&mut desc, 0x60, "Feb  9 2023");
            put(&mut desc, 0x70, idf);
            rodata.extend_from_slice(&desc);
        }
        for string in &self.strings {
            rodata.extend_from_slice(string.as_bytes());
            rodata.push(0);
        }
        let mut segments = vec![
            SegmentSpec { load_addr: 0x3F40_0020, data: rodata },
            SegmentSpec { load_addr: 0x3FFB_0000, data: vec![0; 256] },
        ];
        // Padding, as esptool lays an app out, so the code segment's data sits where the flash
        // cache maps it (its offset congruent to its address modulo 64 KiB).
        let offset = 24 + segments.iter().map(|s| 8 + s.data.len().div_ceil(4) * 4).sum::<usize>();
        let gap = (0x20 + 0x10000 - (offset + 8 + 8) % 0x10000) % 0x10000;
        segments.push(SegmentSpec { load_addr: 0, data: vec![0; gap] });
        segments.push(SegmentSpec { load_addr: 0x400D_0020, data: (0..30_000u32).map(|i| (i * 13) as u8).collect() });
        let mut spec = ImageSpec::esp32(0x4008_1000, segments);
        spec.chip_id = self.chip.id();
        write_image(&spec)
    }
}

fn pki() -> LabPki {
    LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap()
}

fn dst_root_pem() -> String {
    pki().certificate("dst_root_x3").unwrap().pem
}

/// A fleet folder holding the lab's bundle lists and these manifests (`{image}` in a manifest
/// stands for the path of its build).
fn fleet_dir(tmp: &TempDir, members: &[(&str, &Build<'_>, &str)]) -> PathBuf {
    let dir = tmp.0.join("fleet");
    std::fs::create_dir_all(dir.join("bundles")).unwrap();
    for entry in std::fs::read_dir(Path::new(ROOT).join("firmware-images/bundles")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("bundles").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(Path::new(ROOT).join("firmware-images/v2.0.0.toml"), dir.join("v2.0.0.toml")).unwrap();
    for (id, build, manifest) in members {
        let image = dir.join(format!("{id}.bin"));
        std::fs::write(&image, build.bytes()).unwrap();
        std::fs::write(dir.join(format!("{id}.toml")), manifest.replace("{image}", &format!("{id}.bin"))).unwrap();
    }
    dir
}

fn otarig(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_descriptor_is_read_where_esp_idf_puts_it_in_every_version_form() {
    for idf in ["v5.0.1", "v5.2.1-533-g9f4f8e24f2", "v4.3.1-dirty", "v4.3-dev-2586-g526f68239", "v6.0-dirty"] {
        let build = Build { chip: Chip::Esp32, desc: Some(("my_product", "-128-NOTFOUND", idf)), strings: vec![] };
        let profile = FirmwareProfile::read(&build.bytes(), &Stated::default());
        let read = profile.idf.unwrap();
        assert_eq!((read.value.text.as_str(), read.source), (idf, Source::Descriptor));
        assert_eq!(profile.version, "-128-NOTFOUND");
    }
    let dev = Build { chip: Chip::Esp32, desc: Some(("p", "1", "v4.3-dev-2586-g526f68239")), strings: vec![] };
    let profile = FirmwareProfile::read(&dev.bytes(), &Stated::default());
    assert_eq!(profile.release(), Some(IdfVersion::new(4, 3, 0)));
}

#[test]
fn a_build_without_a_descriptor_is_guessed_from_its_version_string_and_says_so() {
    let arduino_on_v3_2 = Build {
        chip: Chip::Esp32,
        desc: None,
        strings: vec!["v3.2.3-14-gd3e562907".into(), "[%6u][%c][%s:%u] %s(): ".into()],
    };
    let profile = FirmwareProfile::read(&arduino_on_v3_2.bytes(), &Stated::default());
    let idf = profile.idf.clone().unwrap();
    assert_eq!((idf.value.release, idf.source), (IdfVersion::new(3, 2, 3), Source::ImageStrings));
    assert_eq!(profile.guesses().len(), 1, "{:?}", profile.guesses());
    // Nothing at all: unknown, never v3.2 by default.
    let silent = Build { chip: Chip::Esp32, desc: None, strings: vec!["hello".into()] };
    assert!(FirmwareProfile::read(&silent.bytes(), &Stated::default()).idf.is_none());
}

#[test]
fn the_client_program_and_log_level_come_from_the_project() {
    let read = |project: &str| {
        let build = Build { chip: Chip::Esp32, desc: Some((project, "1", "v4.4.4")), strings: vec![] };
        let profile = FirmwareProfile::read(&build.bytes(), &Stated::default());
        (profile.client.value, profile.log_level.value)
    };
    assert_eq!(read("simple_ota"), (Client::SimpleOta, LogLevel::Info));
    assert_eq!(read("advanced_https_ota"), (Client::AdvancedHttpsOta, LogLevel::Info));
    assert_eq!(read("my_product"), (Client::Library, LogLevel::Info));
    assert_eq!(read("arduino-lib-builder"), (Client::Library, LogLevel::Error));
}

#[test]
fn an_ota_url_among_other_strings_is_taken_only_when_it_is_clearly_one() {
    let page = "<a href=\"https://github.com/tzapu/WiFiManager\">WiFiManager</a>";
    let build = |strings: Vec<String>| Build { chip: Chip::Esp32, desc: Some(("p", "1", "v5.0.1")), strings };
    let only_a_page = build(vec![page.into(), "https://micropython.org/webrepl/".into()]);
    let profile = FirmwareProfile::read(&only_a_page.bytes(), &Stated::default());
    assert!(profile.ota_url.is_none());
    assert_eq!(profile.url_candidates.len(), 2, "{:?}", profile.url_candidates);
    let with_update = build(vec![page.into(), "https://updates.example.net/fw/app.bin".into()]);
    let url = FirmwareProfile::read(&with_update.bytes(), &Stated::default()).ota_url.unwrap();
    assert_eq!((url.value.host.as_str(), url.source), ("updates.example.net", Source::ImageStrings));
}

#[test]
fn a_manifest_states_what_the_build_cannot_say_and_wins() {
    let tmp = TempDir::new("real-manifest");
    let product = Build {
        chip: Chip::Esp32,
        desc: Some(("my_product", "3.1.0", "v5.0.1")),
        strings: vec![dst_root_pem(), "https://other.example.com/fw.bin".into()],
    };
    let manifest = "image = \"{image}\"\nota_url = \"https://ota.example.com/firmware.bin\"\ntime_check = true\nclock = \"sntp\"\n";
    let dir = fleet_dir(&tmp, &[("product", &product, manifest)]);
    let fleet = Fleet::load(&dir, &pki()).unwrap();
    let firmware = fleet.get("product").unwrap();
    assert_eq!(
        (firmware.idf.text.as_str(), firmware.chip, firmware.version.as_str()),
        ("v5.0.1", Chip::Esp32, "3.1.0")
    );
    assert_eq!(firmware.ota_url.as_ref().unwrap().host, "ota.example.com");
    assert!(firmware.time_check);
    let sources = &firmware.sources;
    assert_eq!(
        (sources["idf"], sources["ota_url"], sources["time_check"]),
        (Source::Descriptor, Source::Manifest, Source::Manifest)
    );
    assert_eq!((sources["rollback"], sources["chip"]), (Source::Default, Source::Image));

    // predict shows where each value came from.
    let dir_arg = dir.to_string_lossy().into_owned();
    let chain = Path::new(ROOT).join("scenarios/pki/certs/dst_root_x3.pem");
    let (code, out, err) = otarig(&[
        "predict",
        "--fleet",
        &dir_arg,
        "--firmware",
        "product",
        "--chain",
        &chain.to_string_lossy(),
        "--format",
        "json",
        "--no-hostname",
    ]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["idf"], "v5.0.1");
    assert_eq!(json[0]["sources"]["idf"], "descriptor");
    assert_eq!(json[0]["sources"]["time_check"], "manifest");
}

#[test]
fn what_cannot_be_known_is_asked_for_where_it_is_written() {
    let tmp = TempDir::new("real-unknowable");
    let silent = Build { chip: Chip::Esp32, desc: None, strings: vec!["hello".into()] };
    let dir = fleet_dir(&tmp, &[("silent", &silent, "image = \"{image}\"\n")]);
    let (code, _, err) = otarig(&["fleet", "list", "--dir", &dir.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("silent.toml:1:1") && err.contains("set `idf`"), "{err}");

    // The manifest's chip against the build's.
    let tmp = TempDir::new("real-chip");
    let s3 = Build { chip: Chip::Esp32S3, desc: Some(("p", "1", "v5.0.2")), strings: vec![] };
    let dir = fleet_dir(&tmp, &[("s3", &s3, "image = \"{image}\"\nchip = \"esp32\"\n")]);
    let (code, _, err) = otarig(&["fleet", "list", "--dir", &dir.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("s3.toml:2:8") && err.contains("ESP32-S3") && err.contains("esp32"), "{err}");
}

#[test]
fn a_run_refuses_a_build_the_twin_cannot_be_or_cannot_reach() {
    let tmp = TempDir::new("real-refused");
    let s3 = Build { chip: Chip::Esp32S3, desc: Some(("p", "1", "v5.0.2")), strings: vec![] };
    let no_url = Build { chip: Chip::Esp32, desc: Some(("p", "1", "v5.0.2")), strings: vec![dst_root_pem()] };
    let dir = fleet_dir(
        &tmp,
        &[
            ("s3", &s3, "image = \"{image}\"\nota_url = \"https://ota.example.com/fw.bin\"\n"),
            ("nourl", &no_url, "image = \"{image}\"\n"),
        ],
    );
    let fleet = dir.to_string_lossy().into_owned();
    let out = tmp.0.join("run").to_string_lossy().into_owned();
    let (code, _, err) =
        otarig(&["run", "--fleet", &fleet, "--firmware", "s3", "--scenario", "gts-chain", "--out", &out]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ESP32-S3") && err.contains("ESP32"), "{err}");
    let (code, _, err) =
        otarig(&["run", "--fleet", &fleet, "--firmware", "nourl", "--scenario", "gts-chain", "--out", &out]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no OTA URL") && err.contains("ota_url"), "{err}");
}

#[test]
fn the_twin_runs_a_real_build_as_its_manifest_states_it() {
    // A v5.0.1 product that trusts DST Root CA X3 and, as its manifest says, checks dates
    // against SNTP time: on the rescue scenario's date the cross-sign it needs has expired.
    let tmp = TempDir::new("real-twin");
    let product =
        Build { chip: Chip::Esp32, desc: Some(("my_product", "3.1.0", "v5.0.1")), strings: vec![dst_root_pem()] };
    let checks = "image = \"{image}\"\nota_url = \"https://ota.example.com/firmware.bin\"\ntime_check = true\nclock = \"sntp\"\n";
    let trusting = "image = \"{image}\"\nota_url = \"https://ota.example.com/firmware.bin\"\n";
    let dir = fleet_dir(&tmp, &[("checks", &product, checks), ("trusting", &product, trusting)]);
    let out = tmp.0.join("run");
    let (code, stdout, err) = otarig(&[
        "run",
        "--fleet",
        &dir.to_string_lossy(),
        "--scenario",
        "dst-cross-sign-rescue",
        "--twins",
        "1",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let outcome = |firmware: &str| {
        let line = results.lines().find(|l| l.contains(&format!("\"firmware\":\"{firmware}\""))).unwrap();
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        (json["observed"]["outcome"].as_str().unwrap().to_owned(), json["observed"]["reason"].clone())
    };
    let transcript = |firmware: &str| {
        std::fs::read_to_string(out.join(format!("transcripts/{firmware}__dst-cross-sign-rescue.log"))).unwrap()
    };
    // v5.0.1 prints no verification reason at INFO: the log says only that verification failed.
    assert_eq!(outcome("checks"), ("tls-verify".into(), serde_json::json!("unknown")), "{}", transcript("checks"));
    // predict, with the same decision, names it: the cross-sign has expired.
    let (_, stdout, _) = otarig(&[
        "predict",
        "--fleet",
        &dir.to_string_lossy(),
        "--firmware",
        "checks",
        "--chain",
        &Path::new(ROOT).join("scenarios/pki/certs/isrg_root_x1_by_dst.pem").to_string_lossy(),
        "--at",
        "2026-11-25",
        "--format",
        "json",
        "--no-hostname",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json[0]["reason"], "expired", "{stdout}");
    assert_eq!(outcome("trusting").0, "updated");
    // A product of no ESP-IDF example prints the library's lines, none of an example's.
    let transcript = transcript("trusting");
    assert!(transcript.contains("esp_https_ota: Starting OTA..."), "{transcript}");
    assert!(!transcript.contains("simple_ota_example"), "{transcript}");
}

#[test]
fn fleet_add_writes_a_manifest_that_names_the_build_and_says_what_to_set() {
    let tmp = TempDir::new("real-add");
    // An idf.py build directory: the app, its bootloader and table, the project's sdkconfig.
    let project = tmp.0.join("product");
    let build = project.join("build");
    std::fs::create_dir_all(build.join("bootloader")).unwrap();
    std::fs::create_dir_all(build.join("partition_table")).unwrap();
    let app = Build { chip: Chip::Esp32, desc: Some(("product", "1.4.2", "v4.4.4")), strings: vec![dst_root_pem()] };
    std::fs::write(build.join("product.bin"), app.bytes()).unwrap();
    std::fs::write(build.join("bootloader/bootloader.bin"), b"not read here").unwrap();
    std::fs::write(build.join("partition_table/partition-table.bin"), b"not read here").unwrap();
    // Built without P-384 and with a 4 KB TLS input buffer, as v4.4's menuconfig writes it.
    let sdkconfig = "CONFIG_MBEDTLS_HAVE_TIME_DATE=y\nCONFIG_LOG_DEFAULT_LEVEL=3\n\
        CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN=y\nCONFIG_MBEDTLS_SSL_IN_CONTENT_LEN=4096\n\
        CONFIG_MBEDTLS_ECP_DP_SECP256R1_ENABLED=y\n# CONFIG_MBEDTLS_ECP_DP_SECP384R1_ENABLED is not set\n";
    std::fs::write(project.join("sdkconfig"), sdkconfig).unwrap();
    let fleet = tmp.0.join("fleet");
    let (code, out, err) = otarig(&["fleet", "add", &build.to_string_lossy(), "--dir", &fleet.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim_end().ends_with("product.toml"), "{out}");
    let app_bytes = app.bytes();
    let text = std::fs::read_to_string(fleet.join("product.toml")).unwrap();
    for expected in [
        "image = ",
        "bootloader = ",
        "partition_table = ",
        "sdkconfig = ",
        "# idf = \"v4.4.4\"  # read from the app descriptor",
        "# time_check = true  # read from the sdkconfig",
        "# curves_off = [\"secp384r1\"]  # read from the sdkconfig",
        "# tls_in_content_len = 4096  # read from the sdkconfig",
        "# ota_url = \"https://...\"",
        "# clock = ",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    // The build lies outside the fleet's folder, where a manifest may not reach: its files were
    // copied beside the manifest, which names the copies and loads.
    assert!(text.contains("image = \"product/product.bin\""), "{text}");
    assert!(text.contains("sdkconfig = \"product/sdkconfig\""), "{text}");
    assert_eq!(std::fs::read(fleet.join("product/product.bin")).unwrap(), app_bytes);
    assert!(err.contains("copied into the fleet"), "{err}");
    let (code, out, err) = otarig(&["fleet", "list", "--dir", &fleet.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("product"), "{out}");
    assert!(out.contains("no secp384r1 (sdkconfig)") && out.contains("TLS input 4096 B (sdkconfig)"), "{out}");
    // Once more: refused without --force.
    let (code, _, err) = otarig(&["fleet", "add", &build.to_string_lossy(), "--dir", &fleet.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
}
