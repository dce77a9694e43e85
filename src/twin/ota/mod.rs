//! The firmware's update client, run by the twin after the app has started: the app (one of
//! ESP-IDF's OTA examples, or any other app, whose own lines the twin does not know) calling
//! `esp_https_ota` against its OTA URL, on the lab network, with the certificate decision of
//! the real mbedTLS ([`crate::device_tls`]), in the code path of the app's generation
//! ([`crate::idf::Generation`]) and the log lines of its release: name resolution, connection,
//! handshake, HTTP status, the download into the passive OTA partition, image verification,
//! the otadata switch and the restart.
//!
//! Lines come from `esp_https_ota.c`, `esp_ota_ops.c`, `esp_tls*.c`, `transport_ssl.c`,
//! `esp_http_client.c` and the examples at the release's tag, at the app's log level.

mod connect;
mod download;
mod flow;
mod http;
mod ota_ops;

use std::sync::Mutex;

pub(crate) use flow::{UpdateEnd, run_update};
pub(crate) use ota_ops::{confirm_running_app, write_otadata};

use crate::firmware::profile::FirmwareProfile;
use crate::firmware::start::PowerCut;
use crate::idf::{Generation, IdfVersion};
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

/// The release whose update client runs: its version (patch-level details) and the generation
/// whose code path it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Release {
    pub version: IdfVersion,
    pub generation: Generation,
}

impl Release {
    /// The release a profile's version stands for; `None` when its version is unknown or no
    /// generation covers it (the twin then emulates no update client).
    pub fn of(profile: &FirmwareProfile) -> Option<Release> {
        let version = profile.release()?;
        Generation::of(version).ok().map(|generation| Release { version, generation })
    }

    fn at_least(self, major: u8, minor: u8, patch: u8) -> bool {
        self.version >= IdfVersion::new(major, minor, patch)
    }

    /// The esp-tls tag of the mbedTLS port: `esp-tls` until v4.0, `esp-tls-mbedtls` from v4.1.
    fn tls_tag(self) -> &'static str {
        if self.at_least(4, 1, 0) { "esp-tls-mbedtls" } else { "esp-tls" }
    }

    /// The SSL transport's tag: `TRANS_SSL` to v4.3, `TRANSPORT_BASE` in v4.4, `transport_base`
    /// from v5.0.
    fn transport_tag(self) -> &'static str {
        match self.generation {
            Generation::V4_4 => "TRANSPORT_BASE",
            Generation::V5_0 | Generation::V5_2 | Generation::V5_4 => "transport_base",
            _ => "TRANS_SSL",
        }
    }

    /// An mbedTLS error as esp-tls prints it: `-0x%x` to v4.3, `-0x%04X` from v4.4.
    fn mbedtls_code(self, code: i32) -> String {
        let magnitude = code.unsigned_abs();
        if self.at_least(4, 4, 0) { format!("-0x{magnitude:04X}") } else { format!("-0x{magnitude:x}") }
    }

    /// An `esp_err_t` in `err=0x...` lines: decimal digits behind `0x` to v4.2 (sic), hex from
    /// v4.3.
    fn err_code(self, code: u32) -> String {
        if self.at_least(4, 3, 0) { format!("{code:#x}") } else { format!("0x{code}") }
    }
}
