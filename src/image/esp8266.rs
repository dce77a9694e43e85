//! ESP8266 images, recognised so that they are named for what they are and not read as broken
//! ESP32 images: the ESP8266 ROM's format (version 1, magic 0xE9, the 8-byte header without
//! the ESP32's extended header) and the "v2" format of the ESP8266 bootloaders (magic 0xEA: an
//! IROM segment, then a version 1 image), as esptool's `ESP8266ROMFirmwareImage` and
//! `ESP8266V2FirmwareImage` read them.

use super::app::{Checksum, SpiMode, checksum_of};

/// The first byte of a "v2" image (`ESP8266V2FirmwareImage.IMAGE_V2_MAGIC`).
pub(crate) const ESP8266_V2_MAGIC: u8 = 0xEA;
const V1_MAGIC: u8 = 0xE9;
const COMMON_HEADER_LEN: usize = 8;
/// More segments than an ESP8266 image ever has (esptool writes at most a handful).
const MAX_SEGMENTS: u8 = 16;
/// ESP8266 flash is at most 16 MB; no segment is as long.
const MAX_SEGMENT_LEN: u32 = 0x100_0000;

/// Where ESP8266 segments go: DRAM, IRAM (with the cache-as-IRAM half), the flash-mapped IROM
/// window, and the RTC user memory (esptool's `ESP8266ROM` memory map).
const ESP8266_MEMORY: [(u32, u32); 4] =
    [(0x3FFE_8000, 0x4000_0000), (0x4010_0000, 0x4011_0000), (0x4020_0000, 0x4030_0000), (0x6000_1000, 0x6000_2000)];

/// Which of the two ESP8266 formats an image is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Esp8266Format {
    /// Loaded by the ROM itself (magic 0xE9); what the ESP8266 RTOS SDK v3 builds.
    V1,
    /// Loaded by the ESP8266 2nd-stage bootloader or rboot (magic 0xEA).
    V2,
}

/// What an ESP8266 image says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Esp8266Image {
    /// Which loader the image is for, by its magic byte.
    pub format: Esp8266Format,
    /// Where the loader jumps once the segments are in place.
    pub entry_addr: u32,
    /// Segments of the version 1 part (the v2 format's IROM segment is not counted).
    pub segment_count: u8,
    /// The flash mode byte of the header.
    pub spi_mode: SpiMode,
    /// The flash size and frequency byte, as stored (sizes differ from the ESP32's).
    pub flash_size_freq: u8,
    /// The XOR checksum over the version 1 part's segments.
    pub checksum: Checksum,
    /// Bytes the image takes, through its checksum.
    pub length: usize,
}

impl Esp8266Image {
    /// esptool's name for the flash size (`ESP8266ROM.FLASH_SIZES`).
    pub fn flash_size_name(&self) -> Option<&'static str> {
        let name = match self.flash_size_freq & 0xF0 {
            0x00 => "512KB",
            0x10 => "256KB",
            0x20 => "1MB",
            0x30 => "2MB",
            0x40 => "4MB",
            0x50 => "2MB-c1",
            0x60 => "4MB-c1",
            0x80 => "8MB",
            0x90 => "16MB",
            _ => return None,
        };
        Some(name)
    }
}

/// Reads `bytes` as an ESP8266 image: the header, every segment at an ESP8266 address and
/// within the input, and the checksum byte. `None` when they are not all there. Never panics
/// and allocates nothing.
pub(crate) fn read_esp8266(bytes: &[u8]) -> Option<Esp8266Image> {
    match *bytes.first()? {
        V1_MAGIC => read_v1(bytes, 0, Esp8266Format::V1),
        ESP8266_V2_MAGIC => {
            // `EA 04 mode size_freq entry`, then the IROM segment with a zero load address.
            let irom_len = u32_at(bytes, COMMON_HEADER_LEN + 4)?;
            if irom_len >= MAX_SEGMENT_LEN {
                return None;
            }
            let v1_at = (2 * COMMON_HEADER_LEN).checked_add(irom_len as usize)?;
            let image = read_v1(bytes, v1_at, Esp8266Format::V2)?;
            Some(Esp8266Image { entry_addr: u32_at(bytes, 4)?, ..image })
        }
        _ => None,
    }
}

/// The version 1 image at `at`: header, segments, checksum.
fn read_v1(bytes: &[u8], at: usize, format: Esp8266Format) -> Option<Esp8266Image> {
    let header: &[u8; COMMON_HEADER_LEN] = bytes.get(at..)?.first_chunk()?;
    if header[0] != V1_MAGIC || header[1] == 0 || header[1] > MAX_SEGMENTS {
        return None;
    }
    let mut next = at + COMMON_HEADER_LEN;
    let mut data = Vec::with_capacity(usize::from(header[1]));
    for _ in 0..header[1] {
        let load_addr = u32_at(bytes, next)?;
        let length = u32_at(bytes, next + 4)?;
        let in_memory = ESP8266_MEMORY.iter().any(|&(lo, hi)| (lo..hi).contains(&load_addr));
        if !in_memory || length >= MAX_SEGMENT_LEN {
            return None;
        }
        let start = next + COMMON_HEADER_LEN;
        data.push(bytes.get(start..start + length as usize)?);
        next = start + length as usize;
    }
    // As in ESP32 images, the checksum ends the 16-byte block after the last segment.
    let checksum_end = (next + 1 + 15) & !15;
    let &stored = bytes.get(checksum_end - 1)?;
    // The ESP8266 ROM's checksum is the ESP32's: XOR of the segment data, seeded 0xEF.
    let calculated = checksum_of(data.into_iter());
    Some(Esp8266Image {
        format,
        entry_addr: u32::from_le_bytes([header[4], header[5], header[6], header[7]]),
        segment_count: header[1],
        spi_mode: SpiMode(header[2]),
        flash_size_freq: header[3],
        checksum: Checksum { offset: checksum_end - 1, calculated, stored },
        length: checksum_end,
    })
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..)?.first_chunk().map(|b: &[u8; 4]| u32::from_le_bytes(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ESP8266 RTOS SDK v3-style image: 0xE9, IROM, DRAM and IRAM segments, DIO, 1 MB.
    fn v1(segments: &[(u32, &[u8])]) -> Vec<u8> {
        let mut img = vec![V1_MAGIC, segments.len() as u8, 2, 0x20];
        img.extend_from_slice(&0x4021_192Cu32.to_le_bytes());
        for (addr, data) in segments {
            img.extend_from_slice(&addr.to_le_bytes());
            img.extend_from_slice(&(data.len() as u32).to_le_bytes());
            img.extend_from_slice(data);
        }
        while img.len() % 16 != 15 {
            img.push(0);
        }
        img.push(checksum_of(segments.iter().map(|(_, d)| *d)));
        img
    }

    const SEGMENTS: [(u32, &[u8]); 3] = [(0x4021_0010, &[1; 40]), (0x3FFE_8000, &[2; 12]), (0x4010_0000, &[3; 20])];

    #[test]
    fn reads_a_version_1_image() {
        let bytes = v1(&SEGMENTS);
        let image = read_esp8266(&bytes).expect("an ESP8266 image");
        assert_eq!((image.format, image.entry_addr, image.segment_count), (Esp8266Format::V1, 0x4021_192C, 3));
        assert_eq!((image.spi_mode.name(), image.flash_size_name()), (Some("DIO"), Some("1MB")));
        assert!(image.checksum.ok());
        assert_eq!(image.length, bytes.len());
    }

    #[test]
    fn reads_a_v2_image_after_its_irom_segment() {
        let inner = v1(&SEGMENTS[1..]);
        let mut bytes = vec![ESP8266_V2_MAGIC, 4, 2, 0x40];
        bytes.extend_from_slice(&0x4010_0004u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&64u32.to_le_bytes());
        bytes.extend_from_slice(&[7; 64]);
        bytes.extend_from_slice(&inner);
        let image = read_esp8266(&bytes).expect("a v2 image");
        assert_eq!((image.format, image.entry_addr, image.segment_count), (Esp8266Format::V2, 0x4010_0004, 2));
        assert!(image.checksum.ok());
        assert_eq!(image.length, bytes.len());
    }

    #[test]
    fn esp32_images_and_cut_or_foreign_bytes_are_not_esp8266_images() {
        // An ESP32 header's extended part, read as a segment, loads at 0xEE.
        let mut esp32 = vec![V1_MAGIC, 1, 2, 0x20, 0, 0, 0x08, 0x40, 0xEE, 0, 0, 0, 0, 0, 0, 0];
        esp32.extend_from_slice(&[0; 48]);
        assert_eq!(read_esp8266(&esp32), None);
        let bytes = v1(&SEGMENTS);
        for end in 0..bytes.len() {
            assert_eq!(read_esp8266(&bytes[..end]), None, "cut at {end}");
        }
        assert_eq!(read_esp8266(&v1(&[(0x5000_0000, &[0; 4])])), None);
        assert_eq!(read_esp8266(&v1(&[])), None);
        assert_eq!(read_esp8266(&[0xEA, 4, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(read_esp8266(&[]), None);
    }

    #[test]
    fn a_bad_checksum_is_still_an_esp8266_image() {
        let mut bytes = v1(&SEGMENTS);
        bytes[30] ^= 1;
        assert!(read_esp8266(&bytes).is_some_and(|image| !image.checksum.ok()));
    }
}
