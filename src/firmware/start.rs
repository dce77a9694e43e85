//! The state a device is in when a cell starts (a scenario's `[device] start`): the app
//! partition it runs from and, for an OTA slot, the rollback state of the otadata entry that
//! selects it. Turned into the flash regions that leave a device that way: the firmware as
//! first flashed (bootloader, partition table, the app as the factory image), and per cell the
//! otadata partition and the app in the start slot, as an earlier update would have left them.

use std::fmt;

use esp_idf_part::PartitionTable;

use super::build::BuiltFirmware;
use crate::image::build::merged_flash;
use crate::image::otadata::{OtaState, Otadata};
use crate::image::partition::{ESP32_BOOTLOADER_OFFSET, TABLE_OFFSET, app_slots, otadata_partition, two_ota_table};

/// Where a device runs from when a cell starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartState {
    /// The factory app, otadata erased: a freshly flashed device (the default).
    #[default]
    Factory,
    /// OTA slot `index` (`ota_0`, `ota_1`), selected by an otadata entry in `state`.
    Ota {
        /// The slot: 0 for `ota_0`, 1 for `ota_1`.
        index: u8,
        /// The rollback state of the otadata entry.
        state: OtaState,
    },
}

impl StartState {
    /// The slot names a scenario may write.
    pub(crate) const SLOT_NAMES: [&'static str; 3] = ["factory", "ota_0", "ota_1"];
    /// The entry states a scenario may write, with the `esp_ota_img_states_t` each stands for.
    pub const STATE_NAMES: [(&'static str, OtaState); 4] = [
        ("valid", OtaState::Valid),
        ("new", OtaState::New),
        ("pending-verify", OtaState::PendingVerify),
        ("undefined", OtaState::Undefined),
    ];

    /// `slot = "..."` (and `state = "..."` for an OTA slot, default `valid`) → a start state;
    /// `None` for a name not in `Self::SLOT_NAMES` or [`Self::STATE_NAMES`].
    pub fn from_names(slot: &str, state: Option<&str>) -> Option<Self> {
        let index = match slot {
            "factory" => return state.is_none().then_some(Self::Factory),
            "ota_0" => 0,
            "ota_1" => 1,
            _ => return None,
        };
        let state = match state {
            None => OtaState::Valid,
            Some(name) => Self::STATE_NAMES.iter().find(|(known, _)| *known == name)?.1,
        };
        Some(Self::Ota { index, state })
    }

    /// The partition's name: `factory`, `ota_0`, `ota_1`.
    pub(crate) fn slot_name(&self) -> String {
        match self {
            Self::Factory => "factory".to_owned(),
            Self::Ota { index, .. } => format!("ota_{index}"),
        }
    }

    /// The otadata that selects the start slot among `app_count` OTA slots, as
    /// `esp_ota_set_boot_partition` writes it on an erased partition (the entry in sector 0,
    /// `seq` = index + 1), with the start's state; `None` (erased) for the factory app.
    pub fn otadata(&self, app_count: u32) -> Option<Otadata> {
        let Self::Ota { index, state } = *self else { return None };
        let mut otadata = Otadata::decode(&[]);
        otadata.set_boot_slot(u32::from(index), app_count, false);
        for entry in otadata.entries.iter_mut().filter(|e| e.is_valid()) {
            entry.state = state;
        }
        Some(otadata)
    }
}

impl fmt::Display for StartState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Factory => f.write_str("factory"),
            Self::Ota { state, .. } => {
                let name = Self::STATE_NAMES.iter().find(|(_, s)| s == state).map_or("other", |(name, _)| name);
                write!(f, "{} ({name})", self.slot_name())
            }
        }
    }
}

/// The flash regions (offset, bytes) that leave a device in a start state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartRegions {
    /// The firmware as first flashed: bootloader, partition table, the app as the factory
    /// image. A device that already holds them (a kept twin, a board whose MD5s match) need
    /// not be written again.
    pub firmware: Vec<(u32, Vec<u8>)>,
    /// Written for every cell: the otadata partition (erased for the factory app) and, for an
    /// OTA slot, the app in that slot (an update of an earlier cell may have replaced it).
    pub start: Vec<(u32, Vec<u8>)>,
}

impl StartRegions {
    /// Everything, by offset: what a fresh device is flashed with.
    pub fn all(&self) -> Vec<(u32, Vec<u8>)> {
        let mut all: Vec<(u32, Vec<u8>)> = self.firmware.iter().chain(&self.start).cloned().collect();
        all.sort_by_key(|(offset, _)| *offset);
        all
    }
}

/// A start state the partition table cannot hold.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The start slot (or the factory app the firmware is first flashed as) is not in the table.
    #[error("the partition table has no `{name}` app partition")]
    NoSlot {
        /// The partition's name (`factory`, `ota_0`, `ota_1`).
        name: String,
    },
    /// An OTA start under a table without otadata.
    #[error("the partition table has no otadata partition")]
    NoOtadata,
    /// The app is larger than the partition it goes into.
    #[error("the app ({len} bytes) does not fit `{name}` ({size} bytes)")]
    TooLarge {
        /// The partition's name.
        name: String,
        /// The app's length in bytes.
        len: usize,
        /// The partition's size in bytes.
        size: u32,
    },
    /// The table cannot be encoded as binary.
    #[error("the partition table cannot be written: {message}")]
    Table {
        /// What esp-idf-part says.
        message: String,
    },
}

/// The regions that leave a device in `start` with the firmware's `images` under `table`:
/// bootloader at 0x1000, the table at 0x8000, the app in the factory slot (the device was
/// first flashed with it) and, for an OTA start, in that slot too, with otadata selecting it
/// in the start's state; for the factory start, otadata erased.
///
/// The runner calls this where it lays out a cell's flash (in place of its fixed layout of
/// bootloader, table, factory app plus an erased otadata): a fresh device is flashed with
/// [`StartRegions::all`], a device that still holds the firmware (a kept twin, a board) with
/// [`StartRegions::start`] in place of the erased otadata alone.
pub fn start_regions(
    start: &StartState,
    images: &BuiltFirmware,
    table: &PartitionTable,
) -> Result<StartRegions, StartError> {
    let slots = app_slots(table);
    // A slot by its subtype (tables name them freely: Arduino's are `app0`, `app1`): `None` the
    // factory app, `Some(n)` ota_n.
    let slot_of = |ota: Option<u8>| {
        let name = || ota.map_or("factory".to_owned(), |n| format!("ota_{n}"));
        let slot = slots
            .iter()
            .find(|s| s.ota == ota && (ota.is_some() || s.name == "factory"))
            .ok_or_else(|| StartError::NoSlot { name: name() })?;
        if images.app.len() > slot.size as usize {
            return Err(StartError::TooLarge { name: slot.name.clone(), len: images.app.len(), size: slot.size });
        }
        Ok(slot.offset)
    };
    // The app the device was first flashed with: in the factory slot, or in ota_0 for a table
    // without one (the bootloader then says `No factory image, trying OTA 0`).
    let has_factory = slots.iter().any(|s| s.ota.is_none() && s.name == "factory");
    let factory = slot_of(if has_factory { None } else { Some(0) })?;
    let bin = table.to_bin().map_err(|e| StartError::Table { message: e.to_string() })?;

    let firmware = vec![
        (ESP32_BOOTLOADER_OFFSET as u32, images.bootloader.clone()),
        (TABLE_OFFSET as u32, bin),
        (factory, images.app.clone()),
    ];
    let app_count = slots.iter().filter(|s| s.ota.is_some()).count() as u32;
    let mut regions = Vec::new();
    match otadata_partition(table) {
        Some((otadata_offset, otadata_size)) => {
            let mut otadata = match start.otadata(app_count) {
                Some(otadata) => otadata.encode(),
                None => Vec::new(),
            };
            otadata.resize(otadata_size as usize, 0xFF);
            regions.push((otadata_offset, otadata));
        }
        // A table without otadata (a build that never updates over the air, MicroPython's):
        // the bootloader boots the factory app, whose update then finds no partition to write.
        None if matches!(start, StartState::Factory) => {}
        None => return Err(StartError::NoOtadata),
    }
    if let StartState::Ota { index, .. } = start {
        regions.push((slot_of(Some(*index))?, images.app.clone()));
    }
    Ok(StartRegions { firmware, start: regions })
}

/// A whole ESP32 flash of `size` bytes in `start` under the two-OTA table (what
/// [`start_regions`] writes, as one image: a merged flash file for a twin).
pub fn start_flash(start: &StartState, images: &BuiltFirmware, size: usize) -> Result<Vec<u8>, StartError> {
    let slots = app_slots(&two_ota_table());
    // The same checks as the regions: every slot named exists and holds the app.
    start_regions(start, images, &two_ota_table())?;
    let offset_of = |name: &str| slots.iter().find(|s| s.name == name).map(|s| s.offset as usize);
    let mut apps: Vec<(usize, &[u8])> =
        offset_of("factory").map(|at| (at, images.app.as_slice())).into_iter().collect();
    if let StartState::Ota { .. } = start {
        apps.extend(offset_of(&start.slot_name()).map(|at| (at, images.app.as_slice())));
    }
    let ota_count = slots.iter().filter(|s| s.ota.is_some()).count() as u32;
    Ok(merged_flash(size, &images.bootloader, start.otadata(ota_count).as_ref(), &apps))
}

/// A power cut during the update (a scenario's `[device] power_cut`): the rig arms it on a twin,
/// then gives power back, and the device must boot a working image.
///
/// `esp_ota_set_boot_partition` (`esp_rewrite_ota_data` in `esp_ota_ops.c`, the same steps from
/// v3.2 to v5.x) makes the new `esp_ota_select_entry_t` in RAM, CRC included, erases the sector
/// it goes to and programs its 32 bytes in one write: `ota_seq` (4), `seq_label` (20, 24 in
/// v3.2), `ota_state` (4, part of the label in v3.2) and last the `crc` (4). A cut in that write
/// leaves the sector erased with the first bytes of the entry programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerCut {
    /// Once this many bytes of the new image are written to the update partition.
    AfterBytes(u64),
    /// While `esp_ota_set_boot_partition` rewrites otadata (its sector erased, not yet
    /// programmed): the same as `OtadataBytes(0)`.
    OtadataWrite,
    /// While `esp_ota_set_boot_partition` rewrites otadata, once its sector is erased and this
    /// many bytes of the new 32-byte entry are programmed ([`OTADATA_ENTRY_BYTES`] at most: 0
    /// right after the erase, 4 the sequence number alone, 28 all but the CRC, 32 the whole
    /// entry, before the restart).
    OtadataBytes(u8),
}

/// The bytes of one otadata entry (`esp_ota_select_entry_t`), the most
/// [`PowerCut::OtadataBytes`] can program.
pub const OTADATA_ENTRY_BYTES: u8 = 32;

impl PowerCut {
    /// The bytes of the new otadata entry programmed when this cut falls in the otadata write;
    /// `None` for a cut in the image write.
    pub fn otadata_bytes(self) -> Option<u8> {
        match self {
            Self::AfterBytes(_) => None,
            Self::OtadataWrite => Some(0),
            Self::OtadataBytes(bytes) => Some(bytes),
        }
    }
}

impl fmt::Display for PowerCut {
    /// `image byte 4096` or `otadata byte 28`: where the power went.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AfterBytes(bytes) => write!(f, "image byte {bytes}"),
            Self::OtadataWrite => f.write_str("otadata byte 0"),
            Self::OtadataBytes(bytes) => write!(f, "otadata byte {bytes}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_states_and_unknown_names_do_not() {
        assert_eq!(StartState::from_names("factory", None), Some(StartState::Factory));
        assert_eq!(StartState::from_names("ota_0", None), Some(StartState::Ota { index: 0, state: OtaState::Valid }));
        assert_eq!(
            StartState::from_names("ota_1", Some("pending-verify")),
            Some(StartState::Ota { index: 1, state: OtaState::PendingVerify })
        );
        assert_eq!(StartState::from_names("factory", Some("valid")), None, "the factory app has no entry");
        assert_eq!(StartState::from_names("ota_2", None), None);
        assert_eq!(StartState::from_names("ota_0", Some("aborted")), None);
        assert_eq!(StartState::Ota { index: 1, state: OtaState::New }.to_string(), "ota_1 (new)");
    }

    #[test]
    fn a_table_without_otadata_starts_from_factory_only() {
        // MicroPython's table: one factory app, no otadata, no OTA slot.
        let csv = "nvs,data,nvs,0x9000,0x6000\nphy_init,data,phy,0xf000,0x1000\nfactory,app,factory,0x10000,0x1F0000\n";
        let table = PartitionTable::try_from_str(csv).unwrap();
        let images = BuiltFirmware { app: vec![0xE9; 64], bootloader: vec![0xE9; 32] };
        let regions = start_regions(&StartState::Factory, &images, &table).unwrap();
        assert!(regions.start.is_empty(), "nothing to erase or select");
        assert_eq!(regions.firmware[2].0, 0x10000);
        let ota = StartState::Ota { index: 0, state: OtaState::Valid };
        assert!(matches!(start_regions(&ota, &images, &table), Err(StartError::NoSlot { .. } | StartError::NoOtadata)));
    }

    #[test]
    fn otadata_selects_the_start_slot_in_sector_0() {
        assert_eq!(StartState::Factory.otadata(2), None);
        for index in [0u8, 1] {
            let otadata = StartState::Ota { index, state: OtaState::New }.otadata(2).unwrap();
            assert_eq!(otadata.selected_slot(2), Some(u32::from(index)));
            assert_eq!(otadata.entries[0].seq, u32::from(index) + 1);
            assert_eq!(otadata.entries[0].state, OtaState::New);
            assert_eq!(otadata.entries[1].seq, u32::MAX, "the other sector stays erased");
        }
    }
}
