//! A ROM session driven by hand-built request frames, checked byte for byte where the
//! reference gives the bytes.

use super::*;
use crate::twin::flash::{DEFAULT_SIZE, VirtualFlash};
use crate::twin::rom::regs::{
    CHIP_DETECT_MAGIC_REG, SPI_ADDR_REG, SPI_CMD_REG, SPI_MISO_DLEN_REG, SPI_USR_REG, SPI_USR1_REG, SPI_USR2_REG,
    SPI_W0_REG, UART_CLKDIV_REG,
};

fn request(op: u8, checksum: u32, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x00, op];
    frame.extend_from_slice(&(data.len() as u16).to_le_bytes());
    frame.extend_from_slice(&checksum.to_le_bytes());
    frame.extend_from_slice(data);
    frame
}

fn words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn data_request(op: u8, seq: u32, data: &[u8]) -> Vec<u8> {
    let mut payload = words(&[data.len() as u32, seq, 0, 0]);
    payload.extend_from_slice(data);
    request(op, data_checksum(data).into(), &payload)
}

struct Session {
    loader: RomLoader,
    flash: VirtualFlash,
}

impl Session {
    fn new() -> Self {
        Self { loader: RomLoader::default(), flash: VirtualFlash::new(DEFAULT_SIZE) }
    }

    fn send(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        self.loader.handle(frame, &mut self.flash)
    }

    /// One command that must get one reply; returns `(value, data, status, error)`.
    fn command(&mut self, op: u8, checksum: u32, data: &[u8]) -> (u32, Vec<u8>, u8, u8) {
        let replies = self.send(&request(op, checksum, data));
        assert_eq!(replies.len(), 1, "op {op:#04x}");
        let r = &replies[0];
        assert_eq!(r[..2], [0x01, op]);
        assert_eq!(usize::from(u16::from_le_bytes([r[2], r[3]])), r.len() - 8);
        let value = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let status = &r[r.len() - 4..];
        assert_eq!(status[2..], [0, 0]);
        (value, r[8..r.len() - 4].to_vec(), status[0], status[1])
    }

    fn ok(&mut self, op: u8, data: &[u8]) -> u32 {
        let (value, _, status, error) = self.command(op, 0, data);
        assert_eq!((status, error), (0, 0), "op {op:#04x}");
        value
    }

    fn read_reg(&mut self, addr: u32) -> u32 {
        self.ok(op::READ_REG, &words(&[addr]))
    }

    fn write_reg(&mut self, addr: u32, value: u32) {
        self.ok(op::WRITE_REG, &words(&[addr, value, u32::MAX, 0]));
    }

    fn md5_hex(&mut self, addr: u32, size: u32) -> String {
        let (_, data, status, _) = self.command(op::SPI_FLASH_MD5, 0, &words(&[addr, size, 0, 0]));
        assert_eq!(status, 0);
        String::from_utf8(data).unwrap()
    }

    fn data(&mut self, op: u8, seq: u32, block: &[u8]) -> (u8, u8) {
        let replies = self.send(&data_request(op, seq, block));
        assert_eq!(replies.len(), 1);
        let r = &replies[0];
        (r[r.len() - 4], r[r.len() - 3])
    }
}

fn sync_payload() -> Vec<u8> {
    let mut payload = vec![0x07, 0x07, 0x12, 0x20];
    payload.extend([0x55; 32]);
    payload
}

/// Bytes that compress to about half (xorshift noise in the low nibble).
fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            0x30 | (x & 0x0F) as u8
        })
        .collect()
}

fn md5_of(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sync_is_answered_eight_times_as_the_rom_does() {
    let mut s = Session::new();
    let replies = s.send(&request(op::SYNC, 0, &sync_payload()));
    let expected = [0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0, 0, 0, 0];
    assert_eq!(replies, vec![expected.to_vec(); 8]);
    // A SYNC with another payload is not answered.
    assert!(s.send(&request(op::SYNC, 0, &[0x07; 36])).is_empty());
}

#[test]
fn chip_detect_reads_the_esp32_magic() {
    let mut s = Session::new();
    let replies = s.send(&request(op::READ_REG, 0, &words(&[CHIP_DETECT_MAGIC_REG])));
    // The real ROM trace (esptool #570): 01 0a 0400 831df000 00000000.
    assert_eq!(replies, [vec![0x01, 0x0A, 0x04, 0x00, 0x83, 0x1D, 0xF0, 0x00, 0, 0, 0, 0]]);
}

#[test]
fn device_info_words_decode_as_espflash_reads_them() {
    let mut s = Session::new();
    let word = |s: &mut Session, n: u32| s.read_reg(0x3FF5_A000 + 4 * n);
    let (w1, w2, w3, w5) = (word(&mut s, 1), word(&mut s, 2), word(&mut s, 3), word(&mut s, 5));
    let apb = s.read_reg(0x3FF6_607C);
    let mac = [(w2 >> 8) as u8, w2 as u8, (w1 >> 24) as u8, (w1 >> 16) as u8, (w1 >> 8) as u8, w1 as u8];
    assert_eq!(mac, LAB_MAC);
    let rev = (w3 >> 15 & 1) | (w5 >> 20 & 1) << 1 | (apb >> 31 & 1) << 2;
    assert_eq!(rev, 7, "v3");
    assert_eq!(w3 >> 9 & 7, 1, "package D0WD");
    // Crystal: 115200 × divider / 1e6 > 33 → 40 MHz.
    let div = s.read_reg(UART_CLKDIV_REG) & 0xFFFFF;
    assert_eq!(div, 347);
    assert!(115_200.0 * f64::from(div) / 1e6 > 33.0);
}

/// espflash `flash_detect` → `spi_command(0x9F, 24 bits)` (reference C2): the JEDEC id in W0.
fn read_flash_id(s: &mut Session) -> u32 {
    let (old_usr, old_usr2) = (s.read_reg(SPI_USR_REG), s.read_reg(SPI_USR2_REG));
    s.write_reg(SPI_USR_REG, 1 << 31 | 1 << 28);
    s.write_reg(SPI_USR2_REG, 7 << 28 | 0x9F);
    s.write_reg(SPI_MISO_DLEN_REG, 23);
    s.write_reg(SPI_W0_REG, 0);
    s.write_reg(SPI_CMD_REG, 1 << 18);
    assert_eq!(s.read_reg(SPI_CMD_REG) & 1 << 18, 0, "command done");
    assert_eq!(s.read_reg(SPI_USR_REG) & 1 << 18, 0, "espflash polls USR");
    let id = s.read_reg(SPI_W0_REG) & 0xFF_FFFF;
    s.write_reg(SPI_USR_REG, old_usr);
    s.write_reg(SPI_USR2_REG, old_usr2);
    id
}

#[test]
fn flash_id_through_the_spi_register_dance_once_attached() {
    let mut s = Session::new();
    assert_eq!(read_flash_id(&mut s), 0, "no flash answers before SPI_ATTACH");
    s.ok(op::SPI_ATTACH, &words(&[0, 0]));
    let id = read_flash_id(&mut s);
    assert_eq!(id, 0x1640EF);
    assert_eq!((id >> 16) & 0xFF, 0x16, "4 MB");
}

/// esptool's `read_spiflash_sfdp(addr, 32)`: RDSFDP with a 24-bit address and 8 dummy bits.
fn read_sfdp(s: &mut Session, addr: u32) -> u32 {
    s.write_reg(SPI_MISO_DLEN_REG, 31);
    s.write_reg(SPI_USR1_REG, 7 | 23 << 26);
    s.write_reg(SPI_USR_REG, 1 << 31 | 1 << 30 | 1 << 29 | 1 << 28);
    s.write_reg(SPI_USR2_REG, 7 << 28 | 0x5A);
    s.write_reg(SPI_ADDR_REG, addr << 8);
    s.write_reg(SPI_W0_REG, 0);
    s.write_reg(SPI_CMD_REG, 1 << 18);
    s.read_reg(SPI_W0_REG)
}

#[test]
fn sfdp_reads_the_jedec_table_of_the_emulated_chip() {
    let mut s = Session::new();
    s.ok(op::SPI_ATTACH, &words(&[0, 0]));
    assert_eq!(read_sfdp(&mut s, 0).to_le_bytes(), *b"SFDP");
    let header = read_sfdp(&mut s, 0x0C);
    assert_eq!(header & 0xFF, 0x80, "the basic table's pointer");
    // Density: 32 Mbit − 1, and the 4 KB erase with opcode 0x20.
    assert_eq!(read_sfdp(&mut s, 0x84), 32 * 1024 * 1024 - 1);
    assert_eq!(read_sfdp(&mut s, 0x80) >> 8 & 0xFF, 0x20);
}

#[test]
fn write_reg_takes_several_entries_in_one_command() {
    let mut s = Session::new();
    let two = words(&[0x6000_0000, 0x1234, u32::MAX, 0, 0x6000_0004, 0xAB00, 0xFF00, 0]);
    s.ok(op::WRITE_REG, &two);
    assert_eq!((s.read_reg(0x6000_0000), s.read_reg(0x6000_0004)), (0x1234, 0xAB00));
    let (_, _, status, error) = s.command(op::WRITE_REG, 0, &two[..20]);
    assert_eq!((status, error), (1, RomError::InvalidParam as u8), "not whole entries");
}

#[test]
fn attach_params_and_baud_change() {
    let mut s = Session::new();
    s.ok(op::SPI_ATTACH, &[0; 8]);
    s.ok(op::SPI_SET_PARAMS, &words(&[0, DEFAULT_SIZE, 0x10000, 0x1000, 0x100, 0xFFFF]));
    s.ok(op::CHANGE_BAUDRATE, &words(&[921_600, 0]));
    assert_eq!(s.loader.baud(), 921_600);
    let (_, _, status, error) = s.command(op::SPI_ATTACH, 0, &[0; 5]);
    assert_eq!((status, error), (1, RomError::InvalidParam as u8));
}

#[test]
fn flash_write_of_10_kb_then_md5_matches() {
    let mut s = Session::new();
    // Something to erase first: the ROM's FLASH_BEGIN must wipe it.
    s.flash.program(0x10000, &[0u8; 64]).unwrap();
    let image = pattern(10_000);
    let block = 0x400usize;
    let blocks = image.len().div_ceil(block) as u32;
    s.ok(op::FLASH_BEGIN, &words(&[image.len() as u32, blocks, block as u32, 0x10000]));
    for (seq, chunk) in image.chunks(block).enumerate() {
        let mut padded = chunk.to_vec();
        padded.resize(block, 0xFF); // esptool and espflash pad the last block with 0xFF
        assert_eq!(s.data(op::FLASH_DATA, seq as u32, &padded), (0, 0), "block {seq}");
    }
    assert_eq!(s.md5_hex(0x10000, image.len() as u32), md5_of(&image));
    assert_eq!(s.flash.read(0x10000, image.len()).unwrap(), image);
    // espflash's FLASH_END: one byte, 1 = run user code.
    s.ok(op::FLASH_END, &[1]);
    assert_eq!(s.loader.exit(), Some(LoaderExit::RunUserCode));
    assert!(s.send(&request(op::SYNC, 0, &sync_payload())).is_empty(), "loader left");
}

#[test]
fn deflated_write_inflates_across_blocks() {
    let mut s = Session::new();
    let image = pattern(10_000);
    let zlib = miniz_oxide::deflate::compress_to_vec_zlib(&image, 10);
    // Small blocks so the stream (and a 4 KiB output window) spans several DATA commands.
    let block = 0x100usize;
    let blocks = zlib.len().div_ceil(block) as u32;
    assert!(blocks > 2);
    s.ok(op::FLASH_DEFL_BEGIN, &words(&[image.len() as u32, blocks, block as u32, 0x1000]));
    for (seq, chunk) in zlib.chunks(block).enumerate() {
        assert_eq!(s.data(op::FLASH_DEFL_DATA, seq as u32, chunk), (0, 0), "block {seq}");
    }
    assert_eq!(s.md5_hex(0x1000, image.len() as u32), md5_of(&image));
    s.ok(op::FLASH_DEFL_END, &words(&[0]));
    assert_eq!(s.loader.exit(), Some(LoaderExit::Reboot));
}

#[test]
fn corrupt_deflate_stream_fails() {
    let mut s = Session::new();
    s.ok(op::FLASH_DEFL_BEGIN, &words(&[4096, 1, 0x400, 0]));
    assert_eq!(s.data(op::FLASH_DEFL_DATA, 0, &[0x78, 0x9C, 0xFF, 0xFF, 0xFF]), (1, 0x0B));
}

#[test]
fn bad_data_checksum_is_error_7() {
    let mut s = Session::new();
    s.ok(op::FLASH_BEGIN, &words(&[0x400, 1, 0x400, 0]));
    let mut frame = data_request(op::FLASH_DATA, 0, &[0xAA; 0x400]);
    frame[4] ^= 1;
    assert_eq!(s.send(&frame), [vec![0x01, 0x03, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x07, 0, 0]]);
    assert!(s.flash.read(0, 0x400).unwrap().iter().all(|&b| b == 0xFF), "nothing written");
}

#[test]
fn wrong_sequence_is_refused() {
    let mut s = Session::new();
    s.ok(op::FLASH_BEGIN, &words(&[0x800, 2, 0x400, 0]));
    assert_eq!(s.data(op::FLASH_DATA, 1, &[0; 0x400]), (1, RomError::InvalidParam as u8));
    assert_eq!(s.data(op::FLASH_DATA, 0, &[0; 0x400]), (0, 0));
    assert_eq!(s.data(op::FLASH_DATA, 0, &[0; 0x400]), (1, RomError::InvalidParam as u8));
    assert_eq!(s.data(op::FLASH_DATA, 1, &[0; 0x400]), (0, 0));
    assert_eq!(s.data(op::FLASH_DATA, 2, &[0; 0x400]), (1, RomError::InvalidParam as u8));
}

#[test]
fn data_without_begin_and_begin_beyond_flash_are_refused() {
    let mut s = Session::new();
    assert_eq!(s.data(op::FLASH_DATA, 0, &[0; 16]), (1, RomError::InvalidParam as u8));
    let (_, _, status, error) = s.command(op::FLASH_BEGIN, 0, &words(&[0x2000, 2, 0x1000, DEFAULT_SIZE - 0x1000]));
    assert_eq!((status, error), (1, RomError::InvalidParam as u8));
}

#[test]
fn unsupported_opcode_gets_the_rom_failure_once() {
    let mut s = Session::new();
    assert_eq!(
        s.send(&request(op::GET_SECURITY_INFO, 0, &[])),
        [vec![0x01, 0x14, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x05, 0, 0]]
    );
    // Stub-only commands too (ERASE_FLASH 0xD0).
    assert_eq!(s.command(0xD0, 0, &[]).2, 1);
}

#[test]
fn malformed_frames_get_no_reply_or_an_error_never_a_panic() {
    let mut s = Session::new();
    assert!(s.send(&[]).is_empty());
    assert!(s.send(&[0x00, 0x08, 0x24]).is_empty());
    assert!(s.send(&[0x01, 0x08, 0, 0, 0, 0, 0, 0]).is_empty(), "a response, not a request");
    // Length field larger than the data.
    assert_eq!(s.send(&[0x00, 0x0A, 0x08, 0x00, 0, 0, 0, 0, 1, 2])[0][8..10], [1, 0x05]);
    // Wrong payload sizes for every opcode, short and long.
    for op in 0..=0xFF {
        for len in [0usize, 3, 17, 40] {
            let replies = s.send(&request(op, 0, &vec![0; len]));
            assert!(replies.len() <= 1);
        }
        s.loader = RomLoader::default();
    }
}

#[test]
fn read_flash_slow_returns_a_64_byte_block() {
    let mut s = Session::new();
    s.flash.program(0x100, &[1, 2, 3, 4]).unwrap();
    let (_, data, status, _) = s.command(op::READ_FLASH_SLOW, 0, &words(&[0x100, 4]));
    assert_eq!(status, 0);
    assert_eq!(data.len(), 64);
    assert_eq!(data[..4], [1, 2, 3, 4]);
    let (_, _, status, error) = s.command(op::READ_FLASH_SLOW, 0, &words(&[0, 65]));
    assert_eq!((status, error), (1, RomError::ReadLength as u8));
}

#[test]
fn ram_load_is_checked_and_reported() {
    let mut s = Session::new();
    let text = pattern(3540);
    s.ok(op::MEM_BEGIN, &words(&[text.len() as u32, 1, 0x1800, 0x400B_E000]));
    assert_eq!(s.data(op::MEM_DATA, 0, &text), (0, 0));
    let (_, _, status, error) = s.command(op::MEM_BEGIN, 0, &words(&[16, 1, 0x1800, 0x6000_0000]));
    assert_eq!((status, error), (1, RomError::RamAddress as u8));
    s.ok(op::MEM_END, &words(&[0, 0x400B_E658]));
    assert_eq!(s.loader.exit(), Some(LoaderExit::RunRam { entry: 0x400B_E658 }));
    assert_eq!(s.loader.ram_segments(), [RamSegment { addr: 0x400B_E000, data: text }]);
}

/// A loader speaking as the stub (as after MEM_END started a known one).
fn stub_session() -> Session {
    let mut s = Session::new();
    s.loader.stub = Some(&stub::KNOWN_STUBS[0]);
    s
}

/// One command to the stub: `(value, data, status, error)` from a reply with 2 status bytes.
fn stub_command(s: &mut Session, op: u8, data: &[u8]) -> (u32, Vec<u8>, u8, u8) {
    let replies = s.send(&request(op, 0, data));
    let r = &replies[0];
    assert_eq!(r[..2], [0x01, op]);
    assert_eq!(usize::from(u16::from_le_bytes([r[2], r[3]])), r.len() - 8);
    let value = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
    (value, r[8..r.len() - 2].to_vec(), r[r.len() - 2], r[r.len() - 1])
}

#[test]
fn the_stub_answers_with_two_status_bytes_and_a_raw_md5() {
    let mut s = stub_session();
    let replies = s.send(&request(op::SYNC, 0, &sync_payload()));
    assert_eq!(replies.len(), 8);
    assert_eq!(replies[0], [0x01, 0x08, 0x02, 0x00, 0, 0, 0, 0, 0, 0], "value 0: the stub runs");
    assert_eq!(stub_command(&mut s, op::SPI_ATTACH, &words(&[0])).2, 0, "the stub's 4-byte attach");
    let (_, md5, status, _) = stub_command(&mut s, op::SPI_FLASH_MD5, &words(&[0, 4096, 0, 0]));
    assert_eq!(status, 0);
    assert_eq!(md5, Md5::digest([0xFF; 4096]).to_vec());
    assert_eq!(stub_command(&mut s, 0x7F, &[]).3, RomError::NotImplemented as u8);
    assert_eq!(stub_command(&mut s, op::READ_FLASH_SLOW, &words(&[0, 64])).3, 0xFF, "ROM only");
}

#[test]
fn the_stub_erases_regions_and_the_chip_and_stays_after_flash_end() {
    let mut s = stub_session();
    s.flash.program(0x2000, &[0; 0x2000]).unwrap();
    assert_eq!(stub_command(&mut s, op::ERASE_REGION, &words(&[0x2000, 0x800])).3, RomError::BadDataLen as u8);
    assert_eq!(stub_command(&mut s, op::ERASE_REGION, &words(&[0x2000, 0x1000])).2, 0);
    assert!(s.flash.read(0x2000, 0x1000).unwrap().iter().all(|&b| b == 0xFF));
    assert!(s.flash.read(0x3000, 0x1000).unwrap().iter().all(|&b| b == 0));
    assert_eq!(stub_command(&mut s, op::ERASE_FLASH, &[]).2, 0);
    assert!(s.flash.as_bytes().iter().all(|&b| b == 0xFF));
    // esptool ends a write with FLASH_BEGIN(0, 0) and FLASH_END(1): the stub stays.
    assert_eq!(stub_command(&mut s, op::FLASH_BEGIN, &words(&[0, 0, 0x4000, 0])).2, 0);
    assert_eq!(stub_command(&mut s, op::FLASH_END, &words(&[1])).2, 0);
    assert_eq!(s.loader.exit(), None);
    assert_eq!(stub_command(&mut s, op::RUN_USER_CODE, &[]).2, 0);
    assert_eq!(s.loader.exit(), Some(LoaderExit::RunUserCode));
    // FLASH_END with 0 (esptool's and espflash's "stay in bootloader" from the stub): a
    // software reset back into the ROM.
    let mut s = stub_session();
    assert_eq!(stub_command(&mut s, op::FLASH_END, &words(&[0])).2, 0);
    assert_eq!(s.loader.exit(), Some(LoaderExit::StubReset));
}

#[test]
fn the_stub_streams_read_flash_with_acknowledgements_and_its_md5() {
    let mut s = stub_session();
    let data = pattern(10_000);
    s.flash.program(0x10000, &data).unwrap();
    // esptool: offset, length, packets of one sector, 64 unacknowledged at most.
    let replies = s.send(&request(op::READ_FLASH, 0, &words(&[0x10000, 10_000, 4096, 2])));
    assert_eq!(replies[0], [0x01, op::READ_FLASH, 0x02, 0x00, 0, 0, 0, 0, 0, 0]);
    assert_eq!(replies[1..], [data[..4096].to_vec(), data[4096..8192].to_vec()], "a window of two");
    assert_eq!(s.send(b"not an ack"), Vec::<Vec<u8>>::new());
    assert_eq!(s.send(&4096u32.to_le_bytes()), [data[8192..].to_vec()]);
    assert_eq!(s.send(&8192u32.to_le_bytes()), Vec::<Vec<u8>>::new());
    assert_eq!(s.send(&10_000u32.to_le_bytes()), [Md5::digest(&data).to_vec()]);
    // The read is over: commands are commands again.
    assert_eq!(stub_command(&mut s, op::READ_REG, &words(&[CHIP_DETECT_MAGIC_REG])).0, 0x00F0_1D83);
}

#[test]
fn a_ram_program_that_is_no_known_stub_runs_nothing() {
    let mut s = Session::new();
    s.ok(op::MEM_BEGIN, &words(&[4, 1, 0x1800, 0x4009_0000]));
    assert_eq!(s.data(op::MEM_DATA, 0, &[1, 2, 3, 4]), (0, 0));
    let replies = s.send(&request(op::MEM_END, 0, &words(&[0, 0x4009_0000])));
    assert_eq!(replies.len(), 1, "no OHAI");
    assert_eq!(s.loader.exit(), Some(LoaderExit::RunRam { entry: 0x4009_0000 }));
    assert_eq!(s.loader.stub(), None);
}
