//! Where a firmware's build departs from its ESP-IDF release's default mbedTLS configuration in
//! a way its TLS client shows: curves left out (`CONFIG_MBEDTLS_ECP_DP_<CURVE>_ENABLED` off in
//! `components/mbedtls/Kconfig`) and a smaller TLS input buffer
//! (`CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN` with `CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN`, v3.2 on;
//! `CONFIG_MBEDTLS_SSL_MAX_CONTENT_LEN` without it, and in v3.1).

use std::fmt;

use mbedtls::pk::EcGroupId;
use serde::{Serialize, Serializer};

/// `MBEDTLS_SSL_IN_CONTENT_LEN` of ESP-IDF's default configuration (every release), which is
/// also TLS's largest record plaintext.
pub const DEFAULT_IN_CONTENT_LEN: u32 = 16_384;

/// The smallest `CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN` (or `_MAX_CONTENT_LEN`) the Kconfig accepts
/// (`range 512 16384` at every tag).
pub const MIN_IN_CONTENT_LEN: u32 = 512;

/// An elliptic curve ESP-IDF's Kconfig can leave out of mbedTLS, by the name its option
/// carries (`CONFIG_MBEDTLS_ECP_DP_SECP384R1_ENABLED`: `secp384r1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Curve {
    /// NIST P-192.
    Secp192r1,
    /// NIST P-224.
    Secp224r1,
    /// NIST P-256.
    Secp256r1,
    /// NIST P-384.
    Secp384r1,
    /// NIST P-521.
    Secp521r1,
    /// Koblitz 192.
    Secp192k1,
    /// Koblitz 224.
    Secp224k1,
    /// Koblitz 256.
    Secp256k1,
    /// brainpoolP256r1.
    Bp256r1,
    /// brainpoolP384r1.
    Bp384r1,
    /// brainpoolP512r1.
    Bp512r1,
    /// X25519 (key exchange only).
    Curve25519,
}

impl Curve {
    /// Every curve the Kconfig names, in its order.
    pub const ALL: [Curve; 12] = [
        Curve::Secp192r1,
        Curve::Secp224r1,
        Curve::Secp256r1,
        Curve::Secp384r1,
        Curve::Secp521r1,
        Curve::Secp192k1,
        Curve::Secp224k1,
        Curve::Secp256k1,
        Curve::Bp256r1,
        Curve::Bp384r1,
        Curve::Bp512r1,
        Curve::Curve25519,
    ];

    /// The name a manifest uses: the Kconfig option's curve in lower case (`secp384r1`).
    pub fn name(self) -> &'static str {
        match self {
            Curve::Secp192r1 => "secp192r1",
            Curve::Secp224r1 => "secp224r1",
            Curve::Secp256r1 => "secp256r1",
            Curve::Secp384r1 => "secp384r1",
            Curve::Secp521r1 => "secp521r1",
            Curve::Secp192k1 => "secp192k1",
            Curve::Secp224k1 => "secp224k1",
            Curve::Secp256k1 => "secp256k1",
            Curve::Bp256r1 => "bp256r1",
            Curve::Bp384r1 => "bp384r1",
            Curve::Bp512r1 => "bp512r1",
            Curve::Curve25519 => "curve25519",
        }
    }

    /// The curve a manifest names.
    pub fn from_name(name: &str) -> Option<Curve> {
        Curve::ALL.into_iter().find(|curve| curve.name() == name)
    }

    /// Its option in an `sdkconfig` (`CONFIG_MBEDTLS_ECP_DP_SECP384R1_ENABLED`).
    pub fn kconfig(self) -> String {
        format!("CONFIG_MBEDTLS_ECP_DP_{}_ENABLED", self.name().to_ascii_uppercase())
    }

    /// The linked library's group id.
    pub(crate) fn group(self) -> EcGroupId {
        match self {
            Curve::Secp192r1 => EcGroupId::SecP192R1,
            Curve::Secp224r1 => EcGroupId::SecP224R1,
            Curve::Secp256r1 => EcGroupId::SecP256R1,
            Curve::Secp384r1 => EcGroupId::SecP384R1,
            Curve::Secp521r1 => EcGroupId::SecP521R1,
            Curve::Secp192k1 => EcGroupId::SecP192K1,
            Curve::Secp224k1 => EcGroupId::SecP224K1,
            Curve::Secp256k1 => EcGroupId::SecP256K1,
            Curve::Bp256r1 => EcGroupId::Bp256R1,
            Curve::Bp384r1 => EcGroupId::Bp384R1,
            Curve::Bp512r1 => EcGroupId::Bp512R1,
            Curve::Curve25519 => EcGroupId::Curve25519,
        }
    }

    /// The curve of a group id, if the Kconfig names it.
    pub(crate) fn of_group(group: EcGroupId) -> Option<Curve> {
        Curve::ALL.into_iter().find(|curve| curve.group() == group)
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of curves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Curves(u16);

impl Curves {
    /// No curve.
    pub const NONE: Curves = Curves(0);

    /// The set of `curves`.
    pub fn of(curves: &[Curve]) -> Curves {
        curves.iter().fold(Curves::NONE, |set, curve| set.with(*curve))
    }

    /// This set and `curve`.
    pub fn with(self, curve: Curve) -> Curves {
        Curves(self.0 | 1 << curve as u16)
    }

    /// Both sets.
    pub fn union(self, other: Curves) -> Curves {
        Curves(self.0 | other.0)
    }

    /// Whether `curve` is in the set.
    pub fn contains(self, curve: Curve) -> bool {
        self.0 & (1 << curve as u16) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The curves, in the Kconfig's order.
    pub fn iter(self) -> impl Iterator<Item = Curve> {
        Curve::ALL.into_iter().filter(move |curve| self.contains(*curve))
    }

    /// The names, comma-separated (`secp384r1, secp521r1`).
    pub fn names(self) -> String {
        self.iter().map(Curve::name).collect::<Vec<_>>().join(", ")
    }
}

impl Serialize for Curves {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Curve::name))
    }
}

/// What the build configured in mbedTLS that its release's default does not have, and the heap
/// it leaves for a TLS connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TlsConfig {
    /// Curves left out of the build (`CONFIG_MBEDTLS_ECP_DP_<CURVE>_ENABLED` off), beyond what
    /// the release itself lacks.
    pub curves_off: Curves,
    /// `MBEDTLS_SSL_IN_CONTENT_LEN`: the largest record plaintext the TLS input buffer holds.
    pub in_content_len: u32,
    /// The heap the firmware leaves for its TLS connection, in bytes: the budget the device's
    /// mbedTLS allocations are counted against (`None`: not limited).
    pub heap: Option<u32>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { curves_off: Curves::NONE, in_content_len: DEFAULT_IN_CONTENT_LEN, heap: None }
    }
}

impl TlsConfig {
    /// Whether the build is ESP-IDF's default in every respect this type tells.
    pub fn is_default(&self) -> bool {
        *self == TlsConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_kconfig_options() {
        for curve in Curve::ALL {
            assert_eq!(Curve::from_name(curve.name()), Some(curve));
            assert_eq!(Curve::of_group(curve.group()), Some(curve));
        }
        assert_eq!(Curve::Secp384r1.kconfig(), "CONFIG_MBEDTLS_ECP_DP_SECP384R1_ENABLED");
        assert_eq!(Curve::Curve25519.kconfig(), "CONFIG_MBEDTLS_ECP_DP_CURVE25519_ENABLED");
        assert_eq!(Curve::from_name("x448"), None);
    }

    #[test]
    fn sets_of_curves() {
        let set = Curves::of(&[Curve::Secp521r1, Curve::Secp384r1]);
        assert!(set.contains(Curve::Secp384r1) && !set.contains(Curve::Secp256r1));
        assert_eq!(set.names(), "secp384r1, secp521r1");
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["secp384r1","secp521r1"]"#);
        assert!(Curves::NONE.is_empty() && TlsConfig::default().is_default());
        assert_eq!(set.union(Curves::of(&[Curve::Bp256r1])).iter().count(), 3);
    }
}
