//! `otarig rescue`: for each firmware, the chains a server its owner controls can still send so
//! that it updates, how long each keeps working, the chain file for the web server, and each
//! confirmed on a twin; or why none can.

use std::path::{Path, PathBuf};

use clap::Args;
use otarig::catalogue::Catalogue;
use otarig::firmware::Fleet;
use otarig::firmware::profile::{ClockSource, Source};
use otarig::pki::LabPki;
use otarig::rescue::{
    Answer, ConfirmOptions, FirmwareRescue, LabMap, NoRescue, Origin, RescueContext, Standing, TrustedRole, TwinCheck,
    TwinFirmware,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::predict::{emulation_note, firmware_devices, idf_option, idf_text, rfc3339, trust_device, when};
use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
For each firmware: the chains a server its owner controls can send so that it still updates. The
leaf comes from a CA an owner can get one from on --at (the issuing intermediates of the public
CAs in data/public-cas/, or the owner's own CA where the firmware trusts a private root), then
real certificates exactly as their CAs published them, up to what the firmware trusts. Each
chain is judged by the device's own decision (predict's: its release's mbedTLS profile, date
checks only when it checks dates) and run on a twin against a server sending the lab's
look-alike chain. Exit status: 0 when every firmware has a rescue, 1 when one cannot be rescued,
2 for usage errors, unreadable files and an --out in use, 3 when the rig could not run the twins.

Examples:
  otarig rescue --firmware dst-x3-idf3.2
  otarig rescue --firmware all --at 2026-11-25 --chain-file chains/
  otarig rescue --firmware app.bin --no-twin --format json
  otarig rescue --trust isrg-root-x1.pem --idf v4.4 --time-check";

#[derive(Debug, Args)]
pub struct RescueArgs {
    /// A firmware: a manifest id, `all` (every fleet member), or an image file (app or merged
    /// flash). Repeatable.
    #[arg(long, value_name = "ID|IMAGE", required_unless_present = "trust", conflicts_with = "trust")]
    firmware: Vec<String>,
    /// Trusted certificates instead of a firmware: PEM files (several certificates each
    /// allowed), as one trust set in an ESP-IDF v4.4 client (see --idf).
    #[arg(long, value_name = "PEM", num_args = 1..)]
    trust: Vec<PathBuf>,
    /// The host name the owner's leaf is for (default: the host of the firmware's OTA URL,
    /// else ota.example.com).
    #[arg(long, value_name = "HOST")]
    hostname: Option<String>,
    /// The ESP-IDF version to judge as (default: the firmware's, v4.4 with --trust).
    #[arg(long, value_name = "VERSION")]
    idf: Option<String>,
    /// Check certificate dates against --at, as a build with MBEDTLS_HAVE_TIME_DATE and SNTP.
    #[arg(long, conflicts_with = "no_time_check")]
    time_check: bool,
    /// Check no certificate dates.
    #[arg(long)]
    no_time_check: bool,
    /// The day the owner gets the leaf and the device meets the chain (YYYY-MM-DD or RFC 3339;
    /// default: now).
    #[arg(long, value_name = "DATE")]
    at: Option<String>,
    /// Write each answer's chain file (the certificates after the leaf, PEM, as published) into
    /// DIR, one per firmware and answer.
    #[arg(long, value_name = "DIR")]
    chain_file: Option<PathBuf>,
    /// Do not confirm the answers on twins.
    #[arg(long)]
    no_twin: bool,
    /// Twins side by side for the confirmations (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    twins: Option<u32>,
    /// The twins' run directory: results.jsonl, transcripts/ and the cells' scenarios
    /// (default: target/otarig/rescue/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// The fleet's manifests.
    #[arg(long, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
    /// The lab PKI (look-alikes, the owner's own CA).
    #[arg(long, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
    /// The catalogue of real public CA certificates.
    #[arg(long, default_value = "data/public-cas", value_name = "DIR")]
    catalogue: PathBuf,
}

pub fn run(args: &RescueArgs) -> u8 {
    match rescue_command(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn rescue_command(args: &RescueArgs) -> Result<u8, String> {
    let idf = args.idf.as_deref().map(idf_option).transpose()?;
    let at = match &args.at {
        None => OffsetDateTime::now_utc(),
        Some(text) => otarig::pki::spec::parse_time(text).map_err(|message| format!("--at: {message}"))?,
    }
    .unix_timestamp();
    let catalogue = Catalogue::open(&args.catalogue)
        .map_err(|e| format!("the catalogue of public CAs ({}): {e}", args.catalogue.display()))?;
    let pki = LabPki::open(&args.pki).map_err(|e| format!("the lab PKI ({}): {e}", args.pki.display()))?;
    let lab = LabMap::new(&pki);
    let mut devices = if args.trust.is_empty() {
        firmware_devices(&args.firmware, &args.fleet, &args.pki)?
    } else {
        vec![trust_device(&args.trust)?]
    };
    let overridden = idf.is_some() || args.time_check || args.no_time_check;
    for device in &mut devices {
        if let Some(idf) = &idf {
            device.idf = Some(idf.clone());
            device.sources.insert("idf", Source::Given);
        }
        if args.time_check {
            device.time_check = true;
            device.clock = ClockSource::Sntp;
            device.sources.insert("time_check", Source::Given);
        }
        if args.no_time_check {
            device.time_check = false;
            device.sources.insert("time_check", Source::Given);
        }
        if let Some(host) = &args.hostname {
            device.hostname = Some(host.clone());
        }
        let name = device.firmware.as_deref().unwrap_or("trust set");
        for guess in &device.guesses {
            eprintln!("warning: {name}: {guess}");
        }
    }
    if let Some(idf) = &idf {
        eprintln!("{}", emulation_note(&idf.value));
    }
    let context = RescueContext { catalogue: &catalogue, pki: &pki, lab: &lab };
    let mut rescues = Vec::with_capacity(devices.len());
    for device in &devices {
        let rescue = otarig::rescue::rescue(device, context, at).map_err(|e| match e {
            otarig::rescue::RescueError::UnknownIdf { .. } => {
                format!("{e}; give --idf VERSION, or set `idf` in a manifest that names the build")
            }
            _ => e.to_string(),
        })?;
        rescues.push(rescue);
    }

    let mut twin_dir = None;
    if !args.no_twin && rescues.iter().any(|r| !r.answers.is_empty()) {
        let fleet = Fleet::load(&args.fleet, &pki).ok();
        let how: Vec<TwinFirmware> =
            rescues.iter().map(|r| twin_firmware(r, args, overridden, fleet.as_ref())).collect();
        let out = args.out.clone().unwrap_or_else(default_out);
        match fleet {
            Some(fleet) => {
                let options = ConfirmOptions {
                    out: out.clone(),
                    twins: args.twins.map_or_else(otarig::run::default_twins, |n| n as usize),
                    fleet,
                    pki_dir: args.pki.clone(),
                };
                if let Err(err) = otarig::rescue::confirm(&mut rescues, &how, &options) {
                    eprintln!("error: the twin cells: {err}");
                    return Ok(confirm_error_code(&err));
                }
                twin_dir = Some(out);
            }
            None => {
                let why = format!("no fleet in {} to take the update release from", args.fleet.display());
                for answer in rescues.iter_mut().flat_map(|r| r.answers.iter_mut()) {
                    answer.twin = TwinCheck::NotPossible(why.clone());
                }
            }
        }
    }

    let files = match &args.chain_file {
        Some(dir) => write_chain_files(dir, &rescues)?,
        None => Vec::new(),
    };
    match args.format {
        OutputFormat::Json => {
            let value = to_json(&rescues, &catalogue, &files);
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        OutputFormat::Text => print!("{}", to_text(&rescues, &catalogue, &files, twin_dir.as_deref())),
    }
    let unrescued = rescues.iter().any(|r| !rescued(r));
    let rig_failed = rescues.iter().flat_map(|r| &r.answers).any(|a| matches!(a.twin, TwinCheck::RigFailed(_)));
    Ok(if unrescued {
        exit::FAIL
    } else if rig_failed {
        exit::INFRA
    } else {
        exit::OK
    })
}

/// The exit code of twin cells that could not run at all: 2 for a run directory that cannot be
/// written, another run holds or that holds results (give another `--out`), else 3 (the rig).
fn confirm_error_code(err: &otarig::rescue::ConfirmError) -> u8 {
    use otarig::rescue::ConfirmError;
    use otarig::run::RunError;
    match err {
        ConfirmError::Run(RunError::Locked(_) | RunError::HoldsResults { .. } | RunError::Output { .. })
        | ConfirmError::Pki(_)
        | ConfirmError::Write { .. } => {
            eprintln!("hint: give another --out, or --no-twin");
            exit::USAGE
        }
        _ => exit::INFRA,
    }
}

/// How a firmware runs on a twin.
fn twin_firmware(rescue: &FirmwareRescue, args: &RescueArgs, overridden: bool, fleet: Option<&Fleet>) -> TwinFirmware {
    let Some(id) = rescue.device.firmware.as_deref() else { return TwinFirmware::TrustSet };
    if fleet.is_some_and(|fleet| fleet.get(id).is_some()) {
        if overridden {
            return TwinFirmware::Not(
                "--idf, --time-check and --no-time-check change the firmware, and the twin runs it as its manifest says"
                    .into(),
            );
        }
        if args.hostname.is_some() {
            return TwinFirmware::Not("--hostname changes the host the firmware connects to".into());
        }
        return TwinFirmware::Fleet(id.to_owned());
    }
    let path = Path::new(id);
    if path.is_file() {
        if overridden {
            return TwinFirmware::Not(
                "--idf, --time-check and --no-time-check change the build the twin would run".into(),
            );
        }
        return TwinFirmware::Image(path.to_owned());
    }
    TwinFirmware::Not("the firmware is neither a fleet member nor an image file".into())
}

/// A rescue stands when an answer was not contradicted by its twin.
fn rescued(rescue: &FirmwareRescue) -> bool {
    rescue.answers.iter().any(|a| !matches!(a.twin, TwinCheck::Contradicted { .. }))
}

/// `target/otarig/rescue/<UTC time>/`.
fn default_out() -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    PathBuf::from("target/otarig/rescue").join(stamp)
}

/// A file name from a firmware id (an image's path keeps its file name).
fn file_stem_of(firmware: &str) -> String {
    let name =
        Path::new(firmware).file_name().map_or_else(|| firmware.to_owned(), |n| n.to_string_lossy().into_owned());
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

/// The chain file of each answer: `DIR/<firmware>.<n>.<names>.pem`; (firmware index, answer
/// index, path) for each written.
fn write_chain_files(dir: &Path, rescues: &[FirmwareRescue]) -> Result<Vec<(usize, usize, PathBuf)>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (f, rescue) in rescues.iter().enumerate() {
        let firmware = file_stem_of(rescue.device.firmware.as_deref().unwrap_or("trust-set"));
        for (a, answer) in rescue.answers.iter().enumerate() {
            if answer.chain.is_empty() {
                continue;
            }
            let names: Vec<&str> = answer.chain.iter().map(|c| c.name.as_str()).collect();
            let path = dir.join(format!("{firmware}.{}.{}.pem", a + 1, names.join("+")));
            let text: String = answer.chain.iter().map(|c| c.pem.as_str()).collect();
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push((f, a, path));
        }
    }
    Ok(written)
}

fn day(unix: i64) -> String {
    let text = when(unix);
    text.split(' ').next().unwrap_or(&text).to_owned()
}

/// What the firmware trusts, in a line.
fn trusted_text(rescue: &FirmwareRescue, catalogue: &Catalogue) -> String {
    let trusted = &rescue.trusted;
    if trusted.is_empty() {
        return "trusts nothing".into();
    }
    if let otarig::device_tls::Anchors::Bundle { entries, .. } = &rescue.device.anchors {
        let alike = trusted.iter().filter(|t| matches!(t.standing, Standing::LookAlike { .. })).count();
        let public = trusted.iter().filter(|t| matches!(t.standing, Standing::Public(_))).count();
        let mut parts = Vec::new();
        if public > 0 {
            parts.push(format!("{public} public roots of the catalogue"));
        }
        if alike > 0 {
            parts.push(format!("{alike} lab look-alikes taken as the real roots they stand for (inferred)"));
        }
        let others = entries.len() - public - alike;
        if others > 0 {
            parts.push(format!("{others} others"));
        }
        return format!("trusts a certificate bundle of {} roots: {}", entries.len(), parts.join(", "));
    }
    let each: Vec<String> = trusted
        .iter()
        .map(|t| {
            let role = match t.role {
                TrustedRole::Root => "",
                TrustedRole::Intermediate => "the intermediate ",
                TrustedRole::Leaf => "the server certificate ",
            };
            let what = match (&t.standing, t.role) {
                (Standing::Public(_), _) => String::new(),
                (Standing::LookAlike { lab, public }, _) => {
                    let real = catalogue.certs.get(*public).map_or("?", |c| c.name.as_str());
                    format!(": the lab's look-alike {lab}, taken as the real one ({real} in the catalogue), inferred from its name, key and issuer")
                }
                (Standing::OwnCa { lab }, TrustedRole::Leaf) => format!(": the lab's {lab}"),
                (Standing::OwnCa { lab }, _) => {
                    format!(": the lab's {lab}, which no public certificate stands behind: the owner's own CA (inferred)")
                }
                (Standing::Unknown, _) => ", which is not in the catalogue of public CAs".into(),
            };
            format!("{role}{}{what}", t.common_name)
        })
        .collect();
    format!("trusts {}", each.join(", "))
}

fn dates_text(rescue: &FirmwareRescue) -> String {
    let text = match (rescue.date_check_at, rescue.device.clock) {
        (None, _) => "checks no dates".into(),
        (Some(at), ClockSource::Sntp) => format!("checks dates (SNTP, {})", day(at)),
        (Some(at), ClockSource::Fixed(_)) => format!("checks dates against a fixed clock ({})", day(at)),
        (Some(_), ClockSource::Unset) => "checks dates against a clock never set (1970)".into(),
    };
    // What nothing stated is ESP-IDF's default: said so, as an inference.
    match rescue.device.sources.get("time_check") {
        Some(Source::Default) => format!("{text} (ESP-IDF's default: nothing states it)"),
        Some(Source::ImageStrings) => format!("{text} (guessed from the build's strings)"),
        _ => text,
    }
}

fn why_text(why: &NoRescue, rescue: &FirmwareRescue) -> String {
    match why {
        NoRescue::TrustsNothing => "it trusts no certificate".into(),
        NoRescue::PinnedLeaf { subjects, self_signed } => {
            let pinned = subjects.join("; ");
            if *self_signed {
                format!(
                    "it pins the self-signed server certificate {pinned}: only a server holding that certificate's key can send it"
                )
            } else {
                format!(
                    "it pins the server certificate {pinned}, issued by a CA: no CA issues that certificate again, and mbedTLS trusts a pinned certificate only when it is self-signed"
                )
            }
        }
        NoRescue::PinnedRetired { names, stopped } => {
            let stopped = match stopped {
                Some(day_stopped) => format!("stopped issuing on {}", day(*day_stopped)),
                None => "does not issue".into(),
            };
            format!("it pins the intermediate {}, whose CA {stopped}: no new leaf comes from it", names.join(", "))
        }
        NoRescue::Refused { rejections, expired_roots } => {
            let outcomes: Vec<String> = rejections.iter().map(|(c, r)| format!("{c} / {r}")).collect();
            let roots: Vec<String> =
                expired_roots.iter().map(|(name, at)| format!("{name} expired {}", day(*at))).collect();
            if roots.is_empty() {
                format!("every chain that reaches what it trusts is refused ({})", outcomes.join(", "))
            } else {
                format!(
                    "it {} and {}: every chain that reaches it is refused ({})",
                    dates_text(rescue),
                    roots.join(", "),
                    outcomes.join(", ")
                )
            }
        }
        NoRescue::NoPath { roots, issuing } => {
            let issuing = if issuing.is_empty() { "none".to_owned() } else { issuing.join(", ") };
            format!(
                "no chain leads from a CA that issues to owners on {} (of the catalogue: {issuing}) to what it trusts ({})",
                day(rescue.at),
                roots.join(", ")
            )
        }
        NoRescue::UnknownRoots { subjects } => format!(
            "it trusts only {}, which no catalogued public CA chains to: if it is the owner's own CA, a leaf it issues rescues it",
            subjects.join("; ")
        ),
    }
}

/// How long the chain works, and the device's reason.
fn works_text(answer: &Answer) -> Vec<String> {
    let lasting = &answer.lasting;
    let expired: Vec<String> = lasting.expired.iter().map(|(name, at)| format!("{name} {}", day(*at))).collect();
    if lasting.follows_calendar {
        let until = match &lasting.until {
            Some(refusal) if refusal.expires => {
                format!("until {} expires {}", refusal.certificate, when(refusal.at.saturating_sub(1)))
            }
            Some(refusal) => format!("until {}, when {} becomes valid", when(refusal.at), refusal.certificate),
            None => "at every date a certificate of it changes validity".into(),
        };
        return vec![format!("{until} (the device checks dates)")];
    }
    if let Some(clock) = lasting.fixed_clock {
        return vec![format!(
            "while the server sends it (the device checks dates against a clock that reads {})",
            day(clock)
        )];
    }
    if expired.is_empty() {
        return vec!["while the server sends it (the device checks no dates)".into()];
    }
    vec![
        "while the server sends it: the device checks no dates".into(),
        format!("(expired, and taken: {})", expired.join(", ")),
    ]
}

/// Where the owner's next leaves come from, and until when.
fn leaves_text(answer: &Answer, catalogue: &Catalogue) -> String {
    let issuing = &answer.issuing;
    let until = day(answer.lasting.issuing_until);
    if issuing.own {
        format!("from the owner's {} until it expires {until}", issuing.common_name)
    } else if answer.lasting.issuing_end_known {
        format!("from {} until its CA stopped issuing from it on {until}", issuing.common_name)
    } else {
        format!(
            "from {} (issuing, per its CA's page of {}) until it expires {until} at the latest",
            issuing.common_name,
            day(catalogue.checked)
        )
    }
}

fn twin_text(check: &TwinCheck) -> String {
    match check {
        TwinCheck::NotAsked => "not asked (--no-twin)".into(),
        TwinCheck::Confirmed { .. } => "confirmed on a twin (updated)".into(),
        TwinCheck::Contradicted { outcome, transcript } => {
            format!("NOT confirmed: on a twin the update ended {outcome} (twin cells: {transcript})")
        }
        TwinCheck::NotPossible(why) => format!("not confirmed on a twin: {why}"),
        TwinCheck::RigFailed(error) => format!("not confirmed: the rig could not run the twin cell: {error}"),
    }
}

fn source_text(origin: &Origin) -> String {
    match origin {
        Origin::Published(places) => places.first().map_or_else(String::new, |p| p.url.clone()),
        Origin::OwnCa(path) => format!("the owner's own CA: {}", path.display()),
    }
}

fn to_text(
    rescues: &[FirmwareRescue],
    catalogue: &Catalogue,
    files: &[(usize, usize, PathBuf)],
    twin_dir: Option<&Path>,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (f, rescue) in rescues.iter().enumerate() {
        let name = rescue.device.firmware.as_deref().unwrap_or("(trust set)");
        let headline = match rescue.answers.len() {
            0 => format!("no chain rescues it on {}", day(rescue.at)),
            1 => format!("1 chain rescues it on {}", day(rescue.at)),
            n => format!("{n} chains rescue it on {}", day(rescue.at)),
        };
        let _ = writeln!(out, "{name}: {headline}");
        let _ = writeln!(out, "  ESP-IDF {}, {}", idf_text(&rescue.device), dates_text(rescue));
        let _ = writeln!(out, "  {}", trusted_text(rescue, catalogue));
        if let Some(why) = &rescue.no_rescue {
            let _ = writeln!(out, "  why: {}", why_text(why, rescue));
        }
        for (a, answer) in rescue.answers.iter().enumerate() {
            let count = match answer.chain.len() {
                0 => "alone".to_owned(),
                1 => "then 1 certificate".to_owned(),
                n => format!("then {n} certificates"),
            };
            let own = if answer.issuing.own { "the owner's own " } else { "" };
            let _ = writeln!(out, "\n  {}. a leaf from {own}{}, {count}:", a + 1, answer.issuing.common_name);
            for cert in &answer.chain {
                let issuer = issuer_name(cert);
                let _ = writeln!(out, "       {}{issuer}", cert.subject);
                let _ = writeln!(out, "         SHA-256 {}", cert.sha256);
                let _ = writeln!(out, "         {}", source_text(&cert.origin));
            }
            let anchor = rescue.trusted.get(answer.anchor).map_or("?", |t| t.common_name.as_str());
            let judged = if answer.judged_on_lookalikes { " (judged on the lab's look-alikes)" } else { "" };
            let _ = writeln!(out, "     reaches: {anchor}, which it trusts{judged}");
            for (i, line) in works_text(answer).iter().enumerate() {
                let _ = writeln!(out, "     {}{line}", if i == 0 { "works: " } else { "       " });
            }
            let _ = writeln!(out, "     leaves: {}", leaves_text(answer, catalogue));
            if let Some((_, _, path)) = files.iter().find(|(ff, aa, _)| *ff == f && *aa == a) {
                let _ = writeln!(out, "     chain file: {} (ssl_certificate: the leaf, then this)", path.display());
            }
            let _ = writeln!(out, "     twin: {}", twin_text(&answer.twin));
        }
        let _ = writeln!(out);
    }
    let rescued_count = rescues.iter().filter(|r| rescued(r)).count();
    let _ = writeln!(out, "{} firmware: {rescued_count} rescued, {} not", rescues.len(), rescues.len() - rescued_count);
    if let Some(dir) = twin_dir {
        let _ = writeln!(out, "twin cells: {} (results.jsonl, transcripts/, scenarios/)", dir.display());
    }
    out
}

/// `, issued by X` (its issuer's common name).
fn issuer_name(cert: &otarig::rescue::SentCert) -> String {
    match x509_issuer_cn(&cert.der) {
        Some(issuer) if issuer != cert.common_name => format!(", issued by {issuer}"),
        _ => String::new(),
    }
}

fn x509_issuer_cn(der: &[u8]) -> Option<String> {
    let info = otarig::image::CertInfo::from_der(der)?;
    info.issuer.split(", ").find_map(|p| p.strip_prefix("CN=")).map(str::to_owned)
}

fn to_json(rescues: &[FirmwareRescue], catalogue: &Catalogue, files: &[(usize, usize, PathBuf)]) -> Value {
    let firmware = rescues.iter().enumerate().map(|(f, rescue)| {
        let trusted: Vec<Value> = rescue
            .trusted
            .iter()
            .map(|t| {
                let (standing, lab, public) = match &t.standing {
                    Standing::Public(at) => ("public", None, catalogue.certs.get(*at)),
                    Standing::LookAlike { lab, public } => ("look-alike", Some(lab.clone()), catalogue.certs.get(*public)),
                    Standing::OwnCa { lab } => ("own-ca", Some(lab.clone()), None),
                    Standing::Unknown => ("unknown", None, None),
                };
                json!({
                    "subject": t.subject,
                    "role": t.role.as_str(),
                    "standing": standing,
                    "lab": lab,
                    "public": public.map(|c| json!({ "name": c.name, "sha256": c.sha256_hex() })),
                    "inferred": matches!(t.standing, Standing::LookAlike { .. } | Standing::OwnCa { .. }),
                    "not_after": t.not_after.map(rfc3339),
                })
            })
            .collect();
        let answers: Vec<Value> = rescue
            .answers
            .iter()
            .enumerate()
            .map(|(a, answer)| {
                let lasting = &answer.lasting;
                let (twin_status, twin_detail) = match &answer.twin {
                    TwinCheck::NotAsked => ("not-asked", None),
                    TwinCheck::Confirmed { transcript } => ("confirmed", Some(transcript.clone())),
                    TwinCheck::Contradicted { outcome, transcript } => {
                        ("contradicted", Some(format!("{outcome} ({transcript})")))
                    }
                    TwinCheck::NotPossible(why) => ("not-possible", Some(why.clone())),
                    TwinCheck::RigFailed(error) => ("rig-failed", Some(error.clone())),
                };
                json!({
                    "issuing_ca": {
                        "name": answer.issuing.name,
                        "common_name": answer.issuing.common_name,
                        "own": answer.issuing.own,
                        "issues_until": rfc3339(lasting.issuing_until),
                        "end_announced": lasting.issuing_end_known,
                    },
                    "chain": answer.chain.iter().map(|c| json!({
                        "name": c.name,
                        "subject": c.subject,
                        "sha256": c.sha256,
                        "not_after": rfc3339(c.not_after),
                        "published": match &c.origin {
                            Origin::Published(places) => places.iter().map(|p| json!({
                                "url": p.url, "repository": p.repository, "commit": p.commit, "path": p.path,
                            })).collect::<Vec<_>>(),
                            Origin::OwnCa(_) => Vec::new(),
                        },
                        "own_ca": match &c.origin {
                            Origin::OwnCa(path) => Some(path.display().to_string()),
                            Origin::Published(_) => None,
                        },
                    })).collect::<Vec<_>>(),
                    "reaches": rescue.trusted.get(answer.anchor).map(|t| t.subject.clone()),
                    "judged_on_lookalikes": answer.judged_on_lookalikes,
                    "checks_dates": lasting.follows_calendar || lasting.fixed_clock.is_some(),
                    "until": lasting.until.as_ref().map(|r| json!({
                        "at": rfc3339(r.at), "certificate": r.certificate, "change": if r.expires { "expires" } else { "becomes-valid" },
                    })),
                    "expired_in_use": lasting.expired.iter().map(|(name, at)| json!({ "name": name, "not_after": rfc3339(*at) })).collect::<Vec<_>>(),
                    "chain_file": files.iter().find(|(ff, aa, _)| *ff == f && *aa == a).map(|(_, _, p)| p.display().to_string()),
                    "lookalikes": answer.lookalikes.as_ref().ok().map(|l| json!({ "leaf_issuer": l.leaf_issuer, "chain": l.chain })),
                    "twin": { "status": twin_status, "detail": twin_detail },
                })
            })
            .collect();
        let no_rescue = rescue.no_rescue.as_ref().map(|why| {
            let kind = match why {
                NoRescue::TrustsNothing => "trusts-nothing",
                NoRescue::PinnedLeaf { .. } => "pinned-leaf",
                NoRescue::PinnedRetired { .. } => "pinned-intermediate-retired",
                NoRescue::Refused { .. } => "refused",
                NoRescue::NoPath { .. } => "no-path",
                NoRescue::UnknownRoots { .. } => "unknown-roots",
            };
            json!({ "kind": kind, "text": why_text(why, rescue) })
        });
        json!({
            "firmware": rescue.device.firmware,
            "idf": rescue.device.idf.as_ref().map(|idf| idf.value.to_string()),
            "sources": rescue.device.sources.iter().map(|(k, s)| (k.to_string(), json!(s.as_str()))).collect::<serde_json::Map<_, _>>(),
            "time_check": rescue.device.time_check,
            "clock": rescue.date_check_at.map(rfc3339),
            "at": rfc3339(rescue.at),
            "trusted": trusted,
            "rescued": rescued(rescue),
            "answers": answers,
            "refused": rescue.refused.iter().map(|r| json!({
                "issuing_ca": r.issuing,
                "chain": r.chain,
                "outcome": r.rejection.0.to_string(),
                "reason": r.rejection.1.to_string(),
            })).collect::<Vec<_>>(),
            "no_rescue": no_rescue,
        })
    });
    Value::Array(firmware.collect())
}
