//! `esp_ota_ops` on the twin's flash: which partition is the next update slot, writing an
//! image into it (erased whole up front, or sector by sector as it arrives), and the otadata
//! write of `esp_ota_set_boot_partition`.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::image::otadata::{OtaState, Otadata};
use crate::image::partition::{AppSlot, TABLE_OFFSET, app_slots, otadata_partition, read_table};
use crate::twin::flash::VirtualFlash;

/// `ESP_ERR_INVALID_SIZE`: a write or erase past the partition's end.
pub(super) const ERR_INVALID_SIZE: u32 = 0x104;
/// `ESP_ERR_OTA_VALIDATE_FAILED`.
pub(super) const ERR_OTA_VALIDATE_FAILED: u32 = 0x1503;
/// `ESP_ERR_INVALID_ARG`: `esp_ota_end` after nothing was written.
pub(super) const ERR_INVALID_ARG: u32 = 0x102;

const SECTOR: u32 = 0x1000;

/// The partition layout the running app sees.
pub(super) struct Layout {
    pub slots: Vec<AppSlot>,
    otadata: Option<(u32, u32)>,
}

impl Layout {
    pub fn read(flash: &VirtualFlash) -> Option<Layout> {
        let table = read_table(flash.read(TABLE_OFFSET as u32, 0xC00).ok()?).ok()?;
        Some(Layout { slots: app_slots(&table), otadata: otadata_partition(&table) })
    }

    /// `esp_ota_get_next_update_partition(NULL)`: the OTA slot after the running one (from
    /// factory: ota_0).
    pub(crate) fn next_update(&self, running: u32) -> Option<&AppSlot> {
        let ota: Vec<&AppSlot> = self.slots.iter().filter(|s| s.ota.is_some()).collect();
        let current = ota.iter().position(|s| s.offset == running);
        match current {
            Some(i) => ota.get((i + 1) % ota.len()).copied(),
            None => ota.first().copied(),
        }
    }

    fn app_count(&self) -> u32 {
        self.slots.iter().filter(|s| s.ota.is_some()).count() as u32
    }
}

/// Why `esp_ota_write` refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WriteError {
    /// The first byte is not 0xE9.
    Magic(u8),
    /// Past the partition's end (`ESP_ERR_INVALID_SIZE`).
    Size,
    /// The power was cut at the armed byte count (what came before it is written).
    PowerLost,
}

/// An update being written (`esp_ota_handle_t`).
pub(super) struct OtaWrite {
    pub slot: AppSlot,
    pub written: u32,
    /// Bytes from the partition start that are erased (sequential-write mode).
    erased_to: u32,
    /// Cut the power once this many bytes are written.
    cut_after: Option<u64>,
}

impl OtaWrite {
    /// `esp_ota_begin`: `erase_all` (OTA_SIZE_UNKNOWN) erases the whole partition now;
    /// otherwise (OTA_WITH_SEQUENTIAL_WRITES) each sector is erased when the data reaches it.
    pub(crate) fn begin(
        flash: &Mutex<VirtualFlash>,
        slot: &AppSlot,
        erase_all: bool,
        cut: Option<super::PowerCut>,
    ) -> OtaWrite {
        let mut erased_to = 0;
        if erase_all {
            let _ = lock(flash).erase_covering(slot.offset, slot.size);
            erased_to = slot.size;
        }
        let cut_after = match cut {
            Some(super::PowerCut::AfterBytes(bytes)) => Some(bytes),
            _ => None,
        };
        OtaWrite { slot: slot.clone(), written: 0, erased_to, cut_after }
    }

    /// `esp_ota_write`.
    pub fn write(&mut self, flash: &Mutex<VirtualFlash>, data: &[u8]) -> Result<(), WriteError> {
        if let Some(cut) = self.cut_after
            && u64::from(self.written) + data.len() as u64 >= cut
        {
            // What arrived before the cut is written; then nothing more.
            let keep = cut.saturating_sub(u64::from(self.written)) as usize;
            self.cut_after = None;
            let _ = self.write(flash, &data[..keep.min(data.len())]);
            return Err(WriteError::PowerLost);
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.written == 0 && data[0] != 0xE9 {
            return Err(WriteError::Magic(data[0]));
        }
        let end = u64::from(self.written) + data.len() as u64;
        let mut flash = lock(flash);
        while u64::from(self.erased_to) < end {
            if self.erased_to >= self.slot.size {
                return Err(WriteError::Size);
            }
            let _ = flash.erase_sector(self.slot.offset + self.erased_to);
            self.erased_to += SECTOR;
        }
        if end > u64::from(self.slot.size) {
            return Err(WriteError::Size);
        }
        flash.program(self.slot.offset + self.written, data).map_err(|_| WriteError::Size)?;
        self.written += data.len() as u32;
        Ok(())
    }
}

/// `esp_ota_set_boot_partition`'s otadata write: the sector after the active entry gets the
/// next sequence number for `slot` (state NEW with rollback, else UNDEFINED); only that sector
/// is erased and programmed. With `cut`, the power goes once the sector is erased and that
/// many bytes of the new entry are programmed (`esp_rewrite_ota_data` writes the 32 bytes,
/// CRC last, in one `esp_partition_write`). False when the table has no otadata or `slot` is
/// no OTA slot.
pub(super) fn set_boot_slot(
    flash: &Mutex<VirtualFlash>,
    layout: &Layout,
    slot: &AppSlot,
    rollback: bool,
    cut: Option<u8>,
) -> bool {
    let (Some((offset, size)), Some(index)) = (layout.otadata, slot.ota) else {
        return false;
    };
    let mut flash = lock(flash);
    let Ok(current) = flash.read(offset, size as usize).map(<[u8]>::to_vec) else {
        return false;
    };
    let mut otadata = Otadata::decode(&current);
    otadata.set_boot_slot(u32::from(index), layout.app_count(), rollback);
    let programmed = cut.map_or(ENTRY_BYTES, usize::from).min(ENTRY_BYTES);
    write_entries(&mut flash, offset, &otadata.encode(), programmed);
    true
}

/// The bytes of one otadata entry.
const ENTRY_BYTES: usize = 32;

/// Writes otadata as ESP-IDF does: only a sector whose entry changed is erased and its 32
/// bytes programmed.
pub(crate) fn write_otadata(flash: &mut VirtualFlash, offset: u32, new: &[u8]) {
    write_entries(flash, offset, new, ENTRY_BYTES);
}

/// [`write_otadata`], programming only the first `programmed` bytes of a changed entry (the
/// power went during the write).
fn write_entries(flash: &mut VirtualFlash, offset: u32, new: &[u8], programmed: usize) {
    for sector in 0..2u32 {
        let at = (sector * SECTOR) as usize;
        let Some(entry) = new.get(at..at + ENTRY_BYTES) else { continue };
        let unchanged = flash.read(offset + sector * SECTOR, ENTRY_BYTES).is_ok_and(|old| old == entry);
        if !unchanged {
            let _ = flash.erase_sector(offset + sector * SECTOR);
            let _ = flash.program(offset + sector * SECTOR, &entry[..programmed.min(ENTRY_BYTES)]);
        }
    }
}

/// The running app's otadata entry: the partition's offset, its decoded content, and which
/// of its two entries selects the app running from `running` (none for the factory app, or
/// when the active entry selects another slot).
fn running_entry(flash: &VirtualFlash, running: u32) -> Option<(u32, Otadata, usize)> {
    let layout = Layout::read(flash)?;
    let (offset, size) = layout.otadata?;
    let index = layout.slots.iter().find(|s| s.offset == running)?.ota?;
    let count = layout.app_count();
    let otadata = Otadata::decode(flash.read(offset, size as usize).ok()?);
    let (active, entry) =
        otadata.entries.iter().enumerate().filter(|(_, e)| e.is_valid()).max_by_key(|(_, e)| e.seq)?;
    (count > 0 && (entry.seq - 1) % count == u32::from(index)).then_some((offset, otadata, active))
}

/// Whether the app running from `running` is on trial (its otadata entry PENDING_VERIFY).
pub(super) fn running_app_on_trial(flash: &Mutex<VirtualFlash>, running: u32) -> bool {
    running_entry(&lock(flash), running)
        .is_some_and(|(_, otadata, active)| otadata.entries[active].state == OtaState::PendingVerify)
}

/// `esp_ota_mark_app_valid_cancel_rollback()` by the app running from `running`: its otadata
/// entry, if on trial (PENDING_VERIFY), becomes VALID (ESP-IDF logs it at debug level only).
pub(crate) fn confirm_running_app(flash: &Mutex<VirtualFlash>, running: u32) {
    let mut flash = lock(flash);
    if let Some((offset, mut otadata, active)) = running_entry(&flash, running)
        && otadata.entries[active].state == OtaState::PendingVerify
    {
        otadata.entries[active].state = OtaState::Valid;
        write_otadata(&mut flash, offset, &otadata.encode());
    }
}

fn lock(flash: &Mutex<VirtualFlash>) -> MutexGuard<'_, VirtualFlash> {
    flash.lock().unwrap_or_else(PoisonError::into_inner)
}
