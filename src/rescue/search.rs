//! The chains an owner can have a server send: a leaf from a CA that issues to owners on the
//! day (a public CA's issuing intermediate of the catalogue, or the owner's own CA), then
//! certificates exactly as their CAs published them, each issued by the next (name and
//! signature), up to one issued by a certificate the firmware trusts.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::lookalike::LabMap;
use super::trust::{Standing, Trusted, TrustedRole};
use crate::catalogue::Catalogue;

/// The most certificates a proposed chain sends after the leaf.
const MAX_SENT: usize = 4;

/// A certificate a proposed chain sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// A catalogued certificate (its index).
    Public(usize),
    /// An authority of the owner's own CA, in the lab PKI (its name).
    Own(String),
}

/// Who issues the owner's leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Issuing {
    /// A public CA's certificate of the catalogue (its index): the CA issues on the day.
    Public(usize),
    /// An authority of the owner's own CA (its lab name).
    Own(String),
}

/// One chain to judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    /// Who issues the leaf.
    pub issuing: Issuing,
    /// What the server sends after the leaf, in order.
    pub chain: Vec<Link>,
    /// The trusted certificate the chain ends under (its index in the trusted list).
    pub anchor: usize,
}

/// The subject and key a trusted certificate has in the real world: the real certificate's for
/// a look-alike, its own otherwise.
fn real_identity<'a>(trusted: &'a Trusted, catalogue: &'a Catalogue) -> (&'a [u8], &'a [u8]) {
    match &trusted.standing {
        Standing::LookAlike { public, .. } => match catalogue.certs.get(*public) {
            Some(real) => (&real.subject_der, &real.public_key_der),
            None => (&trusted.subject_der, &trusted.public_key_der),
        },
        _ => (&trusted.subject_der, &trusted.public_key_der),
    }
}

/// Whether `child` (DER) carries a signature `public_key` (SubjectPublicKeyInfo DER) makes;
/// an algorithm the parser cannot check counts as a match (the device judges it next).
fn signed_by(child: &[u8], public_key: &[u8]) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(child) else { return false };
    let Ok((_, key)) = SubjectPublicKeyInfo::from_der(public_key) else { return false };
    match cert.verify_signature(Some(&key)) {
        Ok(()) => true,
        Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => true,
        Err(_) => false,
    }
}

/// Every chain from a CA that issues on `at` to a certificate the firmware trusts, shortest
/// first; a chain stops at the first certificate a trusted one issued (mbedTLS looks among the
/// trusted first, so sending more changes nothing). Certificates not yet made on `at` are left
/// out; expired ones are not (a device that checks no dates takes them).
pub(super) fn candidates(catalogue: &Catalogue, trusted: &[Trusted], lab: &LabMap, at: i64) -> Vec<Candidate> {
    let mut found = Vec::new();
    let anchors: Vec<(&[u8], &[u8])> = trusted
        .iter()
        .map(|t| if t.role == TrustedRole::Leaf { (&[][..], &[][..]) } else { real_identity(t, catalogue) })
        .collect();
    for (index, first) in catalogue.certs.iter().enumerate() {
        if !catalogue.issues_at(first, at) {
            continue;
        }
        let trusted_itself =
            anchors.iter().position(|(subject, key)| *subject == first.subject_der && *key == first.public_key_der);
        match trusted_itself {
            Some(anchor) => found.push(Candidate { issuing: Issuing::Public(index), chain: Vec::new(), anchor }),
            None => extend(catalogue, &anchors, at, &mut vec![index], &mut found),
        }
    }
    for (anchor, own) in trusted.iter().enumerate() {
        let Standing::OwnCa { lab: root } = &own.standing else { continue };
        if own.role == TrustedRole::Leaf {
            continue;
        }
        let below: Vec<&str> = lab
            .certs()
            .iter()
            .filter(|c| c.is_ca && c.issuer.as_deref() == Some(root.as_str()) && c.validity.0 <= at)
            .map(|c| c.name.as_str())
            .collect();
        if below.is_empty() {
            found.push(Candidate { issuing: Issuing::Own(root.clone()), chain: Vec::new(), anchor });
        }
        for name in below {
            let chain = vec![Link::Own(name.to_owned())];
            found.push(Candidate { issuing: Issuing::Own(name.to_owned()), chain, anchor });
        }
    }
    found.sort_by_key(|c| c.chain.len());
    found
}

/// Extends `path` (catalogue indexes, the issuing CA first) up to a trusted certificate.
fn extend(
    catalogue: &Catalogue,
    anchors: &[(&[u8], &[u8])],
    at: i64,
    path: &mut Vec<usize>,
    found: &mut Vec<Candidate>,
) {
    let Some(top) = path.last().and_then(|&i| catalogue.certs.get(i)) else { return };
    let issuer =
        anchors.iter().position(|(subject, key)| *subject == top.issuer_der.as_slice() && signed_by(&top.der, key));
    if let Some(anchor) = issuer {
        let Some(&first) = path.first() else { return };
        let chain = path.iter().map(|&i| Link::Public(i)).collect();
        found.push(Candidate { issuing: Issuing::Public(first), chain, anchor });
        return;
    }
    if path.len() >= MAX_SENT {
        return;
    }
    for (index, parent) in catalogue.certs.iter().enumerate() {
        let fits = parent.subject_der == top.issuer_der
            && !parent.self_signed
            && parent.not_before <= at
            && !path.iter().any(|&i| catalogue.certs.get(i).is_some_and(|c| c.same_ca(parent)))
            && signed_by(&top.der, &parent.public_key_der);
        if fits {
            path.push(index);
            extend(catalogue, anchors, at, path, found);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::device_tls::Anchors;
    use crate::pki::LabPki;
    use crate::rescue::trust::trusted_of;

    fn lab_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn day(text: &str) -> i64 {
        crate::pki::spec::parse_time(text).map(time::OffsetDateTime::unix_timestamp).unwrap_or_default()
    }

    /// The chains found for a firmware trusting these catalogue certificates, by name.
    fn found(roots: &[&str], at: &str) -> Vec<Vec<String>> {
        let catalogue = Catalogue::open(&lab_dir().join("data/public-cas")).unwrap();
        let pki = LabPki::open(&lab_dir().join("scenarios/pki")).unwrap();
        let lab = LabMap::new(&pki);
        let anchors = Anchors::Roots(roots.iter().map(|name| catalogue.get(name).unwrap().der.clone()).collect());
        let trusted = trusted_of(&anchors, &catalogue, &lab);
        candidates(&catalogue, &trusted, &lab, day(at))
            .into_iter()
            .map(|c| {
                c.chain
                    .iter()
                    .map(|link| match link {
                        Link::Public(i) => catalogue.certs[*i].name.clone(),
                        Link::Own(name) => name.clone(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn chains_climb_from_the_issuing_ca_to_the_first_trusted_issuer() {
        let chains = found(&["dst-root-ca-x3"], "2025-03-01");
        assert!(chains.contains(&vec!["r11".to_owned(), "isrg-root-x1-by-dst".to_owned()]), "{chains:?}");
        // E5 by ISRG Root X2, then X2 by X1 (2020), then X1 by DST: longer, but a chain too.
        let long = ["e5", "isrg-root-x2-by-x1", "isrg-root-x1-by-dst"].map(str::to_owned).to_vec();
        assert!(chains.contains(&long), "{chains:?}");
        // The 2026 reissue of X2 by X1 did not exist in 2025; expired certificates are used.
        assert!(chains.iter().flatten().all(|name| name != "isrg-root-x2-by-x1-2026"), "{chains:?}");
        // Shortest first, and nothing past the first trusted issuer (no DST root sent).
        assert!(chains.windows(2).all(|pair| pair[0].len() <= pair[1].len()));
        assert!(chains.iter().flatten().all(|name| name != "dst-root-ca-x3"));
    }

    #[test]
    fn a_trusted_issuing_ca_sends_the_leaf_alone_and_a_root_no_ca_reaches_has_no_chain() {
        assert!(found(&["r3"], "2022-01-01").contains(&Vec::new()));
        assert!(found(&["r3"], "2025-03-01").is_empty());
        assert!(found(&["baltimore-cybertrust-root"], "2026-11-25").is_empty());
        assert!(found(&["isrg-root-x1"], "2019-01-01").is_empty(), "nothing in the catalogue issued then");
    }

    #[test]
    fn every_ca_that_issued_since_2024_has_a_look_alike_of_its_dates() {
        let catalogue = Catalogue::open(&lab_dir().join("data/public-cas")).unwrap();
        let pki = LabPki::open(&lab_dir().join("scenarios/pki")).unwrap();
        let lab = LabMap::new(&pki);
        for cert in catalogue.certs.iter().filter(|c| catalogue.issuing_periods(c).any(|p| p.from >= day("2024-01-01")))
        {
            let alike = lab.lookalike_of(cert).unwrap_or_else(|| panic!("no look-alike of {}", cert.name));
            assert!(alike.same_subject && alike.same_validity, "{}: {alike:?}", cert.name);
            // And back: the look-alike stands for a certificate of the same CA.
            let real = lab.public_of(alike.lab, &catalogue).unwrap();
            assert!(real.same_ca(cert), "{} -> {} -> {}", cert.name, alike.lab.name, real.name);
        }
    }
}
