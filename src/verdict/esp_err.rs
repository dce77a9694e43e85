//! What an `esp_err_t` an update ends with means, when no line before it said why: the
//! README's table (`otarig replay`, "esp_err_t"), which a test holds to this one.
//!
//! An `esp_err_t` is what a call returned, a summary of what failed inside it: after a failure
//! line in the same attempt it follows from that line (`ESP_ERR_HTTP_CONNECT` after a TLS
//! failure is that TLS failure). Alone it decides, by this table.

use super::classify::Family;
use crate::outcome::{Outcome, OutcomeClass};

/// `(value, outcome)` for every `esp_err_t` an OTA can end with; any other value is `unknown`.
pub const MEANINGS: &[(u32, OutcomeClass)] = &[
    (0x101, OutcomeClass::OutOfMemory),
    (0x104, OutcomeClass::ImageInvalid),
    (0x107, OutcomeClass::Network),
    (0x10a, OutcomeClass::ImageInvalid),
    (0x1503, OutcomeClass::ImageInvalid),
    (0x1504, OutcomeClass::ImageInvalid),
    (0x2002, OutcomeClass::ImageInvalid),
    (0x7001, OutcomeClass::HttpStatus),
    (0x7002, OutcomeClass::Network),
    (0x7003, OutcomeClass::Network),
    (0x7004, OutcomeClass::Network),
    (0x7008, OutcomeClass::Network),
    (0x8001, OutcomeClass::Network),
    (0x8002, OutcomeClass::Network),
    (0x8003, OutcomeClass::Network),
    (0x8004, OutcomeClass::Network),
    (0x8005, OutcomeClass::Network),
    (0x8006, OutcomeClass::Network),
    (0x8008, OutcomeClass::Network),
    (0xe001, OutcomeClass::Network),
    (0xe002, OutcomeClass::Network),
    (0xe003, OutcomeClass::Network),
    (0xe004, OutcomeClass::OutOfMemory),
];

/// The outcome an `esp_err_t` stands for on its own.
pub fn outcome(err: u32) -> Outcome {
    let class = MEANINGS.iter().find(|(value, _)| *value == err).map_or(OutcomeClass::Unknown, |(_, class)| *class);
    Outcome::of(class)
}

/// The failure family of an `esp_err_t`, for telling consequences from new attempts.
pub(super) fn family(err: u32) -> Family {
    match outcome(err).outcome {
        OutcomeClass::OutOfMemory => Family::Memory,
        OutcomeClass::ImageInvalid => Family::Image,
        OutcomeClass::Network => Family::Connect,
        OutcomeClass::HttpStatus => Family::Http,
        _ => Family::Call,
    }
}
