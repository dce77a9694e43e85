//! What an ESP-IDF release's mbedTLS build can parse and which certificates its default
//! profile accepts, read from the source at the tags:
//!
//! - **Parsing.** MD2 and MD4 are compiled into no release: v3.1–v3.3's
//!   `components/mbedtls/port/include/mbedtls/esp_config.h` has `//#define MBEDTLS_MD2_C` and
//!   `//#define MBEDTLS_MD4_C`, v4.x's includes mbedTLS's own `config.h` where both are
//!   commented out, and mbedTLS 3.0 removed them. A certificate signed with them fails
//!   `mbedtls_x509_crt_parse_der` with `MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG +
//!   MBEDTLS_ERR_OID_NOT_FOUND`, which `ssl_parse_certificate_chain` (library/ssl_tls.c of
//!   2.12, 2.16, 2.28, 3.x and 4.0) ignores: the certificate is left out of the chain ("maybe a
//!   prior certificate was already trusted"). Every other parse failure aborts the handshake
//!   with its code. Every curve of mbedTLS 2.x and 3.x is enabled by default
//!   (`components/mbedtls/Kconfig`, `MBEDTLS_ECP_DP_*_ENABLED` default y); v6.0 (mbedTLS 4)
//!   has no secp192r1, secp224r1, secp192k1 or secp224k1 in its esp_config.h, so a key on one
//!   of them fails to parse (`MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE`) and the handshake ends. A
//!   build that turns a curve off (`CONFIG_MBEDTLS_ECP_DP_SECP384R1_ENABLED=n`) lacks it the
//!   same way: `mbedtls_pk_parse_subpubkey` finds no group for the key's OID (`oid.c` lists
//!   only the curves compiled in) and `mbedtls_x509_crt_parse_der` returns that code as it is.
//! - **The curves the client offers** (`supported_groups`, from which a server picks the
//!   ECDHE group): the curves compiled in, in the library's order — 2.x's
//!   `ecp_supported_curves` (secp521r1 first; x25519 from 2.28), 3.x's and 4.0's
//!   `ssl_preset_default_groups` (x25519 first) — without x448, which ESP-IDF's
//!   `esp_config.h` undefines, and without what the build or release lacks.
//! - **The default profile** (`mbedtls_x509_crt_profile_default`, library/x509_crt.c): in 2.x
//!   SHA-224 to SHA-512, any curve, RSA ≥ 2048 (`MBEDTLS_TLS_DEFAULT_ALLOW_SHA1_IN_CERTIFICATES`
//!   is in no release's configuration); from 3.0 SHA-256 to SHA-512 and only secp256r1/384r1/
//!   521r1 and brainpoolP256r1/384r1/512r1, RSA ≥ 2048.
//!
//! The library linked here is 2.28 with every algorithm compiled in, so it parses what any
//! release parses; `screen` leaves out or refuses what the release could not parse, and
//! `verify_with_profile` checks with the release's profile.

use std::ffi::{CString, c_int, c_void};

use mbedtls::alloc::List as MbedtlsList;
use mbedtls::hash::Type as MdType;
use mbedtls::x509::{Certificate, VerifyError};
use mbedtls_sys as sys;

use super::config::{Curve, Curves, TlsConfig};
use crate::idf::{IdfVersion, mbedtls_of};

/// `MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE`: a key on a curve the build does not have.
pub const UNKNOWN_NAMED_CURVE: i32 = -0x3A00;

/// `MBEDTLS_X509_ID_FLAG(id)` (include/mbedtls/x509_crt.h).
const fn id_flag(id: u32) -> u32 {
    1 << (id - 1)
}

/// `mbedtls_x509_crt_profile_default` of mbedTLS 2.12–2.28 (library/x509_crt.c).
static PROFILE_2: sys::x509_crt_profile = sys::x509_crt_profile {
    allowed_mds: id_flag(sys::MD_SHA224) | id_flag(sys::MD_SHA256) | id_flag(sys::MD_SHA384) | id_flag(sys::MD_SHA512),
    allowed_pks: 0x0FFF_FFFF,
    allowed_curves: 0x0FFF_FFFF,
    rsa_min_bitlen: 2048,
};

/// `mbedtls_x509_crt_profile_default` of mbedTLS 3.0–3.6 and 4.0 (library/x509_crt.c).
static PROFILE_3: sys::x509_crt_profile = sys::x509_crt_profile {
    allowed_mds: id_flag(sys::MD_SHA256) | id_flag(sys::MD_SHA384) | id_flag(sys::MD_SHA512),
    allowed_pks: 0x0FFF_FFFF,
    allowed_curves: id_flag(sys::ECP_DP_SECP256R1)
        | id_flag(sys::ECP_DP_SECP384R1)
        | id_flag(sys::ECP_DP_SECP521R1)
        | id_flag(sys::ECP_DP_BP256R1)
        | id_flag(sys::ECP_DP_BP384R1)
        | id_flag(sys::ECP_DP_BP512R1),
    rsa_min_bitlen: 2048,
};

/// The curves mbedTLS 4 (v6.0) no longer has.
const GONE_IN_4: [Curve; 4] = [Curve::Secp192r1, Curve::Secp224r1, Curve::Secp192k1, Curve::Secp224k1];

/// The certificate handling of one release's mbedTLS build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseCrypto {
    /// The mbedTLS version the release ships (2.12 before v3.1).
    pub(crate) mbedtls: (u8, u8),
    /// The curves the build lacks: the release's own and those the firmware's build turned off.
    pub(crate) missing: Curves,
}

impl ReleaseCrypto {
    /// The default build of `idf`; releases before v3.1 are judged as the oldest 2.x build.
    pub fn of(idf: IdfVersion) -> ReleaseCrypto {
        let mbedtls = mbedtls_of(idf).map_or((2, 12), |(major, minor, _)| (major, minor));
        let missing = if mbedtls.0 >= 4 { Curves::of(&GONE_IN_4) } else { Curves::NONE };
        ReleaseCrypto { mbedtls, missing }
    }

    /// The build of `idf` that a firmware configured with `config`.
    pub fn of_build(idf: IdfVersion, config: &TlsConfig) -> ReleaseCrypto {
        let release = ReleaseCrypto::of(idf);
        ReleaseCrypto { missing: release.missing.union(config.curves_off), ..release }
    }

    /// The curves the build lacks.
    pub fn missing_curves(self) -> Curves {
        self.missing
    }

    /// The curves the client offers in its ClientHello, in its order of preference.
    pub(crate) fn offered_curves(self) -> Vec<Curve> {
        use Curve::*;
        let order: &[Curve] = match self.mbedtls {
            (2, minor) if minor < 28 => &[
                Secp521r1, Bp512r1, Secp384r1, Bp384r1, Secp256r1, Secp256k1, Bp256r1, Secp224r1, Secp224k1, Secp192r1,
                Secp192k1,
            ],
            (2, _) => &[
                Secp521r1, Bp512r1, Secp384r1, Bp384r1, Secp256r1, Secp256k1, Bp256r1, Secp224r1, Secp224k1, Secp192r1,
                Secp192k1, Curve25519,
            ],
            _ => &[Curve25519, Secp256r1, Secp384r1, Secp521r1, Bp256r1, Bp384r1, Bp512r1],
        };
        order.iter().copied().filter(|curve| !self.missing.contains(*curve)).collect()
    }

    /// The mbedTLS major version.
    fn major(self) -> u8 {
        self.mbedtls.0
    }

    /// Its `mbedtls_x509_crt_profile_default`.
    pub fn profile(self) -> &'static sys::x509_crt_profile {
        if self.major() >= 3 { &PROFILE_3 } else { &PROFILE_2 }
    }

    /// The profile as people read it, for predict's note.
    pub fn describe(self) -> &'static str {
        match self.major() {
            ..=2 => "mbedTLS 2.x default profile: SHA-224 to SHA-512, any curve, RSA ≥ 2048; no MD2/MD4",
            3 => "mbedTLS 3.x default profile: SHA-256 to SHA-512, P-256/384/521 and brainpool curves, RSA ≥ 2048",
            _ => {
                "mbedTLS 4.x default profile: SHA-256 to SHA-512, P-256/384/521 and brainpool curves, RSA ≥ 2048; \
                 no secp192/224 curves"
            }
        }
    }

    /// What the build's `mbedtls_x509_crt_parse_der` does with `cert` (parsed here by a
    /// library with every algorithm).
    pub fn parse(self, cert: &Certificate) -> Parse {
        if matches!(cert.digest_type(), MdType::Md2 | MdType::Md4) {
            return Parse::UnknownSignature;
        }
        // `curve` is an error for a key that is not on a curve.
        let curve = cert.public_key().curve().ok().and_then(Curve::of_group);
        if curve.is_some_and(|curve| self.missing.contains(curve)) {
            return Parse::Fails(UNKNOWN_NAMED_CURVE);
        }
        Parse::Parsed
    }
}

/// The outcome of parsing one certificate on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// The release's mbedTLS parses it.
    Parsed,
    /// `UNKNOWN_SIG_ALG + OID_NOT_FOUND`: the TLS layer leaves the certificate out.
    UnknownSignature,
    /// Any other failure: the TLS layer sends a fatal alert and the handshake ends with it.
    Fails(i32),
}

/// The chain as the device's TLS layer keeps it.
pub(crate) enum Screened {
    /// The certificates it parsed, in order, and how many it left out.
    Chain { kept: MbedtlsList<Certificate>, dropped: usize },
    /// The handshake ends with this parse error.
    Refused { code: i32 },
}

/// Screens `chain` (parsed by this library, leaf first) as the release's TLS layer would.
pub(crate) fn screen(crypto: ReleaseCrypto, chain: &MbedtlsList<Certificate>) -> Screened {
    let mut kept = MbedtlsList::new();
    let mut dropped = 0;
    for cert in chain {
        match crypto.parse(cert) {
            Parse::Parsed => kept.push(cert.clone()),
            Parse::UnknownSignature => dropped += 1,
            Parse::Fails(code) => return Screened::Refused { code },
        }
    }
    Screened::Chain { kept, dropped }
}

/// What `mbedtls_x509_crt_verify_with_profile` returned: the code and the flags.
pub(crate) type Verified = Result<(), (i32, u32)>;

/// `mbedtls_x509_crt_verify_with_profile` with `profile`, the name check against `cn` and
/// `callback` as the verify callback (`Err` from it is fatal, as in mbedTLS).
pub(crate) fn verify_with_profile<F>(
    chain: &mut MbedtlsList<Certificate>,
    trusted: &mut MbedtlsList<Certificate>,
    profile: &'static sys::x509_crt_profile,
    cn: Option<&CString>,
    callback: &F,
) -> Verified
where
    F: Fn(&Certificate, i32, &mut VerifyError) -> mbedtls::Result<()>,
{
    // SAFETY: both lists hold parsed certificates and outlive the call; a non-empty chain is
    // never a null pointer (an empty trusted list is, which the library accepts).
    unsafe { verify_raw(chain.into(), trusted.into(), profile, cn, callback) }
}

/// [`verify_with_profile`] on the library's own lists.
///
/// # Safety
/// `chain` must point to an initialised certificate list and `trusted` to one or be null,
/// both alive for the call.
pub(crate) unsafe fn verify_raw<F>(
    chain: *mut sys::x509_crt,
    trusted: *mut sys::x509_crt,
    profile: &'static sys::x509_crt_profile,
    cn: Option<&CString>,
    callback: &F,
) -> Verified
where
    F: Fn(&Certificate, i32, &mut VerifyError) -> mbedtls::Result<()>,
{
    let mut flags = 0u32;
    // SAFETY: the lists as the caller promises; `profile` is static; `cn` is NUL-terminated;
    // `callback` outlives the call and is only read through `trampoline::<F>`, instantiated
    // for its type.
    let code = unsafe {
        sys::x509_crt_verify_with_profile(
            chain,
            trusted,
            std::ptr::null_mut(),
            profile,
            cn.map_or(std::ptr::null(), |cn| cn.as_ptr()),
            &mut flags,
            Some(trampoline::<F>),
            std::ptr::from_ref(callback).cast_mut().cast::<c_void>(),
        )
    };
    if code == 0 { Ok(()) } else { Err((code, flags)) }
}

/// The C verify callback: calls the closure behind `data` with the certificate and its flags.
unsafe extern "C" fn trampoline<F>(data: *mut c_void, crt: *mut sys::x509_crt, depth: c_int, flags: *mut u32) -> c_int
where
    F: Fn(&Certificate, i32, &mut VerifyError) -> mbedtls::Result<()>,
{
    if data.is_null() || crt.is_null() || flags.is_null() {
        return sys::ERR_X509_BAD_INPUT_DATA;
    }
    // SAFETY: `data` is the `&F` given to `verify_with_profile`, alive for the whole call;
    // `Certificate` is `#[repr(transparent)]` over `mbedtls_x509_crt` (the `mbedtls` crate's
    // x509/certificate.rs) and the library hands a certificate of the chain being verified;
    // `flags` points to that certificate's flags.
    let (callback, cert, bits) = unsafe { (&*data.cast::<F>(), &*crt.cast::<Certificate>(), &mut *flags) };
    let mut verify = VerifyError::from_bits_truncate(*bits);
    let result = callback(cert, depth, &mut verify);
    *bits = verify.bits();
    match result {
        Ok(()) => 0,
        Err(error) => error.to_int(),
    }
}

/// The DER of every certificate of the list that starts at `cert` (the chain as the TLS layer
/// parsed it, when `cert` is the leaf a verify callback sees at depth 0).
pub(crate) fn chain_from(cert: &Certificate) -> Vec<Vec<u8>> {
    let mut chain = Vec::new();
    let mut next: *const sys::x509_crt = std::ptr::from_ref(cert).cast();
    while !next.is_null() {
        // SAFETY: `Certificate` is `#[repr(transparent)]` over `mbedtls_x509_crt`; the list's
        // `next` pointers stay valid while the library verifies it (the callback's lifetime),
        // and `raw` holds `len` bytes when `p` is not null.
        let crt = unsafe { &*next };
        if crt.raw.p.is_null() {
            break;
        }
        // SAFETY: as above.
        chain.push(unsafe { std::slice::from_raw_parts(crt.raw.p, crt.raw.len) }.to_vec());
        next = crt.next;
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_of(text: &str) -> &'static sys::x509_crt_profile {
        ReleaseCrypto::of(IdfVersion::parse(text).unwrap()).profile()
    }

    #[test]
    fn the_2x_profile_is_the_linked_librarys_default() {
        // SAFETY: a static of the linked library, never written.
        let default = unsafe { &sys::x509_crt_profile_default };
        for idf in ["v3.1", "v4.2.5", "v4.4.8"] {
            let profile = profile_of(idf);
            assert_eq!(
                (profile.allowed_mds, profile.allowed_pks, profile.allowed_curves, profile.rsa_min_bitlen),
                (default.allowed_mds, default.allowed_pks, default.allowed_curves, default.rsa_min_bitlen),
                "{idf}"
            );
        }
    }

    #[test]
    fn the_3x_profile_is_2x_next_without_secp256k1_and_sha224_is_gone() {
        // 3.0's migration guide: the default became "next", and secp256k1 left it.
        // SAFETY: a static of the linked library, never written.
        let next = unsafe { &sys::x509_crt_profile_next };
        for idf in ["v5.0", "v5.2.1", "v5.5", "v6.0"] {
            let profile = profile_of(idf);
            assert_eq!(profile.allowed_mds, next.allowed_mds, "{idf}");
            assert_eq!(profile.allowed_curves, next.allowed_curves & !id_flag(sys::ECP_DP_SECP256K1), "{idf}");
            assert_eq!(profile.allowed_mds & id_flag(sys::MD_SHA224), 0, "{idf}");
            assert_eq!(profile.rsa_min_bitlen, 2048);
        }
        assert_ne!(profile_of("v4.4.8").allowed_mds & id_flag(sys::MD_SHA224), 0);
    }

    #[test]
    fn the_client_offers_its_library_s_curves_less_what_the_build_lacks() {
        let offered = |idf: &str, off: &[Curve]| {
            let config = TlsConfig { curves_off: Curves::of(off), ..TlsConfig::default() };
            ReleaseCrypto::of_build(IdfVersion::parse(idf).unwrap(), &config).offered_curves()
        };
        // 2.16: ecp_supported_curves, secp521r1 first, no x25519; 2.28 adds x25519 last.
        assert_eq!(offered("v4.2.5", &[])[..3], [Curve::Secp521r1, Curve::Bp512r1, Curve::Secp384r1]);
        assert!(!offered("v4.2.5", &[]).contains(&Curve::Curve25519));
        assert_eq!(offered("v4.4.8", &[]).last(), Some(&Curve::Curve25519));
        assert!(!offered("v4.4.8", &[Curve::Secp384r1]).contains(&Curve::Secp384r1));
        // 3.x and 4.0: ssl_preset_default_groups, x25519 first, no Koblitz or small curves.
        assert_eq!(offered("v5.2.5", &[])[..3], [Curve::Curve25519, Curve::Secp256r1, Curve::Secp384r1]);
        assert!(!offered("v6.0", &[]).contains(&Curve::Secp224r1));
        // The release's missing curves and the build's add up.
        let v6 = ReleaseCrypto::of_build(
            IdfVersion::parse("v6.0").unwrap(),
            &TlsConfig { curves_off: Curves::of(&[Curve::Secp384r1]), ..TlsConfig::default() },
        );
        assert!(v6.missing_curves().contains(Curve::Secp384r1) && v6.missing_curves().contains(Curve::Secp192k1));
    }

    #[test]
    fn the_generation_of_mbedtls_follows_the_submodule() {
        let major = |text| ReleaseCrypto::of(IdfVersion::parse(text).unwrap()).major();
        assert_eq!([major("v3.1"), major("v4.4.8"), major("v5.0"), major("v5.5.1"), major("v6.0")], [2, 2, 3, 3, 4]);
    }
}
