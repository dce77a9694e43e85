//! What can be wrong with a certificate specification or the lab PKI on disk, and what can go
//! wrong making a key or a certificate.

use std::path::PathBuf;

use super::spec::{KeyType, SignatureHash};
use crate::toml_source::{Location, ShapeError};

/// A problem in a TOML file, at a place in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct SpecError {
    pub location: Location,
    pub kind: SpecErrorKind,
}

/// The kinds of [`SpecError`]; tests match these, never the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecErrorKind {
    /// Syntax, an unknown key, a value of the wrong type.
    #[error("{message}")]
    Shape { message: String },
    #[error("unknown certificate `{name}`")]
    UnknownCertificate { name: String },
    #[error("reference cycle: {}", names.join(" -> "))]
    Cycle { names: Vec<String> },
    #[error("validity ends before it starts")]
    InvertedValidity,
    #[error("invalid validity: {0}")]
    Validity(#[source] TimeError),
    #[error("invalid validity: {count} dates, not two ([from, to])")]
    ValidityCount { count: usize },
    #[error("key `{key}` differs from `{other}`'s key `{other_key}`, which `same_key_as` shares")]
    KeyMismatch { key: &'static str, other: String, other_key: &'static str },
    #[error("missing `{field}`")]
    Missing { field: &'static str },
    #[error("invalid subject: {0}")]
    Subject(#[source] SubjectError),
    #[error("`{text}` is not an IP address")]
    Address { text: String },
    #[error("`{text}` is not a hex serial number")]
    Serial { text: String },
    #[error("`{name}` is defined twice")]
    Duplicate { name: String },
}

/// A date or time that is neither `YYYY-MM-DD` nor RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a date (YYYY-MM-DD) or an RFC 3339 time")]
pub struct TimeError {
    pub text: String,
}

/// A subject that is not `KEY=value, ...` of known attributes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("`{part}` is not KEY=value")]
    NotKeyValue { part: String },
    #[error("unknown attribute `{key}` (known: CN, O, OU, C, L, ST)")]
    UnknownAttribute { key: String },
}

impl From<ShapeError> for SpecError {
    fn from(err: ShapeError) -> Self {
        SpecError { location: err.location, kind: SpecErrorKind::Shape { message: err.message } }
    }
}

/// A problem making, reading or writing lab certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// A committed certificate file holds no PEM certificate.
    #[error("{path}: no PEM CERTIFICATE block")]
    NotPem { path: PathBuf },
    /// A committed certificate that does not parse as X.509.
    #[error("`{name}`: the committed certificate does not parse")]
    Unreadable { name: String },
    #[error("`{name}` is not generated yet")]
    NotGenerated { name: String },
    #[error("`{name}`: {what} cannot be generated yet")]
    Unsupported { name: String, what: Unsupported },
    #[error("`{name}`: {source}")]
    Generate { name: String, source: MintError },
    #[error("unknown certificate `{name}`")]
    Unknown { name: String },
    /// No re-mint of `name` (serial length and padding tuned) is exactly `target` bytes of DER.
    #[error("`{name}` cannot be re-minted to exactly {target} bytes of DER (its shortest form takes {shortest})")]
    NoFit { name: String, target: usize, shortest: usize },
}

/// A certificate the lab cannot make yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// rcgen signs nothing with SHA-1 (the RustCrypto path does).
    Sha1WithRcgen,
    /// No signature algorithm for this key and hash.
    Signature { key: KeyType, hash: SignatureHash },
    /// The key has no natural signature algorithm.
    Key { key: KeyType },
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
    #[error("no randomness: {0}")]
    Randomness(#[source] aws_lc_rs::error::Unspecified),
    #[error("cannot generate a key: {0}")]
    NewKey(#[source] rcgen::Error),
    #[error("cannot generate an RSA key: {0}")]
    NewRsaKey(#[source] rsa::Error),
    /// rcgen (aws-lc-rs) cannot hold an RSA key under 2048 bits; `new_key_pem` makes one.
    #[error("rcgen cannot hold an RSA-1024 key")]
    RcgenRsa1024,
    #[error("cannot encode the key: {0}")]
    EncodeKey(#[source] rsa::pkcs8::Error),
    #[error("cannot load the signing key: {0}")]
    SigningKey(#[source] rcgen::Error),
    #[error("cannot load the signing key: {0}")]
    RsaSigningKey(#[source] rsa::pkcs8::Error),
    #[error("cannot load the subject key: {0}")]
    SubjectKey(#[source] rcgen::Error),
    #[error("not an RSA PKCS#8 key: {0}")]
    NotRsaKey(#[source] rsa::pkcs8::Error),
    #[error("the public key: {0}")]
    PublicKey(#[source] rsa::pkcs8::spki::Error),
    #[error("unknown subject attribute {key}")]
    SubjectAttribute { key: String },
    #[error("subject {key}: {source}")]
    SubjectValue { key: String, source: x509_cert::der::Error },
    #[error("`{name}` is not a DNS name")]
    DnsName { name: String },
    #[error("year {year} out of range")]
    Year { year: i32 },
    /// A DER value of the certificate (`what`) that could not be decoded or encoded.
    #[error("{what}: {source}")]
    Der { what: &'static str, source: x509_cert::der::Error },
    #[error("issuer certificate unusable: no CERTIFICATE block")]
    IssuerNotPem,
    #[error("issuer certificate unusable: {0}")]
    IssuerParse(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    #[error("issuer certificate unusable: its subject does not re-encode byte for byte")]
    IssuerSubject,
    #[error("issuer certificate unusable: {0}")]
    Issuer(#[source] rcgen::Error),
    #[error("cannot build the certificate: {0}")]
    Build(#[source] x509_cert::builder::Error),
    #[error("cannot sign: {0}")]
    Sign(#[source] rcgen::Error),
    #[error("made an unreadable certificate: {0}")]
    Unreadable(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
}
