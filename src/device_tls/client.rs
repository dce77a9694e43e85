//! The device's TLS client: a real mbedTLS handshake over a TCP stream, configured as ESP-IDF's
//! esp-tls configures it (TLS 1.2 client, verification required, the host name set for SNI and
//! the name check), with the firmware's roots or certificate bundle, the release's default
//! certificate profile and the shared verify callback of [`super::DevicePolicy`].
//!
//! The linked library parses certificates a release's build cannot (MD2, MD4, curves it
//! lacks), which that release's TLS layer leaves out of the chain or refuses
//! ([`super::release`]). The callback therefore holds back the flags and any fatal error of
//! the certificates above the leaf; at the leaf (depth 0, called last) it reads the chain as
//! received, and when the release would have kept another chain it sets the release's own
//! verdict ([`super::judge_chain`]'s verification) in their place; otherwise the held-back
//! flags and error are restored, unchanged.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use mbedtls::alloc::List as MbedtlsList;
use mbedtls::error::codes;
use mbedtls::rng::{CtrDrbg, OsEntropy};
use mbedtls::ssl::config::{AuthMode, Endpoint, Preset, Transport, Version};
use mbedtls::ssl::io::Io;
use mbedtls::ssl::{Config, Context};
use mbedtls::x509::Certificate;

use mbedtls::x509::VerifyError;
use mbedtls::x509::profile::Profile;

use super::records::{InputBuffer, RecordWatch};
use super::release::{self, Screened};
use super::{Anchors, CERT_VERIFY_FAILED, ChainVerdict, DevicePolicy, DeviceTlsError, Recorder, offline, parse_chain};
use crate::codes::is_alloc_failure;
use crate::heap_budget::{self, HeapBudget, HeapBudgetError};

/// An established session: read and write the application data through it ([`Io`]).
pub(crate) type Session = Context<EspSocket>;

/// A TCP socket under mbedTLS with the error mapping of ESP-IDF's port
/// (`components/mbedtls/port/net_sockets.c`): a reset or broken pipe is
/// `MBEDTLS_ERR_NET_CONN_RESET` (-0x50), an interrupted call is retried, and a receive timeout
/// on the blocking socket (`SO_RCVTIMEO`) is `MBEDTLS_ERR_NET_RECV_FAILED` (-0x4C), like any
/// other failure. A peer that closes yields 0, which mbedTLS reports as EOF. The device's
/// input buffer watches the records it hands up and refuses, with the release's code, one
/// its mbedTLS could not take ([`RecordWatch`]).
///
/// The socket also holds the connection's heap budget, if the device has one: it lives as
/// long as the session, whose allocations it counted.
pub struct EspSocket {
    stream: TcpStream,
    records: RecordWatch,
    budget: Option<HeapBudget>,
}

impl EspSocket {
    /// `stream` under a device whose TLS input buffer is `buffer`.
    pub fn new(stream: TcpStream, buffer: InputBuffer) -> EspSocket {
        EspSocket { stream, records: RecordWatch::new(buffer), budget: None }
    }

    /// The TCP stream under it (to wait on, as the transport's `select()` does; reading it
    /// directly would bypass the record watch).
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// What mbedTLS returns when a read of this socket fails with `kind`.
    pub(crate) fn recv_error(kind: ErrorKind) -> mbedtls::Error {
        match kind {
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => codes::NetConnReset.into(),
            ErrorKind::Interrupted => codes::SslWantRead.into(),
            _ => codes::NetRecvFailed.into(),
        }
    }
}

impl Io for EspSocket {
    fn recv(&mut self, buf: &mut [u8]) -> mbedtls::Result<usize> {
        // The rig's own code, called from inside the device's mbedTLS.
        let _outside = heap_budget::suspend();
        let allowed = self.records.next_read(buf.len()).map_err(mbedtls::Error::from)?;
        let n = self.stream.read(&mut buf[..allowed]).map_err(|e| Self::recv_error(e.kind()))?;
        self.records.delivered(&buf[..n]);
        Ok(n)
    }

    fn send(&mut self, buf: &[u8]) -> mbedtls::Result<usize> {
        let _outside = heap_budget::suspend();
        self.stream.write(buf).map_err(|e| match e.kind() {
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => codes::NetConnReset.into(),
            ErrorKind::Interrupted => codes::SslWantWrite.into(),
            _ => codes::NetSendFailed.into(),
        })
    }
}

/// The step of esp-tls's connection that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsStep {
    /// `mbedtls_x509_crt_parse` of the firmware's roots (`set_ca_cert`).
    ParseRoots,
    /// `mbedtls_ssl_setup`: the context's buffers and handshake state.
    Setup,
    /// `mbedtls_ssl_handshake`.
    Handshake,
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub struct HandshakeFailure {
    /// The step that failed: before the handshake only when the device's heap ran out.
    pub step: TlsStep,
    /// What that step returned (for the handshake e.g. -0x2700, -0x3000, -0x7780, -0x7280,
    /// -0x50; -0x7F00 from `mbedtls_ssl_setup`).
    pub code: i32,
    /// The verification as far as it went: flags are `mbedtls_ssl_get_verify_result` (0 when
    /// the handshake died before the certificate was verified, as in mbedTLS 2.x).
    pub verdict: ChainVerdict,
}

/// `MBEDTLS_ERR_SSL_ALLOC_FAILED`.
pub const SSL_ALLOC_FAILED: i32 = -0x7F00;

/// Runs the handshake with `hostname` (SNI and name check) on `stream`. A device with a heap
/// budget ([`super::TlsConfig::heap`]) has its mbedTLS's allocations counted against it from
/// the parse of its roots to the end of the handshake; an allocation over it fails as on the
/// ESP32, and the step that met it says so ([`TlsStep`]).
pub fn handshake(
    stream: TcpStream,
    hostname: &str,
    policy: &DevicePolicy,
) -> Result<Result<(Session, ChainVerdict), HandshakeFailure>, DeviceTlsError> {
    let budget = match policy.config.heap {
        Some(limit) => Some(HeapBudget::new(limit as usize).map_err(DeviceTlsError::Heap)?),
        None => None,
    };
    let inside = budget.as_ref().map(HeapBudget::enter);
    let record = Arc::new(Mutex::new(Recorder::default()));
    let mut config = Config::new(Endpoint::Client, Transport::Stream, Preset::Default);
    let rng = CtrDrbg::new(Arc::new(OsEntropy::new()), None).map_err(DeviceTlsError::Setup)?;
    config.set_rng(Arc::new(rng));
    config.set_authmode(AuthMode::Required);
    config.set_max_version(Version::Tls1_2).map_err(DeviceTlsError::Setup)?;
    match &policy.anchors {
        Anchors::Roots(_) => match policy.trusted_list() {
            Ok(list) => config.set_ca_list(Arc::new(list), None),
            Err(DeviceTlsError::Root { source, .. }) if budget.is_some() && is_alloc_failure(source.to_int()) => {
                return Ok(Err(HandshakeFailure::before_handshake(TlsStep::ParseRoots, source.to_int())));
            }
            Err(error) => return Err(error),
        },
        // esp_crt_bundle_attach: no trusted certificate is ever offered as a parent.
        Anchors::Bundle { .. } => config.set_ca_callback(|_: &MbedtlsList<Certificate>| {
            let _outside = heap_budget::suspend();
            Ok(MbedtlsList::new())
        }),
    }
    let crypto = policy.crypto();
    config.set_cert_profile(crate_profile(crypto.profile()));
    let mut curves: Vec<mbedtls_sys::ecp_group_id> =
        crypto.offered_curves().into_iter().map(|curve| curve.group().into()).collect();
    curves.push(mbedtls_sys::ECP_DP_NONE);
    config.set_curves(Arc::new(curves));
    config.set_verify_callback(release_callback(policy, hostname, Arc::clone(&record)));
    let mut context = Context::new(Arc::new(config));
    if setup_failed(&mut context) {
        // The crate drops `mbedtls_ssl_setup`'s result; a failed setup leaves no configuration,
        // and its only failure is an allocation.
        return Ok(Err(HandshakeFailure::before_handshake(TlsStep::Setup, SSL_ALLOC_FAILED)));
    }
    let result = context.establish(EspSocket::new(stream, policy.input_buffer()), Some(hostname));
    drop(inside);
    if let Some(usage) = budget.as_ref().map(HeapBudget::usage) {
        tracing::debug!(limit = usage.limit, used = usage.used, peak = usage.peak, refused = ?usage.refused, "device TLS heap after the handshake");
        if usage.untracked {
            return Err(DeviceTlsError::Heap(HeapBudgetError::Untracked));
        }
    }
    if let Some(socket) = context.io_mut() {
        // The session's allocations stay counted until it is dropped.
        socket.budget = budget;
    }
    let mut flags = match context.verify_result() {
        Ok(()) => 0,
        Err(flags) => flags.bits(),
    };
    let Recorder { path, log, device } = Recorder::take(&record);
    if let Some((_, device_flags)) = device.filter(|(code, _)| *code != 0 && *code != CERT_VERIFY_FAILED) {
        // The release's handshake ended before or outside its verification result.
        flags = device_flags;
    }
    Ok(match result {
        Ok(()) => Ok((context, ChainVerdict { code: 0, flags, path, log })),
        Err(error) => {
            let code = error.to_int();
            let verify_code = if path.is_empty() { 0 } else { code };
            Err(HandshakeFailure {
                step: TlsStep::Handshake,
                code,
                verdict: ChainVerdict { code: verify_code, flags, path, log },
            })
        }
    })
}

impl HandshakeFailure {
    fn before_handshake(step: TlsStep, code: i32) -> HandshakeFailure {
        HandshakeFailure { step, code, verdict: ChainVerdict { code: 0, flags: 0, path: Vec::new(), log: Vec::new() } }
    }
}

/// Whether `mbedtls_ssl_setup` failed on `context`: it then leaves no configuration.
fn setup_failed(context: &mut Session) -> bool {
    let raw: *mut mbedtls_sys::ssl_context = context.into();
    // SAFETY: `raw` points at the context's own `mbedtls_ssl_context`, alive and not borrowed
    // elsewhere while `context` is borrowed here; only a field is read.
    unsafe { (*raw).conf.is_null() }
}

/// The crate's profile type for a profile of the linked library.
fn crate_profile(profile: &'static mbedtls_sys::x509_crt_profile) -> &'static Profile {
    // SAFETY: `Profile` is `#[repr(C)]` with the `mbedtls_x509_crt_profile` as its only field
    // (the `mbedtls` crate's x509/profile.rs), and `profile` is static.
    unsafe { &*std::ptr::from_ref(profile).cast::<Profile>() }
}

/// What the callback has held back from the certificates above the leaf.
#[derive(Default)]
struct HeldBack {
    flags: u32,
    error: Option<mbedtls::Error>,
}

/// The shared verify callback, with the chain the release keeps decided at the leaf.
fn release_callback(
    policy: &DevicePolicy,
    hostname: &str,
    record: Arc<Mutex<Recorder>>,
) -> impl Fn(&Certificate, i32, &mut VerifyError) -> mbedtls::Result<()> + Send + Sync + 'static {
    let shared = policy.verify_callback(Arc::clone(&record));
    let held = Mutex::new(HeldBack::default());
    let policy = policy.clone();
    let hostname = hostname.to_owned();
    move |cert: &Certificate, depth: i32, flags: &mut VerifyError| {
        // The rig's own code (and its own parses), called from inside the device's mbedTLS.
        let _outside = heap_budget::suspend();
        let mut held = held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if depth > 0 {
            // After a fatal error mbedTLS calls no further callback.
            if held.error.is_none() {
                if let Err(error) = shared(cert, depth, flags) {
                    held.error = Some(error);
                }
                held.flags |= flags.bits();
            }
            *flags = VerifyError::empty();
            return Ok(());
        }
        let received = release::chain_from(cert);
        if !kept_as_received(&received, &policy) {
            return release_verdict(&received, &hostname, &policy, &record, flags);
        }
        if let Some(error) = held.error.take() {
            return Err(error);
        }
        let result = shared(cert, depth, flags);
        flags.insert(VerifyError::from_bits_truncate(held.flags));
        result
    }
}

/// Whether the release's TLS layer keeps every certificate of `received`.
fn kept_as_received(received: &[Vec<u8>], policy: &DevicePolicy) -> bool {
    let Ok(parsed) = parse_chain(received) else {
        return true;
    };
    matches!(release::screen(policy.crypto(), &parsed), Screened::Chain { dropped: 0, .. })
}

/// Sets the release's own verdict on the chain it keeps: its path and lines in the record, its
/// flags as the leaf's (those above were held back), its error as the callback's.
fn release_verdict(
    received: &[Vec<u8>],
    hostname: &str,
    policy: &DevicePolicy,
    record: &Mutex<Recorder>,
    flags: &mut VerifyError,
) -> mbedtls::Result<()> {
    let Ok((verdict, _)) = offline::verify_as_device(received, Some(hostname), policy) else {
        return Err(codes::X509FatalError.into());
    };
    let mut record = record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    record.path = verdict.path;
    record.log = verdict.log;
    record.device = Some((verdict.code, verdict.flags));
    match verdict.code {
        0 => {
            *flags = VerifyError::empty();
            Ok(())
        }
        CERT_VERIFY_FAILED => {
            *flags = VerifyError::from_bits_truncate(verdict.flags);
            Ok(())
        }
        code => Err(mbedtls::Error::from(code)),
    }
}
