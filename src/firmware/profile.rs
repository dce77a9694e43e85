//! What the twin needs to behave like the firmware it booted, read from the app image itself:
//! the profile record that `firmware-images` builds carry (`otarig-profile-v1`, see
//! `firmware::build`), the trust material embedded in the image (PEM roots or a certificate
//! bundle), the app descriptor and the OTA URL. A real image without a record gets what can be
//! read from it and ESP-IDF's defaults (no date checks, clock unset, no rollback).

use memchr::memmem;

use crate::device_tls::Anchors;
use crate::firmware::OtaUrl;
use crate::firmware::build::PROFILE_MARKER;
use crate::idf::IdfVersion;
use crate::image::{CertBundle, TrustKind, find_trust, find_urls, parse_app_desc};

/// ESP-IDF version assumed for an image that names none (no descriptor: before v3.3).
const DEFAULT_IDF: &str = "v3.2";

/// Where the firmware's wall clock comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockSource {
    /// Never set: 1970-01-01 plus the time since boot.
    Unset,
    /// Set by SNTP before the update (the lab answers with the scenario's date).
    Sntp,
    /// A fixed date (Unix seconds), e.g. an RTC set at the factory.
    Fixed(i64),
}

/// The firmware as the twin runs it.
#[derive(Clone, Debug)]
pub struct FirmwareProfile {
    /// The manifest id, when the image carries a record.
    pub id: Option<String>,
    pub version: String,
    pub idf: IdfVersion,
    /// Where `esp_https_ota` fetches the update; `None`: the app does not update.
    pub ota_url: Option<OtaUrl>,
    /// `CONFIG_MBEDTLS_HAVE_TIME_DATE`.
    pub time_check: bool,
    pub clock: ClockSource,
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`.
    pub rollback: bool,
    /// The release offered as the update: it does not look for a newer one.
    pub is_update: bool,
    /// Whether the app confirms itself when started on trial after an update.
    pub confirms: bool,
    /// What the TLS client trusts; `None` when the image embeds nothing.
    pub anchors: Option<Anchors>,
}

impl FirmwareProfile {
    /// Reads the profile of the app image `image` (its bytes from the partition start).
    pub fn read(image: &[u8]) -> FirmwareProfile {
        let record = record(image);
        let get = |key: &str| record.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let desc = parse_app_desc(image);
        let idf_text =
            desc.as_ref().map(|d| d.idf_ver.clone()).or_else(|| get("idf").map(str::to_owned)).unwrap_or_default();
        let idf = IdfVersion::parse(&idf_text).or_else(|| IdfVersion::parse(DEFAULT_IDF)).unwrap_or(IdfVersion {
            major: 3,
            minor: 2,
            patch: 0,
        });
        let ota_url = get("ota_url")
            .map(str::to_owned)
            .or_else(|| find_urls(image).into_iter().map(|(_, url)| url).find(|url| url.starts_with("https://")));
        let ota_url = ota_url.and_then(|url| OtaUrl::parse(&url).ok());
        let clock = match get("clock") {
            Some("sntp") => ClockSource::Sntp,
            Some(seconds) => seconds.parse().map_or(ClockSource::Unset, ClockSource::Fixed),
            None => ClockSource::Unset,
        };
        let prefers_bundle = get("trust").is_some_and(|t| t.starts_with("bundle:"));
        FirmwareProfile {
            id: get("id").map(str::to_owned),
            version: desc
                .as_ref()
                .map(|d| d.version.clone())
                .or_else(|| get("version").map(str::to_owned))
                .unwrap_or_default(),
            idf,
            ota_url,
            time_check: get("time_check") == Some("true"),
            clock,
            rollback: get("rollback") == Some("true"),
            is_update: get("update") == Some("true"),
            confirms: get("confirms") != Some("false"),
            anchors: anchors(image, prefers_bundle),
        }
    }
}

/// The `key=value` lines of the profile record, if the image has one.
fn record(image: &[u8]) -> Vec<(String, String)> {
    let Some(at) = memmem::find(image, PROFILE_MARKER) else {
        return Vec::new();
    };
    let rest = &image[at + PROFILE_MARKER.len()..];
    let rest = &rest[..memchr::memchr(0, rest).unwrap_or(rest.len())];
    String::from_utf8_lossy(rest)
        .lines()
        .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// The trust material in the image: its PEM (or DER) roots, or its certificate bundle.
fn anchors(image: &[u8], prefers_bundle: bool) -> Option<Anchors> {
    let items = find_trust(image);
    let mut roots = Vec::new();
    let mut bundle = None;
    for item in &items {
        let bytes = &image[item.offset..item.offset + item.len];
        match &item.kind {
            TrustKind::Pem(_) => {
                if let Ok(block) = pem::parse(bytes) {
                    roots.push(block.into_contents());
                }
            }
            TrustKind::Der(_) => roots.push(bytes.to_vec()),
            TrustKind::Bundle { format, .. } if bundle.is_none() => {
                if let Ok((parsed, _)) = CertBundle::parse_as(&image[item.offset..], *format) {
                    bundle = Some(Anchors::Bundle { entries: parsed.entries, format: *format });
                }
            }
            TrustKind::Bundle { .. } => {}
        }
    }
    let pem = (!roots.is_empty()).then_some(Anchors::Roots(roots));
    if prefers_bundle { bundle.or(pem) } else { pem.or(bundle) }
}

impl Default for FirmwareProfile {
    fn default() -> Self {
        FirmwareProfile {
            id: None,
            version: String::new(),
            idf: IdfVersion { major: 3, minor: 2, patch: 0 },
            ota_url: None,
            time_check: false,
            clock: ClockSource::Unset,
            rollback: false,
            is_update: false,
            confirms: true,
            anchors: None,
        }
    }
}
