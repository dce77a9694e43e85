//! Partition tables (read and written by the `esp-idf-part` crate) and the facts the rig needs
//! from one: where the app slots and the otadata partition are.

use esp_idf_part::{AppType, DataType, PartitionTable, SubType, Type};

/// Where ESP-IDF puts the partition table (`CONFIG_PARTITION_TABLE_OFFSET` default).
pub(crate) const TABLE_OFFSET: usize = 0x8000;
/// The most bytes a partition table may take (`0xC00`, then 0xFF padding).
pub const TABLE_MAX_LEN: usize = 0xC00;
/// Where the ESP32's 2nd-stage bootloader starts (0x0 on the C3/S3 and later chips).
pub(crate) const ESP32_BOOTLOADER_OFFSET: usize = 0x1000;

/// ESP-IDF's built-in `partitions_two_ota.csv` (identical from v3.2 to v5.4).
pub(crate) const TWO_OTA_CSV: &str = "\
# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
factory,  app,  factory, 0x10000,  1M,
ota_0,    app,  ota_0,   0x110000, 1M,
ota_1,    app,  ota_1,   0x210000, 1M,
";

/// A partition table that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("partition table at 0x{offset:x}: {message}")]
pub struct PartitionError {
    /// Where in the input the problem is.
    pub offset: usize,
    /// What is wrong there, as a lowercase fragment.
    pub message: String,
}

/// The standard two-OTA layout.
// Invariant: the CSV is a constant that parses (a unit test holds it to that).
#[allow(clippy::expect_used)]
pub fn two_ota_table() -> PartitionTable {
    PartitionTable::try_from_str(TWO_OTA_CSV).expect("ESP-IDF's two-OTA table is valid")
}

/// Reads a binary partition table from `region` (the bytes from the table's offset on).
pub(crate) fn read_table(region: &[u8]) -> Result<PartitionTable, PartitionError> {
    let len = region.len().min(TABLE_MAX_LEN) / 32 * 32;
    let fail = |message: String| PartitionError { offset: TABLE_OFFSET, message };
    if len < 32 || region[..2] != [0xAA, 0x50] {
        return Err(fail("no partition table (magic AA 50 missing)".into()));
    }
    if let Some(message) = unreadable_row(&region[..len]) {
        return Err(fail(message));
    }
    PartitionTable::try_from_bytes(region[..len].to_vec()).map_err(|e| fail(e.to_string()))
}

/// The first row esp-idf-part 0.6 would panic on instead of refusing: an app or data subtype it
/// has no name for, flag bits beyond encrypted and read-only, or an end past 4 GiB. Rows are
/// read up to the end marker, past MD5 rows, as it reads them.
fn unreadable_row(table: &[u8]) -> Option<String> {
    let known_app = |subtype: u8| matches!(subtype, 0x00 | 0x10..=0x20);
    let known_data = |subtype: u8| matches!(subtype, 0x00..=0x06 | 0x80..=0x83);
    for (index, row) in table.chunks_exact(32).enumerate() {
        if row.iter().all(|&b| b == 0xFF) {
            break;
        }
        // esp-idf-part checks an MD5 row and reads on past it.
        if row.starts_with(&[0xEB, 0xEB]) {
            continue;
        }
        let word = |at: usize| u32::from_le_bytes([row[at], row[at + 1], row[at + 2], row[at + 3]]);
        let (ty, subtype, flags) = (row[2], row[3], word(28));
        let problem = match ty {
            0x00 if !known_app(subtype) => format!("app subtype {subtype:#04x} is not one this reader knows"),
            0x01 if !known_data(subtype) => format!("data subtype {subtype:#04x} is not one this reader knows"),
            _ if flags & !0b11 != 0 => format!("flags {flags:#x} have bits this reader does not know"),
            _ if word(4).checked_add(word(8)).is_none() => "offset and size end past 4 GiB".to_owned(),
            _ => continue,
        };
        let at = TABLE_OFFSET + index * 32;
        return Some(format!("entry {index} (at {at:#x}): {problem}"));
    }
    None
}

/// An app partition the bootloader may boot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AppSlot {
    /// The partition's label (`factory`, `ota_0`).
    pub name: String,
    /// Where the partition starts in flash, in bytes.
    pub offset: u32,
    /// The partition's size in bytes.
    pub size: u32,
    /// `None` for factory and test, `Some(n)` for `ota_n`.
    pub ota: Option<u8>,
}

/// The app partitions in table order.
pub(crate) fn app_slots(table: &PartitionTable) -> Vec<AppSlot> {
    table
        .partitions()
        .iter()
        .filter(|p| p.ty() == Type::App)
        .map(|p| AppSlot {
            name: p.name(),
            offset: p.offset(),
            size: p.size(),
            ota: match p.subtype() {
                SubType::App(AppType::Factory | AppType::Test) => None,
                other => Some(u8::from(other) - 0x10),
            },
        })
        .collect()
}

/// The flash a rig writes for every cell with `table`, by name, as `(name, start, end)`: the
/// bootloader and the table itself (up to the table's sector end), otadata and the app
/// partitions. Other data partitions (nvs, phy_init) are the lab's to fill.
pub(crate) fn cell_owned(table: &PartitionTable) -> Vec<(String, u32, u32)> {
    let table_end = (TABLE_OFFSET + 0x1000) as u32;
    let mut owned = vec![("the bootloader and partition table".to_owned(), 0, table_end)];
    let otadata = SubType::Data(DataType::Ota);
    owned.extend(
        table
            .partitions()
            .iter()
            .filter(|p| p.ty() == Type::App || p.subtype() == otadata)
            .map(|p| (format!("partition `{}`", p.name()), p.offset(), p.offset() + p.size())),
    );
    owned
}

/// Offset and size of the otadata partition, if the table has one.
pub(crate) fn otadata_partition(table: &PartitionTable) -> Option<(u32, u32)> {
    table.find_by_subtype(Type::Data, SubType::Data(DataType::Ota)).map(|p| (p.offset(), p.size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ota_layout_round_trips_through_its_binary_form() {
        let table = two_ota_table();
        let slots = app_slots(&table);
        let offsets: Vec<(String, u32, Option<u8>)> = slots.iter().map(|s| (s.name.clone(), s.offset, s.ota)).collect();
        assert_eq!(
            offsets,
            [
                ("factory".into(), 0x10000, None),
                ("ota_0".into(), 0x110000, Some(0)),
                ("ota_1".into(), 0x210000, Some(1))
            ]
        );
        assert_eq!(otadata_partition(&table), Some((0xd000, 0x2000)));
        let mut bin = table.to_bin().unwrap();
        bin.resize(TABLE_MAX_LEN, 0xFF);
        let read = read_table(&bin).unwrap();
        assert_eq!(app_slots(&read), slots);
    }

    #[test]
    fn rows_the_parser_cannot_name_are_errors_not_panics() {
        let mut bin = two_ota_table().to_bin().unwrap();
        bin.resize(TABLE_MAX_LEN, 0xFF);
        // Row 3 is `factory` (app); row 0 is `nvs` (data). The MD5 row no longer matches either
        // way: what matters is an error in place of esp-idf-part's panic.
        for (at, value) in [(3 * 32 + 3, 0x30u8), (3, 0x07), (3, 0x90), (28, 0x04), (11, 0xFF)] {
            let mut damaged = bin.clone();
            damaged[at] = value;
            if at == 11 {
                damaged[4..8].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
            }
            let err = read_table(&damaged).expect_err("refused");
            assert!(err.message.starts_with("entry "), "{at}: {err}");
        }
    }

    #[test]
    fn missing_or_damaged_tables_are_errors() {
        assert!(read_table(&[]).is_err());
        assert!(read_table(&[0xFF; TABLE_MAX_LEN]).is_err());
        let mut bin = two_ota_table().to_bin().unwrap();
        bin.resize(TABLE_MAX_LEN, 0xFF);
        bin[40] ^= 0x01; // inside the second entry: the MD5 row no longer matches
        assert!(read_table(&bin).is_err());
    }
}
