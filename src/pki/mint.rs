//! Making certificates and keys from [`CertSpec`]s with rcgen (aws-lc-rs for RSA key
//! generation). rcgen does no validation, so expired, not-yet-valid and odd certificates come
//! out exactly as specified.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, RsaKeySize, SanType, SerialNumber, SignatureAlgorithm,
};

use super::error::PkiError;
use super::spec::{CertSpec, ExtendedKeyUsage, KeyType, KeyUsage, Role, SignatureHash};

/// A certificate made from a spec.
#[derive(Clone, Debug)]
pub struct Minted {
    pub name: String,
    pub der: Vec<u8>,
    pub pem: String,
}

/// A fresh key pair of the spec's type.
pub fn new_key(spec: &CertSpec) -> Result<KeyPair, PkiError> {
    let unsupported = |what: &str| PkiError::Unsupported { name: spec.name.clone(), what: what.to_owned() };
    let generated = match spec.key {
        KeyType::Rsa1024 => return Err(unsupported("an RSA-1024 key")),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
        KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
    };
    generated.map_err(|e| PkiError::Generate { name: spec.name.clone(), message: e.to_string() })
}

/// The signature algorithm an issuer with `key` uses for `hash` (its natural one when `None`).
pub fn algorithm(key: KeyType, hash: Option<SignatureHash>) -> Result<&'static SignatureAlgorithm, String> {
    use SignatureHash as H;
    match (key, hash) {
        (_, Some(H::Sha1)) => Err("SHA-1 signatures".into()),
        (k, None | Some(H::Sha256)) if k.is_rsa() => Ok(&rcgen::PKCS_RSA_SHA256),
        (k, Some(H::Sha384)) if k.is_rsa() => Ok(&rcgen::PKCS_RSA_SHA384),
        (k, Some(H::Sha512)) if k.is_rsa() => Ok(&rcgen::PKCS_RSA_SHA512),
        (KeyType::P256, None | Some(H::Sha256)) => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        (KeyType::P384, None | Some(H::Sha384)) => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        (KeyType::Ed25519, None) => Ok(&rcgen::PKCS_ED25519),
        (key, Some(hash)) => Err(format!("{hash:?} signatures with a {} key", key.as_str())),
        (key, None) => Err(format!("signatures with a {} key", key.as_str())),
    }
}

/// The key in `pem`, set up to sign with `alg`.
pub fn signing_key(pem: &str, alg: &'static SignatureAlgorithm, name: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pkcs8_pem_and_sign_algo(pem, alg)
        .map_err(|e| PkiError::Generate { name: name.to_owned(), message: format!("cannot load its key: {e}") })
}

/// Signs the certificate `spec` describes. `subject_key` holds the certified public key;
/// `issuer` is the issuing certificate (PEM) and its signing key, or `None` for self-signed
/// (then `subject_key` signs, and must be set up with the right algorithm).
pub fn mint(spec: &CertSpec, subject_key: &KeyPair, issuer: Option<(&str, &KeyPair)>) -> Result<Minted, PkiError> {
    let fail = |message: String| PkiError::Generate { name: spec.name.clone(), message };
    let params = params_of(spec).map_err(fail)?;
    let certificate = match issuer {
        None => params.self_signed(subject_key),
        Some((issuer_pem, issuer_key)) => {
            let issuer = Issuer::from_ca_cert_pem(issuer_pem, issuer_key)
                .map_err(|e| fail(format!("issuer certificate unusable: {e}")))?;
            params.signed_by(subject_key, &issuer)
        }
    }
    .map_err(|e| fail(e.to_string()))?;
    Ok(Minted { name: spec.name.clone(), der: certificate.der().to_vec(), pem: certificate.pem() })
}

fn params_of(spec: &CertSpec) -> Result<CertificateParams, String> {
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
        let name = name.clone().try_into().map_err(|_| format!("`{name}` is not a DNS name"))?;
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

fn distinguished_name(subject: &[(String, String)], utf8: bool) -> Result<DistinguishedName, String> {
    let mut dn = DistinguishedName::new();
    for (key, value) in subject {
        let kind = match key.as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            other => return Err(format!("unknown subject attribute {other}")),
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

/// 16 random bytes, top bit clear (a positive INTEGER), never all zero.
fn random_serial() -> Result<Vec<u8>, String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut serial = vec![0u8; 16];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut serial).map_err(|_| "no randomness".to_owned())?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    Ok(serial)
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
