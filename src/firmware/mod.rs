//! Firmware manifests (`firmware-images/*.toml`): one historical build of the fleet, or the
//! release offered as the update. What the rig needs to flash it, predict it and emulate it:
//! version, ESP-IDF version, chip, OTA URL, what it trusts, whether it checks dates and where
//! its clock comes from, rollback, and the real `.bin` and bootloader when there are any.

pub mod add;
pub mod build;
pub mod prepare;
pub mod profile;
mod raw;
pub(crate) use raw::load_manifest;
pub(crate) mod sdkconfig;
pub mod start;
pub(crate) mod url;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::device_tls::TlsConfig;
use crate::idf::BuildVersion;
use crate::image::Chip;
use crate::pki::{LabPki, SpecError, SpecErrorKind};
use crate::toml_source::{Location, TomlSource};
use profile::{Client, ClockSource, LogLevel, Source, Sourced, Stated};
pub use url::{OtaUrl, Scheme, UrlError};

/// What the firmware trusts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// PEM roots compiled in (`cert_pem`), by lab authority name.
    Pem(Vec<String>),
    /// ESP-IDF's certificate bundle of a release, as the lab stands in for it.
    Bundle(String),
    /// Whatever the real image embeds (read from the image).
    Embedded,
}

/// A checked firmware manifest, its facts resolved: what it states, and for a real build what
/// the build itself says (see [`profile`]), each with its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareManifest {
    /// The file name without `.toml`: the firmware's id in scenarios and reports.
    pub id: String,
    /// The manifest file it was read from; paths it names are relative to its folder.
    pub path: PathBuf,
    /// The app's version (`version`, else the build's app descriptor).
    pub version: String,
    /// The ESP-IDF version, as the manifest or the build states it.
    pub idf: BuildVersion,
    /// The chip it is built for: as the manifest states it, or as a real image says.
    pub chip: Chip,
    /// Where it fetches updates; `None`: neither the manifest nor the build says (see
    /// [`FirmwareManifest::url_candidates`]).
    pub ota_url: Option<OtaUrl>,
    /// `https://` URLs in the build that were not taken as its OTA URL.
    pub url_candidates: Vec<String>,
    /// The roots it accepts a server's chain under.
    pub trust: Trust,
    /// `CONFIG_MBEDTLS_HAVE_TIME_DATE`: certificate dates are checked.
    pub time_check: bool,
    /// Where its wall-clock time comes from when it checks dates.
    pub clock: ClockSource,
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`.
    pub rollback: bool,
    /// Whether the app, started for the first time after an update, confirms itself
    /// (`esp_ota_mark_app_valid_cancel_rollback`); with rollback, one that does not is rolled
    /// back at its next reset. Default: it does.
    pub confirms: bool,
    /// The program around the update library (its lines are printed only for ESP-IDF's
    /// examples).
    pub client: Client,
    /// `CONFIG_LOG_DEFAULT_LEVEL`.
    pub log_level: LogLevel,
    /// Where its mbedTLS build departs from the release's default: curves turned off
    /// (`curves_off`), the TLS input buffer (`tls_in_content_len`); and the heap it leaves for
    /// a TLS connection (`tls_heap`).
    pub tls: TlsConfig,
    /// The release offered as the update, not a member of the fleet.
    pub update: bool,
    /// A real build, relative to the manifest's folder.
    pub image: Option<PathBuf>,
    /// The build's bootloader, relative to the manifest's folder (flashed in place of the
    /// rig's).
    pub bootloader: Option<PathBuf>,
    /// The build's partition table (flashed in place of the rig's two-slot table).
    pub partition_table: Option<PathBuf>,
    /// The build's `sdkconfig`, read for what the image cannot say.
    pub sdkconfig: Option<PathBuf>,
    /// The size of the built image in bytes (default: 0.6-0.95 MB from the id); a size beyond
    /// the 1 MB OTA slot makes the "partition too small" case.
    pub image_size: Option<usize>,
    /// Roots to swap for lab authorities in the real image before it is flashed.
    pub transplant: Vec<TransplantStep>,
    /// Free text about the firmware, for people.
    pub notes: Option<String>,
    /// Labels that scenarios' expectation rules match (`firmware_tag`): lowercase letters,
    /// digits and `-`.
    pub tags: Vec<String>,
    /// Where each value came from, by manifest key.
    pub sources: BTreeMap<&'static str, Source>,
    /// Values guessed from the build's strings, one sentence each (shown as warnings).
    pub guesses: Vec<String>,
}

impl FirmwareManifest {
    /// What the rig tells a twin about this build: every resolved value with its source, so
    /// the twin runs a real build as the manifest describes it (its image cannot say it all).
    pub(crate) fn stated(&self) -> Stated {
        let source = |key: &str| self.sources.get(key).copied().unwrap_or(Source::Manifest);
        Stated {
            idf: Some(Sourced::new(self.idf.clone(), source("idf"))),
            ota_url: self.ota_url.clone().map(|url| Sourced::new(url, source("ota_url"))),
            time_check: Some(Sourced::new(self.time_check, source("time_check"))),
            clock: Some(Sourced::new(self.clock, source("clock"))),
            rollback: Some(Sourced::new(self.rollback, source("rollback"))),
            confirms: Some(Sourced::new(self.confirms, source("confirms"))),
            client: Some(Sourced::new(self.client, source("client"))),
            log_level: Some(Sourced::new(self.log_level, source("log_level"))),
            curves_off: Some(Sourced::new(self.tls.curves_off, source("curves_off"))),
            tls_in_content_len: Some(Sourced::new(self.tls.in_content_len, source("tls_in_content_len"))),
            tls_heap: self.tls.heap.map(|heap| Sourced::new(heap, source("tls_heap"))),
        }
    }
}

/// One root to replace in a real image: which (subject, CN or SHA-256) and by which lab
/// authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransplantStep {
    /// The root in the image: 64 hex digits are its SHA-256 fingerprint, anything else its
    /// subject or CN.
    pub replace: String,
    /// The lab authority that takes its place.
    pub with: String,
}

/// A certificate bundle as the lab stands in for an ESP-IDF release's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleList {
    /// The file name without `.toml` (`idf-v4.4`): what a manifest's `trust = { bundle }`
    /// names.
    pub id: String,
    /// Which release's bundle it stands in for, in a line.
    pub title: String,
    /// The lab authorities in it, by name.
    pub authorities: Vec<String>,
    /// Where the list comes from (the bundle's files at a tag), for people.
    pub source: Option<String>,
}

/// A manifest or bundle list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A value that does not check, at its `file:line:column`.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A manifest, a folder or a file a manifest names cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest's `image` that does not parse as an ESP app image.
    #[error("{path}: not an ESP app image: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<crate::image::ImageError>,
    },
    /// A manifest's `image` that is something else: an ESP8266 image, an ELF, a partition
    /// table.
    #[error("{path}: {what}, not an ESP32-family app image (otarig works with ESP32-family firmware)")]
    Foreign {
        /// The image file.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
}

/// The fleet: every manifest in a folder, and the bundle lists in its `bundles/`.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// Every manifest, the update release included, in file name order.
    pub manifests: Vec<FirmwareManifest>,
    /// The bundle lists, by id.
    pub bundles: BTreeMap<String, BundleList>,
}

impl Fleet {
    /// Reads `DIR/*.toml` and `DIR/bundles/*.toml`, checked against the lab PKI.
    pub fn load(dir: &Path, pki: &LabPki) -> Result<Self, ManifestError> {
        let read_dir = |dir: &Path| -> Result<Vec<PathBuf>, ManifestError> {
            if !dir.exists() {
                return Ok(Vec::new());
            }
            crate::toml_source::files_in(dir).map_err(|source| ManifestError::Read { path: dir.to_owned(), source })
        };
        let mut bundles = BTreeMap::new();
        for path in read_dir(&dir.join("bundles"))? {
            let bundle = raw::load_bundle(&read(&path)?, pki)?;
            bundles.insert(bundle.id.clone(), bundle);
        }
        let mut manifests = Vec::new();
        for path in read_dir(dir)? {
            manifests.push(load_manifest(&read(&path)?, pki, &bundles)?);
        }
        Ok(Self { manifests, bundles })
    }

    /// The members of the fleet (rows of the matrix), without the update release.
    pub fn members(&self) -> impl Iterator<Item = &FirmwareManifest> {
        self.manifests.iter().filter(|m| !m.update)
    }

    /// The manifest with id `id`, the update release included.
    pub fn get(&self, id: &str) -> Option<&FirmwareManifest> {
        self.manifests.iter().find(|m| m.id == id)
    }

    /// The lab authorities a firmware trusts (empty for `Trust::Embedded`).
    pub fn trusted_authorities(&self, firmware: &FirmwareManifest) -> Vec<String> {
        match &firmware.trust {
            Trust::Pem(names) => names.clone(),
            Trust::Bundle(id) => self.bundles.get(id).map(|b| b.authorities.clone()).unwrap_or_default(),
            Trust::Embedded => Vec::new(),
        }
    }
}

fn read(path: &Path) -> Result<TomlSource, ManifestError> {
    TomlSource::read(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })
}

pub(crate) fn spec_error(location: Location, message: String) -> ManifestError {
    ManifestError::Spec(SpecError { location, kind: SpecErrorKind::Shape { message } })
}

/// Seconds since the epoch of a date written in a manifest.
pub(crate) fn timestamp(date: OffsetDateTime) -> i64 {
    date.unix_timestamp()
}
