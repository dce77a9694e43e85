//! Scenario files as written: private shapes that refuse unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::expect::RawExpect;
use super::{Fault, ScenarioErrorKind};
use crate::firmware::start::StartState;
use crate::pki::spec::{RawCert, RawCerts};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub title: String,
    pub date: Spanned<String>,
    /// Labels for choosing scenarios (`otarig run --tag`), e.g. `["chain", "fault"]`.
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    pub leaf: Option<Spanned<RawCert>>,
    #[serde(default)]
    pub certs: RawCerts,
    pub server: RawServer,
    #[serde(skip)]
    pub(crate) server_span: usize,
    /// What happens to the device during the update (a power cut).
    pub device: Option<RawDevice>,
    #[serde(default)]
    pub expect: RawExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub chain: Vec<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub tls: Option<Spanned<String>>,
    /// The most plaintext bytes in a record of the response (`ssl_buffer_size`).
    pub record_size: Option<Spanned<u32>>,
    pub fault: Option<Spanned<Fault>>,
    /// Other host names the server answers for (by SNI), e.g. a redirect's target.
    #[serde(default)]
    pub hosts: BTreeMap<String, Spanned<RawHost>>,
}

/// `[device]`: the state the device starts in, and device-side faults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevice {
    /// `{ slot = "ota_0", state = "valid" }`.
    pub start: Option<Spanned<RawStart>>,
    /// `{ after-bytes = N }`, `"otadata-write"` or `{ otadata-bytes = N }`.
    pub power_cut: Option<Spanned<crate::firmware::start::PowerCut>>,
}

/// `start = { slot = ..., state = ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStart {
    pub slot: Option<Spanned<String>>,
    pub state: Option<Spanned<String>>,
}

impl RawStart {
    /// The start state, or where the value at fault starts and what is wrong with it.
    pub fn check(&self, at: usize) -> Result<StartState, (usize, ScenarioErrorKind)> {
        let slot = self.slot.as_ref().map_or("factory", |s| s.get_ref().as_str());
        if !StartState::SLOT_NAMES.contains(&slot) {
            let at = self.slot.as_ref().map_or(at, |s| s.span().start);
            return Err((at, ScenarioErrorKind::StartSlot { slot: slot.to_owned() }));
        }
        let state = self.state.as_ref().map(|s| (s.get_ref().as_str(), s.span().start));
        if let Some((name, at)) = state {
            if slot == "factory" {
                return Err((at, ScenarioErrorKind::FactoryStartState { state: name.to_owned() }));
            }
            if !StartState::STATE_NAMES.iter().any(|(known, _)| *known == name) {
                return Err((at, ScenarioErrorKind::StartState { state: name.to_owned() }));
            }
        }
        let name = state.map(|(name, _)| name);
        StartState::from_names(slot, name)
            .ok_or_else(|| (at, ScenarioErrorKind::StartState { state: name.unwrap_or_default().to_owned() }))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub chain: Vec<Spanned<String>>,
    pub path: Option<String>,
    pub fault: Option<Spanned<Fault>>,
}
