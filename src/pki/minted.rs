//! What both ways of making a certificate (rcgen in [`super::mint`], the RustCrypto builder
//! in [`super::legacy`]) produce, and the serial numbers they give.

use super::error::MintError;

/// A certificate made from a spec.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The spec's name.
    pub name: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The same certificate as one PEM `CERTIFICATE` block.
    pub pem: String,
}

/// 16 random bytes, top bit clear (a positive INTEGER), never all zero.
pub(super) fn random_serial() -> Result<Vec<u8>, MintError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut serial = vec![0u8; 16];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut serial).map_err(MintError::Randomness)?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    Ok(serial)
}
