//! The catalogue of real public CA certificates (`data/public-cas/`): every file holds exactly
//! one certificate whose SHA-256 is its entry's, every entry says where it was published, no
//! file is unlisted; and the loader refuses a catalogue that breaks any of it, at its place.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::TempDir;
use otarig::catalogue::{Catalogue, CatalogueError, CatalogueErrorKind};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dir() -> PathBuf {
    Path::new(ROOT).join("data/public-cas")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_file_is_one_certificate_with_its_sha256_and_a_source() {
    // Read the file as TOML directly, not through the loader under test.
    let text = std::fs::read_to_string(dir().join("catalogue.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let certs = table["cert"].as_table().unwrap();
    assert!(certs.len() >= 40, "{} certificates", certs.len());
    let mut files = BTreeSet::new();
    for (name, entry) in certs {
        let file = entry["file"].as_str().unwrap();
        files.insert(file.to_owned());
        let pem_text = std::fs::read(dir().join(file)).unwrap();
        let blocks = pem::parse_many(&pem_text).unwrap();
        assert_eq!(blocks.len(), 1, "{name}: one PEM block");
        assert_eq!(blocks[0].tag(), "CERTIFICATE", "{name}");
        let der = blocks[0].contents();
        let (rest, _) = X509Certificate::from_der(der).unwrap();
        assert!(rest.is_empty(), "{name}: nothing after the certificate");
        assert_eq!(entry["sha256"].as_str().unwrap(), hex(&Sha256::digest(der)), "{name}: SHA-256");
        let published = entry["published"].as_array().unwrap();
        assert!(!published.is_empty(), "{name}: where it was published");
        for place in published {
            let url = place["url"].as_str().unwrap();
            let repository = place["repository"].as_str().unwrap();
            let path = place["path"].as_str().unwrap();
            let commit = place["commit"].as_str().unwrap();
            assert!(commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: commit {commit}");
            match repository {
                "letsencrypt/website" => {
                    let served = path.strip_prefix("static").unwrap();
                    assert_eq!(url, format!("https://letsencrypt.org{served}"), "{name}");
                }
                "espressif/esp-idf" => {
                    assert!(url.starts_with("https://github.com/espressif/esp-idf/blob/v"), "{name}: {url}");
                    assert!(url.ends_with(path), "{name}: {url} names {path}");
                }
                other => panic!("{name}: published by {other}, a repository the README does not list"),
            }
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir().join("certs"))
        .unwrap()
        .map(|e| format!("certs/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(on_disk, files, "every certificate file is listed, every listed file exists");

    let catalogue = Catalogue::open(&dir()).unwrap();
    assert_eq!(catalogue.certs.len(), certs.len());
}

#[test]
fn the_issuing_periods_follow_the_certificates_page() {
    let catalogue = Catalogue::open(&dir()).unwrap();
    let day = |text: &str| otarig::pki::spec::parse_time(text).unwrap().unix_timestamp();
    let issuing = |at: i64| -> Vec<String> {
        let mut names: Vec<String> =
            catalogue.certs.iter().filter(|c| catalogue.issues_at(c, at)).map(|c| c.common_name.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(issuing(day("2022-01-01")), ["R3"]);
    assert_eq!(issuing(day("2025-03-01")), ["E5", "E6", "R10", "R11"]);
    assert_eq!(issuing(day("2025-10-01")), ["E7", "E8", "R12", "R13"]);
    assert_eq!(issuing(day("2026-03-01")), ["E7", "E8", "R12", "R13", "YE1", "YE2", "YR1", "YR2"]);
    assert_eq!(issuing(day("2026-11-25")), ["YE1", "YE2", "YR1", "YR2"]);
    // An intermediate past its notAfter issues nothing, whatever its page said last.
    assert!(issuing(day("2029-01-01")).is_empty());
    // A cross-sign of an issuing CA issues as its CA does.
    let e5_cross = catalogue.get("e5-by-x1").unwrap();
    assert!(e5_cross.issued.is_empty() && catalogue.issues_at(e5_cross, day("2025-03-01")));
}

/// A copy of the catalogue in a temporary folder, `edit` applied to its TOML.
fn broken(tag: &str, edit: impl Fn(&str) -> String) -> (TempDir, Result<Catalogue, CatalogueError>) {
    let temp = TempDir::new(tag);
    std::fs::create_dir_all(temp.0.join("certs")).unwrap();
    for entry in std::fs::read_dir(dir().join("certs")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), temp.0.join("certs").join(entry.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(dir().join("catalogue.toml")).unwrap();
    std::fs::write(temp.0.join("catalogue.toml"), edit(&text)).unwrap();
    let opened = Catalogue::open(&temp.0);
    (temp, opened)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_wrong_sha256_an_unsourced_entry_and_a_bad_date_are_refused_at_their_place() {
    let r11 = "591e9ce6c863d3a079e9fabe1478c7339a26b21269dde795211361024ae31a44";
    let edit = |t: &str| t.replace(r11, &"0".repeat(64));
    let (temp, opened) = broken("public-cas-sha", edit);
    let text = std::fs::read_to_string(temp.0.join("catalogue.toml")).unwrap();
    match opened {
        Err(CatalogueError::Invalid { location, kind: CatalogueErrorKind::Sha256 { got, .. } }) => {
            assert_eq!(location.line, line_of(&text, &"0".repeat(64)), "{location}");
            assert_eq!(got, r11);
        }
        other => panic!("{other:?}"),
    }

    let unsourced = |t: &str| {
        let start = t.find("[[cert.r12.published]]").unwrap();
        let end = start + t[start..].find("\n\n").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    };
    let (_temp, opened) = broken("public-cas-source", unsourced);
    let unsourced_kind = CatalogueErrorKind::Unsourced { name: "r12".into() };
    assert!(matches!(opened, Err(CatalogueError::Invalid { ref kind, .. }) if *kind == unsourced_kind), "{opened:?}");

    let (_temp, opened) = broken("public-cas-date", |t| t.replace("from = \"2024-06-06\"", "from = \"June 2024\""));
    assert!(matches!(opened, Err(CatalogueError::Invalid { kind: CatalogueErrorKind::Date { .. }, .. })), "{opened:?}");

    let (_temp, opened) =
        broken("public-cas-escape", |t| t.replace("file = \"certs/r10.pem\"", "file = \"../r10.pem\""));
    assert!(matches!(opened, Err(CatalogueError::Invalid { kind: CatalogueErrorKind::Path { .. }, .. })), "{opened:?}");
}
