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
    Invalid {
        /// `file:line:column` of the offending value.
        location: Location,
        /// What is wrong with it.
        kind: ScenarioErrorKind,
    },
    /// The file cannot be read (missing, unreadable, over the size limit).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
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
    /// A `date` that is neither an RFC 3339 time nor a `YYYY-MM-DD` date.
    #[error("invalid date: {0}")]
    Date(#[source] TimeError),
    /// A `[server] tls` other than `"1.2"`, `"1.3"` or `"1.2+1.3"`.
    #[error("tls = \"{text}\" is not \"1.2\", \"1.3\" or \"1.2+1.3\"")]
    TlsVersions {
        /// The value as written.
        text: String,
    },
    /// A `[server] record_size` of 0 or past TLS's largest record plaintext (16384).
    #[error("record_size = {size} is not between 1 and 16384")]
    RecordSize {
        /// The value as written.
        size: u32,
    },
    /// A tag with characters outside lowercase letters, digits and `-`, or empty.
    #[error("tag `{tag}` is not lowercase letters, digits and `-`")]
    Tag {
        /// The tag as written.
        tag: String,
    },
    /// A tag given twice.
    #[error("tag `{tag}` is given twice")]
    DuplicateTag {
        /// The tag.
        tag: String,
    },
    /// A fault the server cannot send.
    #[error("invalid fault: {0}")]
    Fault(#[source] FaultError),
    /// A `[device] start` slot that is not `factory`, `ota_0` or `ota_1`.
    #[error("start slot \"{slot}\" is not one of {}", quoted(&StartState::SLOT_NAMES))]
    StartSlot {
        /// The slot as written.
        slot: String,
    },
    /// An otadata state given for the factory app, which has no otadata entry.
    #[error("start state \"{state}\": the factory app has no otadata entry")]
    FactoryStartState {
        /// The state as written.
        state: String,
    },
    /// A `[device] power_cut = { otadata-bytes = N }` past the 32 bytes of an otadata entry.
    #[error("otadata-bytes = {bytes}: an otadata entry has {} bytes", crate::firmware::start::OTADATA_ENTRY_BYTES)]
    OtadataBytes {
        /// The value as written.
        bytes: u8,
    },
    /// A `[device] start` otadata state that ESP-IDF does not name.
    #[error("start state \"{state}\" is not one of {}", quoted(&StartState::STATE_NAMES.map(|(name, _)| name)))]
    StartState {
        /// The state as written.
        state: String,
    },
    /// A `[server] image` that is not a manifest's id (it would name a path).
    #[error("image `{image}` is not a firmware id (letters, digits, `-`, `_`, `.`; not starting with `.`)")]
    ImageId {
        /// The value as written.
        image: String,
    },
    /// A `tls-verify` expectation without the reason the device gives.
    #[error("tls-verify needs a reason")]
    NoReason,
    /// A reason on an outcome other than `tls-verify`.
    #[error("`{outcome}` takes no reason")]
    Reason {
        /// The expected outcome.
        outcome: OutcomeClass,
    },
    /// An expectation whose `source` is empty.
    #[error("an expectation's source is empty (say how it was derived)")]
    EmptySource,
    /// An `[[expect.rule]]` without a `source`.
    #[error("an expectation rule needs a source (`source = \"derived: ...\"`)")]
    NoSource,
    /// A rule's `idf` that is not a range of ESP-IDF releases.
    #[error("idf = \"{text}\" is not a range of ESP-IDF releases (e.g. \">=4.4, <6.0\")")]
    IdfRange {
        /// The value as written.
        text: String,
    },
    /// A rule's `trusts` that names no authority of the lab PKI.
    #[error("trusts = \"{name}\" names no lab authority")]
    UnknownTrusted {
        /// The name as written.
        name: String,
    },
    /// Two rules of one tier match one firmware (reported at the second).
    #[error("firmware `{firmware}` is matched by this rule and by the rule at {first}")]
    AmbiguousExpectation {
        /// The firmware's id.
        firmware: String,
        /// Where the first matching rule is.
        first: Location,
    },
    /// A rule that gives no member of the fleet its expectation.
    #[error("this rule matches no member of the fleet without its own entry")]
    UnusedRule,
}

/// `"a", "b", "c"`.
fn quoted(names: &[&str]) -> String {
    names.iter().map(|name| format!("\"{name}\"")).collect::<Vec<_>>().join(", ")
}
