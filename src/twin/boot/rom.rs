//! The ESP32 ROM's first-stage output: banner, reset reason, flash settings, one `load:` line
//! per segment of the 2nd-stage bootloader at 0x1000, and its entry address.

use super::ResetReason;
use crate::image::partition::ESP32_BOOTLOADER_OFFSET;
use crate::image::{AppImage, IMAGE_MAGIC, parse_app};
use crate::twin::uart::Uart;

/// The ROM's build date line, the same on every ESP32.
const BANNER: &str = "ets Jun  8 2016 00:22:57";

/// Prints the ROM's lines; the bootloader image when the ROM would jump into it.
///
/// Without a readable bootloader the real ROM prints `Invalid header: 0x…` over and over; the
/// twin prints it once. A bootloader whose checksum is wrong is loaded (its `load:` lines
/// printed) but not entered: the ROM's words for that are not known here, so none are printed.
pub(super) fn run(flash: &[u8], reset: ResetReason, uart: &mut Uart<'_>) -> Option<AppImage> {
    let (code, name) = reset.code_and_name();
    uart.rom(BANNER);
    uart.rom("");
    uart.rom(&format!("rst:{code:#x} ({name}),boot:0x13 (SPI_FAST_FLASH_BOOT)"));
    uart.rom("configsip: 0, SPIWP:0xee");
    uart.rom("clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00");
    let region = flash.get(ESP32_BOOTLOADER_OFFSET..).unwrap_or_default();
    let image = match parse_app(region) {
        Ok(image) if region.first() == Some(&IMAGE_MAGIC) => image,
        _ => {
            let word = region.first_chunk().map_or(u32::MAX, |w| u32::from_le_bytes(*w));
            uart.rom("mode:DIO, clock div:2");
            uart.rom(&format!("Invalid header: {word:#010x}"));
            return None;
        }
    };
    let mode = image.header.spi_mode.name().unwrap_or("DIO").replace('_', " ");
    uart.rom(&format!("mode:{mode}, clock div:2"));
    for segment in &image.segments {
        uart.rom(&format!("load:{:#010x},len:{}", segment.load_addr, segment.length));
    }
    if !image.checksum.ok() {
        return None;
    }
    uart.rom(&format!("entry {:#010x}", image.header.entry_addr));
    Some(image)
}
