//! A scenario's certificates made real: its own certificates minted (issued by lab
//! authorities or by each other), and the served chain assembled in the scenario's order.

use std::collections::BTreeMap;

use super::Scenario;
use crate::pki::{self, CertSpec, LabPki, Minted, PkiError};

/// Exactly what the server sends, and the key of the first certificate.
#[derive(Clone, Debug)]
pub struct ServedChain {
    /// The certificates, in the order sent (the leaf, or whatever the scenario puts first).
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
        let made = mint_all(scenario, pki)?;
        assemble(&scenario.chain, &made, pki)
    }

    /// The default chain and one per extra host name (`[server.hosts]`), sharing the
    /// scenario's certificates.
    pub(crate) fn build_all(scenario: &Scenario, pki: &LabPki) -> Result<(Self, Vec<(String, Self)>), PkiError> {
        let made = mint_all(scenario, pki)?;
        let default = assemble(&scenario.chain, &made, pki)?;
        let hosts = scenario
            .hosts
            .iter()
            .map(|host| Ok((host.name.clone(), assemble(&host.chain, &made, pki)?)))
            .collect::<Result<_, PkiError>>()?;
        Ok((default, hosts))
    }

    /// The DER of every certificate, in the order sent.
    pub fn ders(&self) -> Vec<Vec<u8>> {
        self.certs.iter().map(|c| c.der.clone()).collect()
    }
}

fn mint_all(scenario: &Scenario, pki: &LabPki) -> Result<BTreeMap<String, Made>, PkiError> {
    let mut made = BTreeMap::new();
    for spec in &scenario.certs {
        mint_local(spec, scenario, pki, &mut made)?;
    }
    Ok(made)
}

fn assemble(names: &[String], made: &BTreeMap<String, Made>, pki: &LabPki) -> Result<ServedChain, PkiError> {
    let mut certs = Vec::with_capacity(names.len());
    for name in names {
        match made.get(name) {
            Some(local) => certs.push(local.minted.clone()),
            None => certs.push(pki.certificate(name)?),
        }
    }
    let first = names.first().ok_or_else(|| PkiError::Unknown { name: "(empty chain)".into() })?;
    let key_pem = match made.get(first) {
        Some(local) => local.key_pem.clone(),
        None => pki.key_pem(pki.specs().get(first).map_or(first.as_str(), |s| s.key_owner()))?,
    };
    Ok(ServedChain { certs, key_pem })
}

fn mint_local(
    spec: &CertSpec,
    scenario: &Scenario,
    pki: &LabPki,
    made: &mut BTreeMap<String, Made>,
) -> Result<(), PkiError> {
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
        None => pki::new_key_pem(spec)?,
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
    let minted = match &issuer_pem {
        None => pki::mint(spec, &key_pem, None)?,
        Some(cert_pem) => {
            let issued_by = pki::IssuedBy { spec: &issuer_spec, cert_pem, key_pem: &issuer_key_pem };
            pki::mint(spec, &key_pem, Some(issued_by))?
        }
    };
    made.insert(spec.name.clone(), Made { minted, key_pem, spec: spec.clone() });
    Ok(())
}
