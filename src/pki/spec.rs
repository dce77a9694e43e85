//! Certificate specifications, as written in `scenarios/pki/authorities.toml` and in
//! scenarios: raw TOML shapes (private, unknown keys refused) checked into [`CertSpec`]s.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use toml::Spanned;

use super::error::{SpecError, SpecErrorKind, SubjectError, TimeError};
use crate::toml_source::TomlSource;

/// Key algorithm and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// RSA, 1024-bit modulus (made without rcgen).
    Rsa1024,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256 (secp256r1).
    P256,
    /// ECDSA on NIST P-384 (secp384r1).
    P384,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// Whether it is an RSA key, of any size.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// Its name as the TOML files write it (`rsa2048`, `p256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa1024 => "rsa1024",
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::P256 => "p256",
            Self::P384 => "p384",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// The hash an issuer signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureHash {
    /// SHA-1 (RSA issuers only, made without rcgen).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// How subject values are encoded: as most public CAs do (PrintableString where the text
/// allows) or as UTF8String.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SubjectEncoding {
    Printable,
    Utf8,
}

/// A `keyUsage` bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyUsage {
    /// `digitalSignature`.
    DigitalSignature,
    /// `keyEncipherment`.
    KeyEncipherment,
    /// `keyAgreement`.
    KeyAgreement,
    /// `keyCertSign`.
    KeyCertSign,
    /// `cRLSign`.
    CrlSign,
}

/// An `extendedKeyUsage` purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtendedKeyUsage {
    /// `id-kp-serverAuth`: TLS server.
    ServerAuth,
    /// `id-kp-clientAuth`: TLS client.
    ClientAuth,
    /// `id-kp-codeSigning`.
    CodeSigning,
}

/// Whether a certificate is a CA, and its path length constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A CA (`basicConstraints` `cA` true).
    Authority {
        /// How many intermediates may follow it (`pathLenConstraint`); `None`: no limit.
        pathlen: Option<u8>,
    },
    /// An end-entity certificate.
    Leaf,
}

/// One certificate to make, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CertSpec {
    /// Its name in the file (the table's key), by which chains, issuers and the PKI's files
    /// name it.
    pub name: String,
    /// Subject attributes in encoding order, e.g. `[("C","US"), ("O","..."), ("CN","...")]`.
    pub subject: Vec<(String, String)>,
    /// Subject values are written as UTF8String (else PrintableString where the text allows).
    pub(crate) subject_utf8: bool,
    /// Another certificate whose key this one shares (a cross-sign or re-issue).
    pub same_key_as: Option<String>,
    /// The certified key's type and size.
    pub key: KeyType,
    /// The start of validity (`notBefore`).
    pub not_before: OffsetDateTime,
    /// The end of validity (`notAfter`); never before `not_before`.
    pub not_after: OffsetDateTime,
    /// The issuing certificate; `None` for self-signed.
    pub issuer: Option<String>,
    /// The hash the issuer signs with; `None`: the issuer key's natural one.
    pub signature: Option<SignatureHash>,
    /// CA or leaf.
    pub role: Role,
    /// The `keyUsage` bits: as written, else what public CAs give its role and key.
    pub key_usage: Vec<KeyUsage>,
    /// The `extendedKeyUsage` purposes: as written, else `serverAuth` for a leaf and none for
    /// an authority.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// DNS names in `subjectAltName`.
    pub dns: Vec<String>,
    /// IP addresses in `subjectAltName`.
    pub ip: Vec<IpAddr>,
    /// The serial number's bytes, when written (hex); else a fresh random one per mint.
    pub serial: Option<Vec<u8>>,
    /// Where the look-alike's facts come from.
    pub source: Option<String>,
    /// Some facts (dates, key size) are approximate.
    pub approximate: bool,
    /// Where the spec is written.
    pub at: crate::toml_source::Location,
}

/// A certificate table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCert {
    subject: Option<Spanned<String>>,
    subject_encoding: Option<SubjectEncoding>,
    key: Option<Spanned<KeyType>>,
    valid: Option<Spanned<Vec<Spanned<String>>>>,
    issuer: Option<Spanned<String>>,
    same_key_as: Option<Spanned<String>>,
    signature: Option<SignatureHash>,
    ca: Option<bool>,
    pathlen: Option<u8>,
    key_usage: Option<Vec<KeyUsage>>,
    eku: Option<Vec<ExtendedKeyUsage>>,
    dns: Option<Vec<String>>,
    ip: Option<Vec<Spanned<String>>>,
    serial: Option<Spanned<String>>,
    source: Option<String>,
    approximate: Option<bool>,
}

/// Defaults that differ between authorities and leaves.
#[derive(Clone, Debug)]
pub(crate) struct Defaults {
    pub ca: bool,
    /// Without a `key`, take the issuer's family: RSA-2048 under RSA, P-256 under ECDSA.
    pub(crate) key_from_issuer: bool,
    pub valid: Option<(OffsetDateTime, OffsetDateTime)>,
    pub dns: Vec<String>,
    /// Without a `subject`, `CN=` the first DNS name (or IP address).
    pub(crate) subject_from_names: bool,
}

/// A raw table with its span, not yet checked.
pub(crate) type RawCerts = BTreeMap<String, Spanned<RawCert>>;

/// Checks the raw tables of one file. `known` are certificates from elsewhere (the lab PKI)
/// that `issuer` and `same_key_as` may name.
pub(crate) fn check_certs(
    source: &TomlSource,
    raw: &RawCerts,
    defaults: &Defaults,
    known: &BTreeMap<String, CertSpec>,
) -> Result<Vec<CertSpec>, SpecError> {
    let err = |at: usize, kind| SpecError { location: source.location(at), kind };
    // First pass: names and references.
    for (name, table) in raw {
        let cert = table.get_ref();
        for reference in [&cert.issuer, &cert.same_key_as].into_iter().flatten() {
            let target = reference.get_ref();
            if !raw.contains_key(target) && !known.contains_key(target) {
                let kind = SpecErrorKind::UnknownCertificate { name: target.clone() };
                return Err(err(reference.span().start, kind));
            }
        }
        if cert.same_key_as.as_ref().is_some_and(|s| s.get_ref() == name) {
            return Err(err(table.span().start, SpecErrorKind::Cycle { names: vec![name.clone(), name.clone()] }));
        }
    }
    check_cycles(raw, |c| c.same_key_as.as_ref()).map_err(|(at, names)| err(at, SpecErrorKind::Cycle { names }))?;
    check_cycles(raw, |c| c.issuer.as_ref()).map_err(|(at, names)| err(at, SpecErrorKind::Cycle { names }))?;

    // Second pass, each after the certificate whose key it shares, so it can inherit.
    let mut done: BTreeMap<String, CertSpec> = BTreeMap::new();
    for name in raw.keys() {
        resolve(name, source, raw, defaults, known, &mut done)?;
    }
    let mut specs: Vec<CertSpec> = done.into_values().collect();
    specs.sort_by_key(|s| (s.at.line, s.at.column));
    Ok(specs)
}

fn resolve(
    name: &str,
    source: &TomlSource,
    raw: &RawCerts,
    defaults: &Defaults,
    known: &BTreeMap<String, CertSpec>,
    done: &mut BTreeMap<String, CertSpec>,
) -> Result<(), SpecError> {
    if done.contains_key(name) {
        return Ok(());
    }
    let cert = raw[name].get_ref();
    for dependency in [&cert.same_key_as, &cert.issuer].into_iter().flatten() {
        let dependency = dependency.get_ref();
        if dependency != name && raw.contains_key(dependency) {
            resolve(dependency, source, raw, defaults, known, done)?;
        }
    }
    let lookup = |n: &str| done.get(n).or_else(|| known.get(n));
    let spec = check_one(source, name, &raw[name], defaults, &lookup)?;
    done.insert(name.to_owned(), spec);
    Ok(())
}

fn check_one<'a>(
    source: &TomlSource,
    name: &str,
    table: &Spanned<RawCert>,
    defaults: &Defaults,
    lookup: &dyn Fn(&str) -> Option<&'a CertSpec>,
) -> Result<CertSpec, SpecError> {
    let cert = table.get_ref();
    let check = OneCert {
        source,
        at: table.span().start,
        cert,
        defaults,
        twin: cert.same_key_as.as_ref().and_then(|s| lookup(s.get_ref())),
    };
    let key = check.key(lookup)?;
    let (not_before, not_after) = check.validity()?;
    let role = if cert.ca.unwrap_or(defaults.ca) { Role::Authority { pathlen: cert.pathlen } } else { Role::Leaf };
    let ip = check.addresses()?;
    let dns = match (&cert.dns, role) {
        (Some(dns), _) => dns.clone(),
        (None, Role::Leaf) if ip.is_empty() => defaults.dns.clone(),
        (None, _) => Vec::new(),
    };
    let subject = check.subject(&dns, &ip)?;
    let serial = check.serial()?;
    Ok(CertSpec {
        name: name.to_owned(),
        subject,
        subject_utf8: check.subject_utf8(),
        same_key_as: cert.same_key_as.as_ref().map(|s| s.get_ref().clone()),
        key,
        not_before,
        not_after,
        issuer: cert.issuer.as_ref().map(|s| s.get_ref().clone()),
        signature: cert.signature,
        role,
        key_usage: cert.key_usage.clone().unwrap_or_else(|| default_key_usage(role, key)),
        extended_key_usage: cert.eku.clone().unwrap_or_else(|| default_extended_key_usage(role)),
        dns,
        ip,
        serial,
        source: cert.source.clone(),
        approximate: cert.approximate.unwrap_or(false),
        at: source.location(check.at),
    })
}

/// One certificate table being checked, with the certificate whose key it shares (its twin).
struct OneCert<'s, 'a> {
    source: &'s TomlSource,
    /// Where the table starts.
    at: usize,
    cert: &'s RawCert,
    defaults: &'s Defaults,
    twin: Option<&'a CertSpec>,
}

impl<'a> OneCert<'_, 'a> {
    fn err(&self, at: usize, kind: SpecErrorKind) -> SpecError {
        SpecError { location: self.source.location(at), kind }
    }

    /// The key type: as written (the twin's, if it shares one), else the twin's, else (where the
    /// defaults say so) RSA-2048 under an RSA issuer and P-256 under any other.
    fn key(&self, lookup: &dyn Fn(&str) -> Option<&'a CertSpec>) -> Result<KeyType, SpecError> {
        match (&self.cert.key, self.twin) {
            (Some(key), Some(twin)) if *key.get_ref() != twin.key => {
                let kind = SpecErrorKind::KeyMismatch {
                    key: key.get_ref().as_str(),
                    other: twin.name.clone(),
                    other_key: twin.key.as_str(),
                };
                Err(self.err(key.span().start, kind))
            }
            (Some(key), _) => Ok(*key.get_ref()),
            (None, Some(twin)) => Ok(twin.key),
            (None, None) => {
                let issuer_key = self.cert.issuer.as_ref().and_then(|i| lookup(i.get_ref())).map(|i| i.key);
                match issuer_key {
                    Some(key) if self.defaults.key_from_issuer && key.is_rsa() => Ok(KeyType::Rsa2048),
                    Some(_) if self.defaults.key_from_issuer => Ok(KeyType::P256),
                    _ => Err(self.err(self.at, SpecErrorKind::Missing { field: "key" })),
                }
            }
        }
    }

    /// `valid = [from, to]`, from no later than to; else the defaults' validity.
    fn validity(&self) -> Result<(OffsetDateTime, OffsetDateTime), SpecError> {
        let Some(valid) = &self.cert.valid else {
            return self.defaults.valid.ok_or_else(|| self.err(self.at, SpecErrorKind::Missing { field: "valid" }));
        };
        let [from, to] = valid.get_ref().as_slice() else {
            let count = valid.get_ref().len();
            return Err(self.err(valid.span().start, SpecErrorKind::ValidityCount { count }));
        };
        let parse = |date: &Spanned<String>| {
            parse_time(date.get_ref()).map_err(|e| self.err(date.span().start, SpecErrorKind::Validity(e)))
        };
        let (from_time, to_time) = (parse(from)?, parse(to)?);
        if from_time > to_time {
            return Err(self.err(valid.span().start, SpecErrorKind::InvertedValidity));
        }
        Ok((from_time, to_time))
    }

    /// The `ip` addresses.
    fn addresses(&self) -> Result<Vec<IpAddr>, SpecError> {
        let mut ip = Vec::new();
        for address in self.cert.ip.iter().flatten() {
            let parsed: IpAddr = address.get_ref().parse().map_err(|_| {
                self.err(address.span().start, SpecErrorKind::Address { text: address.get_ref().clone() })
            })?;
            ip.push(parsed);
        }
        Ok(ip)
    }

    /// The subject as written, else the twin's, else (where the defaults say so) `CN=` the first
    /// DNS name or IP address.
    fn subject(&self, dns: &[String], ip: &[IpAddr]) -> Result<Vec<(String, String)>, SpecError> {
        match (&self.cert.subject, self.twin) {
            (Some(subject), _) => {
                parse_subject(subject.get_ref()).map_err(|e| self.err(subject.span().start, SpecErrorKind::Subject(e)))
            }
            (None, Some(twin)) => Ok(twin.subject.clone()),
            (None, None) if self.defaults.subject_from_names => {
                let name = dns.first().cloned().or_else(|| ip.first().map(ToString::to_string)).unwrap_or_default();
                Ok(vec![("CN".to_owned(), name)])
            }
            (None, None) => Err(self.err(self.at, SpecErrorKind::Missing { field: "subject" })),
        }
    }

    /// Whether the subject's values are UTF8Strings: as written, else as the twin's.
    fn subject_utf8(&self) -> bool {
        match (self.cert.subject_encoding, self.twin) {
            (Some(encoding), _) => encoding == SubjectEncoding::Utf8,
            (None, Some(twin)) => twin.subject_utf8,
            (None, None) => false,
        }
    }

    /// The serial number, when one is written (hex bytes).
    fn serial(&self) -> Result<Option<Vec<u8>>, SpecError> {
        let Some(serial) = &self.cert.serial else { return Ok(None) };
        let bytes = parse_hex(serial.get_ref())
            .ok_or_else(|| self.err(serial.span().start, SpecErrorKind::Serial { text: serial.get_ref().clone() }))?;
        Ok(Some(bytes))
    }
}

/// keyUsage when none is written: what public CAs give authorities and leaves.
fn default_key_usage(role: Role, key: KeyType) -> Vec<KeyUsage> {
    match role {
        Role::Authority { .. } => vec![KeyUsage::DigitalSignature, KeyUsage::KeyCertSign, KeyUsage::CrlSign],
        Role::Leaf if key.is_rsa() => vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
        Role::Leaf => vec![KeyUsage::DigitalSignature],
    }
}

/// extendedKeyUsage when none is written: none for authorities, serverAuth for leaves.
fn default_extended_key_usage(role: Role) -> Vec<ExtendedKeyUsage> {
    match role {
        Role::Authority { .. } => Vec::new(),
        Role::Leaf => vec![ExtendedKeyUsage::ServerAuth],
    }
}

/// Follows `edge` from every table; a name met twice on one walk is a cycle.
fn check_cycles(
    raw: &RawCerts,
    edge: impl Fn(&RawCert) -> Option<&Spanned<String>>,
) -> Result<(), (usize, Vec<String>)> {
    for start in raw.keys() {
        let mut walk = vec![start.clone()];
        let mut current = start;
        while let Some(next) = raw.get(current).and_then(|t| edge(t.get_ref())) {
            let next_name = next.get_ref();
            if next_name == current && walk.len() == 1 {
                break; // self-signed: `issuer` naming itself is allowed
            }
            if walk.contains(next_name) {
                walk.push(next_name.clone());
                return Err((raw[start].span().start, walk));
            }
            walk.push(next_name.clone());
            current = next_name;
        }
    }
    Ok(())
}

/// `C=US, O=Internet Security Research Group, CN=ISRG Root X1` (commas inside a value are
/// written `\,`).
pub(crate) fn parse_subject(text: &str) -> Result<Vec<(String, String)>, SubjectError> {
    let mut attributes = Vec::new();
    let mut part = String::new();
    let mut parts = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => part.extend(chars.next()),
            ',' => parts.push(std::mem::take(&mut part)),
            _ => part.push(c),
        }
    }
    parts.push(part);
    for part in parts {
        let (key, value) =
            part.split_once('=').ok_or_else(|| SubjectError::NotKeyValue { part: part.trim().to_owned() })?;
        let key = key.trim().to_ascii_uppercase();
        if !matches!(key.as_str(), "CN" | "O" | "OU" | "C" | "L" | "ST") {
            return Err(SubjectError::UnknownAttribute { key });
        }
        attributes.push((key, value.trim().to_owned()));
    }
    Ok(attributes)
}

/// `2021-09-30T14:01:15Z` or `2021-09-30` (midnight UTC).
pub fn parse_time(text: &str) -> Result<OffsetDateTime, TimeError> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(time);
    }
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| TimeError { text: text.to_owned() })?;
    Ok(date.midnight().assume_utc())
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok()).collect()
}

impl CertSpec {
    /// The subject as text, e.g. `C=US, O=ISRG, CN=Root YR`.
    pub fn subject_text(&self) -> String {
        self.subject.iter().map(|(k, v)| format!("{k}={}", v.replace(',', "\\,"))).collect::<Vec<_>>().join(", ")
    }

    /// The subject's common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.subject.iter().find(|(k, _)| k == "CN").map(|(_, v)| v.as_str())
    }

    /// The certificate whose key signs this one (itself when self-signed).
    pub fn issuer_name(&self) -> &str {
        self.issuer.as_deref().unwrap_or(&self.name)
    }

    /// The certificate that owns this one's key (itself unless it shares one).
    pub fn key_owner(&self) -> &str {
        self.same_key_as.as_deref().unwrap_or(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_their_order_and_escapes() {
        let subject = parse_subject("C=US, O=Example\\, Inc., CN=Root").unwrap();
        assert_eq!(
            subject,
            [("C".into(), "US".into()), ("O".into(), "Example, Inc.".into()), ("CN".into(), "Root".into())]
        );
        assert_eq!(parse_subject("CN"), Err(SubjectError::NotKeyValue { part: "CN".into() }));
        assert_eq!(parse_subject("XX=1"), Err(SubjectError::UnknownAttribute { key: "XX".into() }));
    }

    #[test]
    fn times_take_dates_or_rfc3339() {
        assert_eq!(parse_time("2021-09-30").unwrap().unix_timestamp(), 1_632_960_000);
        assert_eq!(parse_time("2021-09-30T14:01:15Z").unwrap().unix_timestamp(), 1_633_010_475);
        assert_eq!(parse_time("30/09/2021"), Err(TimeError { text: "30/09/2021".into() }));
    }
}
