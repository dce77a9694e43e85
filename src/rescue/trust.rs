//! What a firmware trusts, and what each of those certificates is in the real world: a
//! catalogued public certificate (itself, or, for a lab firmware, the real one its look-alike
//! stands for), the owner's own CA (a lab authority nothing public stands behind), or neither.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::lookalike::LabMap;
use crate::catalogue::Catalogue;
use crate::device_tls::Anchors;
use crate::image::BundleEntry;

/// What kind of certificate a firmware trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedRole {
    /// A self-signed CA (every root of a certificate bundle).
    Root,
    /// A CA issued by another: a pinned intermediate or cross-sign.
    Intermediate,
    /// Not a CA: a pinned server certificate.
    Leaf,
}

impl TrustedRole {
    /// Its stable kebab-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrustedRole::Root => "root",
            TrustedRole::Intermediate => "intermediate",
            TrustedRole::Leaf => "leaf",
        }
    }
}

/// What a trusted certificate is in the real world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// This catalogued certificate itself (its index in the catalogue).
    Public(usize),
    /// A lab authority standing for this catalogued certificate (inferred from common name, key
    /// and issuer: a lab firmware is judged as trusting the real one).
    LookAlike {
        /// The lab authority's name.
        lab: String,
        /// The catalogued certificate it stands for.
        public: usize,
    },
    /// A lab authority nothing in the catalogue looks like: the owner's own CA, whose keys the
    /// lab holds (inferred).
    OwnCa {
        /// The lab authority's name.
        lab: String,
    },
    /// Neither catalogued nor the lab's.
    Unknown,
}

/// One certificate (or bundle entry) a firmware trusts.
#[derive(Clone, Debug)]
pub struct Trusted {
    /// Its subject as text.
    pub subject: String,
    /// Its common name, else its subject.
    pub common_name: String,
    /// Its subject `Name` DER.
    pub subject_der: Vec<u8>,
    /// Its `SubjectPublicKeyInfo` DER.
    pub public_key_der: Vec<u8>,
    /// The whole certificate; `None` for a bundle entry (a name and a key).
    pub der: Option<Vec<u8>>,
    /// Its issuer's common name (`None` for a bundle entry).
    pub issuer: Option<String>,
    /// Root, intermediate or pinned leaf.
    pub role: TrustedRole,
    /// `notAfter` (Unix seconds), when the certificate is known.
    pub not_after: Option<i64>,
    /// What it is in the real world.
    pub standing: Standing,
    /// The lab authority a twin's firmware trusts in its place: itself when it is one, else
    /// the look-alike of the real certificate; `None`: the lab has none.
    pub lookalike: Option<String>,
}

impl Trusted {
    /// The catalogued certificate it is or stands for.
    pub fn public(&self) -> Option<usize> {
        match self.standing {
            Standing::Public(at) | Standing::LookAlike { public: at, .. } => Some(at),
            _ => None,
        }
    }

    /// The lab authority that stands in for it on a twin.
    pub fn on_twin(&self) -> Option<&str> {
        self.lookalike.as_deref()
    }
}

/// What `anchors` hold, each certificate placed in the real world.
pub fn trusted_of(anchors: &Anchors, catalogue: &Catalogue, lab: &LabMap) -> Vec<Trusted> {
    match anchors {
        Anchors::Roots(roots) => roots.iter().filter_map(|der| from_certificate(der, catalogue, lab)).collect(),
        Anchors::Bundle { entries, .. } => entries.iter().map(|entry| from_entry(entry, catalogue, lab)).collect(),
    }
}

fn from_certificate(der: &[u8], catalogue: &Catalogue, lab: &LabMap) -> Option<Trusted> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
    let role = match (cert.is_ca(), self_signed) {
        (false, _) => TrustedRole::Leaf,
        (true, true) => TrustedRole::Root,
        (true, false) => TrustedRole::Intermediate,
    };
    let standing = match catalogue.certs.iter().position(|c| c.der == der) {
        Some(at) => Standing::Public(at),
        None => match lab.by_der(der) {
            Some(lab_cert) => lab_standing(lab_cert, catalogue, lab),
            None => Standing::Unknown,
        },
    };
    let subject = cert.subject().to_string();
    let lookalike = twin_name(&standing, catalogue, lab);
    Some(Trusted {
        common_name: common_name(&cert).unwrap_or_else(|| subject.clone()),
        subject,
        subject_der: cert.subject().as_raw().to_vec(),
        public_key_der: cert.public_key().raw.to_vec(),
        der: Some(der.to_vec()),
        issuer: Some(
            cert.issuer().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_owned(),
        ),
        role,
        not_after: Some(cert.validity().not_after.timestamp()),
        standing,
        lookalike,
    })
}

fn from_entry(entry: &BundleEntry, catalogue: &Catalogue, lab: &LabMap) -> Trusted {
    let public = catalogue
        .certs
        .iter()
        .position(|c| c.subject_der == entry.subject_der && c.public_key_der == entry.public_key_der);
    let standing = match public {
        Some(at) => Standing::Public(at),
        None => match lab.by_name_and_key(&entry.subject_der, &entry.public_key_der) {
            Some(lab_cert) => lab_standing(lab_cert, catalogue, lab),
            None => Standing::Unknown,
        },
    };
    let subject = x509_parser::x509::X509Name::from_der(&entry.subject_der)
        .map_or_else(|_| String::from("?"), |(_, name)| name.to_string());
    let common_name = x509_parser::x509::X509Name::from_der(&entry.subject_der)
        .ok()
        .and_then(|(_, name)| name.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned))
        .unwrap_or_else(|| subject.clone());
    let not_after = match &standing {
        Standing::Public(at) | Standing::LookAlike { public: at, .. } => catalogue.certs.get(*at).map(|c| c.not_after),
        _ => None,
    };
    let lookalike = twin_name(&standing, catalogue, lab);
    Trusted {
        subject,
        common_name,
        subject_der: entry.subject_der.clone(),
        public_key_der: entry.public_key_der.clone(),
        der: None,
        issuer: None,
        role: TrustedRole::Root,
        not_after,
        standing,
        lookalike,
    }
}

/// The lab authority a twin trusts in place of a certificate of this standing.
fn twin_name(standing: &Standing, catalogue: &Catalogue, lab: &LabMap) -> Option<String> {
    match standing {
        Standing::LookAlike { lab, .. } | Standing::OwnCa { lab } => Some(lab.clone()),
        Standing::Public(at) => lab.lookalike_of(catalogue.certs.get(*at)?).map(|alike| alike.lab.name.clone()),
        Standing::Unknown => None,
    }
}

fn lab_standing(lab_cert: &super::lookalike::LabCert, catalogue: &Catalogue, lab: &LabMap) -> Standing {
    match lab.public_of(lab_cert, catalogue).and_then(|real| catalogue.certs.iter().position(|c| c.name == real.name)) {
        Some(public) => Standing::LookAlike { lab: lab_cert.name.clone(), public },
        None => Standing::OwnCa { lab: lab_cert.name.clone() },
    }
}

fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned)
}

/// The anchors a device is judged with for real certificates: each look-alike replaced by the
/// real certificate it stands for (its bundle entry for a bundle), everything else kept.
pub fn real_anchors(anchors: &Anchors, trusted: &[Trusted], catalogue: &Catalogue) -> Anchors {
    let real = |t: &Trusted| match &t.standing {
        Standing::LookAlike { public, .. } => catalogue.certs.get(*public),
        _ => None,
    };
    match anchors {
        Anchors::Roots(roots) => Anchors::Roots(
            roots
                .iter()
                .map(|der| {
                    let stands_for = trusted.iter().find(|t| t.der.as_deref() == Some(der)).and_then(real);
                    stands_for.map_or_else(|| der.clone(), |c| c.der.clone())
                })
                .collect(),
        ),
        Anchors::Bundle { entries, format } => {
            let was_sorted = entries.windows(2).all(|pair| pair[0].subject_der <= pair[1].subject_der);
            let mut real_entries: Vec<BundleEntry> = entries
                .iter()
                .map(|entry| {
                    let stands_for = trusted
                        .iter()
                        .find(|t| t.subject_der == entry.subject_der && t.public_key_der == entry.public_key_der)
                        .and_then(real);
                    stands_for.map_or_else(
                        || entry.clone(),
                        |c| BundleEntry {
                            subject_der: c.subject_der.clone(),
                            public_key_der: c.public_key_der.clone(),
                        },
                    )
                })
                .collect();
            // The real bundle is sorted by the real names, as `gen_crt_bundle.py` sorts it.
            if was_sorted {
                real_entries.sort_by(|a, b| a.subject_der.cmp(&b.subject_der));
            }
            Anchors::Bundle { entries: real_entries, format: *format }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::image::BundleFormat;
    use crate::pki::LabPki;

    #[test]
    fn a_lab_bundle_is_judged_as_the_real_bundle_sorted_as_the_real_names_sort() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let catalogue = Catalogue::open(&root.join("data/public-cas")).unwrap();
        let pki = LabPki::open(&root.join("scenarios/pki")).unwrap();
        let lab = LabMap::new(&pki);
        let entry = |name: &str| BundleEntry::from_certificate_der(&pki.certificate(name).unwrap().der).unwrap();
        let mut entries: Vec<BundleEntry> =
            ["isrg_root_x1", "dst_root_x3", "globalsign_root_ca", "acme_device_root"].map(entry).to_vec();
        entries.sort_by(|a, b| a.subject_der.cmp(&b.subject_der));
        let anchors = Anchors::Bundle { entries, format: BundleFormat::BigEndianV44 };
        let trusted = trusted_of(&anchors, &catalogue, &lab);
        let standings: Vec<&Standing> = trusted.iter().map(|t| &t.standing).collect();
        assert_eq!(standings.iter().filter(|s| matches!(s, Standing::LookAlike { .. })).count(), 3, "{standings:?}");
        assert!(standings.contains(&&Standing::OwnCa { lab: "acme_device_root".into() }));
        let Anchors::Bundle { entries: real, .. } = real_anchors(&anchors, &trusted, &catalogue) else { panic!() };
        assert!(real.windows(2).all(|pair| pair[0].subject_der <= pair[1].subject_der));
        let real_x1 = catalogue.get("isrg-root-x1").unwrap();
        assert!(real.iter().any(|e| e.public_key_der == real_x1.public_key_der));
        // The owner's own root stays as it is: nothing public stands for it.
        let acme = entry("acme_device_root");
        assert!(real.contains(&acme));
    }
}
