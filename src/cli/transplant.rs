//! `otarig transplant IMAGE --replace ROOT --with AUTHORITY -o OUT`: a production image with a
//! lab root in place of a real one, for the lab only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use otarig::image::transplant::{Form, Replacement, Target, TransplantError, Transplanted, transplant};
use otarig::pki::{LabPki, PkiError};

use super::exit;

pub const AFTER_HELP: &str = "\
Swaps a root the image trusts (a PEM block, a DER certificate or a certificate bundle root) for
the lab authority of the same name, in place: the lab certificate is re-minted to the same length
(serial length and a padding extension tuned), a bundle root gets the lab key, and the app's
checksum and SHA-256 are recomputed; every other byte stays as it was. Signed images (secure
boot) are refused. The output is for the lab only: its file name always says `lab` (`app.bin`
becomes `app.lab.bin`), and `otarig inspect` calls its root out as a LAB ROOT.

Exit status: 0 when the output was written, 2 on a usage error, an unreadable input, or a
transplant refused (root not found or ambiguous, signed image, no same-length certificate).

Examples:
  otarig transplant app.bin --replace 'DST Root CA X3' --with dst_root_x3 -o app.lab.bin
  otarig transplant app.bin --replace 0ac5:...:39 --with dst_root_x3 -o out/app.bin
  otarig inspect app.lab.bin";

#[derive(Debug, Args)]
pub struct TransplantArgs {
    /// The image file (an app image, a merged flash image, or any file holding the root).
    image: PathBuf,
    /// The root to replace: its subject (`O=..., CN=...`) or common name, or its SHA-256
    /// fingerprint in hex (colons allowed; for a bundle root, of its public key).
    #[arg(long, value_name = "SUBJECT|FINGERPRINT")]
    replace: String,
    /// The lab authority that goes in (see `otarig pki list`).
    #[arg(long = "with", value_name = "AUTHORITY")]
    with: String,
    /// Where to write the result (`.lab` is inserted into the name unless it says `lab`).
    #[arg(short, long, value_name = "OUT")]
    out: PathBuf,
    /// The lab PKI.
    #[arg(long, default_value = "scenarios/pki", value_name = "DIR")]
    pki: PathBuf,
}

pub fn run(args: &TransplantArgs) -> u8 {
    let out = lab_named(&args.out);
    if same_file(&args.image, &out) {
        eprintln!("error: {} is the input; the input is never overwritten", out.display());
        return exit::USAGE;
    }
    let bytes = match otarig::input::read_image(&args.image) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("error: cannot read {}: {err}", args.image.display());
            return exit::USAGE;
        }
    };
    let target = Target::parse(&args.replace);
    let result = LabPki::open(&args.pki).map_err(TransplantError::from).and_then(|pki| {
        let replacement = Replacement::lab(&pki, &args.with)?;
        transplant(&bytes, &target, &replacement)
    });
    let done = match result {
        Ok(done) => done,
        Err(err) => {
            eprintln!("error: {}: {err}", args.image.display());
            if let Some(hint) = hint(&err) {
                eprintln!("hint: {hint}");
            }
            return exit::USAGE;
        }
    };
    if let Err(err) = std::fs::write(&out, &done.bytes) {
        eprintln!("error: cannot write {}: {err}", out.display());
        return exit::USAGE;
    }
    print!("{}", report(&done, &args.with, &out));
    exit::OK
}

/// `path` with `.lab` before its extension unless its file name already says `lab`.
fn lab_named(path: &Path) -> PathBuf {
    let Some(name) = path.file_name() else { return path.to_owned() };
    if name.to_string_lossy().to_lowercase().contains("lab") {
        return path.to_owned();
    }
    let mut marked = OsString::from(path.file_stem().unwrap_or(name));
    marked.push(".lab");
    if let Some(extension) = path.extension() {
        marked.push(".");
        marked.push(extension);
    }
    path.with_file_name(marked)
}

/// Whether `out` names the file `input` is (through links, `..` or another spelling).
fn same_file(input: &Path, out: &Path) -> bool {
    let resolved = |path: &Path| {
        path.canonicalize().ok().or_else(|| {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Some(parent.canonicalize().ok()?.join(path.file_name()?))
        })
    };
    match (resolved(input), resolved(out)) {
        (Some(a), Some(b)) => a == b,
        _ => input == out,
    }
}

fn report(done: &Transplanted, authority: &str, out: &Path) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for replaced in &done.replaced {
        let (what, fit) = match replaced.form {
            Form::Pem { serial_len, padding } => ("PEM certificate", remint(serial_len, padding)),
            Form::Der { serial_len, padding } => ("DER certificate", remint(serial_len, padding)),
            Form::BundleRoot { bundle_offset, index, .. } => {
                ("bundle root key", format!("root {index} of the bundle at 0x{bundle_offset:x}, name unchanged"))
            }
        };
        let range = &replaced.range;
        let _ = writeln!(text, "replaced {what} at 0x{:06x}..0x{:06x}: {}", range.start, range.end, replaced.subject);
        let _ = writeln!(text, "  was SHA-256 {}", hex(&replaced.before));
        let _ = writeln!(text, "  now SHA-256 {} ({authority}, {fit})", hex(&replaced.after));
    }
    for seal in &done.resealed {
        let hash = seal.hash_offset.map_or_else(String::new, |at| format!(", SHA-256 at 0x{at:x}"));
        let _ = writeln!(
            text,
            "app image at 0x{:x}: checksum at 0x{:x}{hash} recomputed",
            seal.image_offset, seal.checksum_offset
        );
    }
    let _ =
        writeln!(text, "wrote {} (LAB ONLY: it trusts a lab root whose key is public; never ship it)", out.display());
    text
}

fn remint(serial_len: usize, padding: Option<usize>) -> String {
    match padding {
        None => format!("re-minted with a {serial_len}-byte serial"),
        Some(n) => format!("re-minted with a {serial_len}-byte serial and {n} bytes of padding"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hint(err: &TransplantError) -> Option<&'static str> {
    match err {
        TransplantError::NotFound { .. } => Some(
            "`otarig inspect IMAGE` lists the roots it holds with their fingerprints (a bundle root is named by its \
             subject or the SHA-256 of its public key)",
        ),
        TransplantError::Ambiguous { .. } => Some("pass one of these SHA-256 fingerprints to --replace"),
        TransplantError::Signed { .. } => Some(
            "changing any byte breaks a secure boot signature: transplant into the unsigned build, then sign it if need be",
        ),
        TransplantError::Corrupt { .. } => {
            Some("the bootloader already refuses this image; resealing it would hide that")
        }
        TransplantError::NoSameLength { .. } | TransplantError::KeyLength { .. } => {
            Some("the lab authority must have the original's key type and size (see scenarios/pki/authorities.toml)")
        }
        TransplantError::SubjectDiffers { .. } => {
            Some("--with takes the lab authority of the same name (`otarig pki list`)")
        }
        TransplantError::Pki(PkiError::Unknown { .. }) => Some("`otarig pki list` shows the authorities"),
        TransplantError::Pki(PkiError::Read { .. }) => Some("run from the repository root, or pass --pki"),
        TransplantError::Pki(PkiError::NotGenerated { .. }) => Some(super::pki::NOT_GENERATED),
        _ => None,
    }
}
