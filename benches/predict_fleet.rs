//! Predict: how long `otarig predict --firmware all` takes for one chain (the DST cross-sign
//! rescue): reading every fleet member's profile from its image, then judging the chain for
//! each with mbedTLS, with and without the forecast.
//!
//! Why: a fleet owner pastes a chain and wants the answer at once; a matrix run predicts every
//! cell before it flashes anything.
//!
//! `cargo bench --bench predict_fleet` (release): median of 9 runs each, with checks that the
//! answers are right (the founding case: DST-only firmware accepts, its date-checking build
//! rejects as expired, the pinned intermediate is untrusted; every forecast present). Under
//! `cargo test --benches` it does one quick checked pass.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A benchmark that cannot measure stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use otarig::firmware::Fleet;
use otarig::outcome::{OutcomeClass, VerifyReason};
use otarig::pki::LabPki;
use otarig::predict::{Device, Prediction, predict};
use otarig::scenario::{Scenario, ServedChain};

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let runs = if benching { 9 } else { 1 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pki = LabPki::open(&root.join("scenarios/pki")).expect("lab PKI");
    let fleet = Fleet::load(&root.join("firmware-images"), &pki).expect("fleet");
    let scenario = Scenario::load(&root.join("scenarios/dst-cross-sign-rescue.toml"), &pki).expect("scenario");
    let chain = ServedChain::build(&scenario, &pki).expect("chain").ders();
    let today = scenario.date.unix_timestamp();

    let mut load_times = Vec::new();
    let mut devices = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        devices = fleet.members().map(|m| Device::from_manifest(m, &fleet, &pki).expect("device")).collect();
        load_times.push(started.elapsed());
    }
    let mut judge_times = Vec::new();
    let mut forecast_times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let predictions = predict(&devices, &chain, today, false).expect("predict");
        judge_times.push(started.elapsed());
        check(&predictions, false);
        let started = Instant::now();
        let predictions = predict(&devices, &chain, today, true).expect("predict");
        forecast_times.push(started.elapsed());
        check(&predictions, true);
    }

    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1e3
    };
    let (load, judge, forecast) = (median(&mut load_times), median(&mut judge_times), median(&mut forecast_times));
    let n = devices.len();
    println!("predict_fleet: {n} firmware, one 3-certificate chain (median of {runs})");
    println!("predict_fleet: profiles read from the built images: {load:.1} ms");
    println!("predict_fleet: verdicts: {judge:.2} ms ({:.2} ms per firmware)", judge / n as f64);
    println!("predict_fleet: verdicts with forecast: {forecast:.2} ms");
    println!("predict_fleet: the whole `--firmware all` (profiles + verdicts): {:.1} ms", load + judge);
}

fn check(predictions: &[Prediction], forecast: bool) {
    let outcome = |id: &str| {
        let p = predictions.iter().find(|p| p.device.firmware.as_deref() == Some(id)).expect(id);
        assert_eq!(p.forecast.is_some(), forecast, "{id}");
        p.rejection()
    };
    assert_eq!(outcome("dst-x3-idf3.2"), None);
    assert_eq!(outcome("dst-x3-idf3.2-timecheck"), Some((OutcomeClass::TlsVerify, VerifyReason::Expired)));
    assert_eq!(outcome("pinned-r3-idf4.4"), Some((OutcomeClass::TlsVerify, VerifyReason::Untrusted)));
    assert_eq!(outcome("bundle-idf5.4"), None);
}
