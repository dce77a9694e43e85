//! Records → events: the exact strings ESP-IDF (v3.2 to v5.5), its bootloader and ROM,
//! Arduino-ESP32 and ESPHome print around an update, and what each means.
//!
//! Matching goes by tag first, then by message, so a line from an unrelated component costs
//! one string comparison.

use super::event::EventKind;
use super::record::{ArduinoLine, Body, IdfLine, Record};
use crate::verify_flags::{FlagText, VerifyFlag};

/// The few facts recognition needs from earlier lines.
#[derive(Debug, Default)]
pub struct Recogniser {
    /// The previous line was a `verification info:` line or one of its continuations.
    in_verify_info: bool,
}

impl Recogniser {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// The event a record stands for, if any.
    pub fn recognise(&mut self, record: &Record<'_>) -> Option<EventKind> {
        let continues_verify_info = self.in_verify_info;
        self.in_verify_info = false;
        let kind = match record.body {
            Body::Idf(line) => idf(line),
            Body::Arduino(line) => arduino(line),
            Body::EspHome(line) => app_message(line.message),
            Body::Text(text) if continues_verify_info => match verify_continuation(text) {
                Some(kind) => Some(kind),
                None if text.trim().is_empty() => {
                    // The colour reset code lands on an empty line after the reasons.
                    self.in_verify_info = true;
                    return None;
                }
                None => plain_text(text),
            },
            Body::Text(text) => plain_text(text),
        };
        if matches!(kind, Some(EventKind::VerifyInfo { .. })) {
            self.in_verify_info = true;
        }
        kind
    }
}

fn idf(line: IdfLine<'_>) -> Option<EventKind> {
    let msg = line.message;
    match line.tag {
        "esp-tls" | "esp-tls-mbedtls" => esp_tls(msg),
        "TRANS_SSL" | "TRANSPORT_BASE" | "transport_base" | "TRANS_TCP" | "HTTP_CLIENT" => transport(msg),
        "esp_https_ota" => https_ota(msg),
        "esp_ota_ops" => ota_ops(msg),
        "esp_image" => esp_image(msg),
        "boot_comm" => msg.starts_with("mismatch chip ID").then_some(EventKind::ImageChipMismatch),
        "boot" => boot(msg),
        "cpu_start" | "app_init" => start_up(msg),
        "main_task" => (msg == "Calling app_main()").then_some(EventKind::AppStarted),
        "esp-x509-crt-bundle" => bundle(msg),
        "task_wdt" => msg.starts_with("Task watchdog got triggered").then_some(EventKind::TaskWatchdog),
        _ => app_message(msg),
    }
}

fn esp_tls(msg: &str) -> Option<EventKind> {
    if let Some(code) = msg.strip_prefix("mbedtls_ssl_handshake returned ") {
        return Some(EventKind::HandshakeFailed { code: parse_neg_hex(code)? });
    }
    if let Some(code) = msg.strip_prefix("mbedtls_ssl_setup returned ") {
        return Some(EventKind::TlsSetupFailed { code: parse_neg_hex(code)? });
    }
    if let Some(code) = msg.strip_prefix("mbedtls_x509_crt_parse returned ") {
        return Some(EventKind::CaParseFailed { code: parse_neg_hex(code)? });
    }
    if let Some(info) = msg.strip_prefix("verification info:") {
        return Some(verify_info(info, false));
    }
    if let Some(code) = msg.strip_prefix("read error :") {
        return Some(EventKind::ReadFailed { code: parse_code(code.trim_end_matches(':'))? });
    }
    if let Some(errno) = msg.strip_prefix("Failed to connnect to host (errno ") {
        let errno = errno.trim_end_matches(')').parse().ok();
        return Some(EventKind::ConnectFailed { errno });
    }
    Some(match msg {
        "Failed to verify peer certificate!" => EventKind::PeerVerifyFailed,
        "Certificate verified." => EventKind::PeerVerified,
        "Failed to open new connection" | "failed to open a new connection" | "create_ssl_handle failed" => {
            EventKind::ConnectionFailed
        }
        "Failed to open new connection in specified timeout" => EventKind::NetworkTimeout,
        _ if msg.starts_with("couldn't get hostname for") => EventKind::HostLookupFailed,
        _ if msg.starts_with("Failed to create socket") => EventKind::ConnectFailed { errno: None },
        _ if msg.starts_with("[sock=") && msg.ends_with("select() timeout") => EventKind::NetworkTimeout,
        _ if msg.starts_with("[sock=") && msg.contains("connect") && msg.contains("error") => {
            EventKind::ConnectFailed { errno: None }
        }
        _ => return None,
    })
}

fn transport(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Failed to open a new connection" | "Connection failed, sock < 0" | "Connection failed" => {
            EventKind::ConnectionFailed
        }
        _ if msg.starts_with("esp_tls_conn_read error") || msg.starts_with("transport_read: error") => {
            EventKind::ConnectionFailed
        }
        _ => return None,
    })
}

fn https_ota(msg: &str) -> Option<EventKind> {
    if let Some(rest) = msg.strip_prefix("Writing to partition subtype ") {
        let offset = rest.split_once(" at offset ").and_then(|(_, hex)| parse_hex(hex));
        return Some(EventKind::OtaWriting { offset, label: None });
    }
    if let Some(rest) = msg.strip_prefix("Writing to <") {
        let (label, rest) = rest.split_once('>')?;
        let offset = rest.split_once(" at offset ").and_then(|(_, hex)| parse_hex(hex));
        return Some(EventKind::OtaWriting { offset, label: Some(label.to_owned()) });
    }
    if let Some(status) = http_status(msg) {
        return Some(status);
    }
    if let Some(err) = msg.strip_prefix("Error: esp_ota_write failed! err=0x") {
        return Some(EventKind::OtaWriteFailed { err: u32::from_str_radix(err.trim(), 16).ok() });
    }
    Some(match msg {
        "Starting OTA..." => EventKind::OtaStarted,
        "Connection closed,all data received" => EventKind::DownloadFinished,
        "esp_ota_set_boot_partition succeeded" => EventKind::BootPartitionSet,
        "Connection closed before complete data was received!" | "Complete headers were not received" => {
            EventKind::DownloadCutShort
        }
        "Couldn't allocate memory to upgrade data buffer" => EventKind::OutOfMemory,
        "Incorrect app descriptor magic" => EventKind::ImageCorrupt,
        "URL redirection Failed" => EventKind::HttpStatus { status: None },
        "Failed to establish HTTP connection" => EventKind::ConnectionFailed,
        _ if msg.starts_with("Failed to open HTTP connection") => EventKind::ConnectionFailed,
        _ if msg.starts_with("Connection closed, errno = ") => EventKind::DownloadCutShort,
        _ if msg.starts_with("data read ") => EventKind::DownloadCutShort,
        _ if msg.starts_with("Mismatch chip id") => EventKind::ImageChipMismatch,
        _ if msg.starts_with("Error: esp_ota_end failed!") || msg.starts_with("esp_ota_set_boot_partition failed!") => {
            EventKind::OtaEndFailed
        }
        _ => return None,
    })
}

/// `File not found(404)`, `Client error (418)`, `Server error (503)`,
/// `Received incorrect http status 404`.
fn http_status(msg: &str) -> Option<EventKind> {
    let digits = ["File not found(", "Client error (", "Server error ("]
        .iter()
        .find_map(|prefix| msg.strip_prefix(prefix))
        .map(|rest| rest.trim_end_matches(')'))
        .or_else(|| msg.strip_prefix("Received incorrect http status "))?;
    Some(EventKind::HttpStatus { status: digits.trim().parse().ok() })
}

fn ota_ops(msg: &str) -> Option<EventKind> {
    if let Some(rest) = msg.strip_prefix("OTA image has invalid magic byte (expected 0xE9, saw 0x") {
        let hex = rest.trim_end_matches(')');
        return Some(EventKind::ImageMagic { saw: u8::from_str_radix(hex, 16).ok() });
    }
    (msg == "Rollback to previously worked partition. Restart.").then_some(EventKind::RollbackRequested)
}

fn esp_image(msg: &str) -> Option<EventKind> {
    if msg.starts_with("segment ") {
        return Some(EventKind::ImageSegment);
    }
    const FAULTS: [&str; 10] = [
        "image at 0x",
        "invalid segment length",
        "unaligned segment length",
        "Segment ",
        "image offset has wrapped",
        "Checksum failed.",
        "Image length ",
        "Image hash failed",
        "Image requires chip rev",
        "bootloader_mmap(",
    ];
    FAULTS.iter().any(|fault| msg.starts_with(fault)).then_some(EventKind::ImageCorrupt)
}

fn boot(msg: &str) -> Option<EventKind> {
    if let Some(offset) = msg.strip_prefix("Loaded app from partition at offset ") {
        return Some(EventKind::AppLoaded { offset: parse_hex(offset)? });
    }
    if let Some(rest) = msg.strip_prefix("ESP-IDF ") {
        let idf = rest.strip_suffix(" 2nd stage bootloader")?;
        return Some(EventKind::BootloaderStarted { idf: idf.to_owned() });
    }
    if msg.ends_with("is not bootable") {
        return Some(EventKind::SlotNotBootable);
    }
    partition_row(msg)
}

/// ` 4 ota_0            OTA app          00 10 00110000 00100000`.
fn partition_row(msg: &str) -> Option<EventKind> {
    let mut fields = msg.split_ascii_whitespace();
    fields.next()?.parse::<u8>().ok()?;
    let label = fields.next()?;
    let rest: Vec<&str> = fields.collect();
    let [.., offset, length] = rest.as_slice() else { return None };
    if offset.len() != 8 || length.len() != 8 {
        return None;
    }
    let offset = u32::from_str_radix(offset, 16).ok()?;
    Some(EventKind::PartitionRow { label: label.to_owned(), offset })
}

fn start_up(msg: &str) -> Option<EventKind> {
    if let Some(version) = msg.strip_prefix("App version:") {
        return Some(EventKind::AppVersion { version: version.trim().to_owned() });
    }
    if let Some(version) = msg.strip_prefix("ESP-IDF:") {
        return Some(EventKind::AppIdf { version: version.trim().to_owned() });
    }
    matches!(msg, "Pro cpu start user code" | "Application information:").then_some(EventKind::AppStarted)
}

fn bundle(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Failed to verify certificate" => EventKind::BundleRejected,
        "No matching trusted root certificate found" => EventKind::BundleNoMatch,
        "Certificate matched but signature verification failed" => EventKind::BundleBadSignature,
        "Certificate validated" => EventKind::BundleAccepted,
        _ if msg.starts_with("PK verify failed") => EventKind::BundleBadSignature,
        _ => return None,
    })
}

/// Lines that applications (ESP-IDF's examples, sketches, ESPHome) print around an update.
fn app_message(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Starting OTA example"
        | "Starting OTA example..."
        | "Starting OTA example task"
        | "Connect to Wifi ! Start to Connect to Server...." => EventKind::UpdateCheck,
        _ if msg.starts_with("Attempting to download update from") => EventKind::UpdateCheck,
        "OTA Succeed, Rebooting..." | "Prepare to restart system!" => {
            EventKind::UpdateSucceeded { silent_bootloader: false }
        }
        "Firmware upgrade failed" | "Firmware Upgrades Failed" | "Exiting task due to fatal error..." => {
            EventKind::UpdateFailed
        }
        _ => return None,
    })
}

fn arduino(line: ArduinoLine<'_>) -> Option<EventKind> {
    let msg = line.message.trim_end();
    match line.file {
        "ssl_client.cpp" => ssl_client(msg),
        "HTTPUpdate.cpp" => http_update(msg),
        _ => app_message(msg),
    }
}

/// WiFiClientSecure's `_handle_error`: `[start_ssl_client():273]: (-9984) X509 - ...`,
/// `[fn():line]: code -9984` without error strings, or (core 1.0.0–1.0.3) the text on one
/// line and `MbedTLS message code: -9984` on the next.
fn ssl_client(msg: &str) -> Option<EventKind> {
    if let Some(code) = msg.strip_prefix("MbedTLS message code: ") {
        return Some(tls_error(code.trim().parse().ok()?, ""));
    }
    if let Some(info) = msg.split_once("verification info:").map(|(_, info)| info) {
        return Some(verify_info(info, false));
    }
    let (function, body) = msg.strip_prefix('[')?.split_once("]: ")?;
    let code = match body.strip_prefix('(') {
        Some(rest) => rest.split_once(')')?.0,
        None => body.strip_prefix("code ")?,
    };
    Some(tls_error(code.trim().parse().ok()?, function))
}

fn tls_error(code: i32, function: &str) -> EventKind {
    if is_alloc_failure(code) {
        EventKind::TlsSetupFailed { code }
    } else if function.starts_with("data_to_read")
        || function.starts_with("send_ssl_data")
        || function.starts_with("get_ssl_receive")
    {
        EventKind::ReadFailed { code }
    } else {
        EventKind::HandshakeFailed { code }
    }
}

/// HTTPUpdate's `log_e` lines.
fn http_update(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Magic header does not start with 0xE9" => EventKind::ImageMagic { saw: None },
        "Update ok" => EventKind::UpdateSucceeded { silent_bootloader: true },
        _ if msg.starts_with("HTTP Code is (") => {
            let status = msg.trim_start_matches("HTTP Code is (").trim_end_matches(')');
            EventKind::HttpStatus { status: status.parse().ok() }
        }
        _ if msg.starts_with("HTTP error: ") => {
            EventKind::ArduinoUpdateError { code: http_client_code(&msg["HTTP error: ".len()..])? }
        }
        _ if msg.starts_with("FreeSketchSpace to low") => EventKind::ImageCorrupt,
        _ => return None,
    })
}

/// HTTPClient's error texts (`HTTPClient::errorToString`) → its codes.
fn http_client_code(text: &str) -> Option<i32> {
    const TEXTS: [&str; 11] = [
        "connection refused",
        "send header failed",
        "send payload failed",
        "not connected",
        "connection lost",
        "no stream",
        "no HTTP server",
        "too less ram",
        "Transfer-Encoding not supported",
        "Stream write error",
        "read Timeout",
    ];
    let position = TEXTS.iter().position(|t| *t == text.trim())?;
    Some(-(position as i32) - 1)
}

/// mbedTLS codes that mean an allocation failed.
pub(crate) fn is_alloc_failure(code: i32) -> bool {
    matches!(code, -0x7F00 | -0x3F80 | -0x2880 | -0x0010)
}

fn plain_text(text: &str) -> Option<EventKind> {
    let text = text.trim_start();
    let first = *text.as_bytes().first()?;
    match first {
        b'r' => reset(text),
        b'w' => (text == "waiting for download").then_some(EventKind::DownloadMode),
        b'e' => text.starts_with("entry 0x").then_some(EventKind::RomEntry),
        b'G' => {
            let rest = text.strip_prefix("Guru Meditation Error: ")?;
            let reason = rest.split_once("panic'ed (").and_then(|(_, r)| r.split_once(')'))?.0;
            Some(EventKind::Panic { reason: reason.to_owned() })
        }
        b'a' => {
            (text.starts_with("abort() was called") || text.starts_with("assert failed: ")).then_some(EventKind::Abort)
        }
        b'B' => text.starts_with("Brownout detector was triggered").then_some(EventKind::Brownout),
        b'*' => text.starts_with("***ERROR*** A stack overflow").then_some(EventKind::StackOverflow),
        b'C' => text.starts_with("CORRUPT HEAP").then_some(EventKind::HeapCorrupt),
        b'E' => text.starts_with("ESP_ERROR_CHECK failed").then_some(EventKind::ErrorCheckFailed),
        b'H' if text == "HTTP_UPDATE_OK" => Some(EventKind::UpdateSucceeded { silent_bootloader: true }),
        b'H' => {
            let rest = text.strip_prefix("HTTP_UPDATE_FAILED Error (")?;
            let code = rest.split_once(')')?.0.parse().ok()?;
            Some(EventKind::ArduinoUpdateError { code })
        }
        b'I' => text.strip_prefix("I BOD: Brownout detector was triggered").map(|_| EventKind::Brownout),
        _ => None,
    }
}

/// `rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)`.
fn reset(text: &str) -> Option<EventKind> {
    let rest = text.strip_prefix("rst:0x")?;
    let (code, rest) = rest.split_once(' ')?;
    let code = u32::from_str_radix(code, 16).ok()?;
    let reason = rest.strip_prefix('(')?.split_once(')')?.0;
    Some(EventKind::Reset { code, reason: reason.to_owned() })
}

fn verify_info(info: &str, continued: bool) -> EventKind {
    let reasons = info
        .split("  ! ")
        .filter(|part| !part.trim().is_empty())
        .filter_map(VerifyFlag::from_text)
        .collect::<Vec<FlagText>>();
    EventKind::VerifyInfo { reasons, continued }
}

fn verify_continuation(text: &str) -> Option<EventKind> {
    text.starts_with("  ! ").then(|| verify_info(text, true))
}

/// `-0x2700`, `-0x0050`, `-0x50` → the negative code.
fn parse_neg_hex(text: &str) -> Option<i32> {
    let digits = text.trim().strip_prefix("-0x")?;
    let digits = digits.split(|c: char| !c.is_ascii_hexdigit()).next()?;
    i32::from_str_radix(digits, 16).ok().map(|v| -v)
}

/// `-0x7280` or `-29312` (v3.2 prints read errors in decimal).
fn parse_code(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.starts_with("-0x") { parse_neg_hex(text) } else { text.parse().ok() }
}

/// `0x110000` → 0x110000.
fn parse_hex(text: &str) -> Option<u32> {
    let digits = text.trim().strip_prefix("0x")?;
    let digits = digits.split(|c: char| !c.is_ascii_hexdigit()).next()?;
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Option<EventKind> {
        Recogniser::new().recognise(&Record::parse(1, line))
    }

    #[test]
    fn handshake_codes_in_every_printed_form() {
        for (line, code) in [
            ("E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700", -0x2700),
            ("E (1) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x0050", -0x50),
            ("E (1) esp-tls: mbedtls_ssl_handshake returned -0x50", -0x50),
            ("E (1) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x7F00", -0x7F00),
        ] {
            assert_eq!(check(line), Some(EventKind::HandshakeFailed { code }), "{line}");
        }
    }

    #[test]
    fn read_errors_in_decimal_and_hex() {
        assert_eq!(check("E (1) esp-tls: read error :-29312:"), Some(EventKind::ReadFailed { code: -0x7280 }));
        assert_eq!(check("E (1) esp-tls-mbedtls: read error :-0x7280:"), Some(EventKind::ReadFailed { code: -0x7280 }));
    }

    #[test]
    fn v32_magic_line_lacks_its_parenthesis() {
        let v32 = "E (644744) esp_ota_ops: OTA image has invalid magic byte (expected 0xE9, saw 0x3c";
        let v44 = "E (644744) esp_ota_ops: OTA image has invalid magic byte (expected 0xE9, saw 0x3c)";
        assert_eq!(check(v32), Some(EventKind::ImageMagic { saw: Some(0x3c) }));
        assert_eq!(check(v44), Some(EventKind::ImageMagic { saw: Some(0x3c) }));
    }

    #[test]
    fn verify_info_continues_on_the_next_line() {
        let mut recogniser = Recogniser::new();
        let first = Record::parse(
            1,
            "I (1) esp-tls: verification info:   ! The certificate Common Name (CN) does not match with the expected CN",
        );
        let EventKind::VerifyInfo { reasons, continued: false } = recogniser.recognise(&first).unwrap() else {
            panic!("no verify info");
        };
        assert_eq!(reasons[0].flag, VerifyFlag::CnMismatch);
        let second = Record::parse(2, "  ! The certificate is not");
        let EventKind::VerifyInfo { reasons, continued: true } = recogniser.recognise(&second).unwrap() else {
            panic!("no continuation");
        };
        assert_eq!(reasons[0].flag, VerifyFlag::NotTrusted);
        assert!(reasons[0].truncated);
        // Without a verification info line before it, the same text means nothing.
        assert_eq!(check("  ! The certificate is not"), None);
    }

    #[test]
    fn start_up_and_boot_lines() {
        assert_eq!(
            check("I (45) boot: Loaded app from partition at offset 0x110000"),
            Some(EventKind::AppLoaded { offset: 0x110000 })
        );
        assert_eq!(
            check("I (29) boot:  4 ota_0            OTA app          00 10 00110000 00100000"),
            Some(EventKind::PartitionRow { label: "ota_0".into(), offset: 0x110000 })
        );
        assert_eq!(
            check("rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"),
            Some(EventKind::Reset { code: 0xc, reason: "SW_CPU_RESET".into() })
        );
        assert_eq!(
            check("Guru Meditation Error: Core  0 panic'ed (LoadProhibited). Exception was unhandled."),
            Some(EventKind::Panic { reason: "LoadProhibited".into() })
        );
    }

    #[test]
    fn arduino_ssl_errors() {
        let line = "[  5123][E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: (-9984) X509 - Certificate verification failed, e.g. CRL, CA or signature check failed";
        assert_eq!(check(line), Some(EventKind::HandshakeFailed { code: -9984 }));
        let oom =
            "[E][ssl_client.cpp:33] _handle_error(): [start_ssl_client():199]: (-16256) PK - Memory allocation failed";
        assert_eq!(check(oom), Some(EventKind::TlsSetupFailed { code: -16256 }));
        let bare = "[ 25671][E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: code -9984";
        assert_eq!(check(bare), Some(EventKind::HandshakeFailed { code: -9984 }));
        let read =
            "[ 25671][E][ssl_client.cpp:37] _handle_error(): [data_to_read():361]: (-76) UNKNOWN ERROR CODE (004C)";
        assert_eq!(check(read), Some(EventKind::ReadFailed { code: -76 }));
        let core_103 = "[E][ssl_client.cpp:35] handle_error(): MbedTLS message code: -9984";
        assert_eq!(check(core_103), Some(EventKind::HandshakeFailed { code: -9984 }));
    }
}
