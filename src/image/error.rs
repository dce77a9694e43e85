//! What keeps bytes from being read as an ESP app image at all.
//!
//! Only structural problems are errors: without a header and whole segments there is nothing to
//! show. A bad checksum or hash is a finding about an image that was read, so it lives in
//! [`AppImage`](super::AppImage), where `inspect` can show it next to everything else.

use std::fmt;

/// A structural problem in an app image, with the offset where it was found.
///
/// Messages follow ESP-IDF's `esp_image` wording where it has one. Tests match variants, never
/// the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The first byte is not 0xE9: nothing was flashed here, or this is another kind of file.
    #[error("image at {offset:#x} has invalid magic byte {got:#04x} (expected 0xe9)")]
    BadMagic { offset: usize, got: u8 },
    /// The header announces more segments than any ESP-IDF bootloader accepts.
    #[error("image at {offset:#x} segment count {count} exceeds max {max}")]
    TooManySegments { offset: usize, count: u8, max: u8 },
    /// A segment length that is not a multiple of 4 or not below 16 MB, as ESP-IDF refuses it
    /// (0xffffffff is the usual sign of an image cut off into erased flash).
    #[error("segment {index} (header at {header_offset:#x}): invalid segment length {length:#x}")]
    InvalidSegmentLength { index: usize, header_offset: usize, length: u32 },
    /// A segment's data runs past the end of the input.
    #[error(
        "segment {index} (header at {header_offset:#x}): length {length:#x} runs past the end, \
         {remaining} bytes remain"
    )]
    SegmentPastEnd { index: usize, header_offset: usize, length: u32, remaining: usize },
    /// The input ends inside a fixed-size part of the image.
    #[error("{part} at {offset:#x} is truncated: needs {needed} bytes, {available} remain")]
    Truncated { part: ImagePart, offset: usize, needed: usize, available: usize },
}

/// The fixed-size parts of an image, to say which one the input ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePart {
    /// The 24-byte image header (common and extended).
    Header,
    /// The 8-byte header of segment `index`.
    SegmentHeader { index: usize },
    /// The zero padding and checksum byte after the last segment.
    Checksum,
    /// The appended SHA-256 digest.
    Hash,
}

impl fmt::Display for ImagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImagePart::Header => f.write_str("image header"),
            ImagePart::SegmentHeader { index } => write!(f, "segment {index} header"),
            ImagePart::Checksum => f.write_str("checksum block"),
            ImagePart::Hash => f.write_str("appended SHA-256"),
        }
    }
}
