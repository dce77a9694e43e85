//! Any bytes as a partition table region: `otarig::fuzzing::partition_table`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::partition_table(data));
