//! A build's `sdkconfig` (the `CONFIG_...` lines `idf.py menuconfig` writes), as a source of what
//! an image cannot say: date checks, rollback, the certificate bundle, the log level, the chip.

use std::collections::BTreeMap;

use super::profile::{LogLevel, Source, Sourced, Stated};
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

    /// What the `sdkconfig` states about the firmware's behaviour: date checks
    /// (`CONFIG_MBEDTLS_HAVE_TIME_DATE`), rollback (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`, or
    /// v3.3's `CONFIG_APP_ROLLBACK_ENABLE`) and the log level (`CONFIG_LOG_DEFAULT_LEVEL`).
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
    fn v3_3_spells_rollback_its_own_way() {
        let stated = Sdkconfig::parse("CONFIG_APP_ROLLBACK_ENABLE=y\n").stated();
        assert_eq!(stated.rollback.map(|r| r.value), Some(true));
    }
}
