//! The firmware's update client, run by the twin after the app has started: ESP-IDF's
//! `simple_ota_example` calling `esp_https_ota` against the URL the image carries, on the
//! lab network, with the certificate decision of the real mbedTLS ([`crate::device_tls`]), in
//! the code paths and log lines of the app's ESP-IDF generation (v3.2, v4.4, v5.0–v5.3,
//! v5.4+): name resolution, connection, handshake, HTTP status, the download streamed into the
//! passive OTA partition, image verification, the otadata switch and the restart.
//!
//! Lines come from `esp_https_ota.c`, `esp_ota_ops.c`, `esp_tls*.c`, `transport_ssl.c`,
//! `esp_http_client.c` and the example of that generation, at the default INFO level.

mod flow;
mod http;
mod ota_ops;

use std::sync::Mutex;

pub(crate) use flow::{UpdateEnd, run_update};
pub(crate) use ota_ops::{confirm_running_app, write_otadata};

use crate::firmware::profile::FirmwareProfile;
use crate::firmware::start::PowerCut;
use crate::idf::IdfVersion;
use crate::twin::flash::VirtualFlash;
use crate::twin::network::LabNetwork;

/// What the update client needs from the device.
pub(crate) struct Device<'a> {
    pub flash: &'a Mutex<VirtualFlash>,
    pub network: &'a LabNetwork,
    pub profile: &'a FirmwareProfile,
    /// Offset of the partition the running app was loaded from.
    pub running: u32,
    /// Where the power goes, if the rig armed a cut.
    pub power_cut: Option<PowerCut>,
}

/// The ESP-IDF generations whose update code differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Generation {
    /// v3.x: one `esp_https_ota` function, esp-tls in one file, `TRANS_SSL`.
    V3,
    /// v4.x: begin/perform/finish, `esp-tls-mbedtls`, `TRANSPORT_BASE`.
    V4,
    /// v5.0–v5.3: `transport_base`, the v5 example.
    V5,
    /// v5.4+: partitions named by label, the rewritten bundle.
    V5_4,
}

impl Generation {
    fn of(idf: IdfVersion) -> Generation {
        match (idf.major, idf.minor) {
            (..=3, _) => Generation::V3,
            (4, _) => Generation::V4,
            (5, ..=3) => Generation::V5,
            _ => Generation::V5_4,
        }
    }

    /// The esp-tls tag of the mbedTLS port.
    fn tls_tag(self) -> &'static str {
        if self == Generation::V3 { "esp-tls" } else { "esp-tls-mbedtls" }
    }

    /// The SSL transport's tag.
    fn transport_tag(self) -> &'static str {
        match self {
            Generation::V3 => "TRANS_SSL",
            Generation::V4 => "TRANSPORT_BASE",
            Generation::V5 | Generation::V5_4 => "transport_base",
        }
    }

    /// An mbedTLS error as esp-tls prints it: v3.2 `-0x%x`, later `-0x%04X`.
    fn mbedtls_code(self, code: i32) -> String {
        let magnitude = code.unsigned_abs();
        if self == Generation::V3 { format!("-0x{magnitude:x}") } else { format!("-0x{magnitude:04X}") }
    }

    /// The example's failure line.
    fn upgrade_failed(self) -> &'static str {
        if self == Generation::V3 { "Firmware Upgrades Failed" } else { "Firmware upgrade failed" }
    }
}
