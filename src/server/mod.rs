//! The HTTPS update server: serves exactly the chain a scenario names, in its order, the image
//! it offers at the OTA URL's path (and nothing else), and the fault it names; reports what
//! happened on each connection as [`ServerEvent`]s. A `Site` is one scenario's server; an
//! [`UpdateServer`] listens for one site, a [`SharedListener`] for the sites of many boards.

mod event;
mod http;
mod legacy_key;
mod shared;
mod tls;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, StartHandshake};

pub use event::ServerEvent;
pub(crate) use http::{REQUEST_TIMEOUT, read_request};
pub(crate) use shared::RouteGuard;
pub use shared::SharedListener;

use crate::scenario::{Fault, ServedChain, TlsVersions};

/// How long a TLS handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections a site serves at once. Past it, a new connection takes the place of
/// the oldest one that has not sent its ClientHello yet (idle connections are shed first), or
/// is closed when every connection is under way.
pub const MAX_CONNECTIONS: usize = 256;
/// How long an accept loop waits after `accept` fails (out of file descriptors, say), so a
/// failing accept does not spin.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the server serves.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The certificates sent, in order, and the key of the first; for any host name that no
    /// entry of `hosts` names.
    pub chain: ServedChain,
    /// The TLS versions offered.
    pub tls: TlsVersions,
    /// The most plaintext bytes in one record of a response; `None`: 16384.
    pub record_size: Option<usize>,
    /// The image's bytes.
    pub image: Arc<[u8]>,
    /// The path of the OTA URL, e.g. `/firmware.bin`.
    pub path: String,
    /// What the server does wrong, on purpose; `None` serves honestly.
    pub fault: Option<Fault>,
    /// Other host names answered by SNI, each with its chain, image path and fault.
    pub hosts: Vec<HostConfig>,
}

/// Another host name the server answers for.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The host name, matched against SNI without regard to case.
    pub name: String,
    /// The certificates sent to a client that names this host.
    pub chain: ServedChain,
    /// The path the image is served at for this host.
    pub path: String,
    /// This host's fault; `None` serves honestly.
    pub fault: Option<Fault>,
}

impl ServeConfig {
    /// The configuration for a scenario: its chains (the scenario's own certificates freshly
    /// minted), the image at `path` on the main host, and its extra hosts.
    pub fn for_scenario(
        scenario: &crate::scenario::Scenario,
        pki: &crate::pki::LabPki,
        image: Arc<[u8]>,
        path: &str,
    ) -> Result<Self, crate::pki::PkiError> {
        let (chain, host_chains) = ServedChain::build_all(scenario, pki)?;
        let hosts = scenario
            .hosts
            .iter()
            .zip(host_chains)
            .map(|(route, (name, chain))| HostConfig {
                name,
                chain,
                path: route.path.clone().unwrap_or_else(|| path.to_owned()),
                fault: route.fault.clone(),
            })
            .collect();
        Ok(Self {
            chain,
            tls: scenario.tls,
            record_size: scenario.record_size.map(|size| size as usize),
            image,
            path: path.to_owned(),
            fault: scenario.fault.clone(),
            hosts,
        })
    }
}

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be bound (the port is taken, the address is not this
    /// machine's).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The served key's PEM did not read.
    #[error("the served key is unusable: {source}")]
    KeyPem {
        /// The PEM reader's error.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the served key (a type or size it cannot sign with).
    #[error("the served key is unusable: {source}")]
    Key {
        /// rustls's error.
        source: rustls::Error,
    },
    /// rustls refused the TLS versions offered (none at all, say).
    #[error("TLS configuration: {source}")]
    Tls {
        /// rustls's error.
        source: rustls::Error,
    },
    /// A fault names an alert that TLS does not define.
    #[error("unknown alert `{name}`")]
    UnknownAlert {
        /// The alert's name as the scenario spells it.
        name: String,
    },
}

/// A bound update server.
pub struct UpdateServer {
    listener: TcpListener,
    site: Arc<Site>,
}

/// One scenario's server, ready to serve connections accepted anywhere: its TLS configuration
/// (the chains), what it serves, and its connection numbering.
pub(crate) struct Site {
    tls: Arc<rustls::ServerConfig>,
    config: ServeConfig,
    next_id: AtomicU64,
    /// Connections being served.
    live: AtomicUsize,
    /// Connections waiting for their ClientHello, oldest first, each with its shedding signal.
    idle: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    /// Set once a `kill` fault fired: the site's connections reset, its listener closed.
    killed: tokio::sync::watch::Sender<bool>,
}

/// A connection's place among the site's live ones; given back on drop.
struct Slot<'a> {
    site: &'a Site,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.site.not_idle(self.id);
        self.site.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a connection gets, once the client has named a host (or not).
struct Route<'a> {
    path: &'a str,
    fault: Option<&'a Fault>,
}

impl Site {
    /// Checks `config` (its alerts exist) and builds its TLS configuration.
    pub fn new(config: ServeConfig) -> Result<Arc<Self>, ServerError> {
        let faults = std::iter::once(&config.fault).chain(config.hosts.iter().map(|h| &h.fault));
        for fault in faults.flatten() {
            if let Fault::Alert { alert } = fault
                && Fault::alert_code(alert).is_none()
            {
                return Err(ServerError::UnknownAlert { name: alert.clone() });
            }
        }
        let host_chains: Vec<(String, ServedChain)> =
            config.hosts.iter().map(|h| (h.name.clone(), h.chain.clone())).collect();
        let tls = tls::server_config(&config.chain, &host_chains, config.tls)?;
        Ok(Arc::new(Self {
            tls,
            config,
            next_id: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            idle: Mutex::new(VecDeque::new()),
            killed: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// The `kill` fault fired: every connection resets, the listener closes.
    fn kill(&self) {
        self.killed.send_replace(true);
    }

    /// Whether the `kill` fault fired.
    fn is_killed(&self) -> bool {
        *self.killed.borrow()
    }

    /// Completes once the `kill` fault fires.
    async fn until_killed(&self) {
        let mut killed = self.killed.subscribe();
        let _ = killed.wait_for(|killed| *killed).await;
    }

    /// Serves `stream` from `peer` on a task of its own, reporting to `events`.
    pub(crate) fn spawn_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        events: UnboundedSender<ServerEvent>,
    ) {
        let site = Arc::clone(self);
        let id = site.next_id.fetch_add(1, Ordering::Relaxed);
        if site.is_killed() {
            // A dead server's address (a shared listener's route): the connection resets.
            let _ = stream.set_zero_linger();
            return;
        }
        // A second handle on the socket, to reset it when the site is killed mid-connection.
        let abort = stream.as_fd().try_clone_to_owned().map(socket2::Socket::from).ok();
        if site.live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS && !site.shed_one() {
            site.live.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("{peer}: {MAX_CONNECTIONS} connections under way; connection closed");
            return;
        }
        let shed = Arc::new(Notify::new());
        site.idle.lock().unwrap_or_else(PoisonError::into_inner).push_back((id, Arc::clone(&shed)));
        tokio::spawn(async move {
            let _slot = Slot { site: &site, id };
            let started = Instant::now();
            let _ = events.send(ServerEvent::Accepted { id, peer });
            let bytes_sent = tokio::select! {
                sent = serve_connection(id, stream, &site, &shed, &events) => sent,
                () = site.until_killed() => {
                    // SO_LINGER 0 on the socket: it resets once the connection's stream is
                    // dropped with this arm's end, and this handle with it.
                    if let Some(socket) = &abort {
                        let _ = socket.set_linger(Some(Duration::ZERO));
                    }
                    0
                }
            };
            drop(abort);
            let millis = started.elapsed().as_millis() as u64;
            let _ = events.send(ServerEvent::Closed { id, millis, bytes_sent });
        });
    }

    /// Closes the oldest connection that has not sent its ClientHello; whether there was one.
    fn shed_one(&self) -> bool {
        let oldest = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
        oldest.map(|(_, shed)| shed.notify_one()).is_some()
    }

    /// Connection `id` is under way (or ended): it is no longer shed.
    fn not_idle(&self, id: u64) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).retain(|(idle, _)| *idle != id);
    }

    fn route(&self, sni: Option<&str>) -> Route<'_> {
        let host = sni.and_then(|sni| self.config.hosts.iter().find(|h| h.name.eq_ignore_ascii_case(sni)));
        match host {
            Some(host) => Route { path: &host.path, fault: host.fault.as_ref() },
            None => Route { path: &self.config.path, fault: self.config.fault.as_ref() },
        }
    }
}

impl UpdateServer {
    /// Binds `addr` (port 0 for any free port).
    pub async fn bind(addr: SocketAddr, config: ServeConfig) -> Result<Self, ServerError> {
        let site = Site::new(config)?;
        let listener = TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Self { listener, site })
    }

    /// The address the server listens on, with the port chosen when it bound port 0.
    // Invariant: the listener is bound (it is made bound), and `getsockname` on a bound socket
    // does not fail.
    #[allow(clippy::expect_used)]
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes (or a `kill` fault fires: the listener closes with it);
    /// each connection runs on its own task.
    pub async fn run(self, events: UnboundedSender<ServerEvent>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                () = self.site.until_killed() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.site.spawn_connection(stream, peer, events.clone()),
                    Err(err) => {
                        tracing::warn!("accept: {err}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
    }
}

/// One connection, start to end. Returns the body bytes sent.
async fn serve_connection(
    id: u64,
    stream: TcpStream,
    site: &Site,
    shed: &Notify,
    events: &UnboundedSender<ServerEvent>,
) -> u64 {
    let _ = stream.set_nodelay(true);
    if matches!(site.config.fault, Some(Fault::Plaintext)) {
        site.not_idle(id);
        return plaintext(id, stream, events).await;
    }
    let hello = tokio::select! {
        hello = read_client_hello(id, stream, events) => hello,
        () = shed.notified() => {
            let error = format!("no ClientHello yet with {MAX_CONNECTIONS} connections under way: closed for a new one");
            let _ = events.send(ServerEvent::HandshakeFailed { id, error, alert_from_client: None });
            return 0;
        }
    };
    site.not_idle(id);
    let Some(start) = hello else { return 0 };
    let hello = start.client_hello();
    let route = site.route(hello.server_name());
    let _ = events.send(client_hello_event(id, &hello));
    if let Some(Fault::Alert { alert }) = route.fault
        && let Some(code) = Fault::alert_code(alert)
    {
        send_alert(id, start, code, events).await;
        return 0;
    }
    let Some(tls) = complete_handshake(id, start, site, events).await else { return 0 };
    serve_request(id, tls, site, events).await
}

/// Waits for the client's ClientHello; a `HandshakeFailed` event when none comes in time.
async fn read_client_hello(
    id: u64,
    stream: TcpStream,
    events: &UnboundedSender<ServerEvent>,
) -> Option<StartHandshake<TcpStream>> {
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let error = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor).await {
        Ok(Ok(start)) => return Some(start),
        Ok(Err(err)) => err.to_string(),
        Err(_) => "no ClientHello in time".to_owned(),
    };
    let _ = events.send(ServerEvent::HandshakeFailed { id, error, alert_from_client: None });
    None
}

/// What the client offered in its ClientHello.
fn client_hello_event(id: u64, hello: &rustls::server::ClientHello<'_>) -> ServerEvent {
    ServerEvent::ClientHello {
        id,
        sni: hello.server_name().map(str::to_owned),
        cipher_suites: hello.cipher_suites().iter().map(|s| format!("{s:?}")).collect(),
        groups: hello.named_groups().unwrap_or_default().iter().map(|g| format!("{g:?}")).collect(),
        signature_schemes: hello.signature_schemes().iter().map(|s| format!("{s:?}")).collect(),
    }
}

/// A fatal alert record (content type 21, TLS 1.2 record version) instead of a ServerHello.
async fn send_alert(id: u64, start: StartHandshake<TcpStream>, code: u8, events: &UnboundedSender<ServerEvent>) {
    let mut io = start.io;
    let _ = io.write_all(&[21, 3, 3, 0, 2, 2, code]).await;
    let _ = io.shutdown().await;
    let _ = events.send(ServerEvent::FaultBeforeTls { id, fault: format!("fatal alert {code}") });
}

/// The rest of the handshake with the site's chains: `HandshakeDone`, or `HandshakeFailed`
/// (with the alert the client sent, if it sent one).
async fn complete_handshake(
    id: u64,
    start: StartHandshake<TcpStream>,
    site: &Site,
    events: &UnboundedSender<ServerEvent>,
) -> Option<TlsStream<TcpStream>> {
    let failed = match tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(site.tls.clone())).await {
        Ok(Ok(tls)) => {
            let connection = tls.get_ref().1;
            let version = connection.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
            let cipher_suite =
                connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
            let _ = events.send(ServerEvent::HandshakeDone { id, version, cipher_suite });
            return Some(tls);
        }
        Ok(Err(err)) => {
            let alert_from_client =
                err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).and_then(|e| match e {
                    rustls::Error::AlertReceived(alert) => Some(format!("{alert:?}")),
                    _ => None,
                });
            ServerEvent::HandshakeFailed { id, error: err.to_string(), alert_from_client }
        }
        Err(_) => ServerEvent::HandshakeFailed { id, error: "handshake timed out".to_owned(), alert_from_client: None },
    };
    let _ = events.send(failed);
    None
}

/// The request and the response, as the fault of the host the client named says. Returns the
/// body bytes sent.
async fn serve_request(
    id: u64,
    mut tls: TlsStream<TcpStream>,
    site: &Site,
    events: &UnboundedSender<ServerEvent>,
) -> u64 {
    let request = match read_request(&mut tls).await {
        Ok(request) => request,
        Err(err) => {
            let _ = events.send(ServerEvent::BadRequest { id, reason: err.to_string() });
            return 0;
        }
    };
    let _ = events.send(ServerEvent::Request { id, method: request.method.clone(), path: request.path.clone() });
    // The host the client named picks the path and fault; the main host otherwise.
    let Route { path, fault } = site.route(tls.get_ref().1.server_name());
    let records = site.config.record_size.unwrap_or(http::MAX_RECORD);
    let Ok(written) = http::respond(&mut tls, &request, path, &site.config.image, fault, records).await else {
        return 0; // the client went away; Closed follows
    };
    let _ = events.send(ServerEvent::Responded {
        id,
        status: written.status,
        body_bytes: written.body_bytes,
        fault: fault.map(|f| format!("{f:?}")),
    });
    if let Some(Fault::Kill { .. }) = fault {
        // The server goes: this connection resets with the others.
        let _ = tls.get_ref().0.set_zero_linger();
        site.kill();
        return written.body_bytes;
    }
    match written.ending {
        http::Ending::Complete | http::Ending::Cut { close_notify: true } => {
            let _ = tls.shutdown().await;
        }
        // Dropping the stream closes TCP without TLS close_notify.
        http::Ending::Cut { close_notify: false } => {}
        http::Ending::Reset => {
            // SO_LINGER 0: the close sends RST at once, it does not block.
            let _ = tls.get_ref().0.set_zero_linger();
        }
    }
    written.body_bytes
}

/// Plain HTTP on the TLS port: read whatever the client sent (its ClientHello), answer as a
/// plain HTTP server would.
async fn plaintext(id: u64, mut stream: TcpStream, events: &UnboundedSender<ServerEvent>) -> u64 {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.read(&mut buf)).await;
    let body = b"<html><body><h1>400 Bad Request</h1></body></html>\n";
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\nServer: otarig\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
    let _ = events.send(ServerEvent::FaultBeforeTls { id, fault: "plain HTTP on the TLS port".into() });
    body.len() as u64
}
