//! The update server against real TLS clients (rustls, `openssl s_client`): exactly the chain
//! a scenario names, each fault as named, many concurrent downloads, events per connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use otarig::pki::LabPki;
use otarig::scenario::{Scenario, ServedChain};
use otarig::server::{ServeConfig, ServerEvent, UpdateServer};
use otarig::toml_source::TomlSource;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::common;

use common::Recorder;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn pki() -> LabPki {
    LabPki::open(&Path::new(ROOT).join("scenarios/pki")).unwrap()
}

fn scenario(id: &str) -> Scenario {
    Scenario::load(&Path::new(ROOT).join(format!("scenarios/{id}.toml")), &pki()).unwrap()
}

fn scenario_with_fault(fault: &str) -> Scenario {
    let text = format!(
        "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\", \"r11\"]\nfault = {fault}\n"
    );
    Scenario::from_source(&TomlSource::new("fault.toml", text), &pki()).unwrap()
}

/// Image bytes that show where a cut happened.
fn image(len: usize) -> Arc<[u8]> {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

struct Running {
    addr: SocketAddr,
    chain: ServedChain,
    events: mpsc::UnboundedReceiver<ServerEvent>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    async fn start(scenario: &Scenario, image: Arc<[u8]>) -> Self {
        let chain = ServedChain::build(scenario, &pki()).unwrap();
        let config = ServeConfig {
            chain: chain.clone(),
            tls: scenario.tls,
            record_size: scenario.record_size.map(|size| size as usize),
            image,
            path: "/firmware.bin".into(),
            fault: scenario.fault.clone(),
            hosts: Vec::new(),
        };
        let server = UpdateServer::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let addr = server.local_addr();
        let (sender, events) = mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(sender, async {
            let _ = stopped.await;
        }));
        Self { addr, chain, events, stop: Some(stop) }
    }

    /// Events of connection `id` up to and including its `Closed`.
    async fn connection_events(&mut self, id: u64) -> Vec<ServerEvent> {
        let mut out = Vec::new();
        while let Some(event) = self.events.recv().await {
            if event.connection() == id {
                let closed = matches!(event, ServerEvent::Closed { .. });
                out.push(event);
                if closed {
                    break;
                }
            }
        }
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn client(verifier: Arc<dyn ServerCertVerifier>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// GETs `path`; returns the response head and body bytes, and how the stream ended.
async fn get(
    addr: SocketAddr,
    path: &str,
    verifier: Arc<dyn ServerCertVerifier>,
) -> (String, Vec<u8>, Option<std::io::ErrorKind>) {
    get_from(addr, "ota.example.com", path, verifier).await
}

/// GETs `path` from `host` (sent as SNI).
async fn get_from(
    addr: SocketAddr,
    host: &str,
    path: &str,
    verifier: Arc<dyn ServerCertVerifier>,
) -> (String, Vec<u8>, Option<std::io::ErrorKind>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let mut tls = client(verifier).connect(name, tcp).await.expect("handshake");
    let request = format!("GET {path} HTTP/1.1\r\nHost: ota.example.com\r\nUser-Agent: ESP32 HTTP Client/1.0\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let ending = loop {
        match tls.read(&mut chunk).await {
            Ok(0) => break None,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => break Some(e.kind()),
        }
    };
    let split = received.windows(4).position(|w| w == b"\r\n\r\n").map_or(received.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&received[..split]).into_owned();
    (head, received[split..].to_vec(), ending)
}

#[tokio::test]
async fn a_rustls_client_sees_exactly_the_scenario_chain() {
    for id in ["dst-cross-sign-rescue", "gts-chain", "missing-intermediate"] {
        let scenario = scenario(id);
        let server = Running::start(&scenario, image(1000)).await;
        let recorder = Arc::new(Recorder::default());
        let (head, body, ending) = get(server.addr, "/firmware.bin", recorder.clone()).await;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{id}: {head}");
        assert_eq!(&body[..], &image(1000)[..], "{id}");
        assert_eq!(ending, None, "{id}: clean close_notify");
        assert_eq!(*recorder.0.lock().unwrap(), server.chain.ders(), "{id}");
        assert_eq!(server.chain.ders().len(), scenario.chain.len());
    }
}

#[tokio::test]
async fn openssl_s_client_sees_exactly_the_scenario_chain() {
    let scenario = scenario("dst-cross-sign-rescue");
    let server = Running::start(&scenario, image(10)).await;
    let addr = server.addr.to_string();
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr, "-servername", "ota.example.com", "-showcerts"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl (ci/setup-host installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let shown: Vec<Vec<u8>> =
        pem::parse_many(text.as_bytes()).unwrap().into_iter().map(pem::Pem::into_contents).collect();
    assert_eq!(shown, server.chain.ders());
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
}

#[tokio::test]
async fn only_the_ota_path_is_served() {
    let server = Running::start(&scenario("le-short-chain"), image(100)).await;
    for path in ["/", "/firmware.bin/../etc/passwd", "/other.bin", "//firmware.bin"] {
        let (head, _, _) = get(server.addr, path, Arc::new(Recorder::default())).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{path}: {head}");
    }
}

#[tokio::test]
async fn status_redirect_and_html_faults() {
    let server = Running::start(&scenario_with_fault("{ kind = \"status\", status = 503 }"), image(100)).await;
    let (head, body, _) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(head.starts_with("HTTP/1.1 503 Service Unavailable"), "{head}");
    assert_eq!(body.first(), Some(&b'<'));

    let fault = "{ kind = \"redirect\", status = 301, location = \"https://cdn.example.net/fw.bin\" }";
    let server = Running::start(&scenario_with_fault(fault), image(100)).await;
    let (head, _, _) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    assert!(head.contains("Location: https://cdn.example.net/fw.bin\r\n"), "{head}");

    let server = Running::start(&scenario_with_fault("{ kind = \"html-body\" }"), image(100)).await;
    let (head, body, _) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body[0], 0x3c, "an HTML page starts with '<', what v3.2 writes to flash");
}

#[tokio::test]
async fn truncation_with_and_without_close_notify() {
    let full = image(50_000);
    let server = Running::start(&scenario_with_fault("{ kind = \"truncate\", after = 20000 }"), full.clone()).await;
    let (head, body, ending) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(head.contains("Content-Length: 50000\r\n"));
    assert_eq!(&body[..], &full[..20_000]);
    assert_eq!(ending, Some(std::io::ErrorKind::UnexpectedEof), "TCP closed without close_notify");

    let fault = "{ kind = \"truncate\", after = 20000, close_notify = true }";
    let server = Running::start(&scenario_with_fault(fault), full.clone()).await;
    let (_, body, ending) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert_eq!(body.len(), 20_000);
    assert_eq!(ending, None, "a clean TLS close after a short body");
}

#[tokio::test]
async fn reset_after_some_bytes() {
    let server = Running::start(&scenario_with_fault("{ kind = \"reset\", after = 5000 }"), image(200_000)).await;
    let (_, body, ending) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(body.len() <= 5000);
    assert_eq!(ending, Some(std::io::ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn a_killed_server_resets_its_connections_and_accepts_no_more() {
    let fault = "{ kind = \"kill\", after = 5000 }";
    let mut server = Running::start(&scenario_with_fault(fault), image(200_000)).await;
    // A connection that has not asked for anything yet goes down with the server too.
    let idle = TcpStream::connect(server.addr).await.unwrap();
    let (_, body, ending) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(body.len() <= 5000);
    assert_eq!(ending, Some(std::io::ErrorKind::ConnectionReset));
    let mut idle = idle;
    let mut buf = [0u8; 16];
    let idle_end = tokio::time::timeout(std::time::Duration::from_secs(5), idle.read(&mut buf)).await.unwrap();
    assert_eq!(
        idle_end.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionReset),
        "{idle_end:?}"
    );
    let refused = TcpStream::connect(server.addr).await;
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the listener is closed"
    );
    let events = server.connection_events(2).await;
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Responded { body_bytes: 5000, .. })), "{events:?}");
}

#[tokio::test]
async fn wrong_content_length_stall_and_throttle_still_send_the_image() {
    let full = image(30_000);
    let server =
        Running::start(&scenario_with_fault("{ kind = \"wrong-content-length\", length = 99 }"), full.clone()).await;
    let (head, body, _) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert!(head.contains("Content-Length: 99\r\n"), "{head}");
    assert_eq!(&body[..], &full[..]);

    let server =
        Running::start(&scenario_with_fault("{ kind = \"stall\", after = 1000, seconds = 1 }"), full.clone()).await;
    let (_, body, _) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert_eq!(&body[..], &full[..]);

    let mut server =
        Running::start(&scenario_with_fault("{ kind = \"throttle\", bytes_per_second = 100000 }"), full.clone()).await;
    let (_, body, _) = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    assert_eq!(&body[..], &full[..]);
    let events = server.connection_events(1).await;
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Responded { body_bytes: 30_000, .. })), "{events:?}");
}

#[tokio::test]
async fn a_fatal_alert_instead_of_server_hello() {
    let mut server =
        Running::start(&scenario_with_fault("{ kind = \"alert\", alert = \"handshake-failure\" }"), image(10)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("ota.example.com").unwrap();
    let err = client(Arc::new(Recorder::default())).connect(name, tcp).await.unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).cloned();
    assert_eq!(inner, Some(rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)));
    let events = server.connection_events(1).await;
    assert!(events.iter().any(|e| matches!(e, ServerEvent::FaultBeforeTls { .. })), "{events:?}");
}

#[tokio::test]
async fn plain_http_on_the_tls_port() {
    let server = Running::start(&scenario_with_fault("{ kind = \"plaintext\" }"), image(10)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("ota.example.com").unwrap();
    let err = client(Arc::new(Recorder::default())).connect(name, tcp).await.unwrap_err();
    // The client cannot read "HTTP/1.1 400" as a TLS record.
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn a_client_that_rejects_the_chain_is_recorded_with_its_alert() {
    let mut server = Running::start(&scenario("le-short-chain"), image(10)).await;
    // Trusts only the lab DST Root CA X3: the chain leaf <- R11 does not reach it.
    let dst = pki().certificate("dst_root_x3").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(dst.der)).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("ota.example.com").unwrap();
    assert!(tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.is_err());
    let events = server.connection_events(1).await;
    let failed = events.iter().find_map(|e| match e {
        ServerEvent::HandshakeFailed { alert_from_client, .. } => Some(alert_from_client.clone()),
        _ => None,
    });
    assert_eq!(failed, Some(Some("UnknownCA".to_owned())), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_downloads_of_two_megabytes_complete() {
    let full = image(2 * 1024 * 1024);
    let server = Running::start(&scenario("dst-cross-sign-rescue"), full.clone()).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move { get(addr, "/firmware.bin", Arc::new(Recorder::default())).await }));
    }
    for task in tasks {
        let (head, body, ending) = task.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200"));
        assert_eq!(body.len(), full.len());
        assert!(body == full[..]);
        assert_eq!(ending, None);
    }
}

#[tokio::test]
async fn every_connection_reports_hello_handshake_request_and_response() {
    let mut server = Running::start(&scenario("le-short-chain"), image(1234)).await;
    let _ = get(server.addr, "/firmware.bin", Arc::new(Recorder::default())).await;
    let events = server.connection_events(1).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            ServerEvent::Accepted { .. } => "accepted",
            ServerEvent::ClientHello { .. } => "hello",
            ServerEvent::HandshakeDone { .. } => "handshake",
            ServerEvent::Request { .. } => "request",
            ServerEvent::Responded { .. } => "responded",
            ServerEvent::Closed { .. } => "closed",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["accepted", "hello", "handshake", "request", "responded", "closed"]);
    let ServerEvent::ClientHello { sni, cipher_suites, .. } = &events[1] else { unreachable!() };
    assert_eq!(sni.as_deref(), Some("ota.example.com"));
    assert!(!cipher_suites.is_empty());
    assert!(matches!(&events[4], ServerEvent::Responded { status: 200, body_bytes: 1234, fault: None, .. }));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_served_by_sni() {
    let text = "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n\
        [certs.cdn_leaf]\nissuer = \"r11\"\ndns = [\"cdn.example.net\"]\n\
        [server]\nchain = [\"leaf\", \"r11\"]\n\
        fault = { kind = \"redirect\", location = \"https://cdn.example.net/fw.bin\" }\n\
        [server.hosts.\"cdn.example.net\"]\nchain = [\"cdn_leaf\", \"r11\"]\npath = \"/fw.bin\"\n";
    let scenario = Scenario::from_source(&TomlSource::new("redirect.toml", text), &pki()).unwrap();
    let config = ServeConfig::for_scenario(&scenario, &pki(), image(4096), "/firmware.bin").unwrap();
    let (main_chain, cdn_chain) = (config.chain.ders(), config.hosts[0].chain.ders());
    let server = UpdateServer::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let addr = server.local_addr();
    let (sender, _events) = mpsc::unbounded_channel();
    tokio::spawn(server.run(sender, std::future::pending()));

    let seen = Arc::new(Recorder::default());
    let (head, _, _) = get_from(addr, "ota.example.com", "/firmware.bin", seen.clone()).await;
    assert!(head.starts_with("HTTP/1.1 302 Found"), "{head}");
    assert!(head.contains("Location: https://cdn.example.net/fw.bin\r\n"), "{head}");
    assert_eq!(*seen.0.lock().unwrap(), main_chain);

    let seen = Arc::new(Recorder::default());
    let (head, body, _) = get_from(addr, "cdn.example.net", "/fw.bin", seen.clone()).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(&body[..], &image(4096)[..]);
    assert_eq!(*seen.0.lock().unwrap(), cdn_chain);
    assert_ne!(main_chain[0], cdn_chain[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_cap_are_shed_and_a_download_still_completes() {
    use otarig::server::MAX_CONNECTIONS;
    let full = image(256 * 1024);
    let server = Running::start(&scenario("dst-cross-sign-rescue"), full.clone()).await;
    // Connections that never send a byte, more than the server serves at once.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 64 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let limit = std::time::Duration::from_secs(10);
    let download = tokio::time::timeout(limit, get(server.addr, "/firmware.bin", Arc::new(Recorder::default())));
    let (head, body, ending) = download.await.expect("the download is not kept waiting by idle connections");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == full[..] && ending.is_none());
    // The oldest idle connection was closed to make room, long before the handshake's time is up.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(limit, idle[0].read(&mut byte)).await.expect("the oldest idle connection is shed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// `otarig serve SCENARIO` without `--image` offers the scenario's own release, byte for byte
/// the app `run` offers its cells, with the scenario's chain.
#[tokio::test]
async fn otarig_serve_offers_the_scenario_s_own_release() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(ROOT)
        .args(["serve", "gts-chain", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    // The server goes on printing its events: keep reading them (a closed pipe would end it).
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first.trim().strip_prefix("serving gts-chain at https://").unwrap_or_else(|| panic!("{first:?}"));
    let addr: SocketAddr = url.trim_end_matches("/firmware.bin").parse().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (head, body, ending) = get(addr, "/firmware.bin", recorder.clone()).await;
    child.kill().unwrap();
    let _ = child.wait();

    let pki = pki();
    let fleet = otarig::firmware::Fleet::load(&Path::new(ROOT).join("firmware-images"), &pki).unwrap();
    let release = fleet.get(scenario("gts-chain").image.as_deref().unwrap()).unwrap();
    let expected = otarig::firmware::prepare::prepare(release, &fleet, &pki).unwrap().app;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body, expected, "the release's app");
    assert_eq!(ending, None);
    // The scenario's chain in its order: the leaf is minted afresh for each server, the
    // authorities are the lab's.
    let served = ServedChain::build(&scenario("gts-chain"), &pki).unwrap().ders();
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(seen.len(), served.len());
    assert_eq!(seen[1..], served[1..]);
}
