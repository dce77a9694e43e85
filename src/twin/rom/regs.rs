//! The registers a flasher reads and writes through READ_REG / WRITE_REG on an ESP32: the
//! chip-detect magic, the eFuse words behind `device_info`, the UART divider the crystal is
//! guessed from, and the SPI flash controller registers used to read the JEDEC id.
//!
//! Addresses and bit positions are those esptool and espflash use (reference C2, C3).

use std::collections::BTreeMap;

/// READ_REG here gives the chip family's magic value.
pub(crate) const CHIP_DETECT_MAGIC_REG: u32 = 0x4000_1000;
/// The original ESP32's magic value.
pub(crate) const ESP32_MAGIC: u32 = 0x00F0_1D83;
/// eFuse read words, word n at `EFUSE_RD_BASE + 4 * n`.
pub(crate) const EFUSE_RD_BASE: u32 = 0x3FF5_A000;
/// APB_CTL_DATE: bit 31 is the third chip-revision bit.
pub(crate) const APB_CTL_DATE_REG: u32 = 0x3FF6_607C;
/// UART0 clock divider; `divider * baud` gives the APB (crystal) frequency.
pub(crate) const UART_CLKDIV_REG: u32 = 0x3FF4_0014;
/// The SPI controller espflash and esptool drive to talk to the flash chip.
pub(crate) const SPI_BASE: u32 = 0x3FF4_2000;
/// SPI command register: writing bit 18 (USR) starts a user command; it clears when done.
pub(crate) const SPI_CMD_REG: u32 = SPI_BASE;
/// SPI address register: a user command's address, from the most significant bit down.
pub(crate) const SPI_ADDR_REG: u32 = SPI_BASE + 0x04;
/// SPI user register: bit 28 enables the MISO (read) phase, bit 30 the address phase.
pub(crate) const SPI_USR_REG: u32 = SPI_BASE + 0x1C;
/// SPI user register 1: the address length − 1 in bits 26–31.
pub(crate) const SPI_USR1_REG: u32 = SPI_BASE + 0x20;
/// SPI user register 2: the command opcode in bits 0–15, its bit length − 1 in bits 28–31.
pub(crate) const SPI_USR2_REG: u32 = SPI_BASE + 0x24;
/// SPI MISO bit length − 1.
pub(crate) const SPI_MISO_DLEN_REG: u32 = SPI_BASE + 0x2C;
/// First SPI data word: what a user command read lands here.
pub(crate) const SPI_W0_REG: u32 = SPI_BASE + 0x80;

const SPI_CMD_USR: u32 = 1 << 18;
const SPI_USR_MISO: u32 = 1 << 28;
const SPI_USR_ADDR: u32 = 1 << 30;
const FLASH_RDID: u32 = 0x9F;
const FLASH_RDSFDP: u32 = 0x5A;
/// Winbond's JEDEC manufacturer id and its W25Q "Q" memory type.
const WINBOND: u32 = 0xEF;
const W25Q_TYPE: u32 = 0x40;
/// The crystal of ESP32 modules, and the baud the ROM starts at.
const XTAL_HZ: u32 = 40_000_000;
const ROM_BAUD: u32 = 115_200;
/// Registers written at addresses the twin does not model are kept, up to this many.
const MAX_EXTRA_REGS: usize = 1024;

/// A fixed lab MAC under Espressif's OUI 24:0A:C4.
pub(crate) const LAB_MAC: [u8; 6] = [0x24, 0x0A, 0xC4, 0x07, 0x7A, 0x01];

/// The register file: fixed identity registers plus whatever the flasher writes.
#[derive(Debug, Clone)]
pub(crate) struct Registers {
    values: BTreeMap<u32, u32>,
    /// SPI_ATTACH has connected the flash to the SPI controller: before it, no flash answers.
    attached: bool,
}

impl Registers {
    /// An ESP32-D0WD-V3 (chip revision v3.0, 40 MHz crystal, rated for 240 MHz, ADC reference
    /// calibrated at the factory, no security eFuses burnt) with the given factory MAC.
    pub fn esp32(mac: [u8; 6]) -> Self {
        let efuse = |n: u32| EFUSE_RD_BASE + 4 * n;
        let [m0, m1, m2, m3, m4, m5] = mac;
        let mut values = BTreeMap::new();
        values.insert(CHIP_DETECT_MAGIC_REG, ESP32_MAGIC);
        // Word 1: MAC low 32 bits; word 2: MAC high 16 bits, CRC-8 of the MAC in bits 16–23.
        values.insert(efuse(1), u32::from_be_bytes([m2, m3, m4, m5]));
        values.insert(efuse(2), u32::from(crc8_maxim(&mac)) << 16 | u32::from(m0) << 8 | u32::from(m1));
        // Word 3: bit 15 = revision bit 0, bit 13 = CPU frequency rated (bit 12 clear: 240 MHz),
        // package (bits 9–11) 1 = D0WD.
        values.insert(efuse(3), 1 << 15 | 1 << 13 | 1 << 9);
        // Word 4: ADC1 reference calibration (bits 8–12), a factory value.
        values.insert(efuse(4), 0x0B << 8);
        // Word 5: bit 20 = revision bit 1; minor revision (bits 24–25) 0.
        values.insert(efuse(5), 1 << 20);
        // APB_CTL_DATE: reset value 0x16042000 with bit 31 = revision bit 2 (so v3).
        values.insert(APB_CTL_DATE_REG, 1 << 31 | 0x1604_2000);
        values.insert(UART_CLKDIV_REG, XTAL_HZ / ROM_BAUD);
        Self { values, attached: false }
    }

    /// SPI_ATTACH: the flash answers the SPI controller from now on.
    pub(crate) fn attach_flash(&mut self) {
        self.attached = true;
    }

    /// READ_REG: a modelled or last written value, else 0.
    pub fn read(&self, addr: u32) -> u32 {
        self.values.get(&addr).copied().unwrap_or(0)
    }

    /// WRITE_REG with a mask (bits outside it are kept). A write of the SPI USR bit runs the
    /// user command at once against a flash of `flash_size` bytes and clears the bit again.
    pub fn write(&mut self, addr: u32, value: u32, mask: u32, flash_size: u32) {
        if !self.values.contains_key(&addr) && self.values.len() >= MAX_EXTRA_REGS {
            return;
        }
        let old = self.read(addr);
        self.values.insert(addr, (old & !mask) | (value & mask));
        if addr == SPI_CMD_REG && self.read(SPI_CMD_REG) & SPI_CMD_USR != 0 {
            self.run_spi_user_command(flash_size);
        }
    }

    /// The ROM reprograms its UART after CHANGE_BAUDRATE; the divider follows.
    pub(crate) fn set_baud(&mut self, baud: u32) {
        if let Some(divider) = XTAL_HZ.checked_div(baud) {
            self.values.insert(UART_CLKDIV_REG, divider);
        }
    }

    fn run_spi_user_command(&mut self, flash_size: u32) {
        let opcode = self.read(SPI_USR2_REG) & 0xFFFF;
        let usr = self.read(SPI_USR_REG);
        // Not attached: the command runs, nothing answers, W0 keeps what it held.
        if self.attached && usr & SPI_USR_MISO != 0 {
            let reply = match opcode {
                FLASH_RDID => jedec_id(flash_size),
                FLASH_RDSFDP if usr & SPI_USR_ADDR != 0 => {
                    let addr_bits = (self.read(SPI_USR1_REG) >> 26) + 1;
                    let addr = self.read(SPI_ADDR_REG).checked_shr(32 - addr_bits.min(32)).unwrap_or(0);
                    sfdp_word(flash_size, addr)
                }
                _ => 0, // e.g. read status: never busy
            };
            let bits = (self.read(SPI_MISO_DLEN_REG) & 0x1FF) + 1;
            let mask = if bits >= 32 { u32::MAX } else { (1 << bits) - 1 };
            self.values.insert(SPI_W0_REG, reply & mask);
        }
        let cmd = self.read(SPI_CMD_REG);
        self.values.insert(SPI_CMD_REG, cmd & !SPI_CMD_USR);
    }
}

/// The JEDEC id a Winbond W25Q chip of this size answers, as the bytes land in W0:
/// manufacturer, memory type, capacity (log2 of the size) from the low byte up.
pub(crate) fn jedec_id(flash_size: u32) -> u32 {
    let capacity = 32 - flash_size.saturating_sub(1).leading_zeros();
    capacity << 16 | W25Q_TYPE << 8 | WINBOND
}

/// The flash's SFDP table (JESD216): the header, one parameter header, and the basic flash
/// parameter table of the emulated chip at 0x80 — 3-byte addresses, 4 KB (0x20), 32 KB (0x52)
/// and 64 KB (0xD8) erases, the 1-1-2, 1-2-2, 1-1-4 and 1-4-4 fast reads of the W25Q family,
/// and its density. Built for the emulated chip from JESD216's layout, not dumped from a part.
pub(crate) fn sfdp(flash_size: u32) -> [u8; 0x80 + 36] {
    let mut table = [0xFF; 0x80 + 36];
    // "SFDP", revision 1.0, one parameter header (count − 1 = 0), access protocol 0xFF.
    table[..8].copy_from_slice(&[b'S', b'F', b'D', b'P', 0x00, 0x01, 0x00, 0xFF]);
    // Parameter header 0: JEDEC basic table (ID 0x00/0xFF), revision 1.0, 9 words at 0x80.
    table[8..16].copy_from_slice(&[0x00, 0x00, 0x01, 0x09, 0x80, 0x00, 0x00, 0xFF]);
    let density_bits = u64::from(flash_size) * 8 - 1;
    let words: [u32; 9] = [
        0xFFF1_20E5,
        u32::try_from(density_bits).unwrap_or(u32::MAX >> 1),
        0x6B08_EB44,
        0xBB80_3B08,
        0xFFFF_FFEE,
        0xFF00_FFFF,
        0xFF00_FFFF,
        0x520F_200C,
        0x0000_D810,
    ];
    for (i, word) in words.iter().enumerate() {
        table[0x80 + 4 * i..0x84 + 4 * i].copy_from_slice(&word.to_le_bytes());
    }
    table
}

/// Four bytes of the SFDP table from `addr`, as they land in W0 (first byte lowest); 0xFF past
/// its end.
fn sfdp_word(flash_size: u32, addr: u32) -> u32 {
    let table = sfdp(flash_size);
    let byte = |i: u32| table.get(addr.saturating_add(i) as usize).copied().unwrap_or(0xFF);
    u32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)])
}

/// CRC-8 (Dallas/Maxim, reflected polynomial 0x8C) of the MAC in display order, as the
/// ESP32 ROM's `esp_crc8` computes the eFuse MAC CRC. Believed, not checked against a chip.
fn crc8_maxim(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &byte| {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x8C } else { crc >> 1 };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jedec_capacity_follows_flash_size() {
        assert_eq!(jedec_id(4 << 20), 0x1640EF);
        assert_eq!(jedec_id(16 << 20), 0x1840EF);
    }

    #[test]
    fn crc8_is_dallas_maxim() {
        assert_eq!(crc8_maxim(b"123456789"), 0xA1); // the CRC-8/MAXIM check value
    }

    #[test]
    fn masked_writes_keep_other_bits() {
        let mut regs = Registers::esp32(LAB_MAC);
        regs.write(0x6000_0000, 0xFFFF_FFFF, 0x0000_FF00, 4 << 20);
        assert_eq!(regs.read(0x6000_0000), 0x0000_FF00);
        regs.write(0x6000_0000, 0, 0x0000_0F00, 4 << 20);
        assert_eq!(regs.read(0x6000_0000), 0x0000_F000);
    }

    #[test]
    fn mac_reads_back_as_esptool_assembles_it() {
        let regs = Registers::esp32(LAB_MAC);
        let w1 = regs.read(EFUSE_RD_BASE + 4);
        let w2 = regs.read(EFUSE_RD_BASE + 8);
        let packed = [(w2 >> 8) as u8, w2 as u8, (w1 >> 24) as u8, (w1 >> 16) as u8, (w1 >> 8) as u8, w1 as u8];
        assert_eq!(packed, LAB_MAC);
    }

    /// esptool's `get_major_chip_version` for ESP32: eFuse word 3 bit 15, word 5 bit 20 and
    /// APB_CTL_DATE bit 31 form the revision code 0, 1, 3 or 7 (v0, v1, v2, v3).
    #[test]
    fn efuses_say_the_revision_the_console_prints() {
        let regs = Registers::esp32(LAB_MAC);
        let rev_bit0 = regs.read(EFUSE_RD_BASE + 12) >> 15 & 1;
        let rev_bit1 = regs.read(EFUSE_RD_BASE + 20) >> 20 & 1;
        let rev_bit2 = regs.read(APB_CTL_DATE_REG) >> 31 & 1;
        let major = match rev_bit2 << 2 | rev_bit1 << 1 | rev_bit0 {
            0 => 0,
            1 => 1,
            3 => 2,
            7 => 3,
            other => panic!("no revision has code {other}"),
        };
        let minor = regs.read(EFUSE_RD_BASE + 20) >> 24 & 3;
        assert_eq!((major, minor as u16), crate::twin::CHIP_REVISION);
    }
}
