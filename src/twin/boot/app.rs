//! The app's start-up lines up to its main task, in the dialect of the ESP-IDF version the app
//! was built with (`cpu_start.c` v3.2, `startup.c` v4.4/v5.x, `esp_app_desc.c` v5.4).

use memchr::memmem;

use super::bootloader::LoadedApp;
use crate::firmware::build::PROFILE_MARKER;
use crate::twin::uart::{Dialect, Level, Uart};

/// What the app's ESP-IDF version is taken to be when nothing in the image says: images
/// without an app descriptor predate v3.3.
const NO_DESCRIPTOR_IDF: &str = "v3.2";

/// Prints the app's start-up; returns the ESP-IDF version it was built with.
pub(super) fn run(flash: &[u8], loaded: &LoadedApp, uart: &mut Uart<'_>) -> String {
    let start = loaded.partition_offset as usize;
    let image = &loaded.image;
    let bytes = flash.get(start..start + image.length).unwrap_or_default();
    let idf = match &image.app_desc {
        Some(desc) => desc.idf_ver.clone(),
        None => profile_idf(bytes).unwrap_or_else(|| NO_DESCRIPTOR_IDF.to_owned()),
    };
    let d = Dialect::of(&idf).unwrap_or(Dialect::V3_2);
    uart.speak(d);
    uart.wait_us(9_000);
    let i = |uart: &mut Uart<'_>, tag: &str, msg: &str| uart.log(Level::Info, tag, msg);
    let entry = image.header.entry_addr;
    if d.at_least(5, 0) {
        i(uart, "cpu_start", "Multicore app");
    } else {
        i(uart, "cpu_start", "Pro cpu up.");
        i(uart, "cpu_start", &format!("Starting app cpu, entry point is {entry:#010x}"));
        uart.log_app_cpu(Level::Info, "cpu_start", "App cpu up.");
    }
    if !d.at_least(4, 0) {
        heap(uart);
        i(uart, "cpu_start", "Pro cpu start user code");
        i(uart, "cpu_start", "Starting scheduler on PRO CPU.");
        uart.log_app_cpu(Level::Info, "cpu_start", "Starting scheduler on APP CPU.");
        return idf;
    }
    uart.wait_us(8_000);
    i(uart, "cpu_start", "Pro cpu start user code");
    i(uart, "cpu_start", if d.at_least(5, 0) { "cpu freq: 160000000 Hz" } else { "cpu freq: 160000000" });
    if let Some(desc) = &image.app_desc {
        let tag = if d.at_least(5, 4) { "app_init" } else { "cpu_start" };
        // CONFIG_APP_RETRIEVE_LEN_ELF_SHA: 16 in v4.4, 9 from v5.0.
        let sha_len = if d.at_least(5, 0) { 9 } else { 16 };
        let sha = desc.app_elf_sha256.get(..sha_len).unwrap_or(&desc.app_elf_sha256);
        i(uart, tag, "Application information:");
        i(uart, tag, &format!("Project name:     {}", desc.project_name));
        i(uart, tag, &format!("App version:      {}", desc.version));
        i(uart, tag, &format!("Compile time:     {} {}", desc.date, desc.time));
        i(uart, tag, &format!("ELF file SHA256:  {sha}..."));
        i(uart, tag, &format!("ESP-IDF:          {}", desc.idf_ver));
    }
    if d.at_least(5, 0) {
        let tag = if d.at_least(5, 4) { "efuse_init" } else { "cpu_start" };
        let header = &image.header;
        let max = match header.max_chip_rev_full {
            0 | 0xFFFF => 399, // not set: CONFIG_ESP_REV_MAX_FULL's ESP32 default
            max => max,
        };
        let min = header.min_chip_rev_full;
        i(uart, tag, &format!("Min chip rev:     v{}.{}", min / 100, min % 100));
        i(uart, tag, &format!("Max chip rev:     v{}.{} ", max / 100, max % 100));
        let (major, minor) = crate::twin::CHIP_REVISION;
        i(uart, tag, &format!("Chip rev:         v{major}.{minor}"));
    }
    heap(uart);
    let io = image.header.spi_mode.name().unwrap_or("dio").to_lowercase();
    i(uart, "spi_flash", "detected chip: generic");
    i(uart, "spi_flash", &format!("flash io: {io}"));
    if d.at_least(5, 0) {
        uart.wait_us(10_000);
        i(uart, "main_task", "Calling app_main()");
    } else {
        i(uart, "cpu_start", "Starting scheduler on PRO CPU.");
        uart.log_app_cpu(Level::Info, "cpu_start", "Starting scheduler on APP CPU.");
    }
    idf
}

/// The first heap lines: the region every ESP32 app reports first.
fn heap(uart: &mut Uart<'_>) {
    uart.log(Level::Info, "heap_init", "Initializing. RAM available for dynamic allocation:");
    uart.log(Level::Info, "heap_init", "At 3FFAE6E0 len 00001920 (6 KiB): DRAM");
}

/// `idf=` from the image's `otarig-profile-v1` record (images the rig built).
fn profile_idf(image: &[u8]) -> Option<String> {
    let start = memmem::find(image, PROFILE_MARKER)? + PROFILE_MARKER.len();
    let record = &image[start..];
    let record = &record[..memchr::memchr(0, record).unwrap_or(record.len())];
    let text = std::str::from_utf8(record).ok()?;
    text.lines().find_map(|line| line.strip_prefix("idf=")).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_record_names_the_idf() {
        let image = b"\xe9....otarig-profile-v1\nid=x\nidf=v3.2\nchip=esp32\n\0rest";
        assert_eq!(profile_idf(image).as_deref(), Some("v3.2"));
        assert_eq!(profile_idf(b"no record here"), None);
    }
}
