//! What a cell's detail can show beyond its result line: the update server's events and the
//! chain it served, with the device's clock to judge validity windows against.

use serde::{Deserialize, Serialize};

/// One certificate the server sent, as the chain picture draws it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCert {
    /// Subject, as mbedTLS prints a distinguished name.
    pub subject: String,
    /// Issuer, as mbedTLS prints it.
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

/// A cell's server events and served chain. Empty when the results carry none; the HTML
/// report shows a section only for what is there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellDetails {
    /// The update server's events for the cell, one line each, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_events: Vec<String>,
    /// The certificates served, in the order sent (leaf first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainCert>,
    /// The device's clock during the handshake, Unix seconds (the scenario's date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_clock: Option<i64>,
}

impl CellDetails {
    /// Nothing was recorded (an `error` cell, or a cell that never met the server).
    pub fn is_empty(&self) -> bool {
        self.server_events.is_empty() && self.chain.is_empty() && self.device_clock.is_none()
    }
}

/// What a cell's scenario says about itself: its title, the date it stands at and its tags.
/// The fleet summary orders and groups certificate events by them; results written without
/// them read as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioFacts {
    /// The scenario's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_title: Option<String>,
    /// The real-world day the scenario stands at, `YYYY-MM-DD` (its `date`, in UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_date: Option<String>,
    /// The scenario's tags, as its file lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenario_tags: Vec<String>,
}
