//! Arduino lines: WiFiClientSecure's `ssl_client.cpp` (every core's shape), HTTPClient,
//! HTTPUpdate and its ESP8266 twin's `[httpUpdate]` debug lines, the certificate bundle's
//! Arduino build, and the Updater's error texts that sketches and libraries pass on.

use super::super::event::EventKind;
use super::super::record::{ArduinoLine, Level, TaggedLine};
use super::{anywhere, facts_of_failure_line, idf};
use crate::codes;

/// The event an Arduino `log_x` line stands for.
pub(super) fn line(line: ArduinoLine<'_>) -> Option<EventKind> {
    let msg = line.message.trim_end();
    let by_file = match line.file {
        "ssl_client.cpp" => ssl_client(msg),
        "HTTPUpdate.cpp" => http_update(msg),
        "HTTPClient.cpp" => http_client(msg),
        "esp_crt_bundle.c" => idf::bundle(msg),
        _ => anywhere::app_message(msg).or_else(|| library_message(msg)),
    };
    by_file.or_else(|| {
        matches!(line.level, None | Some(Level::Error | Level::Warn))
            .then(|| anywhere::message(msg).or_else(|| facts_of_failure_line(msg)))
            .flatten()
    })
}

/// The event a `[tag] message` debug line stands for.
pub(super) fn tagged(line: TaggedLine<'_>) -> Option<EventKind> {
    let msg = line.message.trim_end();
    match line.tag {
        "httpUpdate" => http_update(msg),
        "HTTP-Client" => http_client(msg),
        // The examples of both cores: `[update] Update failed.`, `[HTTPS] GET... failed, error: ...`.
        "update" => match msg {
            "Update failed." => Some(EventKind::UpdateFailed),
            "Update ok." => Some(EventKind::UpdateSucceeded { silent_bootloader: true }),
            _ => None,
        },
        "HTTP" | "HTTPS" => msg
            .split_once("failed, error: ")
            .and_then(|(_, text)| http_client_code(text))
            .map(|code| EventKind::HttpClientError { code }),
        _ => anywhere::app_message(msg).or_else(|| library_message(msg)).or_else(|| logger_failure(line.level, msg)),
    }
}

/// An error line of an application's own logger: a message any program prints, or the error it
/// names.
fn logger_failure(level: Option<Level>, msg: &str) -> Option<EventKind> {
    matches!(level, Some(Level::Error | Level::Warn))
        .then(|| anywhere::message(msg).or_else(|| facts_of_failure_line(msg)).or_else(|| anywhere::app_failure(msg)))
        .flatten()
}

/// WiFiClientSecure's `_handle_error`: `[start_ssl_client():273]: (-9984) X509 - ...`,
/// `[fn():line]: code -9984` without error strings, or (core 1.0.0–1.0.3) the text on one
/// line and `MbedTLS message code: -9984` on the next; and its connect failure.
fn ssl_client(msg: &str) -> Option<EventKind> {
    if let Some(code) = msg.strip_prefix("MbedTLS message code: ") {
        return Some(tls_error(code.trim().parse().ok()?, ""));
    }
    if let Some(info) = msg.split_once("verification info:").map(|(_, info)| info) {
        return Some(super::verify_info(info, false));
    }
    if msg.starts_with("Connect to Server failed!") {
        return Some(EventKind::ConnectFailed { errno: None });
    }
    if let Some((code, _)) = codes::mbedtls_text_at(msg) {
        return Some(tls_error(code, ""));
    }
    let (function, body) = msg.strip_prefix('[')?.split_once("]: ")?;
    let code = match body.strip_prefix('(') {
        Some(rest) => rest.split_once(')')?.0,
        None => body.strip_prefix("code ")?,
    };
    Some(tls_error(code.trim().parse().ok()?, function))
}

fn tls_error(code: i32, function: &str) -> EventKind {
    if codes::is_alloc_failure(code) {
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

/// HTTPUpdate's `log_e` lines (ESP32) and `[httpUpdate]` debug lines (ESP8266): same texts.
fn http_update(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Magic header does not start with 0xE9" => EventKind::ImageMagic { saw: None },
        "Update ok" => EventKind::UpdateSucceeded { silent_bootloader: true },
        "Update failed" => EventKind::UpdateFailed,
        _ if msg.starts_with("HTTP Code is (") => {
            let status = msg.trim_start_matches("HTTP Code is (").trim_end_matches(')');
            EventKind::HttpStatus { status: status.parse().ok() }
        }
        _ if msg.starts_with("HTTP error: ") => {
            EventKind::ArduinoUpdateError { code: http_client_code(&msg["HTTP error: ".len()..])? }
        }
        _ if msg.starts_with("FreeSketchSpace to low") => EventKind::ImageCorrupt,
        _ => return updater_error(msg),
    })
}

/// HTTPClient's `returnError(): error(-1): connection refused`, and the ESP8266 core's
/// `[HTTP-Client][handleHeaderResponse] code: 404`.
fn http_client(msg: &str) -> Option<EventKind> {
    if let Some(status) = msg.strip_prefix("code: ") {
        let status: u16 = status.trim().parse().ok()?;
        return (status >= 400).then_some(EventKind::HttpStatus { status: Some(status) });
    }
    let rest = msg.strip_prefix("error(")?;
    let (code, _) = rest.split_once(')')?;
    Some(EventKind::HttpClientError { code: code.parse().ok()? })
}

/// HTTPClient's error texts (`HTTPClient::errorToString`) → its codes.
pub(super) fn http_client_code(text: &str) -> Option<i32> {
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
    let text = text.trim().trim_end_matches('.');
    let position = TEXTS.iter().position(|t| *t == text)?;
    Some(-(position as i32) - 1)
}

/// What Arduino libraries print around an update (esp32FOTA, the Update examples), and the
/// Updater's error texts they pass on.
pub(super) fn library_message(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Got a non 200 status code from server. Exiting OTA Update." => EventKind::HttpStatus { status: None },
        "Client Timeout !" => EventKind::NetworkTimeout,
        "Not enough space to begin OTA" => EventKind::ImageCorrupt,
        "Update successfully completed. Rebooting." | "OTA done!" | "Update successfully completed." => {
            EventKind::UpdateSucceeded { silent_bootloader: true }
        }
        "There was no content in the response" | "Update not finished? Something went wrong!" => {
            EventKind::UpdateFailed
        }
        _ if msg.starts_with("Connection to ") && msg.ends_with(" failed. Please check your setup") => {
            EventKind::ConnectFailed { errno: None }
        }
        _ if msg.starts_with("Written only : ") => EventKind::DownloadCutShort,
        _ if msg.starts_with("Status: ") || msg.starts_with("Server responded with HTTP Status '") => {
            let digits = msg.trim_start_matches("Status: ").trim_start_matches("Server responded with HTTP Status '");
            let status = digits.get(..3).and_then(|d| d.parse().ok());
            EventKind::HttpStatus { status }
        }
        _ => {
            let code = ["Error Occurred. Error #: ", "An Update Error Occurred. Error #: "]
                .iter()
                .find_map(|prefix| msg.strip_prefix(prefix))
                .and_then(|code| code.trim().parse().ok());
            return code.map(|code| EventKind::ArduinoUpdateError { code }).or_else(|| updater_error(msg));
        }
    })
}

/// The Updater's error texts (Arduino-ESP32's `_err2str`, the ESP8266 core's
/// `getErrorString`) wherever a line quotes them, as the Updater error they stand for
/// (Arduino-ESP32's numbering): a summary of what failed, like the `Error #` lines.
fn updater_error(msg: &str) -> Option<EventKind> {
    const TEXTS: [(&str, i32); 7] = [
        ("Not Enough Space", 4),
        ("Stream Read Timeout", 6),
        ("MD5 Check Failed", 7),
        ("MD5 Failed", 7),
        ("Wrong Magic Byte", 8),
        ("Magic byte is wrong", 8),
        ("Could Not Activate The Firmware", 9),
    ];
    TEXTS.iter().find(|(text, _)| msg.contains(text)).map(|(_, code)| EventKind::ArduinoUpdateError { code: *code })
}
