//! Writing ESP app images in the real format: header and extended header, segments, the XOR
//! checksum in its padding block, and the appended SHA-256 — what `esptool elf2image` writes,
//! for images the rig builds itself.

use sha2::Digest;

use super::otadata::Otadata;
use super::partition::{ESP32_BOOTLOADER_OFFSET, TABLE_MAX_LEN, TABLE_OFFSET, two_ota_table};
use super::{CHECKSUM_SEED, IMAGE_MAGIC};

/// One segment: where it loads and its bytes (padded to a multiple of 4 with zeros).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    /// The address the data is mapped or loaded at on the chip (`vaddr`).
    pub load_addr: u32,
    /// The segment's bytes as given; padding is added when written.
    pub data: Vec<u8>,
}

/// The header fields of an image to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// `esp_chip_id_t` (ESP32 0, ESP32-C3 5, ESP32-S3 9).
    pub chip_id: u16,
    /// Where the bootloader jumps once the segments are in place.
    pub entry_addr: u32,
    /// SPI mode byte (2 = DIO).
    pub spi_mode: u8,
    /// Flash size nibble in the high half, frequency nibble in the low half (0x20 = 4 MB, 40 MHz).
    pub spi_size_speed: u8,
    /// Append a SHA-256 (ESP-IDF apps do; the ESP32 ROM ignores it for bootloaders).
    pub hash_appended: bool,
    /// The segments in the order they are written.
    pub segments: Vec<SegmentSpec>,
}

impl ImageSpec {
    /// An ESP32 image with ESP-IDF's usual flash settings (DIO, 40 MHz, 4 MB).
    pub fn esp32(entry_addr: u32, segments: Vec<SegmentSpec>) -> Self {
        Self { chip_id: 0, entry_addr, spi_mode: 2, spi_size_speed: 0x20, hash_appended: true, segments }
    }
}

/// The image's bytes.
pub fn write_image(spec: &ImageSpec) -> Vec<u8> {
    let mut out = vec![IMAGE_MAGIC, spec.segments.len() as u8, spec.spi_mode, spec.spi_size_speed];
    out.extend_from_slice(&spec.entry_addr.to_le_bytes());
    // Extended header: wp_pin (disabled), spi_pin_drv[3], chip_id, min_chip_rev,
    // min/max_chip_rev_full, reserved[4], hash_appended.
    out.push(0xEE);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&spec.chip_id.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(u8::from(spec.hash_appended));
    let mut checksum = CHECKSUM_SEED;
    for segment in &spec.segments {
        let mut data = segment.data.clone();
        data.resize(data.len().div_ceil(4) * 4, 0);
        out.extend_from_slice(&segment.load_addr.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        checksum = data.iter().fold(checksum, |sum, byte| sum ^ byte);
        out.extend_from_slice(&data);
    }
    // Zero padding so that the checksum byte ends a 16-byte block.
    while out.len() % 16 != 15 {
        out.push(0);
    }
    out.push(checksum);
    if spec.hash_appended {
        let digest = sha2::Sha256::digest(&out);
        out.extend_from_slice(&digest);
    }
    out
}

/// A whole ESP32 flash of `size` bytes as `esptool write-flash` would leave it: the bootloader
/// at 0x1000, the standard two-OTA partition table at 0x8000, otadata (erased when `None`) and
/// the apps at their offsets; everything else erased.
pub fn merged_flash(size: usize, bootloader: &[u8], otadata: Option<&Otadata>, apps: &[(usize, &[u8])]) -> Vec<u8> {
    let mut flash = vec![0xFF; size];
    // What does not fit in the flash is cut off, as it would be on a chip.
    let mut put = |offset: usize, bytes: &[u8]| {
        if offset >= size {
            return;
        }
        let len = bytes.len().min(size - offset);
        flash[offset..offset + len].copy_from_slice(&bytes[..len]);
    };
    put(ESP32_BOOTLOADER_OFFSET, bootloader);
    let mut table = two_ota_table().to_bin().unwrap_or_default();
    table.resize(TABLE_MAX_LEN, 0xFF);
    put(TABLE_OFFSET, &table);
    if let Some(otadata) = otadata {
        put(0xd000, &otadata.encode());
    }
    for (offset, app) in apps {
        put(*offset, app);
    }
    flash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::parse_app;

    #[test]
    fn written_images_parse_and_verify() {
        let spec = ImageSpec::esp32(
            0x4008_0000,
            vec![
                SegmentSpec {
                    load_addr: 0x3F40_0020,
                    data: b"rodata with a URL https://ota.example.com/fw.bin\0".to_vec(),
                },
                SegmentSpec { load_addr: 0x400D_0020, data: vec![0x36; 1001] },
            ],
        );
        let bytes = write_image(&spec);
        assert_eq!(bytes.len() % 16, 0);
        let image = parse_app(&bytes).unwrap();
        assert!(image.is_valid(), "{image:?}");
        assert_eq!(image.segments.len(), 2);
        assert_eq!(image.segments[1].length, 1004);
        assert_eq!(image.length, bytes.len());
        assert!(image.hash.as_ref().is_some_and(super::super::app::HashCheck::ok));
    }
}
