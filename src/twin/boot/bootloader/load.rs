//! Loading an app partition as `bootloader_utility_load_boot_image` does: from the selected
//! slot down to factory, then up through the OTA slots, then the test app; each image read by
//! `esp_image` in load mode, its segments printed, a failure named and the next one tried.

use esp_idf_part::PartitionTable;

use super::structural_error;
use crate::idf::IdfVersion;
use crate::image::{AppImage, Chip, ImageError, ImagePart, parse_app};
use crate::twin::CHIP_REVISION;
use crate::twin::uart::{Level, Uart};

/// An app partition: where it is and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::twin::boot) struct Slot {
    pub offset: u32,
    pub size: u32,
}

/// The app partitions as the bootloader indexes them.
#[derive(Clone, Debug, Default)]
pub(in crate::twin::boot) struct Slots {
    pub factory: Option<Slot>,
    test: Option<Slot>,
    /// `ota[n]` is `ota_n` (subtype 0x10 + n).
    ota: [Option<Slot>; 16],
}

impl Slots {
    pub fn of(table: &PartitionTable) -> Slots {
        let mut slots = Slots::default();
        for p in table.partitions().iter().filter(|p| u8::from(p.ty()) == 0) {
            let slot = Some(Slot { offset: p.offset(), size: p.size() });
            match u8::from(p.subtype()) {
                0x00 => slots.factory = slot,
                0x20 => slots.test = slot,
                n @ 0x10..=0x1F => slots.ota[usize::from(n - 0x10)] = slot,
                _ => {}
            }
        }
        slots
    }

    /// How many OTA app partitions the table has (`bs->app_count`).
    pub(crate) fn app_count(&self) -> u32 {
        self.ota.iter().flatten().count() as u32
    }

    /// `index_to_partition`: -1 is factory, 0.. are OTA slots.
    fn at(&self, index: i64) -> Option<Slot> {
        match index {
            -1 => self.factory,
            0..=15 => self.ota[index as usize],
            _ => None,
        }
    }
}

/// The app the bootloader loaded.
#[derive(Clone, Debug)]
pub(in crate::twin::boot) struct LoadedApp {
    pub partition_offset: u32,
    pub image: AppImage,
}

/// Tries the partitions in the bootloader's order, from `start` (`None`: factory).
/// `blank_otadata`: otadata was empty and there is no factory, so booting an OTA slot makes
/// the bootloader write its first sequence number (the twin does not write it back).
pub(in crate::twin::boot) fn load_boot_image(
    flash: &[u8],
    slots: &Slots,
    start: Option<u32>,
    blank_otadata: bool,
    d: IdfVersion,
    uart: &mut Uart<'_>,
) -> Option<LoadedApp> {
    let start = start.map_or(-1, i64::from);
    let backwards = (-1..=start).rev();
    let forwards = start + 1..i64::from(slots.app_count());
    for index in backwards.chain(forwards) {
        let Some(slot) = slots.at(index) else { continue };
        if let Some(loaded) = try_load(flash, slot, d, uart, EspImageMode::Load) {
            if blank_otadata && index >= 0 && d.at_least(4, 0) {
                uart.log(Level::Info, "boot", &format!("Set actual ota_seq={} in otadata[0]", index + 1));
            }
            return Some(loaded);
        }
        let line = match index {
            -1 => "Factory app partition is not bootable".to_owned(),
            n => format!("OTA app partition slot {n} is not bootable"),
        };
        uart.log(Level::Error, "boot", &line);
    }
    if let Some(loaded) = slots.test.and_then(|slot| try_load(flash, slot, d, uart, EspImageMode::Load)) {
        uart.log(Level::Warn, "boot", "Falling back to test app as only bootable partition");
        return Some(loaded);
    }
    uart.log(Level::Error, "boot", "No bootable app partitions in the partition table");
    None
}

/// How `esp_image_load` reads an image: the bootloader loads it (RAM segments print `load`),
/// an app verifies one it wrote (`esp_ota_end`, `esp_ota_set_boot_partition`: RAM segments
/// print an empty word, and no "Loaded app" line follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::twin) enum EspImageMode {
    Load,
    Verify,
}

/// `esp_image_verify` of the image at `offset` in a partition of `size` bytes, as an app of
/// dialect `d` runs it: the segment lines and the error that ends a failure.
pub(in crate::twin) fn verify_app(
    flash: &[u8],
    offset: u32,
    size: u32,
    d: IdfVersion,
    uart: &mut Uart<'_>,
) -> Option<AppImage> {
    try_load(flash, Slot { offset, size }, d, uart, EspImageMode::Verify).map(|loaded| loaded.image)
}

/// `try_load_partition`: the image at `slot` read in load mode, with what `esp_image` prints.
fn try_load(flash: &[u8], slot: Slot, d: IdfVersion, uart: &mut Uart<'_>, mode: EspImageMode) -> Option<LoadedApp> {
    let region = flash.get(slot.offset as usize..).unwrap_or_default();
    let parsed = parse_app(region);
    let failed = |uart: &mut Uart<'_>, line: String| {
        uart.log(Level::Error, "esp_image", &line);
        None
    };
    if let Err(err @ ImageError::BadMagic { .. }) = &parsed {
        return failed(uart, structural_error(err, slot.offset, d));
    }
    if region.first_chunk::<24>().is_some_and(|header| chip_refused(header, d, mode, uart)) {
        return None;
    }
    let image = match parsed {
        Ok(image) => image,
        Err(err) => {
            let printed = match &err {
                ImageError::InvalidSegmentLength { index, .. } => *index,
                ImageError::SegmentPastEnd { index, .. } => index + 1,
                ImageError::Truncated { part: ImagePart::SegmentHeader { index }, .. } => *index,
                _ => 0,
            };
            for (index, (data_offset, load_addr, length)) in walk(region, printed).into_iter().enumerate() {
                segment_line(index, slot.offset + data_offset as u32, load_addr, length, d, mode, uart);
            }
            let line = match &err {
                ImageError::Truncated { part: ImagePart::Header, .. } | ImageError::BadMagic { .. } => {
                    structural_error(&ImageError::BadMagic { offset: 0, got: 0xFF }, slot.offset, d)
                }
                other => structural_error(other, slot.offset, d),
            };
            return failed(uart, line);
        }
    };
    for segment in &image.segments {
        let paddr = slot.offset + segment.data_offset as u32;
        if is_mapped(segment.load_addr) && paddr % 0x10000 != segment.load_addr % 0x10000 {
            let line = format!(
                "Segment {} load address {:#010x}, doesn't match data {paddr:#010x}",
                segment.index, segment.load_addr
            );
            return failed(uart, line);
        }
        segment_line(segment.index, paddr, segment.load_addr, segment.length, d, mode, uart);
    }
    let checksum = image.checksum;
    if !checksum.ok() {
        let line = format!("Checksum failed. Calculated {:#x} read {:#x}", checksum.calculated, checksum.stored);
        return failed(uart, line);
    }
    if image.length > slot.size as usize {
        return failed(uart, format!("Image length {} doesn't fit in partition length {}", image.length, slot.size));
    }
    if image.hash.is_some_and(|hash| !hash.ok()) {
        return failed(uart, "Image hash failed - image is corrupt".to_owned());
    }
    if mode == EspImageMode::Load {
        uart.log(Level::Info, "boot", &format!("Loaded app from partition at offset {:#x}", slot.offset));
    }
    Some(LoadedApp { partition_offset: slot.offset, image })
}

/// The chip checks after the magic byte (`bootloader_common_check_chip_validity`, tag
/// `boot_comm`): the revision line where the release prints it (in the bootloader only), another
/// chip refused from v4.0, a revision out of range from the releases that print
/// `chip revision: v%d.%d`. Whether the image is refused.
fn chip_refused(header: &[u8; 24], d: IdfVersion, mode: EspImageMode, uart: &mut Uart<'_>) -> bool {
    let (major, minor) = CHIP_REVISION;
    if super::boot_comm_revision_line(d) {
        let min = header[14];
        if u16::from(min) != major && mode == EspImageMode::Load {
            let line = format!("chip revision: {major}, min. application chip revision: {min}");
            uart.log(Level::Info, "boot_comm", &line);
        }
    }
    if !d.at_least(4, 0) {
        return false;
    }
    let chip_id = u16::from_le_bytes([header[12], header[13]]);
    if Chip::from_id(chip_id) != Chip::Esp32 {
        let line = format!("mismatch chip ID, expected {}, found {chip_id}", Chip::Esp32.id());
        uart.log(Level::Error, "boot_comm", &line);
        return true;
    }
    if super::boot_comm_revision_line(d) || !d.at_least(4, 3) {
        return false;
    }
    let chip = major * 100 + minor;
    let min = u16::from_le_bytes([header[15], header[16]]);
    let max = u16::from_le_bytes([header[17], header[18]]);
    let refusal = if chip < min {
        format!("Image requires chip rev >= v{}.{}, but chip is v{major}.{minor}", min / 100, min % 100)
    } else if max != 0 && max != 0xFFFF && chip > max {
        format!("Image requires chip rev <= v{}.{}, but chip is v{major}.{minor}", max / 100, max % 100)
    } else {
        return false;
    };
    uart.log(Level::Error, "boot_comm", &refusal);
    true
}

/// ESP32's IROM and DROM windows (`should_map`).
fn is_mapped(addr: u32) -> bool {
    (0x400D_0000..0x4040_0000).contains(&addr) || (0x3F40_0000..0x3F80_0000).contains(&addr)
}

/// `segment N: paddr=… vaddr=… size=… (…) load|map|` in the dialect; then the time it takes
/// to hash or copy the data.
fn segment_line(
    index: usize,
    paddr: u32,
    vaddr: u32,
    len: u32,
    d: IdfVersion,
    mode: EspImageMode,
    uart: &mut Uart<'_>,
) {
    let word = if is_mapped(vaddr) {
        "map"
    } else if vaddr < 0x1000_0000 || mode == EspImageMode::Verify {
        // Padding is neither mapped nor loaded, and an app verifying an image loads nothing;
        // ESP-IDF still prints the line, ending in a space.
        ""
    } else {
        "load"
    };
    let line = if d.at_least(4, 3) {
        format!("segment {index}: paddr={paddr:08x} vaddr={vaddr:08x} size={len:05x}h ({len:6}) {word}")
    } else {
        format!("segment {index}: paddr={paddr:#010x} vaddr={vaddr:#010x} size={len:#07x} ({len:6}) {word}")
    };
    uart.log(Level::Info, "esp_image", &line);
    uart.wait_us(u64::from(len) * 37 / 100);
}

/// The first `count` segment headers that can be read: (data offset, load address, length).
fn walk(region: &[u8], count: usize) -> Vec<(usize, u32, u32)> {
    let mut out = Vec::new();
    let mut at = 24usize;
    while out.len() < count.min(16) {
        let Some(h) = region.get(at..).and_then(<[u8]>::first_chunk::<8>) else { break };
        let load_addr = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let length = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        out.push((at + 8, load_addr, length));
        at = at.saturating_add(8).saturating_add(length as usize);
    }
    out
}
