//! The device's TLS client: a real mbedTLS handshake over a TCP stream, configured as ESP-IDF's
//! esp-tls configures it (TLS 1.2 client, verification required, the host name set for SNI and
//! the name check), with the firmware's roots or certificate bundle and the shared verify
//! callback of [`super::DevicePolicy`].

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

use super::{Anchors, ChainVerdict, DevicePolicy, DeviceTlsError, Recorder};

/// An established session: read and write the application data through it ([`Io`]).
pub type Session = Context<EspSocket>;

/// A TCP socket under mbedTLS with the error mapping of ESP-IDF's port
/// (`components/mbedtls/port/net_sockets.c`): a reset or broken pipe is
/// `MBEDTLS_ERR_NET_CONN_RESET` (-0x50), an interrupted call is retried, and a receive timeout
/// on the blocking socket (`SO_RCVTIMEO`) is `MBEDTLS_ERR_NET_RECV_FAILED` (-0x4C), like any
/// other failure. A peer that closes yields 0, which mbedTLS reports as EOF.
pub struct EspSocket(pub TcpStream);

impl Io for EspSocket {
    fn recv(&mut self, buf: &mut [u8]) -> mbedtls::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => codes::NetConnReset.into(),
            ErrorKind::Interrupted => codes::SslWantRead.into(),
            _ => codes::NetRecvFailed.into(),
        })
    }

    fn send(&mut self, buf: &[u8]) -> mbedtls::Result<usize> {
        self.0.write(buf).map_err(|e| match e.kind() {
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => codes::NetConnReset.into(),
            ErrorKind::Interrupted => codes::SslWantWrite.into(),
            _ => codes::NetSendFailed.into(),
        })
    }
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub struct HandshakeFailure {
    /// What `mbedtls_ssl_handshake` returned (e.g. -0x2700, -0x3000, -0x7780, -0x7280, -0x50).
    pub code: i32,
    /// The verification as far as it went: flags are `mbedtls_ssl_get_verify_result` (0 when
    /// the handshake died before the certificate was verified, as in mbedTLS 2.x).
    pub verdict: ChainVerdict,
}

/// Runs the handshake with `hostname` (SNI and name check) on `stream`.
pub fn handshake(
    stream: TcpStream,
    hostname: &str,
    policy: &DevicePolicy,
) -> Result<Result<(Session, ChainVerdict), HandshakeFailure>, DeviceTlsError> {
    let record = Arc::new(Mutex::new(Recorder::default()));
    let mut config = Config::new(Endpoint::Client, Transport::Stream, Preset::Default);
    let rng = CtrDrbg::new(Arc::new(OsEntropy::new()), None).map_err(DeviceTlsError::Setup)?;
    config.set_rng(Arc::new(rng));
    config.set_authmode(AuthMode::Required);
    config.set_max_version(Version::Tls1_2).map_err(DeviceTlsError::Setup)?;
    match &policy.anchors {
        Anchors::Roots(_) => config.set_ca_list(Arc::new(policy.trusted_list()?), None),
        // esp_crt_bundle_attach: no trusted certificate is ever offered as a parent.
        Anchors::Bundle { .. } => config.set_ca_callback(|_: &MbedtlsList<Certificate>| Ok(MbedtlsList::new())),
    }
    config.set_verify_callback(policy.verify_callback(Arc::clone(&record)));
    let mut context = Context::new(Arc::new(config));
    let result = context.establish(EspSocket(stream), Some(hostname));
    let flags = match context.verify_result() {
        Ok(()) => 0,
        Err(flags) => flags.bits(),
    };
    let Recorder { path, log } = Recorder::take(&record);
    Ok(match result {
        Ok(()) => Ok((context, ChainVerdict { code: 0, flags, path, log })),
        Err(error) => {
            let code = error.to_int();
            let verify_code = if path.is_empty() { 0 } else { code };
            Err(HandshakeFailure { code, verdict: ChainVerdict { code: verify_code, flags, path, log } })
        }
    })
}
