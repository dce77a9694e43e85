//! `otarig rescue --format json`: one object per firmware (the shape is in the README).

use std::path::PathBuf;

use otarig::catalogue::Catalogue;
use otarig::rescue::{FirmwareRescue, NoRescue, Origin, Standing, TwinCheck};
use serde_json::{Value, json};

use super::super::predict::rfc3339;
use super::rescued;
use super::text::why_text;

pub(super) fn to_json(rescues: &[FirmwareRescue], catalogue: &Catalogue, files: &[(usize, usize, PathBuf)]) -> Value {
    let firmware = rescues.iter().enumerate().map(|(f, rescue)| {
        let trusted: Vec<Value> = rescue
            .trusted
            .iter()
            .map(|t| {
                let (standing, lab, public) = match &t.standing {
                    Standing::Public(at) => ("public", None, catalogue.certs.get(*at)),
                    Standing::LookAlike { lab, public } => ("look-alike", Some(lab.clone()), catalogue.certs.get(*public)),
                    Standing::OwnCa { lab } => ("own-ca", Some(lab.clone()), None),
                    Standing::Unknown => ("unknown", None, None),
                };
                json!({
                    "subject": t.subject,
                    "role": t.role.as_str(),
                    "standing": standing,
                    "lab": lab,
                    "public": public.map(|c| json!({ "name": c.name, "sha256": c.sha256_hex() })),
                    "inferred": matches!(t.standing, Standing::LookAlike { .. } | Standing::OwnCa { .. }),
                    "not_after": t.not_after.map(rfc3339),
                })
            })
            .collect();
        let answers: Vec<Value> = rescue
            .answers
            .iter()
            .enumerate()
            .map(|(a, answer)| {
                let lasting = &answer.lasting;
                let (twin_status, twin_detail) = match &answer.twin {
                    TwinCheck::NotAsked => ("not-asked", None),
                    TwinCheck::Confirmed { transcript } => ("confirmed", Some(transcript.clone())),
                    TwinCheck::Contradicted { outcome, transcript } => {
                        ("contradicted", Some(format!("{outcome} ({transcript})")))
                    }
                    TwinCheck::NotPossible(why) => ("not-possible", Some(why.clone())),
                    TwinCheck::RigFailed(error) => ("rig-failed", Some(error.clone())),
                };
                json!({
                    "issuing_ca": {
                        "name": answer.issuing.name,
                        "common_name": answer.issuing.common_name,
                        "own": answer.issuing.own,
                        "issues_until": rfc3339(lasting.issuing_until),
                        "end_announced": lasting.issuing_end_known,
                    },
                    "chain": answer.chain.iter().map(|c| json!({
                        "name": c.name,
                        "subject": c.subject,
                        "sha256": c.sha256,
                        "not_after": rfc3339(c.not_after),
                        "published": match &c.origin {
                            Origin::Published(places) => places.iter().map(|p| json!({
                                "url": p.url, "repository": p.repository, "commit": p.commit, "path": p.path,
                            })).collect::<Vec<_>>(),
                            Origin::OwnCa(_) => Vec::new(),
                        },
                        "own_ca": match &c.origin {
                            Origin::OwnCa(path) => Some(path.display().to_string()),
                            Origin::Published(_) => None,
                        },
                    })).collect::<Vec<_>>(),
                    "reaches": rescue.trusted.get(answer.anchor).map(|t| t.subject.clone()),
                    "judged_on_lookalikes": answer.judged_on_lookalikes,
                    "checks_dates": lasting.follows_calendar || lasting.fixed_clock.is_some(),
                    "until": lasting.until.as_ref().map(|r| json!({
                        "at": rfc3339(r.at), "certificate": r.certificate, "change": if r.expires { "expires" } else { "becomes-valid" },
                    })),
                    "expired_in_use": lasting.expired.iter().map(|(name, at)| json!({ "name": name, "not_after": rfc3339(*at) })).collect::<Vec<_>>(),
                    "chain_file": files.iter().find(|(ff, aa, _)| *ff == f && *aa == a).map(|(_, _, p)| p.display().to_string()),
                    "lookalikes": answer.lookalikes.as_ref().ok().map(|l| json!({
                        "leaf_issuer": l.leaf_issuer, "chain": l.chain, "validity_differs": l.validity_differs,
                    })),
                    "twin": { "status": twin_status, "detail": twin_detail },
                })
            })
            .collect();
        let no_rescue = rescue.no_rescue.as_ref().map(|why| {
            let kind = match why {
                NoRescue::TrustsNothing => "trusts-nothing",
                NoRescue::PinnedLeaf { .. } => "pinned-leaf",
                NoRescue::PinnedRetired { .. } => "pinned-intermediate-retired",
                NoRescue::Refused { .. } => "refused",
                NoRescue::NoPath { .. } => "no-path",
                NoRescue::UnknownRoots { .. } => "unknown-roots",
            };
            json!({ "kind": kind, "text": why_text(why, rescue) })
        });
        json!({
            "firmware": rescue.device.firmware,
            "idf": rescue.device.idf.as_ref().map(|idf| idf.value.to_string()),
            "sources": rescue.device.sources.iter().map(|(k, s)| (k.to_string(), json!(s.as_str()))).collect::<serde_json::Map<_, _>>(),
            "time_check": rescue.device.time_check,
            "tls_heap": rescue.device.tls.heap,
            "heap": rescue.device.tls.heap.map(|_| "unknown"),
            "clock": rescue.date_check_at.map(rfc3339),
            "at": rfc3339(rescue.at),
            "trusted": trusted,
            "rescued": rescued(rescue),
            "answers": answers,
            "refused": rescue.refused.iter().map(|r| json!({
                "issuing_ca": r.issuing,
                "chain": r.chain,
                "outcome": r.rejection.0.to_string(),
                "reason": r.rejection.1.to_string(),
            })).collect::<Vec<_>>(),
            "no_rescue": no_rescue,
        })
    });
    Value::Array(firmware.collect())
}
