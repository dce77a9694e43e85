//! The app descriptor (`esp_app_desc_t`): the version, project and build facts an app carries
//! at the start of its first segment, which `esp_https_ota` reads before it writes anything.
//!
//! ESP-IDF v3.3 and later put it there; v3.2 images have none, which is a fact about the image,
//! not an error.

use std::fmt::Write as _;

/// `esp_app_desc_t.magic_word`.
pub(crate) const APP_DESC_MAGIC: u32 = 0xABCD_5432;

/// `sizeof(esp_app_desc_t)`.
pub(crate) const APP_DESC_LEN: usize = 256;

/// Where the descriptor sits in an image file: right after the image header and the first
/// segment header (`sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t)`).
pub(crate) const APP_DESC_OFFSET: usize = 0x20;

/// An app descriptor as the app was built with it.
///
/// Strings are read up to their first NUL (or the end of their field) and decoded as lossy
/// UTF-8, so a damaged descriptor still shows what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppDesc {
    /// Anti-rollback version (`CONFIG_BOOTLOADER_APP_SECURE_VERSION`).
    pub secure_version: u32,
    /// `PROJECT_VER`: what `esp_https_ota` compares to refuse the running version.
    pub version: String,
    /// `PROJECT_NAME`: the build's project (`native_ota`).
    pub project_name: String,
    /// Build time (`__TIME__`).
    pub time: String,
    /// Build date (`__DATE__`).
    pub date: String,
    /// The ESP-IDF version the app was built with.
    pub idf_ver: String,
    /// SHA-256 of the ELF file, lowercase hex (64 characters).
    pub app_elf_sha256: String,
    /// Minimum eFuse block revision (major × 100 + minor); ESP-IDF v5.4+, `None` when zero.
    pub(crate) min_efuse_blk_rev_full: Option<u16>,
    /// Maximum eFuse block revision (major × 100 + minor); ESP-IDF v5.4+, `None` when zero.
    pub(crate) max_efuse_blk_rev_full: Option<u16>,
    /// log2 of the flash MMU page size the app was linked for; ESP-IDF v5.4+, `None` when zero.
    pub(crate) mmu_page_size_log2: Option<u8>,
}

impl AppDesc {
    #[cfg(test)]
    /// The flash MMU page size in bytes, when the descriptor records a sensible one.
    pub(crate) fn mmu_page_size(&self) -> Option<u32> {
        self.mmu_page_size_log2.and_then(|log2| 1u32.checked_shl(u32::from(log2)))
    }
}

/// Reads an app descriptor from `bytes`, which start where the descriptor would.
///
/// `None` when the magic word is absent (ESP-IDF v3.2, a bootloader, not an app) or fewer than
/// [`APP_DESC_LEN`] bytes are given.
pub(crate) fn parse_app_desc(bytes: &[u8]) -> Option<AppDesc> {
    let desc: &[u8; APP_DESC_LEN] = bytes.first_chunk()?;
    if u32_at(desc, 0x00) != APP_DESC_MAGIC {
        return None;
    }
    let nonzero_u16 = |at| Some(u16_at(desc, at)).filter(|&v| v != 0);
    Some(AppDesc {
        secure_version: u32_at(desc, 0x04),
        version: c_string(&desc[0x10..0x30]),
        project_name: c_string(&desc[0x30..0x50]),
        time: c_string(&desc[0x50..0x60]),
        date: c_string(&desc[0x60..0x70]),
        idf_ver: c_string(&desc[0x70..0x90]),
        app_elf_sha256: hex(&desc[0x90..0xB0]),
        min_efuse_blk_rev_full: nonzero_u16(0xB0),
        max_efuse_blk_rev_full: nonzero_u16(0xB2),
        mmu_page_size_log2: Some(desc[0xB4]).filter(|&v| v != 0),
    })
}

fn u32_at(desc: &[u8; APP_DESC_LEN], at: usize) -> u32 {
    u32::from_le_bytes([desc[at], desc[at + 1], desc[at + 2], desc[at + 3]])
}

fn u16_at(desc: &[u8; APP_DESC_LEN], at: usize) -> u16 {
    u16::from_le_bytes([desc[at], desc[at + 1]])
}

/// A C `char[N]` field: up to the first NUL, lossy UTF-8.
pub(super) fn c_string(field: &[u8]) -> String {
    let end = memchr::memchr(0, field).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor as ESP-IDF v5.4 lays it out.
    fn desc_bytes() -> Vec<u8> {
        let mut d = vec![0u8; APP_DESC_LEN];
        d[0..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
        d[4..8].copy_from_slice(&3u32.to_le_bytes());
        let mut put = |at: usize, s: &[u8]| d[at..at + s.len()].copy_from_slice(s);
        put(0x10, b"1.2.3");
        put(0x30, b"hello_world");
        put(0x50, b"12:34:56");
        put(0x60, b"Mar 27 2023");
        put(0x70, b"v5.4.1");
        put(0x90, &[0xAB; 32]);
        put(0xB0, &1u16.to_le_bytes());
        put(0xB2, &199u16.to_le_bytes());
        put(0xB4, &[16]);
        d
    }

    #[test]
    fn reads_every_field() {
        let desc = parse_app_desc(&desc_bytes()).expect("descriptor");
        assert_eq!(desc.secure_version, 3);
        assert_eq!(desc.version, "1.2.3");
        assert_eq!(desc.project_name, "hello_world");
        assert_eq!(desc.time, "12:34:56");
        assert_eq!(desc.date, "Mar 27 2023");
        assert_eq!(desc.idf_ver, "v5.4.1");
        assert_eq!(desc.app_elf_sha256, "ab".repeat(32));
        assert_eq!(desc.min_efuse_blk_rev_full, Some(1));
        assert_eq!(desc.max_efuse_blk_rev_full, Some(199));
        assert_eq!(desc.mmu_page_size(), Some(0x10000));
    }

    #[test]
    fn older_descriptors_have_no_efuse_or_page_size() {
        let mut d = desc_bytes();
        d[0xB0..0xB8].fill(0);
        let desc = parse_app_desc(&d).expect("descriptor");
        assert_eq!(desc.min_efuse_blk_rev_full, None);
        assert_eq!(desc.max_efuse_blk_rev_full, None);
        assert_eq!(desc.mmu_page_size_log2, None);
        assert_eq!(desc.mmu_page_size(), None);
    }

    #[test]
    fn strings_fill_their_fields_and_bad_utf8_is_kept_lossily() {
        let mut d = desc_bytes();
        d[0x10..0x30].fill(b'x'); // no NUL: the field ends the string
        d[0x30..0x33].copy_from_slice(&[b'a', 0xFF, 0]);
        let desc = parse_app_desc(&d).expect("descriptor");
        assert_eq!(desc.version, "x".repeat(32));
        assert_eq!(desc.project_name, "a\u{FFFD}");
    }

    #[test]
    fn absent_or_short_descriptor_is_none() {
        let mut d = desc_bytes();
        assert!(parse_app_desc(&d[..APP_DESC_LEN - 1]).is_none());
        assert!(parse_app_desc(&[]).is_none());
        d[0] ^= 1;
        assert!(parse_app_desc(&d).is_none());
    }

    #[test]
    fn nonsense_page_size_is_none() {
        let mut d = desc_bytes();
        d[0xB4] = 40;
        assert_eq!(parse_app_desc(&d).and_then(|d| d.mmu_page_size()), None);
    }
}
