//! The rig's own SNTP responder for the lab network (`[sntp] listen`): RFC 4330 server mode,
//! answering each client with its *lab date*, a Unix time the runner sets before each board
//! cell (the scenario's date), so firmware that checks certificate dates sees the scenario's
//! day. A board with a known address gets its own cell's date, so boards run side by side;
//! others get the shared date. The clock stands still at that date: every answer gives it, as
//! the twin's lab network does.
//!
//! An answer is 48 bytes: LI 0, the client's version echoed, mode 4 (server), stratum 1,
//! reference id `LOCL`, the client's transmit timestamp as originate, the lab date as reference,
//! receive and transmit timestamps. Datagrams that are no client request get no answer.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::udp::{UdpService, ask};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub(crate) const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// The length of an SNTP packet without extensions.
pub(crate) const PACKET_LEN: usize = 48;

/// Mode 3: a client's request.
const MODE_CLIENT: u8 = 3;
/// Mode 4: a server's answer.
const MODE_SERVER: u8 = 4;

/// A running responder; dropping it stops it.
pub struct SntpResponder {
    service: UdpService,
    dates: Dates,
}

/// Client address → its lab date; `None`: every other client's.
type Dates = Arc<Mutex<HashMap<Option<IpAddr>, i64>>>;

impl SntpResponder {
    /// Binds `addr` (UDP) and answers with `unix_seconds` until [`SntpResponder::set_time`]
    /// says otherwise, on a thread of its own.
    pub fn start(addr: SocketAddr, unix_seconds: i64) -> Result<Self, io::Error> {
        let dates: Dates = Arc::new(Mutex::new(HashMap::from([(None, unix_seconds)])));
        let answered = Arc::clone(&dates);
        let service = UdpService::start("sntp", addr, move |request, peer| {
            let date = {
                let dates = answered.lock().unwrap_or_else(PoisonError::into_inner);
                dates.get(&Some(peer.ip().to_canonical())).or_else(|| dates.get(&None)).copied()
            };
            answer(request, date.unwrap_or_else(now_unix))
        })?;
        Ok(Self { service, dates })
    }

    /// The lab date every later answer gives (Unix seconds) to clients without one of their own.
    pub fn set_time(&self, unix_seconds: i64) {
        self.set_time_for(None, unix_seconds);
    }

    /// The lab date later answers to `client` give (`None`: to clients without one of their own).
    pub(crate) fn set_time_for(&self, client: Option<IpAddr>, unix_seconds: i64) {
        let client = client.map(|ip| ip.to_canonical());
        self.dates.lock().unwrap_or_else(PoisonError::into_inner).insert(client, unix_seconds);
    }

    /// The lab date answers give now to clients without one of their own.
    pub fn time(&self) -> i64 {
        self.dates.lock().unwrap_or_else(PoisonError::into_inner).get(&None).copied().unwrap_or_else(now_unix)
    }

    /// Where it listens (the bound port when `addr` named port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }
}

/// This host's clock, in Unix seconds (what a responder answers before a cell sets a date).
pub(crate) fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An NTP timestamp for whole Unix seconds: seconds since 1900 (era wrapped), no fraction.
fn timestamp(unix_seconds: i64) -> [u8; 8] {
    let seconds = (unix_seconds + NTP_UNIX_OFFSET) as u32;
    let mut stamp = [0u8; 8];
    stamp[..4].copy_from_slice(&seconds.to_be_bytes());
    stamp
}

/// The answer to `request` at lab date `unix_seconds`, or `None` when it is no client request.
fn answer(request: &[u8], unix_seconds: i64) -> Option<Vec<u8>> {
    let first = *request.first()?;
    let (version, mode) = ((first >> 3) & 0b111, first & 0b111);
    if request.len() < PACKET_LEN || mode != MODE_CLIENT {
        return None;
    }
    let mut reply = vec![0u8; PACKET_LEN];
    // LI 0 (no leap second warning), the client's version, mode 4.
    reply[0] = (version << 3) | MODE_SERVER;
    // Stratum 1: a primary reference (the rig's chosen date).
    reply[1] = 1;
    // Poll interval echoed; precision 2^-20 s.
    reply[2] = request[2];
    reply[3] = (-20i8) as u8;
    // Root delay and root dispersion (4..12) stay 0.
    reply[12..16].copy_from_slice(b"LOCL");
    let now = timestamp(unix_seconds);
    reply[16..24].copy_from_slice(&now);
    // Originate: the client's transmit timestamp, so it can match the answer.
    reply[24..32].copy_from_slice(&request[40..48]);
    reply[32..40].copy_from_slice(&now);
    reply[40..48].copy_from_slice(&now);
    Some(reply)
}

/// Asks `server` for the time as an SNTP v4 client does, waiting up to `timeout`; the
/// answer's transmit time in Unix seconds.
pub(crate) fn query_time(server: SocketAddr, timeout: Duration) -> io::Result<i64> {
    query_time_from(None, server, timeout)
}

/// [`query_time`] from this host's address `from` (`None`: any).
pub(crate) fn query_time_from(from: Option<IpAddr>, server: SocketAddr, timeout: Duration) -> io::Result<i64> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut request = [0u8; PACKET_LEN];
    request[0] = (4 << 3) | MODE_CLIENT;
    let stamp = timestamp(now_unix());
    request[40..48].copy_from_slice(&stamp);
    let reply = ask(from, server, &request, timeout)?;
    if reply.len() < PACKET_LEN || reply[0] & 0b111 != MODE_SERVER {
        return Err(invalid("no SNTP server answer"));
    }
    if reply[24..32] != stamp {
        return Err(invalid("an answer to another request"));
    }
    let seconds = u32::from_be_bytes([reply[40], reply[41], reply[42], reply[43]]);
    Ok(i64::from(seconds) - NTP_UNIX_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_client_with_the_lab_date() {
        let mut request = [0u8; PACKET_LEN];
        request[0] = (3 << 3) | MODE_CLIENT;
        request[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let reply = answer(&request, 1_600_000_000).unwrap();
        assert_eq!(reply[0], (3 << 3) | 4);
        assert_eq!((reply[1], &reply[12..16]), (1, &b"LOCL"[..]));
        assert_eq!(&reply[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(u32::from_be_bytes(reply[40..44].try_into().unwrap()), 1_600_000_000 + 2_208_988_800);
        // A server's answer, or a short datagram, is no request.
        assert_eq!(answer(&reply, 0), None);
        assert_eq!(answer(&request[..47], 0), None);
    }
}
