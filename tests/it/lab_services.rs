//! The rig's own lab network services: the DNS responder answers `[dns.overrides]` names with
//! their A record and refuses the rest; the SNTP responder answers a client with the lab date it
//! was set to; `otarig lab check` starts both and asks them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use otarig::labnet::dns::DnsResponder;
use otarig::labnet::sntp::SntpResponder;
use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, RCODE, TYPE};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_otarig");

/// How long a test waits for an answer before it fails.
const DEADLINE: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Sends `request` to `server` and returns the answer, failing after [`DEADLINE`].
fn exchange(server: SocketAddr, request: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind(loopback()).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket.send_to(request, server).unwrap();
    let mut buf = [0u8; 1500];
    let (len, from) = socket.recv_from(&mut buf).expect("an answer before the deadline");
    assert_eq!(from, server);
    buf[..len].to_vec()
}

fn dns_query(id: u16, name: &str, qtype: TYPE) -> Vec<u8> {
    let mut query = Packet::new_query(id);
    query.set_flags(PacketFlag::RECURSION_DESIRED);
    query.questions.push(Question::new(Name::new(name).unwrap(), qtype.into(), CLASS::IN.into(), false));
    query.build_bytes_vec().unwrap()
}

#[test]
fn dns_answers_overrides_and_refuses_other_names() {
    let overrides = BTreeMap::from([
        ("ota.example.com".to_owned(), IpAddr::from([192, 168, 4, 1])),
        ("updates.example.net".to_owned(), IpAddr::from([10, 0, 0, 7])),
    ]);
    let dns = DnsResponder::start(loopback(), &overrides).unwrap();
    let server = dns.local_addr();
    assert_ne!(server.port(), 0);

    for (id, name, expected) in [(1, "ota.example.com", [192, 168, 4, 1]), (2, "UPDATES.Example.NET", [10, 0, 0, 7])] {
        let bytes = exchange(server, &dns_query(id, name, TYPE::A));
        let reply = Packet::parse(&bytes).unwrap();
        assert_eq!(reply.id(), id);
        assert!(reply.has_flags(PacketFlag::RESPONSE | PacketFlag::AUTHORITATIVE_ANSWER));
        assert_eq!(reply.rcode(), RCODE::NoError);
        assert_eq!(reply.questions.len(), 1);
        assert_eq!(reply.answers.len(), 1, "{name}");
        let record = &reply.answers[0];
        assert_eq!(record.name.to_string().to_ascii_lowercase(), name.to_ascii_lowercase());
        assert_eq!(record.class, CLASS::IN);
        match &record.rdata {
            RData::A(a) => assert_eq!(Ipv4Addr::from(a.clone()), Ipv4Addr::from(expected)),
            other => panic!("not an A record: {other:?}"),
        }
    }

    // A name the lab does not override is not the responder's to answer.
    let bytes = exchange(server, &dns_query(3, "example.org", TYPE::A));
    let reply = Packet::parse(&bytes).unwrap();
    assert_eq!((reply.id(), reply.rcode(), reply.answers.len()), (3, RCODE::Refused, 0));

    // An overridden name has no AAAA record: an empty answer, not an error.
    let bytes = exchange(server, &dns_query(4, "ota.example.com", TYPE::AAAA));
    let reply = Packet::parse(&bytes).unwrap();
    assert_eq!((reply.rcode(), reply.answers.len()), (RCODE::NoError, 0));

    // Garbage gets no answer, and the responder keeps answering.
    let socket = UdpSocket::bind(loopback()).unwrap();
    socket.send_to(b"not dns", server).unwrap();
    let bytes = exchange(server, &dns_query(5, "ota.example.com", TYPE::A));
    let reply = Packet::parse(&bytes).unwrap();
    assert_eq!((reply.id(), reply.answers.len()), (5, 1));
}

/// Seconds from 1900-01-01 to 1970-01-01.
const NTP_EPOCH_OFFSET: u64 = 2_208_988_800;

fn sntp_request(transmit: [u8; 8]) -> [u8; 48] {
    let mut request = [0u8; 48];
    // LI 0, VN 4, mode 3 (client).
    request[0] = (4 << 3) | 3;
    request[40..48].copy_from_slice(&transmit);
    request
}

fn seconds(reply: &[u8], at: usize) -> u64 {
    u64::from(u32::from_be_bytes(reply[at..at + 4].try_into().unwrap()))
}

#[test]
fn sntp_answers_with_the_lab_date_it_is_set_to() {
    // 2021-10-01 00:00:00 UTC, the day DST Root CA X3 expired.
    let date = 1_633_046_400;
    let sntp = SntpResponder::start(loopback(), 0).unwrap();
    sntp.set_time(date);
    let server = sntp.local_addr();

    let transmit = [0xe5, 0x01, 0x02, 0x03, 0x0a, 0x0b, 0x0c, 0x0d];
    let reply = exchange(server, &sntp_request(transmit));
    assert_eq!(reply.len(), 48);
    assert_eq!(reply[0] >> 6, 0, "LI");
    assert_eq!((reply[0] >> 3) & 0b111, 4, "VN echoed");
    assert_eq!(reply[0] & 0b111, 4, "mode 4, server");
    assert_eq!(reply[1], 1, "stratum");
    assert_eq!(&reply[12..16], b"LOCL");
    assert_eq!(reply[24..32], transmit, "originate = the client's transmit");
    let expected = date as u64 + NTP_EPOCH_OFFSET;
    assert_eq!(seconds(&reply, 32), expected, "receive");
    assert_eq!(seconds(&reply, 40), expected, "transmit");

    // Another scenario's date for the next cell; an NTPv3 client gets its version back.
    sntp.set_time(1_500_000_000);
    let mut request = sntp_request(transmit);
    request[0] = (3 << 3) | 3;
    let reply = exchange(server, &request);
    assert_eq!(reply[0], (3 << 3) | 4);
    assert_eq!(seconds(&reply, 40), 1_500_000_000 + NTP_EPOCH_OFFSET);
}

#[test]
fn lab_check_asks_the_rigs_own_dns_and_sntp() {
    let dir = std::env::temp_dir().join(format!("otarig-lab-services-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("otarig.toml");
    let text = "twins = 1\n\
                [dns]\nlisten = \"127.0.0.1:0\"\n[dns.overrides]\n\"ota.example.com\" = \"192.168.4.1\"\n\
                [sntp]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&config, text).unwrap();
    let fleet = Path::new(ROOT).join("firmware-images");
    let scenarios = Path::new(ROOT).join("scenarios");
    let out = Command::new(BIN)
        .args(["lab", "check", "--config"])
        .arg(&config)
        .arg("--fleet")
        .arg(&fleet)
        .arg("--scenarios")
        .arg(&scenarios)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let expected = [
        "OK    dns responder: 127.0.0.1:0 answers ota.example.com: 192.168.4.1",
        "OK    sntp: 127.0.0.1:0 answers with the lab date (each board cell's scenario date)",
    ];
    for line in expected {
        assert!(stdout.lines().any(|l| l == line), "missing `{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("WARN") && !stdout.contains("FAIL"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
