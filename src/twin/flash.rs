//! The twin's SPI NOR flash: erased bytes read `0xFF`, erasing works on 4 KiB sectors, and
//! programming can only clear bits (`new = old & data`), as on the real chip. A loader that
//! forgets to erase therefore leaves the same corrupted bytes a board would.

use thiserror::Error;

/// Erase granularity of the flash chips ESP32 modules carry.
pub(crate) const SECTOR_SIZE: u32 = 4096;
/// Default size: the 4 MB of most ESP32-WROOM modules.
pub(crate) const DEFAULT_SIZE: u32 = 4 * 1024 * 1024;

/// A flash operation outside what the chip allows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlashError {
    /// `[addr, addr + len)` does not fit in the flash.
    #[error("flash access at {addr:#x} (+{len:#x}) beyond the {size:#x}-byte flash")]
    OutOfRange { addr: u32, len: u64, size: u32 },
    /// A sector erase at an address that is not 4 KiB aligned.
    #[error("sector erase at {addr:#x} not aligned to {SECTOR_SIZE:#x}")]
    Unaligned { addr: u32 },
}

/// Told of every change to the flash, after it is made, so that a file (or a trace) can
/// follow the twin's flash without the flash knowing about I/O.
pub(crate) trait FlashObserver {
    /// `data` is now the content of the flash at `addr` (after an erase: all `0xFF`; after a
    /// program: the resulting bytes, not the bytes asked for).
    fn written(&mut self, addr: u32, data: &[u8]);
}

/// An in-memory NOR flash.
pub struct VirtualFlash {
    bytes: Vec<u8>,
    observer: Option<Box<dyn FlashObserver + Send>>,
}

impl std::fmt::Debug for VirtualFlash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualFlash")
            .field("size", &self.bytes.len())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Default for VirtualFlash {
    fn default() -> Self {
        Self::new(DEFAULT_SIZE)
    }
}

impl VirtualFlash {
    /// An erased flash of `size` bytes (rounded up to whole sectors).
    pub fn new(size: u32) -> Self {
        let size = size.div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
        Self { bytes: vec![0xFF; size as usize], observer: None }
    }

    /// A flash holding `bytes` (a saved flash file); its size is their length, which must be
    /// whole sectors.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<Self, FlashError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(SECTOR_SIZE as usize) || u32::try_from(bytes.len()).is_err()
        {
            return Err(FlashError::Unaligned { addr: bytes.len() as u32 });
        }
        Ok(Self { bytes, observer: None })
    }

    /// Sets the observer told of every later change.
    pub(crate) fn set_observer(&mut self, observer: Box<dyn FlashObserver + Send>) {
        self.observer = Some(observer);
    }

    /// Size in bytes.
    pub fn size(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// The whole content (for dumps and tests).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn range(&self, addr: u32, len: usize) -> Result<std::ops::Range<usize>, FlashError> {
        let start = addr as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.bytes.len() => Ok(start..end),
            _ => Err(FlashError::OutOfRange { addr, len: len as u64, size: self.size() }),
        }
    }

    /// `len` bytes at `addr`.
    pub fn read(&self, addr: u32, len: usize) -> Result<&[u8], FlashError> {
        let range = self.range(addr, len)?;
        Ok(&self.bytes[range])
    }

    /// Erases the 4 KiB sector starting at `addr` (which must be sector aligned).
    pub(crate) fn erase_sector(&mut self, addr: u32) -> Result<(), FlashError> {
        if !addr.is_multiple_of(SECTOR_SIZE) {
            return Err(FlashError::Unaligned { addr });
        }
        let range = self.range(addr, SECTOR_SIZE as usize)?;
        self.bytes[range.clone()].fill(0xFF);
        self.notify(addr, range);
        Ok(())
    }

    /// Erases every sector touching `[addr, addr + len)`, as the ROM does before writing.
    pub(crate) fn erase_covering(&mut self, addr: u32, len: u32) -> Result<(), FlashError> {
        if len == 0 {
            return Ok(());
        }
        let end = u64::from(addr) + u64::from(len);
        if end > u64::from(self.size()) {
            return Err(FlashError::OutOfRange { addr, len: len.into(), size: self.size() });
        }
        let mut sector = addr - addr % SECTOR_SIZE;
        while u64::from(sector) < end {
            self.erase_sector(sector)?;
            sector += SECTOR_SIZE;
        }
        Ok(())
    }

    /// Programs `data` at `addr`: each bit can go from 1 to 0, never back (`new = old & data`).
    pub(crate) fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        let range = self.range(addr, data.len())?;
        for (cell, &byte) in self.bytes[range.clone()].iter_mut().zip(data) {
            *cell &= byte;
        }
        self.notify(addr, range);
        Ok(())
    }

    fn notify(&mut self, addr: u32, range: std::ops::Range<usize>) {
        if let Some(observer) = self.observer.as_mut() {
            observer.written(addr, &self.bytes[range]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn starts_erased_and_programs_only_clear_bits() {
        let mut flash = VirtualFlash::new(2 * SECTOR_SIZE);
        assert!(flash.read(0, 8192).unwrap().iter().all(|&b| b == 0xFF));
        flash.program(10, &[0xF0, 0x0F]).unwrap();
        flash.program(10, &[0x3C, 0xFF]).unwrap();
        assert_eq!(flash.read(10, 2).unwrap(), [0x30, 0x0F]);
        flash.erase_sector(0).unwrap();
        assert_eq!(flash.read(10, 2).unwrap(), [0xFF, 0xFF]);
    }

    #[test]
    fn erase_covering_rounds_to_sectors() {
        let mut flash = VirtualFlash::new(4 * SECTOR_SIZE);
        flash.program(0, &vec![0; flash.size() as usize]).unwrap();
        flash.erase_covering(SECTOR_SIZE + 5, SECTOR_SIZE).unwrap();
        let bytes = flash.as_bytes();
        assert!(bytes[..4096].iter().all(|&b| b == 0));
        assert!(bytes[4096..12288].iter().all(|&b| b == 0xFF));
        assert!(bytes[12288..].iter().all(|&b| b == 0));
    }

    #[test]
    fn out_of_range_and_unaligned_are_errors_with_the_address() {
        let mut flash = VirtualFlash::new(SECTOR_SIZE);
        assert_eq!(flash.read(4090, 10), Err(FlashError::OutOfRange { addr: 4090, len: 10, size: 4096 }));
        assert!(matches!(flash.program(u32::MAX, &[0]), Err(FlashError::OutOfRange { .. })));
        assert_eq!(flash.erase_sector(100), Err(FlashError::Unaligned { addr: 100 }));
        assert!(matches!(flash.erase_sector(4096), Err(FlashError::OutOfRange { addr: 4096, .. })));
        assert!(matches!(flash.erase_covering(0, 4097), Err(FlashError::OutOfRange { .. })));
    }

    #[test]
    fn observer_sees_resulting_bytes() {
        type Writes = Arc<Mutex<Vec<(u32, Vec<u8>)>>>;
        struct Log(Writes);
        impl FlashObserver for Log {
            fn written(&mut self, addr: u32, data: &[u8]) {
                self.0.lock().unwrap().push((addr, data.to_vec()));
            }
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut flash = VirtualFlash::new(SECTOR_SIZE);
        flash.set_observer(Box::new(Log(log.clone())));
        flash.program(4, &[0x0F]).unwrap();
        flash.program(4, &[0xF1]).unwrap();
        flash.erase_sector(0).unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log[0], (4, vec![0x0F]));
        assert_eq!(log[1], (4, vec![0x01]));
        assert_eq!(log[2].0, 0);
        assert_eq!(log[2].1.len(), 4096);
    }
}
