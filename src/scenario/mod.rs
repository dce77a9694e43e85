//! Scenario files (`scenarios/*.toml`): which chain the update server presents, in which
//! order, which image it offers, which fault it injects, and what each firmware is expected
//! to do. Read into private raw shapes (unknown keys refused), then checked against the lab
//! PKI into a [`Scenario`]; every error names `file:line:column`.

mod chain;
mod error;
pub mod expect;
mod fault;
pub mod like;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use toml::Spanned;

pub use chain::ServedChain;
pub use error::{ScenarioError, ScenarioErrorKind};
pub use expect::{ExpectRule, Expectation, FirmwareMatch};
pub use fault::{Fault, FaultError};

use crate::firmware::Fleet;
use crate::firmware::start::{OTADATA_ENTRY_BYTES, PowerCut, StartState};
use crate::pki::spec::{self, CertSpec, Defaults};
use crate::pki::{LabPki, SpecError, SpecErrorKind};
use crate::toml_source::TomlSource;

/// The host name the fleet's firmware updates from; leaves carry it unless a scenario is
/// about a host name change.
pub(crate) const FLEET_HOST: &str = "ota.example.com";

/// A checked scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file name without `.toml`: the scenario's id in reports.
    pub id: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// One line saying what the scenario is about (`title`), for reports.
    pub title: String,
    /// Labels for choosing scenarios (`otarig run --tag`): lowercase letters, digits and `-`.
    pub tags: Vec<String>,
    /// The state the device starts the cell in (`[device] start`): the app slot it runs from
    /// and its otadata entry; by default the factory app with otadata erased.
    pub start: StartState,
    /// A power cut the device suffers during the update (`[device] power_cut`); the cell then
    /// powers it on again and the boot must land on a working image.
    pub power_cut: Option<PowerCut>,
    /// The real-world date the scenario stands at.
    pub date: OffsetDateTime,
    /// Certificates the scenario makes itself (its leaf first), issued by lab authorities or
    /// by each other.
    pub certs: Vec<CertSpec>,
    /// Exactly what the server sends, in this order, by name.
    pub chain: Vec<String>,
    /// Which firmware release is offered as the update.
    pub image: Option<String>,
    /// The TLS versions the server offers (`[server] tls`; TLS 1.2 alone by default).
    pub tls: TlsVersions,
    /// The most plaintext bytes the server puts in one record of its HTTP responses
    /// (`[server] record_size`, nginx's `ssl_buffer_size`); `None`: TLS's largest, 16384, as
    /// nginx's default sends them. Handshake messages go in records of up to 16384 bytes
    /// whatever it says, as OpenSSL sends them.
    pub record_size: Option<u32>,
    /// The fault the server injects on the default host (`[server.fault]`), if any.
    pub fault: Option<Fault>,
    /// Other host names served by SNI, each with its own chain, path and fault.
    pub hosts: Vec<HostRoute>,
    /// Expected outcome per firmware id: the entries of `[expect]`, and once
    /// [`Scenario::resolve`]d against a fleet, the rules' expectation for every other member.
    pub expect: BTreeMap<String, Expectation>,
    /// `[[expect.rule]]`s, in file order.
    pub rules: Vec<ExpectRule>,
}

/// Another host name the server answers for, chosen by the client's SNI.
#[derive(Clone, Debug, PartialEq)]
pub struct HostRoute {
    /// The host name, as the client sends it in SNI.
    pub name: String,
    /// Exactly what the server sends for this host, in this order, by name.
    pub chain: Vec<String>,
    /// Where the image is on this host (default: the OTA URL's path).
    pub path: Option<String>,
    /// The fault the server injects for this host, if any.
    pub fault: Option<Fault>,
}

/// TLS versions the server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsVersions {
    pub(crate) tls12: bool,
    pub(crate) tls13: bool,
}

/// Where a served certificate comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CertOrigin<'a> {
    /// One of the scenario's own certificates (`[certs]`, `[leaf]`).
    Scenario(&'a CertSpec),
    /// One of the lab PKI's authorities.
    Authority(&'a CertSpec),
}

impl<'a> CertOrigin<'a> {
    /// The certificate's spec, wherever it comes from.
    pub fn spec(self) -> &'a CertSpec {
        match self {
            Self::Scenario(spec) | Self::Authority(spec) => spec,
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file against the lab PKI.
    pub fn load(path: &Path, pki: &LabPki) -> Result<Self, ScenarioError> {
        let source = TomlSource::read(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Self::from_source(&source, pki)
    }

    /// Checks a scenario's text (its path names it in errors and gives its id).
    pub fn from_source(source: &TomlSource, pki: &LabPki) -> Result<Self, ScenarioError> {
        let raw: raw::RawScenario = source.parse().map_err(SpecError::from)?;
        let check = Checker { source, pki };
        let date = spec::parse_time(raw.date.get_ref())
            .map_err(|e| check.invalid(raw.date.span().start, ScenarioErrorKind::Date(e)))?;
        let certs = check.certificates(raw.certs, raw.leaf, date)?;
        let chain = check.chain(&raw.server.chain, raw.server_span, &certs)?;
        let hosts = check.hosts(&raw.server.hosts, &certs)?;
        let tls = check.tls_versions(raw.server.tls.as_ref())?;
        let record_size = raw.server.record_size.map(|size| check.record_size(&size)).transpose()?;
        check.fault(raw.server.fault.as_ref())?;
        let image = raw.server.image.map(|image| check.image(image)).transpose()?;
        let tags = check.tags(&raw.tags)?;
        let start = match raw.device.as_ref().and_then(|device| device.start.as_ref()) {
            Some(start) => start.get_ref().check(start.span().start).map_err(|(at, kind)| check.invalid(at, kind))?,
            None => StartState::Factory,
        };
        let power_cut = raw.device.and_then(|device| device.power_cut);
        if let Some(cut) = &power_cut
            && let PowerCut::OtadataBytes(bytes) = *cut.get_ref()
            && bytes > OTADATA_ENTRY_BYTES
        {
            return Err(check.invalid(cut.span().start, ScenarioErrorKind::OtadataBytes { bytes }));
        }
        let expect = check.expectations(raw.expect.entries)?;
        let rules = check.rules(raw.expect.rules)?;
        Ok(Scenario {
            id: source.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            path: source.path().to_owned(),
            title: raw.title,
            tags,
            start,
            power_cut: power_cut.map(Spanned::into_inner),
            date,
            certs,
            chain,
            image,
            tls,
            record_size,
            fault: raw.server.fault.map(Spanned::into_inner),
            hosts,
            expect,
            rules,
        })
    }

    /// Gives every member of `fleet` without an entry of its own the expectation of the one
    /// rule that matches it (else the one fallback rule); two rules of one tier matching one
    /// firmware is an error at the second.
    pub fn resolve(&mut self, fleet: &Fleet) -> Result<(), ScenarioError> {
        match expect::resolve(&self.expect, &self.rules, fleet) {
            Ok(resolved) => {
                self.expect = resolved;
                Ok(())
            }
            Err(expect::RuleConflict { firmware, first, second }) => Err(ScenarioError::Invalid {
                location: second,
                kind: ScenarioErrorKind::AmbiguousExpectation { firmware, first },
            }),
        }
    }

    /// A rule that gives no member of `fleet` its expectation (checked before
    /// [`Scenario::resolve`], which fills `expect`), as an error at the rule.
    pub fn check_rules_used(&self, fleet: &Fleet) -> Result<(), ScenarioError> {
        match expect::unused(&self.expect, &self.rules, fleet) {
            None => Ok(()),
            Some(location) => Err(ScenarioError::Invalid { location, kind: ScenarioErrorKind::UnusedRule }),
        }
    }

    /// The spec of a certificate the scenario can serve.
    pub fn cert<'a>(&'a self, name: &str, pki: &'a LabPki) -> Option<CertOrigin<'a>> {
        self.certs
            .iter()
            .find(|c| c.name == name)
            .map(CertOrigin::Scenario)
            .or_else(|| pki.specs().get(name).map(CertOrigin::Authority))
    }
}

/// The checks of one scenario file's parts, each error at its place in the file.
struct Checker<'a> {
    source: &'a TomlSource,
    pki: &'a LabPki,
}

impl Checker<'_> {
    /// A certificate spec error (shared with the lab PKI's file) at byte `at`.
    fn spec_error(&self, at: usize, kind: SpecErrorKind) -> ScenarioError {
        ScenarioError::Spec(SpecError { location: self.source.location(at), kind })
    }

    /// A scenario value error at byte `at`.
    fn invalid(&self, at: usize, kind: ScenarioErrorKind) -> ScenarioError {
        ScenarioError::Invalid { location: self.source.location(at), kind }
    }

    /// The scenario's own certificates, its leaf first: named apart from the lab's authorities,
    /// leaves with 90-day validity around the scenario `date` unless they say otherwise.
    fn certificates(
        &self,
        mut raw_certs: spec::RawCerts,
        leaf: Option<Spanned<spec::RawCert>>,
        date: OffsetDateTime,
    ) -> Result<Vec<CertSpec>, ScenarioError> {
        if let Some(leaf) = leaf {
            if raw_certs.contains_key("leaf") {
                return Err(self.spec_error(leaf.span().start, SpecErrorKind::Duplicate { name: "leaf".into() }));
            }
            raw_certs.insert("leaf".into(), leaf);
        }
        for name in raw_certs.keys() {
            if self.pki.specs().contains_key(name) {
                let at = raw_certs[name].span().start;
                return Err(self.spec_error(at, SpecErrorKind::Duplicate { name: name.clone() }));
            }
        }
        let defaults = Defaults {
            ca: false,
            key_from_issuer: true,
            valid: Some((date - time::Duration::days(30), date + time::Duration::days(60))),
            dns: vec![FLEET_HOST.to_owned()],
            subject_from_names: true,
        };
        let mut certs = spec::check_certs(self.source, &raw_certs, &defaults, self.pki.specs())?;
        certs.sort_by_key(|c| c.name != "leaf");
        Ok(certs)
    }

    /// A served chain: names of the scenario's certificates or the lab's authorities, at least
    /// one (`at`: where the chain's table starts).
    fn chain(&self, names: &[Spanned<String>], at: usize, certs: &[CertSpec]) -> Result<Vec<String>, ScenarioError> {
        let mut chain = Vec::new();
        for name in names {
            let known =
                certs.iter().any(|c| &c.name == name.get_ref()) || self.pki.specs().contains_key(name.get_ref());
            if !known {
                let kind = SpecErrorKind::UnknownCertificate { name: name.get_ref().clone() };
                return Err(self.spec_error(name.span().start, kind));
            }
            chain.push(name.get_ref().clone());
        }
        if chain.is_empty() {
            return Err(self.spec_error(at, SpecErrorKind::Missing { field: "chain" }));
        }
        Ok(chain)
    }

    /// The other host names served by SNI, each with its fault and chain checked.
    fn hosts(
        &self,
        hosts: &BTreeMap<String, Spanned<raw::RawHost>>,
        certs: &[CertSpec],
    ) -> Result<Vec<HostRoute>, ScenarioError> {
        let mut routes = Vec::new();
        for (name, host) in hosts {
            let at = host.span().start;
            let host = host.get_ref();
            self.fault(host.fault.as_ref())?;
            routes.push(HostRoute {
                name: name.clone(),
                chain: self.chain(&host.chain, at, certs)?,
                path: host.path.clone(),
                fault: host.fault.as_ref().map(|f| f.get_ref().clone()),
            });
        }
        Ok(routes)
    }

    /// `tls = "1.2" | "1.3" | "1.2+1.3"`; TLS 1.2 alone when not given.
    fn tls_versions(&self, tls: Option<&Spanned<String>>) -> Result<TlsVersions, ScenarioError> {
        match tls.map(|tls| (tls.get_ref().as_str(), tls.span().start)) {
            None | Some(("1.2", _)) => Ok(TlsVersions { tls12: true, tls13: false }),
            Some(("1.3", _)) => Ok(TlsVersions { tls12: false, tls13: true }),
            Some(("1.2+1.3", _)) => Ok(TlsVersions { tls12: true, tls13: true }),
            Some((other, at)) => Err(self.invalid(at, ScenarioErrorKind::TlsVersions { text: other.to_owned() })),
        }
    }

    /// A fault's values, which serde cannot check.
    /// `record_size`: 1 to 16384 bytes of plaintext.
    fn record_size(&self, size: &Spanned<u32>) -> Result<u32, ScenarioError> {
        match *size.get_ref() {
            1..=16_384 => Ok(*size.get_ref()),
            size_value => Err(self.invalid(size.span().start, ScenarioErrorKind::RecordSize { size: size_value })),
        }
    }

    fn fault(&self, fault: Option<&Spanned<Fault>>) -> Result<(), ScenarioError> {
        let Some(fault) = fault else { return Ok(()) };
        fault.get_ref().check().map_err(|e| self.invalid(fault.span().start, ScenarioErrorKind::Fault(e)))
    }

    /// The firmware offered as the update: a manifest's id, which names no path.
    fn image(&self, image: Spanned<String>) -> Result<String, ScenarioError> {
        let id = image.get_ref();
        let usable = !id.is_empty()
            && !id.starts_with('.')
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !usable {
            return Err(self.invalid(image.span().start, ScenarioErrorKind::ImageId { image: id.clone() }));
        }
        Ok(image.into_inner())
    }

    /// Tags: distinct, of lowercase letters, digits and `-`.
    fn tags(&self, raw: &[Spanned<String>]) -> Result<Vec<String>, ScenarioError> {
        crate::toml_source::check_tags(raw).map_err(|(tag, problem)| {
            let tag_name = tag.get_ref().clone();
            let kind = match problem {
                crate::toml_source::TagProblem::Malformed => ScenarioErrorKind::Tag { tag: tag_name },
                crate::toml_source::TagProblem::Twice => ScenarioErrorKind::DuplicateTag { tag: tag_name },
            };
            self.invalid(tag.span().start, kind)
        })
    }

    /// The expected outcome per firmware id.
    fn expectations(
        &self,
        raw: BTreeMap<String, Spanned<expect::RawExpectation>>,
    ) -> Result<BTreeMap<String, Expectation>, ScenarioError> {
        let mut expect = BTreeMap::new();
        for (firmware, expectation) in raw {
            let at = expectation.span().start;
            let checked = expectation.into_inner().check().map_err(|kind| self.invalid(at, kind))?;
            expect.insert(firmware, checked);
        }
        Ok(expect)
    }

    /// The `[[expect.rule]]`s, each with its place in the file.
    fn rules(&self, raw: Vec<Spanned<expect::RawRule>>) -> Result<Vec<ExpectRule>, ScenarioError> {
        let mut rules = Vec::new();
        for rule in raw {
            let start = rule.span().start;
            let (matcher, fallback, expectation) = rule
                .into_inner()
                .check(|name| self.pki.specs().contains_key(name))
                .map_err(|(at, kind)| self.invalid(at.unwrap_or(start), kind))?;
            rules.push(ExpectRule { matcher, fallback, expectation, location: self.source.location(start) });
        }
        Ok(rules)
    }
}
