//! Any bytes into `parse_app` and what tells files apart (`identify`, the ESP8266 reader, the
//! bootloader's version): they must return, never panic, whatever the input claims.

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
    let _ = otarig::image::identify::identify(data);
    if let Some(image) = otarig::image::read_esp8266(data) {
        assert!(image.length <= data.len());
    }
    if let Some(version) = otarig::image::bootloader_version(data) {
        assert!(version.offset + version.text.len() <= data.len());
    }
});
