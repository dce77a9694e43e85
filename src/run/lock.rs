//! Board locks that every otarig process on a host respects: one lock file per board in the
//! lab's lock directory (`<board>.lock`), held with an OS advisory lock (`flock`) while a cell
//! uses the board. The lock goes with the open file: dropping a [`BoardLock`] releases it, and
//! so does the end of the process, however it ends. Lock files stay (removing one would let two
//! holders lock different files of the same name); they hold the last holder's process id, for
//! messages only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a wait for a busy board tries again, so a stop request is seen.
const RETRY: Duration = Duration::from_millis(20);

/// The lab's lock directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockDir(PathBuf);

/// A board this process holds; released on drop.
#[derive(Debug)]
pub struct BoardLock {
    board: String,
    path: PathBuf,
    _file: File,
}

/// A lock that was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A board id that is empty, starts with `.` or has other characters than letters, digits,
    /// `.`, `_` and `-`.
    #[error("board id `{board}` cannot name a lock file (use letters, digits, `.`, `_`, `-`)")]
    BadId {
        /// The board's id.
        board: String,
    },
    /// The lock directory or file cannot be created or opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another holder, in this process or another, has the board.
    #[error("board `{board}` is in use ({path}{})", holder.as_ref().map(|h| format!(", held by process {h}")).unwrap_or_default())]
    Busy {
        /// The board's id.
        board: String,
        /// The lock file.
        path: PathBuf,
        /// The process id the file names, when it names one (for messages only).
        holder: Option<String>,
    },
    /// The OS refused the lock for another reason than its being held.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The wait was given up (a stop was requested).
    #[error("gave up waiting for board `{board}`")]
    GaveUp {
        /// The board's id.
        board: String,
    },
}

impl LockDir {
    /// The lock directory at `path` (made when a lock is first taken).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The host's lock directory: `$OTARIG_LOCK_DIR`, else `$XDG_RUNTIME_DIR/otarig/locks`, else
    /// `otarig/locks` in the system's temporary directory.
    pub(crate) fn for_host() -> Self {
        let set = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        match (set("OTARIG_LOCK_DIR"), set("XDG_RUNTIME_DIR")) {
            (Some(dir), _) => Self(dir),
            (None, Some(runtime)) => Self(runtime.join("otarig").join("locks")),
            (None, None) => Self(std::env::temp_dir().join("otarig").join("locks")),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The lock file of `board`.
    pub(crate) fn file_of(&self, board: &str) -> Result<PathBuf, LockError> {
        let usable = !board.is_empty()
            && !board.starts_with('.')
            && board.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !usable {
            return Err(LockError::BadId { board: board.to_owned() });
        }
        Ok(self.0.join(format!("{board}.lock")))
    }

    /// Takes `board` if no one holds it; [`LockError::Busy`] (naming the holder) if someone does.
    pub fn try_take(&self, board: &str) -> Result<BoardLock, LockError> {
        let path = self.file_of(board)?;
        let open_err = |source| LockError::Open { path: path.clone(), source };
        std::fs::create_dir_all(&self.0).map_err(open_err)?;
        match lock_file(&path).map_err(open_err)? {
            Locked::Taken(file) => Ok(BoardLock { board: board.to_owned(), path, _file: file }),
            Locked::Held { holder } => Err(LockError::Busy { board: board.to_owned(), path, holder }),
            Locked::Failed(source) => Err(LockError::Lock { path, source }),
        }
    }

    /// Takes `board`, waiting while another holder has it: `on_busy` hears of it once, and the
    /// wait ends with [`LockError::GaveUp`] as soon as `give_up` says so.
    pub fn take(
        &self,
        board: &str,
        mut on_busy: impl FnMut(&LockError),
        give_up: impl Fn() -> bool,
    ) -> Result<BoardLock, LockError> {
        let mut told = false;
        loop {
            match self.try_take(board) {
                Err(busy @ LockError::Busy { .. }) => {
                    if !told {
                        on_busy(&busy);
                        told = true;
                    }
                }
                taken => return taken,
            }
            if give_up() {
                return Err(LockError::GaveUp { board: board.to_owned() });
            }
            std::thread::sleep(RETRY);
        }
    }
}

/// A run directory this process runs in; released on drop (or when the process ends).
#[derive(Debug)]
pub struct RunDirLock {
    _file: File,
}

/// The lock file of a run directory; it stays, holding the last holder's process id.
pub(crate) const RUN_LOCK_FILE: &str = ".otarig-run.lock";

/// A run directory that could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum RunDirLockError {
    /// Another run, in this process or another, has the directory.
    #[error("{dir} is in use by another run{}", holder.as_ref().map(|h| format!(" (process {h})")).unwrap_or_default())]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// The process id the lock file names, when it names one (for messages only).
        holder: Option<String>,
    },
    /// The lock file cannot be opened or locked.
    #[error("cannot lock {path}")]
    Lock {
        /// The lock file (`DIR/.otarig-run.lock`).
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl RunDirLock {
    /// Takes `dir` (which must exist) for this process; [`RunDirLockError::Busy`] naming the
    /// holder's process id when another run has it.
    pub fn try_take(dir: &Path) -> Result<Self, RunDirLockError> {
        let path = dir.join(RUN_LOCK_FILE);
        let lock_err = |source| RunDirLockError::Lock { path: path.clone(), source };
        match lock_file(&path).map_err(lock_err)? {
            Locked::Taken(file) => Ok(Self { _file: file }),
            Locked::Held { holder } => Err(RunDirLockError::Busy { dir: dir.to_owned(), holder }),
            Locked::Failed(source) => Err(lock_err(source)),
        }
    }
}

/// What trying a lock file gave.
enum Locked {
    /// Held by this process now, its process id written in it.
    Taken(File),
    /// Another process holds it; the process id it wrote, if any.
    Held { holder: Option<String> },
    /// The lock call itself failed.
    Failed(io::Error),
}

/// Opens `path` (created if missing) and tries its exclusive lock without waiting. The holder
/// writes its process id in the file, for others' messages; the lock does not depend on it.
fn lock_file(path: &Path) -> io::Result<Locked> {
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    match file.try_lock() {
        Ok(()) => {
            let _ =
                file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()));
            Ok(Locked::Taken(file))
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Ok(Locked::Held { holder: Some(holder.trim().to_owned()).filter(|h| !h.is_empty()) })
        }
        Err(TryLockError::Error(source)) => Ok(Locked::Failed(source)),
    }
}

impl BoardLock {
    /// The board's id.
    pub fn board(&self) -> &str {
        &self.board
    }

    /// The lock file (`<board>.lock` in the lock directory).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_ids_must_make_plain_file_names() {
        let dir = LockDir::new("/locks");
        assert_eq!(dir.file_of("twin-1").unwrap(), Path::new("/locks/twin-1.lock"));
        assert_eq!(dir.file_of("esp32_A.3").unwrap(), Path::new("/locks/esp32_A.3.lock"));
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(matches!(dir.file_of(bad), Err(LockError::BadId { .. })), "{bad:?}");
        }
    }
}
