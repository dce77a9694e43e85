//! What a firmware is, as the twin runs it and `predict` judges it: its ESP-IDF version, OTA URL,
//! date checks and clock, rollback, the client program and log level, and what it trusts; each
//! value with where it came from ([`Source`]).
//!
//! Read from the app image itself and from what is stated about it ([`Stated`]: the fleet
//! manifest, the build's `sdkconfig`, a command-line option), the statement always winning: the
//! profile record that images built by `firmware::build` carry (`otarig-profile-v1`), the app
//! descriptor (`esp_app_desc_t`, at 0x20 of the image), the trust material embedded in the
//! image, and, as a guess that is never silent, ESP-IDF version strings and a single plausible
//! `https://` URL among the image's strings. What is none of these is ESP-IDF's default for the
//! release, or unknown.

use std::collections::BTreeMap;

use memchr::memmem;
use serde::Serialize;

use crate::device_tls::{Anchors, Curve, Curves, DEFAULT_IN_CONTENT_LEN, TlsConfig};
use crate::firmware::OtaUrl;
use crate::firmware::build::PROFILE_MARKER;
use crate::idf::{BuildVersion, IdfVersion, find_versions};
use crate::image::{APP_DESC_OFFSET, AppDesc, CertBundle, TrustKind, find_trust, find_urls, parse_app_desc};

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line option (`predict --idf`, `--time-check`).
    Given,
    /// The fleet manifest.
    Manifest,
    /// The build's `sdkconfig`, which the manifest names.
    Sdkconfig,
    /// The profile record of an image built for the lab.
    Record,
    /// The app descriptor (`esp_app_desc_t`).
    Descriptor,
    /// The image itself: its header (the chip), the trust material embedded in it.
    Image,
    /// A string found in the image: a guess.
    ImageStrings,
    /// ESP-IDF's default for a build that says nothing else.
    Default,
}

impl Source {
    /// Whether the value is inferred rather than stated or read from a structure that says it.
    pub(crate) fn is_guess(self) -> bool {
        self == Source::ImageStrings
    }

    /// The kebab-case name (`image-strings`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Given => "given",
            Source::Manifest => "manifest",
            Source::Sdkconfig => "sdkconfig",
            Source::Record => "record",
            Source::Descriptor => "descriptor",
            Source::Image => "image",
            Source::ImageStrings => "image-strings",
            Source::Default => "default",
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    /// `value` from `source`.
    pub fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }
}

/// Where the firmware's wall clock comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockSource {
    /// Never set: 1970-01-01 plus the time since boot.
    Unset,
    /// Set by SNTP before the update (the lab answers with the scenario's date).
    Sntp,
    /// A fixed date (Unix seconds), e.g. an RTC set at the factory.
    Fixed(i64),
}

/// The program around ESP-IDF's update library: an ESP-IDF OTA example prints its own lines, any
/// other app (an Arduino sketch, a product) only what the library layers print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// `examples/system/ota/simple_ota_example`.
    SimpleOta,
    /// `examples/system/ota/advanced_https_ota`.
    AdvancedHttpsOta,
    /// `examples/system/ota/native_ota_example`.
    NativeOta,
    /// Another app: the library layers' lines only (esp-tls, the HTTP client, esp_https_ota,
    /// esp_ota_ops, esp_image).
    Library,
}

impl Client {
    /// The names a manifest's `client` takes.
    pub(crate) const NAMES: [&'static str; 4] = ["simple_ota", "advanced_https_ota", "native_ota", "library"];

    /// From a manifest's `client`, or a descriptor's project name (`simple_ota`, ...).
    pub(crate) fn from_name(name: &str) -> Option<Client> {
        match name {
            "simple_ota" => Some(Client::SimpleOta),
            "advanced_https_ota" => Some(Client::AdvancedHttpsOta),
            "native_ota" => Some(Client::NativeOta),
            "library" => Some(Client::Library),
            _ => None,
        }
    }

    /// The name a manifest's `client` gives it (`simple_ota`).
    pub fn name(self) -> &'static str {
        match self {
            Client::SimpleOta => "simple_ota",
            Client::AdvancedHttpsOta => "advanced_https_ota",
            Client::NativeOta => "native_ota",
            Client::Library => "library",
        }
    }
}

/// `CONFIG_LOG_DEFAULT_LEVEL`: the most verbose level the app prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Nothing (0).
    None,
    /// `E` lines (1).
    Error,
    /// `E` and `W` lines (2).
    Warn,
    /// Up to `I` lines (3): ESP-IDF's default.
    Info,
    /// Up to `D` lines (4).
    Debug,
    /// Every line, `V` included (5).
    Verbose,
}

impl LogLevel {
    /// The names a manifest's `log_level` takes.
    pub(crate) const NAMES: [&'static str; 6] = ["none", "error", "warn", "info", "debug", "verbose"];

    pub(crate) fn from_name(name: &str) -> Option<LogLevel> {
        Self::NAMES.iter().position(|n| *n == name).and_then(Self::from_number)
    }

    /// `CONFIG_LOG_DEFAULT_LEVEL`'s number (0 none … 5 verbose).
    pub(crate) fn from_number(number: usize) -> Option<LogLevel> {
        [LogLevel::None, LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Verbose]
            .get(number)
            .copied()
    }

    /// The name a manifest's `log_level` gives it (`info`).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What is stated about a firmware, outside its image: each value with its source (the
/// manifest, the `sdkconfig`, an option). Stated values win over what the image says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stated {
    /// The ESP-IDF version it was built with.
    pub idf: Option<Sourced<BuildVersion>>,
    /// Where it fetches updates.
    pub ota_url: Option<Sourced<OtaUrl>>,
    /// Whether it checks certificate dates (`CONFIG_MBEDTLS_HAVE_TIME_DATE`).
    pub time_check: Option<Sourced<bool>>,
    /// Where its wall clock comes from.
    pub clock: Option<Sourced<ClockSource>>,
    /// Whether its bootloader rolls back (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`).
    pub rollback: Option<Sourced<bool>>,
    /// Whether it confirms itself when started on trial after an update.
    pub confirms: Option<Sourced<bool>>,
    /// The program around the update library.
    pub client: Option<Sourced<Client>>,
    /// `CONFIG_LOG_DEFAULT_LEVEL`.
    pub log_level: Option<Sourced<LogLevel>>,
    /// The curves its build turned off (`CONFIG_MBEDTLS_ECP_DP_<CURVE>_ENABLED`).
    pub curves_off: Option<Sourced<Curves>>,
    /// Its TLS input buffer's content length (`CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN`).
    pub tls_in_content_len: Option<Sourced<u32>>,
    /// The heap it leaves for a TLS connection, in bytes (`tls_heap`).
    pub tls_heap: Option<Sourced<u32>>,
}

/// The firmware as the twin runs it.
#[derive(Clone, Debug)]
pub struct FirmwareProfile {
    /// The manifest id, when the image carries a record.
    pub id: Option<String>,
    /// The app's version (descriptor or record); empty when nothing says.
    pub version: String,
    /// The descriptor's project name.
    pub project: Option<String>,
    /// The ESP-IDF version it was built with; `None` when nothing says.
    pub idf: Option<Sourced<BuildVersion>>,
    /// Where `esp_https_ota` fetches the update; `None`: unknown, or the app does not update.
    pub ota_url: Option<Sourced<OtaUrl>>,
    /// `https://` URLs among the image's strings that were not taken as the OTA URL (none was
    /// stated and not exactly one looked like it).
    pub url_candidates: Vec<String>,
    /// `CONFIG_MBEDTLS_HAVE_TIME_DATE`.
    pub time_check: Sourced<bool>,
    /// Where its wall clock comes from; never set by default.
    pub clock: Sourced<ClockSource>,
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`.
    pub rollback: Sourced<bool>,
    /// Whether the app confirms itself when started on trial after an update.
    pub confirms: Sourced<bool>,
    /// The program around the update library: as stated, else an ESP-IDF example the
    /// descriptor's project name names, else [`Client::Library`].
    pub client: Sourced<Client>,
    /// `CONFIG_LOG_DEFAULT_LEVEL`.
    pub log_level: Sourced<LogLevel>,
    /// The curves its build turned off; none by default.
    pub curves_off: Sourced<Curves>,
    /// `CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN`; 16384 by default.
    pub tls_in_content_len: Sourced<u32>,
    /// The heap it leaves for a TLS connection, in bytes; `None`: nothing says, and the
    /// connection's allocations are not limited.
    pub tls_heap: Option<Sourced<u32>>,
    /// The release offered as the update: it does not look for a newer one.
    pub(crate) is_update: bool,
    /// What the TLS client trusts; `None` when the image embeds nothing.
    pub anchors: Option<Anchors>,
}

impl FirmwareProfile {
    /// Reads the profile of the app image `image` (its bytes from the partition start), with
    /// `stated` winning over what the image says.
    pub fn read(image: &[u8], stated: &Stated) -> FirmwareProfile {
        let record = Record::find(image);
        let desc = image.get(APP_DESC_OFFSET..).and_then(parse_app_desc);
        let (ota_url, url_candidates) = match stated.ota_url.clone().or_else(|| record.ota_url()) {
            Some(url) => (Some(url), Vec::new()),
            None => url_from_strings(image),
        };
        let client = stated.client.or_else(|| record.client()).unwrap_or_else(|| client_of(desc.as_ref()));
        FirmwareProfile {
            id: record.get("id").map(str::to_owned),
            version: desc
                .as_ref()
                .map(|d| d.version.clone())
                .or_else(|| record.get("version").map(str::to_owned))
                .unwrap_or_default(),
            project: desc.as_ref().map(|d| d.project_name.clone()),
            idf: stated.idf.clone().or_else(|| record.idf()).or_else(|| idf_of(desc.as_ref(), image)),
            ota_url,
            url_candidates,
            time_check: stated.time_check.or_else(|| record.flag("time_check")).unwrap_or(DEFAULT_OFF),
            clock: stated.clock.or_else(|| record.clock()).unwrap_or(Sourced::new(ClockSource::Unset, Source::Default)),
            rollback: stated.rollback.or_else(|| record.flag("rollback")).unwrap_or(DEFAULT_OFF),
            confirms: stated.confirms.or_else(|| record.flag("confirms")).unwrap_or(DEFAULT_ON),
            log_level: stated.log_level.unwrap_or_else(|| default_log_level(client.value, desc.as_ref())),
            client,
            curves_off: stated
                .curves_off
                .or_else(|| record.curves_off())
                .unwrap_or(Sourced::new(Curves::NONE, Source::Default)),
            tls_in_content_len: stated
                .tls_in_content_len
                .or_else(|| record.number("tls_in_content_len"))
                .unwrap_or(Sourced::new(DEFAULT_IN_CONTENT_LEN, Source::Default)),
            tls_heap: stated.tls_heap.or_else(|| record.number("tls_heap")),
            is_update: record.get("update") == Some("true"),
            anchors: anchors(image, record.get("trust").is_some_and(|t| t.starts_with("bundle:"))),
        }
    }

    /// The ESP-IDF release it was built with, when known.
    pub fn release(&self) -> Option<IdfVersion> {
        self.idf.as_ref().map(|idf| idf.value.release)
    }

    /// The build's mbedTLS where it departs from the release's default.
    pub fn tls_config(&self) -> TlsConfig {
        TlsConfig {
            curves_off: self.curves_off.value,
            in_content_len: self.tls_in_content_len.value,
            heap: self.tls_heap.map(|heap| heap.value),
        }
    }

    /// Where each value came from, by the manifest key that states it.
    pub fn sources(&self) -> BTreeMap<&'static str, Source> {
        let mut sources = BTreeMap::from([
            ("time_check", self.time_check.source),
            ("clock", self.clock.source),
            ("rollback", self.rollback.source),
            ("confirms", self.confirms.source),
            ("client", self.client.source),
            ("log_level", self.log_level.source),
            ("curves_off", self.curves_off.source),
            ("tls_in_content_len", self.tls_in_content_len.source),
        ]);
        if let Some(heap) = &self.tls_heap {
            sources.insert("tls_heap", heap.source);
        }
        if let Some(idf) = &self.idf {
            sources.insert("idf", idf.source);
        }
        if let Some(url) = &self.ota_url {
            sources.insert("ota_url", url.source);
        }
        if self.anchors.is_some() {
            sources.insert("trust", Source::Image);
        }
        sources
    }

    /// What was guessed, one sentence each, for a warning: the values read from the image's
    /// strings.
    pub fn guesses(&self) -> Vec<String> {
        let mut guesses = Vec::new();
        if let Some(idf) = self.idf.as_ref().filter(|idf| idf.source.is_guess()) {
            guesses.push(format!(
                "ESP-IDF {} inferred from a version string in the image (no app descriptor); set `idf` to state it",
                idf.value
            ));
        }
        if let Some(url) = self.ota_url.as_ref().filter(|url| url.source.is_guess()) {
            guesses.push(format!(
                "OTA URL {} inferred from the image's strings (the only one that looks like an update); set `ota_url` to state it",
                url.value
            ));
        }
        guesses
    }
}

/// What the rig tells a twin about a real build it may boot (its image cannot say it all): the
/// build, by the SHA-256 of its image, and what the fleet's manifest states about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownBuild {
    /// The SHA-256 of the image up to its end as its header and segments say.
    pub sha256: [u8; 32],
    /// What the manifest states about it.
    pub stated: Stated,
}

impl KnownBuild {
    /// The build whose app image is `image`, with what is stated about it.
    pub fn of(image: &[u8], stated: Stated) -> Self {
        Self { sha256: image_sha256(image), stated }
    }
}

/// The SHA-256 of an app image: of its bytes up to its end as the image's header and segments
/// say (a partition's trailing 0xFF not counted), or of all of them when they do not parse.
pub(crate) fn image_sha256(image: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let length = crate::image::parse_app(image).map_or(image.len(), |app| app.length.min(image.len()));
    sha2::Sha256::digest(&image[..length]).into()
}

const DEFAULT_OFF: Sourced<bool> = Sourced { value: false, source: Source::Default };
const DEFAULT_ON: Sourced<bool> = Sourced { value: true, source: Source::Default };

/// The `key=value` lines of the profile record, if the image has one.
struct Record(Vec<(String, String)>);

impl Record {
    fn find(image: &[u8]) -> Record {
        let Some(at) = memmem::find(image, PROFILE_MARKER) else {
            return Record(Vec::new());
        };
        let rest = &image[at + PROFILE_MARKER.len()..];
        let rest = &rest[..memchr::memchr(0, rest).unwrap_or(rest.len())];
        let lines = String::from_utf8_lossy(rest)
            .lines()
            .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        Record(lines)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> Option<Sourced<bool>> {
        self.get(key).map(|value| Sourced::new(value == "true", Source::Record))
    }

    fn idf(&self) -> Option<Sourced<BuildVersion>> {
        let version = BuildVersion::parse(self.get("idf")?).ok()?;
        Some(Sourced::new(version, Source::Record))
    }

    fn ota_url(&self) -> Option<Sourced<OtaUrl>> {
        OtaUrl::parse(self.get("ota_url")?).ok().map(|url| Sourced::new(url, Source::Record))
    }

    fn clock(&self) -> Option<Sourced<ClockSource>> {
        let clock = match self.get("clock")? {
            "sntp" => ClockSource::Sntp,
            "unset" => ClockSource::Unset,
            seconds => ClockSource::Fixed(seconds.parse().ok()?),
        };
        Some(Sourced::new(clock, Source::Record))
    }

    fn client(&self) -> Option<Sourced<Client>> {
        Client::from_name(self.get("client")?).map(|client| Sourced::new(client, Source::Record))
    }

    fn number(&self, key: &str) -> Option<Sourced<u32>> {
        self.get(key)?.parse().ok().map(|n| Sourced::new(n, Source::Record))
    }

    fn curves_off(&self) -> Option<Sourced<Curves>> {
        let names = self.get("curves_off")?;
        let curves =
            names.split(',').filter(|name| !name.is_empty()).map(Curve::from_name).collect::<Option<Vec<_>>>()?;
        Some(Sourced::new(Curves::of(&curves), Source::Record))
    }
}

/// The ESP-IDF version: the descriptor's, else a version string among the image's bytes (a
/// guess; the last one found, as `IDF_VER` sits after the app's own strings).
fn idf_of(desc: Option<&AppDesc>, image: &[u8]) -> Option<Sourced<BuildVersion>> {
    if let Some(version) = desc.and_then(|d| BuildVersion::parse(&d.idf_ver).ok()) {
        return Some(Sourced::new(version, Source::Descriptor));
    }
    let found = find_versions(image);
    let first = &found.first()?.1;
    // Only when every string names the same release: anything else is not a guess worth making.
    found.iter().all(|(_, v)| v.release == first.release).then(|| Sourced::new(first.clone(), Source::ImageStrings))
}

/// The client program from the descriptor's project name: an ESP-IDF OTA example by its own
/// name, anything else the library alone.
fn client_of(desc: Option<&AppDesc>) -> Sourced<Client> {
    match desc.and_then(|d| Client::from_name(&d.project_name)).filter(|c| *c != Client::Library) {
        Some(client) => Sourced::new(client, Source::Descriptor),
        None => Sourced::new(Client::Library, Source::Default),
    }
}

/// ESP-IDF's default log level, INFO; Arduino-ESP32's library builder sets ERROR.
fn default_log_level(client: Client, desc: Option<&AppDesc>) -> Sourced<LogLevel> {
    let arduino = desc.is_some_and(|d| d.project_name == "arduino-lib-builder");
    let level = if arduino && client == Client::Library { LogLevel::Error } else { LogLevel::Info };
    Sourced::new(level, Source::Default)
}

/// The OTA URL among the image's strings: a whole string that is an `https://` URL (not text
/// around one, not a `printf` format), taken only when exactly one looks like it fetches an
/// update; otherwise none, with every `https://` string as a candidate.
fn url_from_strings(image: &[u8]) -> (Option<Sourced<OtaUrl>>, Vec<String>) {
    let https: Vec<String> = find_urls(image)
        .into_iter()
        .map(|(_, text)| text)
        .filter(|text| text.to_ascii_lowercase().contains("https://"))
        .collect();
    let whole: Vec<OtaUrl> = https
        .iter()
        .filter(|text| text.len() >= 8 && text[..8].eq_ignore_ascii_case("https://") && !text.contains('%'))
        .filter_map(|text| OtaUrl::parse(text).ok())
        .collect();
    let looks_like_update = |url: &&OtaUrl| {
        let path = url.path.to_ascii_lowercase();
        path.ends_with(".bin") || ["ota", "firmware", "update"].iter().any(|word| path.contains(word))
    };
    let plausible: Vec<&OtaUrl> = whole.iter().filter(looks_like_update).collect();
    match plausible.as_slice() {
        [only] => (Some(Sourced::new((*only).clone(), Source::ImageStrings)), Vec::new()),
        _ => (None, https),
    }
}

/// The trust material in the image: its PEM (or DER) roots, or its certificate bundle.
fn anchors(image: &[u8], prefers_bundle: bool) -> Option<Anchors> {
    let items = find_trust(image);
    let mut roots = Vec::new();
    let mut bundle = None;
    // A device's own certificate (client authentication) is not something it verifies servers
    // against.
    for item in items.iter().filter(|item| item.role.is_trusted()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(parts: &[&str]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        for part in parts {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
        bytes
    }

    #[test]
    fn an_ota_url_is_inferred_only_when_one_string_looks_like_an_update() {
        let (url, candidates) =
            url_from_strings(&strings(&["https://ota.example.com/fw/app.bin", "https://example.com/"]));
        assert_eq!(url.map(|u| (u.value.host, u.source)), Some(("ota.example.com".into(), Source::ImageStrings)));
        assert!(candidates.is_empty());
        // Text around a URL (a web page), a format, two plausible ones: no guess, all listed.
        let page = "<a href=\"https://github.com/tzapu/WiFiManager\">x</a>";
        let (url, candidates) = url_from_strings(&strings(&[page, "https://%s/ota/%s.bin"]));
        assert_eq!((url, candidates.len()), (None, 2));
        let (url, _) = url_from_strings(&strings(&["https://a.example/1.bin", "https://b.example/2.bin"]));
        assert_eq!(url, None);
    }

    #[test]
    fn a_version_string_is_a_guess_and_only_when_strings_agree() {
        let image = strings(&["v3.2.3-14-gd3e562907", "hello"]);
        let idf = idf_of(None, &image).unwrap();
        assert_eq!((idf.value.release, idf.source), (IdfVersion::new(3, 2, 3), Source::ImageStrings));
        assert_eq!(idf_of(None, &strings(&["v4.4.1", "v5.0.2"])), None);
        assert_eq!(idf_of(None, &strings(&["no version here"])), None);
    }

    #[test]
    fn what_is_stated_wins_and_defaults_say_so() {
        let image = strings(&["v3.2.3", "https://ota.example.com/fw.bin"]);
        let stated = Stated {
            idf: Some(Sourced::new(BuildVersion::parse("v3.2").unwrap(), Source::Manifest)),
            time_check: Some(Sourced::new(true, Source::Sdkconfig)),
            ..Stated::default()
        };
        let profile = FirmwareProfile::read(&image, &stated);
        assert_eq!(profile.release(), Some(IdfVersion::new(3, 2, 0)));
        let sources = profile.sources();
        assert_eq!(sources["idf"], Source::Manifest);
        assert_eq!(sources["time_check"], Source::Sdkconfig);
        assert_eq!(sources["ota_url"], Source::ImageStrings);
        assert_eq!((sources["rollback"], sources["client"]), (Source::Default, Source::Default));
        assert_eq!(profile.guesses().len(), 1, "{:?}", profile.guesses());
        assert_eq!(profile.log_level.value, LogLevel::Info);
    }
}
