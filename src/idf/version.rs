//! ESP-IDF version strings as builds carry them (`IDF_VER`, `git describe` of the ESP-IDF
//! checkout): `v5.0.1`, `v5.2.1-533-g9f4f8e24f2`, `v4.3.1-dirty`, `v4.3-dev-2586-g526f68239`,
//! `v5.1-beta1`, `v6.0-dirty`; and the release each one stands for.

use std::fmt;

/// A released ESP-IDF version, `v4.4.8` → (4, 4, 8); a minor release is patch 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct IdfVersion {
    /// The major version: 4 in `v4.4.8`.
    pub major: u8,
    /// The minor version: 4 in `v4.4.8`.
    pub minor: u8,
    /// The patch release: 8 in `v4.4.8`; 0 for a minor release (`v4.4`).
    pub patch: u8,
}

impl IdfVersion {
    /// A version from its three numbers.
    pub const fn new(major: u8, minor: u8, patch: u8) -> Self {
        Self { major, minor, patch }
    }

    /// The release a version string stands for (see [`BuildVersion::parse`]), or `None` when the
    /// text is not an ESP-IDF version.
    ///
    /// ```
    /// use otarig::idf::IdfVersion;
    /// assert_eq!(IdfVersion::parse("v5.2.1-533-g9f4f8e24f2"), Some(IdfVersion::new(5, 2, 1)));
    /// assert_eq!(IdfVersion::parse("v4.4"), Some(IdfVersion::new(4, 4, 0)));
    /// assert_eq!(IdfVersion::parse("master"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        BuildVersion::parse(text).ok().map(|build| build.release)
    }

    /// Whether this is `major.minor` or later.
    pub(crate) fn at_least(self, major: u8, minor: u8) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The minor release this version belongs to (`v4.4.8` → `v4.4`).
    pub(crate) const fn minor_release(self) -> Self {
        Self { major: self.major, minor: self.minor, patch: 0 }
    }

    /// The app descriptor (`esp_app_desc_t`) exists from v3.3 on.
    pub fn has_app_descriptor(self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }

    /// Bootloader rollback exists from v3.3 on (`CONFIG_APP_ROLLBACK_ENABLE`, later
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`).
    pub(crate) fn has_rollback(self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }

    /// The certificate bundle formats the rig knows start with v4.4 (big-endian records;
    /// v5.4 moved to an offset table).
    pub(crate) fn has_certificate_bundle(self) -> bool {
        (self.major, self.minor) >= (4, 4)
    }
}

impl fmt::Display for IdfVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(f, "v{}.{}", self.major, self.minor)
        } else {
            write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

/// A pre-release marker after the version numbers: `-dev`, `-beta1`, `-rc2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreRelease {
    /// The start of a release's development on ESP-IDF's master branch (`v4.3-dev`): such a
    /// build comes before the release, after the previous one branched.
    Dev,
    /// A beta of the release (`-beta1` → 1).
    Beta(u8),
    /// A release candidate (`-rc2` → 2).
    Rc(u8),
}

/// A version string as a build states it, with what it says beyond the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildVersion {
    /// As written.
    pub text: String,
    /// The release the string is described from (`v5.2.1` for `v5.2.1-533-g9f4f8e24f2`; `v4.3`
    /// for `v4.3-dev-2586-g526f68239`).
    pub release: IdfVersion,
    /// The pre-release marker, when the string has one (`-dev`, `-beta1`, `-rc2`).
    pub pre: Option<PreRelease>,
    /// Commits past the tag (`git describe`'s count), when the checkout was not at a tag.
    pub(crate) commits_after: Option<u32>,
    /// The abbreviated commit (`g` removed), when `git describe` gave one.
    pub commit: Option<String>,
    /// The ESP-IDF checkout had local changes (`-dirty`).
    pub dirty: bool,
}

/// Why a text is not an ESP-IDF version string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The text does not start with a version (`v` optional).
    #[error("no `vMAJOR.MINOR` at its start")]
    NoNumbers,
    /// Something follows the version that `git describe` does not write.
    #[error("`{0}` is not something `git describe` of ESP-IDF writes after the version")]
    Suffix(String),
}

impl BuildVersion {
    /// Reads `vMAJOR.MINOR[.PATCH][-dev|-betaN|-rcN][-COUNT-gHASH][-dirty]`, the `v` optional.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let trimmed = text.trim();
        let body = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let (numbers, suffix) = body.split_at(body.find('-').unwrap_or(body.len()));
        let release = numbers_of(numbers).ok_or(VersionError::NoNumbers)?;
        let mut build = BuildVersion {
            text: trimmed.to_owned(),
            release,
            pre: None,
            commits_after: None,
            commit: None,
            dirty: false,
        };
        let mut parts = suffix.split('-').skip(1).peekable();
        if let Some(pre) = parts.peek().and_then(|part| pre_release(part)) {
            build.pre = Some(pre);
            parts.next();
        }
        let rest: Vec<&str> = parts.collect();
        let rest = match rest.as_slice() {
            [.., "dirty"] => {
                build.dirty = true;
                &rest[..rest.len() - 1]
            }
            _ => &rest[..],
        };
        match rest {
            [] => {}
            [count, hash] if count.parse::<u32>().is_ok() && is_commit(hash) => {
                build.commits_after = count.parse().ok();
                build.commit = Some(hash[1..].to_owned());
            }
            _ => return Err(VersionError::Suffix(rest.join("-"))),
        }
        Ok(build)
    }

    #[cfg(test)]
    /// Whether the string is the release itself (a tag, clean checkout).
    pub(crate) fn is_release(&self) -> bool {
        self.pre.is_none() && self.commits_after.is_none() && !self.dirty
    }

    /// How the build relates to its release, for people: `""`, `533 commits after v5.2.1`,
    /// `development before v4.3`, `with local changes`.
    pub fn relation(&self) -> String {
        let mut parts = Vec::new();
        match &self.pre {
            Some(PreRelease::Dev) => parts.push(format!("development before {}", self.release)),
            Some(PreRelease::Beta(n)) => parts.push(format!("beta {n} of {}", self.release)),
            Some(PreRelease::Rc(n)) => parts.push(format!("release candidate {n} of {}", self.release)),
            None => {}
        }
        if let Some(count) = self.commits_after {
            parts.push(format!("{count} commits after its tag"));
        }
        if self.dirty {
            parts.push("with local changes".to_owned());
        }
        parts.join(", ")
    }
}

impl fmt::Display for BuildVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `4.4`, `4.4.8` → the version; every part a small number.
fn numbers_of(text: &str) -> Option<IdfVersion> {
    let mut parts = text.split('.');
    let mut number = || -> Option<Option<u8>> {
        match parts.next() {
            None => Some(None),
            Some(part) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => part.parse().ok().map(Some),
            Some(_) => None,
        }
    };
    let major = number()??;
    let minor = number()??;
    let patch = number()?.unwrap_or(0);
    parts.next().is_none().then_some(IdfVersion { major, minor, patch })
}

fn pre_release(part: &str) -> Option<PreRelease> {
    let number = |digits: &str| if digits.is_empty() { Some(1) } else { digits.parse().ok() };
    match part {
        "dev" => Some(PreRelease::Dev),
        _ => {
            if let Some(digits) = part.strip_prefix("beta") {
                number(digits).map(PreRelease::Beta)
            } else {
                part.strip_prefix("rc").and_then(number).map(PreRelease::Rc)
            }
        }
    }
}

/// `git describe`'s `gHASH`: `g` and at least 7 hex digits.
fn is_commit(part: &str) -> bool {
    part.strip_prefix('g').is_some_and(|hex| hex.len() >= 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// ESP-IDF version strings in a build's bytes (`IDF_VER` as `esp_get_idf_version()` returns
/// it, and the bootloader's banner argument): every NUL-terminated run of printable bytes that
/// parses as one, with its offset, in order.
pub(crate) fn find_versions(bytes: &[u8]) -> Vec<(usize, BuildVersion)> {
    let mut found = Vec::new();
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if byte == 0 {
            let run = &bytes[start..at];
            if (4..=32).contains(&run.len())
                && run[0] == b'v'
                && run[1].is_ascii_digit()
                && let Ok(text) = std::str::from_utf8(run)
                && let Ok(version) = BuildVersion::parse(text)
                && (3..=9).contains(&version.release.major)
            {
                found.push((start, version));
            }
        }
        if byte == 0 || !(0x20..0x7F).contains(&byte) {
            start = at + 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (IdfVersion, Option<PreRelease>, Option<u32>, Option<String>, bool) {
        let b = BuildVersion::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (b.release, b.pre, b.commits_after, b.commit, b.dirty)
    }

    #[test]
    fn every_form_real_builds_carry() {
        let v = IdfVersion::new;
        assert_eq!(parts("v5.0.1"), (v(5, 0, 1), None, None, None, false));
        assert_eq!(parts("v5.2.1-533-g9f4f8e24f2"), (v(5, 2, 1), None, Some(533), Some("9f4f8e24f2".into()), false));
        assert_eq!(parts("v4.3.1-dirty"), (v(4, 3, 1), None, None, None, true));
        assert_eq!(
            parts("v4.3-dev-2586-g526f68239"),
            (v(4, 3, 0), Some(PreRelease::Dev), Some(2586), Some("526f68239".into()), false)
        );
        assert_eq!(parts("v6.0-dirty"), (v(6, 0, 0), None, None, None, true));
        assert_eq!(parts("v3.2.3-14-gd3e562907"), (v(3, 2, 3), None, Some(14), Some("d3e562907".into()), false));
        assert_eq!(parts("v5.1-beta1"), (v(5, 1, 0), Some(PreRelease::Beta(1)), None, None, false));
        assert_eq!(parts("v4.4-rc1-12-gabcdef1-dirty").1, Some(PreRelease::Rc(1)));
        assert_eq!(parts("4.4.8"), (v(4, 4, 8), None, None, None, false));
        assert!(BuildVersion::parse("v4.4").unwrap().is_release());
        assert!(!BuildVersion::parse("v4.4-dirty").unwrap().is_release());
    }

    #[test]
    fn what_is_not_a_version_is_refused() {
        assert_eq!(BuildVersion::parse("master"), Err(VersionError::NoNumbers));
        assert_eq!(BuildVersion::parse("v5"), Err(VersionError::NoNumbers));
        assert_eq!(BuildVersion::parse("v5.x"), Err(VersionError::NoNumbers));
        assert_eq!(BuildVersion::parse("v1.2.3.4"), Err(VersionError::NoNumbers));
        assert_eq!(BuildVersion::parse("esp-idf: v4.4.4 e8bdaf9198"), Err(VersionError::NoNumbers));
        assert_eq!(BuildVersion::parse("v4.4-foo"), Err(VersionError::Suffix("foo".into())));
        assert_eq!(BuildVersion::parse("v4.4-12-nothex"), Err(VersionError::Suffix("12-nothex".into())));
        assert_eq!(BuildVersion::parse("v999.1"), Err(VersionError::NoNumbers));
    }

    #[test]
    fn relations_read_for_people() {
        let relation = |text: &str| BuildVersion::parse(text).unwrap().relation();
        assert_eq!(relation("v5.0.1"), "");
        assert_eq!(relation("v5.2.1-533-g9f4f8e24f2"), "533 commits after its tag");
        assert_eq!(relation("v4.3-dev-2586-g526f68239"), "development before v4.3, 2586 commits after its tag");
        assert_eq!(relation("v6.0-dirty"), "with local changes");
    }

    #[test]
    fn versions_are_found_in_a_builds_strings() {
        let bytes = b"\0abc\0v3.2.3-14-gd3e562907\0x\x01v9.9\0v4.4\0vv\0v1.0\0ESP-IDF %s\0";
        let found: Vec<String> = find_versions(bytes).into_iter().map(|(_, v)| v.text).collect();
        assert_eq!(found, ["v3.2.3-14-gd3e562907", "v9.9", "v4.4"]);
    }
}
