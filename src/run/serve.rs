//! A cell's update server: the scenario's chains, image and fault on a free loopback port, and
//! the lab network that sends the firmware's update hosts there.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::pki::{LabPki, PkiError};
use crate::scenario::Scenario;
use crate::server::{ServeConfig, ServerError, ServerEvent, UpdateServer};
use crate::twin::network::LabNetwork;

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the scenario's chain: {0}")]
    Chain(#[from] PkiError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A running update server; stops when dropped.
pub struct CellServer {
    addr: SocketAddr,
    names: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    events: mpsc::UnboundedReceiver<ServerEvent>,
}

impl CellServer {
    /// Starts the scenario's server on `runtime`, offering `image` at `path` (the OTA URL's).
    pub fn start(
        runtime: &Handle,
        scenario: &Scenario,
        pki: &LabPki,
        image: Arc<[u8]>,
        path: &str,
    ) -> Result<Self, ServeError> {
        let config = ServeConfig::for_scenario(scenario, pki, image, path)?;
        let names = config.hosts.iter().map(|h| h.name.to_ascii_lowercase()).collect();
        let server = runtime.block_on(UpdateServer::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config))?;
        let addr = server.local_addr();
        let (sender, events) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(server.run(sender, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, names, stop: Some(stop), events })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The lab network of a device that updates from `ota_url`: its host and every host the
    /// scenario serves by SNI resolve to this server; SNTP answers with `sntp_time`.
    pub fn network(&self, ota_url: &str, sntp_time: i64) -> LabNetwork {
        let mut hosts = BTreeMap::new();
        if let Some(host) = url_host(ota_url) {
            hosts.insert(host, self.addr);
        }
        for name in &self.names {
            hosts.insert(name.clone(), self.addr);
        }
        LabNetwork { hosts, sntp_time: Some(sntp_time) }
    }

    /// What happened on the server's connections so far.
    pub fn events(&mut self) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }
}

impl Drop for CellServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The host of an `http(s)://` URL, lowercase, without port or credentials.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The path of a URL (with its query), `/` when it has none.
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(at) => rest[at..].split('#').next().unwrap_or("/").to_owned(),
        None => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_and_path() {
        let check = |url: &str, host: Option<&str>, path: &str| {
            assert_eq!((url_host(url).as_deref(), url_path(url).as_str()), (host, path), "{url}");
        };
        check("https://ota.example.com/firmware.bin", Some("ota.example.com"), "/firmware.bin");
        check("https://OTA.Example.com:8443/fw/v2.bin?x=1", Some("ota.example.com"), "/fw/v2.bin?x=1");
        check("https://user:pw@ota.example.com", Some("ota.example.com"), "/");
        check("https://[2001:db8::1]:443/a", Some("2001:db8::1"), "/a");
        check("https:///nohost", None, "/nohost");
    }
}
