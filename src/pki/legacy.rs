//! Certificates rcgen cannot make: SHA-1 signatures, and signatures by RSA-1024 keys (aws-lc-rs,
//! rcgen's crypto, refuses RSA keys under 2048 bits). Built with x509-cert's
//! `CertificateBuilder` from the same [`CertSpec`] fields as the rcgen path in `mint`, signed
//! with the `rsa` crate: PKCS#1 v1.5 with the spec's hash (SHA-256 unless it names another).

use rsa::RsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::OsRng;
use rsa::sha2::{Sha256, Sha384, Sha512};
use rsa::signature::{Keypair, RandomizedSigner};
use sha1::Sha1;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{Any, GeneralizedTime, Ia5String, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef};
use x509_cert::der::oid::db::{rfc4519, rfc5280};
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::referenced::OwnedToRef;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage as Eku, KeyUsage as Ku, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{DynSignatureAlgorithmIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::error::MintError;
use super::minted::{Minted, random_serial};
use super::spec::{CertSpec, ExtendedKeyUsage, KeyType, KeyUsage, Role, SignatureHash};

/// Whether a certificate signed by a `signer` key with `hash` must be made here: an RSA
/// signer with SHA-1, or an RSA-1024 signer.
pub(super) fn signs(signer: KeyType, hash: Option<SignatureHash>) -> bool {
    signer.is_rsa() && (signer == KeyType::Rsa1024 || hash == Some(SignatureHash::Sha1))
}

/// A fresh RSA key of `bits` bits, as PKCS#8 PEM (what the lab PKI stores).
pub(super) fn new_rsa_key_pem(bits: usize) -> Result<String, MintError> {
    let key = RsaPrivateKey::new(&mut OsRng, bits).map_err(MintError::NewRsaKey)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(MintError::EncodeKey)?;
    Ok(pem.as_str().to_owned())
}

/// The SubjectPublicKeyInfo (DER) of an RSA private key in PKCS#8 PEM.
pub(super) fn rsa_public_key_der(key_pem: &str) -> Result<Vec<u8>, MintError> {
    let key = RsaPrivateKey::from_pkcs8_pem(key_pem).map_err(MintError::NotRsaKey)?;
    let der = key.to_public_key().to_public_key_der().map_err(MintError::PublicKey)?;
    Ok(der.into_vec())
}

/// Signs the certificate `spec` describes with the RSA key `signer_pem` (PKCS#8 PEM), PKCS#1
/// v1.5 with `hash`. `subject_spki` is the certified public key (SubjectPublicKeyInfo DER);
/// `issuer_pem` the issuing certificate, `None` for self-signed.
pub(super) fn mint(
    spec: &CertSpec,
    subject_spki: &[u8],
    signer_pem: &str,
    issuer_pem: Option<&str>,
    hash: SignatureHash,
) -> Result<Minted, MintError> {
    let key = RsaPrivateKey::from_pkcs8_pem(signer_pem).map_err(MintError::RsaSigningKey)?;
    match hash {
        SignatureHash::Sha1 => build(spec, subject_spki, issuer_pem, &SigningKey::<Sha1>::new(key)),
        SignatureHash::Sha256 => build(spec, subject_spki, issuer_pem, &SigningKey::<Sha256>::new(key)),
        SignatureHash::Sha384 => build(spec, subject_spki, issuer_pem, &SigningKey::<Sha384>::new(key)),
        SignatureHash::Sha512 => build(spec, subject_spki, issuer_pem, &SigningKey::<Sha512>::new(key)),
    }
}

fn build<S>(spec: &CertSpec, subject_spki: &[u8], issuer_pem: Option<&str>, signer: &S) -> Result<Minted, MintError>
where
    S: Keypair + DynSignatureAlgorithmIdentifier + RandomizedSigner<Signature>,
    S::VerifyingKey: EncodePublicKey,
{
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_spki).map_err(der("subject public key"))?;
    let subject_key_id = SubjectKeyIdentifier::try_from(spki.owned_to_ref()).map_err(der("subject key identifier"))?;
    let (issuer, authority_key_id) = match issuer_pem {
        None => (None, subject_key_id.0.clone()),
        Some(pem) => {
            let issuer = IssuerFacts::read(pem)?;
            (Some(issuer.name), issuer.key_id)
        }
    };
    let serial = match &spec.serial {
        Some(serial) => serial.clone(),
        None => random_serial()?,
    };
    let serial = SerialNumber::new(&serial).map_err(der("serial number"))?;
    let validity = Validity { not_before: x509_time(spec.not_before)?, not_after: x509_time(spec.not_after)? };
    let subject = name(&spec.subject, spec.subject_utf8)?;

    let mut builder = CertificateBuilder::new(Profile::Manual { issuer }, serial, validity, subject, spki, signer)
        .map_err(MintError::Build)?;
    let add = |result: Result<(), x509_cert::builder::Error>| result.map_err(MintError::Build);
    // The extensions rcgen writes, with its criticality.
    let (ca, path_len_constraint) = match spec.role {
        Role::Authority { pathlen } => (true, pathlen),
        Role::Leaf => (false, None),
    };
    add(builder.add_extension(&BasicConstraints { ca, path_len_constraint }))?;
    if !spec.key_usage.is_empty() {
        let usages = spec.key_usage.iter().fold(Default::default(), |all, usage| all | key_usage(*usage));
        add(builder.add_extension(&Ku(usages)))?;
    }
    if !spec.extended_key_usage.is_empty() {
        let purposes = spec.extended_key_usage.iter().map(|u| extended_key_usage(*u)).collect();
        add(builder.add_extension(&NonCritical(Eku(purposes))))?;
    }
    if !spec.dns.is_empty() || !spec.ip.is_empty() {
        let mut names = Vec::new();
        for dns in &spec.dns {
            let ia5 = Ia5String::new(dns).map_err(|_| MintError::DnsName { name: dns.clone() })?;
            names.push(GeneralName::DnsName(ia5));
        }
        names.extend(spec.ip.iter().map(|ip| GeneralName::from(*ip)));
        add(builder.add_extension(&SubjectAltName(names)))?;
    }
    add(builder.add_extension(&subject_key_id))?;
    if spec.issuer.is_some() {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(authority_key_id),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        add(builder.add_extension(&aki))?;
    }

    let certificate = builder.build_with_rng::<Signature>(&mut OsRng).map_err(MintError::Build)?;
    let der = certificate.to_der().map_err(der("certificate"))?;
    let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
    let pem = ::pem::encode_config(&::pem::Pem::new("CERTIFICATE", der.clone()), config);
    Ok(Minted { name: spec.name.clone(), der, pem })
}

/// What a certificate needs from its issuer's certificate.
struct IssuerFacts {
    /// The issuer's subject, which re-encodes to exactly its bytes.
    name: Name,
    /// Its subjectKeyIdentifier (what verifiers match the authorityKeyIdentifier against), or
    /// one computed from its key when it has none.
    key_id: OctetString,
}

impl IssuerFacts {
    fn read(pem: &str) -> Result<Self, MintError> {
        let der = super::pem_to_der(pem).ok_or(MintError::IssuerNotPem)?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(MintError::IssuerParse)?;
        let raw_subject = cert.subject().as_raw();
        let name = RdnSequence::from_der(raw_subject).map_err(self::der("issuer subject"))?;
        if name.to_der().map_err(self::der("issuer subject"))? != raw_subject {
            return Err(MintError::IssuerSubject);
        }
        let ski = cert.extensions().iter().find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
        let key_id = match ski {
            Some(id) => OctetString::new(id).map_err(self::der("issuer key identifier"))?,
            None => {
                let spki = SubjectPublicKeyInfoOwned::from_der(cert.public_key().raw);
                let spki = spki.map_err(self::der("issuer public key"))?;
                SubjectKeyIdentifier::try_from(spki.owned_to_ref()).map_err(self::der("issuer key identifier"))?.0
            }
        };
        Ok(Self { name, key_id })
    }
}

/// The subject in order, one attribute per RDN, PrintableString where the text allows (unless
/// `utf8`), as the rcgen path writes it.
fn name(subject: &[(String, String)], utf8: bool) -> Result<Name, MintError> {
    let mut rdns = Vec::with_capacity(subject.len());
    for (key, value) in subject {
        let oid = match key.as_str() {
            "CN" => rfc4519::CN,
            "O" => rfc4519::O,
            "OU" => rfc4519::OU,
            "C" => rfc4519::C,
            "L" => rfc4519::L,
            "ST" => rfc4519::ST,
            other => return Err(MintError::SubjectAttribute { key: other.to_owned() }),
        };
        let value = match PrintableStringRef::new(value) {
            Ok(printable) if !utf8 => Any::encode_from(&printable),
            _ => Utf8StringRef::new(value).and_then(|text| Any::encode_from(&text)),
        }
        .map_err(|source| MintError::SubjectValue { key: key.clone(), source })?;
        let rdn = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }]).map_err(der("subject"))?;
        rdns.push(RelativeDistinguishedName(rdn));
    }
    Ok(RdnSequence(rdns))
}

/// UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280; the builder picks UTCTime).
fn x509_time(at: time::OffsetDateTime) -> Result<Time, MintError> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let year = u16::try_from(at.year()).map_err(|_| MintError::Year { year: at.year() })?;
    let date = x509_cert::der::DateTime::new(year, at.month().into(), at.day(), at.hour(), at.minute(), at.second())
        .map_err(der("validity"))?;
    Ok(Time::GeneralTime(GeneralizedTime::from_date_time(date)))
}

/// A DER error of the certificate's `what`.
fn der(what: &'static str) -> impl Fn(x509_cert::der::Error) -> MintError {
    move |source| MintError::Der { what, source }
}

fn key_usage(usage: KeyUsage) -> KeyUsages {
    match usage {
        KeyUsage::DigitalSignature => KeyUsages::DigitalSignature,
        KeyUsage::KeyEncipherment => KeyUsages::KeyEncipherment,
        KeyUsage::KeyAgreement => KeyUsages::KeyAgreement,
        KeyUsage::KeyCertSign => KeyUsages::KeyCertSign,
        KeyUsage::CrlSign => KeyUsages::CRLSign,
    }
}

fn extended_key_usage(usage: ExtendedKeyUsage) -> ObjectIdentifier {
    match usage {
        ExtendedKeyUsage::ServerAuth => rfc5280::ID_KP_SERVER_AUTH,
        ExtendedKeyUsage::ClientAuth => rfc5280::ID_KP_CLIENT_AUTH,
        ExtendedKeyUsage::CodeSigning => rfc5280::ID_KP_CODE_SIGNING,
    }
}

/// An extension written non-critical: x509-cert marks extendedKeyUsage critical, rcgen and
/// public CAs do not.
struct NonCritical<T>(T);

impl<T: AssociatedOid> AssociatedOid for NonCritical<T> {
    const OID: ObjectIdentifier = T::OID;
}

impl<T: Encode> Encode for NonCritical<T> {
    fn encoded_len(&self) -> x509_cert::der::Result<x509_cert::der::Length> {
        self.0.encoded_len()
    }

    fn encode(&self, writer: &mut impl x509_cert::der::Writer) -> x509_cert::der::Result<()> {
        self.0.encode(writer)
    }
}

impl<T: AssociatedOid + Encode> AsExtension for NonCritical<T> {
    fn critical(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
        false
    }
}
