//! The 2nd-stage bootloader as an image: where each chip's ROM loads it from, the RAM its
//! linker script puts it in (which tells a bootloader image from an app), and the descriptor
//! (`esp_bootloader_desc_t`) v5.2 and later bootloaders carry.

use super::app::{ImageHeader, Segment, SegmentKind};
use super::chip::Chip;
use super::desc::{APP_DESC_OFFSET, c_string};

/// `ESP_BOOTLOADER_DESC_MAGIC_BYTE`.
pub const BOOTLOADER_DESC_MAGIC: u8 = 0x50;
/// `sizeof(esp_bootloader_desc_t)`.
pub(crate) const BOOTLOADER_DESC_LEN: usize = 80;

impl Chip {
    /// Where the ROM loads the 2nd-stage bootloader from (`CONFIG_BOOTLOADER_OFFSET_IN_FLASH`):
    /// 0x1000 on the ESP32 and ESP32-S2, 0x2000 on the ESP32-P4, 0 on the others. `None` for an
    /// unknown chip.
    pub fn bootloader_offset(self) -> Option<u32> {
        match self {
            Chip::Esp32 | Chip::Esp32S2 => Some(0x1000),
            Chip::Esp32P4 => Some(0x2000),
            Chip::Esp32C3 | Chip::Esp32S3 | Chip::Esp32C2 | Chip::Esp32C6 | Chip::Esp32H2 => Some(0),
            Chip::Unknown(_) => None,
        }
    }

    /// The RAM the 2nd-stage bootloader's linker script (`bootloader.ld`) places its
    /// `iram_loader_seg`, `iram_seg` and `dram_seg` in, over every release from v3.2 (ESP32),
    /// v4.2 (ESP32-S2), v4.3 (ESP32-C3, ESP32-S3), v4.4 (ESP32-H2), v5.0 (ESP32-C2), v5.1
    /// (ESP32-C6) and v5.2 (ESP32-P4) to v6.0, rounded out to 4 KiB. Apps load elsewhere, or
    /// also map flash, which a bootloader never does.
    fn bootloader_ram(self) -> &'static [(u32, u32)] {
        match self {
            Chip::Esp32 => &[(0x4007_8000, 0x4009_0000), (0x3FFF_0000, 0x4000_0000)],
            Chip::Esp32S2 => &[(0x4004_A000, 0x4005_6000), (0x3FFE_5000, 0x3FFE_B000)],
            Chip::Esp32C3 => &[(0x403C_B000, 0x403D_6000), (0x3FCD_5000, 0x3FCD_B000)],
            // v4.3 and v4.4 put it lower than v4.4.8 and later.
            Chip::Esp32S3 => &[
                (0x403B_6000, 0x403C_0000),
                (0x3FCD_0000, 0x3FCD_4000),
                (0x403C_8000, 0x403D_4000),
                (0x3FCE_2000, 0x3FCE_8000),
            ],
            Chip::Esp32C2 => &[(0x403A_C000, 0x403B_6000), (0x3FCD_5000, 0x3FCD_B000)],
            Chip::Esp32C6 => &[(0x4086_B000, 0x4087_B000)],
            // v4.4 and v5.0 used the ESP32-H2 beta's memory map.
            Chip::Esp32H2 => &[(0x403C_D000, 0x403D_7000), (0x3FCD_6000, 0x3FCD_C000), (0x4083_C000, 0x4084_B000)],
            Chip::Esp32P4 => &[(0x4FF2_9000, 0x4FF3_9000)],
            Chip::Unknown(_) => &[],
        }
    }
}

/// Whether an image with this header and these segments is a 2nd-stage bootloader: it maps
/// nothing from flash and loads every segment into the bootloader's RAM of its chip (padding
/// aside). An app always maps its code and read-only data from flash.
pub(crate) fn is_bootloader(header: &ImageHeader, segments: &[Segment]) -> bool {
    let ram = header.chip.bootloader_ram();
    let mut loaded = segments.iter().filter(|s| s.kind != SegmentKind::Padding).peekable();
    loaded.peek().is_some()
        && loaded.all(|s| {
            let end = u64::from(s.load_addr) + u64::from(s.length);
            s.kind == SegmentKind::Load && ram.iter().any(|&(lo, hi)| s.load_addr >= lo && end <= u64::from(hi))
        })
}

/// `esp_bootloader_desc_t` (v5.2 and later): what a bootloader says about its own build, at the
/// start of its first segment, where `esp_ota_get_bootloader_description` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BootloaderDesc {
    /// `CONFIG_BOOTLOADER_PROJECT_VER`.
    pub version: u32,
    /// The anti-rollback version (v5.5 and later; a reserved zero before).
    pub secure_version: u8,
    /// `IDF_VER`, up to its NUL.
    pub idf_ver: String,
    /// `__DATE__ " " __TIME__`, empty without `CONFIG_BOOTLOADER_COMPILE_TIME_DATE`.
    pub(crate) date_time: String,
}

/// Reads a bootloader descriptor from a bootloader image (`image` starts at its header).
///
/// `None` when the magic byte is absent (bootloaders before v5.2, an app), fewer than
/// [`BOOTLOADER_DESC_LEN`] bytes follow, or the version field is not a NUL-terminated printable
/// string, which `IDF_VER` always is (ESP-IDF checks only the magic byte; a v5.1 bootloader's
/// data may start with 0x50 by chance).
pub(crate) fn parse_bootloader_desc(image: &[u8]) -> Option<BootloaderDesc> {
    // The first segment's data: the same place as an app's descriptor.
    let desc: &[u8; BOOTLOADER_DESC_LEN] = image.get(APP_DESC_OFFSET..)?.first_chunk()?;
    if desc[0] != BOOTLOADER_DESC_MAGIC {
        return None;
    }
    let idf_field = &desc[8..40];
    let end = memchr::memchr(0, idf_field)?;
    if end == 0 || !idf_field[..end].iter().all(|b| (0x20..0x7F).contains(b)) {
        return None;
    }
    Some(BootloaderDesc {
        version: u32::from_le_bytes([desc[4], desc[5], desc[6], desc[7]]),
        secure_version: desc[3],
        idf_ver: c_string(idf_field),
        date_time: c_string(&desc[40..64]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::build::{ImageSpec, SegmentSpec, write_image};
    use crate::image::parse_segments;

    /// A v5.2-style ESP32 bootloader: DRAM (optionally starting with a descriptor), IRAM loader,
    /// IRAM.
    fn bootloader(dram: Vec<u8>) -> Vec<u8> {
        let segments = vec![
            SegmentSpec { load_addr: 0x3FFF_0030, data: dram },
            SegmentSpec { load_addr: 0x4007_8000, data: vec![0x36; 64] },
            SegmentSpec { load_addr: 0x4008_0400, data: vec![0x37; 32] },
        ];
        write_image(&ImageSpec { hash_appended: true, ..ImageSpec::esp32(0x4008_0640, segments) })
    }

    fn desc(idf: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; BOOTLOADER_DESC_LEN];
        d[0] = BOOTLOADER_DESC_MAGIC;
        d[3] = 2;
        d[4..8].copy_from_slice(&1u32.to_le_bytes());
        d[8..8 + idf.len()].copy_from_slice(idf);
        d[40..60].copy_from_slice(b"May 30 2024 11:12:37");
        d
    }

    fn looks_like_bootloader(image: &[u8]) -> bool {
        let read = parse_segments(image).expect("an image");
        is_bootloader(&read.header, &read.segments)
    }

    #[test]
    fn the_descriptor_is_read_at_the_first_segment() {
        let image = bootloader(desc(b"v5.2.1-533-g9f4f8e24f2"));
        let read = parse_bootloader_desc(&image).expect("descriptor");
        assert_eq!(
            read,
            BootloaderDesc {
                version: 1,
                secure_version: 2,
                idf_ver: "v5.2.1-533-g9f4f8e24f2".into(),
                date_time: "May 30 2024 11:12:37".into()
            }
        );
    }

    #[test]
    fn without_magic_or_a_version_string_there_is_no_descriptor() {
        assert_eq!(parse_bootloader_desc(&bootloader(vec![0x51; 96])), None);
        assert_eq!(parse_bootloader_desc(&bootloader(desc(b""))), None);
        assert_eq!(parse_bootloader_desc(&bootloader(desc(b"v5.2\x01"))), None);
        assert_eq!(parse_bootloader_desc(&bootloader(desc(&[b'v'; 32]))), None, "no NUL in the field");
        let image = bootloader(desc(b"v5.2"));
        assert_eq!(parse_bootloader_desc(&image[..APP_DESC_OFFSET + BOOTLOADER_DESC_LEN - 1]), None);
        assert_eq!(parse_bootloader_desc(&[]), None);
    }

    #[test]
    fn bootloaders_load_only_into_the_bootloaders_ram() {
        assert!(looks_like_bootloader(&bootloader(vec![0; 16])));
        let app = ImageSpec::esp32(
            0x4008_1000,
            vec![
                SegmentSpec { load_addr: 0x3F40_0020, data: vec![1; 32] },
                SegmentSpec { load_addr: 0x3FFB_0000, data: vec![2; 32] },
                SegmentSpec { load_addr: 0x400D_0020, data: vec![3; 32] },
            ],
        );
        assert!(!looks_like_bootloader(&write_image(&app)), "an app maps flash");
        // esptool's RAM-only test apps load where no bootloader does.
        let ram_app = ImageSpec::esp32(
            0x4008_C008,
            vec![
                SegmentSpec { load_addr: 0x3FFC_0000, data: vec![1; 16] },
                SegmentSpec { load_addr: 0x4008_C000, data: vec![2; 24] },
            ],
        );
        assert!(!looks_like_bootloader(&write_image(&ram_app)));
        let empty = ImageSpec::esp32(0x4008_0400, vec![]);
        assert!(!looks_like_bootloader(&write_image(&empty)));
        // A segment that starts in the bootloader's DRAM but runs past it.
        let spill = ImageSpec::esp32(0x4008_0400, vec![SegmentSpec { load_addr: 0x3FFF_FFF0, data: vec![0; 32] }]);
        assert!(!looks_like_bootloader(&write_image(&spill)));
    }

    #[test]
    fn bootloaders_of_other_chips_by_their_own_ram() {
        // ESP32-S3 v6.0 (kossovm) and ESP32-C3 v5.x layouts.
        for (chip, addrs) in
            [(9u16, [0x3FCE_2820, 0x403C_8700, 0x403C_B700]), (5, [0x3FCD_5710, 0x403C_C710, 0x403C_E710])]
        {
            let segments = addrs.iter().map(|&load_addr| SegmentSpec { load_addr, data: vec![0; 16] }).collect();
            let spec = ImageSpec { chip_id: chip, ..ImageSpec::esp32(addrs[1], segments) };
            assert!(looks_like_bootloader(&write_image(&spec)), "chip {chip}");
            let spec = ImageSpec { chip_id: 0, ..spec };
            assert!(!looks_like_bootloader(&write_image(&spec)), "the same addresses on an ESP32");
        }
        assert_eq!(Chip::Esp32.bootloader_offset(), Some(0x1000));
        assert_eq!(Chip::Esp32S3.bootloader_offset(), Some(0));
        assert_eq!(Chip::Esp32P4.bootloader_offset(), Some(0x2000));
        assert_eq!(Chip::Unknown(0x17).bootloader_offset(), None);
    }
}
