//! The served chain as a picture: one bar per certificate for its validity window, on a time
//! axis with the device's clock drawn across, and the same facts as a table.

use std::fmt::Write;

use time::OffsetDateTime;

use super::escape::Escaped;
use crate::results::ChainCert;

const WIDTH: f64 = 760.0;
const MARGIN: f64 = 12.0;
const ROW: f64 = 40.0;
const AXIS: f64 = 34.0;
const MAX_TICKS: i64 = 8;

/// Where a certificate's window stands at the device's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Valid,
    Expired,
    NotYetValid,
    /// No device clock to judge against.
    Unjudged,
}

impl Standing {
    pub fn of(cert: &ChainCert, clock: Option<i64>) -> Self {
        match clock {
            None => Self::Unjudged,
            Some(now) if now > cert.not_after => Self::Expired,
            Some(now) if now < cert.not_before => Self::NotYetValid,
            Some(_) => Self::Valid,
        }
    }

    const fn class(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::Unjudged => "unjudged",
        }
    }

    const fn words(self) -> &'static str {
        match self {
            Self::Valid => "valid at the device's clock",
            Self::Expired => "expired at the device's clock",
            Self::NotYetValid => "not yet valid at the device's clock",
            Self::Unjudged => "device clock unknown",
        }
    }
}

/// A date as `YYYY-MM-DD` (UTC); out-of-range times as their Unix seconds.
pub fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).map_or_else(|_| unix.to_string(), |t| t.date().to_string())
}

/// The SVG and the table for `chain` (leaf first), judged at `clock` when known.
pub fn chain_section(out: &mut String, chain: &[ChainCert], clock: Option<i64>) {
    if chain.is_empty() {
        return;
    }
    let mut lo = chain.iter().map(|c| c.not_before.min(c.not_after)).min().unwrap_or(0);
    let mut hi = chain.iter().map(|c| c.not_after.max(c.not_before)).max().unwrap_or(0);
    if let Some(now) = clock {
        lo = lo.min(now);
        hi = hi.max(now);
    }
    let span = ((hi - lo) as f64).max(86_400.0);
    let (lo, span) = (lo as f64 - span * 0.03, span * 1.06);
    let x = |t: i64| MARGIN + (t as f64 - lo) / span * (WIDTH - 2.0 * MARGIN);
    let height = chain.len() as f64 * ROW + AXIS;
    let _ = write!(
        out,
        "<svg class=\"chain\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"validity of the served certificates\">"
    );
    for (index, cert) in chain.iter().enumerate() {
        let top = index as f64 * ROW;
        let standing = Standing::of(cert, clock);
        let (left, right) = (x(cert.not_before), x(cert.not_after).max(x(cert.not_before) + 2.0));
        let _ = write!(
            out,
            "<text x=\"{MARGIN}\" y=\"{:.1}\">#{} {}</text>\
             <rect class=\"bar {}\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" rx=\"3\">\
             <title>{} → {}: {}</title></rect>",
            top + 14.0,
            index + 1,
            Escaped(&cert.subject),
            standing.class(),
            top + 20.0,
            right - left,
            date(cert.not_before),
            date(cert.not_after),
            standing.words(),
        );
    }
    let axis_y = chain.len() as f64 * ROW + 4.0;
    let _ =
        write!(out, "<line class=\"axis\" x1=\"{MARGIN}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\"/>", WIDTH - MARGIN);
    for year in ticks(lo as i64, (lo + span) as i64) {
        let Ok(start) = time::Date::from_calendar_date(year as i32, time::Month::January, 1) else { continue };
        let tx = x(start.midnight().assume_utc().unix_timestamp());
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{tx:.1}\" y1=\"{axis_y}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{tx:.1}\" y=\"{:.1}\">{year}</text>",
            axis_y + 5.0,
            axis_y + 18.0
        );
    }
    if let Some(now) = clock {
        let cx = x(now);
        let _ = write!(
            out,
            "<line class=\"clock\" x1=\"{cx:.1}\" y1=\"0\" x2=\"{cx:.1}\" y2=\"{axis_y}\"/>\
             <text class=\"clock\" x=\"{cx:.1}\" y=\"{:.1}\">device clock {}</text>",
            axis_y + 30.0,
            date(now)
        );
    }
    out.push_str("</svg>");
    out.push_str(
        "<table class=\"certs\"><thead><tr><th>#</th><th>subject</th><th>issuer</th><th>not before</th>\
         <th>not after</th><th>at the device's clock</th></tr></thead><tbody>",
    );
    for (index, cert) in chain.iter().enumerate() {
        let standing = Standing::of(cert, clock);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            index + 1,
            Escaped(&cert.subject),
            Escaped(&cert.issuer),
            date(cert.not_before),
            date(cert.not_after),
            standing.class(),
            standing.class().replace('-', " ")
        );
    }
    out.push_str("</tbody></table>");
}

/// Years to mark on an axis from `lo` to `hi` (Unix seconds), at most [`MAX_TICKS`].
fn ticks(lo: i64, hi: i64) -> Vec<i64> {
    let year = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_or(1970, |t| i64::from(t.year()));
    let (first, last) = (year(lo) + 1, year(hi));
    if last < first {
        return Vec::new();
    }
    let step = ((last - first) / MAX_TICKS + 1).max(1);
    (first..=last).step_by(step as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_judged_at_the_clock_and_names_escaped() {
        let cert = ChainCert { subject: "CN=<b>".into(), issuer: "CN=R".into(), not_before: 100, not_after: 200 };
        assert_eq!(Standing::of(&cert, Some(150)), Standing::Valid);
        assert_eq!(Standing::of(&cert, Some(201)), Standing::Expired);
        assert_eq!(Standing::of(&cert, Some(99)), Standing::NotYetValid);
        assert_eq!(Standing::of(&cert, None), Standing::Unjudged);
        let mut out = String::new();
        chain_section(&mut out, &[cert], Some(1_700_000_000));
        assert!(out.contains("CN=&lt;b&gt;") && !out.contains("<b>"));
        assert!(out.contains("device clock 2023-11-14"));
    }

    #[test]
    fn at_most_a_few_year_ticks() {
        assert!(ticks(0, 2_000_000_000).len() <= MAX_TICKS as usize + 1);
        assert_eq!(ticks(1_600_000_000, 1_700_000_000), [2021, 2022, 2023]);
    }
}
