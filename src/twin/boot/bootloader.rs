//! The 2nd-stage bootloader: its banner and flash settings in the dialect of its ESP-IDF
//! version, the partition table, the OTA slot choice from otadata, and the loading of app
//! images with ESP-IDF's fallback order (`bootloader_utility.c`, `esp_image_format.c`).

use esp_idf_part::PartitionTable;
use memchr::memmem;

use crate::firmware::build::ROLLBACK_MARKER;
use crate::firmware::profile::LogLevel;
use crate::idf::IdfVersion;
use crate::image::otadata::{OtaState, Otadata, entry_crc};
use crate::image::partition::{ESP32_BOOTLOADER_OFFSET, TABLE_OFFSET, otadata_partition, read_table};
use crate::image::{AppImage, ImageError};
use crate::twin::CHIP_REVISION;
use crate::twin::uart::{Level, Uart};

mod load;

pub(super) use load::LoadedApp;
pub(in crate::twin) use load::verify_app;

/// Compile time of a bootloader that does not carry one (v3.x and v4.x keep `__TIME__` only
/// inside their code); the rig's own builds use this time.
const UNKNOWN_COMPILE_TIME: &str = "12:00:00";
/// Its date, for releases that print one (v5.1+).
const UNKNOWN_COMPILE_DATE: &str = "Jan  1 2024";

/// The bootloader's ESP-IDF version as it prints it, and its compile time.
struct Identity {
    idf: String,
    /// The release its lines follow.
    version: IdfVersion,
    /// `__DATE__ " " __TIME__` when the bootloader carries it (v5.2+ descriptor), else the
    /// time the rig's builds use.
    compile_date_time: Option<String>,
    /// Built with `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE` (the rig's builds say so).
    rollback: bool,
    /// `CONFIG_BOOTLOADER_LOG_LEVEL`, from the format strings the bootloader holds: its banner's
    /// (INFO), only error texts (ERROR), none (silent, as Arduino-ESP32's bootloader is).
    log_level: LogLevel,
}

/// Reads the version from the bootloader: its `esp_bootloader_desc_t` (v5.2+, at the start of
/// its DRAM segment), else the `IDF_VER` string its banner prints (any release), else the text
/// `ESP-IDF vX 2nd stage bootloader` of the rig's own builds.
fn identify(image: &AppImage, region: &[u8]) -> Identity {
    let rollback = image.segments.iter().any(|s| memmem::find(&region[s.data_range()], ROLLBACK_MARKER).is_some());
    let bytes = region.get(..image.length).unwrap_or(region);
    let log_level = log_level(bytes);
    let identity = |idf: String, compile_date_time| {
        let version = IdfVersion::parse(&idf)?;
        Some(Identity { idf, version, compile_date_time, rollback, log_level })
    };
    // Its descriptor (v5.2+).
    if let Some(desc) = crate::image::parse_bootloader_desc(bytes)
        && let Some(id) = identity(desc.idf_ver, Some(desc.date_time))
    {
        return id;
    }
    // The rig's own builds carry the banner as one text.
    if let Some(start) = memmem::find(bytes, b"ESP-IDF v") {
        let rest = &bytes[start + 8..];
        if let Some(end) = memmem::find(&rest[..rest.len().min(64)], b" 2nd stage bootloader")
            && let Some(id) = identity(String::from_utf8_lossy(&rest[..end]).into_owned(), None)
        {
            return id;
        }
    }
    // `IDF_VER`, the banner's argument, among its strings.
    if let Some(version) = crate::image::bootloader_version(bytes)
        && let Some(id) = identity(version.text, None)
    {
        return id;
    }
    // Nothing says. A silent bootloader prints nothing either way; one that speaks gets v4.4's
    // lines, and the twin says it does not know the version.
    if log_level > LogLevel::None {
        tracing::warn!("twin: the bootloader at 0x1000 names no ESP-IDF version; printing v4.4's lines");
    }
    let version = IdfVersion::new(4, 4, 0);
    Identity { idf: "unknown".to_owned(), version, compile_date_time: None, rollback, log_level }
}

/// The bootloader's log level, from the format strings compiled into it: the banner is there at
/// INFO, only error texts at ERROR, neither when it was built silent.
fn log_level(bytes: &[u8]) -> LogLevel {
    if memmem::find(bytes, b"2nd stage bootloader").is_some() {
        LogLevel::Info
    } else if memmem::find(bytes, b"not bootable").is_some() || memmem::find(bytes, b"Checksum failed").is_some() {
        LogLevel::Error
    } else {
        LogLevel::None
    }
}

/// Runs the bootloader: the app it loads, or `None` when it finds none. What it writes to
/// otadata (the rollback states) goes to `otadata_write` as (offset, new partition content).
pub(super) fn run(
    flash: &[u8],
    bootloader: &AppImage,
    uart: &mut Uart<'_>,
    otadata_write: &mut Option<(u32, Vec<u8>)>,
) -> Option<LoadedApp> {
    let region = flash.get(ESP32_BOOTLOADER_OFFSET..).unwrap_or_default();
    let id = identify(bootloader, region);
    let d = id.version;
    uart.speak(d, id.log_level);
    uart.wait_us(27_000);
    start_up(&id, bootloader, uart);

    let Some(table) = partition_table(flash, uart) else {
        uart.log(Level::Error, "boot", "load partition table error!");
        return None;
    };
    print_table(&table, d, uart);
    let slots = load::Slots::of(&table);
    let location = otadata_partition(&table);
    let mut otadata = location.map(|(offset, size)| {
        let start = (offset as usize).min(flash.len());
        let end = (offset as usize).saturating_add(size as usize).min(flash.len());
        Otadata::decode(&flash[start..end])
    });
    let before = otadata;
    let rollback = id.rollback && d.at_least(4, 0);
    if let Some(otadata) = otadata.as_mut().filter(|_| rollback) {
        // An app that was started but never confirmed itself: its entry is given up.
        for entry in &mut otadata.entries {
            if entry.state == OtaState::PendingVerify {
                entry.state = OtaState::Aborted;
            }
        }
    }
    let (start, blank_otadata) = select(&slots, otadata.as_ref(), d, uart);
    if let Some(otadata) = otadata.as_mut().filter(|_| rollback) {
        // The chosen entry, when new, is now on trial until the app confirms it.
        let chosen = otadata.entries.iter_mut().filter(|e| e.is_valid()).max_by_key(|e| e.seq);
        if let Some(entry) = chosen.filter(|e| e.state == OtaState::New && start.is_some()) {
            entry.state = OtaState::PendingVerify;
        }
    }
    if let (Some((offset, _)), Some(after)) = (location, otadata)
        && Some(after) != before
    {
        *otadata_write = Some((offset, after.encode()));
    }
    let loaded = load::load_boot_image(flash, &slots, start, blank_otadata, d, uart)?;
    uart.log(Level::Info, "boot", "Disabling RNG early entropy source...");
    Some(loaded)
}

/// From the banner to the RNG line, in the order and wording of the bootloader's release
/// (`bootloader_init.c`, `bootloader_esp32.c`, `bootloader_common_loader.c` at its tag).
fn start_up(id: &Identity, bootloader: &AppImage, uart: &mut Uart<'_>) {
    let d = id.version;
    let i = |uart: &mut Uart<'_>, tag: &str, line: &str| uart.log(Level::Info, tag, line);
    let (major, minor) = CHIP_REVISION;
    let min = bootloader.header.min_chip_rev;
    // `bootloader_common_check_chip_validity`'s line, when the chip's revision is not the
    // image's minimum (the ESP32 default minimum is 0; the twin is revision 3).
    let min_revision = |uart: &mut Uart<'_>| {
        if boot_comm_revision_line(d) && u16::from(min) != major {
            i(uart, "boot_comm", &format!("chip revision: {major}, min. bootloader chip revision: {min}"));
        }
    };
    if !d.at_least(4, 1) {
        // v3.x and v4.0: `bootloader_main()`.
        if capital_chip_revision(d) {
            i(uart, "boot", &format!("Chip Revision: {major}"));
            min_revision(uart);
        }
        banner(id, uart);
        i(uart, "boot", "Enabling RNG early entropy source...");
        spi_lines(bootloader, "boot", uart);
        return;
    }
    banner(id, uart);
    if d >= IdfVersion::new(5, 0, 3) || (d >= IdfVersion::new(4, 4, 6) && d < IdfVersion::new(5, 0, 0)) {
        i(uart, "boot", "Multicore bootloader");
    }
    let revision_with_minor =
        d >= IdfVersion::new(4, 4, 4) || (d >= IdfVersion::new(4, 3, 5) && d < IdfVersion::new(4, 4, 0));
    if revision_with_minor {
        i(uart, "boot", &format!("chip revision: v{major}.{minor}"));
    } else {
        i(uart, "boot", &format!("chip revision: {major}"));
    }
    min_revision(uart);
    spi_lines(bootloader, "boot.esp32", uart);
    i(uart, "boot", "Enabling RNG early entropy source...");
}

/// `ESP-IDF %s 2nd stage bootloader` and its compile time: `__TIME__` to v5.0,
/// `__DATE__ " " __TIME__` from v5.1.
fn banner(id: &Identity, uart: &mut Uart<'_>) {
    uart.log(Level::Info, "boot", &format!("ESP-IDF {} 2nd stage bootloader", id.idf));
    let compile = match &id.compile_date_time {
        Some(date_time) => date_time.clone(),
        None if id.version.at_least(5, 1) => format!("{UNKNOWN_COMPILE_DATE} {UNKNOWN_COMPILE_TIME}"),
        None => UNKNOWN_COMPILE_TIME.to_owned(),
    };
    uart.log(Level::Info, "boot", &format!("compile time {compile}"));
}

/// `Chip Revision: %d` before the banner: v3.1.7, v3.2.4–v3.2.5, v3.3.1–v4.0.x.
fn capital_chip_revision(d: IdfVersion) -> bool {
    let v = IdfVersion::new;
    d == v(3, 1, 7) || (v(3, 2, 4)..v(3, 3, 0)).contains(&d) || (v(3, 3, 1)..v(4, 1, 0)).contains(&d)
}

/// `boot_comm: chip revision: %d, min. %s chip revision: %d`: v3.1.7, v3.2.4–v3.2.5,
/// v3.3.1–v4.3.4, v4.4.0–v4.4.4 and v5.0.0.
pub(super) fn boot_comm_revision_line(d: IdfVersion) -> bool {
    let v = IdfVersion::new;
    d == v(3, 1, 7)
        || (v(3, 2, 4)..v(3, 3, 0)).contains(&d)
        || (v(3, 3, 1)..=v(4, 3, 4)).contains(&d)
        || (v(4, 4, 0)..=v(4, 4, 4)).contains(&d)
        || d == v(5, 0, 0)
}

/// The flash settings from the bootloader's own header.
fn spi_lines(bootloader: &AppImage, tag: &str, uart: &mut Uart<'_>) {
    let header = &bootloader.header;
    let speed = match header.spi_speed.0 {
        1 => "26.7MHz",
        2 => "20MHz",
        0xF => "80MHz",
        _ => "40MHz",
    };
    let mode = match header.spi_mode.0 {
        0 => "QIO",
        1 => "QOUT",
        2 => "DIO",
        3 => "DOUT",
        4 => "FAST READ",
        _ => "SLOW READ",
    };
    uart.log(Level::Info, tag, &format!("SPI Speed      : {speed}"));
    uart.log(Level::Info, tag, &format!("SPI Mode       : {mode}"));
    let size = if header.spi_size.0 <= 4 { header.spi_size.name().unwrap_or("4MB") } else { "4MB" };
    uart.log(Level::Info, tag, &format!("SPI Flash Size : {size}"));
}

/// The partition table, or the lines the bootloader prints when it cannot use it.
fn partition_table(flash: &[u8], uart: &mut Uart<'_>) -> Option<PartitionTable> {
    let region = flash.get(TABLE_OFFSET..).unwrap_or_default();
    match read_table(region) {
        Ok(table) => Some(table),
        Err(_) => {
            let magic = region.first_chunk().map_or(0xFFFF, |m| u16::from_le_bytes(*m));
            if magic != 0x50AA {
                uart.log(Level::Error, "flash_parts", &format!("partition 0 invalid magic number {magic:#x}"));
            } else {
                uart.log(Level::Error, "flash_parts", "Incorrect MD5 checksum");
            }
            uart.log(Level::Error, "boot", "Failed to verify partition table");
            None
        }
    }
}

/// `Partition Table:` … `End of partition table`, with the bootloader's usage words.
fn print_table(table: &PartitionTable, d: IdfVersion, uart: &mut Uart<'_>) {
    uart.log(Level::Info, "boot", "Partition Table:");
    uart.log(Level::Info, "boot", "## Label            Usage          Type ST Offset   Length");
    for (index, p) in table.partitions().iter().enumerate() {
        let (ty, subtype) = (u8::from(p.ty()), u8::from(p.subtype()));
        let usage = match (ty, subtype) {
            (0x00, 0x00) => "factory app",
            (0x00, 0x20) => "test app",
            (0x00, 0x10..=0x1F) => "OTA app",
            (0x00, _) => "Unknown app",
            (0x01, 0x00) => "OTA data",
            (0x01, 0x01) => "RF data",
            (0x01, 0x02) => "WiFi data",
            (0x01, 0x04) => "NVS keys",
            (0x01, 0x05) if d.at_least(5, 0) => "efuse",
            (0x01, _) => "Unknown data",
            _ => "unknown",
        };
        let label = p.name();
        let row =
            format!("{index:2} {label:<16} {usage:<16} {ty:02x} {subtype:02x} {:08x} {:08x}", p.offset(), p.size());
        uart.log(Level::Info, "boot", &row);
    }
    uart.log(Level::Info, "boot", "End of partition table");
}

/// `bootloader_utility_get_selected_boot_partition`: the index to start from (`None` for
/// factory, `Some(n)` for `ota_n`) and whether otadata was blank (both entries unused).
fn select(slots: &load::Slots, otadata: Option<&Otadata>, d: IdfVersion, uart: &mut Uart<'_>) -> (Option<u32>, bool) {
    let Some(otadata) = otadata else { return (None, false) };
    let app_count = slots.app_count();
    // "Invalid" here ignores the CRC (`bootloader_common_ota_select_invalid`); v3.2 has no
    // state field, its bytes belong to the label.
    let unused = |e: &crate::image::otadata::OtaSelectEntry| {
        e.seq == u32::MAX || (d.at_least(3, 3) && matches!(e.state, OtaState::Invalid | OtaState::Aborted))
    };
    if otadata.entries.iter().all(unused) || app_count == 0 {
        if slots.factory.is_some() {
            uart.log(Level::Info, "boot", "Defaulting to factory image");
            return (None, false);
        }
        uart.log(Level::Info, "boot", "No factory image, trying OTA 0");
        return (Some(0), true);
    }
    let active = if d.at_least(3, 3) {
        otadata.selected_slot(app_count)
    } else {
        let valid = otadata.entries.iter().filter(|e| e.seq != u32::MAX && e.crc == entry_crc(e.seq));
        valid.map(|e| e.seq).max().map(|seq| (seq - 1) % app_count)
    };
    match active {
        Some(slot) => (Some(slot), false),
        None if slots.factory.is_some() => {
            uart.log(Level::Error, "boot", "ota data partition invalid, falling back to factory");
            (None, false)
        }
        None => {
            uart.log(Level::Error, "boot", "ota data partition invalid and no factory, will try all partitions");
            (None, false)
        }
    }
}

/// The error line `esp_image` prints for a structural problem, in the dialect `d`.
fn structural_error(err: &ImageError, at: u32, d: IdfVersion) -> String {
    match err {
        ImageError::BadMagic { .. } if d.at_least(4, 0) => {
            format!("image at {at:#x} has invalid magic byte (nothing flashed here?)")
        }
        ImageError::BadMagic { .. } => format!("image at {at:#x} has invalid magic byte"),
        ImageError::TooManySegments { count, max, .. } => {
            format!("image at {at:#x} segment count {count} exceeds max {max}")
        }
        // ESP-IDF tests alignment and size together first, so "unaligned" never shows here.
        ImageError::InvalidSegmentLength { length, .. } => format!("invalid segment length {length:#x}"),
        ImageError::SegmentPastEnd { header_offset, length, .. } => {
            format!("bootloader_mmap({:#x}, {length:#x}) failed", at as usize + header_offset + 8)
        }
        ImageError::Truncated { offset, .. } => {
            format!("bootloader_flash_read failed at {:#010x}", at as usize + offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_errors_speak_the_version() {
        let magic = ImageError::BadMagic { offset: 0, got: 0xFF };
        let v3 = IdfVersion::new(3, 2, 0);
        let v4 = IdfVersion::new(4, 4, 0);
        assert_eq!(structural_error(&magic, 0x110000, v3), "image at 0x110000 has invalid magic byte");
        assert_eq!(
            structural_error(&magic, 0x110000, v4),
            "image at 0x110000 has invalid magic byte (nothing flashed here?)"
        );
        let length = ImageError::InvalidSegmentLength { index: 1, header_offset: 0x20, length: u32::MAX };
        assert_eq!(structural_error(&length, 0x10000, v4), "invalid segment length 0xffffffff");
    }
}
