//! One listening socket for every board of a lab (`[server] listen`, where the lab's DNS sends
//! them all): each accepted connection goes to the [`Site`] of the cell its board runs, told
//! apart by the board's address on the lab network. Boards without a known address share the
//! catch-all route, so they take turns for it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{ServerEvent, Site};

/// Peer address (`None`: any peer no other route names) → where its connections go.
type Routes = Arc<Mutex<HashMap<Option<IpAddr>, Routed>>>;

struct Routed {
    site: Arc<Site>,
    events: UnboundedSender<ServerEvent>,
}

/// The lab's listening socket; stops accepting when dropped.
pub struct SharedListener {
    addr: SocketAddr,
    routes: Routes,
    stop: Option<oneshot::Sender<()>>,
    accepting: Option<JoinHandle<()>>,
}

/// A route in place; dropping it takes it away.
pub struct RouteGuard {
    routes: Routes,
    from: Option<IpAddr>,
}

impl SharedListener {
    /// Binds `addr` and accepts on `runtime` until dropped.
    pub fn start(runtime: &Handle, addr: SocketAddr) -> io::Result<Self> {
        let listener = runtime.block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let routes: Routes = Arc::default();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let table = Arc::clone(&routes);
        let accepting = runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((stream, peer)) = accepted else { continue };
                        let routed = {
                            let table = table.lock().unwrap_or_else(PoisonError::into_inner);
                            let from = peer.ip().to_canonical();
                            table.get(&Some(from)).or_else(|| table.get(&None)).map(|r| (Arc::clone(&r.site), r.events.clone()))
                        };
                        match routed {
                            Some((site, events)) => site.spawn_connection(stream, peer, events),
                            None => tracing::warn!("{peer}: no cell is being served to this address; connection closed"),
                        }
                    }
                }
            }
        });
        Ok(Self { addr, routes, stop: Some(stop), accepting: Some(accepting) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends connections from `from` (`None`: from any address no other route names) to `site`,
    /// reporting to `events`, until the guard is dropped. A route for the same address before
    /// is replaced.
    pub fn route(&self, from: Option<IpAddr>, site: Arc<Site>, events: UnboundedSender<ServerEvent>) -> RouteGuard {
        let from = from.map(|ip| ip.to_canonical());
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).insert(from, Routed { site, events });
        RouteGuard { routes: Arc::clone(&self.routes), from }
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.from);
    }
}

impl Drop for SharedListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
    }
}
