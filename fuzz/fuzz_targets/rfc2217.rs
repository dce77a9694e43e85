//! Any bytes an RFC 2217 client sends the twin: `otarig::fuzzing::rfc2217`, which the test suite
//! also replays every corpus file through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::rfc2217(data));
