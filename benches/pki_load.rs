//! Lab-PKI load: how long opening the lab PKI and building every shipped scenario's served
//! chain takes, in a fresh process (cold) and again in a running one (warm), and what a fresh
//! leaf key costs, RSA-2048 against P-256.
//!
//! Why: every `otarig` command that touches certificates (`serve`, `scenario show`, `pki`, and
//! later the matrix runner, once per scenario run) starts by opening `scenarios/pki` and
//! building the chain it serves. A command line pays the cold cost; a long-running runner pays the warm cost
//! per scenario. `ServedChain::build` mints the scenario's own certificates with new keys every
//! time, and generating a key is the dearest step by far, so it is reported on its own.
//!
//! What is timed (`cargo bench --bench pki_load`), each stage separately:
//!
//! 1. Static load: `LabPki::open` (read, parse and check `authorities.toml`), then
//!    `pki.certificate(name)` for every authority (read + PEM decode), then `pki.key_pem(owner)`
//!    for every key owner (read).
//! 2. For every `scenarios/*.toml`: `Scenario::load` (parse + check against the PKI), then
//!    `ServedChain::build` (mint the scenario's certificates with fresh keys, assemble the
//!    chain).
//! 3. Leaf key types, warm only: three one-leaf scenarios written in memory, an RSA-2048 leaf
//!    issued by R11 (what every shipped scenario serves), a P-256 leaf issued by R11 (only the
//!    leaf key differs) and a P-256 leaf issued by E6 (P-384, an all-ECDSA chain): the key
//!    generation alone (`pki::new_key`) and the whole `ServedChain::build`.
//!
//! Cold = the first run in a fresh process: the benchmark starts itself [`COLD_PROCESSES`]
//! times with [`COLD_CHILD_ARG`]; each child runs stages 1 and 2 once, checks them and prints
//! its timings; the table shows the median over the children. That includes one-time costs
//! (allocator growth, aws-lc-rs initialisation, page faults on code and data) but not a cold
//! page cache: the files were read moments before, and dropping caches needs root.
//! Warm = the median of [`WARM_RUNS`] runs in this process after one discarded warm-up run
//! (minimum and maximum shown too). Leaf key generation is random work (RSA searches for
//! primes), so its spread is wide; [`LEAF_RUNS`] runs per key type.
//!
//! Checks, on every run and outside the timed regions, so the figures are for correct work:
//! as many certificates and keys as `authorities.toml` names and `certs/`, `keys/` hold; every
//! certificate parses to its end, is a CA with the specified common name, carries the public
//! key of its key owner's PEM and is signed by its issuer's key; every served chain names the
//! scenario's certificates in order, serves authorities byte-identical to the committed ones,
//! serves scenario-made certificates of the specified key type signed by their issuer, comes
//! with the key of its first certificate, and has a leaf key different from the previous run's.
//!
//! Without `--bench` (`cargo test --benches`) it runs stages 1 to 3 once in this process and
//! checks them, so test runs stay quick. Times are printed in milliseconds.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use otarig::pki::{self, KeyType, LabPki, Minted};
use otarig::scenario::{Scenario, ServedChain};
use otarig::toml_source::TomlSource;
use rcgen::PublicKeyData;
use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;

/// Every printed line starts with this.
const P: &str = "pki_load:";
/// The argument that makes the benchmark a cold child: one run, timings on stdout.
const COLD_CHILD_ARG: &str = "--cold-child";
/// Fresh processes measured for the cold column.
const COLD_PROCESSES: usize = 5;
/// Runs in one process for the warm column (after one discarded warm-up run).
const WARM_RUNS: usize = 20;
/// Runs per leaf key type (each generates two keys: one alone, one in the build).
const LEAF_RUNS: usize = 30;

/// A one-leaf scenario: a leaf of `key` issued by `issuer`, served with its issuer.
macro_rules! leaf_scenario {
    ($issuer:literal, $key:literal) => {
        concat!(
            "title = \"key type\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"",
            $issuer,
            "\"\nkey = \"",
            $key,
            "\"\n[server]\nchain = [\"leaf\", \"",
            $issuer,
            "\"]\n"
        )
    };
}

/// The leaf key-type cases: label, key type, scenario text (date within E6's validity).
const LEAF_CASES: &[(&str, KeyType, &str)] = &[
    ("RSA-2048 leaf <- R11 (RSA-2048)", KeyType::Rsa2048, leaf_scenario!("r11", "rsa2048")),
    ("P-256 leaf <- R11 (RSA-2048)", KeyType::P256, leaf_scenario!("r11", "p256")),
    ("P-256 leaf <- E6 (P-384)", KeyType::P256, leaf_scenario!("e6", "p256")),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if args.iter().any(|arg| arg == COLD_CHILD_ARG) {
        cold_child(root);
    } else if args.iter().any(|arg| arg == "--bench") {
        bench(root);
    } else {
        smoke(root);
    }
}

/// A quick correctness check for test runs: every stage once, checked.
fn smoke(root: &Path) {
    let started = Instant::now();
    let (run, evidence) = run_once(root);
    check(&evidence, None);
    let leaves = leaf_runs(&evidence.pki, 1);
    println!(
        "{P} smoke run (no --bench): {} certificates, {} keys, {} scenarios, {} leaf key types loaded, built \
         and checked in {:.3} s (static load {:.3} ms)",
        evidence.certs.len(),
        evidence.keys.len(),
        evidence.scenarios.len(),
        leaves.len(),
        started.elapsed().as_secs_f64(),
        ms(run.get("static"))
    );
}

/// A cold child: stages 1 and 2 once, first thing in the process; checks; timings on stdout
/// as `key<TAB>nanoseconds` lines for the parent.
fn cold_child(root: &Path) {
    let (run, evidence) = run_once(root);
    check(&evidence, None);
    for (key, took) in &run.samples {
        println!("{key}\t{}", took.as_nanos());
    }
}

/// The full benchmark: cold children, warm runs, leaf key types, two tables.
fn bench(root: &Path) {
    let cold = cold_runs();

    // Warm-up, discarded: it is this process's first run.
    let (_, mut previous) = run_once(root);
    check(&previous, None);
    let mut warm: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut keys_in_order = Vec::new();
    for _ in 0..WARM_RUNS {
        let (run, evidence) = run_once(root);
        check(&evidence, Some(&previous));
        previous = evidence;
        for (key, took) in run.samples {
            if !warm.contains_key(&key) {
                keys_in_order.push(key.clone());
            }
            warm.entry(key).or_default().push(took);
        }
    }
    let evidence = previous;

    let leaves = leaf_runs(&evidence.pki, LEAF_RUNS);

    print_load_table(&evidence, &keys_in_order, &cold, &warm);
    print_leaf_table(&leaves);
    println!(
        "{P} correctness: every run ({COLD_PROCESSES} cold, {} warm, {} leaf) checked: {} certificates and {} keys \
         pair up and verify, {} served chains in order, authorities byte-identical, leaves signed by their \
         issuer, fresh leaf key each run",
        WARM_RUNS + 1,
        LEAF_RUNS * LEAF_CASES.len(),
        evidence.certs.len(),
        evidence.keys.len(),
        evidence.scenarios.len()
    );
}

// ------------------------------------------------------------------------------------------
// One run
// ------------------------------------------------------------------------------------------

/// The timings of one run, in order: stage key, time.
struct Run {
    samples: Vec<(String, Duration)>,
}

impl Run {
    fn get(&self, key: &str) -> Duration {
        self.samples.iter().find(|(k, _)| k == key).map(|(_, d)| *d).unwrap_or_default()
    }
}

/// What one run produced, kept for the checks.
struct Evidence {
    root: PathBuf,
    pki: LabPki,
    certs: Vec<Minted>,
    /// Key owner, PKCS#8 PEM.
    keys: Vec<(String, String)>,
    scenarios: Vec<(Scenario, ServedChain)>,
}

/// Stages 1 and 2, each timed on its own.
fn run_once(root: &Path) -> (Run, Evidence) {
    let pki_dir = root.join("scenarios/pki");
    let scenario_files = scenario_files(root);
    let mut samples = Vec::new();

    let started = Instant::now();
    let pki = LabPki::open(&pki_dir).unwrap_or_else(|e| panic!("{P} cannot open {}: {e}", pki_dir.display()));
    samples.push(("open".to_owned(), started.elapsed()));

    let started = Instant::now();
    let certs: Vec<Minted> = pki
        .specs()
        .keys()
        .map(|name| pki.certificate(name).unwrap_or_else(|e| panic!("{P} certificate {name}: {e}")))
        .collect();
    samples.push(("certs".to_owned(), started.elapsed()));

    let started = Instant::now();
    let owners: BTreeSet<&str> = pki.specs().values().map(pki::CertSpec::key_owner).collect();
    let keys: Vec<(String, String)> = owners
        .into_iter()
        .map(|owner| (owner.to_owned(), pki.key_pem(owner).unwrap_or_else(|e| panic!("{P} key {owner}: {e}"))))
        .collect();
    samples.push(("keys".to_owned(), started.elapsed()));

    let static_load: Duration = samples.iter().map(|(_, d)| *d).sum();
    let mut scenarios = Vec::new();
    let (mut loads, mut builds) = (Duration::ZERO, Duration::ZERO);
    for path in &scenario_files {
        let started = Instant::now();
        let scenario = Scenario::load(path, &pki).unwrap_or_else(|e| panic!("{P} {}: {e}", path.display()));
        let load = started.elapsed();
        let started = Instant::now();
        let chain = ServedChain::build(&scenario, &pki).unwrap_or_else(|e| panic!("{P} {}: {e}", scenario.id));
        let build = started.elapsed();
        samples.push((format!("load:{}", scenario.id), load));
        samples.push((format!("build:{}", scenario.id), build));
        loads += load;
        builds += build;
        scenarios.push((scenario, chain));
    }
    samples.push(("static".to_owned(), static_load));
    samples.push(("loads".to_owned(), loads));
    samples.push(("builds".to_owned(), builds));
    samples.push(("total".to_owned(), static_load + loads + builds));

    (Run { samples }, Evidence { root: root.to_owned(), pki, certs, keys, scenarios })
}

/// The shipped scenarios, by file name.
fn scenario_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{P} cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{P} no scenarios in {}", dir.display());
    files
}

/// Times of the leaf key-type cases: per case, key generation alone and the whole build.
struct LeafTimes {
    label: &'static str,
    keygen: Vec<Duration>,
    build: Vec<Duration>,
}

/// Stage 3: `runs` times each leaf case, checked every time.
fn leaf_runs(pki: &LabPki, runs: usize) -> Vec<LeafTimes> {
    let committed = committed_certs(pki);
    let mut out = Vec::new();
    for &(label, key, text) in LEAF_CASES {
        let scenario = Scenario::from_source(&TomlSource::new("leaf-key-type.toml", text), pki)
            .unwrap_or_else(|e| panic!("{P} {label}: {e}"));
        let leaf_spec = &scenario.certs[0];
        assert_eq!(leaf_spec.key, key, "{P} {label}: the leaf's key type");
        let mut times = LeafTimes { label, keygen: Vec::new(), build: Vec::new() };
        let mut previous_leaf_key: Option<Vec<u8>> = None;
        for _ in 0..runs {
            let started = Instant::now();
            let alone = pki::new_key(leaf_spec).unwrap_or_else(|e| panic!("{P} {label}: {e}"));
            times.keygen.push(started.elapsed());
            let started = Instant::now();
            let chain = ServedChain::build(&scenario, pki).unwrap_or_else(|e| panic!("{P} {label}: {e}"));
            times.build.push(started.elapsed());

            let leaf_key = check_chain(&scenario, &chain, &committed);
            assert_ne!(alone.subject_public_key_info(), leaf_key, "{P} {label}: two fresh keys are equal");
            assert!(key_is(&parse(&chain.certs[0].der), key), "{P} {label}: leaf key is not {key:?}");
            assert_ne!(previous_leaf_key.as_ref(), Some(&leaf_key), "{P} {label}: leaf key reused");
            previous_leaf_key = Some(leaf_key);
        }
        out.push(times);
    }
    out
}

// ------------------------------------------------------------------------------------------
// Cold children
// ------------------------------------------------------------------------------------------

/// Runs [`COLD_PROCESSES`] children; per stage key, the times they reported.
fn cold_runs() -> BTreeMap<String, Vec<Duration>> {
    let me = std::env::current_exe().expect("the benchmark's own path");
    let mut cold: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for _ in 0..COLD_PROCESSES {
        let output = Command::new(&me).arg(COLD_CHILD_ARG).output().expect("start a cold child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{P} cold child failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        for line in stdout.lines() {
            let (key, nanos) = line.split_once('\t').unwrap_or_else(|| panic!("{P} odd child line {line:?}"));
            let nanos: u64 = nanos.parse().unwrap_or_else(|_| panic!("{P} odd child line {line:?}"));
            cold.entry(key.to_owned()).or_default().push(Duration::from_nanos(nanos));
        }
    }
    for (key, times) in &cold {
        assert_eq!(times.len(), COLD_PROCESSES, "{P} not every child reported {key}");
    }
    cold
}

// ------------------------------------------------------------------------------------------
// Checks
// ------------------------------------------------------------------------------------------

/// Checks a run's results; `previous` (the run before, if any) must have had other leaf keys.
fn check(evidence: &Evidence, previous: Option<&Evidence>) {
    let pki = &evidence.pki;
    let specs = pki.specs();
    let pki_dir = evidence.root.join("scenarios/pki");

    // As many certificates and keys as specified and as on disk.
    assert_eq!(evidence.certs.len(), specs.len(), "{P} certificates read");
    assert_eq!(evidence.certs.len(), count_files(&pki_dir.join("certs"), ".pem"), "{P} certs/ files");
    assert_eq!(evidence.keys.len(), count_files(&pki_dir.join("keys"), ".key.pem"), "{P} keys/ files");

    // Keys parse; each certificate carries its key owner's public key, its CN, and its issuer's
    // signature.
    let key_pems: BTreeMap<&str, &str> =
        evidence.keys.iter().map(|(owner, pem)| (owner.as_str(), pem.as_str())).collect();
    let committed = committed_certs(pki);
    for minted in &evidence.certs {
        let spec = &specs[&minted.name];
        let cert = parse(&minted.der);
        assert!(cert.is_ca(), "{P} {} is not a CA", minted.name);
        let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok());
        let spec_cn = spec.subject.iter().find(|(k, _)| k == "CN").map(|(_, v)| v.as_str());
        assert_eq!(cn, spec_cn, "{P} {}: common name", minted.name);
        assert!(
            key_matches(key_pems[spec.key_owner()], &cert),
            "{P} {}: not the key of keys/{}",
            minted.name,
            spec.key_owner()
        );
        assert!(key_is(&cert, spec.key), "{P} {}: key type", minted.name);
        let issuer = &committed[spec.issuer_name()];
        verify_signed_by(&cert, &parse(issuer)).unwrap_or_else(|e| panic!("{P} {}: {e}", minted.name));
    }

    // Every served chain.
    let shipped = scenario_files(&evidence.root).len();
    assert_eq!(evidence.scenarios.len(), shipped, "{P} scenarios built");
    for (i, (scenario, chain)) in evidence.scenarios.iter().enumerate() {
        let leaf_key = check_chain(scenario, chain, &committed);
        if let Some(previous) = previous {
            let (old_scenario, old_chain) = &previous.scenarios[i];
            assert_eq!(old_scenario.id, scenario.id);
            if scenario.certs.iter().any(|c| c.name == scenario.chain[0]) {
                let old_key = parse(&old_chain.certs[0].der).public_key().raw.to_vec();
                assert_ne!(old_key, leaf_key, "{P} {}: the leaf key was not fresh", scenario.id);
            }
        }
    }
}

/// Checks one served chain; returns the first certificate's SubjectPublicKeyInfo.
fn check_chain(scenario: &Scenario, chain: &ServedChain, committed: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let id = &scenario.id;
    let names: Vec<&str> = chain.certs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, scenario.chain, "{P} {id}: chain order");
    let made: BTreeMap<&str, &Minted> = chain
        .certs
        .iter()
        .filter(|c| scenario.certs.iter().any(|s| s.name == c.name))
        .map(|c| (c.name.as_str(), c))
        .collect();
    for minted in &chain.certs {
        match scenario.certs.iter().find(|s| s.name == minted.name) {
            None => assert_eq!(minted.der, committed[&minted.name], "{P} {id}: {} differs from certs/", minted.name),
            Some(spec) => {
                let cert = parse(&minted.der);
                assert!(key_is(&cert, spec.key), "{P} {id}: {} key type", minted.name);
                let issuer_der = match made.get(spec.issuer_name()) {
                    Some(local) => local.der.clone(),
                    None => committed
                        .get(spec.issuer_name())
                        .unwrap_or_else(|| panic!("{P} {id}: issuer {} not served", spec.issuer_name()))
                        .clone(),
                };
                let issuer = parse(&issuer_der);
                assert_eq!(cert.issuer().as_raw(), issuer.subject().as_raw(), "{P} {id}: {} issuer name", minted.name);
                verify_signed_by(&cert, &issuer).unwrap_or_else(|e| panic!("{P} {id}: {}: {e}", minted.name));
            }
        }
    }
    let first = parse(&chain.certs[0].der);
    assert!(key_matches(&chain.key_pem, &first), "{P} {id}: the served key is not the first certificate's");
    first.public_key().raw.to_vec()
}

/// Every committed certificate's DER, by name (read outside the timed regions).
fn committed_certs(pki: &LabPki) -> BTreeMap<String, Vec<u8>> {
    pki.specs()
        .keys()
        .map(|name| {
            let pem = std::fs::read_to_string(pki.cert_path(name)).expect("a committed certificate");
            (name.clone(), pki::pem_to_der(&pem).expect("a CERTIFICATE block"))
        })
        .collect()
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{P} cannot list {}: {e}", dir.display()))
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(suffix)))
        .count()
}

/// Parses a whole DER certificate (no trailing bytes).
fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap_or_else(|e| panic!("{P} unparsable: {e}"));
    assert!(rest.is_empty(), "{P} {} bytes after the certificate", rest.len());
    cert
}

/// Whether `key_pem` (PKCS#8) is the private half of `cert`'s public key: their
/// SubjectPublicKeyInfos are equal where rcgen loads the key; for an RSA key rcgen refuses
/// (under 2048 bits), the certificate's modulus must appear in the key's DER (a PKCS#1
/// RSAPrivateKey holds the modulus verbatim).
fn key_matches(key_pem: &str, cert: &X509Certificate<'_>) -> bool {
    match rcgen::KeyPair::from_pem(key_pem) {
        Ok(pair) => pair.subject_public_key_info() == cert.public_key().raw,
        Err(_) => match (cert.public_key().parsed(), ::pem::parse(key_pem)) {
            (Ok(PublicKey::RSA(rsa)), Ok(block)) if block.tag() == "PRIVATE KEY" => {
                block.contents().windows(rsa.modulus.len()).any(|w| w == rsa.modulus)
            }
            _ => false,
        },
    }
}

/// Whether the certificate's public key is of `key`'s type and size.
fn key_is(cert: &X509Certificate<'_>, key: KeyType) -> bool {
    let bits = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) if key.is_rsa() => rsa.key_size(),
        // An uncompressed point: 0x04, x, y.
        Ok(PublicKey::EC(_)) if !key.is_rsa() => (cert.public_key().subject_public_key.data.len() - 1) * 4,
        _ => return false,
    };
    let expected = match key {
        KeyType::Rsa1024 => 1024,
        KeyType::Rsa2048 => 2048,
        KeyType::Rsa3072 => 3072,
        KeyType::Rsa4096 => 4096,
        KeyType::P256 => 256,
        KeyType::P384 => 384,
        KeyType::Ed25519 => return false,
    };
    bits == expected
}

/// Verifies `cert`'s signature with `issuer`'s public key (aws-lc-rs).
fn verify_signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), String> {
    use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
    let issuer_key = issuer.public_key();
    let ec_bits = (issuer_key.subject_public_key.data.len().saturating_sub(1)) * 4;
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let algorithm: &'static dyn VerificationAlgorithm = match (oid.as_str(), ec_bits) {
        // The legacy variants accept the RSA-1024 and SHA-1 signatures of old authorities.
        ("1.2.840.113549.1.1.5", _) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        ("1.2.840.113549.1.1.11", _) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        ("1.2.840.113549.1.1.12", _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", _) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        ("1.2.840.10045.4.3.2", 256) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.2", 384) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", 256) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.3", 384) => &signature::ECDSA_P384_SHA384_ASN1,
        (other, _) => return Err(format!("signature algorithm {other} not handled by the benchmark")),
    };
    UnparsedPublicKey::new(algorithm, &issuer_key.subject_public_key.data[..])
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| "the signature does not verify with the issuer's key".to_owned())
}

// ------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------

fn print_load_table(
    evidence: &Evidence,
    keys_in_order: &[String],
    cold: &BTreeMap<String, Vec<Duration>>,
    warm: &BTreeMap<String, Vec<Duration>>,
) {
    let cert_bytes: usize = evidence.certs.iter().map(|c| c.pem.len()).sum();
    let key_bytes: usize = evidence.keys.iter().map(|(_, pem)| pem.len()).sum();
    println!(
        "{P} lab PKI {}: {} certificates ({} bytes PEM), {} keys ({} bytes PEM), {} scenarios",
        evidence.pki.dir().display(),
        evidence.certs.len(),
        cert_bytes,
        evidence.keys.len(),
        key_bytes,
        evidence.scenarios.len()
    );
    println!(
        "{P} cold = first run in a fresh process (median of {COLD_PROCESSES} processes, page cache warm); \
         warm = median of {WARM_RUNS} runs in one process; times in ms"
    );
    let label = |key: &str| -> String {
        match key {
            "open" => "LabPki::open (authorities.toml: parse + check)".to_owned(),
            "certs" => format!("read {} certificates (PEM -> DER)", evidence.certs.len()),
            "keys" => format!("read {} key PEMs", evidence.keys.len()),
            "static" => "= static load (open + certificates + keys)".to_owned(),
            "loads" => format!("= all {} Scenario::load", evidence.scenarios.len()),
            "builds" => format!("= all {} ServedChain::build", evidence.scenarios.len()),
            "total" => "= everything".to_owned(),
            _ => {
                let (what, id) = key.split_once(':').expect("a scenario key");
                let scenario = evidence.scenarios.iter().map(|(s, _)| s).find(|s| s.id == id).expect("a scenario");
                match what {
                    "load" => format!("{id}: load"),
                    _ => {
                        let minted: Vec<String> = scenario.certs.iter().map(|c| key_label(c.key).to_owned()).collect();
                        format!("{id}: build (mint {})", minted.join(", "))
                    }
                }
            }
        }
    };
    let builds: Vec<Duration> =
        warm.iter().filter(|(key, _)| key.starts_with("build:")).flat_map(|(_, times)| times.iter().copied()).collect();
    println!(
        "{P} each build mints fresh keys and RSA key generation searches for primes: one build took \
         {:.1} to {:.1} ms over these runs, so per-scenario differences are mostly chance",
        ms(*builds.iter().min().expect("builds")),
        ms(*builds.iter().max().expect("builds"))
    );
    let width = keys_in_order.iter().map(|k| label(k).len()).max().unwrap_or(0);
    println!(
        "{P} {:<width$} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9}",
        "stage", "cold", "warm", "warm min", "warm max", "cold/warm"
    );
    // Stages first (in run order), then the totals.
    let totals = ["static", "loads", "builds", "total"];
    let ordered = keys_in_order
        .iter()
        .filter(|k| !totals.contains(&k.as_str()))
        .chain(keys_in_order.iter().filter(|k| totals.contains(&k.as_str())));
    for key in ordered {
        let cold_median = median(&cold[key]);
        let warm_times = &warm[key];
        let warm_median = median(warm_times);
        println!(
            "{P} {:<width$} | {:>9.3} | {:>9.3} | {:>9.3} | {:>9.3} | {:>9.1}",
            label(key),
            ms(cold_median),
            ms(warm_median),
            ms(*warm_times.iter().min().expect("warm runs")),
            ms(*warm_times.iter().max().expect("warm runs")),
            cold_median.as_secs_f64() / warm_median.as_secs_f64()
        );
    }
}

fn print_leaf_table(leaves: &[LeafTimes]) {
    println!("{P} leaf key type: pki::new_key alone and the whole ServedChain::build, {LEAF_RUNS} runs each, warm, ms");
    let width = leaves.iter().map(|l| l.label.len()).max().unwrap_or(0);
    println!(
        "{P} {:<width$} | {:>13} | {:>17} | {:>12} | {:>17}",
        "leaf <- issuer", "keygen median", "keygen min..max", "build median", "build min..max"
    );
    let range = |times: &[Duration]| {
        let (min, max) = (times.iter().min().expect("runs"), times.iter().max().expect("runs"));
        format!("{:.3}..{:.3}", ms(*min), ms(*max))
    };
    for leaf in leaves {
        println!(
            "{P} {:<width$} | {:>13.3} | {:>17} | {:>12.3} | {:>17}",
            leaf.label,
            ms(median(&leaf.keygen)),
            range(&leaf.keygen),
            ms(median(&leaf.build)),
            range(&leaf.build)
        );
    }
    if let [rsa, p256, ..] = leaves {
        println!(
            "{P} RSA-2048 vs P-256 leaf (same issuer R11): keygen {:.0}x, build {:.0}x slower (medians)",
            median(&rsa.keygen).as_secs_f64() / median(&p256.keygen).as_secs_f64(),
            median(&rsa.build).as_secs_f64() / median(&p256.build).as_secs_f64()
        );
    }
}

fn key_label(key: KeyType) -> &'static str {
    match key {
        KeyType::Rsa1024 => "RSA-1024",
        KeyType::Rsa2048 => "RSA-2048",
        KeyType::Rsa3072 => "RSA-3072",
        KeyType::Rsa4096 => "RSA-4096",
        KeyType::P256 => "P-256",
        KeyType::P384 => "P-384",
        KeyType::Ed25519 => "Ed25519",
    }
}

/// The median (the mean of the middle two for an even count).
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let n = sorted.len();
    assert!(n > 0, "{P} no samples");
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 }
}

fn ms(took: Duration) -> f64 {
    took.as_secs_f64() * 1e3
}
