//! `otarig replay LOG --match` / `--reproduce` through the binary, on a small library (the
//! founding firmware and an ISRG X1 firmware against three of the shipped scenarios): the
//! founding case's field log finds its cells, the index is built once and rebuilt when the
//! library changes, a log no cell ends like says so, and the best match runs again.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A library in `dir`: `scenarios/` (three shipped scenarios and the lab PKI) and `fleet/`
/// (two shipped firmware and the update release).
fn small_library(dir: &Path) {
    let (scenarios, fleet) = (dir.join("scenarios"), dir.join("fleet"));
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(&fleet).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("scenarios/pki"), scenarios.join("pki")).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("firmware-images/bundles"), fleet.join("bundles")).unwrap();
    for id in ["gts-chain", "le-short-chain", "dst-cross-sign-rescue"] {
        std::fs::copy(Path::new(ROOT).join(format!("scenarios/{id}.toml")), scenarios.join(format!("{id}.toml")))
            .unwrap();
    }
    for id in ["dst-x3-idf3.2", "isrg-x1-idf4.4", "v2.0.0"] {
        let from = Path::new(ROOT).join(format!("firmware-images/{id}.toml"));
        std::fs::copy(from, fleet.join(format!("{id}.toml"))).unwrap();
    }
}

/// `otarig replay LOG ARGS` in `dir` (where the index is kept) against its library.
fn replay(dir: &Path, log: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otarig"))
        .current_dir(dir)
        .arg("replay")
        .arg(Path::new(ROOT).join("tests/data/field-logs").join(log))
        .args(args)
        .args(["--scenarios", "scenarios", "--fleet", "fleet"])
        .output()
        .unwrap()
}

fn texts(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The cells listed, in order: `firmware x scenario`.
fn listed(out: &str) -> Vec<String> {
    out.lines()
        .filter(|line| line.starts_with("  ") && line.contains(" x ") && line.contains("lines agree"))
        .map(|line| line.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_founding_field_log_finds_its_cells_and_is_reproduced_on_a_twin() {
    let tmp = TempDir::new("replay-match");
    small_library(&tmp.0);

    let first = replay(&tmp.0, "FL02.log", &["--match"]);
    let (out, err) = texts(&first);
    assert_eq!(first.status.code(), Some(0), "{err}");
    assert!(err.contains("indexing the library's twin transcripts (6 cells"), "{err}");
    assert!(
        out.starts_with(&format!(
            "{}: tls-verify / untrusted",
            Path::new(ROOT).join("tests/data/field-logs/FL02.log").display()
        )),
        "{out}"
    );
    assert!(out.contains("E esp-tls: mbedtls_ssl_handshake returned -0x#"), "the decisive lines, normalised:\n{out}");
    let cells = listed(&out);
    // v3.2 trusting only DST Root CA X3 refuses the GTS and the short chain; the rescue chain
    // through the expired DST cross-sign updates it, so it is no match. v4.4 refuses the GTS
    // chain too, with its reason at DEBUG: the same outcome, after the same reason.
    assert_eq!(
        cells,
        ["dst-x3-idf3.2 x gts-chain", "dst-x3-idf3.2 x le-short-chain", "isrg-x1-idf4.4 x gts-chain"],
        "{out}"
    );
    assert!(out.contains("same outcome and reason; 3/3 lines agree"), "{out}");

    // Kept: the second time reads the index.
    let again = replay(&tmp.0, "FL02.log", &["--match"]);
    let (out_again, err_again) = texts(&again);
    assert!(!err_again.contains("indexing"), "{err_again}");
    assert_eq!(out_again, out);

    // A log no cell of this library ends like: said, and the nearest shown.
    let oom = replay(&tmp.0, "FL08.log", &["--match"]);
    let (out, _) = texts(&oom);
    assert!(out.contains("no cell of the library (6 cells) ends in out-of-memory; the nearest by outcome:"), "{out}");
    assert_eq!(listed(&out).len(), 5, "{out}");

    // An Arduino log: which of its lines can agree with a twin's.
    let arduino = replay(&tmp.0, "FL115.log", &["--match"]);
    assert!(texts(&arduino).0.contains("note: the log is not ESP-IDF's own program"), "{}", texts(&arduino).0);

    // The best match, again, beside the field log.
    let reproduced = replay(&tmp.0, "FL02.log", &["--reproduce"]);
    let (out, err) = texts(&reproduced);
    assert_eq!(reproduced.status.code(), Some(0), "{err}");
    assert!(out.contains("reproducing dst-x3-idf3.2 x gts-chain (on a twin)"), "{out}");
    assert!(out.contains("= E esp-tls: mbedtls_ssl_handshake returned -0x#"), "{out}");
    assert!(out.contains("field log: tls-verify / untrusted   twin: tls-verify / untrusted   (the same)"), "{out}");

    // A changed library is indexed again.
    let scenario = tmp.0.join("scenarios/gts-chain.toml");
    let mut text = std::fs::read_to_string(&scenario).unwrap();
    text.push_str("\n# edited\n");
    std::fs::write(&scenario, text).unwrap();
    let (_, err) = texts(&replay(&tmp.0, "FL02.log", &["--match"]));
    assert!(err.contains("indexing"), "{err}");
}
