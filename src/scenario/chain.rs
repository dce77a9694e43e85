//! A scenario's certificates made real: its own certificates minted (issued by lab
//! authorities or by each other), and the served chain assembled in the scenario's order.

use std::collections::BTreeMap;

use super::Scenario;
use crate::pki::{self, CertSpec, LabPki, Minted, PkiError};

/// Exactly what the server sends, and the key of the first certificate.
#[derive(Clone, Debug)]
pub struct ServedChain {
    pub certs: Vec<Minted>,
    /// PKCS#8 PEM of the key certified by the first certificate sent.
    pub key_pem: String,
}

/// A minted certificate with its key.
struct Made {
    minted: Minted,
    key_pem: String,
    spec: CertSpec,
}

impl ServedChain {
    /// Mints the scenario's own certificates (fresh keys each time) and assembles the chain.
    pub fn build(scenario: &Scenario, pki: &LabPki) -> Result<Self, PkiError> {
        let mut made: BTreeMap<String, Made> = BTreeMap::new();
        for spec in &scenario.certs {
            mint_local(spec, scenario, pki, &mut made)?;
        }
        let mut certs = Vec::with_capacity(scenario.chain.len());
        for name in &scenario.chain {
            match made.get(name) {
                Some(local) => certs.push(local.minted.clone()),
                None => certs.push(pki.certificate(name)?),
            }
        }
        let first = &scenario.chain[0];
        let key_pem = match made.get(first) {
            Some(local) => local.key_pem.clone(),
            None => pki.key_pem(pki.specs().get(first).map_or(first.as_str(), |s| s.key_owner()))?,
        };
        Ok(Self { certs, key_pem })
    }

    /// The DER of every certificate, in the order sent.
    pub fn ders(&self) -> Vec<Vec<u8>> {
        self.certs.iter().map(|c| c.der.clone()).collect()
    }
}

fn mint_local(spec: &CertSpec, scenario: &Scenario, pki: &LabPki, made: &mut BTreeMap<String, Made>) -> Result<(), PkiError> {
    if made.contains_key(&spec.name) {
        return Ok(());
    }
    // Whatever this one depends on, first.
    for dependency in [spec.same_key_as.as_deref(), spec.issuer.as_deref()].into_iter().flatten() {
        if dependency != spec.name
            && let Some(local) = scenario.certs.iter().find(|c| c.name == dependency)
        {
            mint_local(local, scenario, pki, made)?;
        }
    }
    let key_pem = match spec.same_key_as.as_deref() {
        Some(twin) => match made.get(twin) {
            Some(local) => local.key_pem.clone(),
            None => pki.key_pem(pki.specs().get(twin).map_or(twin, |s| s.key_owner()))?,
        },
        None => pki::new_key(spec)?.serialize_pem(),
    };
    let issuer_name = spec.issuer_name().to_owned();
    let (issuer_spec, issuer_pem, issuer_key_pem) = if issuer_name == spec.name {
        (spec.clone(), None, key_pem.clone())
    } else if let Some(local) = made.get(&issuer_name) {
        (local.spec.clone(), Some(local.minted.pem.clone()), local.key_pem.clone())
    } else {
        let issuer = pki.specs().get(&issuer_name).ok_or_else(|| PkiError::Unknown { name: issuer_name.clone() })?;
        (issuer.clone(), Some(pki.certificate(&issuer_name)?.pem), pki.key_pem(issuer.key_owner())?)
    };
    let alg = pki::algorithm(issuer_spec.key, spec.signature)
        .map_err(|what| PkiError::Unsupported { name: spec.name.clone(), what })?;
    let signer = pki::signing_key(&issuer_key_pem, alg, &issuer_spec.name)?;
    let minted = match issuer_pem {
        None => pki::mint(spec, &signer, None)?,
        Some(issuer_pem) => {
            let subject = rcgen::KeyPair::from_pem(&key_pem)
                .map_err(|e| PkiError::Generate { name: spec.name.clone(), message: e.to_string() })?;
            pki::mint(spec, &subject, Some((&issuer_pem, &signer)))?
        }
    };
    made.insert(spec.name.clone(), Made { minted, key_pem, spec: spec.clone() });
    Ok(())
}
