//! NVS partitions the rig writes itself: a lab's `[prepare]` region given as a CSV file in
//! ESP-IDF's `nvs_partition_gen` format (`key,type,encoding,value`, a namespace row before its
//! keys) becomes the partition's bytes, so a lab host needs no ESP-IDF to put its Wi-Fi
//! credentials on every board. The generator is esp-nvs-partition-tool, whose output for the
//! same CSV is byte for byte that of ESP-IDF's generator (format version 2, multi-page blobs).
//! `file` rows name their files relative to the CSV's folder.

use std::path::{Path, PathBuf};

use esp_nvs_partition_tool::{EntryContent, NvsPartition};

/// The size of the `nvs` partition in ESP-IDF's built-in two-OTA partition table.
pub(crate) const DEFAULT_SIZE: u32 = 0x4000;

/// The smallest NVS partition: ESP-IDF keeps one page free for garbage collection, so a
/// partition needs at least one page besides it (and `nvs_flash_init` asks for three).
pub(crate) const MIN_SIZE: u32 = 0x3000;

/// A CSV (or partition) that gives no partition (or CSV).
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct NvsError {
    /// The CSV or partition file read.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub problem: NvsProblem,
}

/// What is wrong with an NVS partition's CSV or bytes.
#[derive(Debug, thiserror::Error)]
pub enum NvsProblem {
    /// A partition size that is not whole 4 KiB sectors, or too small to hold a page besides
    /// the one kept free.
    #[error("size {size:#x} is no NVS partition size: a multiple of 0x1000, at least {MIN_SIZE:#x}")]
    Size {
        /// The size asked for, in bytes.
        size: u32,
    },
    /// The CSV cannot be read.
    #[error("{0}")]
    Read(#[source] std::io::Error),
    /// The CSV, a file it names, or the partition's bytes, as esp-nvs-partition-tool reads them.
    #[error("{0}")]
    Partition(#[source] esp_nvs_partition_tool::Error),
}

/// The NVS partition of `size` bytes (a multiple of 4 KiB, at least `MIN_SIZE`) holding the
/// entries of the CSV file at `csv`.
pub fn generate(csv: &Path, size: u32) -> Result<Vec<u8>, NvsError> {
    let fail = |problem| NvsError { path: csv.to_owned(), problem };
    if !size.is_multiple_of(0x1000) || size < MIN_SIZE {
        return Err(fail(NvsProblem::Size { size }));
    }
    let text = crate::input::read_text(csv).map_err(|e| fail(NvsProblem::Read(e)))?;
    let mut partition = NvsPartition::try_from_str(text).map_err(|e| fail(NvsProblem::Partition(e)))?;
    let folder = csv.parent().unwrap_or(Path::new(""));
    for entry in &mut partition.entries {
        if let EntryContent::File { file_path, .. } = &mut entry.content
            && file_path.is_relative()
        {
            *file_path = folder.join(&*file_path);
        }
    }
    partition.generate_partition(size as usize).map_err(|e| fail(NvsProblem::Partition(e)))
}

/// The entries of an NVS partition's bytes (`path` names them in errors) as a CSV in the same
/// format, blobs in base64: what a board holds, from a dump or a generated partition.
pub fn entries_csv(path: &Path, bytes: &[u8]) -> Result<String, NvsError> {
    let fail = |e| NvsError { path: path.to_owned(), problem: NvsProblem::Partition(e) };
    let partition = NvsPartition::try_from_bytes(bytes.to_vec()).map_err(fail)?;
    partition.to_csv().map_err(fail)
}

/// Whether `bytes` look like an NVS partition rather than CSV text: a partition starts with a
/// page state (0xFE active, 0xFC full, ...; 0xFF unused), CSV with text.
pub fn is_partition(bytes: &[u8]) -> bool {
    const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];
    bytes.first().is_some_and(|&b| b >= 0x80) && !bytes.starts_with(UTF8_BOM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use esp_nvs_partition_tool::DataValue;

    fn scratch(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("otarig-nvs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, bytes) in files {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn a_csv_becomes_a_partition_that_reads_back() {
        let dir = scratch(
            "ok",
            &[
                (
                    "wifi.csv",
                    b"key,type,encoding,value\nlab,namespace,,\nssid,data,string,otarig-lab\ncert,file,binary,ca.der\n",
                ),
                ("ca.der", &[0x30, 0x82, 0x01, 0x0a]),
            ],
        );
        let bytes = generate(&dir.join("wifi.csv"), DEFAULT_SIZE).unwrap();
        assert_eq!(bytes.len(), DEFAULT_SIZE as usize);
        let read = NvsPartition::try_from_bytes(bytes.clone()).unwrap();
        let value = |key: &str| match &read.find(key).unwrap().content {
            EntryContent::Data(value) => value.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value("ssid"), DataValue::String("otarig-lab".into()));
        // The file row's path is the CSV's neighbour, not the working directory's.
        assert_eq!(value("cert"), DataValue::Binary(vec![0x30, 0x82, 0x01, 0x0a]));
        assert_eq!(read.find("ssid").unwrap().namespace, "lab");

        // Read back as CSV: the rows as written, the file's bytes as base64.
        let csv = entries_csv(Path::new("nvs.bin"), &bytes).unwrap();
        assert_eq!(
            csv,
            "key,type,encoding,value\nlab,namespace,,\nssid,data,string,otarig-lab\ncert,data,base64,MIIBCg==\n"
        );
        assert!(is_partition(&bytes) && !is_partition(b"key,type,encoding,value\n"));
    }

    #[test]
    fn bad_sizes_and_rows_say_which_file() {
        let dir = scratch("bad", &[("bad.csv", b"key,type,encoding,value\nssid,data,string,no-namespace\n")]);
        let csv = dir.join("bad.csv");
        for size in [0x2000, 0x4800] {
            let err = generate(&csv, size).unwrap_err();
            assert!(matches!(err.problem, NvsProblem::Size { size: s } if s == size), "{err}");
        }
        let err = generate(&csv, DEFAULT_SIZE).unwrap_err();
        assert_eq!(err.path, csv);
        assert!(matches!(err.problem, NvsProblem::Partition(_)), "{err}");
        assert!(err.to_string().starts_with(&csv.display().to_string()), "{err}");
        let missing = generate(&dir.join("absent.csv"), DEFAULT_SIZE).unwrap_err();
        assert!(
            matches!(missing.problem, NvsProblem::Read(ref e) if e.kind() == std::io::ErrorKind::NotFound),
            "{missing}"
        );
    }
}
