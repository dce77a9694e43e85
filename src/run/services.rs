//! The lab network's services the rig answers itself for a whole run, once it has boards: the
//! update server's shared listener on `[server] listen` (each board's connections routed to
//! its cell's server), the DNS responder on `[dns] listen` (the OTA host names → this host)
//! and the SNTP responder on `[sntp] listen`, whose date each board cell sets to its
//! scenario's. A board with an `address` gets its own route and date, so such boards run side
//! by side; boards without one share the catch-all route and date, and take turns. Twins do not
//! use them: each twin gets its cell's names, server and date through its own lab network.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::runtime::Handle;

use crate::lab::LabConfig;
use crate::labnet::dns::DnsResponder;
use crate::labnet::sntp::{SntpResponder, now_unix};
use crate::server::SharedListener;

/// The responders a lab config asks for, running until dropped.
#[derive(Default)]
pub struct LabServices {
    server: Option<SharedListener>,
    /// Kept for its drop only: the responder answers until the services end.
    _dns: Option<DnsResponder>,
    sntp: Option<SntpResponder>,
}

/// A responder that could not start.
#[derive(Debug, thiserror::Error)]
#[error("{service} responder on {addr}: {source}")]
pub struct ServiceError {
    pub(crate) service: &'static str,
    /// The address it was to listen on.
    pub addr: SocketAddr,
    /// Why it could not (the address in use, not this host's).
    pub source: io::Error,
}

impl LabServices {
    /// Starts what `lab` configures (`[server] listen` on `runtime`, `[dns] listen`,
    /// `[sntp] listen`) when it has boards; none otherwise (twins need none: a calibration's
    /// twin side runs beside its board side). SNTP answers with this host's time until a board
    /// cell sets its date.
    pub fn start(lab: &LabConfig, runtime: &Handle) -> Result<Self, ServiceError> {
        if lab.boards().next().is_none() {
            return Ok(Self::default());
        }
        let server = lab
            .server
            .map(|server| {
                let boards = lab.boards().filter_map(|board| board.address);
                SharedListener::start(runtime, server.listen, boards).map_err(|source| ServiceError {
                    service: "update server",
                    addr: server.listen,
                    source,
                })
            })
            .transpose()?;
        let dns = lab
            .dns
            .listen
            .map(|addr| {
                DnsResponder::start(addr, &lab.dns.overrides).map_err(|source| ServiceError {
                    service: "dns",
                    addr,
                    source,
                })
            })
            .transpose()?;
        let sntp = lab
            .sntp
            .map(|sntp| {
                SntpResponder::start(sntp.listen, now_unix()).map_err(|source| ServiceError {
                    service: "sntp",
                    addr: sntp.listen,
                    source,
                })
            })
            .transpose()?;
        Ok(Self { server, _dns: dns, sntp })
    }

    /// Sets the date the SNTP responder answers `board` with (a board cell's scenario date;
    /// `None`: boards without an address).
    pub(crate) fn set_date(&self, board: Option<IpAddr>, unix_seconds: i64) {
        if let Some(sntp) = &self.sntp {
            sntp.set_time_for(board, unix_seconds);
        }
    }

    /// The update server's shared listener, when the lab has boards and `[server] listen`.
    pub fn server(&self) -> Option<&SharedListener> {
        self.server.as_ref()
    }
}
