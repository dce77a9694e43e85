//! Update-server throughput: how many megabytes per second and how many TLS handshakes per
//! second the HTTPS update server delivers on loopback, with 50 clients downloading at once
//! and with one.
//!
//! Why: a lab rack updates many boards at once from one rig host, each board pulling the whole
//! image over a fresh TLS 1.2 connection (a full handshake: a board updating once has no
//! session to resume). The server must not be what limits a batch; this measures its ceiling,
//! and the handshake rate, which bounds how fast boards that fail early (bad chain, fault
//! scenarios) cycle.
//!
//! What it does (`cargo bench --bench server_throughput`):
//!
//! 1. Builds the served chain of `scenarios/dst-cross-sign-rescue.toml` (leaf <- R11 <- ISRG
//!    Root X1 cross-signed by DST, RSA-2048 leaf, TLS 1.2 only) and starts an
//!    `otarig::server::UpdateServer` on 127.0.0.1:0 serving a 2 MiB image at `/firmware.bin`.
//!    Server and clients share one multi-threaded tokio runtime (one worker per core).
//! 2. [`CLIENTS`] concurrent tokio-rustls clients each download the image [`ROUNDS`] times,
//!    one connection per download. The clients accept exactly the chain the scenario serves
//!    (their verifier compares it byte for byte, and checks the handshake signature with the
//!    leaf's key) and have session resumption off, so every handshake is a full one. The same
//!    with 1 client for comparison, and with 1 client making all 50 clients' downloads one
//!    after another (the same bytes, a measurable time). Each measurement runs [`RUNS`] times;
//!    the run with the median wall time is shown, with the range of MB/s over all runs.
//! 3. A handshake-only loop: [`HANDSHAKES`] sequential connect + handshake + close_notify.
//!
//! Reported: total MB (10^6 bytes) of image bodies, wall time, aggregate MB/s, connections
//! (= full handshakes) per second, handshake latency (TCP connect to handshake done) median
//! and 95th percentile, and the process's CPU use over the wall time (server and clients
//! together: the clients' decryption and checks cost CPU on the same cores as the server).
//!
//! Checks, so the figures are for correct work: every response is `200` with the image's
//! Content-Length, every body is complete and byte-identical to the image (compared as it
//! arrives) and ends with TLS close_notify; every connection negotiated TLS 1.2 with ECDHE-RSA
//! and AES-GCM, one suite throughout, in a full handshake; the server's own events agree
//! (as many connections accepted, handshakes done, full responses and body bytes sent, no
//! failed handshake; handshake-only connections end as "closed before a request").
//!
//! Without `--bench` (`cargo test --benches`) it does one quick round (4 clients, 1 client,
//! 1 client × 4, 5 handshakes) with all the checks.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otarig::pki::LabPki;
use otarig::scenario::{Scenario, ServedChain};
use otarig::server::{ServeConfig, ServerEvent, UpdateServer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Every printed line starts with this.
const P: &str = "server_throughput:";
/// The scenario whose chain is served.
const SCENARIO: &str = "dst-cross-sign-rescue";
/// The image: 2 MiB.
const IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The OTA URL's path.
const IMAGE_PATH: &str = "/firmware.bin";
/// Concurrent clients in the main measurement.
const CLIENTS: usize = 50;
/// Downloads per client, one connection each.
const ROUNDS: usize = 4;
/// Sequential handshakes in the handshake-only loop.
const HANDSHAKES: usize = 200;
/// Repetitions of each measurement; the median one is shown.
const RUNS: usize = 5;
/// The host name the clients ask for (SNI), as the fleet's firmware does.
const HOST: &str = "ota.example.com";

/// What a run does.
#[derive(Clone, Copy)]
struct Plan {
    clients: usize,
    rounds: usize,
    handshakes: usize,
    runs: usize,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let plan = if full {
        Plan { clients: CLIENTS, rounds: ROUNDS, handshakes: HANDSHAKES, runs: RUNS }
    } else {
        Plan { clients: 4, rounds: 1, handshakes: 5, runs: 1 }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(bench(plan, full));
}

async fn bench(plan: Plan, full: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pki_dir = root.join("scenarios/pki");
    let pki = LabPki::open(&pki_dir).unwrap_or_else(|e| panic!("{P} {}: {e}", pki_dir.display()));
    let scenario_path = root.join(format!("scenarios/{SCENARIO}.toml"));
    let scenario =
        Scenario::load(&scenario_path, &pki).unwrap_or_else(|e| panic!("{P} {}: {e}", scenario_path.display()));
    assert!(scenario.fault.is_none(), "{P} {SCENARIO} must serve without a fault");
    let chain = ServedChain::build(&scenario, &pki).unwrap_or_else(|e| panic!("{P} {SCENARIO}: {e}"));
    let image: Arc<[u8]> = (0..IMAGE_BYTES).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();

    let server = Server::start(&scenario, &chain, image.clone()).await;
    let connector = connector(chain.ders());

    let started = Instant::now();
    let mut concurrent = Vec::new();
    let mut single = Vec::new();
    let mut single_same_work = Vec::new();
    let mut handshakes = Vec::new();
    for _ in 0..plan.runs {
        concurrent.push(downloads(&server, &connector, &image, plan.clients, plan.rounds).await);
        single.push(downloads(&server, &connector, &image, 1, plan.rounds).await);
        single_same_work.push(downloads(&server, &connector, &image, 1, plan.clients * plan.rounds).await);
        handshakes.push(handshake_loop(&server, &connector, plan.handshakes).await);
    }
    let all_downloads = || concurrent.iter().chain(&single).chain(&single_same_work);

    // One suite, version and key exchange throughout.
    let negotiated = &concurrent[0].negotiated;
    for other in all_downloads().map(|r| &r.negotiated).chain(handshakes.iter().map(|h| &h.negotiated)) {
        assert_eq!(other, negotiated, "{P} not every connection negotiated the same parameters");
    }

    if !full {
        println!(
            "{P} smoke run (no --bench): {} + {} + {} downloads of {} bytes and {} handshakes checked in {:.3} s \
             ({} {})",
            concurrent[0].downloads,
            single[0].downloads,
            single_same_work[0].downloads,
            IMAGE_BYTES,
            plan.handshakes,
            started.elapsed().as_secs_f64(),
            negotiated.version,
            negotiated.suite
        );
        server.stop();
        return;
    }

    let names: Vec<String> = chain.certs.iter().map(|c| c.name.clone()).collect();
    println!(
        "{P} scenario {SCENARIO}: chain {} ({} certificates, {} bytes), TLS 1.2 only; \
         image {} bytes (2 MiB) at {IMAGE_PATH}",
        names.join(" <- "),
        chain.certs.len(),
        chain.certs.iter().map(|c| c.der.len()).sum::<usize>(),
        IMAGE_BYTES
    );
    println!(
        "{P} negotiated on every connection: {} {}, key exchange {}, {} handshake (client resumption off)",
        negotiated.version, negotiated.suite, negotiated.kx, negotiated.kind
    );
    println!(
        "{P} loopback 127.0.0.1, server and clients in one tokio runtime ({} workers = cores); \
         median of {} runs by wall time; MB = 10^6 bytes",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        plan.runs
    );
    println!(
        "{P} {:>7} | {:>9} | {:>8} | {:>7} | {:>8} | {:>15} | {:>8} | {:>21} | {:>11} | {:>5}",
        "clients",
        "downloads",
        "total MB",
        "wall s",
        "MB/s",
        "MB/s range",
        "conn/s",
        "handshake ms med/p95",
        "download ms",
        "CPU %"
    );
    // The last row: one client doing the 50 clients' downloads one after another (same bytes).
    for runs in [&concurrent, &single, &single_same_work] {
        let median_run = median_by_wall(runs);
        let (low, high) =
            runs.iter().map(Downloads::mb_per_s).fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        println!(
            "{P} {:>7} | {:>9} | {:>8.1} | {:>7.3} | {:>8.1} | {:>15} | {:>8.1} | {:>21} | {:>11.1} | {:>5.0}",
            median_run.clients,
            median_run.downloads,
            median_run.body_bytes as f64 / 1e6,
            median_run.wall.as_secs_f64(),
            median_run.mb_per_s(),
            format!("{low:.1}..{high:.1}"),
            median_run.downloads as f64 / median_run.wall.as_secs_f64(),
            format!(
                "{:.2} / {:.2}",
                ms(percentile(&median_run.handshakes, 50)),
                ms(percentile(&median_run.handshakes, 95))
            ),
            ms(percentile(&median_run.durations, 50)),
            median_run.cpu_percent()
        );
    }
    let median_loop = median_by_wall(&handshakes);
    let (low, high) =
        handshakes.iter().map(Handshakes::per_second).fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    println!(
        "{P} handshake only: {} sequential connect + full handshake + close_notify in {:.3} s: {:.0} handshakes/s \
         (range {low:.0}..{high:.0}), median {:.2} ms, p95 {:.2} ms each, CPU {:.0} %",
        median_loop.count,
        median_loop.wall.as_secs_f64(),
        median_loop.per_second(),
        ms(percentile(&median_loop.latencies, 50)),
        ms(percentile(&median_loop.latencies, 95)),
        median_loop.cpu_percent()
    );
    let total_downloads: usize = all_downloads().map(|r| r.downloads).sum();
    println!(
        "{P} correctness: {total_downloads} downloads, each 200 with Content-Length {IMAGE_BYTES}, body complete and \
         byte-identical, close_notify at the end; {} handshakes; every chain exactly as served; the server's events \
         agree (accepted, handshakes, full responses, body bytes sent, no failure)",
        total_downloads + handshakes.iter().map(|h| h.count).sum::<usize>()
    );
    println!("{P} total bench time {:.1} s", started.elapsed().as_secs_f64());
    server.stop();
}

// ------------------------------------------------------------------------------------------
// Server
// ------------------------------------------------------------------------------------------

/// The running update server and a tally of its events.
struct Server {
    addr: SocketAddr,
    tally: Arc<Mutex<Tally>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// What the server reported, counted.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    handshakes: u64,
    handshake_failures: Vec<String>,
    /// `200` responses with the whole image.
    full_responses: u64,
    other_responses: u64,
    /// Connections closed before a request (the handshake-only loop's).
    bad_requests: u64,
    closed: u64,
    bytes_sent: u64,
    suites: BTreeMap<String, u64>,
}

impl Server {
    async fn start(scenario: &Scenario, chain: &ServedChain, image: Arc<[u8]>) -> Self {
        let config = ServeConfig {
            chain: chain.clone(),
            tls: scenario.tls,
            record_size: scenario.record_size.map(|size| size as usize),
            image,
            path: IMAGE_PATH.into(),
            fault: scenario.fault.clone(),
            hosts: Vec::new(),
        };
        let server = UpdateServer::bind("127.0.0.1:0".parse().expect("an address"), config)
            .await
            .unwrap_or_else(|e| panic!("{P} the server does not start: {e}"));
        let addr = server.local_addr();
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(events, async {
            let _ = stopped.await;
        }));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let counting = tally.clone();
        tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                let mut tally = counting.lock().expect("the tally");
                match event {
                    ServerEvent::Accepted { .. } => tally.accepted += 1,
                    ServerEvent::HandshakeDone { cipher_suite, .. } => {
                        tally.handshakes += 1;
                        *tally.suites.entry(cipher_suite).or_default() += 1;
                    }
                    ServerEvent::HandshakeFailed { error, .. } => tally.handshake_failures.push(error),
                    ServerEvent::Responded { status: 200, body_bytes, fault: None, .. }
                        if body_bytes == IMAGE_BYTES as u64 =>
                    {
                        tally.full_responses += 1;
                    }
                    ServerEvent::Responded { .. } => tally.other_responses += 1,
                    ServerEvent::BadRequest { .. } => tally.bad_requests += 1,
                    ServerEvent::Closed { bytes_sent, .. } => {
                        tally.closed += 1;
                        tally.bytes_sent += bytes_sent;
                    }
                    _ => {}
                }
            }
        });
        Self { addr, tally, stop }
    }

    /// Waits until `connections` connections have closed since the last call, then returns
    /// (and resets) the tally.
    async fn settle(&self, connections: u64) -> Tally {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mut tally = self.tally.lock().expect("the tally");
                if tally.closed >= connections {
                    return std::mem::take(&mut *tally);
                }
            }
            assert!(Instant::now() < deadline, "{P} the server did not report {connections} closed connections");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
    }
}

// ------------------------------------------------------------------------------------------
// Clients
// ------------------------------------------------------------------------------------------

/// Accepts exactly the chain the scenario serves (byte for byte, in order) and checks the
/// handshake signatures with the leaf's key: the benchmark is about speed, not trust, but must
/// see the right server.
#[derive(Debug)]
struct ExactChain {
    ders: Vec<Vec<u8>>,
}

impl ServerCertVerifier for ExactChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented: Vec<&[u8]> = std::iter::once(end_entity).chain(intermediates).map(AsRef::as_ref).collect();
        let expected: Vec<&[u8]> = self.ders.iter().map(Vec::as_slice).collect();
        if presented != expected {
            return Err(rustls::Error::General(format!("{P} the server did not present the scenario's chain")));
        }
        if server_name.to_str() != HOST {
            return Err(rustls::Error::General(format!("{P} unexpected server name {server_name:?}")));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// rustls's default client (aws-lc-rs, its default suites and groups) with resumption off.
fn connector(ders: Vec<Vec<u8>>) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExactChain { ders }))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// What a connection negotiated, as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Negotiated {
    version: String,
    suite: String,
    kx: String,
    kind: String,
}

impl Negotiated {
    fn of(connection: &rustls::ClientConnection) -> Self {
        let negotiated = Self {
            version: connection.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
            suite: connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default(),
            kx: connection.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name())).unwrap_or_default(),
            kind: connection.handshake_kind().map(|k| format!("{k:?}")).unwrap_or_default(),
        };
        assert_eq!(negotiated.version, "TLSv1_2", "{P} {negotiated:?}");
        assert!(
            negotiated.suite.starts_with("TLS_ECDHE_RSA_WITH_AES_") && negotiated.suite.contains("_GCM_"),
            "{P} not ECDHE-RSA with AES-GCM: {negotiated:?}"
        );
        assert_eq!(negotiated.kind, "Full", "{P} {negotiated:?}");
        negotiated
    }
}

/// One download, checked.
struct Download {
    /// TCP connect to handshake done.
    handshake: Duration,
    /// TCP connect to the body's last byte and close_notify.
    took: Duration,
    negotiated: Negotiated,
}

/// Connects, GETs the image, checks the response as it arrives.
async fn download(addr: SocketAddr, connector: &TlsConnector, image: &[u8]) -> Download {
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{P} connect: {e}"));
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let mut tls = connector
        .connect(ServerName::try_from(HOST).expect("a DNS name"), tcp)
        .await
        .unwrap_or_else(|e| panic!("{P} handshake: {e}"));
    let handshake = started.elapsed();
    let negotiated = Negotiated::of(tls.get_ref().1);
    let request = format!("GET {IMAGE_PATH} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: ESP32 HTTP Client/1.0\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap_or_else(|e| panic!("{P} request: {e}"));

    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let mut in_body = false;
    let mut received = 0usize;
    loop {
        let n = match tls.read(&mut buf).await {
            Ok(0) => break, // close_notify: tokio-rustls reports a TCP close without it as an error
            Ok(n) => n,
            Err(e) => panic!("{P} the download ended with `{e}` after {received} body bytes"),
        };
        if in_body {
            compare(&buf[..n], image, &mut received);
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = head.split_off(end + 4);
            check_head(&head, image.len());
            compare(&body, image, &mut received);
            in_body = true;
        } else {
            assert!(head.len() < 8192, "{P} no end of the response head in {} bytes", head.len());
        }
    }
    assert!(in_body, "{P} no response head");
    assert_eq!(received, image.len(), "{P} short body");
    Download { handshake, took: started.elapsed(), negotiated }
}

/// The next `chunk` of the body must be the image's bytes at `received`.
fn compare(chunk: &[u8], image: &[u8], received: &mut usize) {
    let end = *received + chunk.len();
    assert!(end <= image.len(), "{P} body longer than the image ({end} bytes)");
    assert!(chunk == &image[*received..end], "{P} body differs from the image within bytes {received}..{end}");
    *received = end;
}

fn check_head(head: &[u8], length: usize) {
    let head = std::str::from_utf8(head).unwrap_or_else(|_| panic!("{P} response head is not UTF-8"));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{P} {head}");
    assert!(head.contains(&format!("\r\nContent-Length: {length}\r\n")), "{P} {head}");
}

// ------------------------------------------------------------------------------------------
// Measurements
// ------------------------------------------------------------------------------------------

/// One download measurement.
struct Downloads {
    clients: usize,
    downloads: usize,
    body_bytes: u64,
    wall: Duration,
    cpu: Duration,
    handshakes: Vec<Duration>,
    durations: Vec<Duration>,
    negotiated: Negotiated,
}

impl Downloads {
    fn mb_per_s(&self) -> f64 {
        self.body_bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }

    fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

/// `clients` concurrent clients, each downloading `rounds` times; checked against the
/// server's events.
async fn downloads(
    server: &Server,
    connector: &TlsConnector,
    image: &Arc<[u8]>,
    clients: usize,
    rounds: usize,
) -> Downloads {
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (addr, connector, image) = (server.addr, connector.clone(), image.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                done.push(download(addr, &connector, &image).await);
            }
            done
        }));
    }
    let mut all = Vec::with_capacity(clients * rounds);
    for task in tasks {
        all.extend(task.await.unwrap_or_else(|e| panic!("{P} a client failed: {e}")));
    }
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;

    let count = all.len() as u64;
    let tally = server.settle(count).await;
    assert_eq!(tally.accepted, count, "{P} {tally:?}");
    assert_eq!(tally.handshakes, count, "{P} {tally:?}");
    assert!(tally.handshake_failures.is_empty(), "{P} {tally:?}");
    assert_eq!(tally.full_responses, count, "{P} {tally:?}");
    assert_eq!(tally.other_responses + tally.bad_requests, 0, "{P} {tally:?}");
    assert_eq!(tally.bytes_sent, count * image.len() as u64, "{P} {tally:?}");
    assert_eq!(tally.suites.len(), 1, "{P} {tally:?}");

    let negotiated = all[0].negotiated.clone();
    assert!(tally.suites.contains_key(&negotiated.suite), "{P} server and client disagree: {tally:?}");
    for download in &all {
        assert_eq!(download.negotiated, negotiated, "{P} connections negotiated differently");
    }
    Downloads {
        clients,
        downloads: all.len(),
        body_bytes: count * image.len() as u64,
        wall,
        cpu,
        handshakes: all.iter().map(|d| d.handshake).collect(),
        durations: all.iter().map(|d| d.took).collect(),
        negotiated,
    }
}

/// One handshake-only loop.
struct Handshakes {
    count: usize,
    wall: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
    negotiated: Negotiated,
}

impl Handshakes {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.wall.as_secs_f64()
    }

    fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

/// `count` sequential connect + handshake + close_notify.
async fn handshake_loop(server: &Server, connector: &TlsConnector, count: usize) -> Handshakes {
    let name = ServerName::try_from(HOST).expect("a DNS name");
    let mut latencies = Vec::with_capacity(count);
    let mut negotiated = None;
    let cpu_before = cpu_time();
    let started = Instant::now();
    for _ in 0..count {
        let began = Instant::now();
        let tcp = TcpStream::connect(server.addr).await.unwrap_or_else(|e| panic!("{P} connect: {e}"));
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap_or_else(|e| panic!("{P} handshake: {e}"));
        latencies.push(began.elapsed());
        let this = Negotiated::of(tls.get_ref().1);
        assert!(negotiated.get_or_insert_with(|| this.clone()) == &this, "{P} handshakes negotiated differently");
        tls.shutdown().await.unwrap_or_else(|e| panic!("{P} close_notify: {e}"));
    }
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;

    let tally = server.settle(count as u64).await;
    assert_eq!(tally.accepted, count as u64, "{P} {tally:?}");
    assert_eq!(tally.handshakes, count as u64, "{P} {tally:?}");
    assert!(tally.handshake_failures.is_empty(), "{P} {tally:?}");
    assert_eq!(
        tally.bad_requests, count as u64,
        "{P} each handshake-only connection closes before a request: {tally:?}"
    );
    assert_eq!(tally.full_responses + tally.other_responses + tally.bytes_sent, 0, "{P} {tally:?}");
    Handshakes { count, wall, cpu, latencies, negotiated: negotiated.expect("at least one handshake") }
}

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// Anything with a wall time.
trait Timed {
    fn wall(&self) -> Duration;
}

impl Timed for Downloads {
    fn wall(&self) -> Duration {
        self.wall
    }
}

impl Timed for Handshakes {
    fn wall(&self) -> Duration {
        self.wall
    }
}

/// The run with the median wall time (the lower middle one for an even count).
fn median_by_wall<T: Timed>(runs: &[T]) -> &T {
    let mut sorted: Vec<&T> = runs.iter().collect();
    sorted.sort_by_key(|r| r.wall());
    sorted[(sorted.len() - 1) / 2]
}

/// The `pct`th percentile (nearest rank).
fn percentile(times: &[Duration], pct: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0, "{P} getrusage");
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn ms(took: Duration) -> f64 {
    took.as_secs_f64() * 1e3
}
