//! Offline predictions: how each firmware's TLS client judges a certificate chain, with no
//! board and no handshake, and when it will stop accepting it.
//!
//! The decision is [`crate::device_tls::judge_chain`], the one the twin's handshake makes
//! (same mbedTLS, trusted list and verify callback), with the policy read from the firmware's
//! app image as the twin reads it ([`Device::from_profile`]): the two cannot disagree on the
//! same chain, host name and date.

mod device;
mod forecast;

pub use device::{Device, DeviceError, UNSET_CLOCK, date_check_at};
pub use forecast::{Cliff, CliffKind, Forecast, forecast};

use crate::device_tls::{ChainVerdict, DeviceTlsError, judge_chain};
use crate::outcome::{OutcomeClass, VerifyReason};

/// How one device judges the chain on one date.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// The device judged.
    pub device: Device,
    /// The date judged (Unix seconds).
    pub today: i64,
    /// What the device's clock read when it checked dates; `None`: it checked none.
    pub date_check_at: Option<i64>,
    /// The device's decision, as its mbedTLS made it.
    pub verdict: ChainVerdict,
    /// Present when asked for.
    pub forecast: Option<Forecast>,
}

impl Prediction {
    /// The device accepts the chain.
    pub fn accepted(&self) -> bool {
        self.verdict.accepted()
    }

    /// How an update meeting this chain ends: `None` when the chain is accepted.
    pub fn rejection(&self) -> Option<(OutcomeClass, VerifyReason)> {
        self.verdict.rejection()
    }
}

/// A prediction that cannot be made for a device (`firmware`: its id, `None` for the bare
/// trust set).
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The chain or the device's trusted roots do not parse.
    #[error("{}: {source}", firmware.as_deref().unwrap_or("trust set"))]
    Tls {
        /// The firmware's id; `None` for the bare trust set.
        firmware: Option<String>,
        /// What did not parse.
        source: DeviceTlsError,
    },
    /// Nothing says which ESP-IDF version the firmware was built with.
    #[error("{}: the ESP-IDF version is unknown (no app descriptor, no version string)", firmware.as_deref().unwrap_or("trust set"))]
    UnknownIdf {
        /// The firmware's id; `None` for the bare trust set.
        firmware: Option<String>,
    },
}

/// How `device` judges `chain` (DER, in the order the server sends it, leaf first) on `today`
/// (Unix seconds), and with `with_forecast` when it will stop accepting it.
pub fn predict_one(
    device: &Device,
    chain: &[Vec<u8>],
    today: i64,
    with_forecast: bool,
) -> Result<Prediction, PredictError> {
    let firmware = || device.firmware.clone();
    let policy = device.policy(today).ok_or_else(|| PredictError::UnknownIdf { firmware: firmware() })?;
    let tls = |source| PredictError::Tls { firmware: firmware(), source };
    let verdict = judge_chain(chain, device.hostname.as_deref(), &policy).map_err(tls)?;
    let forecast = if with_forecast { Some(forecast(device, chain, today, &verdict).map_err(tls)?) } else { None };
    Ok(Prediction { device: device.clone(), today, date_check_at: policy.date_check_at, verdict, forecast })
}

/// [`predict_one`] for every device, in order.
pub fn predict(
    devices: &[Device],
    chain: &[Vec<u8>],
    today: i64,
    with_forecast: bool,
) -> Result<Vec<Prediction>, PredictError> {
    devices.iter().map(|device| predict_one(device, chain, today, with_forecast)).collect()
}

/// Why a PEM file gives no certificates.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The text is not well-formed PEM (the parser's message).
    #[error("not PEM: {0}")]
    Malformed(String),
    /// Well-formed PEM, but no certificate block.
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")]
    NoCertificate,
}

/// The certificates (DER) of PEM text, in file order; other blocks (keys) are skipped.
pub fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    let blocks = pem::parse_many(text).map_err(|e| PemError::Malformed(e.to_string()))?;
    let certificates: Vec<Vec<u8>> =
        blocks.into_iter().filter(|block| block.tag() == "CERTIFICATE").map(pem::Pem::into_contents).collect();
    if certificates.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_without_certificates_are_refused() {
        assert!(matches!(pem_certificates(b"not a certificate\n"), Err(PemError::NoCertificate)));
        assert!(matches!(pem_certificates(&[0x30, 0x82, 0x01, 0x00]), Err(PemError::NoCertificate)));
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(pem_certificates(key), Err(PemError::NoCertificate)));
        let two = b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(two).unwrap(), [vec![1, 2, 3], vec![4, 5, 6]]);
    }
}
