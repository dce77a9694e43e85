//! A cell's update server: the scenario's chains, image and fault on a loopback port (twins) or
//! routed to from the lab's shared listener on `[server] listen` (boards), and the lab network
//! that sends a twin's update hosts there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::firmware::profile::KnownBuild;
use crate::firmware::start::PowerCut;
use crate::firmware::{FirmwareManifest, OtaUrl};
use crate::pki::{LabPki, PkiError};
use crate::scenario::{Scenario, ServedChain};
use crate::server::{
    HostConfig, RouteGuard, ServeConfig, ServerError, ServerEvent, SharedListener, Site, UpdateServer,
};
use crate::twin::network::{LabNetwork, TimeService};

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The scenario's chain cannot be made (a lab certificate missing, a mint failing).
    #[error("the scenario's chain: {0}")]
    Chain(#[from] PkiError),
    /// The server cannot start.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A scenario's served chains (its own certificates minted once), for every cell of a run.
#[derive(Clone, Debug)]
pub struct ScenarioChains {
    default: ServedChain,
    hosts: Vec<(String, ServedChain)>,
}

impl ScenarioChains {
    pub(crate) fn mint(scenario: &Scenario, pki: &LabPki) -> Result<Self, ServeError> {
        let (default, hosts) = ServedChain::build_all(scenario, pki)?;
        Ok(Self { default, hosts })
    }

    /// The main host's chain as the report draws it: each certificate's names and validity.
    pub(crate) fn drawn(&self) -> Vec<crate::results::ChainCert> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        self.default
            .ders()
            .iter()
            .filter_map(|der| {
                let (_, cert) = X509Certificate::from_der(der).ok()?;
                let validity = cert.validity();
                Some(crate::results::ChainCert {
                    subject: cert.subject().to_string(),
                    issuer: cert.issuer().to_string(),
                    not_before: validity.not_before.timestamp(),
                    not_after: validity.not_after.timestamp(),
                })
            })
            .collect()
    }

    /// The server's configuration for one cell: `image` at `path` (the firmware's OTA URL's
    /// path) on the main host, the scenario's other hosts with their own paths and faults.
    pub fn config(&self, scenario: &Scenario, image: Arc<[u8]>, path: &str) -> ServeConfig {
        let hosts = scenario
            .hosts
            .iter()
            .zip(&self.hosts)
            .map(|(route, (name, chain))| HostConfig {
                name: name.clone(),
                chain: chain.clone(),
                path: route.path.clone().unwrap_or_else(|| path.to_owned()),
                fault: route.fault.clone(),
            })
            .collect();
        ServeConfig {
            chain: self.default.clone(),
            tls: scenario.tls,
            record_size: scenario.record_size.map(|size| size as usize),
            image,
            path: path.to_owned(),
            fault: scenario.fault.clone(),
            hosts,
        }
    }
}

/// What a device is given for a cell, apart from the server's port: the firmware it is flashed
/// with, the host names its lab network sends to the update server (the OTA URL's host and the
/// scenario's other hosts), what SNTP answers (the scenario's date) and the power cut armed for
/// its update. Cells with equal setups and no power cut can run one after the other on the same
/// twin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The host names sent to the update server, lowercase.
    pub hosts: BTreeSet<String>,
    /// What SNTP answers: the scenario's date, in Unix seconds.
    pub sntp_time: i64,
    /// The power cut armed for the update, if the scenario has one.
    pub power_cut: Option<PowerCut>,
    /// What the fleet states about the real builds the device may boot in the cell (the
    /// firmware and the update offered), which their images cannot say.
    pub builds: Vec<KnownBuild>,
}

impl Setup {
    /// The setup of a cell of `firmware` (updating from `url`) against `scenario`.
    pub fn for_cell(firmware: &FirmwareManifest, url: &OtaUrl, scenario: &Scenario, builds: Vec<KnownBuild>) -> Self {
        let hosts = std::iter::once(url.host.clone())
            .chain(scenario.hosts.iter().map(|h| h.name.to_ascii_lowercase()))
            .collect();
        Self {
            firmware: firmware.id.clone(),
            hosts,
            sntp_time: scenario.date.unix_timestamp(),
            power_cut: scenario.power_cut,
            builds,
        }
    }

    /// The lab network with every host at `server`.
    pub fn network(&self, server: SocketAddr) -> LabNetwork {
        let hosts: BTreeMap<String, SocketAddr> = self.hosts.iter().map(|h| (h.clone(), server)).collect();
        LabNetwork { hosts, time: TimeService::Answers(self.sntp_time), address: None }
    }
}

/// A running update server; stops accepting when dropped, or when [`CellServer::close`]d.
pub(crate) struct CellServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    accepting: Option<JoinHandle<()>>,
    /// A server on the lab's shared listener: its route there.
    route: Option<RouteGuard>,
    events: mpsc::UnboundedReceiver<ServerEvent>,
}

impl CellServer {
    /// Starts a server on loopback `port` (0: any free port) on `runtime`.
    pub fn start(runtime: &Handle, config: ServeConfig, port: u16) -> Result<Self, ServeError> {
        let server = runtime.block_on(UpdateServer::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), config))?;
        let addr = server.local_addr();
        let (sender, events) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let accepting = runtime.spawn(server.run(sender, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop: Some(stop), accepting: Some(accepting), route: None, events })
    }

    /// Serves `config` to the connections the lab's `listener` gets from `from` (a board's
    /// address; `None`: from any address no other cell's route names).
    pub(crate) fn routed(
        listener: &SharedListener,
        from: Option<IpAddr>,
        config: ServeConfig,
    ) -> Result<Self, ServeError> {
        let site = Site::new(config)?;
        let (sender, events) = mpsc::unbounded_channel();
        let route = listener.route(from, site, sender);
        Ok(Self { addr: listener.local_addr(), stop: None, accepting: None, route: Some(route), events })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What happened on the server's connections so far.
    pub fn events(&mut self) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }

    /// Stops accepting and returns once the listening socket is closed, so the next cell's
    /// server can listen on the same port (or its route on the shared listener is gone).
    pub(crate) fn close(mut self, runtime: &Handle) {
        self.route = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(accepting) = self.accepting.take() {
            let _ = runtime.block_on(accepting);
        }
    }
}

impl Drop for CellServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
