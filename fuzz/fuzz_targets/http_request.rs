//! Any bytes a client sends the update server before its request is answered: `otarig::fuzzing::http_request`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::http_request(data));
