//! Making certificates and keys from [`CertSpec`]s with rcgen (aws-lc-rs for RSA key
//! generation). rcgen does no validation, so expired, not-yet-valid and odd certificates come
//! out exactly as specified. What rcgen cannot make (SHA-1 signatures, RSA-1024 keys and what
//! they sign) goes to [`super::legacy`].

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, RsaKeySize, SanType, SerialNumber, SignatureAlgorithm,
};

use super::error::{MintError, PkiError, Unsupported};
use super::legacy;
pub use super::minted::Minted;
use super::minted::random_serial;
use super::spec::{CertSpec, ExtendedKeyUsage, KeyType, KeyUsage, Role, SignatureHash};

/// A fresh key of the spec's type, as PKCS#8 PEM (what the lab PKI stores and [`mint`] takes).
pub(crate) fn new_key_pem(spec: &CertSpec) -> Result<String, PkiError> {
    match spec.key {
        // aws-lc-rs makes no RSA key under 2048 bits.
        KeyType::Rsa1024 => {
            legacy::new_rsa_key_pem(1024).map_err(|source| PkiError::Generate { name: spec.name.clone(), source })
        }
        _ => Ok(new_key(spec)?.serialize_pem()),
    }
}

/// A fresh rcgen key pair of the spec's type; not for RSA-1024 (rcgen cannot hold one: use
/// `new_key_pem`).
pub fn new_key(spec: &CertSpec) -> Result<KeyPair, PkiError> {
    let generated = match spec.key {
        KeyType::Rsa1024 => {
            return Err(PkiError::Generate { name: spec.name.clone(), source: MintError::RcgenRsa1024 });
        }
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
        KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
    };
    generated.map_err(|e| PkiError::Generate { name: spec.name.clone(), source: MintError::NewKey(e) })
}

/// The rcgen signature algorithm an issuer with `key` uses for `hash` (its natural one when
/// `None`). SHA-1 with RSA is not one of them: [`mint`] makes those without rcgen.
pub fn algorithm(key: KeyType, hash: Option<SignatureHash>) -> Result<&'static SignatureAlgorithm, Unsupported> {
    use SignatureHash as H;
    match (key, hash) {
        (k, Some(H::Sha1)) if k.is_rsa() => Err(Unsupported::Sha1WithRcgen),
        (k, None | Some(H::Sha256)) if k.is_rsa() => Ok(&rcgen::PKCS_RSA_SHA256),
        (k, Some(H::Sha384)) if k.is_rsa() => Ok(&rcgen::PKCS_RSA_SHA384),
        (k, Some(H::Sha512)) if k.is_rsa() => Ok(&rcgen::PKCS_RSA_SHA512),
        (KeyType::P256, None | Some(H::Sha256)) => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        (KeyType::P384, None | Some(H::Sha384)) => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        (KeyType::Ed25519, None) => Ok(&rcgen::PKCS_ED25519),
        (key, Some(hash)) => Err(Unsupported::Signature { key, hash }),
        (key, None) => Err(Unsupported::Key { key }),
    }
}

/// The key in `pem`, set up to sign with `alg`.
pub(crate) fn signing_key(pem: &str, alg: &'static SignatureAlgorithm, name: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pkcs8_pem_and_sign_algo(pem, alg)
        .map_err(|e| PkiError::Generate { name: name.to_owned(), source: MintError::SigningKey(e) })
}

/// The certificate that signs another, with its key, for [`mint`].
#[derive(Clone, Copy, Debug)]
pub struct IssuedBy<'a> {
    /// The issuer's spec (its name and key type).
    pub spec: &'a CertSpec,
    /// The issuing certificate, PEM.
    pub(crate) cert_pem: &'a str,
    /// The issuer's private key, PKCS#8 PEM.
    pub key_pem: &'a str,
}

/// Signs the certificate `spec` describes. `subject_key_pem` (PKCS#8) holds the certified key;
/// `issuer` is the issuing certificate and its key, or `None` for self-signed (then the subject
/// key signs). rcgen makes it, unless the signer is RSA and signs with SHA-1 or is RSA-1024:
/// then `legacy` does.
pub fn mint(spec: &CertSpec, subject_key_pem: &str, issuer: Option<IssuedBy<'_>>) -> Result<Minted, PkiError> {
    let fail = |source| PkiError::Generate { name: spec.name.clone(), source };
    if signed_without_rcgen(spec, issuer) {
        let signer_pem = issuer.map_or(subject_key_pem, |i| i.key_pem);
        let subject_spki = subject_key(subject_key_pem).map_err(&fail)?.spki();
        let hash = spec.signature.unwrap_or(SignatureHash::Sha256);
        return legacy::mint(spec, &subject_spki, signer_pem, issuer.map(|i| i.cert_pem), hash).map_err(fail);
    }
    let params = params_of(spec).map_err(&fail)?;
    sign_params(spec, params, subject_key_pem, issuer)
}

/// Whether [`mint`] makes a certificate signed by this issuer (or self-signed) without rcgen,
/// so rcgen parameters do not apply to it.
pub(super) fn signed_without_rcgen(spec: &CertSpec, issuer: Option<IssuedBy<'_>>) -> bool {
    legacy::signs(issuer.map_or(spec.key, |i| i.spec.key), spec.signature)
}

/// The rcgen half of [`mint`]: signs `params` (made by [`params_of`], perhaps amended) as
/// `spec`'s issuer would. Not for what [`signed_without_rcgen`] says rcgen cannot sign.
pub(super) fn sign_params(
    spec: &CertSpec,
    params: CertificateParams,
    subject_key_pem: &str,
    issuer: Option<IssuedBy<'_>>,
) -> Result<Minted, PkiError> {
    let fail = |source| PkiError::Generate { name: spec.name.clone(), source };
    let (signer_key, signer_name, signer_pem) = match issuer {
        Some(issued_by) => (issued_by.spec.key, issued_by.spec.name.as_str(), issued_by.key_pem),
        None => (spec.key, spec.name.as_str(), subject_key_pem),
    };
    let alg = algorithm(signer_key, spec.signature)
        .map_err(|what| PkiError::Unsupported { name: spec.name.clone(), what })?;
    let signer = signing_key(signer_pem, alg, signer_name)?;
    let certificate = match issuer {
        None => params.self_signed(&signer),
        Some(issued_by) => {
            let issuer =
                Issuer::from_ca_cert_pem(issued_by.cert_pem, &signer).map_err(|e| fail(MintError::Issuer(e)))?;
            match subject_key(subject_key_pem).map_err(&fail)? {
                SubjectKey::Pair(pair) => params.signed_by(&pair, &issuer),
                SubjectKey::Rsa(spki) => {
                    let spki =
                        rcgen::SubjectPublicKeyInfo::from_der(&spki).map_err(|e| fail(MintError::SubjectKey(e)))?;
                    params.signed_by(&spki, &issuer)
                }
            }
        }
    }
    .map_err(|e| fail(MintError::Sign(e)))?;
    Ok(Minted { name: spec.name.clone(), der: certificate.der().to_vec(), pem: certificate.pem() })
}

/// A certified key: one rcgen loads, or an RSA key it refuses (under 2048 bits), by its
/// SubjectPublicKeyInfo (DER).
enum SubjectKey {
    Pair(KeyPair),
    Rsa(Vec<u8>),
}

impl SubjectKey {
    fn spki(self) -> Vec<u8> {
        match self {
            Self::Pair(pair) => rcgen::PublicKeyData::subject_public_key_info(&pair),
            Self::Rsa(spki) => spki,
        }
    }
}

/// The certified key: rcgen's error when neither rcgen nor the RSA path loads it.
fn subject_key(pem: &str) -> Result<SubjectKey, MintError> {
    match KeyPair::from_pem(pem) {
        Ok(pair) => Ok(SubjectKey::Pair(pair)),
        Err(rcgen_error) => {
            legacy::rsa_public_key_der(pem).map(SubjectKey::Rsa).map_err(|_| MintError::SubjectKey(rcgen_error))
        }
    }
}

pub(super) fn params_of(spec: &CertSpec) -> Result<CertificateParams, MintError> {
    let mut params = CertificateParams::default();
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.distinguished_name = distinguished_name(&spec.subject, spec.subject_utf8)?;
    params.is_ca = match spec.role {
        Role::Authority { pathlen: None } => IsCa::Ca(BasicConstraints::Unconstrained),
        Role::Authority { pathlen: Some(n) } => IsCa::Ca(BasicConstraints::Constrained(n)),
        Role::Leaf => IsCa::ExplicitNoCa,
    };
    params.key_usages = spec.key_usage.iter().map(|u| key_usage(*u)).collect();
    params.extended_key_usages = spec.extended_key_usage.iter().map(|u| extended_key_usage(*u)).collect();
    for name in &spec.dns {
        let name = name.clone().try_into().map_err(|_| MintError::DnsName { name: name.clone() })?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.subject_alt_names.extend(spec.ip.iter().map(|ip| SanType::IpAddress(*ip)));
    params.serial_number = Some(SerialNumber::from_slice(&match &spec.serial {
        Some(serial) => serial.clone(),
        None => random_serial()?,
    }));
    params.use_authority_key_identifier_extension = spec.issuer.is_some();
    Ok(params)
}

fn distinguished_name(subject: &[(String, String)], utf8: bool) -> Result<DistinguishedName, MintError> {
    let mut dn = DistinguishedName::new();
    for (key, value) in subject {
        let kind = match key.as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            other => return Err(MintError::SubjectAttribute { key: other.to_owned() }),
        };
        // Public CAs write PrintableString where the text allows it, as here.
        let value = match value.clone().try_into() {
            Ok(printable) if !utf8 => DnValue::PrintableString(printable),
            _ => DnValue::Utf8String(value.clone()),
        };
        dn.push(kind, value);
    }
    Ok(dn)
}

fn key_usage(usage: KeyUsage) -> KeyUsagePurpose {
    match usage {
        KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
        KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
        KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
        KeyUsage::KeyCertSign => KeyUsagePurpose::KeyCertSign,
        KeyUsage::CrlSign => KeyUsagePurpose::CrlSign,
    }
}

fn extended_key_usage(usage: ExtendedKeyUsage) -> ExtendedKeyUsagePurpose {
    match usage {
        ExtendedKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
    }
}
