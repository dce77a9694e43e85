use super::*;
use crate::image::build::{ImageSpec, SegmentSpec, merged_flash, write_image};
use crate::image::otadata::Otadata;
use crate::image::partition::{TABLE_MAX_LEN, two_ota_table};

/// An ESP32 bootloader as v5.x lays it out: DRAM, IRAM loader, IRAM.
fn esp32_bootloader() -> Vec<u8> {
    let segments = vec![
        SegmentSpec { load_addr: 0x3FFF_0030, data: b"\0v5.0.4\0".to_vec() },
        SegmentSpec { load_addr: 0x4007_8000, data: vec![0x36; 256] },
        SegmentSpec { load_addr: 0x4008_0400, data: vec![0x37; 128] },
    ];
    write_image(&ImageSpec { hash_appended: false, ..ImageSpec::esp32(0x4008_05CC, segments) })
}

fn esp32_app() -> Vec<u8> {
    write_image(&ImageSpec::esp32(
        0x4008_1000,
        vec![
            SegmentSpec { load_addr: 0x3F40_0020, data: vec![1; 64] },
            SegmentSpec { load_addr: 0x3FFB_0000, data: vec![2; 64] },
            SegmentSpec { load_addr: 0x400D_0020, data: vec![3; 256] },
        ],
    ))
}

fn table() -> Vec<u8> {
    let mut table = two_ota_table().to_bin().unwrap();
    table.resize(TABLE_MAX_LEN, 0xFF);
    table
}

#[test]
fn merged_images_from_0_and_from_the_bootloader() {
    let app = esp32_app();
    let flash = merged_flash(0x120000, &esp32_bootloader(), None, &[(0x10000, &app)]);
    assert_eq!(identify(&flash), FileKind::MergedFlash { base: 0, bootloader: 0x1000 });
    // `esptool merge-bin 0x1000 bootloader.bin 0x8000 partitions.bin ...`: no padding from 0.
    assert_eq!(identify(&flash[0x1000..]), FileKind::MergedFlash { base: 0x1000, bootloader: 0x1000 });
    // Without the table it is the bootloader alone.
    assert_eq!(identify(&flash[0x1000..0x7000]), FileKind::Bootloader);

    // An ESP32-S3's bootloader sits at 0: a merged image from 0 starts with it.
    let s3 = [0x3FCE_2820, 0x403C_8700, 0x403C_B700].map(|load_addr| SegmentSpec { load_addr, data: vec![0; 64] });
    let s3_bootloader = write_image(&ImageSpec { chip_id: 9, ..ImageSpec::esp32(0x403C_8908, s3.to_vec()) });
    let mut s3_flash = vec![0xFF; 0x9000];
    s3_flash[..s3_bootloader.len()].copy_from_slice(&s3_bootloader);
    s3_flash[0x8000..0x8000 + TABLE_MAX_LEN].copy_from_slice(&table());
    assert_eq!(identify(&s3_flash), FileKind::MergedFlash { base: 0, bootloader: 0 });
}

#[test]
fn apps_bootloaders_and_damaged_apps() {
    assert_eq!(identify(&esp32_app()), FileKind::App);
    assert_eq!(identify(&esp32_bootloader()), FileKind::Bootloader);
    let mut cut = esp32_app();
    cut.truncate(100);
    assert_eq!(identify(&cut), FileKind::App, "an ESP32 header: a damaged ESP32 app");
    // An app image that starts with a table-less bootloader-like image is not merged.
    let mut app_then_table = esp32_app();
    app_then_table.resize(0x8000, 0xFF);
    app_then_table.extend_from_slice(&table());
    assert_eq!(identify(&app_then_table), FileKind::App);
}

/// An ESP8266 RTOS SDK v3 image's start: 0xE9, 5 segments, DIO, 1 MB; IROM first.
fn esp8266_v1() -> Vec<u8> {
    let mut img = vec![0xE9, 2, 2, 0x20, 0x2C, 0x19, 0x21, 0x40];
    for (addr, data) in [(0x4021_0010u32, b"\0v3.2-603-g18c3a194\0".to_vec()), (0x3FFE_8000, vec![0x40; 24])] {
        img.extend_from_slice(&addr.to_le_bytes());
        img.extend_from_slice(&(data.len() as u32).to_le_bytes());
        img.extend_from_slice(&data);
    }
    while img.len() % 16 != 15 {
        img.push(0);
    }
    img.push(0xEF);
    img
}

#[test]
fn esp8266_images_are_named_with_their_sdk_version() {
    let FileKind::Foreign(Foreign::Esp8266 { image, sdk_version }) = identify(&esp8266_v1()) else {
        panic!("{:?}", identify(&esp8266_v1()))
    };
    assert_eq!((image.entry_addr, image.segment_count), (0x4021_192C, 2));
    assert_eq!(sdk_version.map(|v| v.text), Some("v3.2-603-g18c3a194".to_owned()));
    // The same bytes with an ESP32 extended header's chip id and hash byte are ESP32's to read.
    let mut esp32_like = esp8266_v1();
    esp32_like[12..14].copy_from_slice(&[0, 0]);
    esp32_like[23] = 0;
    assert_eq!(identify(&esp32_like), FileKind::App);
}

#[test]
fn files_that_are_not_images() {
    assert_eq!(identify(&table()), FileKind::Foreign(Foreign::PartitionTable));
    let mut boot_app0 = Otadata::decode(&[0xFF; OTADATA_SIZE]);
    boot_app0.set_boot_slot(0, 2, false);
    let mut bytes = boot_app0.encode();
    bytes[SECTOR_SIZE..SECTOR_SIZE + 4].fill(0); // Arduino's second entry: sequence 0
    assert_eq!(identify(&bytes), FileKind::Foreign(Foreign::Otadata));
    assert_eq!(identify(&[0xFF; OTADATA_SIZE]), FileKind::Foreign(Foreign::Otadata), "ota_data_initial.bin");
    bytes[40] = 0;
    assert_eq!(identify(&bytes), FileKind::Unknown, "more than the entries");
    assert_eq!(identify(&[0xFF; OTADATA_SIZE - 1]), FileKind::Unknown);

    let pem = "\u{FEFF}\n-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(identify(pem.as_bytes()), FileKind::Foreign(Foreign::Pem { label: "RSA PRIVATE KEY".into() }));
    assert_eq!(identify(b"-----BEGIN nope-----"), FileKind::Unknown);

    let mut elf = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
    elf.extend_from_slice(&94u16.to_le_bytes());
    assert_eq!(identify(&elf), FileKind::Foreign(Foreign::Elf { machine: 94 }));
    assert_eq!(Foreign::elf_machine_name(94), Some("Xtensa"));
    assert_eq!(identify(&elf[..19]), FileKind::Unknown);

    assert_eq!(identify(&[]), FileKind::Unknown);
    assert_eq!(identify(&[0xE9; 64]), FileKind::Unknown);
    assert_eq!(identify(&[0xEA, 4, 2, 0x20]), FileKind::Unknown);
    assert_eq!(identify(&(0..5000u32).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>()), FileKind::Unknown);
}
