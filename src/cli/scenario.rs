//! `otarig scenario check|show`: scenario files, checked and explained.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use otarig::firmware::Fleet;
use otarig::pki::{LabPki, PkiError, SpecErrorKind};
use otarig::scenario::{Scenario, ScenarioError, ScenarioErrorKind};
use time::OffsetDateTime;

use super::exit;

pub const AFTER_HELP: &str = "\
Scenarios are scenarios/*.toml; the lab authorities they use are in scenarios/pki/.

Examples:
  otarig scenario check                          check every scenario
  otarig scenario check scenarios/gts-chain.toml
  otarig scenario show dst-cross-sign-rescue     the served chain as a tree";

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenarios directory (its pki/ folder holds the lab authorities).
    #[arg(long, global = true, default_value = "scenarios", value_name = "DIR")]
    dir: PathBuf,
    /// The fleet's manifests, which expectation rules are resolved against.
    #[arg(long, global = true, default_value = "firmware-images", value_name = "DIR")]
    fleet: PathBuf,
    #[command(subcommand)]
    command: ScenarioCommand,
}

#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Check scenario files (all in the directory when none is named); exit 2 on any error.
    Check {
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Show the chain a scenario serves, with each certificate's validity on the scenario's date.
    Show {
        /// A scenario id (file name without .toml) or a path.
        name: String,
    },
    /// Create a scenario from a real chain: look-alike authorities where the lab lacks them,
    /// and a scenario serving the look-alike chain in the same order.
    New {
        /// The new scenario's id (its file name without .toml).
        name: String,
        /// The real chain, as `openssl s_client -showcerts` prints it (PEM blocks).
        #[arg(long, value_name = "CHAIN.pem")]
        like: PathBuf,
        /// The scenario's title.
        #[arg(long)]
        title: Option<String>,
    },
}

pub fn run(args: &ScenarioArgs) -> u8 {
    let pki = match LabPki::open(&args.dir.join("pki")) {
        Ok(pki) => pki,
        Err(err) => {
            report_pki(&err);
            return exit::USAGE;
        }
    };
    let fleet = match Fleet::load(&args.fleet, &pki) {
        Ok(fleet) => fleet,
        Err(err) => {
            eprintln!("error: {err}");
            return exit::USAGE;
        }
    };
    match &args.command {
        ScenarioCommand::Check { paths } => check(&args.dir, paths, &pki, &fleet),
        ScenarioCommand::Show { name } => show(&args.dir, name, &pki, &fleet),
        ScenarioCommand::New { name, like, title } => new(&args.dir, name, like, title.as_deref(), &pki),
    }
}

/// A scenario checked, its expectation rules resolved against the fleet (when it has members).
fn load(path: &Path, pki: &LabPki, fleet: &Fleet) -> Result<Scenario, ScenarioError> {
    let mut scenario = Scenario::load(path, pki)?;
    if fleet.members().next().is_some() {
        scenario.check_rules_used(fleet)?;
        scenario.resolve(fleet)?;
    }
    Ok(scenario)
}

fn check(dir: &Path, paths: &[PathBuf], pki: &LabPki, fleet: &Fleet) -> u8 {
    let paths = if paths.is_empty() {
        match otarig::toml_source::files_in(dir) {
            Ok(paths) => paths,
            Err(err) => {
                eprintln!("error: cannot list {}: {err}", dir.display());
                return exit::USAGE;
            }
        }
    } else {
        paths.to_vec()
    };
    let mut failed = 0;
    for path in &paths {
        match load(path, pki, fleet) {
            Ok(scenario) => {
                let count = scenario.chain.len();
                let plural = if count == 1 { "" } else { "s" };
                let members = fleet.members().count();
                let expected = fleet.members().filter(|m| scenario.expect.contains_key(&m.id)).count();
                println!(
                    "ok    {} ({count} certificate{plural} served; {expected} of {members} fleet members expected)",
                    path.display()
                );
            }
            Err(err) => {
                failed += 1;
                report(&err);
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} scenarios have errors", paths.len());
        exit::USAGE
    } else {
        exit::OK
    }
}

fn show(dir: &Path, name: &str, pki: &LabPki, fleet: &Fleet) -> u8 {
    let path = if name.ends_with(".toml") { PathBuf::from(name) } else { dir.join(format!("{name}.toml")) };
    let scenario = match load(&path, pki, fleet) {
        Ok(scenario) => scenario,
        Err(err) => {
            report(&err);
            return exit::USAGE;
        }
    };
    print!("{}", render_tree(&scenario, pki));
    exit::OK
}

fn new(dir: &Path, name: &str, like: &Path, title: Option<&str>, pki: &LabPki) -> u8 {
    match create(dir, name, like, title, pki) {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

fn create(dir: &Path, name: &str, like: &Path, title: Option<&str>, pki: &LabPki) -> Result<(), String> {
    let valid_id = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_id {
        return Err(format!("`{name}` is not a scenario id (letters, digits, - and _)"));
    }
    let path = dir.join(format!("{name}.toml"));
    if path.exists() {
        return Err(format!("{} exists; choose another name", path.display()));
    }
    let text = otarig::input::read_image(like).map_err(|e| format!("cannot read {}: {e}", like.display()))?;
    let ders: Vec<Vec<u8>> = pem::parse_many(&text)
        .map_err(|e| format!("{}: {e}", like.display()))?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    let title = title.map_or_else(|| format!("Serve a look-alike of the chain in {}", like.display()), str::to_owned);
    let plan = otarig::scenario::like::plan(&ders, pki.specs(), &title, OffsetDateTime::now_utc())
        .map_err(|e| format!("{}: {e}", like.display()))?;
    if !plan.new_authorities.is_empty() {
        let authorities = pki.dir().join(otarig::pki::AUTHORITIES_FILE);
        let mut spec = otarig::input::read_text(&authorities).map_err(|e| format!("{}: {e}", authorities.display()))?;
        for (_, table) in &plan.new_authorities {
            spec.push_str(table);
        }
        std::fs::write(&authorities, spec).map_err(|e| format!("{}: {e}", authorities.display()))?;
        let pki = LabPki::open(pki.dir()).map_err(|e| e.to_string())?;
        pki.generate(&otarig::pki::Regenerate::Missing, |spec| {
            eprintln!("made {} ({})", spec.name, spec.subject_text());
        })
        .map_err(|e| e.to_string())?;
    }
    std::fs::write(&path, &plan.scenario).map_err(|e| format!("{}: {e}", path.display()))?;
    let pki = LabPki::open(pki.dir()).map_err(|e| e.to_string())?;
    Scenario::load(&path, &pki).map_err(|e| format!("the new scenario does not check: {e}"))?;
    println!("wrote {} (chain: {})", path.display(), plan.chain.join(" <- "));
    println!("next: fill in [expect], then `otarig scenario show {name}`");
    Ok(())
}

/// The served chain as a tree: each certificate, its validity on the scenario's date, and
/// which certificate issued it (served or not).
pub fn render_tree(scenario: &Scenario, pki: &LabPki) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", scenario.id, scenario.title);
    let _ = writeln!(out, "date {}; the server sends, in this order:", scenario.date.date());
    render_chain(&mut out, &scenario.chain, scenario, pki);
    if let Some(fault) = &scenario.fault {
        let _ = writeln!(out, "fault: {fault:?}");
    }
    if let Some(size) = scenario.record_size {
        let _ = writeln!(out, "responses in records of at most {size} bytes of plaintext");
    }
    for host in &scenario.hosts {
        let path = host.path.as_deref().unwrap_or("the OTA path");
        let _ = writeln!(out, "to clients asking for {} (SNI), image at {path}:", host.name);
        render_chain(&mut out, &host.chain, scenario, pki);
        if let Some(fault) = &host.fault {
            let _ = writeln!(out, "fault: {fault:?}");
        }
    }
    if let Some(image) = &scenario.image {
        let _ = writeln!(out, "offers image: {image}");
    }
    for (firmware, expectation) in &scenario.expect {
        let reason = expectation.reason.map(|r| format!(" / {r}")).unwrap_or_default();
        let source = expectation.source.as_deref().map(|s| format!("  ({s})")).unwrap_or_default();
        let _ = writeln!(out, "expect {firmware}: {}{reason}{source}", expectation.outcome);
    }
    out
}

/// One served chain as an indented tree.
fn render_chain(out: &mut String, chain: &[String], scenario: &Scenario, pki: &LabPki) {
    use std::fmt::Write;
    for (position, name) in chain.iter().enumerate() {
        let Some(origin) = scenario.cert(name, pki) else { continue };
        let spec = origin.spec();
        let indent = "  ".repeat(position + 1);
        let cross = spec.same_key_as.as_deref().map(|twin| format!("  [cross-sign of {twin}]")).unwrap_or_default();
        let _ = writeln!(out, "{indent}[{position}] {name}: {}{cross}", spec.subject_text());
        let _ = writeln!(
            out,
            "{indent}    {} .. {}  {}",
            spec.not_before.date(),
            spec.not_after.date(),
            validity(spec.not_before, spec.not_after, scenario.date)
        );
        let names: Vec<String> = spec.dns.iter().cloned().chain(spec.ip.iter().map(ToString::to_string)).collect();
        if !names.is_empty() {
            let _ = writeln!(out, "{indent}    names: {}", names.join(", "));
        }
        let issuer = spec.issuer_name();
        let link = if issuer == spec.name {
            "self-signed".to_owned()
        } else if let Some(at) = chain.iter().position(|n| n == issuer) {
            format!("issued by [{at}] {issuer}")
        } else if let Some((at, twin)) = served_twin(chain, scenario, pki, issuer) {
            format!("issued by [{at}] {twin} (same subject and key as {issuer})")
        } else {
            let subject = scenario.cert(issuer, pki).map(|o| o.spec().subject_text()).unwrap_or_default();
            format!("issued by {issuer} (not sent: {subject})")
        };
        let _ = writeln!(out, "{indent}    {link}");
    }
}

/// A served certificate with the same subject and key as `issuer` (a cross-sign of it), which
/// verifies what `issuer` signed.
fn served_twin(chain: &[String], scenario: &Scenario, pki: &LabPki, issuer: &str) -> Option<(usize, String)> {
    let issuer = scenario.cert(issuer, pki)?.spec();
    chain.iter().enumerate().find_map(|(at, name)| {
        let spec = scenario.cert(name, pki)?.spec();
        (spec.subject == issuer.subject && spec.key_owner() == issuer.key_owner()).then(|| (at, name.clone()))
    })
}

fn validity(from: OffsetDateTime, to: OffsetDateTime, at: OffsetDateTime) -> &'static str {
    if at > to {
        "EXPIRED"
    } else if at < from {
        "NOT YET VALID"
    } else {
        "valid"
    }
}

fn report(err: &ScenarioError) {
    eprintln!("error: {err}");
    let hint = match err {
        ScenarioError::Spec(spec) => Some(hint(&spec.kind)),
        ScenarioError::Invalid { kind, .. } => Some(scenario_hint(kind)),
        ScenarioError::Read { .. } => None,
    };
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

fn report_pki(err: &PkiError) {
    eprintln!("error: {err}");
    let hint = match err {
        PkiError::Spec(spec) => Some(hint(&spec.kind)),
        other => super::pki::hint(other),
    };
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

fn hint(kind: &SpecErrorKind) -> &'static str {
    match kind {
        SpecErrorKind::Shape { .. } => "check the key's spelling and the value's type (see scenarios/README.md)",
        SpecErrorKind::UnknownCertificate { .. } => {
            "name an authority from scenarios/pki/authorities.toml (`otarig pki list`) or a certificate of this scenario"
        }
        SpecErrorKind::Cycle { .. } => "an issuer or same_key_as chain must end at a self-signed root",
        SpecErrorKind::InvertedValidity | SpecErrorKind::ValidityCount { .. } => {
            "write valid = [from, to] with from before to"
        }
        SpecErrorKind::Validity(_) => DATES,
        SpecErrorKind::KeyMismatch { .. } => "a cross-sign shares its twin's key: drop `key` or make it equal",
        SpecErrorKind::Missing { .. } => "add the field",
        SpecErrorKind::Subject(_) => "write subjects as \"C=US, O=Example, CN=Name\"",
        SpecErrorKind::Address { .. } => "IP addresses as 192.0.2.1 or 2001:db8::1",
        SpecErrorKind::Serial { .. } => "serial numbers as hex bytes, e.g. \"04:a3\" or \"04a3\"",
        SpecErrorKind::Duplicate { .. } => "give the certificate another name",
    }
}

/// How dates are written.
const DATES: &str = "dates are YYYY-MM-DD or RFC 3339 (2021-09-30T14:01:15Z)";

fn scenario_hint(kind: &ScenarioErrorKind) -> &'static str {
    match kind {
        ScenarioErrorKind::Date(_) => DATES,
        ScenarioErrorKind::TlsVersions { .. } => "use tls = \"1.2\", \"1.3\" or \"1.2+1.3\"",
        ScenarioErrorKind::RecordSize { .. } => {
            "record_size = 4096 (plaintext bytes per record), or leave it out for 16384"
        }
        ScenarioErrorKind::Tag { .. } | ScenarioErrorKind::DuplicateTag { .. } => {
            "tags are distinct, of lowercase letters, digits and `-`"
        }
        ScenarioErrorKind::Fault(_) => "see the fault kinds and their values in scenarios/README.md",
        ScenarioErrorKind::StartSlot { .. } | ScenarioErrorKind::StartState { .. } => {
            "start = { slot = \"ota_0\", state = \"valid\" }, or leave `start` out for the factory app"
        }
        ScenarioErrorKind::FactoryStartState { .. } => "name an OTA slot to give the start state",
        ScenarioErrorKind::OtadataBytes { .. } => "otadata-bytes counts the entry's bytes programmed: 0 to 32",
        ScenarioErrorKind::ImageId { .. } => "name a manifest of the fleet by its id, as image = \"v2.0.0\"",
        ScenarioErrorKind::NoReason => "give a reason (use \"unknown\" if none)",
        ScenarioErrorKind::Reason { .. } => "only tls-verify takes a reason: drop it",
        ScenarioErrorKind::EmptySource | ScenarioErrorKind::NoSource => {
            "source = \"field log FL02\", \"mbedTLS rule: ...\" or \"derived: <the rule>\""
        }
        ScenarioErrorKind::IdfRange { .. } => "bounds like \">=4.4\", \"<6.0\", \"=3.2\", separated by commas",
        ScenarioErrorKind::UnknownTrusted { .. } => "name an authority of scenarios/pki/authorities.toml",
        ScenarioErrorKind::AmbiguousExpectation { .. } => {
            "narrow one rule (firmware_tag, trust, trusts, idf, time_check) or give the firmware its own entry"
        }
        ScenarioErrorKind::UnusedRule => "drop the rule, or check its conditions against `otarig fleet list`",
    }
}
