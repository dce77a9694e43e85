//! A realistic ESP32 UART log, written as it would be printed.
//!
//! The board runs an ESP-IDF v4.4 application derived from `simple_ota_example`: it reads a
//! sensor, publishes over MQTT, serves a status page, and about once an hour checks for an
//! update. Each check is one update attempt for otarig; the generator records the outcome
//! otarig must give it. Nothing else the board prints may look like an attempt (no crashes,
//! no crash resets, no transport errors outside update checks), so the attempt count is exact.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use memchr::memmem::Finder;

use super::DECISIVE;

/// How many attempts otarig keeps in its report (`verdict::MAX_REPORTED_ATTEMPTS`); the
/// generator remembers the expected outcomes of as many.
pub const KEPT_ATTEMPTS: usize = 256;
/// Write buffer: the file is streamed in chunks of this size.
const WRITE_BUFFER: usize = 1 << 20;

/// The two application slots of the partition table.
const OTA_0: u32 = 0x11_0000;
const OTA_1: u32 = 0x21_0000;

/// What otarig must say about one attempt: the JSON `outcome` and `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
}

impl Expected {
    const fn of(outcome: &'static str) -> Self {
        Self { outcome, reason: None }
    }

    const fn tls(reason: &'static str) -> Self {
        Self { outcome: "tls-verify", reason: Some(reason) }
    }
}

/// What was written.
#[derive(Debug, Default)]
pub struct Summary {
    pub bytes: u64,
    pub lines: u64,
    /// Update attempts (each starts with the application's `Starting OTA example`).
    pub attempts: u64,
    /// Lines holding one of [`DECISIVE`]: what `grep -c` must count.
    pub decisive_lines: u64,
    /// Expected outcomes of the last [`KEPT_ATTEMPTS`] attempts, oldest first.
    pub last_outcomes: VecDeque<Expected>,
}

/// Writes a log of at least `target_bytes` bytes to `path` (ending at a line boundary).
pub fn write_log(path: &Path, target_bytes: u64, seed: u64) -> io::Result<Summary> {
    let file = File::create(path)?;
    let mut board = Board::new(BufWriter::with_capacity(WRITE_BUFFER, file), seed);
    board.boot(Reset::PowerOn)?;
    while board.summary.bytes < target_bytes {
        // About an hour of ordinary operation, then something happens.
        let quiet_lines = board.rng.range(1_500, 7_500);
        for _ in 0..quiet_lines {
            board.app_line()?;
        }
        match board.rng.below(100) {
            0..=24 => board.update_succeeds()?,
            25..=84 => board.update_fails()?,
            _ => board.restart()?,
        }
    }
    let file = board.out.into_inner().map_err(io::IntoInnerError::into_error)?;
    // On disk before timing starts, so no write-back competes with the runs.
    file.sync_all()?;
    Ok(board.summary)
}

/// Fixed-seed xorshift64*: tiny, fast, and the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 32) % n
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Why the chip restarted, as the ROM prints it. Neither is a watchdog or brownout reset,
/// which otarig would count as a crash.
#[derive(Clone, Copy)]
enum Reset {
    PowerOn,
    Software,
}

/// The simulated board: its state and the log it prints.
struct Board<W: Write> {
    out: W,
    rng: Rng,
    /// The line being assembled (reused; one line at a time is ever held).
    line: String,
    /// `esp_log_timestamp()`: milliseconds since boot.
    millis: u64,
    /// The firmware was built with `CONFIG_LOG_COLORS`.
    colours: bool,
    /// The slot the bootloader loads.
    running: u32,
    /// Patch number of the running application version (`1.4.N`).
    version: u32,
    finders: Vec<Finder<'static>>,
    summary: Summary,
}

impl<W: Write> Board<W> {
    fn new(out: W, seed: u64) -> Self {
        Self {
            out,
            rng: Rng::new(seed),
            line: String::with_capacity(256),
            millis: 0,
            colours: false,
            running: OTA_0,
            version: 0,
            finders: DECISIVE.iter().map(|needle| Finder::new(needle.as_bytes())).collect(),
            summary: Summary::default(),
        }
    }

    // --- lines ----------------------------------------------------------------------

    /// An ESP-IDF log line `L (ms) tag: message`, coloured as ESP-IDF does (E red, W
    /// yellow, I green, D and V plain) when the firmware has colours on.
    fn idf(&mut self, level: char, tag: &str, message: fmt::Arguments<'_>) -> io::Result<()> {
        let colour = match level {
            _ if !self.colours => None,
            'E' => Some("0;31"),
            'W' => Some("0;33"),
            'I' => Some("0;32"),
            _ => None,
        };
        self.line.clear();
        if let Some(colour) = colour {
            self.push(format_args!("\x1b[{colour}m"));
        }
        let millis = self.millis;
        self.push(format_args!("{level} ({millis}) {tag}: {message}"));
        if colour.is_some() {
            self.line.push_str("\x1b[0m");
        }
        self.millis += self.rng.below(4);
        self.emit()
    }

    /// A line printed without the logging library (ROM, continuation lines).
    fn raw(&mut self, text: fmt::Arguments<'_>) -> io::Result<()> {
        self.line.clear();
        self.push(text);
        self.emit()
    }

    fn push(&mut self, text: fmt::Arguments<'_>) {
        self.line.write_fmt(text).expect("formatting into a String cannot fail");
    }

    /// Ends the line with CRLF (ESP-IDF's default console line ending) and writes it.
    fn emit(&mut self) -> io::Result<()> {
        let bytes = self.line.as_bytes();
        if self.finders.iter().any(|finder| finder.find(bytes).is_some()) {
            self.summary.decisive_lines += 1;
        }
        self.line.push_str("\r\n");
        self.out.write_all(self.line.as_bytes())?;
        self.summary.bytes += self.line.len() as u64;
        self.summary.lines += 1;
        Ok(())
    }

    /// Time passes.
    fn wait(&mut self, lo_ms: u64, hi_ms: u64) {
        self.millis += self.rng.range(lo_ms, hi_ms);
    }

    // --- start-up -------------------------------------------------------------------

    /// ROM, second-stage bootloader and application start-up, loading `self.running`.
    fn boot(&mut self, reset: Reset) -> io::Result<()> {
        // Which build is flashed decides the colours; a lab keeps a few builds around.
        self.colours = self.rng.one_in(2);
        let (code, reason) = match reset {
            Reset::PowerOn => (0x1, "POWERON_RESET"),
            Reset::Software => (0xc, "SW_CPU_RESET"),
        };
        self.raw(format_args!("ets Jun  8 2016 00:22:57"))?;
        self.raw(format_args!(""))?;
        self.raw(format_args!("rst:0x{code:x} ({reason}),boot:0x13 (SPI_FAST_FLASH_BOOT)"))?;
        self.raw(format_args!("configsip: 0, SPIWP:0xee"))?;
        self.raw(format_args!("clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00"))?;
        self.raw(format_args!("mode:DIO, clock div:2"))?;
        self.raw(format_args!("load:0x3fff0030,len:7000"))?;
        self.raw(format_args!("load:0x40078000,len:15452"))?;
        self.raw(format_args!("ho 0 tail 12 room 4"))?;
        self.raw(format_args!("load:0x40080400,len:3840"))?;
        self.raw(format_args!("entry 0x4008064c"))?;

        self.millis = 29;
        self.idf('I', "boot", format_args!("ESP-IDF v4.4 2nd stage bootloader"))?;
        self.idf('I', "boot", format_args!("compile time 10:12:41"))?;
        self.idf('I', "boot", format_args!("chip revision: 3"))?;
        self.idf('I', "boot_comm", format_args!("chip revision: 3, min. bootloader chip revision: 0"))?;
        self.idf('I', "boot.esp32", format_args!("SPI Speed      : 40MHz"))?;
        self.idf('I', "boot.esp32", format_args!("SPI Mode       : DIO"))?;
        self.idf('I', "boot.esp32", format_args!("SPI Flash Size : 4MB"))?;
        self.idf('I', "boot", format_args!("Enabling RNG early entropy source..."))?;
        self.idf('I', "boot", format_args!("Partition Table:"))?;
        self.idf('I', "boot", format_args!("## Label            Usage          Type ST Offset   Length"))?;
        self.idf('I', "boot", format_args!(" 0 nvs              WiFi data        01 02 00009000 00004000"))?;
        self.idf('I', "boot", format_args!(" 1 otadata          OTA data         01 00 0000d000 00002000"))?;
        self.idf('I', "boot", format_args!(" 2 phy_init         RF data          01 01 0000f000 00001000"))?;
        self.idf('I', "boot", format_args!(" 3 factory          factory app      00 00 00010000 00100000"))?;
        self.idf('I', "boot", format_args!(" 4 ota_0            OTA app          00 10 00110000 00100000"))?;
        self.idf('I', "boot", format_args!(" 5 ota_1            OTA app          00 11 00210000 00100000"))?;
        self.idf('I', "boot", format_args!("End of partition table"))?;
        self.idf('I', "boot_comm", format_args!("chip revision: 3, min. application chip revision: 0"))?;
        self.segments(self.running)?;
        let running = self.running;
        self.idf('I', "boot", format_args!("Loaded app from partition at offset 0x{running:x}"))?;
        self.idf('I', "boot", format_args!("Disabling RNG early entropy source..."))?;

        self.wait(10, 14);
        self.idf('I', "cpu_start", format_args!("Pro cpu up."))?;
        self.idf('I', "cpu_start", format_args!("Starting app cpu, entry point is 0x400813f4"))?;
        self.raw(format_args!("{}I (0) cpu_start: App cpu up.{}", self.colour_on('I'), self.colour_off()))?;
        self.idf('I', "cpu_start", format_args!("Pro cpu start user code"))?;
        self.idf('I', "cpu_start", format_args!("cpu freq: 160000000"))?;
        self.idf('I', "cpu_start", format_args!("Application information:"))?;
        self.idf('I', "cpu_start", format_args!("Project name:     lab_sensor"))?;
        let version = self.version;
        self.idf('I', "cpu_start", format_args!("App version:      1.4.{version}"))?;
        self.idf('I', "cpu_start", format_args!("Compile time:     Mar  1 2024 10:12:33"))?;
        let sha = self.rng.next();
        self.idf('I', "cpu_start", format_args!("ELF file SHA256:  {sha:016x}..."))?;
        self.idf('I', "cpu_start", format_args!("ESP-IDF:          v4.4"))?;
        self.idf('I', "heap_init", format_args!("Initializing. RAM available for dynamic allocation:"))?;
        self.idf('I', "heap_init", format_args!("At 3FFAE6E0 len 00001920 (6 KiB): DRAM"))?;
        self.idf('I', "heap_init", format_args!("At 3FFB8A30 len 000275D0 (157 KiB): DRAM"))?;
        self.idf('I', "heap_init", format_args!("At 3FFE0440 len 00003AE0 (14 KiB): D/IRAM"))?;
        self.idf('I', "heap_init", format_args!("At 3FFE4350 len 0001BCB0 (111 KiB): D/IRAM"))?;
        self.idf('I', "heap_init", format_args!("At 4009B608 len 000049F8 (18 KiB): IRAM"))?;
        self.idf('I', "spi_flash", format_args!("detected chip: generic"))?;
        self.idf('I', "spi_flash", format_args!("flash io: dio"))?;
        self.idf('I', "cpu_start", format_args!("Starting scheduler on PRO CPU."))?;
        self.raw(format_args!(
            "{}I (0) cpu_start: Starting scheduler on APP CPU.{}",
            self.colour_on('I'),
            self.colour_off()
        ))?;
        let slot = if running == OTA_0 { 16 } else { 17 };
        self.idf('I', "lab_sensor", format_args!("Running partition type 0 subtype {slot} (offset 0x{running:08x})"))?;
        self.wifi_connect()
    }

    fn colour_on(&self, level: char) -> &'static str {
        match (self.colours, level) {
            (true, 'I') => "\x1b[0;32m",
            _ => "",
        }
    }

    fn colour_off(&self) -> &'static str {
        if self.colours { "\x1b[0m" } else { "" }
    }

    /// The `esp_image` lines of verifying the image in the slot at `offset`.
    fn segments(&mut self, offset: u32) -> io::Result<()> {
        const SEGMENTS: [(u32, u32, u32, &str); 5] = [
            (0x0_0020, 0x3f40_0020, 174_240, "map"),
            (0x2_a8c8, 0x3ffb_0000, 15_160, "load"),
            (0x2_e408, 0x4008_0000, 7_184, "load"),
            (0x3_0020, 0x400d_0020, 632_024, "map"),
            (0xc_a500, 0x4008_1c10, 108_024, "load"),
        ];
        for (n, (paddr, vaddr, size, kind)) in SEGMENTS.iter().enumerate() {
            let paddr = offset + paddr;
            self.idf(
                'I',
                "esp_image",
                format_args!("segment {n}: paddr={paddr:08x} vaddr={vaddr:08x} size={size:05x}h ({size:>6}) {kind}"),
            )?;
            self.wait(4, 70);
        }
        Ok(())
    }

    fn wifi_connect(&mut self) -> io::Result<()> {
        self.wait(20, 40);
        self.raw_wifi(format_args!("wifi driver task: 3ffc1d54, prio:23, stack:6656, core=0"))?;
        self.idf('I', "system_api", format_args!("Base MAC address is not set"))?;
        self.idf('I', "system_api", format_args!("read default base MAC address from EFUSE"))?;
        self.raw_wifi(format_args!("wifi firmware version: 63017e0"))?;
        self.raw_wifi(format_args!("config NVS flash: enabled"))?;
        self.raw_wifi(format_args!("mode : sta (24:0a:c4:12:34:56)"))?;
        self.raw_wifi(format_args!("enable tsf"))?;
        self.wait(100, 900);
        self.raw_wifi(format_args!("new:<6,0>, old:<1,0>, ap:<255,255>, sta:<6,0>, prof:1"))?;
        self.raw_wifi(format_args!("state: init -> auth (b0)"))?;
        self.raw_wifi(format_args!("state: auth -> assoc (0)"))?;
        self.raw_wifi(format_args!("state: assoc -> run (10)"))?;
        let rssi = self.rng.range(45, 80);
        self.raw_wifi(format_args!("connected with lab-2g, aid = 3, channel 6, BW20, bssid = 80:2a:a8:11:22:33"))?;
        self.raw_wifi(format_args!("security: WPA2-PSK, phy: bgn, rssi: -{rssi}"))?;
        self.raw_wifi(format_args!("pm start, type: 1"))?;
        self.wait(50, 1500);
        let host = self.rng.range(20, 200);
        self.idf(
            'I',
            "esp_netif_handlers",
            format_args!("sta ip: 192.168.1.{host}, mask: 255.255.255.0, gw: 192.168.1.1"),
        )?;
        self.idf('I', "lab_sensor", format_args!("Connected to AP, starting tasks"))?;
        self.idf('I', "MQTT_CLIENT", format_args!("Sending MQTT CONNECT message, type: 1, id: 0000"))?;
        self.idf('I', "lab_mqtt", format_args!("MQTT_EVENT_CONNECTED"))
    }

    /// The Wi-Fi blob's lines: tag `wifi` directly followed by the message (`wifi:state: ...`).
    fn raw_wifi(&mut self, message: fmt::Arguments<'_>) -> io::Result<()> {
        self.line.clear();
        let (on, off) = (self.colour_on('I'), self.colour_off());
        let millis = self.millis;
        self.push(format_args!("{on}I ({millis}) wifi:{message}{off}"));
        self.millis += self.rng.below(8);
        self.emit()
    }

    // --- ordinary operation ---------------------------------------------------------

    /// One line of ordinary operation: none of them is an update event for otarig.
    fn app_line(&mut self) -> io::Result<()> {
        self.wait(50, 2_000);
        let pick = self.rng.below(100);
        let a = self.rng.next();
        let (x, y, z) = ((a & 0xffff) as u32, ((a >> 16) & 0xffff) as u32, ((a >> 32) & 0xffff) as u32);
        match pick {
            0..=29 => {
                // Tenths: 18.0-30.0 C, 30.0-65.0 %, 990.0-1020.0 hPa.
                let (t, rh, p) = (180 + x % 120, 300 + y % 350, 9_900 + z % 300);
                self.idf(
                    'I',
                    "sensor",
                    format_args!("t={}.{}C rh={}.{}% p={}.{}hPa", t / 10, t % 10, rh / 10, rh % 10, p / 10, p % 10),
                )
            }
            30..=49 => self.idf('I', "lab_mqtt", format_args!("MQTT_EVENT_PUBLISHED, msg_id={x}")),
            50..=57 => self.idf('D', "MQTT_CLIENT", format_args!("mqtt_enqueue id: {x}, type=3 successful")),
            58..=67 => {
                let (free, min, largest) = (90_000 + x, 60_000 + y % 30_000, 65_536 - z % 20_000);
                self.idf('I', "lab_sensor", format_args!("heap free={free} min={min} largest={largest}"))
            }
            68..=77 => self.idf('I', "web", format_args!("GET /api/status 200 ({} ms)", 2 + x % 40)),
            78..=81 => self.idf('W', "wifi", format_args!("bcn_timeout,ap_probe_send_start")),
            82..=84 => self.raw_wifi(format_args!("ap channel adjust o:6,1 n:{},2", 1 + x % 11)),
            85..=87 => {
                let (day, hour, minute, second) = (1 + x % 28, y % 24, z % 60, x % 60);
                self.idf(
                    'I',
                    "sntp",
                    format_args!("Time synchronized: 2024-03-{day:02} {hour:02}:{minute:02}:{second:02}"),
                )
            }
            88..=90 => {
                let mac = (a >> 16).to_be_bytes();
                let rssi = 40 + z % 50;
                self.idf(
                    'I',
                    "ble_scan",
                    format_args!(
                        "adv from {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} rssi=-{rssi}",
                        mac[2], mac[3], mac[4], mac[5], mac[6], mac[7]
                    ),
                )
            }
            91..=93 => {
                let took = 100 + x % 400;
                self.idf('W', "lab_sensor", format_args!("sensor read took {took} ms (limit 100 ms)"))
            }
            94..=95 => self.idf('E', "i2c", format_args!("i2c_master_cmd_begin(1480): I2C bus is busy")),
            96..=97 => {
                let delay = 1 + x % 10;
                self.idf('W', "lab_mqtt", format_args!("MQTT_EVENT_DISCONNECTED; reconnecting in {delay} s"))
            }
            _ => self.idf('E', "MQTT_CLIENT", format_args!("Error transport connect")),
        }
    }

    /// The application restarts on purpose (`esp_restart()`), or the lab power-cycles it.
    fn restart(&mut self) -> io::Result<()> {
        if self.rng.one_in(3) {
            return self.boot(Reset::PowerOn);
        }
        self.idf('W', "lab_sensor", format_args!("Restarting in 3 seconds (scheduled maintenance)..."))?;
        self.boot(Reset::Software)
    }

    // --- update attempts ------------------------------------------------------------

    /// The application's update check: the first line of every attempt.
    fn check_for_update(&mut self, expected: Expected) -> io::Result<()> {
        self.summary.attempts += 1;
        if self.summary.last_outcomes.len() == KEPT_ATTEMPTS {
            self.summary.last_outcomes.pop_front();
        }
        self.summary.last_outcomes.push_back(expected);
        self.idf('I', "simple_ota_example", format_args!("Starting OTA example"))?;
        if self.rng.one_in(2) {
            self.idf(
                'I',
                "simple_ota_example",
                format_args!("Attempting to download update from https://ota.lab.example:8070/lab_sensor.bin"),
            )?;
        }
        self.wait(100, 800);
        Ok(())
    }

    /// A successful update: download into the other slot, verify, restart, and the
    /// bootloader loads the new image.
    fn update_succeeds(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::of("updated"))?;
        if self.rng.one_in(2) {
            self.idf('I', "esp-x509-crt-bundle", format_args!("Certificate validated"))?;
        }
        let (target, subtype) = if self.running == OTA_0 { (OTA_1, 17) } else { (OTA_0, 16) };
        self.idf('I', "esp_https_ota", format_args!("Starting OTA..."))?;
        self.idf('I', "esp_https_ota", format_args!("Writing to partition subtype {subtype} at offset 0x{target:x}"))?;
        let mut read = 0;
        for _ in 0..self.rng.range(8, 20) {
            self.wait(200, 900);
            read += self.rng.range(40_000, 120_000);
            self.idf('D', "simple_ota_example", format_args!("Image bytes read: {read}"))?;
        }
        // esp_ota_end() verifies the image, esp_ota_set_boot_partition() verifies it again.
        self.segments(target)?;
        self.segments(target)?;
        self.idf('I', "simple_ota_example", format_args!("OTA Succeed, Rebooting..."))?;
        self.running = target;
        self.version += 1;
        self.boot(Reset::Software)
    }

    /// A failed update check, one of the usual ways; the board carries on.
    fn update_fails(&mut self) -> io::Result<()> {
        match self.rng.below(100) {
            0..=34 => self.certificate_rejected(),
            35..=49 => self.certificate_rejected_with_reasons(),
            50..=64 => self.host_not_found(),
            65..=79 => self.host_unreachable(),
            80..=89 => self.download_cut_short(),
            _ => self.not_found(),
        }?;
        self.idf('E', "simple_ota_example", format_args!("Firmware upgrade failed"))?;
        self.wait(500, 3_000);
        self.idf('I', "lab_sensor", format_args!("next update check in 3600 s"))
    }

    /// The lines every failed connection ends with (`esp_https_ota_begin` gives up).
    fn connection_failed(&mut self, err: &str) -> io::Result<()> {
        self.idf('E', "esp-tls", format_args!("Failed to open new connection"))?;
        self.idf('E', "TRANSPORT_BASE", format_args!("Failed to open a new connection"))?;
        self.idf('E', "HTTP_CLIENT", format_args!("Connection failed, sock < 0"))?;
        self.idf('E', "esp_https_ota", format_args!("Failed to open HTTP connection: {err}"))?;
        self.idf('E', "esp_https_ota", format_args!("Failed to establish HTTP connection"))
    }

    /// v4.4 at the default log level: no verification reasons.
    fn certificate_rejected(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::tls("unknown"))?;
        self.idf('E', "esp-tls-mbedtls", format_args!("mbedtls_ssl_handshake returned -0x2700"))?;
        self.idf('I', "esp-tls-mbedtls", format_args!("Failed to verify peer certificate!"))?;
        self.connection_failed("ESP_ERR_HTTP_CONNECT")
    }

    /// With verbose TLS logs: the reasons, the second on a continuation line, and with
    /// colours the reset code on a line of its own.
    fn certificate_rejected_with_reasons(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::tls("hostname"))?;
        self.idf('E', "esp-tls-mbedtls", format_args!("mbedtls_ssl_handshake returned -0x2700"))?;
        self.idf('I', "esp-tls-mbedtls", format_args!("Failed to verify peer certificate!"))?;
        let on = self.colour_on('I');
        let millis = self.millis;
        let first = "The certificate Common Name (CN) does not match with the expected CN";
        self.raw(format_args!("{on}I ({millis}) esp-tls-mbedtls: verification info:   ! {first}"))?;
        self.raw(format_args!("  ! The certificate is not correctly signed by the trusted CA"))?;
        let off = self.colour_off();
        self.raw(format_args!("{off}"))?;
        self.connection_failed("ESP_ERR_HTTP_CONNECT")
    }

    fn host_not_found(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::of("network"))?;
        self.wait(1_000, 5_000);
        self.idf(
            'E',
            "esp-tls",
            format_args!("couldn't get hostname for :ota.lab.example: getaddrinfo() returns 202, addrinfo=0x0"),
        )?;
        self.connection_failed("ESP_ERR_HTTP_CONNECT")
    }

    fn host_unreachable(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::of("network"))?;
        self.wait(3_000, 18_000);
        self.idf('E', "esp-tls", format_args!("Failed to connnect to host (errno 113)"))?;
        self.connection_failed("ESP_ERR_HTTP_CONNECT")
    }

    /// The server goes away mid-download.
    fn download_cut_short(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::of("network"))?;
        let (target, subtype) = if self.running == OTA_0 { (OTA_1, 17) } else { (OTA_0, 16) };
        self.idf('I', "esp_https_ota", format_args!("Starting OTA..."))?;
        self.idf('I', "esp_https_ota", format_args!("Writing to partition subtype {subtype} at offset 0x{target:x}"))?;
        let mut read = 0;
        for _ in 0..self.rng.range(2, 10) {
            self.wait(200, 900);
            read += self.rng.range(40_000, 120_000);
            self.idf('D', "simple_ota_example", format_args!("Image bytes read: {read}"))?;
        }
        self.wait(5_000, 10_000);
        self.idf('E', "esp-tls-mbedtls", format_args!("read error :-0x004C:"))?;
        self.idf('E', "TRANSPORT_BASE", format_args!("esp_tls_conn_read error, errno=No more processes"))?;
        self.idf('E', "esp_https_ota", format_args!("data read -1, errno 0"))
    }

    fn not_found(&mut self) -> io::Result<()> {
        self.check_for_update(Expected::of("http-status"))?;
        self.idf('E', "esp_https_ota", format_args!("File not found(404)"))?;
        self.idf('E', "esp_https_ota", format_args!("Failed to open HTTP connection: ESP_FAIL"))
    }
}
