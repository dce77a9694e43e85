//! ESP images and what they carry: app images and bootloaders parsed and verified as ESP-IDF
//! verifies them, their descriptors and version strings, what a file is ([`identify`]), the
//! trust material and keys a firmware embeds (with the role each plays), certificate bundles,
//! partition tables, otadata, transplanting trust into a build, and the inspection report
//! `otarig inspect` prints. Nothing here panics or allocates from a count read from input.

mod app;
mod bootloader;
mod bundle;
mod chip;
mod der;
mod desc;
mod error;
mod esp8266;
mod keys;
mod pem_blocks;
mod strings;
mod trust;
mod version;
pub use app::{
    AppImage, Checksum, FlashFreq, FlashSize, HashCheck, ImageHeader, Segment, SegmentKind, Sha256Digest, SpiMode,
    checksum_of, parse_app,
};
pub(crate) use app::{CHECKSUM_SEED, IMAGE_MAGIC, parse_segments};
pub use bootloader::BOOTLOADER_DESC_MAGIC;
pub(crate) use bootloader::parse_bootloader_desc;
pub use bundle::{BundleEntry, BundleError, BundleFormat, CertBundle};
pub use chip::Chip;
pub use desc::AppDesc;
pub(crate) use desc::{APP_DESC_OFFSET, parse_app_desc};
pub use error::{ImageError, ImagePart};
pub(crate) use esp8266::read_esp8266;
pub use esp8266::{Esp8266Format, Esp8266Image};
pub use keys::{KeyForm, KeyFormat, PrivateKeyItem, find_private_keys};
pub use strings::find_urls;
pub(crate) use trust::scan_trust;
pub use trust::{BundleEntryInfo, CertInfo, KeyKind, TrustItem, TrustKind, TrustRole, find_trust};
pub(crate) use version::app_idf_versions;
pub use version::{BootloaderVersion, VersionSource, bootloader_version};
pub mod build;
pub mod identify;
pub mod inspect;
pub mod otadata;
pub mod partition;
pub mod transplant;
