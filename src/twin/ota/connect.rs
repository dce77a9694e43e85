//! `esp_http_client_open` on the twin: the name resolved, the TCP connection made, the TLS
//! handshake with the device's certificate decision ([`crate::device_tls`]); on failure the
//! lines every layer prints in the app's release (esp-tls, the SSL transport, the HTTP client,
//! `esp_https_ota`).

use std::io;

use super::flow::{Client, ESP_FAIL, OTA, SOCKET_TIMEOUT, Step, Stop};
use crate::device_tls::client::{Session, TlsStep, handshake};
use crate::device_tls::{Anchors, DevicePolicy, DeviceTlsError, LogLine};
use crate::firmware::profile::ClockSource;
use crate::firmware::url::OtaUrl;
use crate::idf::{Generation, IdfVersion};
use crate::twin::uart::Level;
use crate::verify_flags::VerifyFlag;

/// `ESP_ERR_HTTP_CONNECT`.
const ERR_HTTP_CONNECT: u32 = 0x7002;

impl Client<'_, '_, '_> {
    /// Resolve, connect, handshake.
    pub(super) fn open(&mut self, url: &OtaUrl) -> Step<Session> {
        let v = self.release.version;
        self.wait_ms(20);
        let Some(address) = self.device.network.resolve(&url.host) else {
            let line = if v.at_least(4, 4) {
                format!("couldn't get hostname for :{}: getaddrinfo() returns 202, addrinfo=0x0", url.host)
            } else {
                format!("couldn't get hostname for :{}:", url.host)
            };
            self.error("esp-tls", &line);
            return connection_failed(self);
        };
        let stream = match self.device.network.connect(address, SOCKET_TIMEOUT) {
            Ok(stream) => stream,
            Err(e) => {
                self.error("esp-tls", &connect_failure(v, e.kind()));
                return connection_failed(self);
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
            Ok(Err(failure)) if failure.step != TlsStep::Handshake => {
                self.setup_failure(failure.step, failure.code);
                connection_failed(self)
            }
            Ok(Err(failure)) => {
                self.print_log(&failure.verdict.log);
                let line = format!("mbedtls_ssl_handshake returned {}", self.release.mbedtls_code(failure.code));
                self.error(self.release.tls_tag(), &line);
                self.verification_lines(failure.verdict.flags);
                connection_failed(self)
            }
            Err(DeviceTlsError::Heap(error)) => {
                // Not the device's doing: no esp-tls line stands for it (a run refuses such a
                // firmware before its cells where it can tell).
                tracing::error!("twin: the device's TLS heap cannot be emulated: {error}");
                Err(Stop::Failed(ESP_FAIL))
            }
            Err(_) => {
                // v3.x prints this at DEBUG only (`create_ssl_handshake failed`).
                if v.at_least(4, 0) {
                    self.error("esp-tls", "create_ssl_handle failed");
                }
                connection_failed(self)
            }
        }
    }

    /// esp-tls when a step before the handshake failed (the device's heap ran out): the parse
    /// of its roots (`set_ca_cert` from v4.0) or `mbedtls_ssl_setup`, and from v4.0 what the
    /// functions above it print on the way out (v3.x prints `create_ssl_handshake failed` at
    /// DEBUG only).
    fn setup_failure(&mut self, step: TlsStep, code: i32) {
        let v = self.release.version;
        let tag = self.release.tls_tag();
        let code = self.release.mbedtls_code(code);
        // v3.x's messages end in two newlines of their own.
        let end = if v.at_least(4, 0) { "" } else { "\n\n" };
        if step == TlsStep::ParseRoots {
            let what = if v.at_least(5, 1) { "mbedtls_x509_crt_parse of CA cert" } else { "mbedtls_x509_crt_parse" };
            self.error(tag, &format!("{what} returned {code}{end}"));
            if v.at_least(4, 4) {
                // ESP_ERR_MBEDTLS_X509_CRT_PARSE_FAILED, named by esp_err_to_name.
                let line =
                    "Failed to set client configurations, returned [0x8015] (ESP_ERR_MBEDTLS_X509_CRT_PARSE_FAILED)";
                self.error(tag, line);
            } else if v.at_least(4, 0) {
                self.error(tag, "Failed to set client configurations");
            }
        } else {
            self.error(tag, &format!("mbedtls_ssl_setup returned {code}{end}"));
        }
        if v.at_least(4, 0) {
            self.error("esp-tls", "create_ssl_handle failed");
        }
    }

    /// The device's certificate policy now: its trust, and its clock if it checks dates.
    fn policy(&mut self) -> DevicePolicy {
        let profile = self.device.profile;
        let uptime = i64::from(self.uart.clock().now_ms() / 1000);
        let now = match profile.clock.value {
            ClockSource::Unset => uptime,
            ClockSource::Sntp => {
                self.sntp_time.get_or_insert_with(|| self.device.network.sntp_time()).unwrap_or(uptime)
            }
            ClockSource::Fixed(at) => at,
        };
        DevicePolicy {
            idf: self.release.version,
            anchors: profile.anchors.clone().unwrap_or(Anchors::Roots(Vec::new())),
            date_check_at: profile.time_check.value.then_some(now),
            config: profile.tls_config(),
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

    /// esp-tls after a failed handshake: whether verification failed, and to v4.3 why
    /// (`mbedtls_x509_crt_verify_info` into a 100-byte buffer, at INFO; DEBUG from v4.4). With
    /// the certificate bundle, v4.4 to v5.1 say nothing.
    fn verification_lines(&mut self, flags: u32) {
        let v = self.release.version;
        let tag = self.release.tls_tag();
        let bundle = matches!(self.device.profile.anchors, Some(Anchors::Bundle { .. }));
        if bundle && v.at_least(4, 4) && !v.at_least(5, 2) {
            return;
        }
        if flags == 0 {
            self.info(tag, "Certificate verified.");
            return;
        }
        self.info(tag, "Failed to verify peer certificate!");
        if !v.at_least(4, 4) {
            self.info(tag, &format!("verification info: {}", verify_info(flags)));
        }
    }
}

/// What esp-tls says when the TCP connection fails: a blocking `connect()` to v4.3 (with the
/// `connnect` typo but in v3.3.5–v3.3.6), a non-blocking one from v4.4 (`select()` timing out,
/// or the delayed error of a refused connection).
fn connect_failure(v: IdfVersion, kind: io::ErrorKind) -> String {
    // lwIP reports a refused connection (RST to the SYN) as ECONNRESET; a SYN nobody answers
    // makes it give up with ECONNABORTED.
    if v.at_least(4, 4) {
        return match kind {
            io::ErrorKind::TimedOut => "[sock=54] select() timeout".to_owned(),
            _ => "[sock=54] delayed connect error: Connection reset by peer".to_owned(),
        };
    }
    let errno = match kind {
        io::ErrorKind::TimedOut => 113,
        _ => 104,
    };
    let spelled_right = (IdfVersion::new(3, 3, 5)..IdfVersion::new(4, 0, 0)).contains(&v);
    let connect = if spelled_right { "connect" } else { "connnect" };
    format!("Failed to {connect} to host (errno {errno})")
}

/// What every layer prints when the connection could not be opened, and what `esp_https_ota`
/// returns: `ESP_ERR_HTTP_CONNECT` (v3.1–v3.2), `ESP_FAIL` after `Failed to establish HTTP
/// connection` (v3.3 on).
pub(super) fn connection_failed<T>(client: &mut Client<'_, '_, '_>) -> Step<T> {
    let release = client.release;
    client.error("esp-tls", "Failed to open new connection");
    client.error(release.transport_tag(), "Failed to open a new connection");
    client.error("HTTP_CLIENT", "Connection failed, sock < 0");
    client.error(OTA, "Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT");
    if release.generation == Generation::V3_1 {
        return Err(Stop::Failed(ERR_HTTP_CONNECT));
    }
    client.error(OTA, "Failed to establish HTTP connection");
    Err(Stop::Failed(ESP_FAIL))
}

/// `mbedtls_x509_crt_verify_info(buf, 100, "  ! ", flags)`: one `  ! reason\n` per flag, cut
/// at 99 bytes as the 100-byte buffer cuts it.
pub(super) fn verify_info(flags: u32) -> String {
    let full: String = VerifyFlag::from_bits(flags).iter().map(|flag| format!("  ! {}\n", flag.text())).collect();
    let mut cut = full.len().min(99);
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    full[..cut].to_owned()
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
        assert!(both.starts_with("  ! The certificate Common Name (CN) does not match with the expected CN\n  ! "));
    }

    #[test]
    fn connect_failures_in_each_release() {
        let v = IdfVersion::new;
        let refused = io::ErrorKind::ConnectionRefused;
        assert_eq!(connect_failure(v(3, 2, 0), refused), "Failed to connnect to host (errno 104)");
        assert_eq!(connect_failure(v(3, 3, 5), refused), "Failed to connect to host (errno 104)");
        assert_eq!(connect_failure(v(4, 3, 7), io::ErrorKind::TimedOut), "Failed to connnect to host (errno 113)");
        assert_eq!(connect_failure(v(4, 4, 8), refused), "[sock=54] delayed connect error: Connection reset by peer");
        assert_eq!(connect_failure(v(5, 2, 5), io::ErrorKind::TimedOut), "[sock=54] select() timeout");
    }
}
