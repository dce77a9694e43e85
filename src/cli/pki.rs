//! `otarig pki generate|export|list`: the committed lab certificate authorities.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use otarig::pki::{LabPki, PkiError, Regenerate};

use super::exit;

pub const AFTER_HELP: &str = "\
The lab PKI lives in scenarios/pki/: authorities.toml (what to make), certs/ and keys/ (what was
made, committed). Lab only: the keys are public.

Examples:
  otarig pki list
  otarig pki generate                       make the authorities not generated yet
  otarig pki generate --force r11           remake r11 with a new key (and what it signs)
  otarig pki export dst_root_x3 --out fw/   write dst_root_x3.pem for a lab firmware build";

#[derive(Debug, Args)]
pub struct PkiArgs {
    /// The lab PKI directory.
    #[arg(long, global = true, default_value = "scenarios/pki", value_name = "DIR")]
    dir: PathBuf,
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// List the authorities: subject, key, validity, issuer, whether generated.
    List,
    /// Generate what is missing (or, with --force/--all, remake with new keys).
    Generate {
        /// Remake these authorities with new keys, and everything their keys sign.
        #[arg(long, value_name = "NAME")]
        force: Vec<String>,
        /// Remake everything with new keys (a deliberate, repository-wide change).
        #[arg(long, conflicts_with = "force")]
        all: bool,
    },
    /// Write an authority's certificate as PEM (NAME.pem) into a directory.
    Export {
        name: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Also write the private key (NAME.key.pem, mode 0600).
        #[arg(long)]
        with_key: bool,
    },
}

/// The hint for a certificate or key not generated yet, wherever the command line meets one.
pub(super) const NOT_GENERATED: &str = "run `otarig pki generate`";

pub fn run(args: &PkiArgs) -> u8 {
    let result = LabPki::open(&args.dir).and_then(|pki| match &args.command {
        PkiCommand::List => list(&pki),
        PkiCommand::Generate { force, all } => generate(&pki, force, *all),
        PkiCommand::Export { name, out, with_key } => export(&pki, name, out, *with_key),
    });
    match result {
        Ok(()) => exit::OK,
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = hint(&err) {
                eprintln!("hint: {hint}");
            }
            exit::USAGE
        }
    }
}

fn list(pki: &LabPki) -> Result<(), PkiError> {
    for name in pki.issuer_order() {
        let spec = &pki.specs()[&name];
        let made = if pki.cert_path(&name).exists() { "" } else { "  (not generated)" };
        let issuer = spec.issuer.as_deref().unwrap_or("self-signed");
        println!(
            "{name:<32} {:<8} {} .. {}  issuer: {issuer}{made}",
            spec.key.as_str(),
            spec.not_before.date(),
            spec.not_after.date()
        );
        println!("{:<32} {}", "", spec.subject_text());
    }
    Ok(())
}

fn generate(pki: &LabPki, force: &[String], all: bool) -> Result<(), PkiError> {
    let plan = if all {
        Regenerate::All
    } else if !force.is_empty() {
        Regenerate::These(force.to_vec())
    } else {
        Regenerate::Missing
    };
    let made = pki.generate(&plan, |spec| eprintln!("made {} ({})", spec.name, spec.subject_text()))?;
    if made.is_empty() {
        eprintln!("nothing to generate: every authority in {} exists", pki.dir().display());
    }
    Ok(())
}

fn export(pki: &LabPki, name: &str, out: &Path, with_key: bool) -> Result<(), PkiError> {
    let cert = pki.certificate(name)?;
    std::fs::create_dir_all(out).map_err(|source| PkiError::Write { path: out.to_owned(), source })?;
    let path = out.join(format!("{name}.pem"));
    std::fs::write(&path, &cert.pem).map_err(|source| PkiError::Write { path: path.clone(), source })?;
    println!("{}", path.display());
    if with_key {
        let owner = pki.specs()[name].key_owner().to_owned();
        let key = pki.key_pem(&owner)?;
        let key_path = out.join(format!("{name}.key.pem"));
        otarig::pki::write_private(&key_path, &key)?;
        println!("{}", key_path.display());
    }
    Ok(())
}

/// What to do about a lab PKI error, where the command line knows.
pub(super) fn hint(err: &PkiError) -> Option<&'static str> {
    match err {
        PkiError::NotGenerated { .. } => Some(NOT_GENERATED),
        PkiError::Read { .. } => Some("run from the repository root, or pass --dir"),
        PkiError::Unknown { .. } => Some("`otarig pki list` shows the authorities"),
        PkiError::Spec(_) => Some("fix authorities.toml at that place"),
        _ => None,
    }
}
