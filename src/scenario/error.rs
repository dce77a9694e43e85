//! What can be wrong with a scenario beyond its certificates (those are [`SpecError`]s): its
//! date, TLS versions, tags, faults, start state and expectations.

use std::path::PathBuf;

use crate::firmware::start::StartState;
use crate::outcome::OutcomeClass;
use crate::pki::{SpecError, TimeError};
use crate::toml_source::Location;

use super::fault::FaultError;

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Its syntax or one of its certificates (shared with the lab PKI's file).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A value only scenarios have.
    #[error("{location}: {kind}")]
    Invalid { location: Location, kind: ScenarioErrorKind },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

impl ScenarioError {
    /// Where the problem is, when it is in a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Spec(err) => Some(&err.location),
            Self::Invalid { location, .. } => Some(location),
            Self::Read { .. } => None,
        }
    }
}

/// The kinds of [`ScenarioError::Invalid`]; tests match these, never the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioErrorKind {
    #[error("invalid date: {0}")]
    Date(#[source] TimeError),
    #[error("tls = \"{text}\" is not \"1.2\", \"1.3\" or \"1.2+1.3\"")]
    TlsVersions { text: String },
    #[error("tag `{tag}` is not lowercase letters, digits and `-`")]
    Tag { tag: String },
    #[error("tag `{tag}` is given twice")]
    DuplicateTag { tag: String },
    #[error("invalid fault: {0}")]
    Fault(#[source] FaultError),
    #[error("start slot \"{slot}\" is not one of {}", quoted(&StartState::SLOT_NAMES))]
    StartSlot { slot: String },
    #[error("start state \"{state}\": the factory app has no otadata entry")]
    FactoryStartState { state: String },
    #[error("start state \"{state}\" is not one of {}", quoted(&StartState::STATE_NAMES.map(|(name, _)| name)))]
    StartState { state: String },
    #[error("image `{image}` is not a firmware id (letters, digits, `-`, `_`, `.`; not starting with `.`)")]
    ImageId { image: String },
    #[error("tls-verify needs a reason")]
    NoReason,
    #[error("`{outcome}` takes no reason")]
    Reason { outcome: OutcomeClass },
    #[error("an expectation's source is empty (say how it was derived)")]
    EmptySource,
    #[error("an expectation rule needs a source (`source = \"derived: ...\"`)")]
    NoSource,
    #[error("idf = \"{text}\" is not a range of ESP-IDF releases (e.g. \">=4.4, <6.0\")")]
    IdfRange { text: String },
    #[error("trusts = \"{name}\" names no lab authority")]
    UnknownTrusted { name: String },
    #[error("firmware `{firmware}` is matched by this rule and by the rule at {first}")]
    AmbiguousExpectation { firmware: String, first: Location },
    #[error("this rule matches no member of the fleet without its own entry")]
    UnusedRule,
}

/// `"a", "b", "c"`.
fn quoted(names: &[&str]) -> String {
    names.iter().map(|name| format!("\"{name}\"")).collect::<Vec<_>>().join(", ")
}
