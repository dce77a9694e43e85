//! The example app and `esp_https_ota`, step by step, per generation.

use std::io::{self, Read, Write};
use std::time::Duration;

use mbedtls::error::codes;
use mbedtls::ssl::io::Io;

use super::http::{self, Head};
use super::ota_ops::{ERR_INVALID_ARG, ERR_INVALID_SIZE, ERR_OTA_VALIDATE_FAILED, Layout, OtaWrite, WriteError};
use super::{Device, Generation, ota_ops};
use crate::device_tls::client::{Session, handshake};
use crate::device_tls::{DevicePolicy, LogLine};
use crate::firmware::profile::ClockSource;
use crate::firmware::url::{OtaUrl, Scheme};
use crate::image::partition::AppSlot;
use crate::twin::boot::verify_app;
use crate::twin::clock::BootClock;
use crate::twin::uart::{Dialect, Level, Uart};
use crate::verify_flags::VerifyFlag;

const EXAMPLE: &str = "simple_ota_example";
const OTA: &str = "esp_https_ota";
/// How long the device waits on a socket (esp_http_client's default timeout).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// `max_redirection_count`'s default.
const MAX_REDIRECTS: u32 = 10;
/// Download speed of an ESP32 on Wi-Fi writing to flash, for the timestamps: µs per byte.
const MICROS_PER_BYTE: u64 = 10;

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

/// Runs the example app's update on `device`, printing through `emit` as it goes.
pub(crate) fn run_update(device: &Device<'_>, clock: &mut BootClock, emit: &mut dyn FnMut(&[u8])) -> UpdateEnd {
    let profile = device.profile;
    let mut uart = Uart::new(clock);
    uart.speak(Dialect { major: profile.idf.major, minor: profile.idf.minor });
    let mut client = Client { device, generation: Generation::of(profile.idf), uart, emit, sntp_time: None };
    client.example()
}

/// Why the update stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// It failed; by then the failure's lines are out.
    Failed,
    /// The power went: nothing more is printed.
    PowerLost,
}

type Step<T> = Result<T, Stop>;

struct Client<'d, 'c, 'e> {
    device: &'d Device<'d>,
    generation: Generation,
    uart: Uart<'c>,
    emit: &'e mut dyn FnMut(&[u8]),
    /// What SNTP answered, asked once per boot when the time is first needed (`Some(None)`:
    /// no answer).
    sntp_time: Option<Option<i64>>,
}

impl Client<'_, '_, '_> {
    fn line(&mut self, level: Level, tag: &str, text: &str) {
        self.uart.log(level, tag, text);
        let bytes = self.uart.take();
        (self.emit)(&bytes);
    }

    fn info(&mut self, tag: &str, text: &str) {
        self.line(Level::Info, tag, text);
    }

    fn error(&mut self, tag: &str, text: &str) {
        self.line(Level::Error, tag, text);
    }

    fn wait_ms(&mut self, ms: u64) {
        self.uart.wait_us(ms * 1000);
    }

    /// The example's task: start, connect to Wi-Fi, update, then restart or idle.
    fn example(&mut self) -> UpdateEnd {
        let Some(url) = self.device.profile.ota_url.clone() else {
            return UpdateEnd::Idle;
        };
        match self.generation {
            Generation::V3 => {
                self.info(EXAMPLE, "Starting OTA example...");
                self.wait_ms(2_400);
                self.info(EXAMPLE, "Connect to Wifi ! Start to Connect to Server....");
            }
            Generation::V4 => {
                self.info(EXAMPLE, "Starting OTA example");
                self.wait_ms(2_400);
            }
            Generation::V5 | Generation::V5_4 => {
                self.info(EXAMPLE, "OTA example app_main start");
                self.wait_ms(2_400);
                self.info(EXAMPLE, "Starting OTA example task");
                self.info(EXAMPLE, &format!("Attempting to download update from {url}"));
            }
        }
        match self.https_ota(&url) {
            Ok(()) => {
                if self.generation >= Generation::V5 {
                    self.info(EXAMPLE, "OTA Succeed, Rebooting...");
                }
                self.wait_ms(50);
                UpdateEnd::Restart
            }
            Err(Stop::Failed) => {
                self.error(EXAMPLE, self.generation.upgrade_failed());
                UpdateEnd::Idle
            }
            Err(Stop::PowerLost) => UpdateEnd::PowerLost,
        }
    }

    /// `esp_https_ota(config)`.
    fn https_ota(&mut self, url: &OtaUrl) -> Step<()> {
        if self.device.profile.anchors.is_none() {
            let line = match self.generation {
                Generation::V3 => "Server certificate not found in esp_http_client config",
                _ => "No option for server verification is enabled in esp_http_client config.",
            };
            self.error(OTA, line);
            return Err(Stop::Failed);
        }
        if url.scheme != Scheme::Https {
            self.error(OTA, "Transport is not over HTTPS");
            return Err(Stop::Failed);
        }
        let mut url = url.clone();
        let mut redirects = 0;
        loop {
            let mut session = self.open(&url)?;
            let head = http::get(&mut Tls::new(&mut session), &url);
            if self.generation == Generation::V3 {
                // v3.2 ignores what fetching the headers returned, and the status.
                return self.download_v3(session, head.ok());
            }
            let Ok(head) = head else {
                self.error(OTA, "Failed to establish HTTP connection");
                return Err(Stop::Failed);
            };
            match head.status {
                301 | 302 | 303 | 307 | 308 => {
                    let next = head
                        .location
                        .as_deref()
                        .and_then(|l| OtaUrl::parse(l).ok())
                        .filter(|u| u.scheme == Scheme::Https);
                    redirects += 1;
                    match next {
                        Some(next) if redirects <= MAX_REDIRECTS => url = next,
                        _ => {
                            self.error(OTA, "URL redirection Failed");
                            self.error(OTA, "Failed to establish HTTP connection");
                            return Err(Stop::Failed);
                        }
                    }
                }
                403 | 404 => return self.refused(&format!("File not found({})", head.status)),
                400..=499 => return self.refused(&format!("Client error ({})", head.status)),
                500.. => return self.refused(&format!("Server error ({})", head.status)),
                _ => return self.download(session, head),
            }
        }
    }

    fn refused(&mut self, line: &str) -> Step<()> {
        self.error(OTA, line);
        self.error(OTA, "Failed to establish HTTP connection");
        Err(Stop::Failed)
    }

    /// `esp_http_client_open`: resolve, connect, handshake; on failure the lines of every
    /// layer that gives up.
    fn open(&mut self, url: &OtaUrl) -> Step<Session> {
        let g = self.generation;
        self.wait_ms(20);
        let Some(address) = self.device.network.resolve(&url.host) else {
            let line = match g {
                Generation::V3 => format!("couldn't get hostname for :{}:", url.host),
                _ => format!("couldn't get hostname for :{}: getaddrinfo() returns 202, addrinfo=0x0", url.host),
            };
            self.error("esp-tls", &line);
            return self.connection_failed();
        };
        let stream = match self.device.network.connect(address, SOCKET_TIMEOUT) {
            Ok(stream) => stream,
            Err(e) => {
                // lwIP reports a refused connection (RST to the SYN) as ECONNRESET.
                let (errno, text) = match e.kind() {
                    io::ErrorKind::TimedOut => (116, "Connection timed out"),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
                        (104, "Connection reset by peer")
                    }
                    _ => (113, "Host is unreachable"),
                };
                let line = match g {
                    Generation::V3 => format!("Failed to connnect to host (errno {errno})"),
                    _ => format!("[sock=54] connect() error: {text}"),
                };
                self.error("esp-tls", &line);
                return self.connection_failed();
            }
        };
        let _ = stream.set_read_timeout(Some(SOCKET_TIMEOUT));
        let _ = stream.set_write_timeout(Some(SOCKET_TIMEOUT));
        let policy = self.policy();
        let result = handshake(stream, &url.host, &policy);
        // An RSA handshake on the ESP32 takes about a second.
        self.wait_ms(1_100);
        match result {
            Ok(Ok((session, verdict))) => {
                self.print_log(&verdict.log);
                Ok(session)
            }
            Ok(Err(failure)) => {
                self.print_log(&failure.verdict.log);
                let line = format!("mbedtls_ssl_handshake returned {}", g.mbedtls_code(failure.code));
                self.error(g.tls_tag(), &line);
                self.verification_lines(failure.verdict.flags);
                self.connection_failed()
            }
            Err(_) => {
                self.error(g.tls_tag(), "create_ssl_handle failed");
                self.connection_failed()
            }
        }
    }

    /// The device's certificate policy now: its trust, and its clock if it checks dates.
    fn policy(&mut self) -> DevicePolicy {
        let profile = self.device.profile;
        let uptime = i64::from(self.uart.clock().now_ms() / 1000);
        let now = match profile.clock {
            ClockSource::Unset => uptime,
            ClockSource::Sntp => {
                self.sntp_time.get_or_insert_with(|| self.device.network.sntp_time()).unwrap_or(uptime)
            }
            ClockSource::Fixed(at) => at,
        };
        DevicePolicy {
            idf: profile.idf,
            anchors: profile.anchors.clone().unwrap_or(crate::device_tls::Anchors::Roots(Vec::new())),
            date_check_at: profile.time_check.then_some(now),
        }
    }

    /// Lines the certificate bundle printed during the handshake.
    fn print_log(&mut self, log: &[LogLine]) {
        for line in log {
            let level = match line.level {
                'E' => Level::Error,
                'W' => Level::Warn,
                _ => Level::Info,
            };
            self.line(level, line.tag, &line.text);
        }
    }

    /// esp-tls after a failed handshake: whether verification failed, and in v3.2 why
    /// (`mbedtls_x509_crt_verify_info` into a 100-byte buffer). v4.4 to v5.1 say nothing for
    /// the certificate bundle.
    fn verification_lines(&mut self, flags: u32) {
        let g = self.generation;
        let idf = self.device.profile.idf;
        let bundle = matches!(self.device.profile.anchors, Some(crate::device_tls::Anchors::Bundle { .. }));
        if bundle && g != Generation::V3 && (idf.major, idf.minor) < (5, 2) {
            return;
        }
        if flags == 0 {
            self.info(g.tls_tag(), "Certificate verified.");
            return;
        }
        self.info(g.tls_tag(), "Failed to verify peer certificate!");
        if g == Generation::V3 {
            self.info(g.tls_tag(), &format!("verification info: {}", verify_info(flags)));
        }
    }

    /// What every layer prints when the connection could not be opened.
    fn connection_failed<T>(&mut self) -> Step<T> {
        let g = self.generation;
        self.error("esp-tls", "Failed to open new connection");
        self.error(g.transport_tag(), "Failed to open a new connection");
        self.error("HTTP_CLIENT", "Connection failed, sock < 0");
        self.error(OTA, "Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT");
        if g != Generation::V3 {
            self.error(OTA, "Failed to establish HTTP connection");
        }
        Err(Stop::Failed)
    }

    /// The partition the update goes to, announced as the generation does.
    fn update_partition(&mut self) -> Step<(Layout, AppSlot)> {
        self.info(OTA, "Starting OTA...");
        let layout = Layout::read(&self.device.flash.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let slot = layout.as_ref().and_then(|layout| layout.next_update(self.device.running)).cloned();
        let (Some(layout), Some(slot)) = (layout, slot) else {
            self.error(OTA, "Passive OTA partition not found");
            return Err(Stop::Failed);
        };
        let line = if self.generation == Generation::V5_4 {
            format!("Writing to <{}> partition at offset {:#x}", slot.name, slot.offset)
        } else {
            format!(
                "Writing to partition subtype {} at offset {:#x}",
                0x10 + u32::from(slot.ota.unwrap_or(0)),
                slot.offset
            )
        };
        self.info(OTA, &line);
        Ok((layout, slot))
    }

    /// v3.2: erase the partition, write whatever the body is (the status is never checked),
    /// verify at the end, then switch.
    fn download_v3(&mut self, mut session: Session, head: Option<Head>) -> Step<()> {
        let (layout, slot) = self.update_partition()?;
        let mut writer = OtaWrite::begin(self.device.flash, &slot, true, self.device.power_cut);
        self.wait_ms(u64::from(slot.size) / 4096 * 25);
        self.info(OTA, "esp_ota_begin succeeded");
        self.info(OTA, "Please Wait. This may take time");
        let mut body = Body::new(head.as_ref());
        let mut write_failed = false;
        loop {
            match body.next(&mut session) {
                Chunk::Data(data) => {
                    self.uart.wait_us(data.len() as u64 * MICROS_PER_BYTE);
                    if let Err(error) = writer.write(self.device.flash, &data) {
                        if error == WriteError::PowerLost {
                            return Err(Stop::PowerLost);
                        }
                        if let WriteError::Magic(byte) = error {
                            let line = format!("OTA image has invalid magic byte (expected 0xE9, saw 0x{byte:02x}");
                            self.error("esp_ota_ops", &line);
                        }
                        write_failed = true;
                        break;
                    }
                }
                Chunk::End => {
                    self.info(OTA, "Connection closed,all data received");
                    break;
                }
                Chunk::Failed(code) => {
                    self.error("esp-tls", &format!("read error :{code}:"));
                    self.error("TRANS_SSL", &format!("esp_tls_conn_read error, errno={}", errno_of(code).1));
                    self.info(OTA, "Connection closed,all data received");
                    break;
                }
            }
        }
        drop(session);
        let end_error = if writer.written == 0 {
            Some(ERR_INVALID_ARG)
        } else {
            self.verify(&slot).is_none().then_some(ERR_OTA_VALIDATE_FAILED)
        };
        if write_failed {
            // Sic: v3.2 prints the result of opening the connection (0), not the write's.
            self.error(OTA, "Error: esp_ota_write failed! err=0x0");
            return Err(Stop::Failed);
        }
        if let Some(error) = end_error {
            // Sic: decimal digits behind "0x".
            self.error(OTA, &format!("Error: esp_ota_end failed! err=0x{error}. Image is invalid"));
            return Err(Stop::Failed);
        }
        self.set_boot_partition(&layout, &slot)?;
        self.info(OTA, "esp_ota_set_boot_partition succeeded");
        Ok(())
    }

    /// v4.4 and v5.x: read the image header first (chip check), write as the data comes
    /// (sectors erased as they are reached), verify, switch.
    fn download(&mut self, mut session: Session, head: Head) -> Step<()> {
        let g = self.generation;
        let (layout, slot) = self.update_partition()?;
        if self.device.profile.rollback && ota_ops::running_app_on_trial(self.device.flash, self.device.running) {
            // esp_ota_begin with rollback enabled refuses while the running app is unconfirmed.
            self.error("esp_ota_ops", "Running app has not confirmed state (ESP_OTA_IMG_PENDING_VERIFY)");
            self.error(OTA, "esp_ota_begin failed (ESP_ERR_OTA_ROLLBACK_INVALID_STATE)");
            return Err(Stop::Failed);
        }
        let mut writer = OtaWrite::begin(self.device.flash, &slot, false, self.device.power_cut);
        let header_size = if g == Generation::V4 { 289 } else { 1024 };
        let mut body = Body::new(Some(&head));
        let mut header = Vec::new();
        let mut ended = false;
        while header.len() < header_size {
            match body.next(&mut session) {
                Chunk::Data(data) => header.extend_from_slice(&data),
                Chunk::End if body.complete() => {
                    ended = true;
                    break;
                }
                Chunk::End | Chunk::Failed(_) => {
                    self.error(OTA, "Complete headers were not received");
                    return Err(Stop::Failed);
                }
            }
        }
        let chip_id = u16::from_le_bytes([header.get(12).copied().unwrap_or(0), header.get(13).copied().unwrap_or(0)]);
        if chip_id != 0 {
            self.error(OTA, &format!("Mismatch chip id, expected 0, found {chip_id}"));
            return Err(Stop::Failed);
        }
        self.write(&mut writer, &header)?;
        while !ended {
            match body.next(&mut session) {
                Chunk::Data(data) => self.write(&mut writer, &data)?,
                Chunk::End if body.complete() => ended = true,
                Chunk::End => {
                    let line = match g {
                        Generation::V4 => "Connection closed, errno = 128",
                        _ => "Connection closed before complete data was received!",
                    };
                    self.error(OTA, line);
                    return Err(Stop::Failed);
                }
                Chunk::Failed(code) => {
                    self.error(g.tls_tag(), &format!("read error :{}:", g.mbedtls_code(code)));
                    let (errno, text) = errno_of(code);
                    self.error(g.transport_tag(), &format!("esp_tls_conn_read error, errno={text}"));
                    if g != Generation::V4 {
                        self.error("HTTP_CLIENT", "transport_read: error - -1 | ESP_FAIL");
                    }
                    self.error(OTA, &format!("data read -1, errno {errno}"));
                    return Err(Stop::Failed);
                }
            }
        }
        drop(session);
        if writer.written == 0 || self.verify(&slot).is_none() {
            return Err(Stop::Failed);
        }
        self.set_boot_partition(&layout, &slot)
    }

    /// `_ota_write`: the data into the partition, or the line of the write's failure.
    fn write(&mut self, writer: &mut OtaWrite, data: &[u8]) -> Step<()> {
        self.uart.wait_us(data.len() as u64 * MICROS_PER_BYTE);
        match writer.write(self.device.flash, data) {
            Ok(()) => Ok(()),
            Err(WriteError::Magic(byte)) => {
                let line = format!("OTA image has invalid magic byte (expected 0xE9, saw 0x{byte:02x})");
                self.error("esp_ota_ops", &line);
                self.error(OTA, &format!("Error: esp_ota_write failed! err={ERR_OTA_VALIDATE_FAILED:#x}"));
                Err(Stop::Failed)
            }
            Err(WriteError::Size) => {
                self.error(OTA, &format!("Error: esp_ota_write failed! err={ERR_INVALID_SIZE:#x}"));
                Err(Stop::Failed)
            }
            Err(WriteError::PowerLost) => Err(Stop::PowerLost),
        }
    }

    /// `esp_image_verify` of the written partition, with its lines.
    fn verify(&mut self, slot: &AppSlot) -> Option<()> {
        let d = Dialect { major: self.device.profile.idf.major, minor: self.device.profile.idf.minor };
        let verified = {
            let flash = self.device.flash.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            verify_app(flash.as_bytes(), slot.offset, slot.size, d, &mut self.uart).map(|_| ())
        };
        let bytes = self.uart.take();
        (self.emit)(&bytes);
        verified
    }

    /// `esp_ota_set_boot_partition`: verify again, then write otadata.
    fn set_boot_partition(&mut self, layout: &Layout, slot: &AppSlot) -> Step<()> {
        self.verify(slot).ok_or(Stop::Failed)?;
        let rollback = self.device.profile.rollback && self.generation != Generation::V3;
        if self.device.power_cut == Some(super::PowerCut::OtadataWrite) {
            ota_ops::erase_next_otadata_sector(self.device.flash, layout);
            return Err(Stop::PowerLost);
        }
        if !ota_ops::set_boot_slot(self.device.flash, layout, slot, rollback) {
            let line = format!("esp_ota_set_boot_partition failed! err={:#x}", 0x1502);
            self.error(OTA, &line);
            return Err(Stop::Failed);
        }
        Ok(())
    }
}

/// `mbedtls_x509_crt_verify_info(buf, 100, "  ! ", flags)`: one `  ! reason\n` per flag, cut
/// at 99 bytes as the 100-byte buffer cuts it.
fn verify_info(flags: u32) -> String {
    let full: String = VerifyFlag::from_bits(flags).iter().map(|flag| format!("  ! {}\n", flag.text())).collect();
    let mut cut = full.len().min(99);
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    full[..cut].to_owned()
}

/// The socket's `errno` after mbedTLS failed to read with `code` (newlib's numbers and
/// `strerror` texts): a reset leaves ECONNRESET, a receive timeout EAGAIN, anything else
/// nothing.
fn errno_of(code: i32) -> (i32, &'static str) {
    match code {
        -0x50 => (104, "Connection reset by peer"),
        -0x4C => (11, "No more processes"),
        _ => (0, "Success"),
    }
}

/// One step of reading the body.
enum Chunk {
    Data(Vec<u8>),
    /// The server closed (close_notify or FIN) or the announced length was reached.
    End,
    /// mbedTLS failed to read (its code, e.g. -0x7280 for EOF without close_notify).
    Failed(i32),
}

/// The response body as `esp_http_client_read` delivers it: the bytes that came with the head,
/// then the stream, up to the announced length.
struct Body {
    pending: Vec<u8>,
    remaining: Option<u64>,
}

impl Body {
    fn new(head: Option<&Head>) -> Body {
        match head {
            Some(head) => {
                let mut pending = head.body_start.clone();
                if let Some(len) = head.content_length {
                    pending.truncate(len as usize);
                }
                let remaining = head.content_length.map(|len| len - pending.len() as u64);
                Body { pending, remaining }
            }
            None => Body { pending: Vec::new(), remaining: Some(0) },
        }
    }

    /// Whether everything announced arrived (no length announced: the close ends it).
    fn complete(&self) -> bool {
        self.pending.is_empty() && self.remaining.is_none_or(|r| r == 0)
    }

    fn next(&mut self, session: &mut Session) -> Chunk {
        if !self.pending.is_empty() {
            return Chunk::Data(std::mem::take(&mut self.pending));
        }
        if self.remaining == Some(0) {
            return Chunk::End;
        }
        let mut buf = vec![0u8; 4096];
        let want = self.remaining.map_or(buf.len(), |r| r.min(buf.len() as u64) as usize);
        match Io::recv(session, &mut buf[..want]) {
            Ok(0) => Chunk::End,
            Ok(n) => {
                if let Some(remaining) = &mut self.remaining {
                    *remaining -= n as u64;
                }
                buf.truncate(n);
                Chunk::Data(buf)
            }
            Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => Chunk::End,
            Err(e) => Chunk::Failed(e.to_int()),
        }
    }
}

/// The session as a byte stream for the HTTP head (errors become `io::Error`s).
struct Tls<'s> {
    session: &'s mut Session,
}

impl<'s> Tls<'s> {
    fn new(session: &'s mut Session) -> Self {
        Tls { session }
    }
}

impl Read for Tls<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Io::recv(self.session, buf) {
            Ok(n) => Ok(n),
            Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => Ok(0),
            Err(e) => Err(io::Error::other(format!("mbedTLS {}", e.to_int()))),
        }
    }
}

impl Write for Tls<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Io::send(self.session, buf).map_err(|e| io::Error::other(format!("mbedTLS {}", e.to_int())))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_info_is_cut_like_the_100_byte_buffer() {
        assert_eq!(verify_info(0x08), "  ! The certificate is not correctly signed by the trusted CA\n");
        // CN mismatch and not trusted: the second reason is cut.
        let both = verify_info(0x0C);
        assert_eq!(both.len(), 99);
        assert!(both.starts_with("  ! The certificate Common Name (CN) does not match with the expected CN\n  ! The"));
    }
}
