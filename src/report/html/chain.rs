//! The served chain as a picture: one bar per certificate for its validity window, on a time
//! axis with the device's clock drawn across, and the same facts as a table.

use maud::{Markup, html};
use time::OffsetDateTime;

use super::visible::visible;
use crate::results::ChainCert;

const WIDTH: f64 = 760.0;
const MARGIN: f64 = 12.0;
const ROW: f64 = 40.0;
const AXIS: f64 = 34.0;
const MAX_TICKS: i64 = 8;

/// Where a certificate's window stands at the device's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
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
pub(crate) fn chain_section(chain: &[ChainCert], clock: Option<i64>) -> Markup {
    if chain.is_empty() {
        return html! {};
    }
    html! {
        (picture(chain, clock))
        (cert_table(chain, clock))
    }
}

/// Where a time falls across the picture: the certificates' windows and the clock, with a
/// little room on both sides.
struct Scale {
    lo: f64,
    span: f64,
}

impl Scale {
    fn new(chain: &[ChainCert], clock: Option<i64>) -> Self {
        let mut lo = chain.iter().map(|c| c.not_before.min(c.not_after)).min().unwrap_or(0);
        let mut hi = chain.iter().map(|c| c.not_after.max(c.not_before)).max().unwrap_or(0);
        if let Some(now) = clock {
            lo = lo.min(now);
            hi = hi.max(now);
        }
        let span = ((hi - lo) as f64).max(86_400.0);
        Self { lo: lo as f64 - span * 0.03, span: span * 1.06 }
    }

    fn x(&self, t: i64) -> f64 {
        MARGIN + (t as f64 - self.lo) / self.span * (WIDTH - 2.0 * MARGIN)
    }

    /// The years whose first day is drawn on the axis, with where.
    fn ticks(&self) -> Vec<(i64, f64)> {
        let first_day = |year: i64| time::Date::from_calendar_date(year as i32, time::Month::January, 1).ok();
        ticks(self.lo as i64, (self.lo + self.span) as i64)
            .into_iter()
            .filter_map(|year| Some((year, self.x(first_day(year)?.midnight().assume_utc().unix_timestamp()))))
            .collect()
    }
}

/// A coordinate as the picture writes it: one decimal.
fn at(v: f64) -> String {
    format!("{v:.1}")
}

/// One bar per certificate, on a time axis with a tick per year and the device's clock.
fn picture(chain: &[ChainCert], clock: Option<i64>) -> Markup {
    let scale = Scale::new(chain, clock);
    let height = chain.len() as f64 * ROW + AXIS;
    let axis_y = chain.len() as f64 * ROW + 4.0;
    html! {
        svg class="chain" viewBox={ "0 0 " (WIDTH) " " (height) } role="img"
            aria-label="validity of the served certificates" {
            @for (index, cert) in chain.iter().enumerate() {
                (bar(&scale, index, cert, clock))
            }
            line class="axis" x1=(MARGIN) y1=(axis_y) x2=(WIDTH - MARGIN) y2=(axis_y) {}
            @for (year, tx) in scale.ticks() {
                line class="tick" x1=(at(tx)) y1=(axis_y) x2=(at(tx)) y2=(at(axis_y + 5.0)) {}
                text class="tick" x=(at(tx)) y=(at(axis_y + 18.0)) { (year) }
            }
            @if let Some(now) = clock {
                line class="clock" x1=(at(scale.x(now))) y1="0" x2=(at(scale.x(now))) y2=(axis_y) {}
                text class="clock" x=(at(scale.x(now))) y=(at(axis_y + 30.0)) { "device clock " (date(now)) }
            }
        }
    }
}

/// Certificate `index`: its name, then its validity window as a bar coloured by its standing.
fn bar(scale: &Scale, index: usize, cert: &ChainCert, clock: Option<i64>) -> Markup {
    let top = index as f64 * ROW;
    let standing = Standing::of(cert, clock);
    let left = scale.x(cert.not_before);
    let right = scale.x(cert.not_after).max(left + 2.0);
    html! {
        text x=(MARGIN) y=(at(top + 14.0)) { "#" (index + 1) " " (visible(&cert.subject)) }
        rect class={ "bar " (standing.class()) } x=(at(left)) y=(at(top + 20.0)) width=(at(right - left))
            height="14" rx="3" {
            title { (date(cert.not_before)) " → " (date(cert.not_after)) ": " (standing.words()) }
        }
    }
}

/// The same facts as a table: names, dates and standing.
fn cert_table(chain: &[ChainCert], clock: Option<i64>) -> Markup {
    html! {
        table class="certs" {
            thead {
                tr {
                    th { "#" } th { "subject" } th { "issuer" } th { "not before" } th { "not after" }
                    th { "at the device's clock" }
                }
            }
            tbody {
                @for (index, cert) in chain.iter().enumerate() {
                    @let standing = Standing::of(cert, clock);
                    tr {
                        td { (index + 1) }
                        td { (visible(&cert.subject)) }
                        td { (visible(&cert.issuer)) }
                        td { (date(cert.not_before)) }
                        td { (date(cert.not_after)) }
                        td class=(standing.class()) { (standing.class().replace('-', " ")) }
                    }
                }
            }
        }
    }
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
        let out = chain_section(&[cert], Some(1_700_000_000)).into_string();
        assert!(out.contains("CN=&lt;b&gt;") && !out.contains("<b>"));
        assert!(out.contains("device clock 2023-11-14"));
        // SVG's `<line/>` is not void in HTML: each is closed, or it would hold what follows.
        assert_eq!(out.matches("<line ").count(), out.matches("</line>").count());
    }

    #[test]
    fn at_most_a_few_year_ticks() {
        assert!(ticks(0, 2_000_000_000).len() <= MAX_TICKS as usize + 1);
        assert_eq!(ticks(1_600_000_000, 1_700_000_000), [2021, 2022, 2023]);
    }
}
