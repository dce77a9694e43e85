//! Which behaviour the rig emulates for an ESP-IDF release: the generations whose update path
//! or log lines differ (read from ESP-IDF's source at the tags), and the mbedTLS each release
//! ships. A version no generation covers is refused, never mapped to a neighbour.

use std::fmt;

use super::IdfVersion;

/// The ESP-IDF generations whose update client (`esp_https_ota`, esp-tls, the HTTP client and
/// the transport) the twin emulates, each from the source of one tag, in release order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Generation {
    /// v3.1–v3.2.x: one `esp_https_ota()` function, no HTTP status check, the whole partition
    /// erased first, `err=0x%d` (decimal behind `0x`), esp-tls in one file (lines of v3.2).
    V3_1,
    /// v3.3–v4.2.x: begin/perform/finish behind `esp_https_ota()`, still no HTTP status check
    /// (a 404 page is written to flash and fails as an image), blocking connect, `TRANS_SSL`,
    /// the verification reason at INFO (lines of v4.2.5).
    V3_3,
    /// v4.3.x: HTTP status refused (`File not found`, `Server error`), codes in hex, sequential
    /// erase (lines of v4.3.7).
    V4_3,
    /// v4.4.x: non-blocking connect (`[sock=N] ...`), `TRANSPORT_BASE`, the verification reason
    /// at DEBUG (lines of v4.4.8).
    V4_4,
    /// v5.0–v5.1.x: `transport_base`, a 1024-byte header read, the certificate bundle's failure
    /// without esp-tls's own verification lines (lines of v5.1.6).
    V5_0,
    /// v5.2–v5.3.x: esp-tls prints `Failed to verify peer certificate!` for the bundle too
    /// (lines of v5.2.5).
    V5_2,
    /// v5.4 and later: partitions named by label, the rewritten bundle and its lines, no colours
    /// by default (lines of v5.4.2; v5.5 and v6.0 run it too, with the differences the README
    /// lists).
    V5_4,
}

/// The first and last minor release of each generation, and the tag its lines were read at.
const TABLE: [(Generation, IdfVersion, IdfVersion, &str); 7] = [
    (Generation::V3_1, IdfVersion::new(3, 1, 0), IdfVersion::new(3, 2, u8::MAX), "v3.2"),
    (Generation::V3_3, IdfVersion::new(3, 3, 0), IdfVersion::new(4, 2, u8::MAX), "v4.2.5"),
    (Generation::V4_3, IdfVersion::new(4, 3, 0), IdfVersion::new(4, 3, u8::MAX), "v4.3.7"),
    (Generation::V4_4, IdfVersion::new(4, 4, 0), IdfVersion::new(4, 4, u8::MAX), "v4.4.8"),
    (Generation::V5_0, IdfVersion::new(5, 0, 0), IdfVersion::new(5, 1, u8::MAX), "v5.1.6"),
    (Generation::V5_2, IdfVersion::new(5, 2, 0), IdfVersion::new(5, 3, u8::MAX), "v5.2.5"),
    (Generation::V5_4, IdfVersion::new(5, 4, 0), IdfVersion::new(6, 0, u8::MAX), "v5.4.2"),
];

/// A release no generation covers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ESP-IDF {version} is not emulated: {reason}; supported: v3.1 to v6.0")]
pub struct Unsupported {
    /// The release asked for.
    pub version: IdfVersion,
    /// Why it is not emulated (before the first generation, after the last).
    pub reason: &'static str,
}

impl Generation {
    /// The generation that emulates `version`.
    ///
    /// ```
    /// use otarig::idf::{Generation, IdfVersion};
    /// assert_eq!(Generation::of(IdfVersion::new(4, 1, 2)), Ok(Generation::V3_3));
    /// assert!(Generation::of(IdfVersion::new(3, 0, 7)).is_err()); // no esp_https_ota yet
    /// ```
    pub fn of(version: IdfVersion) -> Result<Generation, Unsupported> {
        if version < IdfVersion::new(3, 1, 0) {
            let reason = if version.major == 3 {
                "v3.0 has no esp_https_ota component (its apps update with their own code)"
            } else {
                "it predates esp_https_ota"
            };
            return Err(Unsupported { version, reason });
        }
        TABLE
            .iter()
            .find(|(_, first, last, _)| (*first..=*last).contains(&version))
            .map(|(generation, ..)| *generation)
            .ok_or(Unsupported { version, reason: "it is newer than the releases whose source the twin follows" })
    }

    /// Every generation, in release order.
    pub fn all() -> impl Iterator<Item = Generation> {
        TABLE.iter().map(|(generation, ..)| *generation)
    }

    /// The minor releases it covers, for people: `v3.3–v4.2`.
    pub(crate) fn releases(self) -> String {
        let (_, first, last, _) = self.row();
        let (first, last) = (first.minor_release(), last.minor_release());
        if first == last { first.to_string() } else { format!("{first}–{last}") }
    }

    /// The ESP-IDF tag whose source its lines follow.
    pub(crate) fn source_tag(self) -> &'static str {
        self.row().3
    }

    fn row(self) -> &'static (Generation, IdfVersion, IdfVersion, &'static str) {
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }
}

impl fmt::Display for Generation {
    /// `v3.3–v4.2 (lines of v4.2.5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (lines of {})", self.releases(), self.source_tag())
    }
}

/// The mbedTLS version an ESP-IDF release ships (its `components/mbedtls` submodule at the
/// tag), as `(major, minor, patch)`; `None` before v3.1.
pub fn mbedtls_of(version: IdfVersion) -> Option<(u8, u8, u8)> {
    let v = |major, minor, patch| (version.major, version.minor) == (major, minor) && version.patch >= patch;
    // Per minor release, the patch from which each mbedTLS shipped (later rows first).
    let shipped = match (version.major, version.minor) {
        (3, 1) => (2, 12, 0),
        (3, 2) => (2, 13, 1),
        (3, 3) if v(3, 3, 6) => (2, 16, 11),
        (3, 3) if v(3, 3, 5) => (2, 16, 7),
        (3, 3) if v(3, 3, 3) => (2, 16, 5),
        (3, 3) => (2, 16, 2),
        (4, 0) if v(4, 0, 4) => (2, 16, 11),
        (4, 0) if v(4, 0, 3) => (2, 16, 9),
        (4, 0) if v(4, 0, 2) => (2, 16, 7),
        (4, 0) if v(4, 0, 1) => (2, 16, 5),
        (4, 0) => (2, 16, 2),
        (4, 1) if v(4, 1, 3) => (2, 16, 12),
        (4, 1) if v(4, 1, 2) => (2, 16, 9),
        (4, 1) if v(4, 1, 1) => (2, 16, 7),
        (4, 1) => (2, 16, 5),
        (4, 2) if v(4, 2, 3) => (2, 16, 12),
        (4, 2) if v(4, 2, 1) => (2, 16, 9),
        (4, 2) => (2, 16, 7),
        (4, 3) if v(4, 3, 7) => (2, 28, 5),
        (4, 3) if v(4, 3, 6) => (2, 28, 3),
        (4, 3) if v(4, 3, 4) => (2, 28, 1),
        (4, 3) if v(4, 3, 3) => (2, 28, 0),
        (4, 3) if v(4, 3, 1) => (2, 16, 11),
        (4, 3) => (2, 16, 9),
        (4, 4) if v(4, 4, 8) => (2, 28, 8),
        (4, 4) if v(4, 4, 7) => (2, 28, 7),
        (4, 4) if v(4, 4, 6) => (2, 28, 4),
        (4, 4) if v(4, 4, 5) => (2, 28, 3),
        (4, 4) if v(4, 4, 2) => (2, 28, 1),
        (4, 4) if v(4, 4, 1) => (2, 28, 0),
        (4, 4) => (2, 16, 12),
        (5, 0) if v(5, 0, 9) => (3, 6, 3),
        (5, 0) if v(5, 0, 8) => (3, 6, 2),
        (5, 0) if v(5, 0, 7) => (3, 6, 0),
        (5, 0) if v(5, 0, 5) => (3, 5, 0),
        (5, 0) if v(5, 0, 4) => (3, 4, 1),
        (5, 0) if v(5, 0, 3) => (3, 4, 0),
        (5, 0) if v(5, 0, 2) => (3, 3, 0),
        (5, 0) => (3, 2, 1),
        (5, 1) if v(5, 1, 7) => (3, 6, 5),
        (5, 1) if v(5, 1, 6) => (3, 6, 2),
        (5, 1) if v(5, 1, 5) => (3, 6, 1),
        (5, 1) if v(5, 1, 4) => (3, 5, 2),
        (5, 1) if v(5, 1, 2) => (3, 5, 0),
        (5, 1) => (3, 4, 0),
        (5, 2) if v(5, 2, 7) => (3, 6, 6),
        (5, 2) if v(5, 2, 6) => (3, 6, 4),
        (5, 2) if v(5, 2, 4) => (3, 6, 2),
        (5, 2) if v(5, 2, 2) => (3, 6, 0),
        (5, 2) if v(5, 2, 1) => (3, 5, 2),
        (5, 2) => (3, 5, 0),
        (5, 3) if v(5, 3, 5) => (3, 6, 5),
        (5, 3) if v(5, 3, 4) => (3, 6, 4),
        (5, 3) if v(5, 3, 2) => (3, 6, 2),
        (5, 3) => (3, 6, 0),
        (5, 4) if v(5, 4, 4) => (3, 6, 5),
        (5, 4) if v(5, 4, 3) => (3, 6, 4),
        (5, 4) if v(5, 4, 2) => (3, 6, 3),
        (5, 4) => (3, 6, 2),
        (5, 5) if v(5, 5, 5) => (3, 6, 6),
        (5, 5) if v(5, 5, 2) => (3, 6, 5),
        (5, 5) if v(5, 5, 1) => (3, 6, 4),
        (5, 5) => (3, 6, 3),
        (6, 0) if v(6, 0, 2) => (4, 1, 1),
        (6, 0) => (4, 0, 0),
        _ => return None,
    };
    Some(shipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_minor_release_from_v3_1_to_v6_0_has_one_generation() {
        let v = IdfVersion::new;
        let check = |version: IdfVersion, generation| assert_eq!(Generation::of(version), Ok(generation), "{version}");
        check(v(3, 1, 7), Generation::V3_1);
        check(v(3, 2, 0), Generation::V3_1);
        check(v(3, 3, 6), Generation::V3_3);
        check(v(4, 0, 0), Generation::V3_3);
        check(v(4, 2, 5), Generation::V3_3);
        check(v(4, 3, 0), Generation::V4_3);
        check(v(4, 4, 0), Generation::V4_4);
        check(v(4, 4, 8), Generation::V4_4);
        check(v(5, 0, 1), Generation::V5_0);
        check(v(5, 1, 6), Generation::V5_0);
        check(v(5, 2, 5), Generation::V5_2);
        check(v(5, 3, 3), Generation::V5_2);
        check(v(5, 4, 2), Generation::V5_4);
        check(v(5, 5, 1), Generation::V5_4);
        check(v(6, 0, 0), Generation::V5_4);
        assert!(Generation::of(v(3, 0, 0)).unwrap_err().reason.contains("esp_https_ota"));
        assert!(Generation::of(v(2, 1, 0)).is_err());
        assert!(Generation::of(v(6, 1, 0)).is_err());
        let releases: Vec<String> = Generation::all().map(Generation::releases).collect();
        assert_eq!(releases, ["v3.1–v3.2", "v3.3–v4.2", "v4.3", "v4.4", "v5.0–v5.1", "v5.2–v5.3", "v5.4–v6.0"]);
    }

    #[test]
    fn each_release_ships_its_own_mbedtls() {
        let m = |major, minor, patch| mbedtls_of(IdfVersion::new(major, minor, patch));
        assert_eq!(m(3, 2, 0), Some((2, 13, 1)));
        assert_eq!(m(4, 4, 0), Some((2, 16, 12)));
        assert_eq!(m(4, 4, 1), Some((2, 28, 0)));
        assert_eq!(m(4, 4, 8), Some((2, 28, 8)));
        assert_eq!(m(5, 0, 1), Some((3, 2, 1)));
        assert_eq!(m(5, 1, 2), Some((3, 5, 0)));
        assert_eq!(m(5, 2, 0), Some((3, 5, 0)));
        assert_eq!(m(5, 2, 5), Some((3, 6, 2)));
        assert_eq!(m(5, 4, 2), Some((3, 6, 3)));
        assert_eq!(m(6, 0, 0), Some((4, 0, 0)));
        assert_eq!(m(3, 0, 0), None);
    }
}
