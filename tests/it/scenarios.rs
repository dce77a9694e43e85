//! Scenario files: every shipped one checks; bad ones fail with the right kind, at the right
//! place; `scenario show` draws the founding cases.

use std::path::Path;
use std::process::Command;

use otarig::outcome::OutcomeClass;
use otarig::pki::{LabPki, SpecErrorKind, TimeError};
use otarig::scenario::{FaultError, Scenario, ScenarioError, ScenarioErrorKind};
use otarig::toml_source::TomlSource;
use otarig::toml_source::files_in;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn pki() -> LabPki {
    LabPki::open(&Path::new(ROOT).join("scenarios/pki")).expect("the committed lab PKI")
}

fn check(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_source(&TomlSource::new("case.toml", text), &pki())
}

fn error_of(text: &str) -> (SpecErrorKind, usize, usize) {
    match check(text) {
        Err(ScenarioError::Spec(err)) => (err.kind, err.location.line, err.location.column),
        other => panic!("expected a spec error, got {other:?}"),
    }
}

fn invalid_of(text: &str) -> (ScenarioErrorKind, usize, usize) {
    match check(text) {
        Err(ScenarioError::Invalid { location, kind }) => (kind, location.line, location.column),
        other => panic!("expected a scenario value error, got {other:?}"),
    }
}

const HEAD: &str = "title = \"t\"\ndate = \"2026-11-25\"\n";

#[test]
fn every_shipped_scenario_checks() {
    let pki = pki();
    let files = files_in(&Path::new(ROOT).join("scenarios")).unwrap();
    assert!(files.len() >= 8);
    for path in files {
        let scenario = Scenario::load(&path, &pki).unwrap_or_else(|e| panic!("{e}"));
        assert!(!scenario.chain.is_empty());
        for name in &scenario.chain {
            assert!(scenario.cert(name, &pki).is_some(), "{}: {name}", path.display());
        }
    }
}

#[test]
fn the_founding_scenarios_exist_with_their_ids() {
    let pki = pki();
    let rescue = Scenario::load(&Path::new(ROOT).join("scenarios/dst-cross-sign-rescue.toml"), &pki).unwrap();
    assert_eq!(rescue.id, "dst-cross-sign-rescue");
    assert_eq!(rescue.chain, ["leaf", "r11", "isrg_root_x1_by_dst"]);
    let gts = Scenario::load(&Path::new(ROOT).join("scenarios/gts-chain.toml"), &pki).unwrap();
    assert_eq!(gts.chain, ["leaf", "wr2", "gts_root_r1_by_globalsign"]);
}

#[test]
fn leaf_defaults_follow_the_fleet_and_the_issuer() {
    let scenario = check(&format!("{HEAD}[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n")).unwrap();
    let leaf = &scenario.certs[0];
    assert_eq!(leaf.dns, ["ota.example.com"]);
    assert_eq!(leaf.common_name(), Some("ota.example.com"));
    assert_eq!(leaf.key, otarig::pki::KeyType::Rsa2048);
    assert!(leaf.not_before < scenario.date && scenario.date < leaf.not_after);
    let under_ecdsa = check(&format!("{HEAD}[leaf]\nissuer = \"e5\"\n[server]\nchain = [\"leaf\"]\n")).unwrap();
    assert_eq!(under_ecdsa.certs[0].key, otarig::pki::KeyType::P256);
}

#[test]
fn unknown_keys_are_located() {
    let (kind, line, column) =
        error_of(&format!("{HEAD}[leaf]\nissuer = \"r11\"\ncolour = 1\n[server]\nchain = [\"leaf\"]\n"));
    assert!(matches!(kind, SpecErrorKind::Shape { .. }));
    assert_eq!((line, column), (5, 1));
}

#[test]
fn unknown_authorities_are_located() {
    let (kind, line, column) = error_of(&format!("{HEAD}[leaf]\nissuer = \"r99\"\n[server]\nchain = [\"leaf\"]\n"));
    assert_eq!(kind, SpecErrorKind::UnknownCertificate { name: "r99".into() });
    assert_eq!((line, column), (4, 10));
    let (kind, line, _) =
        error_of(&format!("{HEAD}[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\", \"no_such_ca\"]\n"));
    assert_eq!(kind, SpecErrorKind::UnknownCertificate { name: "no_such_ca".into() });
    assert_eq!(line, 6);
}

#[test]
fn reference_cycles_are_refused() {
    let text = format!(
        "{HEAD}[certs.a]\nca = true\nkey = \"p256\"\nsubject = \"CN=A\"\nissuer = \"b\"\n\
         [certs.b]\nca = true\nkey = \"p256\"\nsubject = \"CN=B\"\nissuer = \"a\"\n[server]\nchain = [\"a\"]\n"
    );
    assert!(matches!(error_of(&text).0, SpecErrorKind::Cycle { .. }));
}

#[test]
fn inverted_dates_are_refused() {
    let text = format!(
        "{HEAD}[leaf]\nissuer = \"r11\"\nvalid = [\"2027-01-01\", \"2026-01-01\"]\n[server]\nchain = [\"leaf\"]\n"
    );
    let (kind, line, _) = error_of(&text);
    assert_eq!(kind, SpecErrorKind::InvertedValidity);
    assert_eq!(line, 5);
}

#[test]
fn a_cross_sign_cannot_change_its_key() {
    let text = format!(
        "{HEAD}[certs.x1_again]\nsame_key_as = \"isrg_root_x1\"\nkey = \"p256\"\nissuer = \"dst_root_x3\"\nca = true\n\
         [server]\nchain = [\"x1_again\"]\n"
    );
    assert!(matches!(error_of(&text).0, SpecErrorKind::KeyMismatch { .. }));
}

#[test]
fn reasons_only_where_the_class_has_them() {
    let base = format!("{HEAD}[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n[expect]\n");
    let (kind, line, _) = invalid_of(&format!("{base}\"fw\" = {{ outcome = \"network\", reason = \"expired\" }}\n"));
    assert_eq!((kind, line), (ScenarioErrorKind::Reason { outcome: OutcomeClass::Network }, 8));
    assert_eq!(invalid_of(&format!("{base}\"fw\" = \"tls-verify\"\n")).0, ScenarioErrorKind::NoReason);
    assert!(check(&format!("{base}\"fw\" = {{ outcome = \"tls-verify\", reason = \"expired\" }}\n")).is_ok());
    assert!(matches!(error_of(&format!("{base}\"fw\" = \"exploded\"\n")).0, SpecErrorKind::Shape { .. }));
}

#[test]
fn dates_tls_versions_and_tags_are_checked_where_written() {
    let body = "[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n";
    let (kind, line, column) = invalid_of(&format!("title = \"t\"\ndate = \"someday\"\n{body}"));
    assert_eq!(kind, ScenarioErrorKind::Date(TimeError { text: "someday".into() }));
    assert_eq!((line, column), (2, 8));
    let (kind, line, column) = invalid_of(&format!("{HEAD}{body}tls = \"1.4\"\n"));
    assert_eq!(kind, ScenarioErrorKind::TlsVersions { text: "1.4".into() });
    assert_eq!((line, column), (7, 7));
    let (kind, line, column) = invalid_of(&format!("{HEAD}{body}record_size = 20000\n"));
    assert_eq!((kind, line, column), (ScenarioErrorKind::RecordSize { size: 20000 }, 7, 15));
    assert_eq!(invalid_of(&format!("{HEAD}{body}record_size = 0\n")).0, ScenarioErrorKind::RecordSize { size: 0 });
    let (kind, line, _) = invalid_of(&format!("{HEAD}tags = [\"chain\", \"Fault\"]\n{body}"));
    assert_eq!((kind, line), (ScenarioErrorKind::Tag { tag: "Fault".into() }, 3));
    let (kind, _, column) = invalid_of(&format!("{HEAD}tags = [\"chain\", \"chain\"]\n{body}"));
    assert_eq!((kind, column), (ScenarioErrorKind::DuplicateTag { tag: "chain".into() }, 18));
}

#[test]
fn faults_parse_and_unknown_faults_do_not() {
    let base = format!("{HEAD}[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n");
    let scenario = check(&format!("{base}fault = {{ kind = \"truncate\", after = 1000 }}\n")).unwrap();
    assert_eq!(scenario.fault, Some(otarig::scenario::Fault::Truncate { after: 1000, close_notify: false }));
    let killed = check(&format!("{base}fault = {{ kind = \"kill\", after = 5000 }}\n")).unwrap();
    assert_eq!(killed.fault, Some(otarig::scenario::Fault::Kill { after: 5000 }));
    assert!(check(&format!("{base}fault = {{ kind = \"gremlins\" }}\n")).is_err());
}

fn otarig(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(args).output().unwrap()
}

#[test]
fn show_draws_the_founding_chains() {
    for id in ["dst-cross-sign-rescue", "gts-chain"] {
        let out = otarig(&["scenario", "show", id]);
        assert_eq!(out.status.code(), Some(0));
        insta::assert_snapshot!(format!("show_{id}"), String::from_utf8(out.stdout).unwrap());
    }
    // A server that seals its responses in small records says so.
    let out = otarig(&["scenario", "show", "le-r10-4k-records-2024"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("responses in records of at most 4096 bytes of plaintext"), "{text}");
}

#[test]
fn check_exits_2_with_file_line_column() {
    let dir = std::env::temp_dir().join(format!("otarig-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, format!("{HEAD}[leaf]\nissuer = \"r99\"\n[server]\nchain = [\"leaf\"]\n")).unwrap();
    let out = otarig(&["scenario", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.toml:4:10: unknown certificate `r99`"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(otarig(&["scenario", "check"]).status.code(), Some(0));
}

#[test]
fn fault_values_are_checked_where_written() {
    let base = format!("{HEAD}[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n");
    let (kind, line, _) = invalid_of(&format!("{base}fault = {{ kind = \"alert\", alert = \"teapot\" }}\n"));
    assert_eq!(kind, ScenarioErrorKind::Fault(FaultError::UnknownAlert { alert: "teapot".into() }));
    assert_eq!(line, 7);
    let redirect = invalid_of(&format!("{base}fault = {{ kind = \"redirect\", status = 200, location = \"/x\" }}\n"));
    assert_eq!(redirect.0, ScenarioErrorKind::Fault(FaultError::RedirectStatus { status: 200 }));
    let status = invalid_of(&format!("{base}fault = {{ kind = \"status\", status = 999 }}\n"));
    assert_eq!(status.0, ScenarioErrorKind::Fault(FaultError::Status { status: 999 }));
    assert!(check(&format!("{base}fault = {{ kind = \"alert\", alert = \"unknown-ca\" }}\n")).is_ok());
}

#[test]
fn extra_hosts_have_their_own_chain_path_and_fault() {
    let text = format!(
        "{HEAD}[leaf]\nissuer = \"r11\"\n[certs.cdn_leaf]\nissuer = \"r11\"\ndns = [\"cdn.example.net\"]\n\
         [server]\nchain = [\"leaf\", \"r11\"]\nfault = {{ kind = \"redirect\", location = \"https://cdn.example.net/fw.bin\" }}\n\
         [server.hosts.\"cdn.example.net\"]\nchain = [\"cdn_leaf\", \"r11\"]\npath = \"/fw.bin\"\n"
    );
    let scenario = check(&text).unwrap();
    assert_eq!(scenario.hosts.len(), 1);
    let host = &scenario.hosts[0];
    assert_eq!((host.name.as_str(), host.path.as_deref()), ("cdn.example.net", Some("/fw.bin")));
    assert_eq!(host.chain, ["cdn_leaf", "r11"]);
    let cdn = scenario.certs.iter().find(|c| c.name == "cdn_leaf").unwrap();
    assert_eq!(cdn.common_name(), Some("cdn.example.net"));

    let unknown = text.replace("chain = [\"cdn_leaf\", \"r11\"]", "chain = [\"cdn_leaf\", \"no_such_ca\"]");
    assert!(matches!(error_of(&unknown).0, SpecErrorKind::UnknownCertificate { .. }));
}

#[test]
fn device_power_cuts_parse_and_unknown_ones_are_located() {
    let base = format!("{HEAD}[leaf]\nissuer = \"r11\"\n[server]\nchain = [\"leaf\"]\n");
    let bytes = check(&format!("{base}[device]\npower_cut = {{ after-bytes = 300000 }}\n")).unwrap();
    assert_eq!(bytes.power_cut, Some(otarig::firmware::start::PowerCut::AfterBytes(300_000)));
    let otadata = check(&format!("{base}[device]\npower_cut = \"otadata-write\"\n")).unwrap();
    assert_eq!(otadata.power_cut, Some(otarig::firmware::start::PowerCut::OtadataWrite));
    let entry = check(&format!("{base}[device]\npower_cut = {{ otadata-bytes = 28 }}\n")).unwrap();
    assert_eq!(entry.power_cut, Some(otarig::firmware::start::PowerCut::OtadataBytes(28)));
    assert_eq!(check(&base).unwrap().power_cut, None);
    let (_, line, _) = error_of(&format!("{base}[device]\npower_cut = \"lightning\"\n"));
    assert_eq!(line, 8, "the power_cut line");
    let (kind, line, column) = invalid_of(&format!("{base}[device]\npower_cut = {{ otadata-bytes = 33 }}\n"));
    assert_eq!((kind, line, column), (ScenarioErrorKind::OtadataBytes { bytes: 33 }, 8, 13), "past the entry");
}

fn fleet(pki: &LabPki) -> otarig::firmware::Fleet {
    otarig::firmware::Fleet::load(&Path::new(ROOT).join("firmware-images"), pki).expect("the shipped fleet")
}

/// `[expect]` with the given rules, resolved against the shipped fleet.
fn resolved(rules: &str) -> Result<Scenario, ScenarioError> {
    let pki = pki();
    let text = format!("{HEAD}[server]\nchain = [\"r11\"]\n[expect]\n{rules}");
    let mut scenario = Scenario::from_source(&TomlSource::new("case.toml", text), &pki)?;
    scenario.check_rules_used(&fleet(&pki))?;
    scenario.resolve(&fleet(&pki))?;
    Ok(scenario)
}

#[test]
fn every_shipped_cell_has_one_expectation_with_its_source() {
    let pki = pki();
    let fleet = fleet(&pki);
    let files = files_in(&Path::new(ROOT).join("scenarios")).unwrap();
    assert!(files.len() >= 25, "{} scenarios", files.len());
    let derivations = ["field log FL", "mbedTLS rule: ", "ESP-IDF rule: ", "derived: "];
    for path in files {
        let mut scenario = Scenario::load(&path, &pki).unwrap();
        scenario.check_rules_used(&fleet).unwrap_or_else(|e| panic!("{e}"));
        scenario.resolve(&fleet).unwrap_or_else(|e| panic!("{e}"));
        for member in fleet.members() {
            let expected = scenario.expect.get(&member.id);
            let Some(expected) = expected else { panic!("{}: nothing expected of {}", scenario.id, member.id) };
            let source = expected.source.as_deref().unwrap_or_default();
            assert!(
                derivations.iter().any(|d| source.starts_with(d)),
                "{}: {}: source {source:?} does not say how it was derived",
                scenario.id,
                member.id
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# "), "{}: a header comment states the event, its date and source", scenario.id);
        assert!(!scenario.tags.is_empty(), "{}: tags by event family", scenario.id);
    }
}

#[test]
fn rules_fill_the_fleet_and_entries_win() {
    let scenario = resolved(
        "\"dst-x3-idf3.2\" = { outcome = \"updated\", source = \"derived: a test\" }\n\
         [[expect.rule]]\ntrusts = \"isrg_root_x1\"\noutcome = \"updated\"\nsource = \"derived: x1\"\n\
         [[expect.rule]]\nfallback = true\nidf = \"<4.4\"\noutcome = \"tls-verify\"\nreason = \"untrusted\"\nsource = \"derived: old\"\n\
         [[expect.rule]]\nfallback = true\nidf = \">=4.4\"\noutcome = \"tls-verify\"\nreason = \"unknown\"\nsource = \"derived: new\"\n",
    )
    .unwrap();
    let source = |id: &str| scenario.expect[id].source.clone().unwrap();
    assert_eq!(source("dst-x3-idf3.2"), "derived: a test");
    assert_eq!(source("isrg-x1-idf3.2"), "derived: x1");
    assert_eq!(source("bundle-idf6.0"), "derived: x1");
    assert_eq!(source("verisign-g5-idf3.2"), "derived: old");
    assert_eq!(scenario.expect["dst-x3-idf3.2-timecheck"].reason, Some(otarig::outcome::VerifyReason::Untrusted));
    assert_eq!(source("baltimore-idf4.4"), "derived: new");
}

#[test]
fn two_rules_for_one_firmware_are_refused_at_the_second() {
    let rules = "[[expect.rule]]\ntrust = \"bundle\"\noutcome = \"updated\"\nsource = \"derived: a\"\n\
                 [[expect.rule]]\nidf = \">=5.0\"\noutcome = \"updated\"\nsource = \"derived: b\"\n";
    match resolved(rules) {
        Err(ScenarioError::Invalid { location, kind: ScenarioErrorKind::AmbiguousExpectation { first, .. } }) => {
            assert_eq!((location.line, location.column), (10, 1));
            assert_eq!(first.line, 6);
        }
        other => panic!("expected an ambiguity, got {other:?}"),
    }
}

#[test]
fn rules_that_match_nothing_or_say_nothing_are_refused_where_written() {
    let unused = "[[expect.rule]]\nfirmware_tag = \"no-such-tag\"\noutcome = \"updated\"\nsource = \"derived: a\"\n";
    assert!(matches!(
        resolved(unused),
        Err(ScenarioError::Invalid { kind: ScenarioErrorKind::UnusedRule, location }) if location.line == 6
    ));
    let cases = [
        ("[[expect.rule]]\noutcome = \"updated\"\n", ScenarioErrorKind::NoSource, 6),
        ("[[expect.rule]]\noutcome = \"updated\"\nsource = \" \"\n", ScenarioErrorKind::EmptySource, 6),
        ("\"a\" = { outcome = \"updated\", source = \"\" }\n", ScenarioErrorKind::EmptySource, 6),
        (
            "[[expect.rule]]\nidf = \"4.4\"\noutcome = \"updated\"\nsource = \"derived: a\"\n",
            ScenarioErrorKind::IdfRange { text: "4.4".into() },
            7,
        ),
        (
            "[[expect.rule]]\ntrusts = \"nobody\"\noutcome = \"updated\"\nsource = \"derived: a\"\n",
            ScenarioErrorKind::UnknownTrusted { name: "nobody".into() },
            7,
        ),
    ];
    for (rules, kind, line) in cases {
        let text = format!("{HEAD}[server]\nchain = [\"r11\"]\n[expect]\n{rules}");
        assert_eq!(invalid_of(&text).0, kind, "{rules}");
        assert_eq!(invalid_of(&text).1, line, "{rules}");
    }
}

#[test]
fn check_refuses_an_ambiguous_rule_with_file_line_column() {
    let dir = std::env::temp_dir().join(format!("otarig-ambiguous-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ambiguous.toml");
    let text = format!(
        "{HEAD}[server]\nchain = [\"r11\"]\n[expect]\n\
         [[expect.rule]]\ntrust = \"pem\"\noutcome = \"updated\"\nsource = \"derived: a\"\n\
         [[expect.rule]]\ntrusts = \"isrg_root_x1\"\noutcome = \"updated\"\nsource = \"derived: b\"\n"
    );
    std::fs::write(&path, text).unwrap();
    let output = otarig(&["scenario", "check", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ambiguous.toml:10:1"), "{stderr}");
}
