//! ESP app images read the way ESP-IDF's `esp_image_verify` reads them: header, segments, the
//! XOR checksum, the appended SHA-256, and the app descriptor.
//!
//! Pure: bytes in, an [`AppImage`] out. The rig needs it to say what it serves and what a board
//! holds before a device judges either, in the device's own terms (`Checksum failed.
//! Calculated 0x.. read 0x..`, `Image hash failed - image is corrupt`).

use std::fmt;
use std::ops::Range;

use sha2::Digest as _;

use super::desc::{AppDesc, parse_app_desc};
use super::error::{ImageError, ImagePart};

mod header;
pub use header::{FlashFreq, FlashSize, ImageHeader, SegmentKind, SpiMode};

/// `ESP_IMAGE_HEADER_MAGIC`.
pub(crate) const IMAGE_MAGIC: u8 = 0xE9;
/// `ESP_IMAGE_MAX_SEGMENTS`.
pub(crate) const MAX_SEGMENTS: u8 = 16;
/// `sizeof(esp_image_header_t)`: the common 8 bytes and the 16-byte extended header.
pub(crate) const IMAGE_HEADER_LEN: usize = 24;
/// `sizeof(esp_image_segment_header_t)`.
pub(crate) const SEGMENT_HEADER_LEN: usize = 8;
/// `ESP_ROM_CHECKSUM_INITIAL`: the XOR checksum's seed.
pub(crate) const CHECKSUM_SEED: u8 = 0xEF;
/// ESP-IDF refuses segments of this length or more.
const SIXTEEN_MB: u32 = 0x100_0000;
const HASH_LEN: usize = 32;

/// One segment: where its header and data are in the image, where it goes on the chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Position among the image's segments, from 0 (ESP-IDF's `segment N`).
    pub index: usize,
    /// Offset of the 8-byte segment header in the image (esptool's "File offs").
    pub(crate) header_offset: usize,
    /// Offset of the data (ESP-IDF's `paddr` minus the partition offset).
    pub data_offset: usize,
    /// Address the data is mapped or loaded at (ESP-IDF's `vaddr`).
    pub load_addr: u32,
    /// Data length in bytes.
    pub length: u32,
    /// What the bootloader does with it, by its load address.
    pub kind: SegmentKind,
}

impl Segment {
    /// The data's byte range in the image.
    pub(crate) fn data_range(&self) -> Range<usize> {
        self.data_offset..self.data_offset + self.length as usize
    }
}

/// The XOR checksum: calculated over the segment data, and the byte stored in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// Offset of the stored byte (the last of the 16-byte-aligned padding block).
    pub offset: usize,
    /// XOR of every segment's data, seeded with 0xEF: what the bootloader computes.
    pub calculated: u8,
    /// The byte the image carries.
    pub stored: u8,
}

impl Checksum {
    /// Whether ESP-IDF would accept it (otherwise: `Checksum failed. Calculated 0x.. read 0x..`).
    pub fn ok(&self) -> bool {
        self.calculated == self.stored
    }
}

/// A SHA-256 digest, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The appended SHA-256 (over everything from the header through the checksum byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCheck {
    /// Offset of the stored digest.
    pub offset: usize,
    /// SHA-256 of the image's bytes before the digest: what the bootloader computes.
    pub calculated: Sha256Digest,
    /// The 32 bytes the image carries.
    pub stored: Sha256Digest,
}

impl HashCheck {
    /// Whether ESP-IDF would accept it (otherwise: `Image hash failed - image is corrupt`).
    pub fn ok(&self) -> bool {
        self.calculated == self.stored
    }
}

/// An app (or bootloader) image that could be read, with what a verifier would say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppImage {
    /// The common and extended header.
    pub header: ImageHeader,
    /// The segments in stored order, as many as the header counts.
    pub segments: Vec<Segment>,
    /// The XOR checksum after the last segment.
    pub checksum: Checksum,
    /// Present when the header says a SHA-256 is appended.
    pub hash: Option<HashCheck>,
    /// The image's length: header, segments, checksum block and hash (ESP-IDF's `image_len`,
    /// without secure-boot signatures, which would count among the trailing bytes).
    pub length: usize,
    /// Bytes after the image (a partition dump's 0xFF fill, the rest of a merged flash image).
    pub trailing: usize,
    /// The app descriptor, when the first segment starts with one.
    pub app_desc: Option<AppDesc>,
}

impl AppImage {
    /// Whether ESP-IDF's verification would pass: checksum and, if appended, hash.
    pub fn is_valid(&self) -> bool {
        self.checksum.ok() && self.hash.as_ref().is_none_or(HashCheck::ok)
    }
}

/// The checksum ESP-IDF expects for this segment data: the XOR of every byte, seeded 0xEF.
/// For those who build images (and tests that forge them).
pub fn checksum_of<'a>(segments_data: impl Iterator<Item = &'a [u8]>) -> u8 {
    segments_data.fold(CHECKSUM_SEED, |acc, data| acc ^ xor_bytes(data))
}

fn xor_bytes(data: &[u8]) -> u8 {
    let (words, rest) = data.as_chunks::<8>();
    let wide = words.iter().fold(0u64, |acc, w| acc ^ u64::from_le_bytes(*w));
    let folded = wide.to_le_bytes().iter().fold(0u8, |acc, b| acc ^ b);
    rest.iter().fold(folded, |acc, b| acc ^ b)
}

/// An image's header and segment table, read without verifying anything: enough to tell
/// what the image is (an app, a bootloader, another chip's image) before its checksum and hash
/// are computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageSegments {
    pub header: ImageHeader,
    pub segments: Vec<Segment>,
    /// Offset just past the last segment's data (where the checksum padding starts).
    pub(crate) segments_end: usize,
}

/// Reads the header and the segments from the start of `bytes`, as [`parse_app`] does, with the
/// same structural errors; nothing is verified. Never panics, and allocates nothing in
/// proportion to counts or lengths read from the input.
pub(crate) fn parse_segments(bytes: &[u8]) -> Result<ImageSegments, ImageError> {
    let truncated = |part, offset: usize, needed| ImageError::Truncated {
        part,
        offset,
        needed,
        available: bytes.len().saturating_sub(offset),
    };
    match bytes.first() {
        Some(&IMAGE_MAGIC) => {}
        Some(&got) => return Err(ImageError::BadMagic { offset: 0, got }),
        None => return Err(truncated(ImagePart::Header, 0, IMAGE_HEADER_LEN)),
    }
    let raw_header = bytes.first_chunk().ok_or(truncated(ImagePart::Header, 0, IMAGE_HEADER_LEN))?;
    let header = ImageHeader::read(raw_header);
    if header.segment_count > MAX_SEGMENTS {
        let (count, max) = (header.segment_count, MAX_SEGMENTS);
        return Err(ImageError::TooManySegments { offset: 1, count, max });
    }

    let mut segments = Vec::with_capacity(usize::from(header.segment_count));
    let mut at = IMAGE_HEADER_LEN;
    for index in 0..usize::from(header.segment_count) {
        let part = ImagePart::SegmentHeader { index };
        let seg_header: &[u8; SEGMENT_HEADER_LEN] =
            bytes.get(at..).and_then(<[u8]>::first_chunk).ok_or(truncated(part, at, SEGMENT_HEADER_LEN))?;
        let [a0, a1, a2, a3, l0, l1, l2, l3] = *seg_header;
        let load_addr = u32::from_le_bytes([a0, a1, a2, a3]);
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        if !length.is_multiple_of(4) || length >= SIXTEEN_MB {
            return Err(ImageError::InvalidSegmentLength { index, header_offset: at, length });
        }
        let data_offset = at + SEGMENT_HEADER_LEN;
        let remaining = bytes.len() - data_offset;
        if remaining < length as usize {
            return Err(ImageError::SegmentPastEnd { index, header_offset: at, length, remaining });
        }
        let kind = SegmentKind::of(header.chip, load_addr);
        segments.push(Segment { index, header_offset: at, data_offset, load_addr, length, kind });
        at = data_offset + length as usize;
    }
    Ok(ImageSegments { header, segments, segments_end: at })
}

/// Reads an app image from the start of `bytes` and verifies it as `esp_image_verify` does.
///
/// Structural problems are errors; a wrong checksum or hash is reported in the [`AppImage`].
/// Bytes after the image are allowed and counted. Never panics, and allocates nothing in
/// proportion to counts or lengths read from the input.
///
/// ```
/// use otarig::image::build::{ImageSpec, SegmentSpec, write_image};
/// use otarig::image::{Chip, parse_app};
///
/// // An ESP32 image with one segment of code in IRAM, as esptool would write it.
/// let code = SegmentSpec { load_addr: 0x4008_0000, data: vec![0x36; 64] };
/// let mut bytes = write_image(&ImageSpec::esp32(0x4008_0000, vec![code]));
///
/// let image = parse_app(&bytes)?;
/// assert_eq!(image.header.chip, Chip::Esp32);
/// assert_eq!(image.segments[0].length, 64);
/// assert!(image.is_valid());
///
/// // A flipped bit in the code is no structural error, but the checksum and hash catch it.
/// bytes[image.segments[0].data_offset] ^= 1;
/// let image = parse_app(&bytes)?;
/// assert!(!image.checksum.ok() && !image.is_valid());
/// # Ok::<(), otarig::image::ImageError>(())
/// ```
pub fn parse_app(bytes: &[u8]) -> Result<AppImage, ImageError> {
    let ImageSegments { header, segments, segments_end: at } = parse_segments(bytes)?;
    let truncated = |part, offset: usize, needed| ImageError::Truncated {
        part,
        offset,
        needed,
        available: bytes.len().saturating_sub(offset),
    };
    let calculated = checksum_of(segments.iter().map(|s| &bytes[s.data_range()]));

    // The checksum is the last byte of the 16-byte block that follows the last segment.
    let checksum_end = (at + 1 + 15) & !15;
    let &stored = bytes.get(checksum_end - 1).ok_or(truncated(ImagePart::Checksum, at, checksum_end - at))?;
    let checksum = Checksum { offset: checksum_end - 1, calculated, stored };

    let hash = if header.has_hash() {
        let stored: &[u8; HASH_LEN] = bytes.get(checksum_end..).and_then(<[u8]>::first_chunk).ok_or(truncated(
            ImagePart::Hash,
            checksum_end,
            HASH_LEN,
        ))?;
        let calculated: [u8; HASH_LEN] = sha2::Sha256::digest(&bytes[..checksum_end]).into();
        let (calculated, stored) = (Sha256Digest(calculated), Sha256Digest(*stored));
        Some(HashCheck { offset: checksum_end, calculated, stored })
    } else {
        None
    };
    let length = checksum_end + hash.map_or(0, |_| HASH_LEN);

    let app_desc = segments.first().and_then(|first| parse_app_desc(&bytes[first.data_range()]));
    Ok(AppImage { header, segments, checksum, hash, length, trailing: bytes.len() - length, app_desc })
}

#[cfg(test)]
mod tests;
