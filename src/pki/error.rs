//! What can be wrong with a certificate specification or the lab PKI on disk.

use std::path::PathBuf;

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
    #[error("invalid validity: {message}")]
    Validity { message: String },
    #[error("key `{key}` differs from `{other}`'s key `{other_key}`, which `same_key_as` shares")]
    KeyMismatch { key: &'static str, other: String, other_key: &'static str },
    #[error("missing `{field}`")]
    Missing { field: &'static str },
    #[error("invalid subject: {message}")]
    Subject { message: String },
    #[error("`{text}` is not an IP address")]
    Address { text: String },
    #[error("`{text}` is not a hex serial number")]
    Serial { text: String },
    #[error("`{name}` is defined twice")]
    Duplicate { name: String },
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
    #[error("{path}: not a usable {what}: {message}")]
    Corrupt { path: PathBuf, what: &'static str, message: String },
    #[error("`{name}` is not generated yet (run `otarig pki generate`)")]
    NotGenerated { name: String },
    #[error("`{name}`: {what} cannot be generated yet")]
    Unsupported { name: String, what: String },
    #[error("`{name}`: {message}")]
    Generate { name: String, message: String },
    #[error("unknown certificate `{name}`")]
    Unknown { name: String },
    /// No re-mint of `name` (serial length and padding tuned) is exactly `target` bytes of DER.
    #[error("`{name}` cannot be re-minted to exactly {target} bytes of DER (its shortest form takes {shortest})")]
    NoFit { name: String, target: usize, shortest: usize },
}
