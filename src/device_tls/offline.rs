//! Judging a chain without a handshake: the record that carries it, as the device's input
//! buffer takes it; the chain as the release's TLS layer keeps it ([`release::screen`]); the
//! same trusted list and verify callback the handshake uses, the release's default profile,
//! followed by the checks mbedTLS's TLS layer adds after it
//! (`ssl_parse_certificate_verify`): the leaf's key usage must allow an ECDHE key exchange
//! (digitalSignature) and its extended key usage must allow a server (serverAuth or any).

use std::cell::RefCell;
use std::ffi::CString;
use std::sync::{Arc, Mutex};

use mbedtls::alloc::Box as MbedtlsBox;
use mbedtls::x509::{Certificate, KeyUsage, VerifyError};
use mbedtls_sys as sys;

use super::release::{self, ReleaseCrypto, Screened};
use super::{
    BAD_HS_CERTIFICATE, ChainVerdict, DevicePolicy, DeviceTlsError, PathCert, Recorder, X509_FATAL_ERROR, parse_chain,
};

/// `id-kp-serverAuth` (1.3.6.1.5.5.7.3.1), the OID's DER content.
const SERVER_AUTH: [u8; 8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// How a device with `policy` judges `chain` (DER, leaf first, in the order the server sends
/// it) for a connection to `hostname` (`None`: no name check).
///
/// Errors are about the input (a certificate that cannot be read), never the verdict: a chain
/// the device refuses is an `Ok` verdict that is not [`accepted`](ChainVerdict::accepted).
///
/// ```
/// use otarig::device_tls::{Anchors, DevicePolicy, judge_chain};
/// use otarig::idf::IdfVersion;
/// use otarig::outcome::{OutcomeClass, VerifyReason};
/// use otarig::pki::pem_to_der;
///
/// // The lab's look-alikes of Let's Encrypt's R3 and the two roots.
/// let der = |name: &str| {
///     let pem = std::fs::read_to_string(format!("scenarios/pki/certs/{name}.pem")).unwrap();
///     pem_to_der(&pem).unwrap()
/// };
/// let chain = [der("r3")];
/// let trusting = |root: &str| DevicePolicy {
///     idf: IdfVersion::new(4, 4, 0),
///     anchors: Anchors::Roots(vec![der(root)]),
///     date_check_at: None,
///     config: Default::default(),
/// };
///
/// let verdict = judge_chain(&chain, None, &trusting("isrg_root_x1"))?;
/// assert!(verdict.accepted());
///
/// let verdict = judge_chain(&chain, None, &trusting("dst_root_x3"))?;
/// assert_eq!(verdict.rejection(), Some((OutcomeClass::TlsVerify, VerifyReason::Untrusted)));
/// # Ok::<(), otarig::device_tls::DeviceTlsError>(())
/// ```
pub fn judge_chain(
    chain: &[Vec<u8>],
    hostname: Option<&str>,
    policy: &DevicePolicy,
) -> Result<ChainVerdict, DeviceTlsError> {
    let (mut verdict, leaf) = verify_as_device(chain, hostname, policy)?;
    if let Some(leaf) = leaf {
        let usage = usage_flags(&leaf);
        verdict.flags |= usage.bits();
        if verdict.code == 0 && !usage.is_empty() {
            verdict.code = BAD_HS_CERTIFICATE;
        }
    }
    Ok(verdict)
}

/// How a device with `policy` judges the certificates a server sends after its leaf (DER, in
/// the order sent, the leaf's issuer first), as they stand above a leaf that CA issued: the
/// same verification as [`judge_chain`] from the first of them up, with no host name to match
/// and no leaf to check the key usage of.
///
/// What the leaf adds is not judged: its signature (its CA makes it), its dates (a fresh one)
/// and its name and usage (the owner's, from a CA that issues server certificates). A path
/// length constraint counts one certificate fewer below each CA than with the leaf, so a
/// constraint the leaf alone would break goes unseen.
pub fn judge_issuers(issuers: &[Vec<u8>], policy: &DevicePolicy) -> Result<ChainVerdict, DeviceTlsError> {
    verify_as_device(issuers, None, policy).map(|(verdict, _)| verdict)
}

/// The verification alone (what `mbedtls_x509_crt_verify_with_profile` and the callback
/// decide), and the head of the chain the TLS layer kept, whose usage it checks next; `None`
/// when the handshake ended before verification or no certificate was kept.
pub(super) fn verify_as_device(
    chain: &[Vec<u8>],
    hostname: Option<&str>,
    policy: &DevicePolicy,
) -> Result<(ChainVerdict, Option<MbedtlsBox<Certificate>>), DeviceTlsError> {
    let certificates = parse_chain(chain)?;
    // The trusted roots are parsed when the client is set up, before any connection.
    let mut trusted = policy.trusted_list()?;
    // The Certificate message's record, before anything in it is parsed. Judged as a record of
    // its own: a lower bound, as a server that puts its whole first flight (ServerHello to
    // ServerHelloDone) in one record, as rustls does, sends a longer one.
    if let Some(code) = policy.input_buffer().refuses_chain(chain) {
        return Ok((ChainVerdict { code, flags: 0, path: Vec::new(), log: Vec::new() }, None));
    }
    let crypto = policy.crypto();
    let mut kept = match release::screen(crypto, &certificates) {
        // The handshake ended while parsing (the TLS layer's alert); nothing was verified.
        Screened::Refused { code } => {
            return Ok((ChainVerdict { code, flags: 0, path: Vec::new(), log: Vec::new() }, None));
        }
        Screened::Chain { kept, .. } => kept,
    };
    let cn = hostname.map(CString::new).transpose().map_err(|_| DeviceTlsError::HostName)?;
    let Some(leaf) = kept.iter().next().cloned() else {
        return Ok((nothing_kept(crypto, cn.as_ref(), policy), None));
    };
    let record = Arc::new(Mutex::new(Recorder::default()));
    let callback = policy.verify_callback(Arc::clone(&record));
    let result = release::verify_with_profile(&mut kept, &mut trusted, crypto.profile(), cn.as_ref(), &callback);
    let (code, flags) = match result {
        Ok(()) => (0, 0),
        // mbedTLS sets every flag after a fatal error.
        Err((X509_FATAL_ERROR, _)) => (X509_FATAL_ERROR, u32::MAX),
        Err(verdict) => verdict,
    };
    let Recorder { path, log, .. } = Recorder::take(&record);
    Ok((ChainVerdict { code, flags, path, log }, Some(leaf)))
}

/// Every certificate was left out: the TLS layer verifies the chain it initialised and never
/// filled (`ssl_parse_certificate_chain` then `mbedtls_x509_crt_verify_restartable`, which
/// finds no key, no name and no parent). Date checks see its all-zero validity as past.
fn nothing_kept(crypto: ReleaseCrypto, cn: Option<&CString>, policy: &DevicePolicy) -> ChainVerdict {
    let dates = policy.date_check_at.is_some();
    let seen = RefCell::new(Vec::new());
    let callback = |_: &Certificate, depth: i32, verify: &mut VerifyError| {
        if dates {
            verify.insert(VerifyError::CERT_EXPIRED);
        }
        seen.borrow_mut().push(PathCert {
            depth: u32::try_from(depth).unwrap_or(0),
            subject: String::new(),
            issuer: String::new(),
            flags: verify.bits(),
        });
        Ok(())
    };
    let mut empty = sys::x509_crt::default();
    // SAFETY: `empty` is initialised as the TLS layer initialises its chain, verified while
    // alive, and freed once; the trusted list is empty (null).
    let result = unsafe {
        sys::x509_crt_init(&mut empty);
        let result = release::verify_raw(&mut empty, std::ptr::null_mut(), crypto.profile(), cn, &callback);
        sys::x509_crt_free(&mut empty);
        result
    };
    let (code, flags) = result.err().unwrap_or((0, 0));
    ChainVerdict { code, flags, path: seen.into_inner(), log: Vec::new() }
}

/// `mbedtls_ssl_check_cert_usage` for a client and an ECDHE key exchange.
fn usage_flags(leaf: &Certificate) -> VerifyError {
    let mut flags = VerifyError::empty();
    if !leaf.check_key_usage(KeyUsage::DIGITAL_SIGNATURE) {
        flags.insert(VerifyError::CERT_KEY_USAGE);
    }
    let oid = SERVER_AUTH.map(|b| b as std::ffi::c_char);
    if !leaf.check_extended_key_usage(&oid) {
        flags.insert(VerifyError::CERT_EXT_KEY_USAGE);
    }
    flags
}
