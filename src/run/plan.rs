//! Which cells a run has: firmware × scenario, from the fleet's manifests and the scenario
//! files, every id checked before anything runs.

use std::path::{Path, PathBuf};

use crate::firmware::{Fleet, ManifestError};
use crate::pki::{LabPki, PkiError};
use crate::run::shard::Shard;
use crate::scenario::{Scenario, ScenarioError};

/// Where the lab's files are.
#[derive(Clone, Debug)]
pub struct LabDirs {
    /// `scenarios/`: the scenario files, and the lab PKI in its `pki/` folder.
    pub scenarios: PathBuf,
    /// `firmware-images/`: the fleet's manifests.
    pub fleet: PathBuf,
}

/// What to run; an empty list means all (all fleet members, all scenarios).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Firmware ids (manifest file names without `.toml`).
    pub firmware: Vec<String>,
    /// Scenario ids (file names without `.toml`) or paths to `.toml` files.
    pub scenarios: Vec<String>,
    /// Only scenarios carrying at least one of these tags (none: no filter).
    pub tags: Vec<String>,
    /// Only this part of the cells (see [`Shard`]).
    pub shard: Option<Shard>,
}

/// One cell of the matrix: a firmware (by manifest id) against a scenario (by index in the
/// plan's scenarios).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's index in [`Plan::scenarios`].
    pub scenario: usize,
}

/// A checked run: the lab it needs and its cells, firmware-major.
#[derive(Debug)]
pub struct Plan {
    /// The lab PKI (`scenarios/pki/`).
    pub pki: LabPki,
    /// The whole fleet, the update releases included, whatever the selection.
    pub fleet: Fleet,
    /// The selected scenarios, their expectations resolved against the fleet.
    pub scenarios: Vec<Scenario>,
    /// The cells to run: the shard's part when a shard was chosen (possibly none).
    pub cells: Vec<Cell>,
    /// How many cells the selection has before sharding.
    pub unsharded: usize,
}

/// A run that cannot start: bad lab files or ids that name nothing.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The lab PKI does not load.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The fleet does not load.
    #[error(transparent)]
    Fleet(#[from] ManifestError),
    /// A selected scenario does not load or resolve against the fleet.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The scenarios' folder cannot be listed.
    #[error("cannot list {dir}: {source}")]
    List {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A selected firmware id that names no member of the fleet.
    #[error("no firmware `{id}` in the fleet (known: {})", known.join(", "))]
    UnknownFirmware {
        /// The id given.
        id: String,
        /// The fleet members' ids.
        known: Vec<String>,
    },
    /// A selected scenario id that names no scenario file.
    #[error("no scenario `{id}` (known: {})", known.join(", "))]
    UnknownScenario {
        /// The id or path given.
        id: String,
        /// The scenarios' ids.
        known: Vec<String>,
    },
    /// A scenario without `[server] image`: nothing to offer as the update.
    #[error("scenario `{scenario}` offers no image (`image = \"...\"` under [server])")]
    NoImage {
        /// The scenario's id.
        scenario: String,
    },
    /// A scenario whose `[server] image` names no manifest.
    #[error("scenario `{scenario}` offers image `{image}`, which no manifest in the fleet names")]
    UnknownImage {
        /// The scenario's id.
        scenario: String,
        /// The image's id as written.
        image: String,
    },
    /// A selected tag that no scenario carries.
    #[error("no scenario is tagged `{tag}` (tags: {})", known.join(", "))]
    UnknownTag {
        /// The tag given.
        tag: String,
        /// The tags the scenarios carry.
        known: Vec<String>,
    },
    /// The selection leaves no firmware or no scenario.
    #[error("nothing to run: no firmware or no scenario")]
    Empty,
    /// A firmware without an OTA URL, stated or read from its build.
    #[error("firmware `{firmware}`: no OTA URL: its manifest states none and its build has none that is clearly its update URL{}; set `ota_url` in the manifest", candidates_text(.candidates))]
    NoOtaUrl {
        /// The firmware's id.
        firmware: String,
        /// `https://` URLs in its build that were not taken as its OTA URL.
        candidates: Vec<String>,
    },
    /// A firmware of an ESP-IDF release the twin does not emulate.
    #[error("firmware `{firmware}`: {source}")]
    Unsupported {
        /// The firmware's id.
        firmware: String,
        /// The release and why.
        source: crate::idf::Unsupported,
    },
    /// A firmware built for a chip no device of the run is.
    #[error("firmware `{firmware}` is built for {chip}, and no device of this run is one (it has: {})", available.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    NoDevice {
        /// The firmware's id.
        firmware: String,
        /// The chip it is built for.
        chip: crate::image::Chip,
        /// The chips of the run's devices.
        available: Vec<crate::image::Chip>,
    },
}

/// `, and these https:// strings are not it: a, b` when there are candidates.
fn candidates_text(candidates: &[String]) -> String {
    if candidates.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = candidates.iter().take(5).map(String::as_str).collect();
    let more = if candidates.len() > 5 { format!(" and {} more", candidates.len() - 5) } else { String::new() };
    format!(" (https:// strings in the build: {}{more})", shown.join(", "))
}

impl Plan {
    /// Loads the lab (PKI, fleet, the selected scenarios) and lists the cells.
    pub fn new(dirs: &LabDirs, selection: &Selection) -> Result<Self, PlanError> {
        let pki = LabPki::open(&dirs.scenarios.join("pki"))?;
        let fleet = Fleet::load(&dirs.fleet, &pki)?;

        let firmware: Vec<String> = if selection.firmware.is_empty() {
            fleet.members().map(|m| m.id.clone()).collect()
        } else {
            for id in &selection.firmware {
                if fleet.get(id).is_none() {
                    let known = fleet.members().map(|m| m.id.clone()).collect();
                    return Err(PlanError::UnknownFirmware { id: id.clone(), known });
                }
            }
            dedup(&selection.firmware)
        };

        let files = crate::toml_source::files_in(&dirs.scenarios)
            .map_err(|source| PlanError::List { dir: dirs.scenarios.clone(), source })?;
        let paths = if selection.scenarios.is_empty() {
            files
        } else {
            let mut paths = Vec::new();
            for id in dedup(&selection.scenarios) {
                paths.push(scenario_path(&dirs.scenarios, &id, &files)?);
            }
            paths
        };
        let mut scenarios = Vec::new();
        for path in &paths {
            let mut scenario = Scenario::load(path, &pki)?;
            scenario.resolve(&fleet)?;
            match &scenario.image {
                None => return Err(PlanError::NoImage { scenario: scenario.id }),
                Some(image) if fleet.get(image).is_none() => {
                    return Err(PlanError::UnknownImage { scenario: scenario.id.clone(), image: image.clone() });
                }
                Some(_) => scenarios.push(scenario),
            }
        }
        let scenarios = by_tags(scenarios, &selection.tags)?;
        for id in &firmware {
            if let Some(manifest) = fleet.get(id) {
                runnable(manifest)?;
            }
        }

        let mut cells: Vec<Cell> = firmware
            .iter()
            .flat_map(|id| (0..scenarios.len()).map(|scenario| Cell { firmware: id.clone(), scenario }))
            .collect();
        if cells.is_empty() {
            return Err(PlanError::Empty);
        }
        let unsharded = cells.len();
        if let Some(shard) = selection.shard {
            let keys: Vec<(&str, &str)> =
                cells.iter().map(|c| (c.firmware.as_str(), scenarios[c.scenario].id.as_str())).collect();
            let part = shard.select(&keys);
            cells = part.into_iter().map(|at| cells[at].clone()).collect();
        }
        Ok(Self { pki, fleet, scenarios, cells, unsharded })
    }
}

/// The scenarios carrying at least one of `tags` (all of them when `tags` is empty); a tag no
/// scenario carries is refused.
fn by_tags(scenarios: Vec<Scenario>, tags: &[String]) -> Result<Vec<Scenario>, PlanError> {
    if tags.is_empty() {
        return Ok(scenarios);
    }
    for tag in tags {
        if !scenarios.iter().any(|s| s.tags.contains(tag)) {
            let mut known: Vec<String> = scenarios.iter().flat_map(|s| s.tags.iter().cloned()).collect();
            known.sort();
            known.dedup();
            return Err(PlanError::UnknownTag { tag: tag.clone(), known });
        }
    }
    Ok(scenarios.into_iter().filter(|s| s.tags.iter().any(|t| tags.contains(t))).collect())
}

/// The file of scenario `id` (an id in `dir`, or a path to a `.toml`).
fn scenario_path(dir: &Path, id: &str, files: &[PathBuf]) -> Result<PathBuf, PlanError> {
    let path = if id.ends_with(".toml") { PathBuf::from(id) } else { dir.join(format!("{id}.toml")) };
    if path.is_file() {
        return Ok(path);
    }
    let known = files.iter().filter_map(|f| f.file_stem()).map(|s| s.to_string_lossy().into_owned()).collect();
    Err(PlanError::UnknownScenario { id: id.to_owned(), known })
}

/// The ids in their first order, each once.
fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    for id in ids {
        if !seen.contains(id) {
            seen.push(id.clone());
        }
    }
    seen
}
impl Plan {
    /// Whether every firmware of the plan has a device of its chip among `chips` (the lab's
    /// devices; twins are ESP32s).
    pub fn check_chips(&self, chips: &[crate::image::Chip]) -> Result<(), PlanError> {
        let planned = self.cells.iter().map(|cell| cell.firmware.as_str());
        for id in planned {
            if let Some(manifest) = self.fleet.get(id)
                && !chips.contains(&manifest.chip)
            {
                let mut available = Vec::new();
                for chip in chips {
                    if !available.contains(chip) {
                        available.push(*chip);
                    }
                }
                return Err(PlanError::NoDevice { firmware: id.to_owned(), chip: manifest.chip, available });
            }
        }
        Ok(())
    }
}

/// Whether the twin can run a member of the fleet: its ESP-IDF release has a generation, and
/// it knows where to fetch its update.
fn runnable(manifest: &crate::firmware::FirmwareManifest) -> Result<(), PlanError> {
    crate::idf::Generation::of(manifest.idf.release)
        .map_err(|source| PlanError::Unsupported { firmware: manifest.id.clone(), source })?;
    if manifest.ota_url.is_none() {
        let candidates = manifest.url_candidates.clone();
        return Err(PlanError::NoOtaUrl { firmware: manifest.id.clone(), candidates });
    }
    Ok(())
}
