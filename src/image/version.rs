//! The ESP-IDF version an image says it was built with, beyond the app descriptor: a
//! bootloader's descriptor (v5.2+) or the `IDF_VER` its banner prints, and the version strings
//! in an app that has no descriptor (v3.2 builds, Arduino on v3.2.3).

use crate::idf::{BuildVersion, find_versions};

use super::bootloader::parse_bootloader_desc;
use super::desc::APP_DESC_OFFSET;
use super::parse_segments;

/// Where a version was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSource {
    /// The bootloader's `esp_bootloader_desc_t` (v5.2 and later).
    Descriptor,
    /// A NUL-terminated version string among the image's bytes: the `IDF_VER` argument of the
    /// bootloader's `ESP-IDF %s 2nd stage bootloader` banner (absent when its log level is
    /// none, as in Arduino's and MicroPython's bootloaders).
    Strings,
}

impl VersionSource {
    /// `descriptor` or `strings`, as the JSON output spells it.
    pub fn name(self) -> &'static str {
        match self {
            VersionSource::Descriptor => "descriptor",
            VersionSource::Strings => "strings",
        }
    }
}

/// The ESP-IDF version a 2nd-stage bootloader was built with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootloaderVersion {
    /// Whether the bootloader's descriptor or a string in its data gave it.
    pub source: VersionSource,
    /// Offset of the text in the bootloader image.
    pub offset: usize,
    /// The text as stored (`v5.2.1-533-g9f4f8e24f2`).
    pub text: String,
    /// The text read as an ESP-IDF version; `None` for a descriptor whose `IDF_VER` is not one
    /// (a custom `IDF_VER`). Always present for [`VersionSource::Strings`].
    pub build: Option<BuildVersion>,
}

/// The ESP-IDF version of the bootloader image at the start of `image` (more bytes may
/// follow: the rest of a merged flash image is not looked at when the image's segments can be
/// read). From its descriptor when it has one, else from the first version string in it;
/// `None` when it states neither.
pub fn bootloader_version(image: &[u8]) -> Option<BootloaderVersion> {
    if let Some(desc) = parse_bootloader_desc(image) {
        let build = BuildVersion::parse(&desc.idf_ver).ok();
        // idf_ver follows magic, reserved bytes and the u32 version.
        let offset = APP_DESC_OFFSET + 8;
        return Some(BootloaderVersion { source: VersionSource::Descriptor, offset, text: desc.idf_ver, build });
    }
    let (offset, build) = find_versions(own_bytes(image)).into_iter().next()?;
    Some(BootloaderVersion { source: VersionSource::Strings, offset, text: build.text.clone(), build: Some(build) })
}

/// The ESP-IDF version strings in the app image at the start of `image`: each text once, at its
/// first offset, in offset order. For an app without a descriptor, `IDF_VER` as
/// `esp_get_idf_version()` returns it is usually the only one (Arduino on v3.2.3:
/// `v3.2.3-14-gd3e562907`); other version-like strings of the app's own can appear too, so the
/// caller decides what to infer. Only the image's segments are searched when they can be read.
pub(crate) fn app_idf_versions(image: &[u8]) -> Vec<(usize, BuildVersion)> {
    let mut found: Vec<(usize, BuildVersion)> = Vec::new();
    for (offset, version) in find_versions(own_bytes(image)) {
        if !found.iter().any(|(_, seen)| seen.text == version.text) {
            found.push((offset, version));
        }
    }
    found
}

/// The image's bytes up to the end of its last segment, or all of `bytes` when the segments
/// cannot be read.
fn own_bytes(bytes: &[u8]) -> &[u8] {
    let end = parse_segments(bytes).map_or(bytes.len(), |read| read.segments_end);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idf::IdfVersion;
    use crate::image::BOOTLOADER_DESC_MAGIC;
    use crate::image::build::{ImageSpec, SegmentSpec, write_image};

    fn esp32_image(dram: &[u8], iram: &[u8]) -> Vec<u8> {
        let segments = vec![
            SegmentSpec { load_addr: 0x3FFF_0030, data: dram.to_vec() },
            SegmentSpec { load_addr: 0x4007_8000, data: iram.to_vec() },
        ];
        write_image(&ImageSpec::esp32(0x4008_0640, segments))
    }

    fn v52_desc(idf: &str) -> Vec<u8> {
        let mut d = vec![0u8; 80];
        d[0] = BOOTLOADER_DESC_MAGIC;
        d[4] = 1;
        d[8..8 + idf.len()].copy_from_slice(idf.as_bytes());
        d
    }

    #[test]
    fn a_descriptor_wins_over_strings() {
        let image = esp32_image(&[v52_desc("v5.2.1-533-g9f4f8e24f2"), b"\0v5.1\0".to_vec()].concat(), &[0x36; 8]);
        let version = bootloader_version(&image).expect("version");
        assert_eq!((version.source, version.offset), (VersionSource::Descriptor, 0x28));
        assert_eq!(version.text, "v5.2.1-533-g9f4f8e24f2");
        assert_eq!(version.build.map(|b| (b.release, b.commits_after)), Some((IdfVersion::new(5, 2, 1), Some(533))));
    }

    #[test]
    fn a_custom_idf_ver_in_the_descriptor_is_kept_as_text() {
        let image = esp32_image(&v52_desc("my-fork-7"), &[0; 4]);
        let version = bootloader_version(&image).expect("version");
        assert_eq!(
            (version.source, version.text.as_str(), version.build),
            (VersionSource::Descriptor, "my-fork-7", None)
        );
    }

    #[test]
    fn older_bootloaders_by_their_banner_argument() {
        let dram = b"\x01\x02\0boot\0ESP-IDF %s 2nd stage bootloader\0v4.3.1-dirty\0compile time %s\0";
        let image = esp32_image(dram, &[0x36; 8]);
        let version = bootloader_version(&image).expect("version");
        assert_eq!((version.source, version.text.as_str()), (VersionSource::Strings, "v4.3.1-dirty"));
        assert_eq!(&image[version.offset..version.offset + 12], b"v4.3.1-dirty");
        assert!(version.build.is_some_and(|b| b.dirty));
    }

    #[test]
    fn a_bootloader_that_prints_nothing_states_no_version() {
        assert_eq!(bootloader_version(&esp32_image(b"boot.esp32\0", &[0; 4])), None);
        assert_eq!(bootloader_version(&[]), None);
    }

    #[test]
    fn what_follows_the_image_is_not_its_version() {
        let mut flash = esp32_image(b"no banner\0", &[0; 4]);
        flash.extend_from_slice(b"\0v5.0.4\0");
        assert_eq!(bootloader_version(&flash), None);
        assert_eq!(app_idf_versions(&flash), []);
        // Bytes that are no image are searched whole.
        assert_eq!(app_idf_versions(b"\0v3.2.3-14-gd3e562907\0").len(), 1);
    }

    #[test]
    fn app_version_strings_once_each_in_order() {
        let rodata = b"\0v3.2.3-14-gd3e562907\0lwip v2.1.2\0\xffv4.4.8\0v3.2.3-14-gd3e562907\0";
        let app = esp32_image(rodata, &[0; 4]);
        let texts: Vec<String> = app_idf_versions(&app).into_iter().map(|(_, v)| v.text).collect();
        assert_eq!(texts, ["v3.2.3-14-gd3e562907", "v4.4.8"]);
    }
}
