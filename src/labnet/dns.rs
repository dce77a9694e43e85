//! The rig's own DNS responder for the lab network (`[dns] listen`): boards asking for a
//! firmware's OTA host get this host's address from `[dns.overrides]`, so no dnsmasq is needed.
//!
//! Names are matched without regard to case. An overridden name's A (or AAAA) query gets the
//! configured address, authoritative, with a short TTL; another type for it gets an empty
//! answer (the name exists). Every other name is REFUSED rather than NXDOMAIN: the responder
//! is no authority for the rest of the world, and a resolver given a second server (the access
//! point's) asks that one after a refusal, while NXDOMAIN would end the lookup. Opcodes other
//! than QUERY get NOTIMP; datagrams that are no DNS query get no answer.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use simple_dns::rdata::{A, AAAA, RData};
use simple_dns::{CLASS, Name, OPCODE, Packet, PacketFlag, QTYPE, Question, RCODE, ResourceRecord, TYPE};

use super::udp::{UdpService, ask};

/// The TTL of an answer: short, so a changed config is seen at once.
const TTL: u32 = 5;

/// A running responder; dropping it stops it.
pub struct DnsResponder {
    service: UdpService,
}

impl DnsResponder {
    /// Binds `addr` (UDP) and answers from `overrides` (host name → address; any case) on a
    /// thread of its own.
    pub fn start(addr: SocketAddr, overrides: &BTreeMap<String, IpAddr>) -> Result<Self, io::Error> {
        let overrides: BTreeMap<String, IpAddr> =
            overrides.iter().map(|(name, ip)| (name.trim_end_matches('.').to_ascii_lowercase(), *ip)).collect();
        let service = UdpService::start("dns", addr, move |query, _| answer(query, &overrides))?;
        Ok(Self { service })
    }

    /// Where it listens (the bound port when `addr` named port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }
}

/// The reply to one datagram, or `None` when it is no query.
fn answer(datagram: &[u8], overrides: &BTreeMap<String, IpAddr>) -> Option<Vec<u8>> {
    let query = Packet::parse(datagram).ok()?;
    if query.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let mut reply = Packet::new_reply(query.id());
    if query.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.questions = query.questions.clone();
    if query.opcode() != OPCODE::StandardQuery {
        *reply.rcode_mut() = RCODE::NotImplemented;
        return reply.build_bytes_vec().ok();
    }
    let mut known = !query.questions.is_empty();
    for question in &query.questions {
        let name = question.qname.to_string().to_ascii_lowercase();
        let Some(ip) = overrides.get(name.trim_end_matches('.')) else {
            known = false;
            continue;
        };
        let wanted = |kind: TYPE| matches!(question.qtype, QTYPE::ANY) || question.qtype == QTYPE::TYPE(kind);
        let rdata = match ip {
            IpAddr::V4(v4) if wanted(TYPE::A) => RData::A(A::from(*v4)),
            IpAddr::V6(v6) if wanted(TYPE::AAAA) => RData::AAAA(AAAA::from(*v6)),
            _ => continue,
        };
        reply.answers.push(ResourceRecord::new(question.qname.clone(), CLASS::IN, TTL, rdata));
    }
    if known {
        reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    } else {
        reply.answers.clear();
        *reply.rcode_mut() = RCODE::Refused;
    }
    reply.build_bytes_vec().ok()
}

/// What a DNS server said about a name's A record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DnsAnswer {
    /// The addresses of the answer's A records (none: the name has no A record).
    Addresses(Vec<IpAddr>),
    /// An error code: `REFUSED`, `NXDOMAIN`, ...
    Error(String),
}

/// Asks `server` for `name`'s A record, waiting up to `timeout`.
pub(crate) fn query_a(server: SocketAddr, name: &str, timeout: Duration) -> io::Result<DnsAnswer> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let qname = Name::new(name).map_err(|e| invalid(format!("`{name}`: {e:?}")))?;
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
    let mut query = Packet::new_query(id);
    query.set_flags(PacketFlag::RECURSION_DESIRED);
    query.questions.push(Question::new(qname, TYPE::A.into(), CLASS::IN.into(), false));
    let bytes = query.build_bytes_vec().map_err(|e| invalid(format!("{e:?}")))?;
    let reply = ask(None, server, &bytes, timeout)?;
    let reply = Packet::parse(&reply).map_err(|e| invalid(format!("not a DNS reply: {e:?}")))?;
    if reply.id() != id || !reply.has_flags(PacketFlag::RESPONSE) {
        return Err(invalid("an answer to another query".to_owned()));
    }
    Ok(match reply.rcode() {
        RCODE::NoError => DnsAnswer::Addresses(
            reply
                .answers
                .iter()
                .filter_map(|record| match &record.rdata {
                    RData::A(a) => Some(IpAddr::V4(a.clone().into())),
                    _ => None,
                })
                .collect(),
        ),
        RCODE::NameError => DnsAnswer::Error("NXDOMAIN".to_owned()),
        RCODE::Refused => DnsAnswer::Error("REFUSED".to_owned()),
        other => DnsAnswer::Error(format!("{other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> BTreeMap<String, IpAddr> {
        BTreeMap::from([("ota.example.com".to_owned(), "192.168.4.1".parse().unwrap())])
    }

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut query = Packet::new_query(7);
        query.questions.push(Question::new(Name::new(name).unwrap(), qtype.into(), CLASS::IN.into(), false));
        query.build_bytes_vec().unwrap()
    }

    #[test]
    fn answers_overrides_and_refuses_the_rest() {
        let reply = answer(&query("OTA.Example.com", TYPE::A), &overrides()).unwrap();
        let reply = Packet::parse(&reply).unwrap();
        assert_eq!((reply.id(), reply.rcode()), (7, RCODE::NoError));
        assert!(reply.has_flags(PacketFlag::AUTHORITATIVE_ANSWER));
        assert_eq!(reply.answers[0].rdata, RData::A(A { address: u32::from_be_bytes([192, 168, 4, 1]) }));

        let reply = answer(&query("ota.example.com", TYPE::AAAA), &overrides()).unwrap();
        let reply = Packet::parse(&reply).unwrap();
        assert_eq!((reply.rcode(), reply.answers.len()), (RCODE::NoError, 0));

        let reply = answer(&query("example.org", TYPE::A), &overrides()).unwrap();
        assert_eq!(Packet::parse(&reply).unwrap().rcode(), RCODE::Refused);

        assert_eq!(answer(b"\x00\x01garbage", &overrides()), None);
    }
}
