//! The integration tests, one binary: the library's public API and the `otarig` binary, driven
//! as users drive them (real clients: espflash, esptool, OpenSSL, rustls, headless Chromium).
//! One binary links mbedTLS and aws-lc once, and its tests run side by side.

// Tests print what they saw when they fail.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A failed assumption in a test is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod architecture;

mod board;
mod cli;
mod device_tls;
mod device_tls_build;
mod device_tls_dates;
mod device_tls_heap;
mod faults_power;
mod faults_server;
mod faults_vanish;
mod field_logs;
mod firmware;
mod fleet_images;
mod fuzz_corpora;
mod hostile;
mod idf_lines;
mod inspect;
mod inspect_kinds;
mod inspect_trust;
mod lab;
mod lab_services;
mod legacy_pki;
mod pki;
mod predict;
mod predict_releases;
mod public_cas;
mod readme_case;
mod real_builds;
mod replay_match;
mod replay_readme;
mod report;
mod report_html;
mod rescue;
mod robustness;
mod run;
mod run_boards;
mod run_pool;
mod run_select;
mod scenario_like;
mod scenario_pr;
mod scenarios;
mod server;
mod start_state;
mod synthetic;
mod transplant;
mod twin_boot;
mod twin_espflash;
mod twin_esptool;
mod twin_flash_file;
mod twin_ota;
mod twin_ota_paths;
mod twin_power;
mod twin_predict_agree;
mod twin_rfc2217;
mod twin_vanish;
