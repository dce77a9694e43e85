//! `otarig predict`: how each firmware's TLS client would judge a certificate chain, offline,
//! and with `--forecast` when it stops accepting it.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use otarig::device_tls::release::ReleaseCrypto;
use otarig::device_tls::{Anchors, ChainVerdict, DEFAULT_IN_CONTENT_LEN, DeviceTlsError, X509_FATAL_ERROR};
use otarig::firmware::Fleet;
use otarig::firmware::profile::{ClockSource, Source, Sourced};
use otarig::idf::{BuildVersion, Generation, mbedtls_of};
use otarig::image::CertInfo;
use otarig::pki::LabPki;
use otarig::predict::{Cliff, CliffKind, Device, Forecast, PredictError, Prediction, pem_certificates, predict};
use otarig::verify_flags::VerifyFlag;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::exit;

pub const AFTER_HELP: &str = "\
Judges the chain with the same mbedTLS decision the twin's handshake makes, configured from
each firmware's image: its roots or certificate bundle, its ESP-IDF version, and whether it
checks dates (against SNTP time = --at, its fixed clock, or 1970-01-01 00:00:10 when its clock
is never set). No board, no network. Exit status: 0 when judged (whatever the verdicts), 2 for
usage errors and unreadable files.

Examples:
  otarig predict --firmware all --chain chain.pem
  otarig predict --firmware dst-x3-idf3.2 --firmware app.bin --chain chain.pem --forecast
  otarig predict --trust isrg-root-x1.pem --hostname ota.example.com --chain chain.pem --at 2027-06-01
  openssl s_client -connect ota.example.com:443 -servername ota.example.com -showcerts </dev/null \\
      | otarig predict --firmware all --chain - --format json";

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The chain the server sends, in its order, leaf first (PEM, several certificates in one
    /// file; `-` reads standard input).
    #[arg(long, value_name = "PEM")]
    chain: PathBuf,
    /// A firmware: a manifest id, `all` (every fleet member), or an image file (app or merged
    /// flash). Repeatable.
    #[arg(long, value_name = "ID|IMAGE", required_unless_present = "trust", conflicts_with = "trust")]
    firmware: Vec<String>,
    /// Trusted roots instead of a firmware: PEM files (several certificates each allowed),
    /// judged together as one trust set.
    #[arg(long, value_name = "PEM", num_args = 1..)]
    trust: Vec<PathBuf>,
    /// The host name the device connects to (default: the host of the firmware's OTA URL).
    #[arg(long, value_name = "HOST", conflicts_with = "no_hostname")]
    hostname: Option<String>,
    /// Check no host name.
    #[arg(long)]
    no_hostname: bool,
    /// The ESP-IDF version to judge as (as builds write it: v4.4.8, v5.2.1-533-g9f4f8e24f2;
    /// default: the firmware's, v4.4 with --trust). Versions no emulated generation covers
    /// are refused.
    #[arg(long, value_name = "VERSION")]
    idf: Option<String>,
    /// Check certificate dates against --at, as a build with MBEDTLS_HAVE_TIME_DATE and SNTP
    /// does (default: as the firmware is built; off with --trust).
    #[arg(long, conflicts_with = "no_time_check")]
    time_check: bool,
    /// Check no certificate dates.
    #[arg(long)]
    no_time_check: bool,
    /// The date to judge on (YYYY-MM-DD or RFC 3339; default: now).
    #[arg(long, value_name = "DATE")]
    at: Option<String>,
    /// For each firmware, the first date on which it stops accepting this chain.
    #[arg(long)]
    forecast: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The fleet's manifests.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
    /// The lab PKI the manifests name.
    #[arg(long, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table, one row per firmware.
    Text,
    /// A JSON array, one object per firmware: `firmware`, `outcome`, `reason`, `flags`, `path`, ...
    Json,
}

pub fn run(args: &PredictArgs) -> u8 {
    match predict_command(args) {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn predict_command(args: &PredictArgs) -> Result<(), String> {
    if !args.trust.is_empty() && args.hostname.is_none() && !args.no_hostname {
        return Err("--trust needs --hostname HOST (the name the device connects to) or --no-hostname".into());
    }
    let idf = args.idf.as_deref().map(idf_option).transpose()?;
    let today = match &args.at {
        None => OffsetDateTime::now_utc(),
        Some(text) => otarig::pki::spec::parse_time(text).map_err(|message| format!("--at: {message}"))?,
    }
    .unix_timestamp();
    let (chain_name, chain) = read_chain(&args.chain)?;
    let mut devices = if args.trust.is_empty() {
        firmware_devices(&args.firmware, &args.fleet, &args.pki)?
    } else {
        vec![trust_device(&args.trust)?]
    };
    for device in &mut devices {
        apply_overrides(args, idf.clone(), device)?;
    }
    for device in &devices {
        let name = device.firmware.as_deref().unwrap_or("trust set");
        for guess in &device.guesses {
            eprintln!("warning: {name}: {guess}");
        }
        for note in build_notes(device) {
            eprintln!("note: {name}: {note}");
        }
    }
    let predictions = predict(&devices, &chain, today, args.forecast).map_err(|e| match e {
        PredictError::Tls {
            source: source @ (DeviceTlsError::ChainCertificate { .. } | DeviceTlsError::EmptyChain),
            ..
        } => {
            format!("{chain_name}: {source}")
        }
        PredictError::UnknownIdf { .. } => {
            format!("{e}; give --idf VERSION, or set `idf` in a manifest that names the build")
        }
        _ => e.to_string(),
    })?;
    if let Some(idf) = &idf {
        eprintln!("{}", emulation_note(&idf.value));
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&to_json(&predictions)).unwrap_or_default() + "\n",
        Format::Text => to_text(&chain_name, &chain, today, &predictions, args.forecast),
    };
    print!("{out}");
    Ok(())
}

fn read_chain(path: &Path) -> Result<(String, Vec<Vec<u8>>), String> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let bytes = otarig::input::read_capped_from(std::io::stdin(), otarig::input::MAX_IMAGE)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        ("standard input".to_owned(), bytes)
    } else {
        (
            path.display().to_string(),
            otarig::input::read_image(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )
    };
    let chain = pem_certificates(&bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok((name, chain))
}

pub(super) fn trust_device(files: &[PathBuf]) -> Result<Device, String> {
    let mut roots = Vec::new();
    for path in files {
        let bytes = otarig::input::read_image(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        roots.extend(pem_certificates(&bytes).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(Device::from_roots(roots))
}

/// The devices `--firmware` names (manifest ids of the fleet in `fleet_dir`, `all`, image
/// files), in order, each once.
pub(super) fn firmware_devices(firmware: &[String], fleet_dir: &Path, pki_dir: &Path) -> Result<Vec<Device>, String> {
    let mut lab: Option<(LabPki, Fleet)> = None;
    let mut devices: Vec<Device> = Vec::new();
    for spec in firmware {
        let path = Path::new(spec);
        if spec != "all" && path.is_file() {
            let bytes = otarig::input::read_image(path).map_err(|e| format!("cannot read {spec}: {e}"))?;
            devices.push(Device::from_image(spec, &bytes).map_err(|e| format!("{spec}: {e}"))?);
            continue;
        }
        if lab.is_none() {
            let pki = LabPki::open(pki_dir).map_err(|e| format!("the lab PKI ({}): {e}", pki_dir.display()))?;
            let fleet = Fleet::load(fleet_dir, &pki).map_err(|e| e.to_string())?;
            lab = Some((pki, fleet));
        }
        let Some((pki, fleet)) = &lab else { continue };
        let manifests: Vec<_> = if spec == "all" {
            fleet.members().collect()
        } else {
            let manifest = fleet.get(spec).ok_or_else(|| {
                format!("no firmware `{spec}`: not a manifest in {} and not a file", fleet_dir.display())
            })?;
            vec![manifest]
        };
        for manifest in manifests {
            if devices.iter().all(|d| d.firmware.as_deref() != Some(manifest.id.as_str())) {
                devices.push(Device::from_manifest(manifest, fleet, pki).map_err(|e| format!("{}: {e}", manifest.id))?);
            }
        }
    }
    Ok(devices)
}

/// `--idf`'s version, refused when no emulated generation covers it.
pub(super) fn idf_option(text: &str) -> Result<Sourced<BuildVersion>, String> {
    let version = BuildVersion::parse(text).map_err(|e| format!("--idf: `{text}` is not an ESP-IDF version ({e})"))?;
    Generation::of(version.release).map_err(|e| format!("--idf: {e}"))?;
    Ok(Sourced::new(version, Source::Given))
}

/// What `--idf VERSION` is judged as: the generation the twin emulates, the mbedTLS the
/// release ships and the certificate profile its build judges with.
pub(super) fn emulation_note(version: &BuildVersion) -> String {
    let generation = Generation::of(version.release).map_or_else(|e| e.to_string(), |g| g.to_string());
    let mbedtls = mbedtls_of(version.release).map_or("?".into(), |(a, b, c)| format!("{a}.{b}.{c}"));
    let certificates = ReleaseCrypto::of(version.release).describe();
    format!(
        "--idf {version}: emulated as ESP-IDF {generation}; the release ships mbedTLS {mbedtls}; certificates: {certificates}"
    )
}

/// What a build's own mbedTLS configuration changes in the prediction, one sentence each.
fn build_notes(device: &Device) -> Vec<String> {
    let mut notes = Vec::new();
    if !device.tls.curves_off.is_empty() {
        notes.push(format!(
            "built without {} (curves_off): a certificate with a key on one fails to parse (-0x3A00), and the \
             client does not offer it for ECDHE",
            device.tls.curves_off.names()
        ));
    }
    if device.tls.in_content_len != DEFAULT_IN_CONTENT_LEN {
        let len = device.tls.in_content_len;
        notes.push(format!(
            "a {len}-byte TLS input buffer (tls_in_content_len): the chain is judged as the Certificate message in \
             a record of its own (a server that sends its whole first flight in one record sends a longer one), \
             and the server must send its responses in records of at most {len} bytes (nginx's ssl_buffer_size)"
        ));
    }
    if let Some(heap) = device.tls.heap {
        notes.push(format!(
            "leaves {heap} bytes of heap for TLS (tls_heap): whether the connection's allocations fit is not \
             judged offline (heap: unknown); the verdict holds only if they do. A twin counts them: \
             mbedtls_ssl_setup out of memory, or a signature check that runs out and is reported as not trusted"
        ));
    }
    notes
}

fn apply_overrides(args: &PredictArgs, idf: Option<Sourced<BuildVersion>>, device: &mut Device) -> Result<(), String> {
    if let Some(idf) = idf {
        device.idf = Some(idf);
        device.sources.insert("idf", Source::Given);
    }
    if args.time_check {
        device.time_check = true;
        device.clock = ClockSource::Sntp;
        device.sources.insert("time_check", Source::Given);
        device.sources.insert("clock", Source::Given);
    }
    if args.no_time_check {
        device.time_check = false;
        device.sources.insert("time_check", Source::Given);
    }
    if args.no_hostname {
        device.hostname = None;
    } else if let Some(host) = &args.hostname {
        device.hostname = Some(host.clone());
        device.sources.insert("hostname", Source::Given);
    } else if device.hostname.is_none() {
        let name = device.firmware.as_deref().unwrap_or("trust set");
        let candidates = match device.url_candidates.as_slice() {
            [] => String::new(),
            urls => {
                format!(" (https:// strings in it: {})", urls.iter().take(5).cloned().collect::<Vec<_>>().join(", "))
            }
        };
        return Err(format!(
            "{name}: no OTA URL is known to take the host name from{candidates}; give --hostname HOST or --no-hostname, or set `ota_url` in a manifest"
        ));
    }
    Ok(())
}

pub(super) fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-11-25` at midnight, `2027-01-24 00:00:01` otherwise (UTC).
pub(super) fn when(unix: i64) -> String {
    let text = rfc3339(unix);
    match text.strip_suffix("T00:00:00Z") {
        Some(date) => date.to_owned(),
        None => text.trim_end_matches('Z').replace('T', " "),
    }
}

fn common_name(der: &[u8]) -> String {
    let subject = CertInfo::from_der(der).map_or_else(|| "?".into(), |info| info.subject);
    let cn = subject.split(", ").find_map(|part| part.strip_prefix("CN="));
    cn.map_or(subject.clone(), str::to_owned)
}

fn trust_text(anchors: &Anchors) -> String {
    match anchors {
        Anchors::Roots(roots) if roots.is_empty() => "nothing".into(),
        Anchors::Roots(roots) => format!("PEM {}", roots.iter().map(|r| common_name(r)).collect::<Vec<_>>().join(", ")),
        Anchors::Bundle { entries, .. } => format!("bundle, {} roots", entries.len()),
    }
}

/// The flags' kebab-case names (as in JSON), in mbedTLS's print order.
pub(super) fn flag_names(bits: u32) -> Vec<String> {
    let name = |flag| match serde_json::to_value(flag) {
        Ok(Value::String(name)) => name,
        _ => format!("{flag:?}"),
    };
    VerifyFlag::from_bits(bits).into_iter().map(name).collect()
}

/// The flags as mbedTLS left them; after a fatal error it sets every bit, which names nothing.
fn verdict_flags(verdict: &ChainVerdict) -> Vec<String> {
    if verdict.flags == u32::MAX { Vec::new() } else { flag_names(verdict.flags) }
}

fn verdict_text(prediction: &Prediction) -> String {
    let verdict = match prediction.rejection() {
        None => "accepted".into(),
        Some((class, reason)) => format!("{class} / {reason}"),
    };
    // The heap a budgeted device leaves for TLS is not judged offline.
    if prediction.device.tls.heap.is_some() { format!("{verdict}, heap unknown") } else { verdict }
}

/// The version and, when not stated or read from a descriptor, where it came from.
pub(super) fn idf_text(device: &Device) -> String {
    match &device.idf {
        None => "?".into(),
        Some(idf) if matches!(idf.source, Source::Manifest | Source::Descriptor | Source::Record) => {
            idf.value.to_string()
        }
        Some(idf) => format!("{} ({})", idf.value, idf.source.as_str()),
    }
}

fn dates_text(prediction: &Prediction) -> String {
    match (prediction.date_check_at, prediction.device.clock) {
        (None, _) => "off".into(),
        (Some(at), ClockSource::Sntp) => format!("SNTP {}", when(at)),
        (Some(at), ClockSource::Fixed(_)) => format!("fixed {}", when(at)),
        (Some(_), ClockSource::Unset) => "unset (1970)".into(),
    }
}

fn cliff_text(forecast: &Forecast) -> (String, String) {
    match forecast {
        Forecast::RejectedNow => ("-".into(), "already rejects it".into()),
        Forecast::Holds => ("-".into(), "accepts it at every date".into()),
        Forecast::Cliff(Cliff { at, kind, certificate, expires, rejection }) => {
            let cn = certificate.split(", ").find_map(|p| p.strip_prefix("CN=")).unwrap_or(certificate);
            let change = if *expires { "expires" } else { "becomes valid" };
            let what = match (kind, rejection) {
                (CliffKind::DeviceRejects, Some((class, reason))) => {
                    format!("device rejects ({class} / {reason}): {cn} {change}")
                }
                (CliffKind::DeviceRejects, None) => format!("device rejects: {cn} {change}"),
                (CliffKind::ServerMustChange, _) => format!("server must change: {cn} {change}"),
            };
            (when(*at), what)
        }
    }
}

fn to_text(chain_name: &str, chain: &[Vec<u8>], today: i64, predictions: &[Prediction], forecast: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let sent: Vec<String> = chain.iter().map(|der| common_name(der)).collect();
    let _ = writeln!(out, "{chain_name}: {} certificates, as sent: {}", chain.len(), sent.join(" <- "));
    let host = |p: &Prediction| p.device.hostname.clone().unwrap_or_else(|| "(none)".into());
    let one_host = predictions.iter().map(host).reduce(|a, b| if a == b { a } else { String::new() });
    let for_host = match one_host.as_deref() {
        Some("") | None => String::new(),
        Some("(none)") => ", no host name check".into(),
        Some(host) => format!(", host name {host}"),
    };
    let _ = writeln!(out, "judged on {}{for_host}\n", when(today));
    let per_row_host = one_host.as_deref() == Some("");
    let mut header = vec!["firmware", "IDF", "trust", "date check", "verdict", "flags"];
    if per_row_host {
        header.insert(4, "host");
    }
    if forecast {
        header.extend(["until", "cliff"]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(String::from).collect()];
    for p in predictions {
        let flags = if p.verdict.code == X509_FATAL_ERROR {
            format!("fatal -0x{:04X}", -p.verdict.code)
        } else {
            let names = verdict_flags(&p.verdict);
            if names.is_empty() { "-".into() } else { names.join(",") }
        };
        let mut row = vec![
            p.device.firmware.clone().unwrap_or_else(|| "(trust set)".into()),
            idf_text(&p.device),
            trust_text(&p.device.anchors),
            dates_text(p),
            verdict_text(p),
            flags,
        ];
        if per_row_host {
            row.insert(4, host(p));
        }
        if let Some(forecast) = &p.forecast {
            let (until, cliff) = cliff_text(forecast);
            row.extend([until, cliff]);
        }
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

fn to_json(predictions: &[Prediction]) -> Value {
    let objects = predictions.iter().map(|p| {
        let (outcome, reason) = match p.rejection() {
            None => ("accepted".to_owned(), None),
            Some((class, reason)) => (class.to_string(), Some(reason.to_string())),
        };
        let trust = match &p.device.anchors {
            Anchors::Roots(roots) => json!({
                "kind": "pem",
                "roots": roots.iter().map(|r| CertInfo::from_der(r).map(|i| i.subject)).collect::<Vec<_>>(),
            }),
            Anchors::Bundle { entries, format } => json!({
                "kind": "bundle", "roots": entries.len(), "format": format!("{format:?}"),
            }),
        };
        let mut object = json!({
            "firmware": p.device.firmware,
            "outcome": outcome,
            "reason": reason,
            "code": p.verdict.code,
            "code_name": otarig::codes::mbedtls_name(p.verdict.code),
            "flags": verdict_flags(&p.verdict),
            "flags_value": p.verdict.flags,
            "path": p.verdict.path.iter().map(|c| json!({
                "depth": c.depth, "subject": c.subject, "issuer": c.issuer, "flags": flag_names(c.flags),
            })).collect::<Vec<_>>(),
            "log": p.verdict.log.iter().map(|l| format!("{} {}: {}", l.level, l.tag, l.text)).collect::<Vec<_>>(),
            "idf": p.device.idf.as_ref().map(|idf| idf.value.to_string()),
            "sources": p.device.sources.iter().map(|(key, source)| (key.to_string(), json!(source.as_str()))).collect::<serde_json::Map<_, _>>(),
            "trust": trust,
            "hostname": p.device.hostname,
            "time_check": p.device.time_check,
            "curves_off": p.device.tls.curves_off,
            "tls_in_content_len": p.device.tls.in_content_len,
            "tls_heap": p.device.tls.heap,
            "heap": p.device.tls.heap.map(|_| "unknown"),
            "clock": p.date_check_at.map(rfc3339),
            "judged_at": rfc3339(p.today),
        });
        if let Some(forecast) = &p.forecast {
            object["forecast"] = match forecast {
                Forecast::RejectedNow => json!({ "kind": "rejected-now", "at": null }),
                Forecast::Holds => json!({ "kind": "holds", "at": null }),
                Forecast::Cliff(cliff) => json!({
                    "kind": cliff.kind.as_str(),
                    "at": rfc3339(cliff.at),
                    "certificate": cliff.certificate,
                    "change": if cliff.expires { "expires" } else { "becomes-valid" },
                    "outcome": cliff.rejection.map(|(class, _)| class.to_string()),
                    "reason": cliff.rejection.map(|(_, reason)| reason.to_string()),
                }),
            };
        }
        object
    });
    Value::Array(objects.collect())
}
