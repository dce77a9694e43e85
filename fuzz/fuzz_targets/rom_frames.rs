//! Any bytes on the twin's serial line: SLIP frames into the ROM loader: `otarig::fuzzing::rom_frames`, which the test suite also replays every corpus file
//! through.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| otarig::fuzzing::rom_frames(data));
