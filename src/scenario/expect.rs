//! A scenario's `[expect]` table: an expectation per firmware id, and rules
//! (`[[expect.rule]]`) that give one to every fleet member they match (by tag, trust, trusted
//! authority, ESP-IDF range, date checks). A firmware named in the table takes that entry; any
//! other takes the one rule that matches it, or where none does, the one fallback rule
//! (`fallback = true`) that matches it. Two rules of the same tier matching one firmware is an
//! error at the second rule's `file:line:column`, as is a rule that matches no member of the
//! fleet it could apply to.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use toml::Spanned;

use super::ScenarioErrorKind;
use crate::firmware::{FirmwareManifest, Fleet, Trust};
use crate::idf::IdfVersion;
use crate::outcome::{OutcomeClass, VerifyReason};
use crate::toml_source::Location;

/// What a firmware is expected to do in a scenario, and how that was derived.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Expectation {
    /// The outcome class expected.
    pub outcome: OutcomeClass,
    /// The verification failure's reason; given exactly when `outcome` is `tls-verify`.
    pub reason: Option<VerifyReason>,
    /// How the expectation was derived (`field log FL02`, `mbedTLS rule: ...`, `derived: ...`);
    /// never empty when given.
    pub source: Option<String>,
}

impl Expectation {
    /// The expected class with its reason, as results compare and record it.
    pub fn outcome(&self) -> crate::outcome::Outcome {
        crate::outcome::Outcome { outcome: self.outcome, reason: self.reason }
    }
}

/// Which firmware a rule is for: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirmwareMatch {
    /// The manifest's `tags` include this one.
    pub firmware_tag: Option<String>,
    /// The kind of trust: `pem`, `bundle` or `embedded`.
    pub trust: Option<TrustKind>,
    /// The firmware trusts this lab authority (in its PEM roots or its bundle).
    pub trusts: Option<String>,
    /// The firmware's ESP-IDF release is in this range.
    pub idf: Option<IdfRange>,
    /// The firmware checks certificate dates (`time_check`) or does not.
    pub time_check: Option<bool>,
}

/// The kind of trust a firmware has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustKind {
    /// PEM roots compiled in ([`Trust::Pem`]).
    Pem,
    /// ESP-IDF's certificate bundle ([`Trust::Bundle`]).
    Bundle,
    /// Whatever a real image embeds ([`Trust::Embedded`]).
    Embedded,
}

/// ESP-IDF releases: every bound must hold (`">=4.4, <6.0"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdfRange {
    /// Each bound: how a release compares with the version given.
    pub bounds: Vec<(Comparison, IdfVersion)>,
}

/// How a release is compared with a bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `=`
    Equal,
    /// `>=`
    GreaterOrEqual,
    /// `>`
    Greater,
}

impl IdfRange {
    /// `">=4.4"`, `"<5.0"`, `"=3.2"`, `">=4.4, <6.0"`: comma-separated bounds, each an operator
    /// and a version (`4.4`, `v4.4.8`; a missing patch is 0).
    pub fn parse(text: &str) -> Option<Self> {
        let mut bounds = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (comparison, rest) = [
                (">=", Comparison::GreaterOrEqual),
                ("<=", Comparison::LessOrEqual),
                (">", Comparison::Greater),
                ("<", Comparison::Less),
                ("=", Comparison::Equal),
            ]
            .into_iter()
            .find_map(|(op, comparison)| part.strip_prefix(op).map(|rest| (comparison, rest.trim())))?;
            let version = rest.strip_prefix('v').unwrap_or(rest);
            let numbers: Vec<&str> = version.split('.').collect();
            if !(2..=3).contains(&numbers.len()) {
                return None;
            }
            let number = |at: usize| numbers.get(at).map_or(Some(0), |n| n.parse::<u8>().ok());
            bounds.push((comparison, IdfVersion::new(number(0)?, number(1)?, number(2)?)));
        }
        Some(Self { bounds })
    }

    /// Whether `version` is within every bound.
    pub fn contains(&self, version: IdfVersion) -> bool {
        self.bounds.iter().all(|&(comparison, bound)| match comparison {
            Comparison::Less => version < bound,
            Comparison::LessOrEqual => version <= bound,
            Comparison::Equal => version == bound,
            Comparison::GreaterOrEqual => version >= bound,
            Comparison::Greater => version > bound,
        })
    }
}

impl FirmwareMatch {
    /// Whether `firmware` of `fleet` meets every condition.
    pub fn matches(&self, firmware: &FirmwareManifest, fleet: &Fleet) -> bool {
        let kind = match firmware.trust {
            Trust::Pem(_) => TrustKind::Pem,
            Trust::Bundle(_) => TrustKind::Bundle,
            Trust::Embedded => TrustKind::Embedded,
        };
        self.firmware_tag.as_ref().is_none_or(|tag| firmware.tags.contains(tag))
            && self.trust.is_none_or(|trust| trust == kind)
            && self.trusts.as_ref().is_none_or(|name| fleet.trusted_authorities(firmware).contains(name))
            && self.idf.as_ref().is_none_or(|range| range.contains(firmware.idf.release))
            && self.time_check.is_none_or(|checks| checks == firmware.time_check)
    }
}

/// One `[[expect.rule]]`: an expectation for the fleet members it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectRule {
    /// Which firmware the rule is for.
    pub matcher: FirmwareMatch,
    /// Applies only to firmware no other rule matches.
    pub fallback: bool,
    /// What the firmware it matches is expected to do.
    pub expectation: Expectation,
    /// Where the rule is written.
    pub location: Location,
}

/// A firmware that two rules of one tier both match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConflict {
    /// The firmware's id.
    pub firmware: String,
    /// The first rule that matches it.
    pub first: Location,
    /// The second.
    pub second: Location,
}

/// The first rule that gives no member of `fleet` its expectation (every member it matches has
/// an entry of its own or an earlier tier's rule); a fleet other than the one the rules were
/// written for may leave rules unused, so only `scenario check` and tests ask.
pub fn unused(entries: &BTreeMap<String, Expectation>, rules: &[ExpectRule], fleet: &Fleet) -> Option<Location> {
    let applies = |rule: &ExpectRule| {
        fleet.members().any(|firmware| {
            !entries.contains_key(&firmware.id)
                && rule.matcher.matches(firmware, fleet)
                && (!rule.fallback || !rules.iter().any(|r| !r.fallback && r.matcher.matches(firmware, fleet)))
        })
    };
    rules.iter().find(|rule| !applies(rule)).map(|rule| rule.location.clone())
}

/// The expectation of every fleet member: the table's entry for it, else the one rule that
/// matches it (none: nothing expected).
pub fn resolve(
    entries: &BTreeMap<String, Expectation>,
    rules: &[ExpectRule],
    fleet: &Fleet,
) -> Result<BTreeMap<String, Expectation>, RuleConflict> {
    let mut resolved = entries.clone();
    for firmware in fleet.members() {
        if entries.contains_key(&firmware.id) {
            continue;
        }
        for fallback in [false, true] {
            let mut matching = rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| rule.fallback == fallback && rule.matcher.matches(firmware, fleet));
            let Some((_, rule)) = matching.next() else { continue };
            if let Some((_, second)) = matching.next() {
                return Err(RuleConflict {
                    firmware: firmware.id.clone(),
                    first: rule.location.clone(),
                    second: second.location.clone(),
                });
            }
            resolved.insert(firmware.id.clone(), rule.expectation.clone());
            break;
        }
    }
    Ok(resolved)
}

/// `[expect]` as written: entries by firmware id, and `rule = [...]`.
#[derive(Debug, Default)]
pub(super) struct RawExpect {
    pub entries: BTreeMap<String, Spanned<RawExpectation>>,
    pub rules: Vec<Spanned<RawRule>>,
}

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectVisitor;
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = RawExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of firmware ids and `[[expect.rule]]`s")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawExpect, A::Error> {
                let mut expect = RawExpect::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "rule" {
                        expect.rules = map.next_value()?;
                    } else {
                        let value = map.next_value()?;
                        expect.entries.insert(key, value);
                    }
                }
                Ok(expect)
            }
        }
        deserializer.deserialize_map(ExpectVisitor)
    }
}

/// `"updated"` or `{ outcome = "tls-verify", reason = "expired", source = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawExpectation {
    Class(OutcomeClass),
    Full { outcome: OutcomeClass, reason: Option<VerifyReason>, source: Option<String> },
}

impl RawExpectation {
    pub fn check(self) -> Result<Expectation, ScenarioErrorKind> {
        match self {
            Self::Class(outcome) => checked(outcome, None, None),
            Self::Full { outcome, reason, source } => checked(outcome, reason, source),
        }
    }
}

/// An expectation whose reason fits its class and whose source, when given, says something.
fn checked(
    outcome: OutcomeClass,
    reason: Option<VerifyReason>,
    source: Option<String>,
) -> Result<Expectation, ScenarioErrorKind> {
    if source.as_ref().is_some_and(|source| source.trim().is_empty()) {
        return Err(ScenarioErrorKind::EmptySource);
    }
    match (outcome, reason) {
        (OutcomeClass::TlsVerify, None) => Err(ScenarioErrorKind::NoReason),
        (OutcomeClass::TlsVerify, Some(_)) | (_, None) => Ok(Expectation { outcome, reason, source }),
        (other, Some(_)) => Err(ScenarioErrorKind::Reason { outcome: other }),
    }
}

/// One `[[expect.rule]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub firmware_tag: Option<String>,
    pub trust: Option<TrustKind>,
    pub trusts: Option<Spanned<String>>,
    pub idf: Option<Spanned<String>>,
    pub time_check: Option<bool>,
    #[serde(default)]
    pub fallback: bool,
    pub outcome: OutcomeClass,
    pub reason: Option<VerifyReason>,
    pub source: Option<String>,
}

impl RawRule {
    /// The rule's matcher and expectation, or where the value at fault starts (`None`: the
    /// rule's start) and what is wrong with it; `known` tells a lab authority's name.
    pub fn check(
        self,
        known: impl Fn(&str) -> bool,
    ) -> Result<(FirmwareMatch, bool, Expectation), (Option<usize>, ScenarioErrorKind)> {
        let idf = match &self.idf {
            None => None,
            Some(text) => Some(IdfRange::parse(text.get_ref()).ok_or_else(|| {
                (Some(text.span().start), ScenarioErrorKind::IdfRange { text: text.get_ref().clone() })
            })?),
        };
        if let Some(name) = &self.trusts
            && !known(name.get_ref())
        {
            return Err((Some(name.span().start), ScenarioErrorKind::UnknownTrusted { name: name.get_ref().clone() }));
        }
        let fallback = self.fallback;
        let matcher = FirmwareMatch {
            firmware_tag: self.firmware_tag,
            trust: self.trust,
            trusts: self.trusts.map(Spanned::into_inner),
            idf,
            time_check: self.time_check,
        };
        if self.source.is_none() {
            return Err((None, ScenarioErrorKind::NoSource));
        }
        let expectation = checked(self.outcome, self.reason, self.source).map_err(|kind| (None, kind))?;
        Ok((matcher, fallback, expectation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idf_ranges_parse_and_bound() {
        let range = IdfRange::parse(">=4.4, <6.0").unwrap();
        assert!(range.contains(IdfVersion::new(4, 4, 8)));
        assert!(range.contains(IdfVersion::new(5, 4, 2)));
        assert!(!range.contains(IdfVersion::new(6, 0, 0)));
        assert!(!range.contains(IdfVersion::new(3, 2, 0)));
        assert!(IdfRange::parse("=v3.2").unwrap().contains(IdfVersion::new(3, 2, 0)));
        assert!(IdfRange::parse("<=5.2.5").unwrap().contains(IdfVersion::new(5, 2, 5)));
        assert!(IdfRange::parse(">5.2.5").unwrap().contains(IdfVersion::new(5, 4, 0)));
        for bad in ["4.4", ">=", ">=four", ">=4", ">=4.4.4.4", ">=4.4,", "~4.4"] {
            assert_eq!(IdfRange::parse(bad), None, "{bad}");
        }
    }
}
