//! A build's `sdkconfig` (the `CONFIG_...` lines `idf.py menuconfig` writes), as a source of what
//! an image cannot say: date checks, rollback, the certificate bundle, the log level, the chip.

use std::collections::BTreeMap;

use super::profile::{LogLevel, Source, Sourced, Stated};
use crate::device_tls::{Curve, Curves};
use crate::image::Chip;

/// The options of an `sdkconfig`: `CONFIG_X=value` lines, and `# CONFIG_X is not set` as `n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sdkconfig {
    options: BTreeMap<String, String>,
}

impl Sdkconfig {
    /// Reads the text; lines of other shapes (comments, blanks) are skipped.
    pub fn parse(text: &str) -> Self {
        let mut options = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("# ")
                && let Some(name) = rest.strip_suffix(" is not set")
                && name.starts_with("CONFIG_")
            {
                options.insert(name.to_owned(), "n".to_owned());
            } else if let Some((name, value)) = line.split_once('=')
                && name.starts_with("CONFIG_")
            {
                options.insert(name.to_owned(), value.trim_matches('"').to_owned());
            }
        }
        Self { options }
    }

    /// An option's value (`y`, `n`, a number, a string without its quotes).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|value| value == "y")
    }

    /// The chip the build targets (`CONFIG_IDF_TARGET`, v4.0+; older builds are ESP32 only).
    pub fn chip(&self) -> Option<Chip> {
        Chip::from_config_name(self.get("CONFIG_IDF_TARGET")?)
    }

    #[cfg(test)]
    /// Whether the build includes ESP-IDF's certificate bundle.
    pub fn certificate_bundle(&self) -> Option<bool> {
        self.flag("CONFIG_MBEDTLS_CERTIFICATE_BUNDLE")
    }

    /// The curves the build turned off (`# CONFIG_MBEDTLS_ECP_DP_<CURVE>_ENABLED is not set`);
    /// `None` when the file names no curve option.
    fn curves_off(&self) -> Option<Curves> {
        let options: Vec<(Curve, bool)> =
            Curve::ALL.into_iter().filter_map(|curve| Some((curve, self.flag(&curve.kconfig())?))).collect();
        (!options.is_empty())
            .then(|| Curves::of(&options.iter().filter(|(_, on)| !on).map(|(curve, _)| *curve).collect::<Vec<_>>()))
    }

    /// The TLS input buffer's content length: `CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN` with
    /// `CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN` (v3.2 on), else `CONFIG_MBEDTLS_SSL_MAX_CONTENT_LEN`
    /// (both buffers). A build with `CONFIG_MBEDTLS_DYNAMIC_BUFFER` sizes its buffer per record
    /// (`esp_mbedtls_add_rx_buffer`), which is not emulated: its file states nothing here.
    fn tls_in_content_len(&self) -> Option<u32> {
        if self.flag("CONFIG_MBEDTLS_DYNAMIC_BUFFER") == Some(true) {
            return None;
        }
        let name = if self.flag("CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN") == Some(true) {
            "CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN"
        } else {
            "CONFIG_MBEDTLS_SSL_MAX_CONTENT_LEN"
        };
        self.get(name).and_then(|n| n.parse().ok())
    }

    /// What the `sdkconfig` states about the firmware's behaviour: date checks
    /// (`CONFIG_MBEDTLS_HAVE_TIME_DATE`), rollback (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`, or
    /// v3.3's `CONFIG_APP_ROLLBACK_ENABLE`), the log level (`CONFIG_LOG_DEFAULT_LEVEL`), the
    /// curves turned off and the TLS input buffer.
    pub(crate) fn stated(&self) -> Stated {
        let sourced = |value| Sourced::new(value, Source::Sdkconfig);
        let rollback =
            self.flag("CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE").or_else(|| self.flag("CONFIG_APP_ROLLBACK_ENABLE"));
        let log_level =
            self.get("CONFIG_LOG_DEFAULT_LEVEL").and_then(|n| n.parse().ok()).and_then(LogLevel::from_number);
        Stated {
            time_check: self.flag("CONFIG_MBEDTLS_HAVE_TIME_DATE").map(sourced),
            rollback: rollback.map(sourced),
            log_level: log_level.map(|level| Sourced::new(level, Source::Sdkconfig)),
            curves_off: self.curves_off().map(|curves| Sourced::new(curves, Source::Sdkconfig)),
            tls_in_content_len: self.tls_in_content_len().map(|len| Sourced::new(len, Source::Sdkconfig)),
            ..Stated::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "#\n# Automatically generated file. DO NOT EDIT.\n#\nCONFIG_IDF_TARGET=\"esp32\"\n\
        # CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE is not set\nCONFIG_LOG_DEFAULT_LEVEL_INFO=y\n\
        CONFIG_LOG_DEFAULT_LEVEL=3\n# CONFIG_MBEDTLS_CERTIFICATE_BUNDLE is not set\nCONFIG_MBEDTLS_HAVE_TIME_DATE=y\n";

    #[test]
    fn options_and_what_they_state() {
        let config = Sdkconfig::parse(TEXT);
        assert_eq!(config.chip(), Some(Chip::Esp32));
        assert_eq!(config.certificate_bundle(), Some(false));
        let stated = config.stated();
        assert_eq!(stated.time_check, Some(Sourced::new(true, Source::Sdkconfig)));
        assert_eq!(stated.rollback, Some(Sourced::new(false, Source::Sdkconfig)));
        assert_eq!(stated.log_level.map(|l| l.value), Some(LogLevel::Info));
        assert_eq!(Sdkconfig::parse("").stated(), Stated::default());
    }

    #[test]
    fn curves_and_the_input_buffer() {
        // v4.4's menuconfig output for a build without P-384 and a 4 KB input buffer.
        let text = "CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN=y\nCONFIG_MBEDTLS_SSL_IN_CONTENT_LEN=4096\n\
            CONFIG_MBEDTLS_SSL_OUT_CONTENT_LEN=4096\nCONFIG_MBEDTLS_ECP_DP_SECP256R1_ENABLED=y\n\
            # CONFIG_MBEDTLS_ECP_DP_SECP384R1_ENABLED is not set\n";
        let stated = Sdkconfig::parse(text).stated();
        assert_eq!(stated.curves_off.map(|c| c.value), Some(Curves::of(&[Curve::Secp384r1])));
        assert_eq!(stated.tls_in_content_len, Some(Sourced::new(4096, Source::Sdkconfig)));
        // v3.2 without the asymmetric option: one length for both buffers.
        let old = Sdkconfig::parse(
            "# CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN is not set\nCONFIG_MBEDTLS_SSL_MAX_CONTENT_LEN=8192\n",
        );
        assert_eq!(old.stated().tls_in_content_len.map(|l| l.value), Some(8192));
        assert_eq!(old.stated().curves_off, None, "no curve option: nothing stated");
        // A dynamic buffer is sized per record: not stated.
        let dynamic = Sdkconfig::parse(&format!("{text}CONFIG_MBEDTLS_DYNAMIC_BUFFER=y\n"));
        assert_eq!(dynamic.stated().tls_in_content_len, None);
    }

    #[test]
    fn v3_3_spells_rollback_its_own_way() {
        let stated = Sdkconfig::parse("CONFIG_APP_ROLLBACK_ENABLE=y\n").stated();
        assert_eq!(stated.rollback.map(|r| r.value), Some(true));
    }
}
