//! The index of a library's twin transcripts: each cell's fingerprint, under a key of
//! everything that shapes them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Fingerprint;
use crate::run::{self, Plan, RunError, RunEvent, RunOptions};

/// The index's file in its folder.
pub const INDEX_FILE: &str = "index.json";
/// Where the index runs its cells, in its folder.
const RUN_DIR: &str = "run";

/// What an index was built from: a digest of the scenarios' and the fleet's files and of the
/// program that ran them. An index whose key differs is built again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexKey(pub String);

impl IndexKey {
    /// The digest of every file under each of `dirs` (by its path below the folder, in order;
    /// folders named `build` skipped: `fleet build` writes there) and of `salt` (what the
    /// program is: another build of it may print other lines).
    pub fn of(dirs: &[&Path], salt: &[u8]) -> io::Result<IndexKey> {
        let mut digest = Sha256::new();
        digest.update(salt);
        for dir in dirs {
            let mut files = Vec::new();
            files_under(dir, dir, &mut files)?;
            files.sort();
            for (relative, path) in files {
                digest.update(relative.as_bytes());
                digest.update([0]);
                digest.update(crate::input::read_image(&path)?);
            }
        }
        let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(IndexKey(hex))
    }

    /// A short form for a folder name.
    pub fn short(&self) -> &str {
        self.0.get(..16).unwrap_or(&self.0)
    }
}

/// Every file under `dir` (following links), with its path below `root`.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let metadata = std::fs::metadata(&path)?;
        if metadata.is_dir() {
            if path.file_name().is_some_and(|name| name == "build") {
                continue;
            }
            files_under(root, &path, out)?;
        } else if metadata.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push((relative, path));
        }
    }
    Ok(())
}

/// One cell of the library as its twin ended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedCell {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
    /// How the twin's transcript ends.
    pub fingerprint: Fingerprint,
    /// The twin's transcript, relative to the index's folder.
    pub transcript: PathBuf,
}

/// Every cell of a library with its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// What the index was built from.
    pub key: IndexKey,
    /// Every cell the rig could run, by firmware and scenario id.
    pub cells: Vec<IndexedCell>,
}

/// Why an index could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The run of the library's cells failed as a whole.
    #[error("running the library's cells")]
    Run(#[from] RunError),
    /// A file of the index or of its run could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The index file is not one this program wrote.
    #[error("{path} is no index")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why it does not read.
        #[source]
        source: serde_json::Error,
    },
}

/// The index kept in `dir`, when it was built under `key`.
pub fn load(dir: &Path, key: &IndexKey) -> Result<Option<Index>, IndexError> {
    let path = dir.join(INDEX_FILE);
    let text = match crate::input::read_text(&path) {
        Ok(text) => text,
        Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IndexError::Io { path, source }),
    };
    let index: Index = serde_json::from_str(&text).map_err(|source| IndexError::Json { path, source })?;
    Ok((index.key == *key).then_some(index))
}

/// Runs every cell of `plan` on `twins` twins in `dir` and keeps their fingerprints there as
/// the index of `key`; `progress` hears of each cell that ends (done, total). A cell the rig
/// could not run has no transcript and no place in the index.
pub fn build(
    plan: &Plan,
    dir: &Path,
    key: IndexKey,
    twins: usize,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<Index, IndexError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| IndexError::Io { path, source }
    };
    let out = dir.join(RUN_DIR);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(io_error(&out))?;
    }
    let options = RunOptions { twins: twins.max(1), ..RunOptions::new(&out) };
    let finished = Mutex::new(Vec::new());
    run::run(plan, &options, |event| {
        if let RunEvent::CellFinished { done, total, result, .. } = event {
            if result.error.is_none() {
                let cell = (result.firmware.clone(), result.scenario.clone(), result.transcript.clone());
                finished.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(cell);
            }
            progress(done, total);
        }
    })?;
    let mut cells = Vec::new();
    for (firmware, scenario, transcript) in finished.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        let path = out.join(&transcript);
        let text = crate::input::read_text(&path).map_err(io_error(&path))?;
        let fingerprint = Fingerprint::of_log(super::device_part(&text).as_bytes());
        cells.push(IndexedCell { firmware, scenario, fingerprint, transcript: Path::new(RUN_DIR).join(transcript) });
    }
    cells.sort_by(|a, b| (&a.firmware, &a.scenario).cmp(&(&b.firmware, &b.scenario)));
    let index = Index { key, cells };
    let path = dir.join(INDEX_FILE);
    let json = serde_json::to_string(&index).map_err(|source| IndexError::Json { path: path.clone(), source })?;
    std::fs::write(&path, json).map_err(io_error(&path))?;
    Ok(index)
}
