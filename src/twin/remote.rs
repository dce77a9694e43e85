//! The twin's UART as a remote serial port: an RFC 2217 server on a TCP listener, one client
//! at a time (see [`rfc2217`](super::rfc2217) for the protocol).
//!
//! A second connection while one is open is accepted and closed at once, so its client sees
//! the port busy rather than a stalled connect. A client that goes away releases DTR and RTS,
//! as closing a USB-UART does; the chip keeps running and the next client is served.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::rfc2217::{self, ComPortServer, Event};

/// How long one write to the client may block before the client is dropped as gone.
const WRITE_PATIENCE: Duration = Duration::from_secs(5);

/// What the line brings the chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// Bytes on the chip's RX.
    Data(Vec<u8>),
    /// DTR and RTS at these levels now (`true`: asserted).
    Lines { dtr: bool, rts: bool },
    /// The client set this baud rate.
    Baud(u32),
}

/// The listener and the client it serves, if any.
pub(crate) struct RemotePort {
    listener: TcpListener,
    client: Option<Client>,
    /// The client was dropped while the chip wrote: its lines are released on the next poll.
    lost: bool,
}

struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    telnet: ComPortServer,
}

impl RemotePort {
    /// Listens on `addr` (port 0: a free port).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, client: None, lost: false })
    }

    /// The address clients connect to.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Takes a new connection, refusing it when a client is served; then waits at most
    /// `timeout` for the client's bytes. Returns what they mean for the chip, in order; the
    /// answers the client is owed have been sent.
    pub(crate) fn poll(&mut self, timeout: Duration) -> Vec<Input> {
        let mut inputs = Vec::new();
        if std::mem::take(&mut self.lost) {
            inputs.push(Input::Lines { dtr: false, rts: false });
        }
        self.accept();
        let Some(client) = &mut self.client else {
            std::thread::sleep(timeout);
            return inputs;
        };
        let mut buf = [0u8; 8192];
        let read = client.stream.set_read_timeout(Some(timeout)).and_then(|()| client.stream.read(&mut buf));
        let bytes = match read {
            Ok(0) => {
                tracing::info!("twin: client {} disconnected", client.peer);
                self.drop_client(&mut inputs);
                return inputs;
            }
            Ok(n) => &buf[..n],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                return inputs;
            }
            Err(e) => {
                tracing::info!("twin: client {} lost: {e}", client.peer);
                self.drop_client(&mut inputs);
                return inputs;
            }
        };
        let mut replies = Vec::new();
        for event in client.telnet.feed(bytes) {
            match event {
                Event::Data(data) => inputs.push(Input::Data(data)),
                Event::Lines { dtr, rts } => inputs.push(Input::Lines { dtr, rts }),
                Event::Baud(baud) => inputs.push(Input::Baud(baud)),
                Event::Reply(reply) => replies.extend(reply),
            }
        }
        if !replies.is_empty() && client.stream.write_all(&replies).is_err() {
            self.drop_client(&mut inputs);
        }
        inputs
    }

    /// Sends the chip's bytes to the client; with no client they are lost, as a UART's are
    /// with nothing on the other end.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        let Some(client) = &mut self.client else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        if let Err(e) = client.stream.write_all(&rfc2217::escape(bytes)) {
            tracing::info!("twin: client {} lost while the chip wrote: {e}", client.peer);
            self.client = None;
            self.lost = true;
        }
    }

    fn accept(&mut self) {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("twin: accepting a client failed: {e}");
                    return;
                }
            };
            if let Some(client) = &self.client {
                tracing::warn!("twin: refused {peer}: {} has the port", client.peer);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let ready = stream
                .set_nonblocking(false)
                .and_then(|()| stream.set_nodelay(true))
                .and_then(|()| stream.set_write_timeout(Some(WRITE_PATIENCE)));
            if let Err(e) = ready {
                tracing::warn!("twin: cannot serve {peer}: {e}");
                continue;
            }
            tracing::info!("twin: client {peer} connected");
            self.client = Some(Client { stream, peer, telnet: ComPortServer::default() });
        }
    }

    fn drop_client(&mut self, inputs: &mut Vec<Input>) {
        self.client = None;
        inputs.push(Input::Lines { dtr: false, rts: false });
    }
}
