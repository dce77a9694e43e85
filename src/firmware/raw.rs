//! Manifests and bundle lists as written: private shapes that refuse unknown keys, checked
//! into [`FirmwareManifest`]s and [`BundleList`]s.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::url::{OtaUrl, Scheme};
use super::{BundleList, Chip, Clock, FirmwareManifest, IdfVersion, ManifestError, Trust, spec_error, timestamp};
use crate::pki::{LabPki, SpecError, SpecErrorKind};
use crate::toml_source::TomlSource;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    version: String,
    idf: Spanned<String>,
    #[serde(default = "esp32")]
    chip: Chip,
    ota_url: Spanned<String>,
    trust: Spanned<RawTrust>,
    #[serde(default)]
    time_check: bool,
    clock: Option<Spanned<String>>,
    rollback: Option<Spanned<bool>>,
    #[serde(default = "yes")]
    confirms: bool,
    #[serde(default)]
    update: bool,
    image: Option<String>,
    bootloader: Option<String>,
    image_size: Option<usize>,
    #[serde(default)]
    transplant: Vec<Spanned<RawTransplant>>,
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransplant {
    replace: String,
    with: String,
}

fn esp32() -> Chip {
    Chip::Esp32
}

fn yes() -> bool {
    true
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

pub(super) fn load_manifest(
    source: &TomlSource,
    pki: &LabPki,
    bundles: &BTreeMap<String, BundleList>,
) -> Result<FirmwareManifest, ManifestError> {
    let raw: RawManifest = source.parse().map_err(SpecError::from)?;
    let at = |span: std::ops::Range<usize>| source.location(span.start);
    let idf = IdfVersion::parse(raw.idf.get_ref()).ok_or_else(|| {
        spec_error(at(raw.idf.span()), format!("`{}` is not an ESP-IDF version (v4.4.8)", raw.idf.get_ref()))
    })?;
    let url = raw.ota_url.get_ref();
    let ota_url = match OtaUrl::parse(url) {
        Ok(parsed) if parsed.scheme == Scheme::Https => parsed,
        Ok(_) => return Err(spec_error(at(raw.ota_url.span()), format!("`{url}` is not an https:// URL"))),
        Err(err) => return Err(spec_error(at(raw.ota_url.span()), format!("`{url}`: {err}"))),
    };
    let trust = match raw.trust.get_ref() {
        RawTrust::Named(name) if name == "embedded" => Trust::Embedded,
        RawTrust::Named(other) => {
            let message = format!("trust = \"{other}\": use \"embedded\", {{ pem = [...] }} or {{ bundle = \"...\" }}");
            return Err(spec_error(at(raw.trust.span()), message));
        }
        // (Spans do not survive serde's untagged enums: errors point at the `trust` value.)
        RawTrust::Pem { pem } => {
            for name in pem {
                if !pki.specs().contains_key(name) {
                    let kind = SpecErrorKind::UnknownCertificate { name: name.clone() };
                    return Err(SpecError { location: at(raw.trust.span()), kind }.into());
                }
            }
            Trust::Pem(pem.clone())
        }
        RawTrust::Bundle { bundle } => {
            if !bundles.contains_key(bundle) {
                let known = bundles.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(spec_error(at(raw.trust.span()), format!("unknown bundle `{bundle}` (known: {known})")));
            }
            if !idf.has_certificate_bundle() {
                return Err(spec_error(at(raw.trust.span()), format!("ESP-IDF {idf} has no certificate bundle")));
            }
            Trust::Bundle(bundle.clone())
        }
    };
    if let Some(rollback) = &raw.rollback
        && *rollback.get_ref()
        && !idf.has_rollback()
    {
        return Err(spec_error(at(rollback.span()), format!("ESP-IDF {idf} has no rollback (from v3.3)")));
    }
    let clock = match &raw.clock {
        None => Clock::Unset,
        Some(clock) => match clock.get_ref().as_str() {
            "unset" => Clock::Unset,
            "sntp" => Clock::Sntp,
            date => Clock::Fixed(timestamp(crate::pki::spec::parse_time(date).map_err(|message| {
                spec_error(at(clock.span()), format!("clock: {message}; or \"unset\", \"sntp\""))
            })?)),
        },
    };
    let transplant = raw
        .transplant
        .iter()
        .map(|step| {
            let at = step.span();
            let step = step.get_ref();
            if raw.image.is_none() {
                return Err(spec_error(source.location(at.start), "transplant needs a real `image` to work on".into()));
            }
            if !pki.specs().contains_key(&step.with) {
                let kind = SpecErrorKind::UnknownCertificate { name: step.with.clone() };
                return Err(SpecError { location: source.location(at.start), kind }.into());
            }
            Ok(super::TransplantStep { replace: step.replace.clone(), with: step.with.clone() })
        })
        .collect::<Result<_, ManifestError>>()?;
    Ok(FirmwareManifest {
        id: id_of(source),
        path: source.path().to_owned(),
        version: raw.version,
        idf,
        chip: raw.chip,
        ota_url,
        trust,
        time_check: raw.time_check,
        clock,
        rollback: raw.rollback.is_some_and(Spanned::into_inner),
        confirms: raw.confirms,
        update: raw.update,
        image: raw.image.map(Into::into),
        bootloader: raw.bootloader.map(Into::into),
        image_size: raw.image_size,
        transplant,
        notes: raw.notes,
    })
}

fn id_of(source: &TomlSource) -> String {
    source.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
