//! A fleet member from what its owner has: an app image (`idf.py build`'s `PROJECT.bin`, an
//! Arduino export), an `idf.py` build directory (the app, `bootloader/bootloader.bin`,
//! `partition_table/partition-table.bin`, the project's `sdkconfig`), or a flash dump read off a
//! device (`esptool read-flash`: the bootloader, the table and the running app are cut out of
//! it). The manifest it writes names the files and, as comments, each value the build says with
//! where it says it, and each value it cannot say with what to set.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::profile::{FirmwareProfile, Source};
use super::sdkconfig::Sdkconfig;
use crate::image::inspect::{Layout, inspect};
use crate::image::parse_app;

/// The files of a build, as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildFiles {
    /// The app image (or the flash dump it is cut from).
    pub app: PathBuf,
    /// `bootloader/bootloader.bin` of a build directory.
    pub bootloader: Option<PathBuf>,
    /// `partition_table/partition-table.bin` of a build directory.
    pub partition_table: Option<PathBuf>,
    /// The project's `sdkconfig`, beside the build directory.
    pub sdkconfig: Option<PathBuf>,
}

/// Why a path is not a build a manifest can name.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// A build directory that cannot be listed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory with no `.bin` that is an app image with an app descriptor.
    #[error("{dir}: no app image in it (an idf.py build directory holds PROJECT.bin with an app descriptor)")]
    NoAppInDir {
        /// The directory.
        dir: PathBuf,
    },
    /// A flash dump none of whose app partitions holds a valid app.
    #[error("{path}: a flash dump with no valid app in its partitions")]
    NoAppInDump {
        /// The dump.
        path: PathBuf,
    },
}

/// The build at `path`: an app image or flash dump (a file), or an `idf.py` build directory.
pub fn find_build(path: &Path) -> Result<BuildFiles, AddError> {
    if !path.is_dir() {
        return Ok(BuildFiles { app: path.to_owned(), bootloader: None, partition_table: None, sdkconfig: None });
    }
    let read_dir = std::fs::read_dir(path).map_err(|source| AddError::Read { path: path.to_owned(), source })?;
    let mut candidates: Vec<PathBuf> = read_dir
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin") && p.is_file())
        .collect();
    candidates.sort();
    // The app: an image whose first segment starts with an app descriptor.
    let app = candidates
        .into_iter()
        .find(|candidate| {
            crate::input::read_image(candidate)
                .ok()
                .and_then(|bytes| parse_app(&bytes).ok())
                .is_some_and(|a| a.app_desc.is_some())
        })
        .ok_or_else(|| AddError::NoAppInDir { dir: path.to_owned() })?;
    let existing = |relative: &str| Some(path.join(relative)).filter(|p| p.is_file());
    let sdkconfig = path.parent().map(|project| project.join("sdkconfig")).filter(|p| p.is_file());
    Ok(BuildFiles {
        app,
        bootloader: existing("bootloader/bootloader.bin"),
        partition_table: existing("partition_table/partition-table.bin"),
        sdkconfig,
    })
}

/// A flash dump's parts, cut out of it: the running app, the bootloader and the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpParts {
    /// The app the bootloader would start, cut to its length.
    pub app: Vec<u8>,
    /// The bootloader, cut to its length; `None` when it does not parse.
    pub bootloader: Option<Vec<u8>>,
    /// The partition table's sector (0xC00 bytes at 0x8000); `None` when the dump does not
    /// reach it.
    pub partition_table: Option<Vec<u8>>,
}

/// `Some` when `bytes` are a flash dump (bootloader at 0x1000, table at 0x8000): the app the
/// bootloader would start (the OTA slot otadata selects, else the factory app, else the first
/// valid one), cut to its length, with the bootloader and the table.
pub fn dump_parts(path: &Path, bytes: &[u8]) -> Result<Option<DumpParts>, AddError> {
    let inspection = inspect(bytes, 0, &[]);
    if inspection.layout != Layout::MergedFlash {
        return Ok(None);
    }
    let valid = || inspection.apps.iter().filter(|app| app.image.is_ok());
    let slot_is =
        |ota: Option<u8>| move |app: &&crate::image::inspect::FoundApp| app.slot.as_ref().is_some_and(|s| s.ota == ota);
    let selected = inspection.selected_slot.and_then(|n| u8::try_from(n).ok());
    let running = selected
        .and_then(|n| valid().find(slot_is(Some(n))))
        .or_else(|| valid().find(slot_is(None)))
        .or_else(|| valid().next())
        .ok_or_else(|| AddError::NoAppInDump { path: path.to_owned() })?;
    let length = running.image.as_ref().map_or(0, |image| image.length);
    let app = bytes[running.offset..(running.offset + length).min(bytes.len())].to_vec();
    let cut = |offset: usize, len: usize| bytes.get(offset..(offset + len).min(bytes.len())).map(<[u8]>::to_vec);
    // File offsets: a dump may start at flash 0 or at the bootloader (0x1000).
    let base = inspection.flash_base();
    let bootloader = match &inspection.bootloader {
        Some(Ok(image)) => cut(inspection.bootloader_offset, image.length),
        _ => None,
    };
    let partition_table = crate::image::partition::TABLE_OFFSET.checked_sub(base).and_then(|at| cut(at, 0xC00));
    Ok(Some(DumpParts { app, bootloader, partition_table }))
}

/// `files` as a manifest in `dir` may name them: each file outside the manifests' repository
/// (the nearest folder above `dir` with `.git`, else `dir`) is copied to `dir/ID/`, where a
/// manifest's files must be. Returns the files to name and the copies made.
pub fn keep_inside(dir: &Path, id: &str, files: BuildFiles) -> std::io::Result<(BuildFiles, Vec<PathBuf>)> {
    let root = super::raw::repository_of(dir);
    let root = root.canonicalize().unwrap_or(root);
    let mut copies = Vec::new();
    let mut keep = |path: PathBuf, name: &str| -> std::io::Result<PathBuf> {
        if path.canonicalize()?.starts_with(&root) {
            return Ok(path);
        }
        let folder = dir.join(id);
        std::fs::create_dir_all(&folder)?;
        let copy = folder.join(name);
        std::fs::copy(&path, &copy)?;
        copies.push(copy.clone());
        Ok(copy)
    };
    let app_name = files.app.file_name().map_or_else(|| "app.bin".to_owned(), |n| n.to_string_lossy().into_owned());
    let kept = BuildFiles {
        app: keep(files.app, &app_name)?,
        bootloader: files.bootloader.map(|p| keep(p, "bootloader.bin")).transpose()?,
        partition_table: files.partition_table.map(|p| keep(p, "partition-table.bin")).transpose()?,
        sdkconfig: files.sdkconfig.map(|p| keep(p, "sdkconfig")).transpose()?,
    };
    Ok((kept, copies))
}

/// The manifest for `files`, read from `origin` (paths written relative to `manifest_dir` when they are inside
/// it), with what `app` says about itself.
pub fn manifest_text(files: &BuildFiles, origin: &Path, app: &[u8], manifest_dir: &Path) -> String {
    let sdkconfig_stated = files
        .sdkconfig
        .as_ref()
        .and_then(|path| crate::input::read_image(path).ok())
        .map(|text| Sdkconfig::parse(&String::from_utf8_lossy(&text)).stated())
        .unwrap_or_default();
    let profile = FirmwareProfile::read(app, &sdkconfig_stated);
    let chip = parse_app(app).map(|a| a.header.chip).ok();
    let path = |p: &Path| {
        let shown = p.strip_prefix(manifest_dir).unwrap_or(p);
        shown.to_string_lossy().replace('\\', "/")
    };
    let mut out = String::new();
    let _ = writeln!(out, "# A fleet member, written by `otarig fleet add` from {}.", origin.display());
    let _ = writeln!(out, "# What the build says is shown commented, with where it says it: a line you uncomment");
    let _ = writeln!(out, "# wins over the build. What it cannot say is commented with what to set.");
    let _ = writeln!(out, "image = {:?}", path(&files.app));
    for (key, file) in [
        ("bootloader", &files.bootloader),
        ("partition_table", &files.partition_table),
        ("sdkconfig", &files.sdkconfig),
    ] {
        if let Some(file) = file {
            let _ = writeln!(out, "{key} = {:?}", path(file));
        }
    }
    out.push('\n');
    write_values(&mut out, &profile, chip);
    out
}

/// The values the build says (commented, with where it says each) and those it cannot (with
/// what to set), as manifest lines.
fn write_values(out: &mut String, profile: &FirmwareProfile, chip: Option<crate::image::Chip>) {
    let said = |out: &mut String, key: &str, value: String, source: Source| {
        let _ = writeln!(out, "# {key} = {value}  # {}", source_text(source));
    };
    match &profile.idf {
        Some(idf) => said(out, "idf", format!("{:?}", idf.value.text), idf.source),
        None => {
            let _ = writeln!(out, "idf = \"\"  # the build names no ESP-IDF version: set it (e.g. \"v3.2.3\")");
        }
    }
    if let Some(chip) = chip.and_then(crate::image::Chip::config_name) {
        said(out, "chip", format!("{chip:?}"), Source::Image);
    }
    if !profile.version.is_empty() {
        said(out, "version", format!("{:?}", profile.version), Source::Descriptor);
    }
    match &profile.ota_url {
        Some(url) => said(out, "ota_url", format!("{:?}", url.value.as_str()), url.source),
        None => {
            let candidates = if profile.url_candidates.is_empty() {
                String::new()
            } else {
                format!(
                    " (https:// strings in it: {})",
                    profile.url_candidates.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                )
            };
            let _ = writeln!(
                out,
                "# ota_url = \"https://...\"  # where it fetches its update: the build does not say{candidates}"
            );
        }
    }
    match (profile.client.source, &profile.project) {
        (Source::Default, Some(project)) => {
            let client = profile.client.value.name();
            let _ = writeln!(out, "# client = {client:?}  # its project `{project}` is none of ESP-IDF's OTA examples");
        }
        (source, _) => said(out, "client", format!("{:?}", profile.client.value.name()), source),
    }
    said(out, "log_level", format!("{:?}", profile.log_level.value.name()), profile.log_level.source);
    for (key, value, stated, what) in [
        (
            "time_check",
            profile.time_check.value,
            profile.time_check.source,
            "CONFIG_MBEDTLS_HAVE_TIME_DATE: certificate dates checked",
        ),
        ("rollback", profile.rollback.value, profile.rollback.source, "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE"),
        ("confirms", profile.confirms.value, profile.confirms.source, "the app confirms itself after an update"),
    ] {
        match stated {
            Source::Default => {
                let _ = writeln!(out, "# {key} = {value}  # not in the build ({what}); ESP-IDF's default shown");
            }
            source => said(out, key, value.to_string(), source),
        }
    }
    let _ = writeln!(
        out,
        "# clock = \"sntp\"  # where its clock comes from when it checks dates: \"unset\", \"sntp\" or a date"
    );
    // The build's mbedTLS where it departs from ESP-IDF's default.
    if !profile.curves_off.value.is_empty() {
        let names: Vec<String> = profile.curves_off.value.iter().map(|curve| format!("{:?}", curve.name())).collect();
        said(out, "curves_off", format!("[{}]", names.join(", ")), profile.curves_off.source);
    }
    if profile.tls_in_content_len.value != crate::device_tls::DEFAULT_IN_CONTENT_LEN {
        said(
            out,
            "tls_in_content_len",
            profile.tls_in_content_len.value.to_string(),
            profile.tls_in_content_len.source,
        );
    }
}

/// Where a value comes from, for a manifest comment.
fn source_text(source: Source) -> &'static str {
    match source {
        Source::Descriptor => "read from the app descriptor",
        Source::Image => "read from the image header",
        Source::ImageStrings => "a guess from the build's strings: check it, then uncomment",
        Source::Sdkconfig => "read from the sdkconfig",
        Source::Record => "read from the lab build's record",
        Source::Default => "ESP-IDF's default",
        Source::Manifest | Source::Given => "stated",
    }
}

/// The id a build gets in the fleet: its file name (or directory's project) without the
/// extension, lowercase letters, digits, `-`, `_` and `.` kept.
pub fn default_id(files: &BuildFiles) -> String {
    let stem = files.app.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let id: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c.to_ascii_lowercase() } else { '-' })
        .collect();
    if id.is_empty() { "firmware".to_owned() } else { id }
}
