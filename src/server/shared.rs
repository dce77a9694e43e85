//! One listening socket for every board of a lab (`[server] listen`, where the lab's DNS sends
//! them all): each accepted connection goes to the [`Site`] of the cell its board runs, told
//! apart by the board's address on the lab network. Boards without a known address share the
//! catch-all route, so they take turns for it. A board's address is its own even between its
//! cells: what it sends then is turned away, never handed to the catch-all route.

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

/// Peer address (`None`: any peer no other route names) → where its connections go; a board's
/// address without a cell now maps to `None`.
type Routes = Arc<Mutex<HashMap<Option<IpAddr>, Option<Routed>>>>;

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
pub(crate) struct RouteGuard {
    routes: Routes,
    from: Option<IpAddr>,
}

impl SharedListener {
    /// Binds `addr` and accepts on `runtime` until dropped; connections from `boards` (the
    /// boards' addresses) go only to routes for them.
    pub fn start(runtime: &Handle, addr: SocketAddr, boards: impl IntoIterator<Item = IpAddr>) -> io::Result<Self> {
        let listener = runtime.block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let routes: Routes =
            Arc::new(Mutex::new(boards.into_iter().map(|ip| (Some(ip.to_canonical()), None)).collect()));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let table = Arc::clone(&routes);
        let accepting = runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let (stream, peer) = match accepted {
                            Ok(accepted) => accepted,
                            Err(err) => {
                                tracing::warn!("accept: {err}");
                                tokio::time::sleep(super::ACCEPT_BACKOFF).await;
                                continue;
                            }
                        };
                        let routed = pick(&table.lock().unwrap_or_else(PoisonError::into_inner), peer.ip())
                            .map(|r| (Arc::clone(&r.site), r.events.clone()));
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

    /// The address the listener is bound to, with the port chosen when it bound port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends connections from `from` (`None`: from any address no other route names) to `site`,
    /// reporting to `events`, until the guard is dropped. A route for the same address before
    /// is replaced.
    pub(crate) fn route(
        &self,
        from: Option<IpAddr>,
        site: Arc<Site>,
        events: UnboundedSender<ServerEvent>,
    ) -> RouteGuard {
        let from = from.map(|ip| ip.to_canonical());
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).insert(from, Some(Routed { site, events }));
        RouteGuard { routes: Arc::clone(&self.routes), from }
    }
}

/// Where a connection from `peer` goes: its own route, or when it has none and is no board's,
/// the catch-all route.
fn pick<R>(routes: &HashMap<Option<IpAddr>, Option<R>>, peer: IpAddr) -> Option<&R> {
    match routes.get(&Some(peer.to_canonical())) {
        Some(own) => own.as_ref(),
        None => routes.get(&None).and_then(Option::as_ref),
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        match self.from {
            // The board keeps its address between cells.
            Some(_) => {
                routes.insert(self.from, None);
            }
            None => {
                routes.remove(&None);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_s_address_never_falls_to_the_catch_all_route() {
        let board: IpAddr = [192, 168, 4, 21].into();
        let other: IpAddr = [192, 168, 4, 30].into();
        let mut routes: HashMap<Option<IpAddr>, Option<&str>> =
            HashMap::from([(Some(board), None), (None, Some("turns"))]);
        // Between its cells the board is turned away; any other peer takes the shared route.
        assert_eq!(pick(&routes, board), None);
        assert_eq!(pick(&routes, other), Some(&"turns"));
        // IPv4 peers of an IPv6 listener arrive mapped.
        assert_eq!(pick(&routes, "::ffff:192.168.4.21".parse().unwrap()), None);
        routes.insert(Some(board), Some("its cell"));
        assert_eq!(pick(&routes, "::ffff:192.168.4.21".parse().unwrap()), Some(&"its cell"));
        routes.remove(&None);
        assert_eq!(pick(&routes, other), None);
    }
}
