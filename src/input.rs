//! Reading input files with a limit by what they are, so a huge or endless file (a device
//! node, a sparse file, a FIFO) is refused instead of filling memory: an image, a flash dump or
//! a region is at most [`MAX_IMAGE`] (the largest ESP32 flash), a text file (TOML, CSV, PEM) at
//! most `MAX_TEXT`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The most bytes an image, a flash dump or a flash region may have: 16 MiB, the largest
/// ESP32-family flash.
pub const MAX_IMAGE: u64 = 16 * 1024 * 1024;
/// The most bytes a text input (a scenario, manifest, lab config, CSV or PEM file) may have.
pub(crate) const MAX_TEXT: u64 = 4 * 1024 * 1024;

/// An input larger than its limit; the source of an [`io::Error`] of kind
/// [`io::ErrorKind::FileTooLarge`].
#[derive(Debug, thiserror::Error)]
#[error("larger than {max} bytes")]
pub struct TooLarge {
    /// The limit, in bytes.
    pub max: u64,
}

/// Reads all of `reader`, at most `max` bytes; more is an error of kind
/// [`io::ErrorKind::FileTooLarge`] (with [`TooLarge`] inside).
pub fn read_capped_from(reader: impl Read, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, TooLarge { max }));
    }
    Ok(bytes)
}

/// Reads the file at `path`, at most `max` bytes (see [`read_capped_from`]).
pub fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_capped_from(File::open(path)?, max)
}

/// An image, a flash dump or a flash region: at most [`MAX_IMAGE`] bytes.
pub fn read_image(path: &Path) -> io::Result<Vec<u8>> {
    read_capped(path, MAX_IMAGE)
}

/// A UTF-8 text file: at most `MAX_TEXT` bytes.
pub fn read_text(path: &Path) -> io::Result<String> {
    let bytes = read_capped(path, MAX_TEXT)?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        assert_eq!(read_capped_from(&[1u8; 8][..], 8).unwrap().len(), 8);
        let err = read_capped_from(&[1u8; 9][..], 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(err.into_inner().is_some_and(|inner| inner.downcast::<TooLarge>().is_ok()));
        // An endless reader ends at the limit.
        assert!(read_capped_from(io::repeat(0), 1024).is_err());
    }
}
