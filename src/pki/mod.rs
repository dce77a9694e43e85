//! The lab PKI: look-alike certificate authorities (same subjects, key types and validity as
//! the real ones), specified once in `scenarios/pki/authorities.toml`, generated once with
//! rcgen and committed, so every lab host, CI shard and lab firmware agrees on them.
//!
//! Layout: `authorities.toml`, `certs/NAME.pem`, `keys/OWNER.key.pem` (mode 0600; one key per
//! key owner: a cross-sign shares its twin's key). Lab only: the keys are public.

mod error;
mod fit;
mod legacy;
mod mint;
mod minted;
pub mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::{MintError, PkiError, SpecError, SpecErrorKind, SubjectError, TimeError, Unsupported};
pub(crate) use fit::Fitted;
pub(crate) use mint::new_key_pem;
pub use mint::{IssuedBy, Minted, algorithm, mint, new_key};
pub use spec::{CertSpec, KeyType, Role};

use crate::toml_source::TomlSource;
use spec::{Defaults, RawCerts};

/// The file that lists the authorities.
pub const AUTHORITIES_FILE: &str = "authorities.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorities {
    #[serde(default)]
    authority: RawCerts,
}

/// Which certificates `generate` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regenerate {
    /// Only those not on disk yet (and, for a new key, what it signs).
    Missing,
    /// These, with new keys, and everything their keys sign or certify.
    These(Vec<String>),
    /// Everything, with new keys.
    All,
}

/// The lab PKI in a directory.
#[derive(Debug)]
pub struct LabPki {
    dir: PathBuf,
    specs: BTreeMap<String, CertSpec>,
}

impl LabPki {
    /// Reads and checks `DIR/authorities.toml`.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        let path = dir.join(AUTHORITIES_FILE);
        let source = TomlSource::read(&path).map_err(|source| PkiError::Read { path: path.clone(), source })?;
        let raw: RawAuthorities = source.parse().map_err(SpecError::from)?;
        let defaults =
            Defaults { ca: true, key_from_issuer: false, valid: None, dns: Vec::new(), subject_from_names: false };
        let specs = spec::check_certs(&source, &raw.authority, &defaults, &BTreeMap::new())?;
        Ok(Self { dir: dir.to_owned(), specs: specs.into_iter().map(|s| (s.name.clone(), s)).collect() })
    }

    /// The directory holding `authorities.toml`, `certs/` and `keys/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every authority, by name.
    pub fn specs(&self) -> &BTreeMap<String, CertSpec> {
        &self.specs
    }

    /// Where the certificate `name` is committed (`certs/NAME.pem`), whether or not it exists.
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(format!("{name}.pem"))
    }

    /// Where the key of the key owner `owner` is kept (`keys/OWNER.key.pem`), whether or not it
    /// exists.
    pub fn key_path(&self, owner: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{owner}.key.pem"))
    }

    /// Names whose certificate is not on disk.
    pub fn missing(&self) -> Vec<String> {
        self.specs.keys().filter(|name| !self.cert_path(name).exists()).cloned().collect()
    }

    /// The committed certificate `name`.
    pub fn certificate(&self, name: &str) -> Result<Minted, PkiError> {
        if !self.specs.contains_key(name) {
            return Err(PkiError::Unknown { name: name.to_owned() });
        }
        let path = self.cert_path(name);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PkiError::NotGenerated { name: name.to_owned() });
            }
            Err(source) => return Err(PkiError::Read { path, source }),
        };
        let der = pem_to_der(&pem).ok_or_else(|| PkiError::NotPem { path: path.clone() })?;
        Ok(Minted { name: name.to_owned(), der, pem })
    }

    /// The private key (PKCS#8 PEM) of the key owner `owner`.
    pub fn key_pem(&self, owner: &str) -> Result<String, PkiError> {
        let path = self.key_path(owner);
        std::fs::read_to_string(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => PkiError::NotGenerated { name: owner.to_owned() },
            _ => PkiError::Read { path, source },
        })
    }

    /// Makes certificates (and keys) as `plan` says, issuers first; `on_made` hears of each.
    /// Returns the names made.
    pub fn generate(&self, plan: &Regenerate, mut on_made: impl FnMut(&CertSpec)) -> Result<Vec<String>, PkiError> {
        for name in match plan {
            Regenerate::These(names) => names.as_slice(),
            _ => &[],
        } {
            if !self.specs.contains_key(name) {
                return Err(PkiError::Unknown { name: name.clone() });
            }
        }
        let owners_needing_keys: BTreeSet<String> = match plan {
            Regenerate::All => self.specs.values().map(|s| s.key_owner().to_owned()).collect(),
            Regenerate::These(names) => names.iter().map(|n| self.specs[n].key_owner().to_owned()).collect(),
            Regenerate::Missing => self
                .specs
                .values()
                .map(|s| s.key_owner().to_owned())
                .filter(|owner| !self.key_path(owner).exists())
                .collect(),
        };
        let mut wanted: BTreeSet<String> = match plan {
            Regenerate::All => self.specs.keys().cloned().collect(),
            Regenerate::These(names) => names.iter().cloned().collect(),
            Regenerate::Missing => self.missing().into_iter().collect(),
        };
        // A new key invalidates every certificate of that key and every signature it made.
        for spec in self.specs.values() {
            let issuer_owner = self.specs.get(spec.issuer_name()).map_or(spec.key_owner(), |i| i.key_owner());
            if owners_needing_keys.contains(spec.key_owner()) || owners_needing_keys.contains(issuer_owner) {
                wanted.insert(spec.name.clone());
            }
        }

        for dir in ["certs", "keys"] {
            let path = self.dir.join(dir);
            std::fs::create_dir_all(&path).map_err(|source| PkiError::Write { path, source })?;
        }
        for owner in &owners_needing_keys {
            let key = new_key_pem(&self.specs[owner])?;
            write_private(&self.key_path(owner), &key)?;
        }
        let mut made = Vec::new();
        for name in self.issuer_order() {
            if !wanted.contains(&name) {
                continue;
            }
            let spec = &self.specs[&name];
            let minted = self.sign(spec)?;
            let path = self.cert_path(&name);
            std::fs::write(&path, &minted.pem).map_err(|source| PkiError::Write { path, source })?;
            on_made(spec);
            made.push(name);
        }
        Ok(made)
    }

    /// Signs `spec` (an authority, or a scenario's certificate issued by one) with keys on
    /// disk; `local` holds certificates and keys made outside the PKI (a scenario's own).
    pub(crate) fn sign(&self, spec: &CertSpec) -> Result<Minted, PkiError> {
        let subject = self.spec_key(spec.key_owner(), spec)?;
        let issuer_spec = self.specs.get(spec.issuer_name()).unwrap_or(spec);
        if spec.issuer.is_none() || spec.issuer_name() == spec.name {
            return mint(spec, &subject, None);
        }
        let issuer_key = self.key_pem(issuer_spec.key_owner())?;
        let issuer_cert = self.certificate(&issuer_spec.name)?;
        mint(spec, &subject, Some(IssuedBy { spec: issuer_spec, cert_pem: &issuer_cert.pem, key_pem: &issuer_key }))
    }

    fn spec_key(&self, owner: &str, spec: &CertSpec) -> Result<String, PkiError> {
        if self.specs.contains_key(owner) {
            self.key_pem(owner)
        } else {
            Err(PkiError::Unknown { name: spec.key_owner().to_owned() })
        }
    }

    /// Every authority, each after its issuer and after the owner of its key.
    pub fn issuer_order(&self) -> Vec<String> {
        fn visit(name: &str, specs: &BTreeMap<String, CertSpec>, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
            if !seen.insert(name.to_owned()) {
                return;
            }
            if let Some(spec) = specs.get(name) {
                for dep in [spec.issuer_name(), spec.key_owner()] {
                    if dep != name {
                        visit(dep, specs, seen, out);
                    }
                }
                out.push(name.to_owned());
            }
        }
        let (mut seen, mut out) = (BTreeSet::new(), Vec::new());
        for name in self.specs.keys() {
            visit(name, &self.specs, &mut seen, &mut out);
        }
        out
    }
}

/// The DER of the first CERTIFICATE block in `pem`.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    ::pem::parse_many(pem).ok()?.into_iter().find(|p| p.tag() == "CERTIFICATE").map(pem::Pem::into_contents)
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        file.write_all(text.as_bytes())?;
        // An existing file keeps its mode on open: set it explicitly.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
    };
    write().map_err(|source| PkiError::Write { path: path.to_owned(), source })
}
