//! otarig developer tasks.
//!
//! `idf-formats`: extract every ESP-IDF log call (tag, level, format string)
//! from selected components at given release tags, one TSV per tag, so the
//! twin's log lines can be checked against the real sources.
//!
//! ```text
//! cargo run --manifest-path xtask/Cargo.toml -- idf-formats \
//!     --idf /path/to/esp-idf --out DIR v3.2 v4.4.8 v5.2.5
//! ```

mod clex;
mod extract;
mod git;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Component and example directories scanned by default.
const DEFAULT_ROOTS: &[&str] = &[
    "components/esp_https_ota",
    "components/esp_http_client",
    "components/tcp_transport",
    "components/esp-tls",
    "components/app_update",
    "components/bootloader_support",
    "components/bootloader",
    "components/esp_system",
    "components/esp32",
    "components/freertos",
    "components/heap",
    "components/spi_flash",
    "components/log",
    "components/mbedtls/port",
    "components/mbedtls/esp_crt_bundle",
    "components/esp_app_format",
    "components/esp_bootloader_format",
    "components/esp_partition",
    "components/efuse",
    "components/esp_hw_support",
    "components/esp_netif",
    "components/tcpip_adapter",
    "components/esp_event",
    "components/esp_wifi",
    "examples/system/ota",
    "examples/common_components/protocol_examples_common",
];

#[derive(Parser)]
#[command(name = "xtask", about = "otarig developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Extract ESP_LOGx / ESP_EARLY_LOGx / ESP_DRAM_LOGx format strings per tag.
    IdfFormats {
        /// ESP-IDF git directory (bare or not; no checkout needed).
        #[arg(long)]
        idf: PathBuf,
        /// Output directory; one TAG.tsv is written per tag.
        #[arg(long)]
        out: PathBuf,
        /// Directory to scan (repeatable); replaces the default list.
        #[arg(long = "root")]
        roots: Vec<String>,
        /// Also scan test directories (test/, test_apps/, host_test/).
        #[arg(long)]
        include_tests: bool,
        /// Release tags, e.g. v3.2 v4.4.8 v5.2.5.
        #[arg(required = true)]
        tags: Vec<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::IdfFormats { idf, out, roots, include_tests, tags } => {
            let roots = if roots.is_empty() { DEFAULT_ROOTS.iter().map(|s| s.to_string()).collect() } else { roots };
            let repo = git::Repo::new(&idf);
            if let Err(e) = std::fs::create_dir_all(&out) {
                eprintln!("error: creating {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            let mut failed = false;
            for tag in &tags {
                match idf_formats(&repo, tag, &roots, include_tests) {
                    Ok((tsv, stats)) => {
                        let path = out.join(format!("{tag}.tsv"));
                        if let Err(e) = std::fs::write(&path, tsv) {
                            eprintln!("error: writing {}: {e}", path.display());
                            failed = true;
                        } else {
                            eprintln!("{tag}: {stats} -> {}", path.display());
                        }
                    }
                    Err(e) => {
                        eprintln!("error: {tag}: {e}");
                        failed = true;
                    }
                }
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
    }
}

fn is_test_path(p: &str) -> bool {
    p.split('/').any(|s| matches!(s, "test" | "tests" | "test_apps" | "host_test"))
}

/// Short component name for a file: `components/NAME/...` gives NAME; for a
/// directory of examples the example's own directory name.
fn component_of(path: &str, roots: &[String]) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    if segs.first() == Some(&"components") && segs.len() > 2 {
        return segs[1].to_string();
    }
    let root =
        roots.iter().filter(|r| path.starts_with(&format!("{}/", r.trim_end_matches('/')))).max_by_key(|r| r.len());
    if let Some(root) = root {
        let rsegs = root.trim_end_matches('/').split('/').count();
        // `examples/system/ota/<example>/main/x.c` -> <example>;
        // `examples/common_components/<name>/x.c` (root is the component) -> <name>.
        if segs.len() > rsegs + 1 && !root.contains("common_components/") {
            return segs[rsegs].to_string();
        }
        return root.rsplit('/').next().unwrap_or(root).to_string();
    }
    segs.get(segs.len().saturating_sub(2)).unwrap_or(&"?").to_string()
}

fn tsv_field(s: &str) -> String {
    s.replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

fn idf_formats(repo: &git::Repo, tag: &str, roots: &[String], include_tests: bool) -> git::Result<(String, String)> {
    let commit = repo.commit_of(tag).map_err(|_| format!("no such tag or revision {tag:?}"))?;
    let files: Vec<String> = repo
        .list_files(&commit, roots)?
        .into_iter()
        .filter(|p| p.ends_with(".c"))
        .filter(|p| include_tests || !is_test_path(p))
        .collect();
    let blobs = repo.read_files(&commit, &files)?;

    let mut tsv = format!("# esp-idf {tag} {commit}\n# component\tfile:line\ttag\tlevel\tformat\n");
    let (mut rows, mut unresolved) = (0usize, 0usize);
    for (path, blob) in files.iter().zip(blobs) {
        let src = String::from_utf8_lossy(&blob);
        let component = component_of(path, roots);
        for c in extract::extract(&src) {
            if c.tag == "?" {
                unresolved += 1;
                eprintln!("  {tag}: unresolved tag `{}` at {path}:{}", c.tag_expr, c.line);
            }
            rows += 1;
            let _ = writeln!(
                tsv,
                "{component}\t{path}:{}\t{}\t{}\t{}",
                c.line,
                tsv_field(&c.tag),
                c.level,
                tsv_field(&c.format)
            );
        }
    }
    Ok((tsv, format!("{} files, {rows} calls, {unresolved} unresolved tags", files.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names() {
        let roots: Vec<String> = DEFAULT_ROOTS.iter().map(|s| s.to_string()).collect();
        assert_eq!(component_of("components/mbedtls/port/esp_bignum.c", &roots), "mbedtls");
        assert_eq!(
            component_of("examples/system/ota/simple_ota_example/main/simple_ota_example.c", &roots),
            "simple_ota_example"
        );
        assert_eq!(
            component_of("examples/common_components/protocol_examples_common/connect.c", &roots),
            "protocol_examples_common"
        );
    }

    #[test]
    fn test_dirs_are_skipped() {
        assert!(is_test_path("components/heap/test/test_malloc.c"));
        assert!(!is_test_path("components/heap/heap_caps.c"));
    }
}
