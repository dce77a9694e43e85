//! `otarig rescue`'s text: per firmware, what it trusts, each answer's certificates with where
//! they were published, how long it works, where the next leaves come from and the twin's
//! word; or why nothing rescues it.

use std::path::{Path, PathBuf};

use otarig::catalogue::Catalogue;
use otarig::firmware::profile::{ClockSource, Source};
use otarig::rescue::{Answer, FirmwareRescue, NoRescue, Origin, Standing, TrustedRole, TwinCheck};

use super::super::predict::{idf_text, when};
use super::rescued;

pub(super) fn day(unix: i64) -> String {
    let text = when(unix);
    text.split(' ').next().unwrap_or(&text).to_owned()
}

/// What the firmware trusts, in a line.
fn trusted_text(rescue: &FirmwareRescue, catalogue: &Catalogue) -> String {
    let trusted = &rescue.trusted;
    if trusted.is_empty() {
        return "trusts nothing".into();
    }
    if let otarig::device_tls::Anchors::Bundle { entries, .. } = &rescue.device.anchors {
        let alike = trusted.iter().filter(|t| matches!(t.standing, Standing::LookAlike { .. })).count();
        let public = trusted.iter().filter(|t| matches!(t.standing, Standing::Public(_))).count();
        let mut parts = Vec::new();
        if public > 0 {
            parts.push(format!("{public} public roots of the catalogue"));
        }
        if alike > 0 {
            parts.push(format!("{alike} lab look-alikes taken as the real roots they stand for (inferred)"));
        }
        let others = entries.len() - public - alike;
        if others > 0 {
            parts.push(format!("{others} others"));
        }
        return format!("trusts a certificate bundle of {} roots: {}", entries.len(), parts.join(", "));
    }
    let each: Vec<String> = trusted
        .iter()
        .map(|t| {
            let role = match t.role {
                TrustedRole::Root => "",
                TrustedRole::Intermediate => "the intermediate ",
                TrustedRole::Leaf => "the server certificate ",
            };
            let what = match (&t.standing, t.role) {
                (Standing::Public(_), _) => String::new(),
                (Standing::LookAlike { lab, public }, _) => {
                    let real = catalogue.certs.get(*public).map_or("?", |c| c.name.as_str());
                    format!(": the lab's look-alike {lab}, taken as the real one ({real} in the catalogue), inferred from its name, key and issuer")
                }
                (Standing::OwnCa { lab }, TrustedRole::Leaf) => format!(": the lab's {lab}"),
                (Standing::OwnCa { lab }, _) => {
                    format!(": the lab's {lab}, which no public certificate stands behind: the owner's own CA (inferred)")
                }
                (Standing::Unknown, _) => ", which is not in the catalogue of public CAs".into(),
            };
            format!("{role}{}{what}", t.common_name)
        })
        .collect();
    format!("trusts {}", each.join(", "))
}

fn dates_text(rescue: &FirmwareRescue) -> String {
    let text = match (rescue.date_check_at, rescue.device.clock) {
        (None, _) => "checks no dates".into(),
        (Some(at), ClockSource::Sntp) => format!("checks dates (SNTP, {})", day(at)),
        (Some(at), ClockSource::Fixed(_)) => format!("checks dates against a fixed clock ({})", day(at)),
        (Some(_), ClockSource::Unset) => "checks dates against a clock never set (1970)".into(),
    };
    // What nothing stated is ESP-IDF's default: said so, as an inference.
    match rescue.device.sources.get("time_check") {
        Some(Source::Default) => format!("{text} (ESP-IDF's default: nothing states it)"),
        Some(Source::ImageStrings) => format!("{text} (guessed from the build's strings)"),
        _ => text,
    }
}

pub(super) fn why_text(why: &NoRescue, rescue: &FirmwareRescue) -> String {
    match why {
        NoRescue::TrustsNothing => "it trusts no certificate".into(),
        NoRescue::PinnedLeaf { subjects, self_signed } => {
            let pinned = subjects.join("; ");
            if *self_signed {
                format!(
                    "it pins the self-signed server certificate {pinned}: only a server holding that certificate's key can send it"
                )
            } else {
                format!(
                    "it pins the server certificate {pinned}, issued by a CA: no CA issues that certificate again, and mbedTLS trusts a pinned certificate only when it is self-signed"
                )
            }
        }
        NoRescue::PinnedRetired { names, stopped } => {
            let stopped = match stopped {
                Some(day_stopped) => format!("stopped issuing on {}", day(*day_stopped)),
                None => "does not issue".into(),
            };
            format!("it pins the intermediate {}, whose CA {stopped}: no new leaf comes from it", names.join(", "))
        }
        NoRescue::Refused { rejections, expired_roots } => {
            let outcomes: Vec<String> = rejections.iter().map(|(c, r)| format!("{c} / {r}")).collect();
            let roots: Vec<String> =
                expired_roots.iter().map(|(name, at)| format!("{name} expired {}", day(*at))).collect();
            if roots.is_empty() {
                format!("every chain that reaches what it trusts is refused ({})", outcomes.join(", "))
            } else {
                format!(
                    "it {} and {}: every chain that reaches it is refused ({})",
                    dates_text(rescue),
                    roots.join(", "),
                    outcomes.join(", ")
                )
            }
        }
        NoRescue::NoPath { roots, issuing } => {
            let issuing = if issuing.is_empty() { "none".to_owned() } else { issuing.join(", ") };
            format!(
                "no chain leads from a CA that issues to owners on {} (of the catalogue: {issuing}) to what it trusts ({})",
                day(rescue.at),
                roots.join(", ")
            )
        }
        NoRescue::UnknownRoots { subjects } => format!(
            "it trusts only {}, which no catalogued public CA chains to: if it is the owner's own CA, a leaf it issues rescues it",
            subjects.join("; ")
        ),
    }
}

/// How long the chain works, and the device's reason.
fn works_text(answer: &Answer) -> Vec<String> {
    let lasting = &answer.lasting;
    let expired: Vec<String> = lasting.expired.iter().map(|(name, at)| format!("{name} {}", day(*at))).collect();
    if lasting.follows_calendar {
        let until = match &lasting.until {
            Some(refusal) if refusal.expires => {
                format!("until {} expires {}", refusal.certificate, when(refusal.at.saturating_sub(1)))
            }
            Some(refusal) => format!("until {}, when {} becomes valid", when(refusal.at), refusal.certificate),
            None => "at every date a certificate of it changes validity".into(),
        };
        return vec![format!("{until} (the device checks dates)")];
    }
    if let Some(clock) = lasting.fixed_clock {
        return vec![format!(
            "while the server sends it (the device checks dates against a clock that reads {})",
            day(clock)
        )];
    }
    if expired.is_empty() {
        return vec!["while the server sends it (the device checks no dates)".into()];
    }
    vec![
        "while the server sends it: the device checks no dates".into(),
        format!("(expired, and taken: {})", expired.join(", ")),
    ]
}

/// Where the owner's next leaves come from, and until when.
fn leaves_text(answer: &Answer, catalogue: &Catalogue) -> String {
    let issuing = &answer.issuing;
    let until = day(answer.lasting.issuing_until);
    if issuing.own {
        format!("from the owner's {} until it expires {until}", issuing.common_name)
    } else if answer.lasting.issuing_end_known {
        format!("from {} until its CA stopped issuing from it on {until}", issuing.common_name)
    } else {
        format!(
            "from {} (issuing, per its CA's page of {}) until it expires {until} at the latest",
            issuing.common_name,
            day(catalogue.checked)
        )
    }
}

fn twin_text(check: &TwinCheck) -> String {
    match check {
        TwinCheck::NotAsked => "not asked (--no-twin)".into(),
        TwinCheck::Confirmed { .. } => "confirmed on a twin (updated)".into(),
        TwinCheck::Contradicted { outcome, transcript } => {
            format!("NOT confirmed: on a twin the update ended {outcome} (twin cells: {transcript})")
        }
        TwinCheck::NotPossible(why) => format!("not confirmed on a twin: {why}"),
        TwinCheck::RigFailed(error) => format!("not confirmed: the rig could not run the twin cell: {error}"),
    }
}

fn source_text(origin: &Origin) -> String {
    match origin {
        Origin::Published(places) => places.first().map_or_else(String::new, |p| p.url.clone()),
        Origin::OwnCa(path) => format!("the owner's own CA: {}", path.display()),
    }
}

pub(super) fn to_text(
    rescues: &[FirmwareRescue],
    catalogue: &Catalogue,
    files: &[(usize, usize, PathBuf)],
    twin_dir: Option<&Path>,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (f, rescue) in rescues.iter().enumerate() {
        let name = rescue.device.firmware.as_deref().unwrap_or("(trust set)");
        let headline = match rescue.answers.len() {
            0 => format!("no chain rescues it on {}", day(rescue.at)),
            1 => format!("1 chain rescues it on {}", day(rescue.at)),
            n => format!("{n} chains rescue it on {}", day(rescue.at)),
        };
        let _ = writeln!(out, "{name}: {headline}");
        let _ = writeln!(out, "  ESP-IDF {}, {}", idf_text(&rescue.device), dates_text(rescue));
        let _ = writeln!(out, "  {}", trusted_text(rescue, catalogue));
        if let Some(heap) = rescue.device.tls.heap {
            let _ = writeln!(
                out,
                "  leaves {heap} bytes of heap for TLS (tls_heap): not judged offline (heap unknown); a chain rescues \
                 it only if its connection fits, which only a twin tells"
            );
        }
        if let Some(why) = &rescue.no_rescue {
            let _ = writeln!(out, "  why: {}", why_text(why, rescue));
        }
        for (a, answer) in rescue.answers.iter().enumerate() {
            let count = match answer.chain.len() {
                0 => "alone".to_owned(),
                1 => "then 1 certificate".to_owned(),
                n => format!("then {n} certificates"),
            };
            let own = if answer.issuing.own { "the owner's own " } else { "" };
            let _ = writeln!(out, "\n  {}. a leaf from {own}{}, {count}:", a + 1, answer.issuing.common_name);
            for cert in &answer.chain {
                let issuer = issuer_name(cert);
                let _ = writeln!(out, "       {}{issuer}", cert.subject);
                let _ = writeln!(out, "         SHA-256 {}", cert.sha256);
                let _ = writeln!(out, "         {}", source_text(&cert.origin));
            }
            let anchor = rescue.trusted.get(answer.anchor).map_or("?", |t| t.common_name.as_str());
            let judged = if answer.judged_on_lookalikes { " (judged on the lab's look-alikes)" } else { "" };
            let _ = writeln!(out, "     reaches: {anchor}, which it trusts{judged}");
            for (i, line) in works_text(answer).iter().enumerate() {
                let _ = writeln!(out, "     {}{line}", if i == 0 { "works: " } else { "       " });
            }
            let _ = writeln!(out, "     leaves: {}", leaves_text(answer, catalogue));
            if let Some((_, _, path)) = files.iter().find(|(ff, aa, _)| *ff == f && *aa == a) {
                let _ = writeln!(out, "     chain file: {} (ssl_certificate: the leaf, then this)", path.display());
            }
            let _ = writeln!(out, "     twin: {}", twin_text(&answer.twin));
            if let Ok(lookalikes) = &answer.lookalikes
                && !lookalikes.validity_differs.is_empty()
                && !matches!(answer.twin, TwinCheck::NotPossible(_) | TwinCheck::NotAsked)
            {
                let names = lookalikes.validity_differs.join(", ");
                let _ = writeln!(
                    out,
                    "           (the look-alikes of {names} are not valid exactly when the real ones are)"
                );
            }
        }
        let _ = writeln!(out);
    }
    let rescued_count = rescues.iter().filter(|r| rescued(r)).count();
    let _ = writeln!(out, "{} firmware: {rescued_count} rescued, {} not", rescues.len(), rescues.len() - rescued_count);
    if let Some(dir) = twin_dir {
        let _ = writeln!(out, "twin cells: {} (results.jsonl, transcripts/, scenarios/)", dir.display());
    }
    out
}

/// `, issued by X` (its issuer's common name).
fn issuer_name(cert: &otarig::rescue::SentCert) -> String {
    match x509_issuer_cn(&cert.der) {
        Some(issuer) if issuer != cert.common_name => format!(", issued by {issuer}"),
        _ => String::new(),
    }
}

fn x509_issuer_cn(der: &[u8]) -> Option<String> {
    let info = otarig::image::CertInfo::from_der(der)?;
    info.issuer.split(", ").find_map(|p| p.strip_prefix("CN=")).map(str::to_owned)
}
