//! The `otadata` partition: two 32-byte `esp_ota_select_entry_t` records (one per 4 KiB
//! sector) that tell the bootloader which OTA slot to boot, and ESP-IDF's rules for reading
//! them (`bootloader_common_loader.c`).

/// Size of the otadata partition in the standard layouts.
pub const OTADATA_SIZE: usize = 0x2000;
/// Each entry lives at the start of its own sector.
pub(crate) const SECTOR_SIZE: usize = 0x1000;

/// `esp_ota_img_states_t` (rollback states; v3.2 has none and leaves the field erased).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OtaState {
    /// `ESP_OTA_IMG_NEW` (0): written by an update, not booted yet.
    New,
    /// `ESP_OTA_IMG_PENDING_VERIFY` (1): booted once, waiting for the app to confirm itself;
    /// a reset now rolls back.
    PendingVerify,
    /// `ESP_OTA_IMG_VALID` (2): confirmed.
    Valid,
    /// `ESP_OTA_IMG_INVALID` (3): rejected; the bootloader skips the entry.
    Invalid,
    /// `ESP_OTA_IMG_ABORTED` (4): never confirmed; the bootloader skips the entry.
    Aborted,
    /// `ESP_OTA_IMG_UNDEFINED` (0xFFFFFFFF): erased, as written without rollback support.
    Undefined,
    /// Any other value, as stored.
    Other(u32),
}

impl OtaState {
    /// The state a stored `ota_state` word means.
    pub fn from_u32(value: u32) -> Self {
        match value {
            0 => Self::New,
            1 => Self::PendingVerify,
            2 => Self::Valid,
            3 => Self::Invalid,
            4 => Self::Aborted,
            0xFFFF_FFFF => Self::Undefined,
            other => Self::Other(other),
        }
    }

    pub(crate) fn to_u32(self) -> u32 {
        match self {
            Self::New => 0,
            Self::PendingVerify => 1,
            Self::Valid => 2,
            Self::Invalid => 3,
            Self::Aborted => 4,
            Self::Undefined => 0xFFFF_FFFF,
            Self::Other(value) => value,
        }
    }
}

/// One `esp_ota_select_entry_t`: `u32 ota_seq, u8 seq_label[20], u32 ota_state, u32 crc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OtaSelectEntry {
    /// `ota_seq`: counts updates from 1; the valid entry with the highest one picks the slot,
    /// `(seq - 1) % slots`. 0xFFFFFFFF when erased.
    pub seq: u32,
    /// `seq_label`: unused by the bootloader; erased (0xFF) as ESP-IDF leaves it.
    #[serde(skip)]
    pub label: [u8; 20],
    /// The rollback state.
    pub state: OtaState,
    pub(crate) crc: u32,
}

/// ESP-IDF's CRC of an entry: `esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)`.
pub(crate) fn entry_crc(seq: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(0xFFFF_FFFF);
    hasher.update(&seq.to_le_bytes());
    hasher.finalize()
}

impl OtaSelectEntry {
    /// An entry as `esp_ota_set_boot_partition` writes it.
    pub fn new(seq: u32, state: OtaState) -> Self {
        Self { seq, label: [0xFF; 20], state, crc: entry_crc(seq) }
    }

    /// Reads the 32 bytes at the start of a sector.
    pub fn decode(bytes: &[u8; 32]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mut label = [0u8; 20];
        label.copy_from_slice(&bytes[4..24]);
        Self { seq: u32_at(0), label, state: OtaState::from_u32(u32_at(24)), crc: u32_at(28) }
    }

    /// The 32 bytes as stored at the start of a sector.
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[0..4].copy_from_slice(&self.seq.to_le_bytes());
        out[4..24].copy_from_slice(&self.label);
        out[24..28].copy_from_slice(&self.state.to_u32().to_le_bytes());
        out[28..32].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    /// `bootloader_common_ota_select_valid`: not erased, not invalid or aborted, CRC right.
    pub fn is_valid(&self) -> bool {
        self.seq != 0xFFFF_FFFF
            && !matches!(self.state, OtaState::Invalid | OtaState::Aborted)
            && self.crc == entry_crc(self.seq)
    }
}

/// Both entries of an otadata partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Otadata {
    /// The entries of the first and second sector.
    pub entries: [OtaSelectEntry; 2],
}

impl Otadata {
    /// Reads an otadata partition (at least two sectors; shorter input counts as erased).
    pub fn decode(bytes: &[u8]) -> Self {
        let entry = |at: usize| {
            let mut raw = [0xFFu8; 32];
            if let Some(slice) = bytes.get(at..at + 32) {
                raw.copy_from_slice(slice);
            }
            OtaSelectEntry::decode(&raw)
        };
        Self { entries: [entry(0), entry(SECTOR_SIZE)] }
    }

    /// The partition's bytes: each entry at the start of its sector, the rest erased.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0xFF; OTADATA_SIZE];
        out[..32].copy_from_slice(&self.entries[0].encode());
        out[SECTOR_SIZE..SECTOR_SIZE + 32].copy_from_slice(&self.entries[1].encode());
        out
    }

    /// The OTA slot the bootloader picks among `app_count` OTA partitions, or `None` when
    /// neither entry is valid (then: factory, or `ota_0` when there is no factory).
    pub fn selected_slot(&self, app_count: u32) -> Option<u32> {
        if app_count == 0 {
            return None;
        }
        let active = self.entries.iter().filter(|e| e.is_valid()).max_by_key(|e| e.seq)?;
        Some((active.seq - 1) % app_count)
    }

    /// What `esp_ota_set_boot_partition` writes to boot OTA slot `slot` next: the sector after
    /// the active one gets `seq` = the next number that maps to `slot`.
    pub fn set_boot_slot(&mut self, slot: u32, app_count: u32, rollback: bool) {
        let state = if rollback { OtaState::New } else { OtaState::Undefined };
        let valid: Vec<(usize, u32)> =
            self.entries.iter().enumerate().filter(|(_, e)| e.is_valid()).map(|(i, e)| (i, e.seq)).collect();
        let (active_index, active_seq) = valid.iter().copied().max_by_key(|(_, seq)| *seq).unwrap_or((1, 0));
        let mut seq = active_seq + 1;
        while app_count > 0 && (seq - 1) % app_count != slot {
            seq += 1;
        }
        let target = (active_index + 1) % 2;
        self.entries[target] = OtaSelectEntry::new(seq, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_esp_idf() {
        // Values from otatool.py's formula, binascii.crc32(pack('<I', seq), 0xFFFFFFFF).
        assert_eq!(entry_crc(1), 0x4743_989A);
        assert_eq!(entry_crc(2), 0x55F6_3774);
        assert_eq!(entry_crc(3), 0xED4A_5011);
    }

    #[test]
    fn erased_otadata_selects_nothing() {
        let erased = Otadata::decode(&[0xFF; OTADATA_SIZE]);
        assert_eq!(erased.selected_slot(2), None);
    }

    #[test]
    fn set_boot_slot_alternates_sectors_and_selects() {
        let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
        otadata.set_boot_slot(0, 2, false);
        assert_eq!(otadata.entries[0].seq, 1);
        assert_eq!(otadata.selected_slot(2), Some(0));
        otadata.set_boot_slot(1, 2, true);
        assert_eq!(otadata.entries[1].seq, 2);
        assert_eq!(otadata.entries[1].state, OtaState::New);
        assert_eq!(otadata.selected_slot(2), Some(1));
        let round_trip = Otadata::decode(&otadata.encode());
        assert_eq!(round_trip, otadata);
    }

    #[test]
    fn invalid_and_aborted_entries_are_skipped() {
        let mut otadata = Otadata::decode(&[0xFF; OTADATA_SIZE]);
        otadata.entries[0] = OtaSelectEntry::new(1, OtaState::Valid);
        otadata.entries[1] = OtaSelectEntry::new(2, OtaState::Aborted);
        assert_eq!(otadata.selected_slot(2), Some(0));
        otadata.entries[1] = OtaSelectEntry { crc: 0, ..OtaSelectEntry::new(2, OtaState::Valid) };
        assert_eq!(otadata.selected_slot(2), Some(0), "a bad CRC makes an entry invalid");
    }
}
