//! `otarig serve SCENARIO`: the HTTPS update server for one scenario, with live events.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use otarig::pki::LabPki;
use otarig::scenario::Scenario;
use otarig::server::{ServeConfig, ServerEvent, UpdateServer};

use super::exit;

pub const AFTER_HELP: &str = "\
Serves exactly the chain the scenario names, in its order, and the image at the OTA URL's path:
the scenario's own release (its `image`, built from the fleet's manifest as `run` builds it), or
the file --image names. Binds 127.0.0.1 unless told otherwise. Stop with Ctrl-C.

Examples:
  otarig serve dst-cross-sign-rescue
  otarig serve dst-cross-sign-rescue --image build/app-v2.bin
  otarig serve gts-chain --image app.bin --bind 127.0.0.1:8443
  openssl s_client -connect 127.0.0.1:8443 -servername ota.example.com -showcerts";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A scenario id (file name without .toml) or a path.
    scenario: String,
    /// The image to offer (default: the scenario's release, built as `run` builds it).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// The fleet whose manifest builds the scenario's release.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
    /// Address and port to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR:PORT")]
    bind: SocketAddr,
    /// The path of the OTA URL.
    #[arg(long, default_value = "/firmware.bin")]
    path: String,
    /// The scenarios directory (its pki/ folder holds the lab authorities).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: &ServeArgs) -> u8 {
    match serve(args) {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// The app of the release the scenario offers, as `run` builds it for its cells.
fn release_image(scenario: &Scenario, fleet: &std::path::Path, pki: &LabPki) -> Result<Vec<u8>, String> {
    let id = scenario
        .image
        .as_deref()
        .ok_or_else(|| format!("scenario `{}` names no `image` to offer\nhint: give --image FILE", scenario.id))?;
    let fleet = otarig::firmware::Fleet::load(fleet, pki).map_err(|e| e.to_string())?;
    let release = fleet.get(id).ok_or_else(|| format!("no manifest `{id}` in the fleet ({})", fleet_dir_hint(id)))?;
    let prepared = otarig::firmware::prepare::prepare(release, &fleet, pki).map_err(|e| format!("{id}: {e}"))?;
    eprintln!("offering release `{id}` ({} bytes), built from its manifest", prepared.app.len());
    Ok(prepared.app)
}

fn fleet_dir_hint(id: &str) -> String {
    format!("the scenario's `image = \"{id}\"` names a manifest of --fleet; or give --image FILE")
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let pki = LabPki::open(&args.dir.join("pki")).map_err(|e| e.to_string())?;
    let path = if args.scenario.ends_with(".toml") {
        PathBuf::from(&args.scenario)
    } else {
        args.dir.join(format!("{}.toml", args.scenario))
    };
    let scenario = Scenario::load(&path, &pki).map_err(|e| e.to_string())?;
    let image = match &args.image {
        Some(file) => otarig::input::read_image(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?,
        None => release_image(&scenario, &args.fleet, &pki)?,
    };
    let config = ServeConfig::for_scenario(&scenario, &pki, Arc::from(image), &args.path).map_err(|e| match e {
        otarig::pki::PkiError::NotGenerated { .. } => format!("{e}\nhint: {}", super::pki::NOT_GENERATED),
        _ => e.to_string(),
    })?;
    let chain = config.chain.clone();
    let hosts = config.hosts.clone();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let server = UpdateServer::bind(args.bind, config).await.map_err(|e| e.to_string())?;
        let addr = server.local_addr();
        println!("serving {} at https://{addr}{}", scenario.id, args.path);
        println!("chain sent, in order:");
        for (position, cert) in chain.certs.iter().enumerate() {
            println!("  [{position}] {}", cert.name);
        }
        if let Some(fault) = &scenario.fault {
            println!("fault: {fault:?}");
        }
        if let Some(size) = scenario.record_size {
            println!("responses in records of at most {size} bytes of plaintext");
        }
        for host in &hosts {
            let names: Vec<&str> = host.chain.certs.iter().map(|c| c.name.as_str()).collect();
            println!("for SNI {}: chain {}, image at {}", host.name, names.join(" <- "), host.path);
            if let Some(fault) = &host.fault {
                println!("  fault: {fault:?}");
            }
        }
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                print_event(&event);
            }
        });
        server
            .run(sender, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        printer.abort();
        Ok(())
    })
}

fn print_event(event: &ServerEvent) {
    let id = event.connection();
    match event {
        ServerEvent::Accepted { peer, .. } => println!("#{id} connection from {peer}"),
        ServerEvent::ClientHello { sni, cipher_suites, .. } => {
            println!("#{id} ClientHello sni={} suites={}", sni.as_deref().unwrap_or("-"), cipher_suites.join(","));
        }
        ServerEvent::HandshakeDone { version, cipher_suite, .. } => {
            println!("#{id} handshake {version} {cipher_suite}");
        }
        ServerEvent::HandshakeFailed { error, alert_from_client, .. } => match alert_from_client {
            Some(alert) => println!("#{id} handshake failed: the client sent {alert}"),
            None => println!("#{id} handshake failed: {error}"),
        },
        ServerEvent::FaultBeforeTls { fault, .. } => println!("#{id} fault: {fault}"),
        ServerEvent::Request { method, path, .. } => println!("#{id} {method} {path}"),
        ServerEvent::Responded { status, body_bytes, fault, .. } => {
            let fault = fault.as_deref().map(|f| format!(" (fault {f})")).unwrap_or_default();
            println!("#{id} {status}, {body_bytes} body bytes{fault}");
        }
        ServerEvent::BadRequest { reason, .. } => println!("#{id} bad request: {reason}"),
        ServerEvent::Closed { millis, bytes_sent, .. } => {
            println!("#{id} closed after {millis} ms, {bytes_sent} bytes");
        }
    }
}
