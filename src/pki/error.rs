//! What can be wrong with a certificate specification or the lab PKI on disk, and what can go
//! wrong making a key or a certificate.

use std::path::PathBuf;

use super::spec::{KeyType, SignatureHash};
use crate::toml_source::{Location, ShapeError};

/// A problem in a TOML file, at a place in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct SpecError {
    /// `file:line:column` of the offending value.
    pub location: Location,
    /// What is wrong with it.
    pub kind: SpecErrorKind,
}

/// The kinds of [`SpecError`]; tests match these, never the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecErrorKind {
    /// Syntax, an unknown key, a value of the wrong type.
    #[error("{message}")]
    Shape {
        /// What the TOML reader says.
        message: String,
    },
    /// An `issuer`, `same_key_as` or chain entry that names no certificate known here.
    #[error("unknown certificate `{name}`")]
    UnknownCertificate {
        /// The name as written.
        name: String,
    },
    /// Certificates that name each other through `issuer` or `same_key_as` in a loop.
    #[error("reference cycle: {}", names.join(" -> "))]
    Cycle {
        /// The loop, its first name repeated at the end.
        names: Vec<String>,
    },
    /// A `valid = [from, to]` with `to` before `from`.
    #[error("validity ends before it starts")]
    InvertedValidity,
    /// A `valid` date that does not read.
    #[error("invalid validity: {0}")]
    Validity(#[source] TimeError),
    /// A `valid` that is not exactly two dates.
    #[error("invalid validity: {count} dates, not two ([from, to])")]
    ValidityCount {
        /// How many dates it gives.
        count: usize,
    },
    /// A `key` other than that of the certificate `same_key_as` names.
    #[error("key `{key}` differs from `{other}`'s key `{other_key}`, which `same_key_as` shares")]
    KeyMismatch {
        /// The key type written here (as [`KeyType::as_str`] names it).
        key: &'static str,
        /// The certificate whose key this one shares.
        other: String,
        /// That certificate's key type.
        other_key: &'static str,
    },
    /// A required key that is absent or empty (a spec's `subject`, `key` or `valid`, a served
    /// `chain`, a manifest's).
    #[error("missing `{field}`")]
    Missing {
        /// The key's name.
        field: &'static str,
    },
    /// A `subject` that does not read.
    #[error("invalid subject: {0}")]
    Subject(#[source] SubjectError),
    /// An `ip` entry that is not an IPv4 or IPv6 address.
    #[error("`{text}` is not an IP address")]
    Address {
        /// The value as written.
        text: String,
    },
    /// A `serial` that is not an even number of hex digits (colons allowed).
    #[error("`{text}` is not a hex serial number")]
    Serial {
        /// The value as written.
        text: String,
    },
    /// Two certificates of one name (in a file, or a scenario's beside a lab authority).
    #[error("`{name}` is defined twice")]
    Duplicate {
        /// The name.
        name: String,
    },
}

/// A date or time that is neither `YYYY-MM-DD` nor RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a date (YYYY-MM-DD) or an RFC 3339 time")]
pub struct TimeError {
    /// The value as written.
    pub text: String,
}

/// A subject that is not `KEY=value, ...` of known attributes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// A comma-separated part without `=`.
    #[error("`{part}` is not KEY=value")]
    NotKeyValue {
        /// The part as written.
        part: String,
    },
    /// An attribute other than CN, O, OU, C, L and ST.
    #[error("unknown attribute `{key}` (known: CN, O, OU, C, L, ST)")]
    UnknownAttribute {
        /// The attribute as written.
        key: String,
    },
}

impl From<ShapeError> for SpecError {
    fn from(err: ShapeError) -> Self {
        SpecError { location: err.location, kind: SpecErrorKind::Shape { message: err.message } }
    }
}

/// A problem making, reading or writing lab certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// `authorities.toml` does not check.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A file of the PKI cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate, key or directory cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A committed certificate file holds no PEM certificate.
    #[error("{path}: no PEM CERTIFICATE block")]
    NotPem {
        /// The certificate file.
        path: PathBuf,
    },
    /// A committed certificate that does not parse as X.509.
    #[error("`{name}`: the committed certificate does not parse")]
    Unreadable {
        /// The certificate's name.
        name: String,
    },
    /// A certificate or key that `authorities.toml` specifies but that is not on disk
    /// (`otarig pki generate` makes it).
    #[error("`{name}` is not generated yet")]
    NotGenerated {
        /// The certificate's name, or the key's owner.
        name: String,
    },
    /// A spec the lab cannot make.
    #[error("`{name}`: {what} cannot be generated yet")]
    Unsupported {
        /// The certificate's name.
        name: String,
        /// What about it cannot be made.
        what: Unsupported,
    },
    /// Making a key or a certificate failed.
    #[error("`{name}`: {source}")]
    Generate {
        /// The certificate's name.
        name: String,
        /// What failed.
        source: MintError,
    },
    /// A name that is no lab authority.
    #[error("unknown certificate `{name}`")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// No re-mint of `name` (serial length and padding tuned) is exactly `target` bytes of DER.
    #[error("`{name}` cannot be re-minted to exactly {target} bytes of DER (its shortest form takes {shortest})")]
    NoFit {
        /// The certificate's name.
        name: String,
        /// The length wanted, in bytes of DER.
        target: usize,
        /// The shortest length a re-mint reaches, in bytes of DER.
        shortest: usize,
    },
}

/// A certificate the lab cannot make yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// rcgen signs nothing with SHA-1 (the RustCrypto path does).
    Sha1WithRcgen,
    /// No signature algorithm for this key and hash.
    Signature {
        /// The issuer's key type.
        key: KeyType,
        /// The hash asked for.
        hash: SignatureHash,
    },
    /// The key has no natural signature algorithm.
    Key {
        /// The issuer's key type.
        key: KeyType,
    },
    /// The padding extension needs rcgen, which signs neither with SHA-1 nor by RSA-1024 keys.
    LegacyPadding,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sha1WithRcgen => write!(f, "SHA-1 signatures with rcgen"),
            Self::Signature { key, hash } => write!(f, "{hash:?} signatures with a {} key", key.as_str()),
            Self::Key { key } => write!(f, "signatures with a {} key", key.as_str()),
            Self::LegacyPadding => write!(f, "padding a certificate signed with SHA-1 or by an RSA-1024 key"),
        }
    }
}

/// Why a key or a certificate could not be made (rcgen, or RustCrypto for what rcgen cannot).
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The system's random source failed (for a serial number).
    #[error("no randomness: {0}")]
    Randomness(#[source] aws_lc_rs::error::Unspecified),
    /// rcgen cannot generate the key.
    #[error("cannot generate a key: {0}")]
    NewKey(#[source] rcgen::Error),
    /// RustCrypto cannot generate the RSA-1024 key.
    #[error("cannot generate an RSA key: {0}")]
    NewRsaKey(#[source] rsa::Error),
    /// rcgen (aws-lc-rs) cannot hold an RSA key under 2048 bits; `new_key_pem` makes one.
    #[error("rcgen cannot hold an RSA-1024 key")]
    RcgenRsa1024,
    /// A generated RSA key cannot be written as PKCS#8 PEM.
    #[error("cannot encode the key: {0}")]
    EncodeKey(#[source] rsa::pkcs8::Error),
    /// rcgen cannot load the issuer's key for the signature algorithm.
    #[error("cannot load the signing key: {0}")]
    SigningKey(#[source] rcgen::Error),
    /// RustCrypto cannot load the issuer's RSA key.
    #[error("cannot load the signing key: {0}")]
    RsaSigningKey(#[source] rsa::pkcs8::Error),
    /// The certified key's PEM cannot be loaded.
    #[error("cannot load the subject key: {0}")]
    SubjectKey(#[source] rcgen::Error),
    /// A key the RustCrypto path needs as RSA is not an RSA PKCS#8 key.
    #[error("not an RSA PKCS#8 key: {0}")]
    NotRsaKey(#[source] rsa::pkcs8::Error),
    /// An RSA public key cannot be encoded as SubjectPublicKeyInfo.
    #[error("the public key: {0}")]
    PublicKey(#[source] rsa::pkcs8::spki::Error),
    /// A subject attribute the RustCrypto path has no OID for.
    #[error("unknown subject attribute {key}")]
    SubjectAttribute {
        /// The attribute (`CN`, `O`, ...).
        key: String,
    },
    /// A subject value that cannot be encoded as its string type.
    #[error("subject {key}: {source}")]
    SubjectValue {
        /// The attribute.
        key: String,
        /// The DER encoder's error.
        source: x509_cert::der::Error,
    },
    /// A `dns` entry that cannot be encoded as a `dNSName`.
    #[error("`{name}` is not a DNS name")]
    DnsName {
        /// The name as written.
        name: String,
    },
    /// A validity date whose year X.509 time cannot hold.
    #[error("year {year} out of range")]
    Year {
        /// The year.
        year: i32,
    },
    /// A DER value of the certificate (`what`) that could not be decoded or encoded.
    #[error("{what}: {source}")]
    Der {
        /// The value (`subject public key`, `issuer public key`, ...).
        what: &'static str,
        /// The DER codec's error.
        source: x509_cert::der::Error,
    },
    /// The issuer's PEM holds no certificate.
    #[error("issuer certificate unusable: no CERTIFICATE block")]
    IssuerNotPem,
    /// The issuer's certificate does not parse as X.509.
    #[error("issuer certificate unusable: {0}")]
    IssuerParse(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// The issuer's subject would change when re-encoded, so the issued certificate's issuer
    /// name would not match it byte for byte.
    #[error("issuer certificate unusable: its subject does not re-encode byte for byte")]
    IssuerSubject,
    /// rcgen cannot take the issuer's certificate.
    #[error("issuer certificate unusable: {0}")]
    Issuer(#[source] rcgen::Error),
    /// The RustCrypto builder cannot build the certificate.
    #[error("cannot build the certificate: {0}")]
    Build(#[source] x509_cert::builder::Error),
    /// rcgen cannot sign the certificate.
    #[error("cannot sign: {0}")]
    Sign(#[source] rcgen::Error),
    /// The certificate made does not parse back as X.509.
    #[error("made an unreadable certificate: {0}")]
    Unreadable(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
}
