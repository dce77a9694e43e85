//! The app around the update library and `esp_https_ota()` itself, step by step, in the code
//! path of the app's generation and the lines of its release: an ESP-IDF OTA example prints its
//! own lines (Wi-Fi and IP from `protocol_examples_common`, the image's SHA-256s, start and end),
//! any other app only what the library layers print; all at the app's log level.

use std::time::Duration;

use super::http;
use super::{Device, Release};
use crate::firmware::profile::Client as Program;
use crate::firmware::url::{OtaUrl, Scheme};
use crate::idf::{Generation, IdfVersion};
use crate::twin::clock::BootClock;
use crate::twin::uart::{Level, Uart};

pub(super) const EXAMPLE: &str = "simple_ota_example";
const ADVANCED: &str = "advanced_https_ota_example";
const NATIVE: &str = "native_ota_example";
pub(super) const OTA: &str = "esp_https_ota";
/// `max_redirection_count`'s default.
const MAX_REDIRECTS: u32 = 10;
/// The Wi-Fi network ESP-IDF's examples join by default (`CONFIG_EXAMPLE_WIFI_SSID`).
const EXAMPLE_SSID: &str = "myssid";
/// The address the lab's access point gives the device, and its gateway.
const LAB_IPV4: &str = "192.168.4.2";
const LAB_GATEWAY: &str = "192.168.4.1";

/// What the device does after the update client returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateEnd {
    /// The new image is set to boot: `esp_restart()`.
    Restart,
    /// The update failed (or there was none to do): the app idles.
    Idle,
    /// The power was cut where the device was told to lose it ([`super::PowerCut`]).
    PowerLost,
}

/// Runs the app's update on `device`, printing through `emit` as it goes. An app whose
/// ESP-IDF release is unknown, or that no generation covers, runs no update client.
pub(crate) fn run_update(device: &Device<'_>, clock: &mut BootClock, emit: &mut dyn FnMut(&[u8])) -> UpdateEnd {
    let profile = device.profile;
    let Some(release) = Release::of(profile) else {
        tracing::warn!("twin: the app's ESP-IDF release is unknown or not emulated: no update client runs");
        return UpdateEnd::Idle;
    };
    let mut uart = Uart::new(clock);
    uart.speak(release.version, profile.log_level.value);
    let mut client = Client { device, release, uart, emit, sntp_time: None };
    client.program()
}

/// Why the update stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// It failed; by then the failure's lines are out. The `esp_err_t` it returned.
    Failed(u32),
    /// The power went: nothing more is printed.
    PowerLost,
}

/// `ESP_FAIL`.
pub(super) const ESP_FAIL: u32 = u32::MAX;

pub(super) type Step<T> = Result<T, Stop>;

pub(super) struct Client<'d, 'c, 'e> {
    pub device: &'d Device<'d>,
    pub release: Release,
    pub uart: Uart<'c>,
    pub emit: &'e mut dyn FnMut(&[u8]),
    /// What SNTP answered, asked once per boot when the time is first needed (`Some(None)`:
    /// no answer).
    pub sntp_time: Option<Option<i64>>,
}

impl Client<'_, '_, '_> {
    pub fn line(&mut self, level: Level, tag: &str, text: &str) {
        self.uart.log(level, tag, text);
        let bytes = self.uart.take();
        (self.emit)(&bytes);
    }

    pub fn info(&mut self, tag: &str, text: &str) {
        self.line(Level::Info, tag, text);
    }

    pub fn warn(&mut self, tag: &str, text: &str) {
        self.line(Level::Warn, tag, text);
    }

    pub fn error(&mut self, tag: &str, text: &str) {
        self.line(Level::Error, tag, text);
    }

    pub(crate) fn wait_ms(&mut self, ms: u64) {
        self.uart.wait_us(ms * 1000);
    }

    fn version(&self) -> IdfVersion {
        self.release.version
    }

    /// The app: its start (an example's own lines, Wi-Fi), the update, then restart or idle.
    fn program(&mut self) -> UpdateEnd {
        let Some(url) = self.device.profile.ota_url.as_ref().map(|url| url.value.clone()) else {
            return UpdateEnd::Idle;
        };
        let program = self.device.profile.client.value;
        self.app_start(program, &url);
        let result = self.https_ota(&url);
        match result {
            Ok(()) => {
                self.succeeded(program);
                self.wait_ms(50);
                UpdateEnd::Restart
            }
            Err(Stop::Failed(err)) => {
                self.failed(program, err);
                UpdateEnd::Idle
            }
            Err(Stop::PowerLost) => UpdateEnd::PowerLost,
        }
    }

    /// What the example prints before it calls the update library: `app_main`'s lines, the
    /// Wi-Fi connection of `protocol_examples_common`, its OTA task's start.
    fn app_start(&mut self, program: Program, url: &OtaUrl) {
        let v = self.version();
        let tag = match program {
            Program::Library => {
                // Another app: its Wi-Fi comes up in its own way, and it prints its own lines.
                self.wait_ms(2_400);
                return;
            }
            Program::SimpleOta => EXAMPLE,
            Program::AdvancedHttpsOta => ADVANCED,
            Program::NativeOta => NATIVE,
        };
        if v.at_least(5, 0) {
            self.info(tag, "OTA example app_main start");
        }
        if v.at_least(4, 3) && program == Program::SimpleOta {
            self.image_hashes();
        }
        if !v.at_least(4, 0) {
            let dots = if v.at_least(3, 3) { "" } else { "..." };
            self.info(tag, &format!("Setting WiFi configuration SSID {EXAMPLE_SSID}{dots}"));
        }
        let task = match (program, v.at_least(5, 0), v.at_least(3, 3)) {
            (Program::AdvancedHttpsOta, _, _) => "Starting Advanced OTA example",
            (_, true, _) => "Starting OTA example task",
            (_, false, true) => "Starting OTA example",
            (_, false, false) => "Starting OTA example...",
        };
        if v.at_least(4, 0) {
            self.example_connect();
            self.info(tag, task);
        } else {
            self.info(tag, task);
            self.wait_ms(2_400);
            let connected = if v.at_least(3, 3) {
                "Connected to WiFi network! Attempting to connect to server..."
            } else {
                "Connect to Wifi ! Start to Connect to Server...."
            };
            self.info(tag, connected);
        }
        if v.at_least(5, 0) && program == Program::SimpleOta {
            self.info(tag, &format!("Attempting to download update from {url}"));
        }
    }

    /// `get_sha256_of_partitions()` of ESP-IDF's OTA examples (v4.3+): the bootloader's and the
    /// running app's SHA-256, as their images carry them.
    fn image_hashes(&mut self) {
        let (bootloader, app) = {
            let flash = self.device.flash.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let bytes = flash.as_bytes();
            // `esp_partition_get_sha256`: the digest the image carries, else its SHA-256.
            let digest_at = |offset: usize| -> Option<[u8; 32]> {
                let image = bytes.get(offset..)?;
                let app = crate::image::parse_app(image).ok()?;
                match app.hash {
                    Some(_) => image.get(app.length - 32..app.length)?.try_into().ok(),
                    None => Some(crate::firmware::profile::image_sha256(image)),
                }
            };
            (digest_at(0x1000), digest_at(self.device.running as usize))
        };
        let hex = |digest: Option<[u8; 32]>| digest.map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>());
        if let Some(hash) = hex(bootloader) {
            self.info(EXAMPLE, &format!("SHA-256 for bootloader:  {hash}"));
        }
        if let Some(hash) = hex(app) {
            self.info(EXAMPLE, &format!("SHA-256 for current firmware:  {hash}"));
        }
    }

    /// `example_connect()` of `protocol_examples_common`: Wi-Fi up, an IPv4 address from the
    /// lab's access point, the IPv6 link-local address from the MAC.
    fn example_connect(&mut self) {
        let v = self.version();
        let ipv6 = link_local(crate::twin::rom::LAB_MAC);
        let link_local = "ESP_IP6_ADDR_IS_LINK_LOCAL";
        if v.at_least(5, 0) {
            self.info("example_connect", "Start example_connect.");
        }
        self.info("example_connect", &format!("Connecting to {EXAMPLE_SSID}..."));
        if !v.at_least(4, 2) {
            self.wait_ms(2_400);
            self.info("example_connect", &format!("Connected to {EXAMPLE_SSID}"));
            self.info("example_connect", &format!("IPv4 address: {LAB_IPV4}"));
            self.info("example_connect", &format!("IPv6 address: {ipv6}"));
            return;
        }
        self.info("example_connect", "Waiting for IP(s)");
        self.wait_ms(2_400);
        let netif = if v.at_least(5, 0) { "example_netif_sta" } else { "example_connect: sta" };
        let handlers = format!("{netif} ip: {LAB_IPV4}, mask: 255.255.255.0, gw: {LAB_GATEWAY}");
        self.info("esp_netif_handlers", &handlers);
        self.info("example_connect", &format!("Got IPv4 event: Interface \"{netif}\" address: {LAB_IPV4}"));
        self.wait_ms(600);
        let event = format!("Got IPv6 event: Interface \"{netif}\" address: {ipv6}, type: {link_local}");
        self.info("example_connect", &event);
        let (tag, comma) = if v.at_least(5, 0) { ("example_common", ",") } else { ("example_connect", "") };
        self.info(tag, &format!("Connected to {netif}"));
        self.info(tag, &format!("- IPv4 address: {LAB_IPV4}{comma}"));
        self.info(tag, &format!("- IPv6 address: {ipv6}, type: {link_local}"));
    }

    /// What the program prints once the update succeeded (before `esp_restart()`).
    fn succeeded(&mut self, program: Program) {
        match program {
            Program::SimpleOta if self.version().at_least(5, 0) => self.info(EXAMPLE, "OTA Succeed, Rebooting..."),
            Program::AdvancedHttpsOta => self.info(ADVANCED, "ESP_HTTPS_OTA upgrade successful. Rebooting ..."),
            Program::NativeOta => self.info(NATIVE, "Prepare to restart system!"),
            _ => {}
        }
    }

    /// What the program prints once the update failed with `err`.
    fn failed(&mut self, program: Program, err: u32) {
        match program {
            Program::SimpleOta => {
                let line = if self.release.generation == Generation::V3_1 {
                    "Firmware Upgrades Failed"
                } else {
                    "Firmware upgrade failed"
                };
                self.error(EXAMPLE, line);
            }
            Program::AdvancedHttpsOta => {
                let code = if self.version().at_least(4, 3) { format!("{err:#x}") } else { format!("{}", err as i32) };
                self.error(ADVANCED, &format!("ESP_HTTPS_OTA upgrade failed {code}"));
            }
            Program::NativeOta | Program::Library => {}
        }
    }

    /// `esp_https_ota(config)`: the server verified as configured, the connection opened (with
    /// redirects followed from v3.3), the response's status judged as the release does, then
    /// the download.
    fn https_ota(&mut self, url: &OtaUrl) -> Step<()> {
        if self.device.profile.anchors.is_none() {
            self.error(OTA, no_server_verification(self.version()));
            return Err(Stop::Failed(0x102));
        }
        if url.scheme != Scheme::Https {
            self.error(OTA, "Transport is not over HTTPS");
            return Err(Stop::Failed(ESP_FAIL));
        }
        let mut url = url.clone();
        let mut redirects = 0;
        loop {
            let mut session = self.open(&url)?;
            let head = http::get(&mut super::download::Tls::new(&mut session), &url);
            if self.release.generation == Generation::V3_1 {
                // v3.1–v3.2 ignore what fetching the headers returned, and the status.
                return self.download_v3(session, head.ok());
            }
            let Ok(head) = head else {
                self.error(OTA, "Failed to establish HTTP connection");
                return Err(Stop::Failed(ESP_FAIL));
            };
            match head.status {
                301 | 302 | 303 | 307 | 308 => {
                    let next = head.location.as_deref().and_then(|l| OtaUrl::parse(l).ok());
                    redirects += 1;
                    match next.filter(|u| u.scheme == Scheme::Https) {
                        Some(next) if redirects <= MAX_REDIRECTS => url = next,
                        _ => {
                            self.error(OTA, "URL redirection Failed");
                            self.error(OTA, "Failed to establish HTTP connection");
                            return Err(Stop::Failed(ESP_FAIL));
                        }
                    }
                }
                status if self.refuses(status) => return self.refused(status),
                _ => return self.download(session, head),
            }
        }
    }

    /// Whether the release refuses a response with `status` before downloading (v4.3.0:
    /// 403/404 and 5xx; v4.3.1 on: every 4xx too). Before v4.3 the body is written whatever
    /// the status.
    fn refuses(&self, status: u16) -> bool {
        let v = self.version();
        match status {
            403 | 404 | 500.. => v.at_least(4, 3),
            400..=499 => v >= IdfVersion::new(4, 3, 1),
            _ => false,
        }
    }

    fn refused(&mut self, status: u16) -> Step<()> {
        let line = match status {
            403 | 404 => format!("File not found({status})"),
            400..=499 => format!("Client error ({status})"),
            _ => format!("Server error ({status})"),
        };
        self.error(OTA, &line);
        self.error(OTA, "Failed to establish HTTP connection");
        Err(Stop::Failed(ESP_FAIL))
    }
}

/// `esp_https_ota` without trust configured: the release's line.
fn no_server_verification(v: IdfVersion) -> &'static str {
    let ver = IdfVersion::new;
    if v >= ver(4, 3, 4) {
        "No option for server verification is enabled in esp_http_client config."
    } else if (ver(3, 2, 1)..ver(3, 3, 1)).contains(&v) {
        "Server certificate not found, either through configuration or global CA store"
    } else {
        "Server certificate not found in esp_http_client config"
    }
}

/// An IPv6 link-local address from a MAC (EUI-64), as `IPV6STR` prints it: eight groups of
/// four hex digits.
fn link_local(mac: [u8; 6]) -> String {
    let groups = [
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    ];
    groups.iter().map(|g| format!("{g:04x}")).collect::<Vec<_>>().join(":")
}

/// How long the device waits on a socket (esp_http_client's default timeout).
pub(super) const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_local_address_comes_from_the_mac() {
        assert_eq!(link_local([0x24, 0x0a, 0xc4, 0x07, 0x7a, 0x01]), "fe80:0000:0000:0000:260a:c4ff:fe07:7a01");
    }

    #[test]
    fn each_release_says_its_own_line_when_nothing_is_trusted() {
        let v = IdfVersion::new;
        assert_eq!(no_server_verification(v(3, 2, 0)), "Server certificate not found in esp_http_client config");
        assert!(no_server_verification(v(3, 2, 3)).contains("global CA store"));
        assert!(no_server_verification(v(4, 2, 5)).contains("in esp_http_client config"));
        assert!(no_server_verification(v(5, 2, 5)).starts_with("No option"));
    }
}
