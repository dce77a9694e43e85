//! Any line on the twin's control channel: `otarig::fuzzing::control_line`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::control_line(data));
