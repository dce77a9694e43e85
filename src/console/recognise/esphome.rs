//! ESPHome's own lines: safe mode's rollback and boot-loop reports, the native OTA component
//! (old `ota` and new `esphome.ota` wording), the HTTP update components, the crash report of
//! the previous boot, and the application's start.

use super::super::event::EventKind;
use super::super::record::{EspHomeLine, Level};
use super::{anywhere, facts_of_failure_line};

/// The event an ESPHome line stands for.
pub(super) fn line(line: EspHomeLine<'_>) -> Option<EventKind> {
    let msg = line.message.trim_end();
    let by_tag = match line.tag {
        "safe_mode" | "ota" | "esphome.ota" => safe_mode(msg).or_else(|| native_ota(msg)),
        "app" => (msg == "Running through setup()...").then_some(EventKind::AppStarted),
        "esp32.crash" => msg
            .contains("CRASH DETECTED ON PREVIOUS BOOT")
            .then(|| EventKind::Panic { reason: "crash detected on previous boot".to_owned() }),
        _ if line.tag.starts_with("ota") || line.tag.ends_with(".ota") => http_ota(msg).or_else(|| native_ota(msg)),
        _ => anywhere::app_message(msg),
    };
    by_tag.or_else(|| {
        matches!(line.level, Level::Error | Level::Warn)
            .then(|| anywhere::message(msg).or_else(|| facts_of_failure_line(msg)))
            .flatten()
    })
}

/// `OTA rollback detected! Rolled back from partition 'app1'`; `Boot loop detected` (safe mode
/// after repeated unsuccessful boots).
fn safe_mode(msg: &str) -> Option<EventKind> {
    if msg.starts_with("OTA rollback detected!") {
        return Some(EventKind::RollbackReported);
    }
    msg.starts_with("Boot loop detected").then_some(EventKind::ResetLoop)
}

/// The native OTA component, pushed to by the dashboard or `esphome run`.
fn native_ota(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "OTA update finished!" | "Update complete" => EventKind::UpdateSucceeded { silent_bootloader: false },
        "Remote end closed connection" | "Remote closed connection" | "Remote closed" => EventKind::DownloadCutShort,
        "Error writing binary data to flash!" | "Error ending OTA!" | "Reading magic bytes failed!" => {
            EventKind::UpdateFailed
        }
        _ if msg.starts_with("Starting OTA Update from") || msg.starts_with("Starting update from") => {
            EventKind::OtaStarted
        }
        _ if msg.starts_with("OTA in progress: ") || msg.starts_with("Progress: ") => EventKind::OtaProgress,
        _ if msg.starts_with("Error receiving data for update") || msg.starts_with("Read err") => {
            EventKind::DownloadCutShort
        }
        _ if msg.starts_with("No data received for")
            || msg.starts_with("Timeout reading")
            || msg.starts_with("Timed out reading") =>
        {
            EventKind::NetworkTimeout
        }
        _ if msg.starts_with("Flash write err") || msg.starts_with("End update err") => EventKind::UpdateFailed,
        _ => return None,
    })
}

/// `http_request.ota` (and its forerunner, the external `ota_http`): the device downloads the
/// image itself.
fn http_ota(msg: &str) -> Option<EventKind> {
    Some(match msg {
        "Starting update..." => EventKind::UpdateCheck,
        "Stream closed" => EventKind::DownloadCutShort,
        "Failed to connect to MD5 URL" => EventKind::ConnectFailed { errno: None },
        _ if msg.starts_with("Trying to connect to ") || msg.starts_with("Connecting to: ") => EventKind::UpdateCheck,
        _ if msg.starts_with("Progress: ") => EventKind::OtaProgress,
        _ if msg.starts_with("Error code (")
            || msg.starts_with("Error ending update!")
            || msg.starts_with("backend->begin error") =>
        {
            EventKind::UpdateFailed
        }
        _ if msg.starts_with("MD5 computed") && msg.ends_with("MD5 mismatch") => EventKind::ImageCorrupt,
        _ => return None,
    })
}
