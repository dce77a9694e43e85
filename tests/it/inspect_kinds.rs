//! `otarig inspect` tells files apart, on files the test writes: a merged flash image that
//! starts with the bootloader at 0x1000 (as MicroPython's release is), bootloaders with a v5.2+
//! descriptor or only their banner's version string, an app without a descriptor with its
//! version string, an ESP8266 image, and files that are no image at all.

use std::path::Path;
use std::process::{Command, Output};

use otarig::image::build::{ImageSpec, SegmentSpec, merged_flash, write_image};
use otarig::image::otadata::{OTADATA_SIZE, Otadata};
use otarig::image::partition::{TABLE_MAX_LEN, two_ota_table};
use otarig::image::{BOOTLOADER_DESC_MAGIC, checksum_of};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn inspect(path: &Path, json: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_otarig"));
    command.current_dir(ROOT).args(["inspect", "--at", "2026-11-25"]);
    if json {
        command.args(["--format", "json"]);
    }
    command.arg(path).output().unwrap()
}

fn inspect_json(path: &Path) -> (i32, serde_json::Value) {
    let out = inspect(path, true);
    (out.status.code().unwrap_or(-1), serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
}

fn inspect_text(path: &Path) -> (i32, String, String) {
    let out = inspect(path, false);
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// An ESP32 2nd-stage bootloader laid out as ESP-IDF links it: DRAM at 0x3FFF0030 (starting
/// with `dram`), the IRAM loader at 0x40078000, IRAM at 0x40080400.
fn esp32_bootloader(dram: Vec<u8>) -> Vec<u8> {
    let segments = vec![
        SegmentSpec { load_addr: 0x3FFF_0030, data: dram },
        SegmentSpec { load_addr: 0x4007_8000, data: (0..3000u32).map(|i| (i * 13) as u8).collect() },
        SegmentSpec { load_addr: 0x4008_0400, data: (0..900u32).map(|i| (i * 7) as u8).collect() },
    ];
    write_image(&ImageSpec::esp32(0x4008_0640, segments))
}

/// `esp_bootloader_desc_t` as v5.2 fills it.
fn bootloader_desc(idf_ver: &str) -> Vec<u8> {
    let mut desc = vec![0u8; 80];
    desc[0] = BOOTLOADER_DESC_MAGIC;
    desc[4..8].copy_from_slice(&1u32.to_le_bytes());
    desc[8..8 + idf_ver.len()].copy_from_slice(idf_ver.as_bytes());
    desc[40..60].copy_from_slice(b"May 30 2024 11:12:37");
    desc
}

/// A v4.x bootloader's DRAM: the banner is a format string, `IDF_VER` a string of its own.
fn banner_dram(idf_ver: &str) -> Vec<u8> {
    format!("\x02\x04boot\0ESP-IDF %s 2nd stage bootloader\0{idf_ver}\0compile time %s\0").into_bytes()
}

/// An app without a descriptor (v3.2, or Arduino on v3.2.3) that carries `IDF_VER`.
fn app_with_version_string(idf_ver: &str) -> Vec<u8> {
    let rodata = format!("\x01\x02\x03\0{idf_ver}\0https://ota.example.com/fw.bin\0").into_bytes();
    write_image(&ImageSpec::esp32(
        0x4008_1000,
        vec![
            SegmentSpec { load_addr: 0x3F40_0020, data: rodata },
            SegmentSpec { load_addr: 0x3FFB_0000, data: vec![0; 128] },
            SegmentSpec { load_addr: 0x400D_0020, data: (0..20_000u32).map(|i| (i * 31) as u8).collect() },
        ],
    ))
}

#[test]
fn a_merged_image_from_0x1000_is_read_at_flash_addresses() {
    let bootloader = esp32_bootloader(banner_dram("v5.0.4"));
    let app = app_with_version_string("v3.2.3-14-gd3e562907");
    let flash = merged_flash(0x12_0000, &bootloader, None, &[(0x10000, &app)]);
    let tmp = TempDir::new("inspect-merged-0x1000");
    let path = tmp.0.join("micropython-like.bin");
    // `esptool merge-bin 0x1000 bootloader.bin 0x8000 partitions.bin 0x10000 app.bin`, no padding.
    std::fs::write(&path, &flash[0x1000..]).unwrap();

    let (code, json) = inspect_json(&path);
    assert_eq!(code, 0);
    assert_eq!((json["layout"].as_str(), json["kind"].as_str()), (Some("merged-flash"), Some("merged-flash")));
    assert_eq!(json["flash_base"], 0x1000);
    assert_eq!((json["bootloader"]["offset"].as_u64(), json["bootloader"]["chip"].as_str()), (Some(0), Some("ESP32")));
    assert_eq!(json["bootloader"]["idf_version"]["text"], "v5.0.4");
    let apps = json["apps"].as_array().unwrap();
    let found: Vec<(&str, u64)> =
        apps.iter().map(|a| (a["partition"].as_str().unwrap(), a["offset"].as_u64().unwrap())).collect();
    assert_eq!(found, [("factory", 0xF000)], "file offsets in JSON");
    assert_eq!(apps[0]["image"]["checksum"]["ok"], true);

    let (code, text, _) = inspect_text(&path);
    assert_eq!(code, 0);
    assert!(text.contains("merged flash image starting at flash address 0x1000"), "{text}");
    for line in ["bootloader at 0x1000:", "partition table at 0x8000:", "app at factory at 0x10000:"] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let url = app.windows(6).position(|w| w == b"https:").unwrap();
    assert!(text.contains(&format!("  0x{:06x} https://ota.example.com/fw.bin", 0x10000 + url)), "{text}");
    assert!(text.contains("the app at 0x10000 has no app descriptor"), "{text}");

    // The same flash from address 0 is the merged image it always was.
    std::fs::write(&path, &flash).unwrap();
    let (_, json) = inspect_json(&path);
    assert_eq!((json["flash_base"].as_u64(), json["bootloader"]["offset"].as_u64()), (Some(0), Some(0x1000)));
}

#[test]
fn a_bootloader_says_which_esp_idf_built_it() {
    let tmp = TempDir::new("inspect-bootloaders");
    let cases = [
        ("v52.bin", bootloader_desc("v5.2.1-533-g9f4f8e24f2"), "descriptor", "v5.2.1-533-g9f4f8e24f2"),
        ("v43.bin", banner_dram("v4.3.1-dirty"), "strings", "v4.3.1-dirty"),
    ];
    for (name, dram, source, version) in cases {
        let path = tmp.0.join(name);
        std::fs::write(&path, esp32_bootloader(dram)).unwrap();
        let (code, json) = inspect_json(&path);
        assert_eq!((code, json["kind"].as_str()), (0, Some("bootloader")), "{name}");
        assert_eq!(json["bootloader"]["idf_version"]["source"], source, "{name}");
        assert_eq!(json["bootloader"]["idf_version"]["text"], version, "{name}");
        assert_eq!(json["apps"], serde_json::json!([]), "{name}");
        assert_eq!(json["findings"], serde_json::json!([]), "a bootloader verifies no server: {name}");
        let (_, text, _) = inspect_text(&path);
        assert!(text.contains(&format!("built with ESP-IDF {version}")), "{text}");
    }
    // Silenced (Arduino's, MicroPython's): no version to state.
    let path = tmp.0.join("silent.bin");
    std::fs::write(&path, esp32_bootloader(b"boot.esp32\0".to_vec())).unwrap();
    let (_, json) = inspect_json(&path);
    assert!(json["bootloader"]["idf_version"].is_null());
}

#[test]
fn an_app_without_a_descriptor_shows_its_version_string() {
    let tmp = TempDir::new("inspect-app-version");
    let path = tmp.0.join("arduino-idf323.bin");
    std::fs::write(&path, app_with_version_string("v3.2.3-14-gd3e562907")).unwrap();
    let (code, json) = inspect_json(&path);
    assert_eq!((code, json["kind"].as_str()), (0, Some("app")));
    let versions = &json["apps"][0]["idf_versions"];
    assert_eq!(versions[0]["version"], "v3.2.3-14-gd3e562907");
    assert_eq!(versions.as_array().map(Vec::len), Some(1));
}

/// An ESP8266 RTOS SDK v3 image: the ROM's format (0xE9, no extended header), IROM, DRAM and
/// IRAM segments, DIO, 1 MB, and its `IDF_VER`.
fn esp8266_image() -> Vec<u8> {
    let irom = [b"\x01\x02\0v3.2-603-g18c3a194\0".as_slice(), &[0x40; 300]].concat();
    let segments: [(u32, &[u8]); 3] = [(0x4021_0010, &irom), (0x3FFE_8000, &[0x11; 64]), (0x4010_0000, &[0x22; 96])];
    let mut image = vec![0xE9, 3, 2, 0x20];
    image.extend_from_slice(&0x4021_192Cu32.to_le_bytes());
    for (addr, data) in segments {
        image.extend_from_slice(&addr.to_le_bytes());
        image.extend_from_slice(&(data.len() as u32).to_le_bytes());
        image.extend_from_slice(data);
    }
    while image.len() % 16 != 15 {
        image.push(0);
    }
    image.push(checksum_of(segments.iter().map(|(_, d)| *d)));
    image
}

#[test]
fn an_esp8266_image_is_named_and_not_judged() {
    let tmp = TempDir::new("inspect-esp8266");
    let path = tmp.0.join("simple_ota.bin");
    std::fs::write(&path, esp8266_image()).unwrap();

    let (code, text, err) = inspect_text(&path);
    assert_eq!(code, 2);
    let first = text.lines().next().unwrap();
    assert!(first.contains("an ESP8266 image (built with ESP8266 RTOS SDK v3.2-603-g18c3a194, v1 format"), "{first}");
    assert!(first.contains("entry 0x4021192c, 3 segments, flash DIO 40m 1MB, checksum"), "{first}");
    assert!(err.contains("otarig works with ESP32-family images"), "{err}");
    for esp32_words in ["not a valid image", "segment length", "findings", "app descriptor", "chip ESP32"] {
        assert!(!text.contains(esp32_words), "{esp32_words}: {text}");
    }

    let (_, json) = inspect_json(&path);
    assert_eq!((json["kind"].as_str(), json["foreign"]["format"].as_str()), (Some("esp8266"), Some("v1")));
    assert_eq!(
        (json["foreign"]["checksum"]["ok"].as_bool(), json["apps"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
    assert_eq!(json["findings"], serde_json::json!([]));
}

#[test]
fn files_that_are_no_image_say_what_they_are() {
    let tmp = TempDir::new("inspect-other-files");
    // As gen_esp32part.py writes it (0xC00 bytes), and cut after its MD5 row.
    let short_table = two_ota_table().to_bin().unwrap();
    let mut table = short_table.clone();
    table.resize(TABLE_MAX_LEN, 0xFF);
    let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    otadata.set_boot_slot(0, 2, false);
    let pem = std::fs::read(Path::new(ROOT).join("scenarios/pki/certs/isrg_root_x1.pem")).unwrap();
    let mut elf = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
    elf.extend_from_slice(&94u16.to_le_bytes());
    elf.resize(256, 0);
    let cases: [(&str, Vec<u8>, i32, &str, &str); 6] = [
        ("partition-table.bin", table.clone(), 0, "partition-table", "a partition table, not an image"),
        ("short-table.bin", short_table, 0, "partition-table", "a partition table, not an image"),
        ("boot_app0.bin", otadata.encode(), 0, "otadata", "an otadata partition, not an image"),
        ("ca.pem", pem, 0, "pem", "a PEM file (CERTIFICATE), not an image"),
        ("app.elf", elf, 2, "elf", "an ELF file (Xtensa), not a flash image"),
        ("noise.bin", (0..5000u32).map(|i| (i * 31 % 251) as u8).collect(), 2, "unknown", "not an ESP image"),
    ];
    for (name, bytes, expected_code, kind, headline) in cases {
        let path = tmp.0.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (code, text, err) = inspect_text(&path);
        assert_eq!(code, expected_code, "{name}: {text}{err}");
        assert!(text.lines().next().unwrap().contains(headline), "{name}: {text}");
        let (_, json) = inspect_json(&path);
        assert_eq!(json["kind"], kind, "{name}");
    }
    let (_, text, _) = inspect_text(&tmp.0.join("short-table.bin"));
    assert!(text.contains("ota_1") && text.contains("0x00210000"), "read as flashed, erased after it: {text}");
    let (_, text, err) = inspect_text(&tmp.0.join("noise.bin"));
    assert!(text.contains("invalid magic byte") && err.contains("at 0x0"), "{text}{err}");
}
