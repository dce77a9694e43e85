//! A twin's flash kept in a file: created erased (0xFF) when missing, loaded when present, and
//! every change written through at its offset, in order (no fsync per block: a file, like a
//! board's flash, holds whatever reached it).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::flash::{FlashObserver, VirtualFlash};

/// A flash file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FlashFileError {
    /// The file cannot be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The flash file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists with another size than the flash.
    #[error("{path} holds {actual} bytes, not the {expected} of the configured flash size")]
    Size {
        /// The flash file.
        path: PathBuf,
        /// The configured flash size, in bytes.
        expected: u64,
        /// The file's size, in bytes.
        actual: u64,
    },
}

/// Opens (or creates) `path` as a flash of `size` bytes and writes every change through.
pub(crate) fn open_backed(path: &Path, size: u32) -> Result<VirtualFlash, FlashFileError> {
    let io = |source| FlashFileError::Io { path: path.to_owned(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
    let actual = file.metadata().map_err(io)?.len();
    let mut flash = if actual == 0 {
        let flash = VirtualFlash::new(size);
        file.write_all(flash.as_bytes()).map_err(io)?;
        flash
    } else {
        let expected = VirtualFlash::new(size).as_bytes().len() as u64;
        if actual != expected {
            return Err(FlashFileError::Size { path: path.to_owned(), expected, actual });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        VirtualFlash::from_bytes(bytes).map_err(|_| FlashFileError::Size { path: path.to_owned(), expected, actual })?
    };
    flash.set_observer(Box::new(WriteThrough { file, path: path.to_owned() }));
    Ok(flash)
}

struct WriteThrough {
    file: File,
    path: PathBuf,
}

impl FlashObserver for WriteThrough {
    fn written(&mut self, addr: u32, data: &[u8]) {
        let result = self.file.seek(SeekFrom::Start(u64::from(addr))).and_then(|_| self.file.write_all(data));
        if let Err(err) = result {
            tracing::error!(path = %self.path.display(), addr, %err, "flash file write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_reopening_and_sizes_must_agree() {
        let path = std::env::temp_dir().join(format!("otarig-flash-file-{}.bin", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let mut flash = open_backed(&path, 64 * 1024).unwrap();
            flash.program(0x1000, &[0x12, 0x34]).unwrap();
            flash.erase_sector(0x2000).unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 1024);
        let flash = open_backed(&path, 64 * 1024).unwrap();
        assert_eq!(flash.read(0x1000, 3).unwrap(), [0x12, 0x34, 0xFF]);
        assert!(matches!(open_backed(&path, 128 * 1024), Err(FlashFileError::Size { .. })));
        std::fs::remove_file(&path).unwrap();
    }
}
