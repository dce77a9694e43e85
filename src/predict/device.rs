//! The device a prediction is about: what its TLS client trusts, which ESP-IDF version
//! configures it, whether and against which clock it checks dates, and the host name it
//! connects to. Read from a firmware's app image exactly as the twin reads it
//! ([`FirmwareProfile::read`]), so twin and prediction start from the same facts.

use std::collections::BTreeMap;

use crate::device_tls::{Anchors, DevicePolicy, TlsConfig};
use crate::firmware::prepare::{PrepareError, prepare};
use crate::firmware::profile::{ClockSource, FirmwareProfile, Source, Sourced, Stated};
use crate::firmware::{FirmwareManifest, Fleet};
use crate::idf::{BuildVersion, IdfVersion};
use crate::image::ImageError;
use crate::image::identify::FileKind;
use crate::image::inspect::{FoundApp, Layout, inspect};
use crate::pki::LabPki;

/// What a firmware whose clock was never set reads when it checks dates: 1970-01-01 plus the
/// seconds since boot, taken as 10 s (an update starts a few seconds after boot; any value
/// before the first certificate's `notBefore` gives the same verdict).
pub const UNSET_CLOCK: i64 = 10;

/// The ESP-IDF version a trust set given without a firmware (`--trust`) is judged as: v4.4, the
/// last release on mbedTLS 2.x with the classic bundle (shown as a default; `--idf` changes it).
pub(crate) const TRUST_SET_IDF: IdfVersion = IdfVersion { major: 4, minor: 4, patch: 0 };

/// A device's TLS client as far as judging a certificate chain goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The firmware's id (a manifest id, or the image's file name); `None` for a bare trust set.
    pub firmware: Option<String>,
    /// The ESP-IDF version, as the build or manifest states it; `None`: nothing says (the
    /// prediction asks for one).
    pub idf: Option<Sourced<BuildVersion>>,
    /// What it trusts; an image without trust material trusts nothing (empty roots).
    pub anchors: Anchors,
    /// `CONFIG_MBEDTLS_HAVE_TIME_DATE`: certificate dates are checked.
    pub time_check: bool,
    /// Where its clock comes from when it checks dates.
    pub clock: ClockSource,
    /// Where its mbedTLS build departs from the release's default (curves turned off, the TLS
    /// input buffer).
    pub tls: TlsConfig,
    /// Where it fetches updates (the default host name comes from it).
    pub ota_url: Option<String>,
    /// The name checked against the leaf (`None`: no name check).
    pub hostname: Option<String>,
    /// Where each value came from, by manifest key.
    pub sources: BTreeMap<&'static str, Source>,
    /// Values guessed from the image's strings, one sentence each.
    pub guesses: Vec<String>,
    /// `https://` URLs in the image not taken as its OTA URL, when none was.
    pub url_candidates: Vec<String>,
}

/// A firmware the prediction cannot be made for.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The firmware's images could not be prepared from its manifest.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The file is no ESP app image.
    #[error("not an ESP app image: {0}")]
    NotAnImage(ImageError),
    /// An image for a chip outside the ESP32 family, which the rig does not predict for.
    #[error("{what}, not an ESP32-family app image (otarig predicts for ESP32-family firmware)")]
    Foreign {
        /// What the file is instead, as the image layer names it.
        what: String,
    },
    /// A merged flash image whose partition table leads to no app that verifies.
    #[error("a flash image without a valid app in its partitions")]
    NoApp,
}

impl Device {
    /// The device a firmware profile describes: its trust, ESP-IDF version, date checks and
    /// clock, and the host of its OTA URL as the name to check.
    pub fn from_profile(firmware: Option<String>, profile: &FirmwareProfile) -> Device {
        Device {
            firmware,
            idf: profile.idf.clone(),
            anchors: profile.anchors.clone().unwrap_or(Anchors::Roots(Vec::new())),
            time_check: profile.time_check.value,
            clock: profile.clock.value,
            tls: profile.tls_config(),
            ota_url: profile.ota_url.as_ref().map(|url| url.value.to_string()),
            hostname: profile.ota_url.as_ref().map(|url| url.value.host.clone()),
            sources: profile.sources(),
            guesses: profile.guesses(),
            url_candidates: profile.url_candidates.clone(),
        }
    }

    /// A bare trust set: these roots (DER) in an ESP-IDF v4.4 client without date checks and
    /// without a host name (set one).
    pub fn from_roots(roots: Vec<Vec<u8>>) -> Device {
        let idf = BuildVersion::parse(&TRUST_SET_IDF.to_string()).ok().map(|v| Sourced::new(v, Source::Default));
        Device {
            firmware: None,
            idf,
            anchors: Anchors::Roots(roots),
            time_check: false,
            clock: ClockSource::Sntp,
            tls: TlsConfig::default(),
            ota_url: None,
            hostname: None,
            sources: BTreeMap::from([("idf", Source::Default), ("time_check", Source::Default)]),
            guesses: Vec::new(),
            url_candidates: Vec::new(),
        }
    }

    /// The device a fleet manifest describes, read from the image that would be flashed (built
    /// for it, or its real build with the manifest's transplants).
    pub fn from_manifest(manifest: &FirmwareManifest, fleet: &Fleet, pki: &LabPki) -> Result<Device, DeviceError> {
        let prepared = prepare(manifest, fleet, pki)?;
        let profile = FirmwareProfile::read(&prepared.app, &manifest.stated());
        Ok(Device::from_profile(Some(manifest.id.clone()), &profile))
    }

    /// The device an image file describes: an app image, or a merged flash image whose running
    /// app (the OTA slot otadata selects, else the factory app, else the first valid app) is
    /// read.
    pub fn from_image(name: &str, bytes: &[u8]) -> Result<Device, DeviceError> {
        let inspection = inspect(bytes, 0, &[]);
        if let FileKind::Foreign(foreign) = &inspection.kind {
            return Err(DeviceError::Foreign { what: foreign.to_string() });
        }
        let app = match inspection.layout {
            Layout::App => match inspection.apps.into_iter().next().map(|app| app.image) {
                Some(Err(err)) => return Err(DeviceError::NotAnImage(err)),
                _ => bytes,
            },
            Layout::MergedFlash => {
                let running = running_app(&inspection.apps, inspection.selected_slot).ok_or(DeviceError::NoApp)?;
                let size = running.slot.as_ref().map_or(bytes.len(), |slot| slot.size as usize);
                &bytes[running.offset..(running.offset + size).min(bytes.len())]
            }
        };
        Ok(Device::from_profile(Some(name.to_owned()), &FirmwareProfile::read(app, &Stated::default())))
    }

    /// Whether a date changes this device's verdict: it checks dates against a clock that
    /// follows the calendar (set by SNTP), not a fixed or never-set one.
    pub(crate) fn follows_calendar(&self) -> bool {
        self.time_check && self.clock == ClockSource::Sntp
    }

    /// What the device's clock reads when it checks dates on `today` (Unix seconds); `None`
    /// when it checks none.
    pub fn date_check_at(&self, today: i64) -> Option<i64> {
        date_check_at(self.time_check, self.clock, today)
    }

    /// The ESP-IDF release it was built with, when known.
    pub fn release(&self) -> Option<IdfVersion> {
        self.idf.as_ref().map(|idf| idf.value.release)
    }

    /// The policy the device verifies with on `today`; `None` while its ESP-IDF version is
    /// unknown.
    pub(crate) fn policy(&self, today: i64) -> Option<DevicePolicy> {
        let idf = self.release()?;
        Some(DevicePolicy {
            idf,
            anchors: self.anchors.clone(),
            date_check_at: self.date_check_at(today),
            config: self.tls,
        })
    }
}

/// What a firmware's clock reads on `today` when it checks dates: the SNTP time (`today`),
/// its fixed date, or [`UNSET_CLOCK`]; `None` without date checks. The twin's clock follows
/// the same rule, with the lab's SNTP answer as `today`.
pub fn date_check_at(time_check: bool, clock: ClockSource, today: i64) -> Option<i64> {
    time_check.then_some(match clock {
        ClockSource::Sntp => today,
        ClockSource::Fixed(at) => at,
        ClockSource::Unset => UNSET_CLOCK,
    })
}

/// The app the bootloader would start: the OTA slot otadata selects, else the factory app,
/// else the first valid one.
fn running_app(apps: &[FoundApp], selected: Option<u32>) -> Option<&FoundApp> {
    let valid = || apps.iter().filter(|app| app.image.is_ok());
    let slot_is = |app: &&FoundApp, ota: Option<u8>| app.slot.as_ref().is_some_and(|slot| slot.ota == ota);
    let selected = selected.and_then(|n| u8::try_from(n).ok());
    selected
        .and_then(|n| valid().find(|app| slot_is(app, Some(n))))
        .or_else(|| valid().find(|app| slot_is(app, None)))
        .or_else(|| valid().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_a_date_check_reads() {
        let today = 1_795_564_800;
        assert_eq!(date_check_at(false, ClockSource::Sntp, today), None);
        assert_eq!(date_check_at(true, ClockSource::Sntp, today), Some(today));
        assert_eq!(date_check_at(true, ClockSource::Fixed(1_000), today), Some(1_000));
        assert_eq!(date_check_at(true, ClockSource::Unset, today), Some(UNSET_CLOCK));
    }
}
