//! The lab network as the firmware inside a twin sees it: a DNS map that sends the firmware's
//! OTA host name to the rig's update server, and where its SNTP requests get their answer.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the firmware's SNTP request waits for a server's answer.
const SNTP_WAIT: Duration = Duration::from_secs(2);

/// Name resolution and time service for one twin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabNetwork {
    /// Host name → address. The port replaces the URL's (443 for `https://`): the rig's server
    /// listens on a free port of 127.0.0.1. A name not in the map does not resolve.
    pub hosts: BTreeMap<String, SocketAddr>,
    /// Who answers the firmware's SNTP requests.
    pub time: TimeService,
    /// The device's own address on the network, its connections and SNTP requests leaving
    /// from it (a board's DHCP reservation, which the rig tells boards apart by); `None`: any.
    pub address: Option<IpAddr>,
}

/// Where a twin's SNTP requests get their answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeService {
    /// No SNTP server answers: firmware that waits for the time keeps its unset clock.
    #[default]
    Silent,
    /// The rig answers in process with this Unix time (the cell's scenario date).
    Answers(i64),
    /// An SNTP server on the network answers, asked over UDP whenever the firmware asks: the
    /// lab's own responder (`[sntp] listen`) when a twin stands in for a board.
    Server(SocketAddr),
}

impl LabNetwork {
    /// Where `host` resolves.
    pub(crate) fn resolve(&self, host: &str) -> Option<SocketAddr> {
        self.hosts.get(&host.to_ascii_lowercase()).copied()
    }

    /// A TCP connection to `server` from the device's address, given up after `timeout`.
    pub fn connect(&self, server: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let Some(address) = self.address else { return TcpStream::connect_timeout(&server, timeout) };
        let socket = socket2::Socket::new(socket2::Domain::for_address(server), socket2::Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(address, 0).into())?;
        socket.connect_timeout(&server.into(), timeout)?;
        Ok(socket.into())
    }

    /// The time an SNTP request gets now (Unix seconds), `None` when no server answers.
    pub(crate) fn sntp_time(&self) -> Option<i64> {
        match self.time {
            TimeService::Silent => None,
            TimeService::Answers(unix_seconds) => Some(unix_seconds),
            TimeService::Server(server) => crate::labnet::sntp::query_time_from(self.address, server, SNTP_WAIT)
                .inspect_err(|err| tracing::debug!("no SNTP answer from {server}: {err}"))
                .ok(),
        }
    }
}
