//! The ESP32 ROM serial loader, as a pure state machine: a decoded SLIP frame in, the
//! response frames out (unencoded; the caller SLIP-encodes and writes them).
//!
//! It answers as the ESP32 ROM does (reference C1–C3): 4 status bytes per reply, 8 replies
//! to SYNC, the chip-detect magic and eFuse words of an ESP32-D0WD-V3, a JEDEC id and SFDP
//! through the SPI registers (once SPI_ATTACH has attached the flash), plain and deflated flash
//! writes into a [`VirtualFlash`], MD5 as 32 hex characters, READ_FLASH_SLOW, RAM loads.
//! Leaving the loader (FLASH_END, MEM_END) and baud changes are reported through
//! [`RomLoader::exit`] and [`RomLoader::baud`]; the caller resets, boots or switches the line.
//!
//! **The flasher stub.** No code runs. When MEM_END starts a RAM program that is one of the
//! stubs esptool 5.6 and espflash 4.7 upload ([`stub`]), the loader answers `OHAI` and speaks
//! the stub's protocol from then on: 2 status bytes, MD5 as 16 raw bytes, ERASE_FLASH,
//! ERASE_REGION, the streamed READ_FLASH with its acknowledgements and MD5, RUN_USER_CODE, and
//! FLASH_END that stays in the stub unless told to reset (back into the ROM's loader). The
//! stub takes MEM_* too: a known stub loaded through it starts over it and says `OHAI` again
//! (what a flasher that did not sync does). Any other RAM program reports
//! [`LoaderExit::RunRam`] and nothing runs.

mod download;
mod regs;
pub(crate) mod stub;
#[cfg(test)]
mod tests;

pub use download::RamSegment;
pub(crate) use regs::LAB_MAC;

use md5::{Digest, Md5};

use crate::twin::flash::VirtualFlash;
use download::{Begin, Block, Download};
use regs::Registers;
use stub::{FlashRead, KnownStub};

/// Request opcodes (esptool `ESP_*`, espflash `CommandType`).
pub(crate) mod op {
    pub const FLASH_BEGIN: u8 = 0x02;
    pub const FLASH_DATA: u8 = 0x03;
    pub const FLASH_END: u8 = 0x04;
    pub const MEM_BEGIN: u8 = 0x05;
    pub const MEM_END: u8 = 0x06;
    pub const MEM_DATA: u8 = 0x07;
    pub const SYNC: u8 = 0x08;
    pub const WRITE_REG: u8 = 0x09;
    pub const READ_REG: u8 = 0x0A;
    pub const SPI_SET_PARAMS: u8 = 0x0B;
    pub const SPI_ATTACH: u8 = 0x0D;
    pub const READ_FLASH_SLOW: u8 = 0x0E;
    pub const CHANGE_BAUDRATE: u8 = 0x0F;
    pub const FLASH_DEFL_BEGIN: u8 = 0x10;
    pub const FLASH_DEFL_DATA: u8 = 0x11;
    pub const FLASH_DEFL_END: u8 = 0x12;
    pub const SPI_FLASH_MD5: u8 = 0x13;
    #[cfg(test)]
    pub const GET_SECURITY_INFO: u8 = 0x14;
    /// Stub only.
    pub const ERASE_FLASH: u8 = 0xD0;
    pub const ERASE_REGION: u8 = 0xD1;
    pub const READ_FLASH: u8 = 0xD2;
    pub const RUN_USER_CODE: u8 = 0xD3;
}

/// The ROM's error codes, sent after status 1 (reference C1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RomError {
    /// 0x01: a parameter out of range or a payload of the wrong size.
    InvalidParam = 0x01,
    /// 0x05: an opcode the ROM does not know, or a length field that does not match.
    InvalidMessage = 0x05,
    /// 0x07: a *_DATA block whose XOR checksum does not match the header.
    Checksum = 0x07,
    /// 0x08: writing the flash failed (here: beyond its end).
    FlashWrite = 0x08,
    /// 0x0A: READ_FLASH_SLOW asked for more than one 64-byte block.
    ReadLength = 0x0A,
    /// 0x0B: the deflate stream is corrupt.
    DeflateFailed = 0x0B,
    /// 0x0E: a RAM segment larger than its region.
    RamSize = 0x0E,
    /// 0x0F: a RAM segment outside the chip's RAM.
    RamAddress = 0x0F,
    /// 0xC0 (stub): a payload of the wrong length, or a region not on sector boundaries.
    BadDataLen = 0xC0,
    /// 0xC1 (stub): a *_DATA block whose checksum does not match.
    BadDataChecksum = 0xC1,
    /// 0xC4 (stub): a flash operation failed (here: beyond the flash's end).
    FailedSpiOp = 0xC4,
    /// 0xC7 (stub): the deflate stream is corrupt.
    InflateError = 0xC7,
    /// 0xFF (stub): a command the stub does not implement.
    NotImplemented = 0xFF,
}

impl RomError {
    /// The stub's code for what the ROM reports as `self`.
    fn in_stub(self) -> Self {
        match self {
            Self::InvalidParam | Self::RamSize | Self::RamAddress => Self::BadDataLen,
            Self::Checksum => Self::BadDataChecksum,
            Self::FlashWrite | Self::ReadLength => Self::FailedSpiOp,
            Self::DeflateFailed => Self::InflateError,
            Self::InvalidMessage => Self::NotImplemented,
            other => other,
        }
    }
}

/// How the chip left the loader; the caller resets or boots the twin accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderExit {
    /// FLASH_END / FLASH_DEFL_END with 0: the chip reboots (and boots from flash).
    Reboot,
    /// FLASH_END / FLASH_DEFL_END with 1: the ROM leaves the loader and runs the app in flash.
    RunUserCode,
    /// The stub's FLASH_END with 0: a software reset, after which the ROM, its boot mode
    /// latched at the last chip reset, is back in its serial loader ("soft resetting from the
    /// stub loader will re-load the ROM bootloader", as esptool and espflash both say).
    StubReset,
    /// MEM_END with an entry point: a RAM program that is no known stub starts (nothing runs).
    RunRam { entry: u32 },
}

/// Seed of the *_DATA checksum.
const CHECKSUM_SEED: u8 = 0xEF;
/// SYNC's payload and reply value.
const SYNC_PAYLOAD_HEAD: [u8; 4] = [0x07, 0x07, 0x12, 0x20];
const SYNC_VALUE: u32 = 0x2012_0707;
/// The ROM answers one SYNC eight times.
const SYNC_REPLIES: usize = 8;
/// READ_FLASH_SLOW's block: the ROM always returns this many bytes.
const SLOW_READ_BLOCK: usize = 64;
/// RAM segments kept for inspection (a stub has two).
const MAX_RAM_SEGMENTS: usize = 16;

/// The ROM loader of one ESP32 in download mode.
pub struct RomLoader {
    regs: Registers,
    download: Download,
    baud: u32,
    exit: Option<LoaderExit>,
    ram: Vec<RamSegment>,
    /// The stub that runs, once MEM_END started one.
    stub: Option<&'static KnownStub>,
    /// The stub's READ_FLASH under way: frames are its acknowledgements until it ends.
    reading: Option<FlashRead>,
    /// MEM_END has just started a known stub: its `OHAI` follows the reply.
    stub_started: bool,
}

impl Default for RomLoader {
    fn default() -> Self {
        Self::new(LAB_MAC)
    }
}

impl std::fmt::Debug for RomLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RomLoader").field("baud", &self.baud).field("exit", &self.exit).finish()
    }
}

impl RomLoader {
    /// A loader just entered (115200 baud) on an ESP32 with this factory MAC.
    pub fn new(mac: [u8; 6]) -> Self {
        Self {
            regs: Registers::esp32(mac),
            download: Download::Idle,
            baud: 115_200,
            exit: None,
            ram: Vec::new(),
            stub: None,
            reading: None,
            stub_started: false,
        }
    }

    /// The flasher stub the loader speaks as, once one was started.
    pub fn stub(&self) -> Option<&'static str> {
        self.stub.map(|stub| stub.name)
    }

    #[cfg(test)]
    /// The baud the loader talks at: the caller switches its side after sending the reply to
    /// CHANGE_BAUDRATE (which goes out at the old rate).
    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// Set once the chip has left the loader; from then on [`RomLoader::handle`] answers
    /// nothing, as the ROM is no longer listening.
    pub fn exit(&self) -> Option<LoaderExit> {
        self.exit
    }

    #[cfg(test)]
    /// RAM segments received by MEM_BEGIN/MEM_DATA (completed by the next BEGIN or MEM_END).
    pub fn ram_segments(&self) -> &[RamSegment] {
        &self.ram
    }

    /// Handles one decoded frame and returns the replies, in order. A frame that is not a
    /// request (too short, direction byte not 0) gets no reply; nothing here panics.
    pub fn handle(&mut self, frame: &[u8], flash: &mut VirtualFlash) -> Vec<Vec<u8>> {
        if self.exit.is_some() {
            return Vec::new();
        }
        if let Some(read) = &mut self.reading {
            // The stub's read loop takes every frame as an acknowledgement (a u32 total).
            let Ok(total) = <[u8; 4]>::try_from(frame) else {
                return Vec::new();
            };
            let (out, done) = read.ack(u32::from_le_bytes(total) as usize);
            if done {
                self.reading = None;
            }
            return out;
        }
        if frame.len() < 8 || frame[0] != 0x00 {
            return Vec::new();
        }
        let op = frame[1];
        let len = usize::from(u16::from_le_bytes([frame[2], frame[3]]));
        let checksum = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let data = &frame[8..];
        let stub = self.stub.is_some();
        if len != data.len() {
            return vec![failure(op, RomError::InvalidMessage, stub)];
        }
        if op == op::SYNC {
            // A SYNC with another payload is not a sync: the ROM keeps waiting for one.
            if !is_sync(data) {
                return Vec::new();
            }
            // The stub answers with value 0, which tells flashers it runs.
            let value = if stub { 0 } else { SYNC_VALUE };
            return vec![reply(op, value, &[], stub); SYNC_REPLIES];
        }
        let answer =
            if stub { self.dispatch_stub(op, checksum, data, flash) } else { self.dispatch(op, checksum, data, flash) };
        let mut replies = vec![match answer {
            Ok((value, body)) => reply(op, value, &body, stub),
            Err(error) => failure(op, error, stub),
        }];
        if std::mem::take(&mut self.stub_started) {
            // The stub's first words, after the reply to MEM_END (the ROM's, or the running
            // stub's when a flasher that did not sync uploads the stub over itself).
            replies.push(b"OHAI".to_vec());
        }
        if let Some(read) = &mut self.reading {
            // The first window of packets (for an empty read, the MD5 at once).
            let (out, done) = read.ack(0);
            replies.extend(out);
            if done {
                self.reading = None;
            }
        }
        replies
    }

    /// One command: `(value, data)` for the reply, or the ROM error.
    fn dispatch(&mut self, op: u8, checksum: u32, data: &[u8], flash: &mut VirtualFlash) -> Answer {
        match op {
            op::READ_REG => {
                let [addr] = words::<1>(data)?;
                Ok((self.regs.read(addr), Vec::new()))
            }
            op::WRITE_REG => self.write_regs(data, flash),
            op::SPI_SET_PARAMS => words::<6>(data).and_then(|_| done()),
            op::SPI_ATTACH => {
                words::<2>(data)?;
                self.regs.attach_flash();
                done()
            }
            op::CHANGE_BAUDRATE => self.change_baud(data),
            op::FLASH_BEGIN | op::FLASH_DEFL_BEGIN | op::MEM_BEGIN => self.begin(op, data, flash),
            op::FLASH_DATA | op::FLASH_DEFL_DATA | op::MEM_DATA => self.data(op, checksum, data, flash),
            op::FLASH_END | op::FLASH_DEFL_END => self.flash_end(data),
            op::MEM_END => self.mem_end(data),
            op::SPI_FLASH_MD5 => flash_md5(data, flash).map(|md5| (0, hex(&md5).into_bytes())),
            op::READ_FLASH_SLOW => read_flash_slow(data, flash),
            _ => Err(RomError::InvalidMessage),
        }
    }

    /// One command to the stub: its command set, its error codes.
    fn dispatch_stub(&mut self, op: u8, checksum: u32, data: &[u8], flash: &mut VirtualFlash) -> Answer {
        let answer = match op {
            op::SPI_ATTACH => {
                // The stub takes the pin word alone; a ROM-style second word is accepted too.
                if data.len() != 4 && data.len() != 8 {
                    return Err(RomError::BadDataLen);
                }
                self.regs.attach_flash();
                done()
            }
            op::FLASH_END | op::FLASH_DEFL_END => {
                // 0: reboot; anything else: the stub stays (esptool ends a write so).
                let reboot = data.first().is_none_or(|&flag| flag == 0) && data.iter().all(|&b| b == 0);
                self.finish_download();
                if reboot {
                    self.exit = Some(LoaderExit::StubReset);
                }
                done()
            }
            op::SPI_FLASH_MD5 => flash_md5(data, flash).map(|md5| (0, md5)),
            op::ERASE_FLASH => {
                flash.erase_covering(0, flash.size()).map_err(|_| RomError::FailedSpiOp)?;
                done()
            }
            op::ERASE_REGION => {
                let [offset, size] = words::<2>(data)?;
                if !offset.is_multiple_of(SECTOR) || !size.is_multiple_of(SECTOR) {
                    return Err(RomError::BadDataLen);
                }
                if u64::from(offset) + u64::from(size) > u64::from(flash.size()) {
                    return Err(RomError::FailedSpiOp);
                }
                flash.erase_covering(offset, size).map_err(|_| RomError::FailedSpiOp)?;
                done()
            }
            op::READ_FLASH => {
                let [offset, length, packet, window] = words::<4>(data)?;
                let bytes = flash.read(offset, length as usize).map_err(|_| RomError::FailedSpiOp)?.to_vec();
                if packet == 0 {
                    return Err(RomError::BadDataLen);
                }
                self.reading = Some(FlashRead::new(bytes, packet as usize, window as usize));
                done()
            }
            op::RUN_USER_CODE => {
                self.finish_download();
                self.exit = Some(LoaderExit::RunUserCode);
                done()
            }
            op::READ_FLASH_SLOW => Err(RomError::NotImplemented),
            _ => self.dispatch(op, checksum, data, flash),
        };
        answer.map_err(RomError::in_stub)
    }

    /// WRITE_REG: one or more (addr, value, mask, delay) quadruples, applied in order.
    fn write_regs(&mut self, data: &[u8], flash: &VirtualFlash) -> Answer {
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return Err(RomError::InvalidParam);
        }
        for entry in data.chunks_exact(16) {
            let [addr, value, mask, _delay_us] = words::<4>(entry)?;
            self.regs.write(addr, value, mask, flash.size());
        }
        done()
    }

    /// CHANGE_BAUDRATE: the new rate (the reply still goes out at the old one).
    fn change_baud(&mut self, data: &[u8]) -> Answer {
        let [new_baud, _old_baud] = words::<2>(data)?;
        if new_baud == 0 {
            return Err(RomError::InvalidParam);
        }
        self.baud = new_baud;
        self.regs.set_baud(new_baud);
        done()
    }

    /// FLASH_BEGIN, FLASH_DEFL_BEGIN, MEM_BEGIN: a new transfer, ending the one under way.
    fn begin(&mut self, op: u8, data: &[u8], flash: &mut VirtualFlash) -> Answer {
        // The stub takes a fifth word on FLASH_BEGIN and FLASH_DEFL_BEGIN: 1 for an encrypted
        // write, which the twin (no flash encryption) refuses.
        let data = match data.len() {
            20 if self.stub.is_some() && op != op::MEM_BEGIN => {
                let [.., encrypted] = words::<5>(data)?;
                if encrypted != 0 {
                    return Err(RomError::FailedSpiOp);
                }
                &data[..16]
            }
            _ => data,
        };
        let [size, num_blocks, block_size, offset] = words::<4>(data)?;
        let begin = Begin { size, num_blocks, block_size, offset };
        let next = match op {
            op::FLASH_BEGIN => Download::flash(begin, flash)?,
            op::FLASH_DEFL_BEGIN => Download::deflate(begin, flash)?,
            _ => Download::mem(begin)?,
        };
        self.finish_download();
        self.download = next;
        done()
    }

    /// FLASH_DATA, FLASH_DEFL_DATA, MEM_DATA: one block of the transfer under way.
    fn data(&mut self, op: u8, checksum: u32, data: &[u8], flash: &mut VirtualFlash) -> Answer {
        let block = data_block(checksum, data)?;
        match op {
            op::FLASH_DATA => self.download.flash_data(block, flash)?,
            op::FLASH_DEFL_DATA => self.download.deflate_data(block, flash)?,
            _ => self.download.mem_data(block)?,
        }
        done()
    }

    /// FLASH_END, FLASH_DEFL_END: the loader is left, to reboot or to run the app.
    fn flash_end(&mut self, data: &[u8]) -> Answer {
        // esptool sends a u32, espflash a single byte: 0 reboot, 1 run user code.
        let run = match data {
            [flag] => u32::from(*flag),
            [..] => words::<1>(data)?[0],
        };
        self.finish_download();
        self.exit = Some(if run == 0 { LoaderExit::Reboot } else { LoaderExit::RunUserCode });
        done()
    }

    /// MEM_END: the loader is left for the RAM program when it names an entry; a known stub
    /// takes over the line instead.
    fn mem_end(&mut self, data: &[u8]) -> Answer {
        let [no_entry, entry] = words::<2>(data)?;
        self.finish_download();
        if no_entry == 0 {
            match stub::recognise(&self.ram, entry) {
                Some(known) => {
                    // The stub attaches the flash itself when it starts. A running stub takes
                    // MEM_* too and jumps to the entry: the same stub, loaded over itself,
                    // starts again.
                    self.regs.attach_flash();
                    self.stub = Some(known);
                    self.stub_started = true;
                }
                None => self.exit = Some(LoaderExit::RunRam { entry }),
            }
        }
        done()
    }

    /// Ends the transfer under way, keeping a RAM segment it loaded.
    fn finish_download(&mut self) {
        let done = std::mem::replace(&mut self.download, Download::Idle);
        if let Some(segment) = done.into_ram_segment() {
            if self.ram.len() >= MAX_RAM_SEGMENTS {
                self.ram.remove(0);
            }
            self.ram.push(segment);
        }
    }
}

/// A command's answer: `(value, data)` for the reply, or the ROM error.
type Answer = Result<(u32, Vec<u8>), RomError>;

/// The answer of a command that reports nothing but success.
fn done() -> Answer {
    Ok((0, Vec::new()))
}

/// A flash sector: the unit of the stub's ERASE_REGION.
const SECTOR: u32 = 4096;

/// SPI_FLASH_MD5: the region's MD5 (the ROM sends it as 32 hex characters, the stub raw).
fn flash_md5(data: &[u8], flash: &VirtualFlash) -> Result<Vec<u8>, RomError> {
    let [addr, size, _, _] = words::<4>(data)?;
    let bytes = flash.read(addr, size as usize).map_err(|_| RomError::InvalidParam)?;
    Ok(Md5::digest(bytes).to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// READ_FLASH_SLOW: up to one 64-byte block.
fn read_flash_slow(data: &[u8], flash: &VirtualFlash) -> Answer {
    let [addr, len] = words::<2>(data)?;
    if len as usize > SLOW_READ_BLOCK {
        return Err(RomError::ReadLength);
    }
    let bytes = flash.read(addr, len as usize).map_err(|_| RomError::InvalidParam)?;
    // Always a 64-byte buffer (esptool: "command always returns 64 byte buffer, regardless of
    // how many bytes were actually read"); the tail's content on a real chip is unknown, here
    // it is 0xFF.
    let mut block = bytes.to_vec();
    block.resize(SLOW_READ_BLOCK, 0xFF);
    Ok((0, block))
}

fn is_sync(data: &[u8]) -> bool {
    data.len() == 36 && data[..4] == SYNC_PAYLOAD_HEAD && data[4..].iter().all(|&b| b == 0x55)
}

/// Exactly `N` little-endian words, or InvalidParam.
fn words<const N: usize>(data: &[u8]) -> Result<[u32; N], RomError> {
    if data.len() != 4 * N {
        return Err(RomError::InvalidParam);
    }
    let mut out = [0u32; N];
    for (word, chunk) in out.iter_mut().zip(data.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(out)
}

/// A *_DATA payload: `len, seq, 0, 0, data`, the data's checksum matching the header's.
fn data_block(checksum: u32, data: &[u8]) -> Result<Block<'_>, RomError> {
    if data.len() < 16 {
        return Err(RomError::InvalidParam);
    }
    let [len, seq, _, _] = words::<4>(&data[..16])?;
    let body = &data[16..];
    if len as usize != body.len() {
        return Err(RomError::InvalidParam);
    }
    if u32::from(data_checksum(body)) != checksum {
        return Err(RomError::Checksum);
    }
    Ok(Block { seq, data: body })
}

/// The *_DATA checksum: 0xEF XOR every data byte.
pub fn data_checksum(data: &[u8]) -> u8 {
    data.iter().fold(CHECKSUM_SEED, |acc, b| acc ^ b)
}

/// A reply: direction 1, the opcode, data length, value, data, then status OK: `00 00 00 00`
/// from the ROM, `00 00` from the stub.
fn reply(op: u8, value: u32, data: &[u8], stub: bool) -> Vec<u8> {
    build(op, value, data, [0, 0], stub)
}

/// A failure reply: status 1 and the error code.
fn failure(op: u8, error: RomError, stub: bool) -> Vec<u8> {
    build(op, 0, &[], [1, error as u8], stub)
}

fn build(op: u8, value: u32, data: &[u8], status: [u8; 2], stub: bool) -> Vec<u8> {
    let status: &[u8] = if stub { &status } else { &[status[0], status[1], 0, 0] };
    let len = (data.len() + status.len()) as u16;
    let mut out = Vec::with_capacity(8 + data.len() + status.len());
    out.extend_from_slice(&[0x01, op]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(status);
    out
}
