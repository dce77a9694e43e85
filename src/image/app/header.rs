//! The image header (`esp_image_header_t`) and what it says about the chip: its id, its flash
//! settings, and which load addresses it maps from flash.

use super::IMAGE_HEADER_LEN;
use crate::image::Chip;

/// Below this a load address is reserved: padding, never loaded (ESP-IDF `should_load`).
const RESERVED_BELOW: u32 = 0x1000_0000;

impl Chip {
    /// The address windows the flash cache maps (IROM, DROM): ESP-IDF's `SOC_IROM_*` and
    /// `SOC_DROM_*` for ESP32 and ESP32-S2, esptool's `*_MAP_*` windows for the others.
    fn flash_windows(self) -> &'static [(u32, u32)] {
        match self {
            Chip::Esp32 => &[(0x400D_0000, 0x4040_0000), (0x3F40_0000, 0x3F80_0000)],
            Chip::Esp32S2 => &[(0x4008_0000, 0x4080_0000), (0x3F00_0000, 0x3FF8_0000)],
            Chip::Esp32C3 => &[(0x4200_0000, 0x4280_0000), (0x3C00_0000, 0x3C80_0000)],
            Chip::Esp32S3 => &[(0x4200_0000, 0x4400_0000), (0x3C00_0000, 0x3E00_0000)],
            Chip::Esp32C2 => &[(0x4200_0000, 0x4240_0000), (0x3C00_0000, 0x3C40_0000)],
            Chip::Esp32C6 | Chip::Esp32H2 => &[(0x4200_0000, 0x4300_0000)],
            Chip::Esp32P4 => &[(0x4000_0000, 0x4C00_0000)],
            Chip::Unknown(_) => &[],
        }
    }
}

/// The flash SPI mode byte (`esp_image_spi_mode_t`), kept raw so nothing is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpiMode(pub u8);

impl SpiMode {
    /// `QIO`, `QOUT`, `DIO`, `DOUT`, `FAST_READ`, `SLOW_READ`; `None` for other values.
    pub fn name(self) -> Option<&'static str> {
        ["QIO", "QOUT", "DIO", "DOUT", "FAST_READ", "SLOW_READ"].get(usize::from(self.0)).copied()
    }
}

/// The flash frequency nibble (`esp_image_spi_freq_t`); its meaning depends on the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashFreq(pub u8);

impl FlashFreq {
    /// esptool's name for this value on `chip` (`40m`, `80m`, …), `None` if it has none.
    pub fn name(self, chip: Chip) -> Option<&'static str> {
        let names = match chip {
            Chip::Esp32C2 => ["30m", "20m", "15m", "60m"],
            Chip::Esp32H2 => ["24m", "16m", "12m", "48m"],
            Chip::Unknown(_) => return None,
            _ => ["40m", "26m", "20m", "80m"],
        };
        match self.0 {
            0..=2 => Some(names[usize::from(self.0)]),
            0xF => Some(names[3]),
            _ => None,
        }
    }
}

/// The flash size nibble (`esp_image_flash_size_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashSize(pub u8);

impl FlashSize {
    /// The size in bytes: 1 MB for 0, doubling up to 128 MB for 7; `None` beyond.
    pub fn bytes(self) -> Option<u32> {
        (self.0 <= 7).then(|| 0x10_0000 << self.0)
    }

    /// esptool's name (`1MB` … `128MB`).
    pub fn name(self) -> Option<&'static str> {
        ["1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB"].get(usize::from(self.0)).copied()
    }
}

/// `esp_image_header_t`: the common header and the extended header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// How many segments follow the header.
    pub segment_count: u8,
    /// The flash mode the bootloader sets (QIO, DIO, ...).
    pub spi_mode: SpiMode,
    /// The flash clock, the header byte's low nibble.
    pub spi_speed: FlashFreq,
    /// The flash size the image was built for, the header byte's high nibble.
    pub spi_size: FlashSize,
    /// Where the bootloader jumps once the segments are in place.
    pub entry_addr: u32,
    /// GPIO for flash WP in (Q|D)IO modes; 0xEE means disabled.
    pub(crate) wp_pin: u8,
    /// Drive strengths of the flash pins.
    pub(crate) spi_pin_drv: [u8; 3],
    /// The chip the image was built for (`chip_id`).
    pub chip: Chip,
    /// The deprecated one-byte minimum chip revision.
    pub(crate) min_chip_rev: u8,
    /// Minimum chip revision, major × 100 + minor (v5.0+; zero before).
    pub(crate) min_chip_rev_full: u16,
    /// Maximum chip revision, major × 100 + minor (v5.0+; zero before).
    pub(crate) max_chip_rev_full: u16,
    /// The raw `hash_appended` byte; see `ImageHeader::has_hash`.
    pub hash_appended: u8,
}

impl ImageHeader {
    /// Whether a SHA-256 follows the checksum. ESP-IDF tests the byte for non-zero (esptool
    /// writes 1 and refuses anything but 0 or 1).
    pub(crate) fn has_hash(&self) -> bool {
        self.hash_appended != 0
    }

    pub(super) fn read(h: &[u8; IMAGE_HEADER_LEN]) -> ImageHeader {
        ImageHeader {
            segment_count: h[1],
            spi_mode: SpiMode(h[2]),
            spi_speed: FlashFreq(h[3] & 0x0F),
            spi_size: FlashSize(h[3] >> 4),
            entry_addr: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            wp_pin: h[8],
            spi_pin_drv: [h[9], h[10], h[11]],
            chip: Chip::from_id(u16::from_le_bytes([h[12], h[13]])),
            min_chip_rev: h[14],
            min_chip_rev_full: u16::from_le_bytes([h[15], h[16]]),
            max_chip_rev_full: u16::from_le_bytes([h[17], h[18]]),
            hash_appended: h[23],
        }
    }
}

/// What the bootloader does with a segment, decided by its load address as ESP-IDF decides it
/// (the word it prints at the end of its `segment N: …` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// In the chip's IROM or DROM window: mapped from flash through the cache (`map`).
    Map,
    /// Anywhere else at or above 0x10000000: copied into RAM (`load`). The bootloader checks
    /// the RAM range itself; this parser does not.
    Load,
    /// Below 0x10000000: reserved, never loaded (esptool's alignment padding uses address 0).
    Padding,
    /// The chip is unknown, so its flash windows are too.
    Unknown,
}

impl SegmentKind {
    pub(super) fn of(chip: Chip, load_addr: u32) -> SegmentKind {
        if let Chip::Unknown(_) = chip {
            return if load_addr < RESERVED_BELOW { SegmentKind::Padding } else { SegmentKind::Unknown };
        }
        if chip.flash_windows().iter().any(|&(lo, hi)| (lo..hi).contains(&load_addr)) {
            SegmentKind::Map
        } else if load_addr < RESERVED_BELOW {
            SegmentKind::Padding
        } else {
            SegmentKind::Load
        }
    }
}
