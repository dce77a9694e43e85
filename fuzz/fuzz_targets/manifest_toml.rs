//! Any text as a firmware manifest: `otarig::fuzzing::manifest_toml`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::manifest_toml(data));
