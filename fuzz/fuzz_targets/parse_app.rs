//! Any bytes as an app image, and what tells files apart: `otarig::fuzzing::app_image`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::app_image(data));
