//! The app's start-up lines up to its main task, in the order and wording of the ESP-IDF release
//! the app was built with (`cpu_start.c` v3.x, `esp_system/startup.c` v4.3–v5.2,
//! `startup_funcs.c`, `esp_app_desc.c` and `esp_efuse_startup.c` v5.3+, `app_startup.c` v5.0.4+),
//! at the app's log level.

use super::bootloader::LoadedApp;
use crate::firmware::profile::{FirmwareProfile, KnownBuild, Stated, image_sha256};
use crate::idf::IdfVersion;
use crate::image::AppImage;
use crate::twin::uart::{Level, Uart};

/// What the app's image says of itself, with what is stated about it: the profile the twin runs
/// the app as. Profiles are remembered by the image's SHA-256 and what is stated (a run boots
/// the same few images again and again, and reading one scans the whole image).
pub(super) fn profile(flash: &[u8], loaded: &LoadedApp, builds: &[KnownBuild]) -> FirmwareProfile {
    let start = loaded.partition_offset as usize;
    let bytes = flash.get(start..start + loaded.image.length).unwrap_or_default();
    let sha256 = image_sha256(bytes);
    let stated =
        builds.iter().find(|build| build.sha256 == sha256).map(|build| build.stated.clone()).unwrap_or_default();
    let mut remembered = PROFILES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, profile)) = remembered.iter().find(|(digest, said, _)| *digest == sha256 && *said == stated) {
        return profile.clone();
    }
    let profile = FirmwareProfile::read(bytes, &stated);
    if remembered.len() == REMEMBERED {
        remembered.remove(0);
    }
    remembered.push((sha256, stated, profile.clone()));
    profile
}

/// How many profiles are remembered, the oldest forgotten first.
const REMEMBERED: usize = 32;

/// The profiles read, by image digest and what was stated.
static PROFILES: std::sync::Mutex<Vec<([u8; 32], Stated, FirmwareProfile)>> = std::sync::Mutex::new(Vec::new());

/// Prints the app's start-up as its release does; nothing when its release is unknown (the twin
/// cannot say what such an app prints).
pub(super) fn run(loaded: &LoadedApp, profile: &FirmwareProfile, uart: &mut Uart<'_>) {
    let Some(d) = profile.release() else {
        tracing::warn!("twin: the app names no ESP-IDF version; its start-up is not printed");
        return;
    };
    uart.speak(d, profile.log_level.value);
    uart.wait_us(9_000);
    let image = &loaded.image;
    let i = |uart: &mut Uart<'_>, tag: &str, msg: &str| uart.log(Level::Info, tag, msg);
    if !d.at_least(4, 3) {
        // `call_start_cpu0` in components/esp32/cpu_start.c.
        i(uart, "cpu_start", "Pro cpu up.");
        if d.at_least(3, 3) {
            app_information(image, d, "cpu_start", uart);
        }
        i(uart, "cpu_start", &format!("Starting app cpu, entry point is {APP_CPU_ENTRY:#010x}"));
        uart.log_app_cpu(Level::Info, "cpu_start", "App cpu up.");
        heap(image, uart);
        i(uart, "cpu_start", "Pro cpu start user code");
        if d.at_least(4, 0) {
            flash_chip(image, uart);
        }
        i(uart, "cpu_start", "Starting scheduler on PRO CPU.");
        uart.log_app_cpu(Level::Info, "cpu_start", "Starting scheduler on APP CPU.");
        return;
    }
    cpus(d, uart);
    uart.wait_us(8_000);
    i(uart, "cpu_start", "Pro cpu start user code");
    i(uart, "cpu_start", if d.at_least(5, 0) { "cpu freq: 160000000 Hz" } else { "cpu freq: 160000000" });
    app_information(image, d, if d.at_least(5, 3) { "app_init" } else { "cpu_start" }, uart);
    chip_revisions(image, d, uart);
    heap(image, uart);
    flash_chip(image, uart);
    scheduler(d, uart);
}

/// `call_start_cpu1`'s address in a v3.x–v5.1 app (printed by `Starting app cpu, entry point
/// is %p`): it depends on the build's link map; the twin prints this IRAM address.
const APP_CPU_ENTRY: u32 = 0x4008_1000;

/// The CPUs coming up (`esp_system/port/cpu_start.c`): `Multicore app` from v4.4.6 and v5.0.3;
/// `Pro cpu up.`, the app CPU's start and `App cpu up.` at INFO to v5.1, at DEBUG from v5.2.
fn cpus(d: IdfVersion, uart: &mut Uart<'_>) {
    let multicore = d >= IdfVersion::new(5, 0, 3) || (d >= IdfVersion::new(4, 4, 6) && d < IdfVersion::new(5, 0, 0));
    if multicore {
        uart.log(Level::Info, "cpu_start", "Multicore app");
    }
    if !d.at_least(5, 2) {
        uart.log(Level::Info, "cpu_start", "Pro cpu up.");
        uart.log(Level::Info, "cpu_start", &format!("Starting app cpu, entry point is {APP_CPU_ENTRY:#010x}"));
        uart.log_app_cpu(Level::Info, "cpu_start", "App cpu up.");
    }
}

/// `Application information:` and the descriptor's fields (v3.3+; tag `app_init` from v5.3).
fn app_information(image: &AppImage, d: IdfVersion, tag: &str, uart: &mut Uart<'_>) {
    let Some(desc) = &image.app_desc else { return };
    // CONFIG_APP_RETRIEVE_LEN_ELF_SHA: 16 to v4.4, 9 from v5.0.
    let sha_len = if d.at_least(5, 0) { 9 } else { 16 };
    let sha = desc.app_elf_sha256.get(..sha_len).unwrap_or(&desc.app_elf_sha256);
    let i = |uart: &mut Uart<'_>, msg: &str| uart.log(Level::Info, tag, msg);
    i(uart, "Application information:");
    i(uart, &format!("Project name:     {}", desc.project_name));
    i(uart, &format!("App version:      {}", desc.version));
    i(uart, &format!("Compile time:     {} {}", desc.date, desc.time));
    i(uart, &format!("ELF file SHA256:  {sha}..."));
    i(uart, &format!("ESP-IDF:          {}", desc.idf_ver));
}

/// `Min chip rev` / `Max chip rev` / `Chip rev`: v4.3.5–v4.3.7, v4.4.5–v4.4.8 and v5.0.1 on
/// (tag `efuse_init` from v5.3).
fn chip_revisions(image: &AppImage, d: IdfVersion, uart: &mut Uart<'_>) {
    let v = IdfVersion::new;
    let printed = (v(4, 3, 5)..v(4, 4, 0)).contains(&d) || (v(4, 4, 5)..v(5, 0, 0)).contains(&d) || d >= v(5, 0, 1);
    if !printed {
        return;
    }
    let tag = if d.at_least(5, 3) { "efuse_init" } else { "cpu_start" };
    let header = &image.header;
    let max = match header.max_chip_rev_full {
        0 | 0xFFFF => 399, // not set: CONFIG_ESP_REV_MAX_FULL's ESP32 default
        max => max,
    };
    let min = header.min_chip_rev_full;
    let (major, minor) = crate::twin::CHIP_REVISION;
    uart.log(Level::Info, tag, &format!("Min chip rev:     v{}.{}", min / 100, min % 100));
    uart.log(Level::Info, tag, &format!("Max chip rev:     v{}.{} ", max / 100, max % 100));
    uart.log(Level::Info, tag, &format!("Chip rev:         v{major}.{minor}"));
}

/// The heap regions an ESP32 app reports (`heap_caps_init.c`), one line each.
fn heap(image: &AppImage, uart: &mut Uart<'_>) {
    uart.log(Level::Info, "heap_init", "Initializing. RAM available for dynamic allocation:");
    for (start, len, kind) in heap_regions(image) {
        uart.log(Level::Info, "heap_init", &format!("At {start:08X} len {len:08X} ({} KiB): {kind}", len / 1024));
    }
}

/// The free RAM of an ESP32 with its default configuration (no Bluetooth, no PSRAM): the
/// fixed regions ESP-IDF's memory layout leaves, and DRAM and IRAM from the end of the app's
/// own data and code (read from its segments; its zero-initialised data is not in the image,
/// so DRAM starts where the image's data ends).
fn heap_regions(image: &AppImage) -> [(u32, u32, &'static str); 5] {
    let end_in = |from: u32, to: u32| {
        image
            .segments
            .iter()
            .filter(|s| (from..to).contains(&s.load_addr))
            .map(|s| s.load_addr.saturating_add(s.length))
            .max()
            .unwrap_or(from)
    };
    let dram = end_in(0x3FFB_0000, 0x3FFE_0000).next_multiple_of(8).min(0x3FFE_0000);
    let iram = end_in(0x4008_0000, 0x400A_0000).next_multiple_of(4).min(0x400A_0000);
    [
        (0x3FFA_E6E0, 0x0000_1920, "DRAM"),
        (dram, 0x3FFE_0000 - dram, "DRAM"),
        (0x3FFE_0440, 0x0000_3AE0, "D/IRAM"),
        (0x3FFE_4350, 0x0001_BCB0, "D/IRAM"),
        (iram, 0x400A_0000 - iram, "IRAM"),
    ]
}

/// The flash chip (`spi_flash`, v4.0+).
fn flash_chip(image: &AppImage, uart: &mut Uart<'_>) {
    let io = image.header.spi_mode.name().unwrap_or("dio").to_lowercase();
    uart.log(Level::Info, "spi_flash", "detected chip: generic");
    uart.log(Level::Info, "spi_flash", &format!("flash io: {io}"));
}

/// The scheduler and the main task: `cpu_start`'s two lines to v5.0.3; `app_start` (INFO to
/// v5.1, DEBUG from v5.2) and `main_task` from v5.0.4.
fn scheduler(d: IdfVersion, uart: &mut Uart<'_>) {
    if d < IdfVersion::new(5, 0, 4) {
        uart.log(Level::Info, "cpu_start", "Starting scheduler on PRO CPU.");
        uart.log_app_cpu(Level::Info, "cpu_start", "Starting scheduler on APP CPU.");
        return;
    }
    if !d.at_least(5, 2) {
        uart.log(Level::Info, "app_start", "Starting scheduler on CPU0");
        uart.log_app_cpu(Level::Info, "app_start", "Starting scheduler on CPU1");
    }
    uart.wait_us(10_000);
    uart.log(Level::Info, "main_task", "Started on CPU0");
    uart.log(Level::Info, "main_task", "Calling app_main()");
}
