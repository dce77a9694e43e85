//! A new scenario from a real chain (as `openssl s_client -showcerts` prints it): look-alike
//! authorities where the lab PKI lacks them (same subject, key type and size, validity, path
//! length, key usage, EKU), existing ones reused where the subject and issuer match, and a
//! scenario that serves the look-alike chain in the same order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ::time::OffsetDateTime;
use x509_parser::prelude::*;

use super::FLEET_HOST;
use crate::pki::spec::KeyType;
use crate::pki::{CertSpec, Role};

/// What `scenario new --like` will write.
#[derive(Clone, Debug, PartialEq)]
pub struct LookAlike {
    /// TOML tables to append to `authorities.toml`, with their names.
    pub new_authorities: Vec<(String, String)>,
    /// The new scenario file's text.
    pub scenario: String,
    /// Names in the served order (`leaf` first when the chain starts with a leaf).
    pub chain: Vec<String>,
}

/// A chain that cannot be imitated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LikeError {
    /// The input holds no certificate.
    #[error("no certificate found (expected PEM blocks, as `openssl s_client -showcerts` prints)")]
    Empty,
    /// A certificate that is not X.509 DER.
    #[error("certificate {index} does not parse: {source}")]
    Parse {
        /// Its place in the chain, from 0.
        index: usize,
        /// x509-parser's error.
        source: nom::Err<X509Error>,
    },
    /// A certificate with something the lab cannot mint (a key type, an extension).
    #[error("certificate {index}: {what} is not supported")]
    Unsupported {
        /// Its place in the chain, from 0.
        index: usize,
        /// What it has that the lab cannot mint.
        what: String,
    },
}

/// One certificate of the real chain, reduced to what a look-alike copies.
#[derive(Clone, Debug)]
struct Observed {
    subject: Vec<(String, String)>,
    /// The subject's values are UTF8Strings.
    subject_utf8: bool,
    issuer: Vec<(String, String)>,
    key: KeyType,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: bool,
    pathlen: Option<u32>,
    key_usage: Vec<&'static str>,
    eku: Vec<&'static str>,
    dns: Vec<String>,
}

/// Plans the look-alike of `ders` (in served order) against the lab's `authorities`.
pub fn plan(
    ders: &[Vec<u8>],
    authorities: &BTreeMap<String, CertSpec>,
    title: &str,
    today: OffsetDateTime,
) -> Result<LookAlike, LikeError> {
    if ders.is_empty() {
        return Err(LikeError::Empty);
    }
    let observed: Vec<Observed> = ders.iter().enumerate().map(|(i, der)| observe(i, der)).collect::<Result<_, _>>()?;
    let mut known: BTreeMap<String, CertSpec> = authorities.clone();
    let mut new_authorities = Vec::new();
    let mut chain = Vec::new();
    let mut leaf = None;

    for (index, cert) in observed.iter().enumerate() {
        if index == 0 && !cert.is_ca {
            leaf = Some(cert.clone());
            chain.push("leaf".to_owned());
            continue;
        }
        let issuer_name = issuer_for(cert, &observed, &mut known, &mut new_authorities);
        let name = match find(&known, &cert.subject, Some(&issuer_name)) {
            Some(existing) => existing,
            None => {
                let twin = find(&known, &cert.subject, None).filter(|n| known[n].key == cert.key);
                let base = twin.clone().unwrap_or_else(|| slug(&cert.subject));
                let name = unique(&known, &if twin.is_some() { format!("{base}_by_{issuer_name}") } else { base });
                let table = authority_table(&name, cert, &issuer_name, twin.as_deref());
                known.insert(name.clone(), placeholder(&name, cert, &issuer_name, twin.as_deref()));
                new_authorities.push((name.clone(), table));
                name
            }
        };
        chain.push(name);
    }

    let mut scenario = String::new();
    let _ = writeln!(scenario, "title = {}", toml_string(title));
    let _ = writeln!(scenario, "date = \"{}\"", today.date());
    if let Some(leaf) = &leaf {
        let issuer = match observed.get(1) {
            Some(_) => chain[1].clone(),
            None => issuer_for(leaf, &observed, &mut known, &mut new_authorities),
        };
        let issuer = find(&known, &leaf.issuer, None).unwrap_or(issuer);
        let _ = writeln!(scenario, "\n# The real leaf: {}", subject_text(&leaf.subject));
        if !leaf.dns.is_empty() {
            let _ = writeln!(scenario, "# real names: {}", leaf.dns.join(", "));
        }
        let _ = writeln!(scenario, "[leaf]\nissuer = \"{issuer}\"\nkey = \"{}\"", leaf.key.as_str());
        let _ = writeln!(scenario, "dns = [\"{FLEET_HOST}\"]");
        let _ = writeln!(scenario, "valid = [\"{}\", \"{}\"]", rfc3339(leaf.not_before), rfc3339(leaf.not_after));
    }
    let quoted: Vec<String> = chain.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = writeln!(scenario, "\n[server]\nchain = [{}]\nimage = \"v2.0.0\"", quoted.join(", "));
    let _ = writeln!(
        scenario,
        "\n[expect]\n# \"firmware-id\" = \"updated\"  or  {{ outcome = \"tls-verify\", reason = \"untrusted\" }}"
    );
    Ok(LookAlike { new_authorities, scenario, chain })
}

/// The lab name of `cert`'s issuer: a served certificate's authority, an existing one, or a
/// new look-alike root (its key and dates are not known from the chain: approximate).
fn issuer_for(
    cert: &Observed,
    observed: &[Observed],
    known: &mut BTreeMap<String, CertSpec>,
    new_authorities: &mut Vec<(String, String)>,
) -> String {
    if cert.issuer == cert.subject {
        return String::new(); // self-signed; the table omits `issuer`
    }
    if let Some(existing) = find(known, &cert.issuer, None) {
        return existing;
    }
    let served = observed.iter().find(|o| o.subject == cert.issuer && o.issuer == o.subject);
    let root = served.cloned().unwrap_or_else(|| Observed {
        subject: cert.issuer.clone(),
        subject_utf8: cert.subject_utf8,
        issuer: cert.issuer.clone(),
        key: KeyType::Rsa2048,
        not_before: cert.not_before,
        not_after: cert.not_after,
        is_ca: true,
        pathlen: None,
        key_usage: vec!["key-cert-sign", "crl-sign"],
        eku: Vec::new(),
        dns: Vec::new(),
    });
    let name = unique(known, &slug(&root.subject));
    let mut table = authority_table(&name, &root, "", None);
    if served.is_none() {
        table.push_str("approximate = true   # the chain does not show this root's key or dates\n");
    }
    known.insert(name.clone(), placeholder(&name, &root, "", None));
    new_authorities.push((name.clone(), table));
    name
}

fn authority_table(name: &str, cert: &Observed, issuer: &str, twin: Option<&str>) -> String {
    let mut table = format!("\n[authority.{name}]\n");
    match twin {
        Some(twin) => {
            let _ = writeln!(table, "same_key_as = \"{twin}\"");
        }
        None => {
            let _ = writeln!(table, "subject = {}", toml_string(&subject_text(&cert.subject)));
            let _ = writeln!(table, "key = \"{}\"", cert.key.as_str());
            if cert.subject_utf8 {
                let _ = writeln!(table, "subject_encoding = \"utf8\"");
            }
        }
    }
    if !issuer.is_empty() {
        let _ = writeln!(table, "issuer = \"{issuer}\"");
    }
    let _ = writeln!(table, "valid = [\"{}\", \"{}\"]", rfc3339(cert.not_before), rfc3339(cert.not_after));
    if let Some(pathlen) = cert.pathlen {
        let _ = writeln!(table, "pathlen = {pathlen}");
    }
    if !cert.key_usage.is_empty() {
        let quoted: Vec<String> = cert.key_usage.iter().map(|u| format!("\"{u}\"")).collect();
        let _ = writeln!(table, "key_usage = [{}]", quoted.join(", "));
    }
    if !cert.eku.is_empty() {
        let quoted: Vec<String> = cert.eku.iter().map(|e| format!("\"{e}\"")).collect();
        let _ = writeln!(table, "eku = [{}]", quoted.join(", "));
    }
    let _ = writeln!(
        table,
        "source = \"look-alike of a served certificate ({})\"",
        subject_text(&cert.subject).replace('"', "'")
    );
    table
}

/// A spec good enough for name lookups while planning.
fn placeholder(name: &str, cert: &Observed, issuer: &str, twin: Option<&str>) -> CertSpec {
    CertSpec {
        name: name.to_owned(),
        subject: cert.subject.clone(),
        subject_utf8: cert.subject_utf8,
        same_key_as: twin.map(str::to_owned),
        key: cert.key,
        not_before: cert.not_before,
        not_after: cert.not_after,
        issuer: (!issuer.is_empty()).then(|| issuer.to_owned()),
        signature: None,
        role: Role::Authority { pathlen: None },
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        dns: Vec::new(),
        ip: Vec::new(),
        serial: None,
        source: None,
        approximate: false,
        at: crate::toml_source::Location { file: Default::default(), line: 0, column: 0 },
    }
}

/// An authority with this subject (and, if given, this issuer's subject).
fn find(known: &BTreeMap<String, CertSpec>, subject: &[(String, String)], issuer: Option<&str>) -> Option<String> {
    known
        .values()
        .filter(|spec| spec.subject == subject)
        .find(|spec| match issuer {
            None => spec.same_key_as.is_none(),
            Some(issuer) => {
                let own_issuer = spec.issuer.clone().unwrap_or_default();
                let own = if own_issuer.is_empty() { "" } else { own_issuer.as_str() };
                own == issuer || known.get(own).zip(known.get(issuer)).is_some_and(|(a, b)| a.subject == b.subject)
            }
        })
        .map(|spec| spec.name.clone())
}

fn unique(known: &BTreeMap<String, CertSpec>, base: &str) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while known.contains_key(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// `CN=GTS Root R1` → `gts_root_r1`.
fn slug(subject: &[(String, String)]) -> String {
    let text = subject.iter().rev().find(|(k, _)| k == "CN").or(subject.last()).map_or("authority", |(_, v)| v);
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_').to_owned();
    if slug.is_empty() { "authority".to_owned() } else { slug }
}

fn observe(index: usize, der: &[u8]) -> Result<Observed, LikeError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|source| LikeError::Parse { index, source })?;
    let key = key_type(index, &cert)?;
    let time = |t: ASN1Time| OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let constraints = cert.basic_constraints().ok().flatten().map(|e| e.value.clone());
    Ok(Observed {
        subject: name_attributes(index, cert.subject())?,
        subject_utf8: cert.subject().iter_attributes().any(|a| a.attr_value().tag() == asn1_rs::Tag::Utf8String),
        issuer: name_attributes(index, cert.issuer())?,
        key,
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        is_ca: constraints.as_ref().is_some_and(|c| c.ca),
        pathlen: constraints.and_then(|c| c.path_len_constraint),
        key_usage: key_usages(&cert),
        eku: extended_key_usages(&cert),
        dns: dns_names(&cert),
    })
}

/// A name's attributes in order, as `("CN", value)`; certificate `index` of the chain.
fn name_attributes(index: usize, name: &X509Name<'_>) -> Result<Vec<(String, String)>, LikeError> {
    let mut out = Vec::new();
    for attribute in name.iter_attributes() {
        let key = match attribute.attr_type().to_id_string().as_str() {
            "2.5.4.3" => "CN",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.6" => "C",
            "2.5.4.7" => "L",
            "2.5.4.8" => "ST",
            other => return Err(LikeError::Unsupported { index, what: format!("name attribute {other}") }),
        };
        let value = attribute.as_str().map_err(|_| LikeError::Unsupported { index, what: "a non-text name".into() })?;
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// The key type of certificate `index`: RSA of the lab's sizes, P-256, P-384 or Ed25519.
fn key_type(index: usize, cert: &X509Certificate<'_>) -> Result<KeyType, LikeError> {
    match cert.public_key().parsed() {
        Ok(public_key::PublicKey::RSA(rsa)) => match rsa.key_size() {
            1024 => Ok(KeyType::Rsa1024),
            2048 => Ok(KeyType::Rsa2048),
            3072 => Ok(KeyType::Rsa3072),
            4096 => Ok(KeyType::Rsa4096),
            bits => Err(LikeError::Unsupported { index, what: format!("an RSA-{bits} key") }),
        },
        Ok(public_key::PublicKey::EC(point)) => match point.key_size() {
            256 => Ok(KeyType::P256),
            384 => Ok(KeyType::P384),
            bits => Err(LikeError::Unsupported { index, what: format!("a {bits}-bit EC key") }),
        },
        _ if cert.public_key().algorithm.algorithm.to_id_string() == "1.3.101.112" => Ok(KeyType::Ed25519),
        _ => Err(LikeError::Unsupported { index, what: "its key type".into() }),
    }
}

/// The extendedKeyUsage purposes the lab's specs name (`server-auth`, ...).
fn extended_key_usages(cert: &X509Certificate<'_>) -> Vec<&'static str> {
    let Some(eku) = cert.extended_key_usage().ok().flatten() else { return Vec::new() };
    let eku = &eku.value;
    [(eku.server_auth, "server-auth"), (eku.client_auth, "client-auth"), (eku.code_signing, "code-signing")]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
}

/// The keyUsage bits the lab's specs name (`digital-signature`, ...).
fn key_usages(cert: &X509Certificate<'_>) -> Vec<&'static str> {
    let Some(ku) = cert.key_usage().ok().flatten() else { return Vec::new() };
    let ku = &ku.value;
    [
        (ku.digital_signature(), "digital-signature"),
        (ku.key_encipherment(), "key-encipherment"),
        (ku.key_agreement(), "key-agreement"),
        (ku.key_cert_sign(), "key-cert-sign"),
        (ku.crl_sign(), "crl-sign"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// The DNS names of the subjectAltName.
fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Some(san) = cert.subject_alternative_name().ok().flatten() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(name) => Some((*name).to_owned()),
            _ => None,
        })
        .collect()
}

fn subject_text(subject: &[(String, String)]) -> String {
    subject.iter().map(|(k, v)| format!("{k}={}", v.replace(',', "\\,"))).collect::<Vec<_>>().join(", ")
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&::time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
