//! TLS for the update server: rustls (aws-lc-rs, chosen explicitly), the exact chain a scenario
//! names whatever its order or validity, and the suites mbedTLS 2.x clients offer.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::ServerError;
use super::legacy_key::LegacyRsaKey;
use crate::scenario::{ServedChain, TlsVersions};

/// Sends the chain of the host the client names (SNI), else the default chain. rustls's own
/// `with_single_cert` and SNI resolver check the certificates; a scenario may serve anything,
/// so chains go through `CertifiedKey::new`, which checks nothing.
#[derive(Debug)]
struct ExactChain {
    default: Arc<CertifiedKey>,
    hosts: Vec<(String, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for ExactChain {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|sni| {
            self.hosts.iter().find(|(name, _)| name.eq_ignore_ascii_case(sni)).map(|(_, key)| key.clone())
        });
        Some(by_name.unwrap_or_else(|| self.default.clone()))
    }
}

/// The rustls configuration that serves `chain`, and `hosts`' chains by SNI.
pub(crate) fn server_config(
    chain: &ServedChain,
    hosts: &[(String, ServedChain)],
    versions: TlsVersions,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let mut crypto = provider::default_provider();
    // ECDHE with AES-GCM (what ESP-IDF's mbedTLS offers by default), then ChaCha20 for TLS 1.3.
    crypto.cipher_suites = vec![
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    crypto.kx_groups = vec![provider::kx_group::SECP256R1, provider::kx_group::SECP384R1, provider::kx_group::X25519];
    let crypto = Arc::new(crypto);

    let default = certified_key(chain, &crypto)?;
    let hosts = hosts
        .iter()
        .map(|(name, chain)| Ok((name.clone(), certified_key(chain, &crypto)?)))
        .collect::<Result<Vec<_>, ServerError>>()?;

    let mut protocol_versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if versions.tls12 {
        protocol_versions.push(&rustls::version::TLS12);
    }
    if versions.tls13 {
        protocol_versions.push(&rustls::version::TLS13);
    }
    let config = rustls::ServerConfig::builder_with_provider(crypto)
        .with_protocol_versions(&protocol_versions)
        .map_err(|source| ServerError::Tls { source })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ExactChain { default, hosts }));
    Ok(Arc::new(config))
}

/// The chain and its first certificate's key, ready to send.
fn certified_key(
    chain: &ServedChain,
    crypto: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>, ServerError> {
    let key =
        PrivateKeyDer::from_pem_slice(chain.key_pem.as_bytes()).map_err(|source| ServerError::KeyPem { source })?;
    let signing_key = match crypto.key_provider.load_private_key(key.clone_key()) {
        Ok(signing_key) => signing_key,
        // aws-lc-rs refuses RSA keys under 2048 bits; a scenario may serve one (RSA-1024).
        Err(source) => match LegacyRsaKey::from_der(&key) {
            Ok(legacy) if legacy.bits() < 2048 => {
                tracing::debug!(bits = legacy.bits(), "RSA key too short for aws-lc-rs: signing with the rsa crate");
                Arc::new(legacy)
            }
            _ => return Err(ServerError::Key { source }),
        },
    };
    let certs: Vec<CertificateDer<'static>> = chain.certs.iter().map(|c| CertificateDer::from(c.der.clone())).collect();
    Ok(Arc::new(CertifiedKey::new(certs, signing_key)))
}
