//! Any bytes into `parse_app`: it must return, never panic, whatever the input claims.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = otarig::image::parse_app(data) {
        // What a valid parse claims must hold for the bytes it came from.
        assert!(image.length + image.trailing == data.len());
        for segment in &image.segments {
            assert!(segment.data_range().end <= image.length);
        }
    }
});
