//! Any bytes through the trust scanners and the certificate bundle parser: `otarig::fuzzing::trust`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::trust(data));
