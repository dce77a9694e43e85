//! The lab network as the firmware inside a twin sees it: a DNS map that sends the firmware's
//! OTA host name to the rig's update server, and the time an SNTP server answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Name resolution and time service for one twin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabNetwork {
    /// Host name → address. The port replaces the URL's (443 for `https://`): the rig's server
    /// listens on a free port of 127.0.0.1. A name not in the map does not resolve.
    pub hosts: BTreeMap<String, SocketAddr>,
    /// What the lab's SNTP server answers (Unix seconds; the scenario's date); `None`: no
    /// SNTP server answers, and firmware that waits for the time keeps its unset clock.
    pub sntp_time: Option<i64>,
}

impl LabNetwork {
    /// Where `host` resolves.
    pub fn resolve(&self, host: &str) -> Option<SocketAddr> {
        self.hosts.get(&host.to_ascii_lowercase()).copied()
    }
}
