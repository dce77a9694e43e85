//! Each answer on a twin: the firmware (a fleet member as its manifest says; a trust set as a
//! lab firmware of its release trusting the look-alikes; a real build with its trusted roots
//! transplanted for their look-alikes) against a server that sends the answer's look-alike
//! chain after a leaf minted under the look-alike issuing CA, on the day of the question. The
//! cells are scenarios written as text and run by [`crate::run::run`], as `otarig run` runs
//! the library's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Answer, FirmwareRescue};
use crate::firmware::{Fleet, ManifestError};
use crate::pki::{LabPki, PkiError};
use crate::results::{CellRecord, Verdict};
use crate::run::{Cell, Plan, RunError, RunEvent, RunOptions};
use crate::scenario::{Scenario, ScenarioError, ServedChain};
use crate::toml_source::TomlSource;

/// The host name a leaf carries when the device names none.
const DEFAULT_HOST: &str = "ota.example.com";

/// How an answer fared on a twin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwinCheck {
    /// No twin was asked (`--no-twin`).
    NotAsked,
    /// The twin updated.
    Confirmed {
        /// The cell's transcript, relative to the run's directory.
        transcript: String,
    },
    /// The twin's update ended otherwise.
    Contradicted {
        /// How it ended (`tls-verify/expired`).
        outcome: String,
        /// The cell's transcript, relative to the run's directory.
        transcript: String,
    },
    /// The answer could not be run on a twin, for this reason (a certificate without a
    /// look-alike, a firmware the twin cannot be told about).
    NotPossible(String),
    /// The rig could not run the cell (its error).
    RigFailed(String),
}

/// What a firmware is on a twin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwinFirmware {
    /// A member of the fleet, run as its manifest says.
    Fleet(String),
    /// A trust set: a lab firmware of the device's release trusting the look-alikes of what the
    /// set trusts.
    TrustSet,
    /// A real build: run with each trusted real certificate transplanted for its look-alike.
    Image(PathBuf),
    /// Not run, for this reason.
    Not(String),
}

/// Where and how the twins run.
#[derive(Clone, Debug)]
pub struct ConfirmOptions {
    /// The run's directory: `results.jsonl`, `transcripts/` and the cells' scenarios go there.
    pub out: PathBuf,
    /// Twins side by side (at least 1).
    pub twins: usize,
    /// The fleet: its members, and the release offered as the update.
    pub fleet: Fleet,
    /// The lab PKI's folder.
    pub pki_dir: PathBuf,
}

/// Confirmation that could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// The lab PKI does not load.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The run's directory cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run could not go on.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// The release offered as the update: `v2.0.0` when the fleet has it, else its first update.
fn update_release(fleet: &Fleet) -> Option<String> {
    let releases: Vec<&str> = fleet.manifests.iter().filter(|m| m.update).map(|m| m.id.as_str()).collect();
    releases.iter().find(|id| **id == "v2.0.0").or(releases.first()).map(|id| (*id).to_owned())
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

/// A scenario's text: a leaf for `host` under `issuer`, the chain sent after it, the day.
fn scenario_text(
    title: &str,
    at: i64,
    issuer: &str,
    host: &str,
    chain: &[String],
    image: Option<(&str, &str)>,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "title = {}", quoted(title));
    let _ = writeln!(text, "date = \"{}\"", rfc3339(at));
    let _ = writeln!(text, "\n[leaf]\nissuer = {}\ndns = [{}]", quoted(issuer), quoted(host));
    let names: Vec<String> =
        std::iter::once("leaf".to_owned()).chain(chain.iter().cloned()).map(|n| quoted(&n)).collect();
    let _ = writeln!(text, "\n[server]\nchain = [{}]", names.join(", "));
    if let Some((release, firmware)) = image {
        let _ = writeln!(text, "image = {}\n\n[expect]\n{} = \"updated\"", quoted(release), quoted(firmware));
    }
    text
}

/// Why a leaf could not be minted under a lab authority.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    /// The leaf's scenario does not check (an issuer the lab PKI lacks).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The lab PKI could not mint it.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// A leaf for `host` (the fleet's update host when `None`) issued on `at` by the lab authority
/// `issuer`, as a scenario mints one: DER.
pub(super) fn mint_leaf(issuer: &str, host: Option<&str>, pki: &LabPki, at: i64) -> Result<Vec<u8>, LeafError> {
    let text = scenario_text("a leaf", at, issuer, host.unwrap_or(DEFAULT_HOST), &[], None);
    let scenario = Scenario::from_source(&TomlSource::new("leaf.toml", text), pki)?;
    let served = ServedChain::build(&scenario, pki)?;
    // The scenario's chain is its leaf alone.
    Ok(served.certs.into_iter().next().map(|c| c.der).unwrap_or_default())
}

/// The manifest a trust set or a real build runs as on a twin, and its id.
fn twin_manifest(rescue: &FirmwareRescue, firmware: &TwinFirmware, out: &Path) -> Result<(PathBuf, String), String> {
    let device = &rescue.device;
    let host = device.hostname.as_deref().unwrap_or(DEFAULT_HOST);
    let lab_names: Vec<(String, Option<String>)> = rescue
        .trusted
        .iter()
        .filter_map(|t| {
            let lab = t.on_twin()?.to_owned();
            let sha256 = t.der.as_deref().map(super::sha256_hex);
            Some((lab, sha256))
        })
        .collect();
    let idf = device.idf.as_ref().map(|idf| idf.value.to_string()).ok_or("its ESP-IDF version is unknown")?;
    let mut text = String::new();
    match firmware {
        TwinFirmware::TrustSet => {
            if lab_names.is_empty() {
                return Err("nothing it trusts has a look-alike in the lab PKI".into());
            }
            let names: Vec<String> = lab_names.iter().map(|(name, _)| quoted(name)).collect();
            let _ = writeln!(text, "version = \"0.0.0-trust-set\"\nidf = {}\nchip = \"esp32\"", quoted(&idf));
            let _ = writeln!(text, "ota_url = {}", quoted(&format!("https://{host}/firmware.bin")));
            let _ = writeln!(text, "trust = {{ pem = [{}] }}", names.join(", "));
            let _ = writeln!(text, "time_check = {}", device.time_check);
            if device.time_check {
                let _ = writeln!(text, "clock = \"sntp\"");
            }
            Ok((out.join("trust-set.toml"), text))
        }
        TwinFirmware::Image(image) => {
            let name = image.file_name().ok_or("the image has no file name")?.to_string_lossy().into_owned();
            let url = device.ota_url.clone().ok_or("the build names no OTA URL")?;
            let _ = writeln!(text, "image = {}\nota_url = {}", quoted(&name), quoted(&url));
            let given = |key: &str| device.sources.get(key) == Some(&crate::firmware::profile::Source::Given);
            if given("idf") {
                let _ = writeln!(text, "idf = {}", quoted(&idf));
            }
            if given("time_check") {
                let _ = writeln!(text, "time_check = {}", device.time_check);
                if device.time_check {
                    let _ = writeln!(text, "clock = \"sntp\"");
                }
            }
            for (lab, sha256) in &lab_names {
                if let Some(sha256) = sha256 {
                    let _ = writeln!(text, "[[transplant]]\nreplace = {}\nwith = {}", quoted(sha256), quoted(lab));
                }
            }
            let stem = image.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = image.parent().unwrap_or(Path::new("."));
            Ok((dir.join(format!("{stem}.rescue.toml")), text))
        }
        TwinFirmware::Fleet(_) | TwinFirmware::Not(_) => Err("no manifest to write".into()),
    }
}

/// Runs every answer of `rescues` (`firmware[i]` saying how `rescues[i]` runs on a twin) and
/// records in each answer how it fared.
pub fn confirm(
    rescues: &mut [FirmwareRescue],
    firmware: &[TwinFirmware],
    options: &ConfirmOptions,
) -> Result<(), ConfirmError> {
    let pki = LabPki::open(&options.pki_dir)?;
    let mut fleet = options.fleet.clone();
    let release = update_release(&fleet);
    let write = |path: &Path| {
        let path = path.to_owned();
        move |source| ConfirmError::Write { path, source }
    };
    std::fs::create_dir_all(&options.out).map_err(write(&options.out))?;
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut cells: Vec<Cell> = Vec::new();
    // (rescue, answer) of each scenario, in order.
    let mut owners: Vec<(usize, usize)> = Vec::new();
    for (index, rescue) in rescues.iter_mut().enumerate() {
        let how = firmware.get(index).cloned().unwrap_or(TwinFirmware::Not("no firmware to run".into()));
        let id = match (&how, &release) {
            (_, None) => Err("the fleet offers no release to update to (a manifest with `update = true`)".to_owned()),
            (TwinFirmware::Fleet(id), _) => Ok(id.clone()),
            (TwinFirmware::Not(why), _) => Err(why.clone()),
            (other, _) => add_manifest(rescue, other, &options.out, &pki, &mut fleet),
        };
        let id = match id {
            Ok(id) => id,
            Err(why) => {
                for answer in &mut rescue.answers {
                    answer.twin = TwinCheck::NotPossible(why.clone());
                }
                continue;
            }
        };
        let host = rescue.device.hostname.clone().unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let firmware_name = rescue.device.firmware.clone().unwrap_or_default();
        let trusted = rescue.trusted.clone();
        let how_runs = how.clone();
        for (answer_index, answer) in rescue.answers.iter_mut().enumerate() {
            let lookalikes = match &answer.lookalikes {
                Ok(lookalikes) => lookalikes.clone(),
                Err(why) => {
                    answer.twin = TwinCheck::NotPossible(why.clone());
                    continue;
                }
            };
            // A firmware the rig builds for the twin trusts only what has a look-alike.
            let anchor_in_lab = trusted.get(answer.anchor).is_some_and(|t| t.on_twin().is_some())
                || matches!(how_runs, TwinFirmware::Fleet(_));
            if !anchor_in_lab {
                let name = trusted.get(answer.anchor).map_or_else(String::new, |t| t.common_name.clone());
                answer.twin = TwinCheck::NotPossible(format!("no look-alike of {name} in the lab PKI"));
                continue;
            }
            let scenario_id = format!("rescue-{}", scenarios.len() + 1);
            let title = format!("{firmware_name}: leaf <- {}", answer_names(answer).join(" <- "));
            let Some(release) = release.as_deref() else { continue };
            let text = scenario_text(
                &title,
                rescue.at,
                &lookalikes.leaf_issuer,
                &host,
                &lookalikes.chain,
                Some((release, &id)),
            );
            let path = options.out.join("scenarios").join(format!("{scenario_id}.toml"));
            match Scenario::from_source(&TomlSource::new(&path, text.clone()), &pki) {
                Ok(scenario) => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).map_err(write(dir))?;
                    }
                    std::fs::write(&path, &text).map_err(write(&path))?;
                    cells.push(Cell { firmware: id.clone(), scenario: scenarios.len() });
                    scenarios.push(scenario);
                    owners.push((index, answer_index));
                }
                Err(err) => answer.twin = TwinCheck::NotPossible(scenario_problem(&err)),
            }
        }
    }
    if cells.is_empty() {
        return Ok(());
    }
    let unsharded = cells.len();
    let plan = Plan { pki, fleet, scenarios, cells, unsharded };
    let mut run_options = RunOptions::new(&options.out);
    run_options.twins = options.twins.max(1);
    let records: Mutex<Vec<CellRecord>> = Mutex::new(Vec::new());
    crate::run::run(&plan, &run_options, |event| {
        if let RunEvent::CellFinished { result, .. } = event
            && let Ok(mut records) = records.lock()
        {
            records.push(result.clone());
        }
    })?;
    let records = records.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    for record in records {
        let Some(at) = plan.scenarios.iter().position(|s| s.id == record.scenario) else { continue };
        let Some(&(rescue, answer)) = owners.get(at) else { continue };
        let Some(answer) = rescues.get_mut(rescue).and_then(|r| r.answers.get_mut(answer)) else { continue };
        answer.twin = match record.verdict {
            Verdict::Pass => TwinCheck::Confirmed { transcript: record.transcript.clone() },
            Verdict::Error => TwinCheck::RigFailed(record.error.clone().unwrap_or_default()),
            Verdict::Fail | Verdict::Observed => TwinCheck::Contradicted {
                outcome: record.observed.as_ref().map_or_else(|| "error".into(), |o| crate::results::short(o.outcome)),
                transcript: record.transcript.clone(),
            },
        };
    }
    Ok(())
}

/// The certificates an answer sends, by common name.
fn answer_names(answer: &Answer) -> Vec<String> {
    answer.chain.iter().map(|c| c.common_name.clone()).collect()
}

fn scenario_problem(err: &ScenarioError) -> String {
    format!("the look-alike chain does not make a scenario: {err}")
}

/// Adds the manifest a trust set or real build runs as to `fleet`; its id.
fn add_manifest(
    rescue: &FirmwareRescue,
    how: &TwinFirmware,
    out: &Path,
    pki: &LabPki,
    fleet: &mut Fleet,
) -> Result<String, String> {
    let (path, text) = twin_manifest(rescue, how, out)?;
    let source = TomlSource::new(&path, text);
    let manifest = crate::firmware::load_manifest(&source, pki, &fleet.bundles)
        .map_err(|e: ManifestError| format!("the twin cannot run it: {e}"))?;
    let id = manifest.id.clone();
    if fleet.get(&id).is_some() {
        return Err(format!("the fleet already has a firmware `{id}`"));
    }
    fleet.manifests.push(manifest);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_names_its_leaf_chain_and_expectation() {
        let text = scenario_text(
            "t",
            0,
            "r11",
            "ota.example.com",
            &["r11".into(), "isrg_root_x1_by_dst".into()],
            Some(("v2.0.0", "fw")),
        );
        assert!(text.contains("date = \"1970-01-01T00:00:00Z\""), "{text}");
        assert!(text.contains("chain = [\"leaf\", \"r11\", \"isrg_root_x1_by_dst\"]"), "{text}");
        assert!(text.contains("[expect]\n\"fw\" = \"updated\""), "{text}");
    }
}
