//! Which app images hold the replaced bytes, whether they may be changed (readable, valid,
//! unsigned, the bytes inside a segment), and their checksum and SHA-256 once they are.

use std::ops::Range;

use sha2::{Digest, Sha256};

use super::super::partition::{self, TABLE_OFFSET};
use super::super::{AppImage, IMAGE_MAGIC, ImageError, checksum_of, parse_app};
use super::{Resealed, SignatureScheme, TransplantError};

/// An app image in the file: at 0, or in an app partition of a merged flash image.
struct AppInFile {
    /// From the image's first byte to the end of the file or of its partition.
    span: Range<usize>,
    image: Result<AppImage, ImageError>,
}

/// An app file (an image at 0 that reaches past where a partition table would be), else the apps
/// in the partitions of a merged flash image (bootloader at 0x1000 or 0x0, table at 0x8000),
/// else an image at 0 (perhaps unreadable), else none: the bytes are no image (a bundle file).
fn app_images(bytes: &[u8]) -> Vec<AppInFile> {
    let at_zero = || AppInFile { span: 0..bytes.len(), image: parse_app(bytes) };
    if bytes.first() == Some(&IMAGE_MAGIC) {
        let app = at_zero();
        if app.image.as_ref().is_ok_and(|image| image.length > TABLE_OFFSET) {
            return vec![app];
        }
    }
    let table = bytes.get(TABLE_OFFSET..).map(partition::read_table);
    let Some(Ok(table)) = table else {
        return if bytes.first() == Some(&IMAGE_MAGIC) { vec![at_zero()] } else { Vec::new() };
    };
    partition::app_slots(&table)
        .into_iter()
        .filter(|slot| bytes.get(slot.offset as usize) == Some(&IMAGE_MAGIC))
        .map(|slot| {
            let span = slot.offset as usize..(slot.offset as usize + slot.size as usize).min(bytes.len());
            AppInFile { image: parse_app(&bytes[span.clone()]), span }
        })
        .collect()
}

/// The app images whose checksum and hash must be recomputed, after checking that each can be:
/// readable, valid now, unsigned, and the replaced bytes inside one segment's data.
pub(super) fn plan_reseal(image: &[u8], replaced: &[Range<usize>]) -> Result<Vec<Resealed>, TransplantError> {
    let apps = app_images(image);
    let mut resealed: Vec<Resealed> = Vec::new();
    for range in replaced {
        let Some(app) = apps.iter().find(|app| app.span.contains(&range.start)) else { continue };
        let image_offset = app.span.start;
        let parsed = app
            .image
            .as_ref()
            .map_err(|source| TransplantError::Image { offset: image_offset, source: source.clone() })?;
        if let Some((scheme, at)) = signature_after(&image[app.span.clone()], parsed.length) {
            return Err(TransplantError::Signed { image_offset, scheme, signature_offset: image_offset + at });
        }
        let local = range.start - image_offset..range.end - image_offset;
        if local.start >= parsed.length {
            continue; // in the partition's spare bytes after the image: nothing covers it
        }
        if !parsed.is_valid() {
            return Err(TransplantError::Corrupt { offset: image_offset });
        }
        if !parsed.segments.iter().any(|s| s.data_range().start <= local.start && local.end <= s.data_range().end) {
            return Err(TransplantError::OutsideSegments { offset: range.start, image_offset });
        }
        if !resealed.iter().any(|r| r.image_offset == image_offset) {
            let hash_offset = parsed.hash.map(|h| image_offset + h.offset);
            resealed.push(Resealed {
                image_offset,
                checksum_offset: image_offset + parsed.checksum.offset,
                hash_offset,
            });
        }
    }
    Ok(resealed)
}

/// A secure boot signature after an image of `image_len` bytes at the start of `bytes`, and
/// its offset: v2's sector (magic 0xE7) right after the image or at the next 4 KiB boundary
/// (`espsecure` pads to it with 0xFF), or v1's version word 0 and 64 signature bytes.
fn signature_after(bytes: &[u8], image_len: usize) -> Option<(SignatureScheme, usize)> {
    const SECTOR: usize = 4096;
    let aligned = image_len.div_ceil(SECTOR) * SECTOR;
    if let Some(at) = [image_len, aligned].into_iter().find(|at| bytes.get(*at) == Some(&0xE7)) {
        return Some((SignatureScheme::SecureBootV2, at));
    }
    let v1 = bytes.get(image_len..image_len + 68)?;
    let signature = &v1[4..];
    let blank = signature.iter().all(|b| *b == signature[0]);
    (v1[..4] == [0, 0, 0, 0] && !blank).then_some((SignatureScheme::SecureBootV1, image_len))
}

/// Writes the checksum of the segments as they are now, then the SHA-256 over the image up to
/// and including it.
pub(super) fn reseal(bytes: &mut [u8], seal: &Resealed) {
    let image = &bytes[seal.image_offset..];
    let Ok(parsed) = parse_app(image) else { return };
    let checksum = checksum_of(parsed.segments.iter().map(|s| &image[s.data_range()]));
    bytes[seal.checksum_offset] = checksum;
    if let Some(hash_offset) = seal.hash_offset {
        let digest = Sha256::digest(&bytes[seal.image_offset..=seal.checksum_offset]);
        bytes[hash_offset..hash_offset + 32].copy_from_slice(&digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_after_an_image() {
        let image = vec![0x11u8; 5000];
        let with = |tail: &[u8]| [&image[..], tail].concat();
        assert_eq!(signature_after(&image, 5000), None);
        assert_eq!(signature_after(&with(&[0xE7, 2, 0, 0]), 5000), Some((SignatureScheme::SecureBootV2, 5000)));
        let mut padded = with(&[0xFF; 8192 - 5000]);
        padded.push(0xE7);
        assert_eq!(signature_after(&padded, 5000), Some((SignatureScheme::SecureBootV2, 8192)));
        let v1: Vec<u8> = [0, 0, 0, 0].into_iter().chain((0..64u8).map(|i| i ^ 0x5A)).collect();
        assert_eq!(signature_after(&with(&v1), 5000), Some((SignatureScheme::SecureBootV1, 5000)));
        // Erased flash, zero fill and a short tail are no signature.
        for tail in [&[0xFF; 4096][..], &[0; 4096], &v1[..67]] {
            assert_eq!(signature_after(&with(tail), 5000), None);
        }
    }
}
