//! The directory a campaign's run writes its results and transcripts to: a fresh one under the
//! system's temporary directory, removed when the campaign ends (what is worth keeping is
//! copied out with `--out`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `otarig-faults-<pid>-<nanoseconds>` in the temporary directory; not created (the run
    /// makes it).
    pub fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self(std::env::temp_dir().join(format!("otarig-faults-{}-{nanos}", std::process::id())))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
