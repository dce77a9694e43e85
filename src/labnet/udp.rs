//! A small UDP service on its own thread: one request datagram in, at most one answer out,
//! stopped (and its thread joined) when dropped. The lab's DNS and SNTP responders run on it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the service looks whether it is to stop while no request comes.
const STOP_POLL: Duration = Duration::from_millis(50);

/// A running service; dropping it stops it.
pub(crate) struct UdpService {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpService {
    /// Binds `addr` and answers each datagram with what `answer` returns for it and its sender
    /// (nothing: no reply).
    pub(crate) fn start(
        name: &str,
        addr: SocketAddr,
        mut answer: impl FnMut(&[u8], SocketAddr) -> Option<Vec<u8>> + Send + 'static,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(STOP_POLL))?;
        let local = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(format!("otarig-{name}")).spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopped.load(Ordering::SeqCst) {
                let (len, peer) = match socket.recv_from(&mut buf) {
                    Ok(got) => got,
                    Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                    // An ICMP error from an earlier reply, a datagram cut short: the next one.
                    Err(_) => continue,
                };
                if let Some(reply) = answer(&buf[..len], peer)
                    && let Err(err) = socket.send_to(&reply, peer)
                {
                    tracing::debug!("{local}: cannot answer {peer}: {err}");
                }
            }
        })?;
        Ok(Self { local, stop, thread: Some(thread) })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for UdpService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a client on this host reaches a service bound to `addr` (loopback for `0.0.0.0`).
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], v4.port())),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, v6.port())),
        other => other,
    }
}

/// Sends `request` to `server` from a fresh socket on `from` (`None`: any address) and waits up
/// to `timeout` for the answer.
pub(crate) fn ask(from: Option<IpAddr>, server: SocketAddr, request: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let server = reachable(server);
    let any: IpAddr = if server.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let local = SocketAddr::new(from.unwrap_or(any), 0);
    let socket = UdpSocket::bind(local)?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send(request)?;
    let mut buf = [0u8; 1500];
    let len = socket.recv(&mut buf)?;
    Ok(buf[..len].to_vec())
}
