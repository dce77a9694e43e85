//! Any bytes a device prints, through the console and the judge, in pieces and whole: `otarig::fuzzing::console`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::console(data));
