//! The catalogue of real public CA certificates (`data/public-cas/`): roots, intermediates and
//! cross-signs exactly as their CAs (or ESP-IDF's certificate bundle) published them, each with
//! where it was published and, for an issuing CA, when it issued subscriber certificates.
//!
//! `catalogue.toml` lists the certificates (`[cert.NAME]`: `file`, `sha256`, `issued`,
//! `published`); each file is read once, must hold exactly one certificate, and must have the
//! SHA-256 its entry states. Every error names `file:line:column`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use toml::Spanned;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::toml_source::{Location, TomlSource};

/// The file that lists the certificates.
pub const CATALOGUE_FILE: &str = "catalogue.toml";

/// The catalogue as written: private shapes that refuse unknown keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    checked: Spanned<String>,
    #[serde(default)]
    cert: BTreeMap<String, Spanned<RawCert>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCert {
    file: Spanned<String>,
    sha256: Spanned<String>,
    #[serde(default)]
    issued: Vec<Spanned<RawIssued>>,
    #[serde(default)]
    published: Vec<RawPublication>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssued {
    from: String,
    from_page: String,
    until: Option<String>,
    until_page: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublication {
    url: String,
    repository: String,
    commit: String,
    path: String,
}

/// Where a certificate was published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// Where its publisher serves it (`https://letsencrypt.org/certs/2024/r11.pem`).
    pub url: String,
    /// The repository it was read from (`letsencrypt/website`).
    pub repository: String,
    /// The commit it was read at (40 hex digits).
    pub commit: String,
    /// Its path in that repository.
    pub path: String,
}

/// A time its CA issued subscriber certificates from it, as the CA's own page said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuingPeriod {
    /// The first day (UTC midnight, Unix seconds).
    pub from: i64,
    /// The commit of the CA's page that says it issues from then.
    pub from_page: String,
    /// The day it stopped (UTC midnight, Unix seconds); `None`: still issuing when the page was
    /// last read ([`Catalogue::checked`]).
    pub until: Option<i64>,
    /// The commit of the page that says it stopped.
    pub until_page: Option<String>,
}

impl IssuingPeriod {
    /// Whether the CA issues on `at` (Unix seconds).
    pub fn covers(&self, at: i64) -> bool {
        self.from <= at && self.until.is_none_or(|until| at < until)
    }
}

/// One real certificate of the catalogue.
#[derive(Clone, Debug)]
pub struct PublicCert {
    /// Its name in the catalogue (`r11`, `isrg-root-x1-by-dst`).
    pub name: String,
    /// Its PEM file, as the publisher wrote it.
    pub path: PathBuf,
    /// The file's text, byte for byte (what a chain file holds).
    pub pem: String,
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
    /// The subject as text (`C=US, O=Let's Encrypt, CN=R11`).
    pub subject: String,
    /// The subject's common name, else the whole subject.
    pub common_name: String,
    /// The subject `Name`'s DER.
    pub subject_der: Vec<u8>,
    /// The issuer `Name`'s DER.
    pub issuer_der: Vec<u8>,
    /// The `SubjectPublicKeyInfo` DER: with the subject, what makes the CA.
    pub public_key_der: Vec<u8>,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Subject and issuer are the same name (a root).
    pub self_signed: bool,
    /// `basicConstraints` says it is a CA.
    pub is_ca: bool,
    /// When its CA issued subscriber certificates (empty: never, or not from this one).
    pub issued: Vec<IssuingPeriod>,
    /// Where it was published (at least one).
    pub published: Vec<Publication>,
}

impl PublicCert {
    /// The SHA-256 as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// Whether `other` is the same CA: same subject and key.
    pub fn same_ca(&self, other: &PublicCert) -> bool {
        self.subject_der == other.subject_der && self.public_key_der == other.public_key_der
    }

    /// Whether it is valid at `at` (Unix seconds).
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// The catalogue, read and checked.
#[derive(Clone, Debug)]
pub struct Catalogue {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The day the issuing CAs' pages were last read (Unix seconds, UTC midnight): an issuing
    /// period without an end is known to go on until then.
    pub checked: i64,
    /// Every certificate, in the order `catalogue.toml` lists them.
    pub certs: Vec<PublicCert>,
}

/// What is wrong with the catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// `catalogue.toml` or a certificate file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value that does not check, at its place in `catalogue.toml`.
    #[error("{location}: {kind}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong.
        kind: CatalogueErrorKind,
    },
}

/// What is wrong with a value of `catalogue.toml`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueErrorKind {
    /// The TOML does not have the catalogue's shape (the parser's message).
    #[error("{0}")]
    Shape(String),
    /// A date that is not `YYYY-MM-DD`.
    #[error("`{text}` is not a date (YYYY-MM-DD)")]
    Date {
        /// As written.
        text: String,
    },
    /// An issuing period that ends before it starts, or names an end without its page.
    #[error("an issuing period needs `until` after `from`, and `until_page` with `until`")]
    Period,
    /// A `file` outside the catalogue's folder.
    #[error("`{file}` is not a path inside the catalogue's folder")]
    Path {
        /// As written.
        file: String,
    },
    /// A file that is not one PEM certificate.
    #[error("{file}: {problem}")]
    NotOneCertificate {
        /// The file.
        file: String,
        /// What it holds instead.
        problem: String,
    },
    /// A certificate whose SHA-256 is not the one stated.
    #[error("{file} has SHA-256 {got}, not the {stated} stated")]
    Sha256 {
        /// The file.
        file: String,
        /// As stated.
        stated: String,
        /// As computed.
        got: String,
    },
    /// An entry that says nowhere where it was published.
    #[error("`{name}` says nowhere where it was published (`published`)")]
    Unsourced {
        /// The entry.
        name: String,
    },
}

impl Catalogue {
    /// Reads `DIR/catalogue.toml` and every certificate it names.
    pub fn open(dir: &Path) -> Result<Self, CatalogueError> {
        let path = dir.join(CATALOGUE_FILE);
        let source = TomlSource::read(&path).map_err(|source| CatalogueError::Read { path: path.clone(), source })?;
        let invalid =
            |at: usize, kind: CatalogueErrorKind| CatalogueError::Invalid { location: source.location(at), kind };
        let raw: RawCatalogue = source.parse().map_err(|e| CatalogueError::Invalid {
            location: e.location,
            kind: CatalogueErrorKind::Shape(e.message),
        })?;
        let checked = day(raw.checked.get_ref()).ok_or_else(|| {
            invalid(raw.checked.span().start, CatalogueErrorKind::Date { text: raw.checked.get_ref().clone() })
        })?;
        // The TOML table keeps its keys sorted; the file's order is the order of the spans.
        let mut entries: Vec<(&String, &Spanned<RawCert>)> = raw.cert.iter().collect();
        entries.sort_by_key(|(_, cert)| cert.span().start);
        let mut certs = Vec::with_capacity(entries.len());
        for (name, raw_cert) in entries {
            certs.push(read_cert(dir, name, raw_cert, &invalid)?);
        }
        Ok(Self { dir: dir.to_owned(), checked, certs })
    }

    /// The certificate named `name`.
    pub fn get(&self, name: &str) -> Option<&PublicCert> {
        self.certs.iter().find(|c| c.name == name)
    }

    /// The issuing periods of `cert`'s CA: those of every certificate with its subject and key.
    pub fn issuing_periods<'a>(&'a self, cert: &'a PublicCert) -> impl Iterator<Item = &'a IssuingPeriod> {
        self.certs.iter().filter(|other| other.same_ca(cert)).flat_map(|other| other.issued.iter())
    }

    /// Whether `cert`'s CA issues subscriber certificates on `at` (Unix seconds).
    pub fn issues_at(&self, cert: &PublicCert, at: i64) -> bool {
        cert.valid_at(at) && self.issuing_periods(cert).any(|period| period.covers(at))
    }
}

fn read_cert(
    dir: &Path,
    name: &str,
    raw: &Spanned<RawCert>,
    invalid: &impl Fn(usize, CatalogueErrorKind) -> CatalogueError,
) -> Result<PublicCert, CatalogueError> {
    let at = raw.span().start;
    let raw = raw.get_ref();
    let file = raw.file.get_ref();
    let file_at = raw.file.span().start;
    if file.is_empty() || Path::new(file).is_absolute() || file.split('/').any(|part| part == "..") {
        return Err(invalid(file_at, CatalogueErrorKind::Path { file: file.clone() }));
    }
    let path = dir.join(file);
    let pem_text =
        crate::input::read_text(&path).map_err(|source| CatalogueError::Read { path: path.clone(), source })?;
    let not_one =
        |problem: String| invalid(file_at, CatalogueErrorKind::NotOneCertificate { file: file.clone(), problem });
    let blocks = ::pem::parse_many(pem_text.as_bytes()).map_err(|e| not_one(format!("not PEM: {e}")))?;
    let [block] = blocks.as_slice() else {
        return Err(not_one(format!("{} PEM blocks, not one certificate", blocks.len())));
    };
    if block.tag() != "CERTIFICATE" {
        return Err(not_one(format!("a {} block, not a certificate", block.tag())));
    }
    let der = block.contents().to_vec();
    let (rest, cert) = X509Certificate::from_der(&der).map_err(|e| not_one(format!("not a certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(not_one(format!("{} bytes after the certificate", rest.len())));
    }
    let sha256: [u8; 32] = Sha256::digest(&der).into();
    let stated = raw.sha256.get_ref().to_ascii_lowercase();
    if stated != hex(&sha256) {
        let kind = CatalogueErrorKind::Sha256 { file: file.clone(), stated, got: hex(&sha256) };
        return Err(invalid(raw.sha256.span().start, kind));
    }
    if raw.published.is_empty() {
        return Err(invalid(at, CatalogueErrorKind::Unsourced { name: name.to_owned() }));
    }
    let mut issued = Vec::new();
    for period in &raw.issued {
        let period_at = period.span().start;
        let period = period.get_ref();
        let bad_day = |text: &str| invalid(period_at, CatalogueErrorKind::Date { text: text.to_owned() });
        let from = day(&period.from).ok_or_else(|| bad_day(&period.from))?;
        let until = period.until.as_deref().map(|text| day(text).ok_or_else(|| bad_day(text))).transpose()?;
        if until.is_some() != period.until_page.is_some() || until.is_some_and(|until| until <= from) {
            return Err(invalid(period_at, CatalogueErrorKind::Period));
        }
        issued.push(IssuingPeriod {
            from,
            from_page: period.from_page.clone(),
            until,
            until_page: period.until_page.clone(),
        });
    }
    let subject = cert.subject().to_string();
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or_else(|| subject.clone(), str::to_owned);
    let validity = cert.validity();
    let constraints = cert.basic_constraints().ok().flatten();
    Ok(PublicCert {
        name: name.to_owned(),
        path,
        pem: pem_text,
        sha256,
        subject,
        common_name,
        subject_der: cert.subject().as_raw().to_vec(),
        issuer_der: cert.issuer().as_raw().to_vec(),
        public_key_der: cert.public_key().raw.to_vec(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        is_ca: constraints.is_some_and(|c| c.value.ca),
        issued,
        published: raw
            .published
            .iter()
            .map(|p| Publication {
                url: p.url.clone(),
                repository: p.repository.clone(),
                commit: p.commit.clone(),
                path: p.path.clone(),
            })
            .collect(),
        der,
    })
}

/// `YYYY-MM-DD` as Unix seconds at UTC midnight.
fn day(text: &str) -> Option<i64> {
    let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    Some(OffsetDateTime::new_utc(date, time::Time::MIDNIGHT).unix_timestamp())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_covers_its_days() {
        let period = IssuingPeriod { from: 100, from_page: "a".into(), until: Some(200), until_page: Some("b".into()) };
        assert!(!period.covers(99));
        assert!(period.covers(100));
        assert!(period.covers(199));
        assert!(!period.covers(200));
        let open = IssuingPeriod { until: None, until_page: None, ..period };
        assert!(open.covers(10_000));
    }

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(day("1970-01-02"), Some(86_400));
        assert_eq!(day("2026-13-01"), None);
        assert_eq!(day("yesterday"), None);
    }
}
