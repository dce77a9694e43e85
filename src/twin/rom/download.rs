//! What the ROM loader is receiving between a *_BEGIN and its *_END: plain flash blocks, a
//! zlib stream inflated into flash, or a RAM program. One enum, one state per transfer; a
//! BEGIN replaces whatever transfer was under way, as on the ROM.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::RomError;
use crate::twin::flash::VirtualFlash;

/// The four words every *_BEGIN carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Begin {
    /// FLASH_BEGIN: bytes to erase; FLASH_DEFL_BEGIN: uncompressed size; MEM_BEGIN: total size.
    pub size: u32,
    pub(crate) num_blocks: u32,
    pub(crate) block_size: u32,
    /// Flash offset or RAM address.
    pub offset: u32,
}

/// The header of a *_DATA payload, with the data after it.
pub(super) struct Block<'a> {
    pub seq: u32,
    pub data: &'a [u8],
}

/// Sequence bookkeeping shared by the three transfers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Blocks {
    begin: Begin,
    next_seq: u32,
}

impl Blocks {
    /// Checks the block is the next one and fits the announced block size.
    fn accept(&mut self, block: &Block<'_>) -> Result<(), RomError> {
        if block.seq != self.next_seq || block.seq >= self.begin.num_blocks {
            return Err(RomError::InvalidParam);
        }
        if block.data.len() > self.begin.block_size as usize {
            return Err(RomError::InvalidParam);
        }
        self.next_seq += 1;
        Ok(())
    }
}

/// The RAM regions of an ESP32 a MEM_BEGIN may load into (TRM memory map: RTC fast memory
/// as data, internal SRAM 2 and 1 as data, SRAM 0 and 1 as instruction memory, RTC fast as
/// instruction memory, RTC slow memory).
const RAM_REGIONS: [(u32, u32); 4] =
    [(0x3FF8_0000, 0x3FF8_2000), (0x3FFA_E000, 0x4000_0000), (0x4007_0000, 0x400C_2000), (0x5000_0000, 0x5000_2000)];

/// A transfer in progress.
pub(super) enum Download {
    /// No transfer (after reset, or after an END).
    Idle,
    /// FLASH_BEGIN: blocks written at `offset + seq * block_size`.
    Flash { blocks: Blocks },
    /// FLASH_DEFL_BEGIN: one zlib stream across the blocks, written on from `offset`.
    Deflate { blocks: Blocks, inflater: Box<InflateState>, written: u32, ended: bool },
    /// MEM_BEGIN: a RAM segment collected, never executed.
    Mem { blocks: Blocks, image: Vec<u8> },
}

/// A RAM segment loaded by MEM_BEGIN/MEM_DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamSegment {
    /// Load address.
    pub addr: u32,
    /// The bytes received (at most the size MEM_BEGIN announced).
    pub data: Vec<u8>,
}

impl Download {
    /// FLASH_BEGIN: erases the sectors covering `[offset, offset + size)`.
    pub fn flash(begin: Begin, flash: &mut VirtualFlash) -> Result<Self, RomError> {
        check_flash_begin(begin, flash)?;
        flash.erase_covering(begin.offset, begin.size).map_err(|_| RomError::InvalidParam)?;
        Ok(Self::Flash { blocks: Blocks { begin, next_seq: 0 } })
    }

    /// FLASH_DEFL_BEGIN: erases the sectors the uncompressed image will cover, up front
    /// (esptool: "ROM performs the erase up front", its timeout scaled by the erase size).
    pub(crate) fn deflate(begin: Begin, flash: &mut VirtualFlash) -> Result<Self, RomError> {
        check_flash_begin(begin, flash)?;
        flash.erase_covering(begin.offset, begin.size).map_err(|_| RomError::InvalidParam)?;
        Ok(Self::Deflate {
            blocks: Blocks { begin, next_seq: 0 },
            inflater: InflateState::new_boxed(DataFormat::Zlib),
            written: 0,
            ended: false,
        })
    }

    /// MEM_BEGIN: the segment must lie in one RAM region.
    pub fn mem(begin: Begin) -> Result<Self, RomError> {
        let end = u64::from(begin.offset) + u64::from(begin.size);
        let region = RAM_REGIONS
            .iter()
            .find(|(start, stop)| (*start..*stop).contains(&begin.offset))
            .ok_or(RomError::RamAddress)?;
        if end > u64::from(region.1) {
            return Err(RomError::RamSize);
        }
        if begin.block_size == 0 && begin.num_blocks > 0 {
            return Err(RomError::InvalidParam);
        }
        Ok(Self::Mem { blocks: Blocks { begin, next_seq: 0 }, image: Vec::new() })
    }

    /// FLASH_DATA.
    pub(crate) fn flash_data(&mut self, block: Block<'_>, flash: &mut VirtualFlash) -> Result<(), RomError> {
        let Self::Flash { blocks } = self else {
            return Err(RomError::InvalidParam);
        };
        let mut next = *blocks;
        next.accept(&block)?;
        let addr = u64::from(blocks.begin.offset) + u64::from(block.seq) * u64::from(blocks.begin.block_size);
        let addr = u32::try_from(addr).map_err(|_| RomError::FlashWrite)?;
        flash.program(addr, block.data).map_err(|_| RomError::FlashWrite)?;
        *blocks = next;
        Ok(())
    }

    /// FLASH_DEFL_DATA: inflates what this block completes and programs it.
    pub(crate) fn deflate_data(&mut self, block: Block<'_>, flash: &mut VirtualFlash) -> Result<(), RomError> {
        let Self::Deflate { blocks, inflater, written, ended } = self else {
            return Err(RomError::InvalidParam);
        };
        blocks.accept(&block)?;
        let mut input = block.data;
        let mut out = [0u8; 4096];
        while !*ended {
            let result = inflate(inflater, input, &mut out, MZFlush::None);
            input = &input[result.bytes_consumed..];
            let produced = &out[..result.bytes_written];
            if !produced.is_empty() {
                let addr = u64::from(blocks.begin.offset) + u64::from(*written);
                let addr = u32::try_from(addr).map_err(|_| RomError::FlashWrite)?;
                flash.program(addr, produced).map_err(|_| RomError::FlashWrite)?;
                *written += produced.len() as u32;
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => *ended = true,
                Ok(_) if result.bytes_consumed == 0 && result.bytes_written == 0 => break,
                Ok(_) => {}
                Err(MZError::Buf) => break, // needs the next block
                Err(_) => return Err(RomError::DeflateFailed),
            }
        }
        Ok(())
    }

    /// MEM_DATA: appended to the segment, up to the announced size.
    pub(crate) fn mem_data(&mut self, block: Block<'_>) -> Result<(), RomError> {
        let Self::Mem { blocks, image } = self else {
            return Err(RomError::InvalidParam);
        };
        let mut next = *blocks;
        next.accept(&block)?;
        if image.len() + block.data.len() > blocks.begin.size as usize {
            return Err(RomError::RamSize);
        }
        image.extend_from_slice(block.data);
        *blocks = next;
        Ok(())
    }

    /// The RAM segment this transfer loaded, if it was one.
    pub(crate) fn into_ram_segment(self) -> Option<RamSegment> {
        match self {
            Self::Mem { blocks, image } => Some(RamSegment { addr: blocks.begin.offset, data: image }),
            _ => None,
        }
    }
}

fn check_flash_begin(begin: Begin, flash: &VirtualFlash) -> Result<(), RomError> {
    let end = u64::from(begin.offset) + u64::from(begin.size);
    if end > u64::from(flash.size()) || (begin.block_size == 0 && begin.num_blocks > 0) {
        return Err(RomError::InvalidParam);
    }
    Ok(())
}
