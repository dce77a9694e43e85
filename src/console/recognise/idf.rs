//! ESP-IDF lines, by tag: esp-tls and the transport, esp_https_ota, esp_ota_ops, esp_image,
//! the bootloader, start-up, the certificate bundle; any other tag is an application's.

use super::super::event::EventKind;
use super::super::facts;
use super::super::record::{IdfLine, Level};
use super::{anywhere, facts_of_failure_line, failure_of_fact, parse_code, parse_hex, parse_neg_hex, verify_info};

/// The event an ESP-IDF line stands for.
pub(super) fn line(line: IdfLine<'_>) -> Option<EventKind> {
    let msg = line.message.trim_end();
    let by_tag = match line.tag {
        "esp-tls" | "esp-tls-mbedtls" => esp_tls(msg),
        "TRANS_SSL" | "TRANSPORT_BASE" | "transport_base" | "TRANS_TCP" | "HTTP_CLIENT" => transport(msg),
        "esp_https_ota" => https_ota(msg),
        "esp_ota_ops" => ota_ops(msg),
        "esp_image" => esp_image(msg),
        "boot_comm" => msg.starts_with("mismatch chip ID").then_some(EventKind::ImageChipMismatch),
        "boot" => return boot(msg),
        "cpu_start" | "app_init" => return start_up(msg),
        "main_task" => return (msg == "Calling app_main()").then_some(EventKind::AppStarted),
        "esp-x509-crt-bundle" => bundle(msg),
        "task_wdt" => msg.starts_with("Task watchdog got triggered").then_some(EventKind::TaskWatchdog),
        _ => anywhere::app_message(msg),
    };
    by_tag.or_else(|| failure_line(line.level, line.tag, msg))
}

/// An error line no tag explains: a message any program prints, the error it names, or an
/// application saying that its update failed. A line whose level and time were cut off is
/// held to more: the message must start its text and not be a sentence (a changelog pasted
/// without its bullets reads `esp_https_ota: Fixed ... ESP_ERR_HTTP_CONNECT ...`).
fn failure_line(level: Option<Level>, tag: &str, msg: &str) -> Option<EventKind> {
    match level {
        Some(Level::Error | Level::Warn) => {
            anywhere::message(msg).or_else(|| facts_of_failure_line(msg)).or_else(|| {
                (level == Some(Level::Error) && !is_component(tag)).then(|| anywhere::app_failure(msg)).flatten()
            })
        }
        None => match anywhere::message_at(msg) {
            Some((kind, 0)) => Some(kind),
            Some(_) => None,
            None => {
                let found = facts::scan(msg);
                if facts::is_prose(msg, &found) { None } else { facts::agreed(&found).and_then(failure_of_fact) }
            }
        },
        _ => None,
    }
}

/// ESP-IDF's own components, whose failure lines are all known by their exact text.
fn is_component(tag: &str) -> bool {
    matches!(tag, "esp-tls" | "esp-tls-mbedtls" | "esp_https_ota" | "esp_ota_ops" | "esp_image" | "boot" | "task_wdt")
}

fn esp_tls(msg: &str) -> Option<EventKind> {
    if let Some(code) = msg.strip_prefix("mbedtls_ssl_handshake returned ") {
        return Some(EventKind::HandshakeFailed { code: parse_neg_hex(code)? });
    }
    if let Some(code) = msg.strip_prefix("mbedtls_ssl_setup returned ") {
        return Some(EventKind::TlsSetupFailed { code: parse_neg_hex(code)? });
    }
    // v5.x: `mbedtls_x509_crt_parse of CA cert returned -0x2180`.
    if let Some(code) = msg
        .strip_prefix("mbedtls_x509_crt_parse returned ")
        .or_else(|| msg.strip_prefix("mbedtls_x509_crt_parse of CA cert returned "))
    {
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
        // wolfSSL builds (ESP8266 RTOS SDK) add the verify result: `certificate 28!`.
        _ if msg.starts_with("Failed to verify peer certificate") => EventKind::PeerVerifyFailed,
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
        _ if msg.starts_with("esp_tls_conn_read error") => EventKind::TransportReadError,
        _ if msg.starts_with("transport_read: error") => EventKind::ConnectionFailed,
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
        // v3.2 prints the value in decimal behind `0x` (`err=0x5379` for 0x1503).
        let digits = err.trim();
        let err = facts::esp_err_number(digits).or_else(|| u32::from_str_radix(digits, 16).ok());
        return Some(EventKind::OtaWriteFailed { err });
    }
    Some(match msg {
        "Starting OTA..." => EventKind::OtaStarted,
        "Connection closed,all data received" => EventKind::DownloadFinished,
        "esp_ota_set_boot_partition succeeded" => EventKind::BootPartitionSet,
        "Connection closed before complete data was received!" => EventKind::DownloadCutShort,
        "Complete headers were not received" => EventKind::ImageHeaderShort,
        "Couldn't allocate memory to upgrade data buffer" => EventKind::OutOfMemory,
        "Incorrect app descriptor magic" => EventKind::ImageCorrupt,
        "URL redirection Failed" => EventKind::HttpStatus { status: None },
        "Failed to establish HTTP connection" => EventKind::ConnectionFailed,
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
    Some(match msg {
        "Rollback to previously worked partition. Restart." => EventKind::RollbackRequested,
        "New image failed verification" => EventKind::ImageCorrupt,
        // `read_otadata` finds no otadata partition; the call returns ESP_ERR_NOT_FOUND.
        "not found otadata" | "not found ota data" => EventKind::EspError { err: 0x105 },
        _ => return None,
    })
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

pub(super) fn bundle(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Failed to verify certificate" => EventKind::BundleRejected,
        "No matching trusted root certificate found" => EventKind::BundleNoMatch,
        "Certificate matched but signature verification failed" => EventKind::BundleBadSignature,
        "Certificate validated" => EventKind::BundleAccepted,
        _ if msg.starts_with("PK verify failed") => EventKind::BundleBadSignature,
        _ => return None,
    })
}
