//! Manifests and bundle lists as written: private shapes that refuse unknown keys, checked
//! into [`FirmwareManifest`]s and [`BundleList`]s.
//!
//! A manifest without `image` describes a build the rig makes ([`super::build`]): everything the
//! image will say is stated. A manifest that names a real build states only what the build
//! cannot say (date checks, clock, rollback, the OTA URL when the image has none, the client);
//! the rest is read from the build itself ([`FirmwareProfile::read`]), its `sdkconfig` when the
//! manifest names one, and the manifest always wins.

use std::collections::BTreeMap;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::toml_source::TagProblem;

use super::profile::{Client, ClockSource, FirmwareProfile, LogLevel, Source, Sourced, Stated};
use super::sdkconfig::Sdkconfig;
use super::url::{OtaUrl, Scheme};
use super::{BundleList, FirmwareManifest, ManifestError, Trust, spec_error, timestamp};
use crate::device_tls::{Curve, Curves, DEFAULT_IN_CONTENT_LEN, MIN_IN_CONTENT_LEN, TlsConfig};

/// The smallest `tls_heap` a manifest may state, in bytes.
const MIN_TLS_HEAP: u32 = 1;
/// The largest: the ESP32's 520 KiB of SRAM.
const MAX_TLS_HEAP: u32 = 520 * 1024;
use crate::idf::BuildVersion;
use crate::image::{Chip, parse_app};
use crate::pki::{LabPki, SpecError, SpecErrorKind};
use crate::toml_source::{Location, TomlSource};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    version: Option<String>,
    idf: Option<Spanned<String>>,
    chip: Option<Spanned<Chip>>,
    ota_url: Option<Spanned<String>>,
    trust: Option<Spanned<RawTrust>>,
    time_check: Option<bool>,
    clock: Option<Spanned<String>>,
    rollback: Option<Spanned<bool>>,
    confirms: Option<bool>,
    client: Option<Spanned<String>>,
    log_level: Option<Spanned<String>>,
    curves_off: Option<Vec<Spanned<String>>>,
    tls_in_content_len: Option<Spanned<u32>>,
    tls_heap: Option<Spanned<u32>>,
    #[serde(default)]
    update: bool,
    image: Option<Spanned<String>>,
    bootloader: Option<Spanned<String>>,
    partition_table: Option<Spanned<String>>,
    sdkconfig: Option<Spanned<String>>,
    image_size: Option<usize>,
    #[serde(default)]
    transplant: Vec<Spanned<RawTransplant>>,
    notes: Option<String>,
    /// Labels scenarios' expectation rules match (`firmware_tag`).
    #[serde(default)]
    tags: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransplant {
    replace: String,
    with: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTrust {
    Named(String),
    Pem { pem: Vec<String> },
    Bundle { bundle: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    title: String,
    authorities: Vec<Spanned<String>>,
    source: Option<String>,
}

pub(super) fn load_bundle(source: &TomlSource, pki: &LabPki) -> Result<BundleList, ManifestError> {
    let raw: RawBundle = source.parse().map_err(SpecError::from)?;
    let mut authorities = Vec::new();
    for name in raw.authorities {
        if !pki.specs().contains_key(name.get_ref()) {
            let kind = SpecErrorKind::UnknownCertificate { name: name.get_ref().clone() };
            return Err(SpecError { location: source.location(name.span().start), kind }.into());
        }
        authorities.push(name.into_inner());
    }
    Ok(BundleList { id: id_of(source), title: raw.title, authorities, source: raw.source })
}

/// A manifest being checked: its text for locations, its folder for the files it names.
struct Checking<'a> {
    source: &'a TomlSource,
    dir: PathBuf,
}

impl Checking<'_> {
    fn at(&self, span: Range<usize>) -> Location {
        self.source.location(span.start)
    }

    fn error<T>(&self, span: Range<usize>, message: String) -> Result<T, ManifestError> {
        Err(spec_error(self.at(span), message))
    }

    /// A key the manifest must have (where the rig builds the image), located at the file's
    /// start.
    fn missing<T>(&self, field: &'static str) -> Result<T, ManifestError> {
        Err(SpecError { location: self.source.location(0), kind: SpecErrorKind::Missing { field } }.into())
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// Refuses a file the manifest names outside its repository (the nearest folder above the
    /// manifest that holds `.git`; the manifest's own folder outside a repository): a manifest
    /// may come from anyone, and the file is read and flashed.
    fn confined(&self, named: &Spanned<String>) -> Result<(), ManifestError> {
        let root = repository_of(&self.dir);
        let path = self.path(named.get_ref());
        // A file that does not exist is refused when it is read, with its path.
        let Ok(resolved) = path.canonicalize() else { return Ok(()) };
        let inside = root.canonicalize().is_ok_and(|root| resolved.starts_with(root));
        if inside {
            return Ok(());
        }
        let message =
            format!("`{}` is outside {}, where the manifest's files must be", named.get_ref(), root.display());
        self.error(named.span(), message)
    }

    fn read(&self, relative: &str) -> Result<Vec<u8>, ManifestError> {
        let path = self.path(relative);
        crate::input::read_image(&path).map_err(|source| ManifestError::Read { path, source })
    }
}

/// The repository `dir` is in (the nearest folder from `dir` up that holds `.git`), else `dir`.
pub(super) fn repository_of(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    absolute.ancestors().find(|folder| folder.join(".git").exists()).map_or(absolute.clone(), Path::to_owned)
}

pub(crate) fn load_manifest(
    source: &TomlSource,
    pki: &LabPki,
    bundles: &BTreeMap<String, BundleList>,
) -> Result<FirmwareManifest, ManifestError> {
    let raw: RawManifest = source.parse().map_err(SpecError::from)?;
    let checking = Checking { source, dir: source.path().parent().map(Path::to_owned).unwrap_or_default() };
    for named in [&raw.image, &raw.bootloader, &raw.partition_table, &raw.sdkconfig].into_iter().flatten() {
        checking.confined(named)?;
    }
    let mut stated = stated_in(&checking, &raw)?;
    if let Some(config) = &raw.sdkconfig {
        let text = checking.read(config.get_ref())?;
        let sdkconfig = Sdkconfig::parse(&String::from_utf8_lossy(&text));
        stated = merge(stated, sdkconfig.stated());
    }
    let facts = match &raw.image {
        None => built_facts(&checking, &raw, stated)?,
        Some(image) => real_facts(&checking, &raw, image.get_ref(), stated)?,
    };
    let trust = trust_of(&checking, &raw, &facts.idf, pki, bundles)?;
    if facts.rollback && !facts.idf.release.has_rollback() {
        let span = raw.rollback.as_ref().map_or(0..0, Spanned::span);
        return checking.error(span, format!("ESP-IDF {} has no rollback (from v3.3)", facts.idf));
    }
    let transplant = transplants(&checking, &raw, pki)?;
    let tags = tags_of(&checking, &raw.tags)?;
    Ok(FirmwareManifest {
        id: id_of(source),
        path: source.path().to_owned(),
        version: facts.version,
        idf: facts.idf,
        chip: facts.chip,
        ota_url: facts.ota_url,
        url_candidates: facts.url_candidates,
        trust,
        time_check: facts.time_check,
        clock: facts.clock,
        rollback: facts.rollback,
        confirms: facts.confirms,
        client: facts.client,
        log_level: facts.log_level,
        tls: facts.tls,
        update: raw.update,
        image: raw.image.map(|s| s.into_inner().into()),
        bootloader: raw.bootloader.map(|s| s.into_inner().into()),
        partition_table: raw.partition_table.map(|s| s.into_inner().into()),
        sdkconfig: raw.sdkconfig.map(|s| s.into_inner().into()),
        image_size: raw.image_size,
        transplant,
        notes: raw.notes,
        tags,
        sources: facts.sources,
        guesses: facts.guesses,
    })
}

/// What the manifest states, each value checked and marked as the manifest's.
fn stated_in(checking: &Checking<'_>, raw: &RawManifest) -> Result<Stated, ManifestError> {
    fn manifest<T>(value: T) -> Sourced<T> {
        Sourced::new(value, Source::Manifest)
    }
    let idf = match &raw.idf {
        None => None,
        Some(idf) => match BuildVersion::parse(idf.get_ref()) {
            Ok(version) => Some(manifest(version)),
            Err(err) => {
                let message = format!("`{}` is not an ESP-IDF version ({err}; e.g. v4.4.8)", idf.get_ref());
                return checking.error(idf.span(), message);
            }
        },
    };
    let ota_url = match &raw.ota_url {
        None => None,
        Some(url) => Some(manifest(https_url(checking, url)?)),
    };
    let clock = match &raw.clock {
        None => None,
        Some(clock) => Some(manifest(clock_of(checking, clock)?)),
    };
    let client = match &raw.client {
        None => None,
        Some(name) => match Client::from_name(name.get_ref()) {
            Some(client) => Some(manifest(client)),
            None => {
                let message = format!("unknown client `{}` (one of: {})", name.get_ref(), Client::NAMES.join(", "));
                return checking.error(name.span(), message);
            }
        },
    };
    let log_level = match &raw.log_level {
        None => None,
        Some(name) => match LogLevel::from_name(name.get_ref()) {
            Some(level) => Some(manifest(level)),
            None => {
                let message =
                    format!("unknown log level `{}` (one of: {})", name.get_ref(), LogLevel::NAMES.join(", "));
                return checking.error(name.span(), message);
            }
        },
    };
    let curves_off = match &raw.curves_off {
        None => None,
        Some(names) => Some(manifest(curves_of(checking, names)?)),
    };
    let tls_in_content_len = raw
        .tls_in_content_len
        .as_ref()
        .map(|len| {
            bytes_within(
                checking,
                "tls_in_content_len",
                len,
                MIN_IN_CONTENT_LEN..=DEFAULT_IN_CONTENT_LEN,
                "the Kconfig's range",
            )
        })
        .transpose()?
        .map(manifest);
    let tls_heap = raw
        .tls_heap
        .as_ref()
        .map(|heap| {
            bytes_within(
                checking,
                "tls_heap",
                heap,
                MIN_TLS_HEAP..=MAX_TLS_HEAP,
                "bytes of heap, at most the ESP32's 520 KiB of SRAM",
            )
        })
        .transpose()?
        .map(manifest);
    Ok(Stated {
        idf,
        ota_url,
        time_check: raw.time_check.map(manifest),
        clock,
        rollback: raw.rollback.as_ref().map(|r| manifest(*r.get_ref())),
        confirms: raw.confirms.map(manifest),
        client,
        log_level,
        curves_off,
        tls_in_content_len,
        tls_heap,
    })
}

/// `curves_off`: curve names the Kconfig knows, each once.
/// A size in bytes that must lie in `range` (`why` says where the range comes from), located at
/// its value when it does not.
fn bytes_within(
    checking: &Checking<'_>,
    key: &str,
    value: &Spanned<u32>,
    range: RangeInclusive<u32>,
    why: &str,
) -> Result<u32, ManifestError> {
    let bytes = *value.get_ref();
    if !range.contains(&bytes) {
        let message = format!("{key} = {bytes} is outside {}..={} ({why})", range.start(), range.end());
        return checking.error(value.span(), message);
    }
    Ok(bytes)
}

fn curves_of(checking: &Checking<'_>, names: &[Spanned<String>]) -> Result<Curves, ManifestError> {
    let mut curves = Curves::NONE;
    for name in names {
        let Some(curve) = Curve::from_name(name.get_ref()) else {
            let known: Vec<&str> = Curve::ALL.iter().map(|c| c.name()).collect();
            let message = format!("unknown curve `{}` (one of: {})", name.get_ref(), known.join(", "));
            return checking.error(name.span(), message);
        };
        if curves.contains(curve) {
            return checking.error(name.span(), format!("curve `{curve}` is given twice"));
        }
        curves = curves.with(curve);
    }
    Ok(curves)
}

/// Tags: distinct, of lowercase letters, digits and `-`.
fn tags_of(checking: &Checking<'_>, raw: &[Spanned<String>]) -> Result<Vec<String>, ManifestError> {
    crate::toml_source::check_tags(raw).or_else(|(tag, problem)| {
        let name = tag.get_ref();
        let message = match problem {
            TagProblem::Malformed => format!("tag `{name}` is not lowercase letters, digits and `-`"),
            TagProblem::Twice => format!("tag `{name}` is given twice"),
        };
        checking.error(tag.span(), message)
    })
}

fn https_url(checking: &Checking<'_>, url: &Spanned<String>) -> Result<OtaUrl, ManifestError> {
    let text = url.get_ref();
    match OtaUrl::parse(text) {
        Ok(parsed) if parsed.scheme == Scheme::Https => Ok(parsed),
        Ok(_) => checking.error(url.span(), format!("`{text}` is not an https:// URL")),
        Err(err) => checking.error(url.span(), format!("`{text}`: {err}")),
    }
}

fn clock_of(checking: &Checking<'_>, clock: &Spanned<String>) -> Result<ClockSource, ManifestError> {
    Ok(match clock.get_ref().as_str() {
        "unset" => ClockSource::Unset,
        "sntp" => ClockSource::Sntp,
        date => match crate::pki::spec::parse_time(date) {
            Ok(time) => ClockSource::Fixed(timestamp(time)),
            Err(message) => return checking.error(clock.span(), format!("clock: {message}; or \"unset\", \"sntp\"")),
        },
    })
}

/// The `sdkconfig`'s statements under the manifest's: the manifest wins.
fn merge(manifest: Stated, sdkconfig: Stated) -> Stated {
    Stated {
        idf: manifest.idf.or(sdkconfig.idf),
        ota_url: manifest.ota_url.or(sdkconfig.ota_url),
        time_check: manifest.time_check.or(sdkconfig.time_check),
        clock: manifest.clock.or(sdkconfig.clock),
        rollback: manifest.rollback.or(sdkconfig.rollback),
        confirms: manifest.confirms.or(sdkconfig.confirms),
        client: manifest.client.or(sdkconfig.client),
        log_level: manifest.log_level.or(sdkconfig.log_level),
        curves_off: manifest.curves_off.or(sdkconfig.curves_off),
        tls_in_content_len: manifest.tls_in_content_len.or(sdkconfig.tls_in_content_len),
        tls_heap: manifest.tls_heap.or(sdkconfig.tls_heap),
    }
}

/// A firmware's facts, resolved, each with its source.
struct Facts {
    version: String,
    idf: BuildVersion,
    chip: Chip,
    ota_url: Option<OtaUrl>,
    url_candidates: Vec<String>,
    time_check: bool,
    clock: ClockSource,
    rollback: bool,
    confirms: bool,
    client: Client,
    log_level: LogLevel,
    tls: TlsConfig,
    sources: BTreeMap<&'static str, Source>,
    guesses: Vec<String>,
}

/// A build the rig makes: what it will say is what the manifest states; the client is the
/// `simple_ota` example unless stated, as the lab's builds model ESP-IDF's example.
fn built_facts(checking: &Checking<'_>, raw: &RawManifest, stated: Stated) -> Result<Facts, ManifestError> {
    let Some(version) = raw.version.clone() else { return checking.missing("version") };
    let Some(idf) = stated.idf.clone() else { return checking.missing("idf") };
    let Some(ota_url) = stated.ota_url.clone() else { return checking.missing("ota_url") };
    if raw.trust.is_none() {
        return checking.missing("trust");
    }
    let chip = raw.chip.as_ref().map_or(Chip::Esp32, |c| *c.get_ref());
    let or_default = |value: Option<Sourced<bool>>, default| value.unwrap_or(Sourced::new(default, Source::Default));
    let client = stated.client.unwrap_or(Sourced::new(Client::SimpleOta, Source::Default));
    let log_level = stated.log_level.unwrap_or(Sourced::new(LogLevel::Info, Source::Default));
    let profile = FirmwareProfile {
        id: None,
        version: version.clone(),
        project: None,
        idf: Some(idf.clone()),
        ota_url: Some(ota_url.clone()),
        url_candidates: Vec::new(),
        time_check: or_default(stated.time_check, false),
        clock: stated.clock.unwrap_or(Sourced::new(ClockSource::Unset, Source::Default)),
        rollback: or_default(stated.rollback, false),
        confirms: or_default(stated.confirms, true),
        client,
        log_level,
        curves_off: stated.curves_off.unwrap_or(Sourced::new(Curves::NONE, Source::Default)),
        tls_in_content_len: stated.tls_in_content_len.unwrap_or(Sourced::new(DEFAULT_IN_CONTENT_LEN, Source::Default)),
        tls_heap: stated.tls_heap,
        is_update: raw.update,
        anchors: None,
    };
    let mut facts = facts_of(&profile, idf.value, chip);
    facts.sources.insert("version", Source::Manifest);
    facts.sources.insert("trust", Source::Manifest);
    Ok(facts)
}

/// A real build: read from the image (and what it cannot say from the statements), its chip
/// checked against what the manifest and `sdkconfig` say.
fn real_facts(checking: &Checking<'_>, raw: &RawManifest, image: &str, stated: Stated) -> Result<Facts, ManifestError> {
    let bytes = checking.read(image)?;
    if let crate::image::identify::FileKind::Foreign(foreign) = crate::image::identify::identify(&bytes) {
        let what = foreign.to_string();
        return Err(ManifestError::Foreign { path: checking.path(image), what });
    }
    let app = match parse_app(&bytes) {
        Ok(app) => app,
        Err(err) => return Err(ManifestError::Image { path: checking.path(image), source: Box::new(err) }),
    };
    let chip = app.header.chip;
    if let Some(stated_chip) = &raw.chip
        && *stated_chip.get_ref() != chip
    {
        let message =
            format!("the build at `{image}` is for {chip}, the manifest says {}", stated_chip.get_ref().config_label());
        return checking.error(stated_chip.span(), message);
    }
    if let Some(config) = &raw.sdkconfig {
        let text = checking.read(config.get_ref())?;
        if let Some(target) = Sdkconfig::parse(&String::from_utf8_lossy(&text)).chip()
            && target != chip
        {
            let message = format!("the sdkconfig targets {target}, the build at `{image}` is for {chip}");
            return checking.error(config.span(), message);
        }
    }
    let profile = FirmwareProfile::read(&bytes, &stated);
    let Some(idf) = profile.idf.clone() else {
        let message =
            format!("the build at `{image}` says no ESP-IDF version (no app descriptor, no version string): set `idf`");
        return Err(spec_error(checking.source.location(0), message));
    };
    let mut facts = facts_of(&profile, idf.value, chip);
    if let Some(version) = &raw.version {
        facts.version = version.clone();
        facts.sources.insert("version", Source::Manifest);
    } else if !profile.version.is_empty() {
        facts.sources.insert("version", Source::Descriptor);
    }
    facts.sources.insert("chip", Source::Image);
    Ok(facts)
}

/// The facts a profile resolved, with their sources and guesses.
fn facts_of(profile: &FirmwareProfile, idf: BuildVersion, chip: Chip) -> Facts {
    Facts {
        version: profile.version.clone(),
        idf,
        chip,
        ota_url: profile.ota_url.as_ref().map(|url| url.value.clone()),
        url_candidates: profile.url_candidates.clone(),
        time_check: profile.time_check.value,
        clock: profile.clock.value,
        rollback: profile.rollback.value,
        confirms: profile.confirms.value,
        client: profile.client.value,
        log_level: profile.log_level.value,
        tls: profile.tls_config(),
        sources: profile.sources(),
        guesses: profile.guesses(),
    }
}

fn trust_of(
    checking: &Checking<'_>,
    raw: &RawManifest,
    idf: &BuildVersion,
    pki: &LabPki,
    bundles: &BTreeMap<String, BundleList>,
) -> Result<Trust, ManifestError> {
    let Some(trust) = &raw.trust else { return Ok(Trust::Embedded) };
    Ok(match trust.get_ref() {
        RawTrust::Named(name) if name == "embedded" => Trust::Embedded,
        RawTrust::Named(other) => {
            let message = format!("trust = \"{other}\": use \"embedded\", {{ pem = [...] }} or {{ bundle = \"...\" }}");
            return checking.error(trust.span(), message);
        }
        // (Spans do not survive serde's untagged enums: errors point at the `trust` value.)
        RawTrust::Pem { pem } => {
            if let Some(name) = pem.iter().find(|name| !pki.specs().contains_key(*name)) {
                let kind = SpecErrorKind::UnknownCertificate { name: name.clone() };
                return Err(SpecError { location: checking.at(trust.span()), kind }.into());
            }
            Trust::Pem(pem.clone())
        }
        RawTrust::Bundle { bundle } => {
            if !bundles.contains_key(bundle) {
                let known = bundles.keys().cloned().collect::<Vec<_>>().join(", ");
                return checking.error(trust.span(), format!("unknown bundle `{bundle}` (known: {known})"));
            }
            if !idf.release.has_certificate_bundle() {
                return checking.error(trust.span(), format!("ESP-IDF {idf} has no certificate bundle"));
            }
            Trust::Bundle(bundle.clone())
        }
    })
}

fn transplants(
    checking: &Checking<'_>,
    raw: &RawManifest,
    pki: &LabPki,
) -> Result<Vec<super::TransplantStep>, ManifestError> {
    raw.transplant
        .iter()
        .map(|step| {
            let at = step.span();
            let step = step.get_ref();
            if raw.image.is_none() {
                return checking.error(at, "transplant needs a real `image` to work on".into());
            }
            if !pki.specs().contains_key(&step.with) {
                let kind = SpecErrorKind::UnknownCertificate { name: step.with.clone() };
                return Err(SpecError { location: checking.at(at), kind }.into());
            }
            Ok(super::TransplantStep { replace: step.replace.clone(), with: step.with.clone() })
        })
        .collect()
}

fn id_of(source: &TomlSource) -> String {
    source.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
