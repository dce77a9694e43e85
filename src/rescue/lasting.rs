//! How long an accepted chain keeps working: for a device that checks dates against the
//! calendar, the first later date on which it refuses the chain (judged again by the device at
//! every date a certificate of the chain, or the trusted one it ends under, changes validity);
//! for one that checks none, for as long as the server sends it. Either way the owner's leaf
//! is renewed from the issuing CA, which issues until its CA stops (or its certificate expires).

use super::trust::Trusted;
use super::{IssuingCa, SentCert};
use crate::device_tls::{DeviceTlsError, judge_issuers};
use crate::predict::Device;

/// How long an answer keeps working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lasting {
    /// The device checks dates against the calendar (its clock set by SNTP).
    pub follows_calendar: bool,
    /// The device checks dates against a clock that does not follow the calendar (a fixed date,
    /// or never set): what it reads.
    pub fixed_clock: Option<i64>,
    /// Certificates the chain uses (sent, and the trusted one it ends under) already past their
    /// `notAfter` on the day: common name and `notAfter`. A device that checks no dates takes
    /// them anyway.
    pub expired: Vec<(String, i64)>,
    /// For a device that follows the calendar: when it starts refusing the chain; `None`: it
    /// accepts the chain at every date a certificate changes validity, or it does not follow
    /// the calendar.
    pub until: Option<Refusal>,
    /// The last day a leaf can come from the issuing CA (Unix seconds): the end of its issuing
    /// period when its CA announced one, else its certificate's expiry.
    pub issuing_until: i64,
    /// `issuing_until` is an announced end of issuing, not only the certificate's expiry.
    pub issuing_end_known: bool,
}

/// The first date a device that checks dates refuses a chain it accepts today.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The first second it refuses it (Unix seconds).
    pub at: i64,
    /// The certificate whose validity changes then (common name).
    pub certificate: String,
    /// It expires then (else it becomes valid, and the device builds another path).
    pub expires: bool,
}

/// How long `chain` (accepted on `at` by `device`, judged with the real anchors) keeps working.
pub(super) fn lasting(
    device: &Device,
    chain: &[SentCert],
    anchor: &Trusted,
    issuing: &IssuingCa,
    at: i64,
) -> Result<Lasting, DeviceTlsError> {
    let follows_calendar = device.time_check && device.clock == crate::firmware::profile::ClockSource::Sntp;
    let fixed_clock = if device.time_check && !follows_calendar { device.date_check_at(at) } else { None };
    let mut expired: Vec<(String, i64)> =
        chain.iter().filter(|c| c.not_after < at).map(|c| (c.common_name.clone(), c.not_after)).collect();
    if let Some(not_after) = anchor.not_after.filter(|not_after| *not_after < at) {
        expired.push((anchor.common_name.clone(), not_after));
    }
    let until = if follows_calendar { first_refusal(device, chain, anchor, at)? } else { None };
    let period_end = issuing.period.as_ref().and_then(|p| p.until);
    let (issuing_until, issuing_end_known) = match period_end {
        Some(end) if end <= issuing.not_after => (end, true),
        _ => (issuing.not_after, false),
    };
    Ok(Lasting { follows_calendar, fixed_clock, expired, until, issuing_until, issuing_end_known })
}

/// The first date after `at` on which the device refuses the chain.
fn first_refusal(
    device: &Device,
    chain: &[SentCert],
    anchor: &Trusted,
    at: i64,
) -> Result<Option<Refusal>, DeviceTlsError> {
    let mut changes: Vec<(i64, String, bool)> = Vec::new();
    for cert in chain {
        changes.push((cert.not_before, cert.common_name.clone(), false));
        changes.push((cert.not_after.saturating_add(1), cert.common_name.clone(), true));
    }
    if let Some(not_after) = anchor.not_after {
        changes.push((not_after.saturating_add(1), anchor.common_name.clone(), true));
    }
    changes.retain(|(when, _, _)| *when > at);
    changes.sort();
    let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.der.clone()).collect();
    for (when, certificate, expires) in changes {
        let refused = if ders.is_empty() {
            // The leaf alone: the trusted certificate's own expiry is the only change.
            true
        } else {
            let Some(policy) = device.policy(when) else { return Ok(None) };
            !judge_issuers(&ders, &policy)?.accepted()
        };
        if refused {
            return Ok(Some(Refusal { at: when, certificate, expires }));
        }
    }
    Ok(None)
}
