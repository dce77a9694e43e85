//! ESP-IDF releases: version strings as builds and manifests carry them, and what each release
//! has (the facts the twin, `predict` and the fleet's manifests depend on).

/// An ESP-IDF version, `v4.4.8` → (4, 4, 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct IdfVersion {
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

impl IdfVersion {
    /// `v3.2`, `v4.4.8`, `5.2` → a version.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix('v').unwrap_or(text).split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().unwrap_or("0").parse().ok()?;
        let patch = parts.next().unwrap_or("0").parse().ok()?;
        parts.next().is_none().then_some(Self { major, minor, patch })
    }

    /// The app descriptor (`esp_app_desc_t`) exists from v3.3 on.
    pub fn has_app_descriptor(self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }

    /// Bootloader rollback exists from v3.3 on (`CONFIG_APP_ROLLBACK_ENABLE`, later
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`).
    pub fn has_rollback(self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }

    /// The certificate bundle formats the rig knows start with v4.4 (big-endian records;
    /// v5.4 moved to an offset table).
    pub fn has_certificate_bundle(self) -> bool {
        (self.major, self.minor) >= (4, 4)
    }
}

impl std::fmt::Display for IdfVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.patch == 0 {
            write!(f, "v{}.{}", self.major, self.minor)
        } else {
            write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}
