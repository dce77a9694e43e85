//! otarig: a hardware-in-the-loop rig for ESP32 HTTPS over-the-air updates.
//!
//! The library holds everything the rig does; the `otarig` binary only parses the command
//! line, prints, explains outcomes and chooses exit codes. It never prints: results are values
//! and progress is a stream of events. `ARCHITECTURE.md` draws the whole picture and the
//! order of the layers.
//!
//! # Map
//!
//! - **Firmware and images**: [`image`] reads and verifies ESP app images, bootloaders,
//!   partition tables, otadata and the trust material a firmware carries; [`firmware`] turns
//!   fleet manifests (`firmware-images/*.toml`) and real builds into the images a device is
//!   flashed with; [`idf`] knows ESP-IDF versions and what each release runs.
//! - **What the device meets**: [`pki`] mints and loads the lab's look-alike authorities,
//!   [`scenario`] reads scenario files (the chain, hosts, image, fault and expectations) and
//!   [`server`] is the HTTPS update server that serves them, faults included; [`labnet`]
//!   answers the lab's DNS and SNTP.
//! - **The device**: [`device_tls`] is the device's certificate decision on real mbedTLS, per
//!   ESP-IDF release; [`twin`] is a software ESP32 (ROM loader, flash, bootloader, update
//!   client) on a pseudo-terminal; [`board`] is the hardware seam (the `Board` trait, over a
//!   UART, a JTAG probe or a twin).
//! - **Running**: [`lab`] reads the lab config (`otarig.toml`); [`run`] pairs firmware with
//!   scenarios into cells and runs them on a pool of stations; [`faults`] runs fault campaigns
//!   (power cuts, vanishing serial ports, a server killed or stalled) through it.
//! - **Results**: [`results`] owns `results.jsonl` (one line per cell), from which [`report`]
//!   draws the terminal matrix, the fleet summary, JUnit, the HTML report, merges and diffs.
//! - **Judging**: [`console`] turns UART bytes into events, [`verdict`] turns events into one
//!   [`outcome`] with the lines that decided it, and [`replay`] does both for a captured log,
//!   the same code a live run uses.
//! - **Predicting**: [`predict`] judges a chain offline for each firmware, with the same
//!   [`device_tls`] decision as the twin; [`rescue`] finds the chains of real certificates
//!   ([`catalogue`]) a server the owner controls can still send so a firmware updates, and runs
//!   each on a twin.
//!
//! Under them: [`outcome`] (the outcome classes, a contract), [`codes`] (mbedTLS and
//! `esp_err_t` names), [`verify_flags`] (mbedTLS's `BADCERT_*` flags), [`toml_source`]
//! (TOML with `file:line:column` errors) and [`input`] (files read with a limit).
//!
//! # Example
//!
//! Classifying what a device printed, as `otarig replay` and every live cell do:
//!
//! ```
//! use otarig::console::Console;
//! use otarig::outcome::{OutcomeClass, VerifyReason};
//! use otarig::verdict::Judge;
//!
//! let log = "I (4342) native_ota_example: Starting OTA\n\
//!            E (9012) esp-tls: mbedtls_ssl_handshake returned -0x2700\n\
//!            I (9012) esp-tls: Failed to verify peer certificate!\n\
//!            I (9012) esp-tls: verification info:   ! The certificate is signed with an unacceptable hash.\n\
//!            E (9022) esp-tls: Failed to open new connection\n";
//!
//! let mut console = Console::new();
//! let mut judge = Judge::new();
//! // Bytes in reads of any size, as they come off the UART.
//! for chunk in log.as_bytes().chunks(7) {
//!     console.feed(chunk, |event| judge.observe(&event));
//! }
//! console.finish(|event| judge.observe(&event));
//! let verdict = judge.finish();
//!
//! assert_eq!(verdict.outcome.outcome, OutcomeClass::TlsVerify);
//! assert_eq!(verdict.outcome.reason, Some(VerifyReason::WeakHash));
//! // The evidence quotes the deciding lines with their line numbers.
//! assert!(verdict.evidence.iter().any(|e| e.line == 4 && e.text.contains("unacceptable hash")));
//! ```

#![warn(missing_docs)]

#[cfg(unix)]
pub mod board;
pub mod catalogue;
pub mod codes;
pub mod console;
pub mod device_tls;
#[cfg(unix)]
pub mod faults;
pub mod firmware;
#[cfg(unix)]
pub mod fuzzing;
pub mod heap_budget;
pub mod idf;
pub mod image;
pub mod input;
#[cfg(unix)]
pub mod lab;
pub mod labnet;
#[cfg(unix)]
pub mod matching;
pub mod outcome;
pub mod pki;
pub mod predict;
pub mod replay;
pub mod report;
#[cfg(unix)]
pub mod rescue;
pub mod results;
#[cfg(unix)]
pub mod run;
pub mod scenario;
pub mod server;
pub mod toml_source;
pub mod twin;
pub mod verdict;
pub mod verify_flags;
