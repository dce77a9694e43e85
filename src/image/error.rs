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
    BadMagic {
        /// Where the image was expected to start, in the input.
        offset: usize,
        /// The byte found there.
        got: u8,
    },
    /// The header announces more segments than any ESP-IDF bootloader accepts.
    #[error("image at {offset:#x} segment count {count} exceeds max {max}")]
    TooManySegments {
        /// Where the image starts in the input.
        offset: usize,
        /// The header's segment count.
        count: u8,
        /// The most segments a bootloader accepts (16).
        max: u8,
    },
    /// A segment length that is not a multiple of 4 or not below 16 MB, as ESP-IDF refuses it
    /// (0xffffffff is the usual sign of an image cut off into erased flash).
    #[error("segment {index} (header at {header_offset:#x}): invalid segment length {length:#x}")]
    InvalidSegmentLength {
        /// The segment's position, from 0.
        index: usize,
        /// Where its 8-byte header is in the input.
        header_offset: usize,
        /// The length the header gives, in bytes.
        length: u32,
    },
    /// A segment's data runs past the end of the input.
    #[error(
        "segment {index} (header at {header_offset:#x}): length {length:#x} runs past the end, \
         {remaining} bytes remain"
    )]
    SegmentPastEnd {
        /// The segment's position, from 0.
        index: usize,
        /// Where its 8-byte header is in the input.
        header_offset: usize,
        /// The length the header gives, in bytes.
        length: u32,
        /// Bytes left in the input after the header.
        remaining: usize,
    },
    /// The input ends inside a fixed-size part of the image.
    #[error("{part} at {offset:#x} is truncated: needs {needed} bytes, {available} remain")]
    Truncated {
        /// The part the input ends in.
        part: ImagePart,
        /// Where that part starts in the input.
        offset: usize,
        /// Its size in bytes.
        needed: usize,
        /// Bytes left in the input from `offset`.
        available: usize,
    },
}

/// The fixed-size parts of an image, to say which one the input ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePart {
    /// The 24-byte image header (common and extended).
    Header,
    /// The 8-byte header of segment `index`.
    SegmentHeader {
        /// The segment's position, from 0.
        index: usize,
    },
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
