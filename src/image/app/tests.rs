use super::*;
use crate::image::Chip;
use crate::image::desc::APP_DESC_MAGIC;

const C3: u16 = 0x0005;

/// An image as esptool writes one: header (DIO, 80m, 2MB, min rev v0.3, max v3.99),
/// segments, zero padding to 15 mod 16, the checksum byte, the SHA-256 if `hash`.
fn forge(chip: u16, hash: bool, segments: &[(u32, &[u8])]) -> Vec<u8> {
    let mut img = vec![IMAGE_MAGIC, segments.len() as u8, 2, 0x1F, 0x80, 0, 0x38, 0x40];
    img.extend_from_slice(&[0xEE, 0, 0, 0, chip as u8, (chip >> 8) as u8, 0, 3, 0, 0x8F, 1]);
    img.extend_from_slice(&[0, 0, 0, 0, u8::from(hash)]);
    for (addr, data) in segments {
        img.extend_from_slice(&addr.to_le_bytes());
        img.extend_from_slice(&(data.len() as u32).to_le_bytes());
        img.extend_from_slice(data);
    }
    while img.len() % 16 != 15 {
        img.push(0);
    }
    img.push(checksum_of(segments.iter().map(|(_, data)| *data)));
    if hash {
        let digest = sha2::Sha256::digest(&img);
        img.extend_from_slice(&digest);
    }
    img
}

/// A C3 app: a DROM segment that starts with an app descriptor, then an IRAM segment.
fn app(hash: bool) -> Vec<u8> {
    let mut desc = [0u8; 256];
    desc[..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
    desc[0x10..0x15].copy_from_slice(b"1.0.0");
    let code: Vec<u8> = (1u8..=20).collect();
    forge(C3, hash, &[(0x3C00_0020, &desc), (0x4038_0000, &code)])
}

#[test]
fn reads_header_segments_checksum_hash_and_descriptor() {
    let bytes = app(true);
    let img = parse_app(&bytes).expect("valid image");
    let h = &img.header;
    assert_eq!((h.segment_count, h.chip, h.entry_addr, h.wp_pin), (2, Chip::Esp32C3, 0x4038_0080, 0xEE));
    assert_eq!(
        (h.spi_mode.name(), h.spi_speed.name(h.chip), h.spi_size.name()),
        (Some("DIO"), Some("80m"), Some("2MB"))
    );
    assert_eq!((h.min_chip_rev_full, h.max_chip_rev_full, h.has_hash()), (3, 399, true));
    let seg = |i: usize| &img.segments[i];
    assert_eq!(
        (seg(0).header_offset, seg(0).data_offset, seg(0).length, seg(0).kind),
        (0x18, 0x20, 256, SegmentKind::Map)
    );
    assert_eq!(
        (seg(1).header_offset, seg(1).data_offset, seg(1).length, seg(1).kind),
        (0x120, 0x128, 20, SegmentKind::Load)
    );
    assert_eq!(seg(1).load_addr, 0x4038_0000);
    assert!(img.checksum.ok() && img.hash.is_some_and(|h| h.ok()) && img.is_valid());
    assert_eq!((img.checksum.offset, img.length, img.trailing), (0x13F, 0x140 + 32, 0));
    assert_eq!(img.app_desc.map(|d| d.version), Some("1.0.0".to_owned()));
}

#[test]
fn trailing_bytes_are_counted_not_refused() {
    let mut bytes = app(true);
    let length = bytes.len();
    bytes.extend_from_slice(&[0xFF; 100]);
    let img = parse_app(&bytes).expect("valid image");
    assert_eq!((img.length, img.trailing, img.is_valid()), (length, 100, true));
}

#[test]
fn without_hash_the_image_ends_at_the_checksum() {
    let img = parse_app(&app(false)).expect("valid image");
    assert_eq!((img.hash, img.length, img.is_valid()), (None, 0x140, true));
}

#[test]
fn bad_checksum_and_bad_hash_are_findings() {
    let mut bytes = app(false);
    bytes[0x130] ^= 0x40; // code byte
    let img = parse_app(&bytes).expect("readable image");
    assert_eq!(
        (img.checksum.calculated ^ 0x40, img.checksum.stored, img.is_valid()),
        (img.checksum.stored, img.checksum.stored, false)
    );

    let mut bytes = app(true);
    bytes[0x13D] = 0x55; // zero padding: not in the checksum, but hashed
    let img = parse_app(&bytes).expect("readable image");
    let hash = img.hash.expect("hash appended");
    assert!(img.checksum.ok() && !hash.ok() && !img.is_valid());
    assert_eq!(hash.stored.0[..], app(true)[0x140..]);
}

#[test]
fn v3_2_headers_read_as_esp32_without_descriptor() {
    let mut bytes = forge(0, false, &[(0x3FFB_0000, &[7; 8]), (0x4008_0000, &[9; 4])]);
    bytes[14..23].fill(0);
    let img = parse_app(&bytes).expect("valid image");
    assert_eq!((img.header.chip, &img.app_desc, img.is_valid()), (Chip::Esp32, &None, true));
    assert_eq!(img.segments.iter().map(|s| s.kind).collect::<Vec<_>>(), [SegmentKind::Load; 2]);
}

#[test]
fn segments_are_classified_by_the_chips_windows() {
    let kinds = |chip, addrs: &[u32]| -> Vec<SegmentKind> {
        let segs: Vec<(u32, &[u8])> = addrs.iter().map(|&a| (a, &[][..])).collect();
        parse_app(&forge(chip, false, &segs)).expect("valid image").segments.iter().map(|s| s.kind).collect()
    };
    use SegmentKind::*;
    let esp32 = [0x3F40_0020, 0x400D_0020, 0x3FFB_0000, 0x4008_0000, 0x5000_0000, 0];
    assert_eq!(kinds(0, &esp32), [Map, Map, Load, Load, Load, Padding]);
    assert_eq!(kinds(0x0009, &[0x3C00_0020, 0x4200_0020, 0x3FC8_8000]), [Map, Map, Load]);
    assert_eq!(kinds(0x0042, &[0x3C00_0020, 0]), [Unknown, Padding]);
    assert_eq!(Chip::from_id(0x0042).to_string(), "unknown chip 0x0042");
}

#[test]
fn checksum_of_matches_idf_word_wise_xor() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).map(|b| b.wrapping_mul(37)).collect();
    let word = data.chunks(4).fold(u32::from(CHECKSUM_SEED), |acc, w| acc ^ u32::from_le_bytes(w.try_into().unwrap()));
    let idf = (word >> 24) ^ (word >> 16) ^ (word >> 8) ^ word;
    assert_eq!(checksum_of([&data[..500], &data[500..]].into_iter()), idf as u8);
}

#[test]
fn structural_problems_are_errors_with_their_place() {
    use ImageError::*;
    let err = |bytes: &[u8]| parse_app(bytes).expect_err("structural error");
    assert!(matches!(err(&[]), Truncated { part: ImagePart::Header, offset: 0, needed: 24, available: 0 }));
    assert!(matches!(err(&[0xFF; 64]), BadMagic { offset: 0, got: 0xFF }));
    assert!(matches!(err(&app(true)[..23]), Truncated { part: ImagePart::Header, available: 23, .. }));
    for count in [17, 255] {
        let mut bytes = app(true);
        bytes[1] = count;
        assert!(matches!(err(&bytes), TooManySegments { offset: 1, count: c, max: 16 } if c == count));
    }
    for length in [0xFFFF_FFFF, 6, SIXTEEN_MB] {
        let mut bytes = app(true);
        bytes[0x124..0x128].copy_from_slice(&length.to_le_bytes()); // segment 1's length
        assert!(
            matches!(err(&bytes), InvalidSegmentLength { index: 1, header_offset: 0x120, length: l } if l == length)
        );
    }
    let mut bytes = app(true);
    bytes[0x124..0x128].copy_from_slice(&0x1000u32.to_le_bytes());
    assert!(matches!(err(&bytes), SegmentPastEnd { index: 1, header_offset: 0x120, length: 0x1000, remaining: 0x38 }));
    assert!(matches!(
        err(&app(true)[..0x124]),
        Truncated { part: ImagePart::SegmentHeader { index: 1 }, offset: 0x120, needed: 8, available: 4 }
    ));
    assert!(matches!(
        err(&app(true)[..0x13F]),
        Truncated { part: ImagePart::Checksum, offset: 0x13C, needed: 4, available: 3 }
    ));
    assert!(matches!(
        err(&app(true)[..0x150]),
        Truncated { part: ImagePart::Hash, offset: 0x140, needed: 32, available: 16 }
    ));
}

#[test]
fn every_truncation_is_an_error() {
    for hash in [true, false] {
        let bytes = app(hash);
        for end in 0..bytes.len() {
            assert!(parse_app(&bytes[..end]).is_err(), "prefix of {end} bytes (hash: {hash})");
        }
    }
}

#[test]
fn every_single_byte_corruption_is_caught_or_refused() {
    let mut bytes = app(true);
    bytes.extend_from_slice(&[0xFF; 4]);
    let length = bytes.len() - 4;
    for at in 0..bytes.len() {
        for value in 0..=255u8 {
            let mut corrupt = bytes.clone();
            corrupt[at] = value;
            let unchanged = value == bytes[at];
            // Clearing hash_appended leaves a valid image with the digest as trailing bytes.
            let unhashed = at == 23 && value == 0;
            match parse_app(&corrupt) {
                Ok(img) if img.is_valid() => {
                    assert!(unchanged || unhashed || at >= length, "byte {at:#x} = {value:#04x}");
                }
                Ok(_) | Err(_) => assert!(!unchanged && at < length),
            }
        }
    }
}

#[test]
fn chip_ids_and_flash_settings_have_espressif_names() {
    for id in [0x0000, 0x0002, 0x0005, 0x0009, 0x000C, 0x000D, 0x0010, 0x0012, 0x0042] {
        assert_eq!(Chip::from_id(id).id(), id);
    }
    assert_eq!(Chip::from_id(0x0012).name(), Some("ESP32-P4"));
    assert_eq!((SpiMode(5).name(), SpiMode(6).name()), (Some("SLOW_READ"), None));
    assert_eq!(
        (FlashSize(7).name(), FlashSize(7).bytes(), FlashSize(8).bytes()),
        (Some("128MB"), Some(128 << 20), None)
    );
    let freq = |raw, chip| FlashFreq(raw).name(Chip::from_id(chip));
    assert_eq!((freq(0xF, 0x0000), freq(0xF, 0x000C), freq(0x1, 0x0010)), (Some("80m"), Some("60m"), Some("16m")));
    assert_eq!((freq(0x3, 0x0000), freq(0x0, 0x0042)), (None, None));
}
