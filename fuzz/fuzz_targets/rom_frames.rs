//! Any bytes on the twin's serial line: the SLIP decoder and the ROM loader must answer or
//! ignore them, never panic, never write outside the flash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otarig::twin::flash::VirtualFlash;
use otarig::twin::rom::RomLoader;
use otarig::twin::slip::SlipDecoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = SlipDecoder::default();
    let mut loader = RomLoader::default();
    let mut flash = VirtualFlash::new(64 * 1024);
    for chunk in data.chunks(97) {
        for frame in decoder.feed(chunk) {
            for reply in loader.handle(&frame, &mut flash) {
                // Every reply is a response frame for some command.
                assert!(reply.len() >= 8 && reply[0] == 0x01);
            }
        }
    }
    assert_eq!(flash.as_bytes().len(), 64 * 1024);
});
