//! The lab's look-alike of each real certificate, and the real certificate each lab authority
//! stands for: the same common name, key type and size, and issuer's common name; among
//! several, the one whose whole subject and validity are the real one's too.

use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

use crate::catalogue::{Catalogue, PublicCert};
use crate::pki::LabPki;

/// What a look-alike copies from a real certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Facts {
    /// The subject's attributes in order, values lowercased (as mbedTLS compares names).
    subject: Vec<(String, String)>,
    /// The subject's common name, lowercased.
    common_name: String,
    /// The issuer's common name, lowercased.
    issuer_common_name: String,
    /// Self-signed.
    self_signed: bool,
    /// `rsa2048`, `ec:1.2.840.10045.3.1.7`, ...
    key: String,
    not_before: i64,
    not_after: i64,
}

impl Facts {
    fn read(der: &[u8]) -> Option<Facts> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let validity = cert.validity();
        Some(Facts {
            subject: attributes(cert.subject()),
            common_name: common_name(cert.subject()),
            issuer_common_name: common_name(cert.issuer()),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            key: key_kind(&cert),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    /// Whether `self` may stand for `other`: same common name, key, issuer's common name and
    /// self-signedness.
    fn alike(&self, other: &Facts) -> bool {
        self.common_name == other.common_name
            && self.key == other.key
            && self.issuer_common_name == other.issuer_common_name
            && self.self_signed == other.self_signed
    }

    /// How closely: the whole subject, then the validity.
    fn closeness(&self, other: &Facts) -> (bool, bool) {
        (self.subject == other.subject, self.same_validity(other))
    }

    fn same_validity(&self, other: &Facts) -> bool {
        self.not_before == other.not_before && self.not_after == other.not_after
    }
}

fn attributes(name: &X509Name<'_>) -> Vec<(String, String)> {
    name.iter_attributes()
        .map(|a| (a.attr_type().to_id_string(), a.as_str().unwrap_or_default().trim().to_lowercase()))
        .collect()
}

fn common_name(name: &X509Name<'_>) -> String {
    name.iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().trim().to_lowercase()
}

fn key_kind(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa{}", rsa.key_size()),
        _ => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            format!("{}:{}", spki.algorithm.algorithm.to_id_string(), curve.unwrap_or_default())
        }
    }
}

/// One committed lab authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabCert {
    /// Its name in `authorities.toml`.
    pub name: String,
    /// Its DER.
    pub der: Vec<u8>,
    /// Its subject `Name` DER.
    pub subject_der: Vec<u8>,
    /// Its `SubjectPublicKeyInfo` DER.
    pub public_key_der: Vec<u8>,
    /// Its issuer's name in `authorities.toml`; `None`: self-signed.
    pub issuer: Option<String>,
    /// Whether it is a CA.
    pub is_ca: bool,
    /// `notBefore` and `notAfter`, Unix seconds.
    pub validity: (i64, i64),
    facts: Facts,
}

/// A real certificate's look-alike in the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookAlike<'a> {
    /// The lab authority.
    pub lab: &'a LabCert,
    /// Its subject is the real one's attribute for attribute (else only the common name is).
    pub same_subject: bool,
    /// Its validity is the real one's to the second.
    pub same_validity: bool,
}

/// The lab's committed authorities, read once, to be matched with real certificates.
#[derive(Clone, Debug, Default)]
pub struct LabMap {
    certs: Vec<LabCert>,
}

impl LabMap {
    /// Every authority of `pki` whose certificate is committed (the others are left out).
    pub fn new(pki: &LabPki) -> LabMap {
        let mut certs = Vec::new();
        for (name, spec) in pki.specs() {
            let Ok(minted) = pki.certificate(name) else { continue };
            let Ok((_, cert)) = X509Certificate::from_der(&minted.der) else { continue };
            let Some(facts) = Facts::read(&minted.der) else { continue };
            certs.push(LabCert {
                name: name.clone(),
                subject_der: cert.subject().as_raw().to_vec(),
                public_key_der: cert.public_key().raw.to_vec(),
                issuer: spec.issuer.clone().filter(|issuer| issuer != name),
                is_ca: cert.is_ca(),
                validity: (facts.not_before, facts.not_after),
                facts,
                der: minted.der.clone(),
            });
        }
        LabMap { certs }
    }

    /// The authority named `name`.
    pub fn get(&self, name: &str) -> Option<&LabCert> {
        self.certs.iter().find(|c| c.name == name)
    }

    /// Every authority.
    pub fn certs(&self) -> &[LabCert] {
        &self.certs
    }

    /// The lab authority whose certificate is exactly `der`.
    pub fn by_der(&self, der: &[u8]) -> Option<&LabCert> {
        self.certs.iter().find(|c| c.der == der)
    }

    /// The lab authority with this subject and key (a bundle entry), the self-signed one first.
    pub fn by_name_and_key(&self, subject_der: &[u8], public_key_der: &[u8]) -> Option<&LabCert> {
        let mut matching: Vec<&LabCert> =
            self.certs.iter().filter(|c| c.subject_der == subject_der && c.public_key_der == public_key_der).collect();
        matching.sort_by_key(|c| c.issuer.is_some());
        matching.first().copied()
    }

    /// The look-alike of a real certificate: the closest lab authority alike to it whose issuer
    /// is alike to the real issuer too (by common name), if any.
    pub fn lookalike_of(&self, real: &PublicCert) -> Option<LookAlike<'_>> {
        let facts = Facts::read(&real.der)?;
        self.certs
            .iter()
            .filter(|lab| lab.facts.alike(&facts))
            .map(|lab| {
                let (same_subject, same_validity) = lab.facts.closeness(&facts);
                LookAlike { lab, same_subject, same_validity }
            })
            .max_by_key(|l| (l.same_subject, l.same_validity, std::cmp::Reverse(l.lab.name.clone())))
    }

    /// The real certificate a lab authority stands for: the closest catalogue certificate it is
    /// alike to.
    pub fn public_of<'c>(&self, lab: &LabCert, catalogue: &'c Catalogue) -> Option<&'c PublicCert> {
        catalogue
            .certs
            .iter()
            .filter_map(|real| Some((real, Facts::read(&real.der)?)))
            .filter(|(_, facts)| lab.facts.alike(facts))
            .max_by_key(|(real, facts)| {
                let (same_subject, same_validity) = lab.facts.closeness(facts);
                (same_subject, same_validity, std::cmp::Reverse(real.name.clone()))
            })
            .map(|(real, _)| real)
    }
}
