//! otarig: a hardware-in-the-loop rig for ESP32 HTTPS over-the-air updates.
//!
//! The library holds everything but the command line: reading what an ESP32 prints
//! ([`console`]), judging it ([`verdict`]), and replaying captured logs ([`replay`]).

#[cfg(unix)]
pub mod board;
pub mod codes;
pub mod console;
pub mod device_tls;
pub mod firmware;
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
pub mod results;
#[cfg(unix)]
pub mod run;
pub mod scenario;
pub mod server;
pub mod toml_source;
pub mod twin;
pub mod verdict;
pub mod verify_flags;
