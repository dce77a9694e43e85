//! The lab config, `otarig.toml`: the boards and twins a lab host drives, where the update
//! server listens for boards, how the boards' DNS and SNTP point at the rig, per-step time
//! limits, retries of the rig's own failures, and extra regions flashed with every firmware
//! (an NVS partition with the lab's Wi-Fi credentials, supplied or made from a CSV by [`nvs`]).
//!
//! Read once into [`LabConfig`] ([`load`]); every error names `file:line:column`. A cell goes
//! only to a device whose chip is the firmware's ([`assign`]); [`check`] verifies a lab host
//! before a nightly run; the lab network's DNS and SNTP responders are [`crate::labnet`]'s.

pub mod check;
pub mod nvs;
mod raw;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::board::serial::{SerialBoard, SerialSpec};
use crate::board::twin::TwinBoard;
use crate::board::{Board, BoardError, Chip, Region};
use crate::toml_source::{Location, TomlSource};
use crate::twin::device::TwinConfig;
use crate::twin::network::LabNetwork;

/// The file looked for when no `--config` is given.
pub(crate) const DEFAULT_PATH: &str = "otarig.toml";

/// The `[prepare]` key whose regions go to every board.
pub(crate) const EVERY_BOARD: &str = "*";

/// A checked lab config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabConfig {
    /// The file it was read from; files it names are relative to its folder. Empty for
    /// [`LabConfig::twins_only`].
    pub path: PathBuf,
    /// Boards first, in file order, then twins.
    pub devices: Vec<DeviceSpec>,
    /// Required when there are boards.
    pub server: Option<ServerConfig>,
    /// How the boards' DNS answers the scenarios' host names.
    pub dns: DnsConfig,
    /// The rig's SNTP responder, when the lab runs one.
    pub sntp: Option<SntpConfig>,
    /// Time limits per step of a cell.
    pub timeouts: Timeouts,
    /// How many times a cell that ended in an `error` (the rig's failure) is run again.
    pub retries: u32,
    /// Extra regions by board id (`EVERY_BOARD` for all), read from their files.
    pub prepare: BTreeMap<String, Vec<Region>>,
}

/// A device a cell can run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A `[[board]]`: a real board on a serial port (or a debug probe).
    Board(Box<SerialSpec>),
    /// A `[[twin]]`, or one of `twins = N`.
    Twin(TwinSpec),
}

/// An in-process twin (an ESP32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwinSpec {
    /// The twin's id (`twin-1`).
    pub id: String,
    /// Its flash size in bytes.
    pub flash_size: u32,
}

/// The update server as boards reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where the server listens for boards (`0.0.0.0:8443`). Boards connect to the OTA URL's
    /// port (443): listen there, or redirect that port to this one.
    pub listen: SocketAddr,
}

/// How the boards' DNS answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// Where the rig's DNS responder ([`crate::labnet::dns::DnsResponder`]) answers with `overrides`; `None`:
    /// the access point's DNS answers them.
    pub listen: Option<SocketAddr>,
    /// Host name (lowercase) → the rig's address, as the boards' DNS must answer.
    pub overrides: BTreeMap<String, IpAddr>,
}

/// The lab's SNTP service for date-checking firmware: the rig's responder
/// ([`crate::labnet::sntp::SntpResponder`]), answering with the scenario's date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SntpConfig {
    /// Where the responder listens (UDP; boards ask port 123).
    pub listen: SocketAddr,
}

/// Time limits per step of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the ROM loader and writing every region.
    pub flash: Duration,
    /// From the chip leaving the loader to the app's start-up lines.
    pub boot: Duration,
    /// From the app's start to a decided update.
    pub update: Duration,
    /// The whole cell.
    pub total: Duration,
    /// A power command, and the port coming back after power returns.
    pub power: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let secs = Duration::from_secs;
        Self { flash: secs(120), boot: secs(30), update: secs(180), total: secs(600), power: secs(15) }
    }
}

/// A lab config that cannot be used: where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct LabError {
    /// `file:line:column` of the offending value.
    pub location: Location,
    /// What is wrong with it.
    pub kind: LabErrorKind,
}

/// The kinds of [`LabError`]; tests match these, never the text.
#[derive(Debug, thiserror::Error)]
pub enum LabErrorKind {
    /// Syntax, an unknown key, a value of the wrong type.
    #[error("{message}")]
    Shape {
        /// What the TOML reader says.
        message: String,
    },
    /// An id with characters outside letters, digits, `-`, `_` and `.`, or empty.
    #[error("`{text}` is not a usable id (letters, digits, `-`, `_`, `.`)")]
    Id {
        /// The value as written.
        text: String,
    },
    /// Two devices share an id.
    #[error("`{id}` is defined twice")]
    Duplicate {
        /// The device's id.
        id: String,
    },
    /// A board without any way to find its port.
    #[error("board `{id}` names no port (no `port`, `usb_serial` or `vid_pid`)")]
    NoPort {
        /// The board's id.
        id: String,
    },
    /// A board whose port is named both by path and by USB identity.
    #[error("board `{id}` names its port by `port` and by `usb_serial` or `vid_pid`")]
    PortConflict {
        /// The board's id.
        id: String,
    },
    /// A `vid_pid` that is not two hex numbers around a colon.
    #[error("`{text}` is not a VID:PID (`303a:1001`)")]
    VidPid {
        /// The value as written.
        text: String,
    },
    /// A `probe` that probe-rs cannot read as a selector.
    #[cfg(feature = "probe")]
    #[error("`{text}` is not a debug probe selector (`303a:1001` or `303a:1001:SERIAL`): {source}")]
    ProbeSelector {
        /// The value as written.
        text: String,
        /// probe-rs's error.
        source: crate::board::probe::SelectorError,
    },
    /// A `probe` key in a build without the `probe` feature.
    #[error("this otarig was built without the `probe` feature")]
    ProbeFeature,
    /// A `flash_size` that is not a power of two megabytes up to `128MB`.
    #[error("`{text}` is not a flash size (`4MB`)")]
    FlashSize {
        /// The value as written.
        text: String,
    },
    /// A `baud` outside 9600 to 5000000.
    #[error("baud rate {baud} is out of range (9600 to 5000000)")]
    Baud {
        /// The rate given, in bits per second.
        baud: u64,
    },
    /// A board's `power` table is unusable.
    #[error("board `{id}`: power: {source}")]
    Power {
        /// The board's id.
        id: String,
        /// What is wrong with it.
        source: PowerSpecError,
    },
    /// A socket or IP address that does not read.
    #[error("`{text}` is not an address: {expected}")]
    Address {
        /// The value as written.
        text: String,
        /// What was expected there (`an IP address`, `IP:PORT`).
        expected: &'static str,
    },
    /// A DNS override's name that is no valid host name.
    #[error("`{text}` is not a host name")]
    HostName {
        /// The value as written.
        text: String,
    },
    /// A time limit of zero or past its maximum.
    #[error("`{field}` must be from 1 to {max} seconds")]
    Timeout {
        /// The `[timeouts]` key.
        field: &'static str,
        /// Its largest value, in seconds.
        max: u64,
    },
    /// A count or length past what the rig allows.
    #[error("`{what}` is at most {max}")]
    TooMany {
        /// The key or list that is too large.
        what: &'static str,
        /// The largest the rig allows.
        max: u64,
    },
    /// A `[prepare]` file larger than any flash.
    #[error("{path} is larger than {max} bytes (the largest ESP32 flash)")]
    RegionTooLarge {
        /// The file, as resolved.
        path: PathBuf,
        /// The largest size, in bytes.
        max: u64,
    },
    /// Both `twins = N` and `[[twin]]` tables.
    #[error("`twins = N` and `[[twin]]` tables both name twins")]
    TwinsTwice,
    /// No board and no twin.
    #[error("no device: no `[[board]]`, `[[twin]]` or `twins = N`")]
    NoDevices,
    /// Boards without `[server] listen`.
    #[error("boards need `[server] listen`: where the update server listens for them")]
    NoServer,
    /// A `[prepare]` key that names no device.
    #[error("`[prepare]` names `{id}`, which is no board or twin (nor `*`)")]
    UnknownDevice {
        /// The key as written.
        id: String,
    },
    /// A `[prepare]` region that does not start at a 4 KiB sector boundary.
    #[error("region offset {offset:#x} is not at a 4 KiB sector boundary")]
    Alignment {
        /// The region's flash address.
        offset: u64,
    },
    /// A `[prepare]` file that cannot be read.
    #[error("cannot read {path}: {source}")]
    PrepareFile {
        /// The file, as resolved.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// A `[prepare]` region over what a cell writes: the bootloader, the partition table or one
    /// of the two-OTA table's partitions.
    #[error("region {offset:#x}..{end:#x} overlaps {what}, which every cell writes (ESP-IDF's two-OTA table)")]
    PrepareOverlap {
        /// The region's flash address.
        offset: u64,
        /// The first address past it.
        end: u64,
        /// What it overlaps (`the bootloader and partition table`, ``partition `ota_0` ``).
        what: String,
    },
    /// A region that names both or neither of `file` and `nvs`.
    #[error("a region is either `file = PATH` or `nvs = CSV` (with an optional `size`)")]
    RegionSource,
    /// An `nvs` CSV that cannot be made into a partition.
    #[error("cannot make an NVS partition of {path}: {source}")]
    Nvs {
        /// The CSV, as resolved.
        path: PathBuf,
        /// What went wrong.
        source: nvs::NvsProblem,
    },
}

/// A board's `power` table that gives no usable commands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PowerSpecError {
    /// A command template that does not parse.
    #[error(transparent)]
    Template(#[from] crate::board::power::TemplateError),
    /// A single `command` without `{action}`: off and on would run the same.
    #[error("`command` needs `{{action}}` (it runs with `off`, then `on`)")]
    NoAction,
    /// Neither a `command` nor an `off` and `on` pair.
    #[error("neither `command` nor both `off` and `on`")]
    NoCommands,
}

impl From<crate::toml_source::ShapeError> for LabError {
    fn from(err: crate::toml_source::ShapeError) -> Self {
        LabError { location: err.location, kind: LabErrorKind::Shape { message: err.message } }
    }
}

/// A lab config that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LabLoadError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The file reads but its config is unusable.
    #[error(transparent)]
    Config(#[from] LabError),
}

/// The config to use: `explicit`, else `./otarig.toml` when it exists.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => Path::new(DEFAULT_PATH).is_file().then(|| PathBuf::from(DEFAULT_PATH)),
    }
}

/// Reads and checks the lab config at `path` (files it names are relative to its folder).
pub fn load(path: &Path) -> Result<LabConfig, LabLoadError> {
    let source = TomlSource::read(path).map_err(|source| LabLoadError::Read { path: path.to_owned(), source })?;
    Ok(parse(&source)?)
}

/// Checks a lab config's text (files it names are relative to its path's folder).
pub fn parse(source: &TomlSource) -> Result<LabConfig, LabError> {
    raw::check(source)
}

impl DeviceSpec {
    /// The device's id in the lab config.
    pub fn id(&self) -> &str {
        match self {
            Self::Board(board) => &board.id,
            Self::Twin(twin) => &twin.id,
        }
    }

    /// The device's chip: the board's as configured; a twin is an ESP32.
    pub fn chip(&self) -> Chip {
        match self {
            Self::Board(board) => board.chip,
            Self::Twin(_) => Chip::Esp32,
        }
    }

    /// A board's address on the lab network, when the config gives one (twins have none).
    pub(crate) fn address(&self) -> Option<IpAddr> {
        match self {
            Self::Board(board) => board.address,
            Self::Twin(_) => None,
        }
    }

    /// The device, ready for a cell. A twin starts now with `network` (the cell's server and
    /// date); a board's network is the lab's own (its access point's DNS), so it ignores it.
    pub fn open(&self, network: &LabNetwork) -> Result<Box<dyn Board>, BoardError> {
        Ok(match self {
            Self::Board(spec) if spec.probe.is_some() => open_probe(spec)?,
            Self::Board(spec) => Box::new(SerialBoard::new((**spec).clone())),
            Self::Twin(spec) => {
                let config =
                    TwinConfig { flash_size: spec.flash_size, network: network.clone(), ..TwinConfig::default() };
                Box::new(TwinBoard::spawn(&spec.id, config)?)
            }
        })
    }
}

/// A board on a debug probe.
#[cfg(feature = "probe")]
fn open_probe(spec: &SerialSpec) -> Result<Box<dyn Board>, BoardError> {
    Ok(Box::new(crate::board::probe::ProbeBoard::new(spec.clone())?))
}

/// A board on a debug probe, in a build that cannot drive one.
#[cfg(not(feature = "probe"))]
fn open_probe(spec: &SerialSpec) -> Result<Box<dyn Board>, BoardError> {
    Err(BoardError::ProbeFeature { id: spec.id.clone() })
}

impl LabConfig {
    /// A lab of `n` twins and nothing else (what `otarig run` uses without a lab config).
    pub fn twins_only(n: usize) -> Self {
        let devices = (1..=n)
            .map(|i| DeviceSpec::Twin(TwinSpec { id: format!("twin-{i}"), flash_size: raw::TWIN_FLASH }))
            .collect();
        Self {
            path: PathBuf::new(),
            devices,
            server: None,
            dns: DnsConfig::default(),
            sntp: None,
            timeouts: Timeouts::default(),
            retries: 0,
            prepare: BTreeMap::new(),
        }
    }

    /// The device with id `id`.
    pub fn device(&self, id: &str) -> Option<&DeviceSpec> {
        self.devices.iter().find(|d| d.id() == id)
    }

    /// The real boards.
    pub fn boards(&self) -> impl Iterator<Item = &SerialSpec> {
        self.devices.iter().filter_map(|d| match d {
            DeviceSpec::Board(board) => Some(&**board),
            DeviceSpec::Twin(_) => None,
        })
    }

    /// The regions flashed with every firmware on `id`: those for every board, then its own.
    pub fn prepare_regions(&self, id: &str) -> Vec<Region> {
        [EVERY_BOARD, id].iter().filter_map(|key| self.prepare.get(*key)).flatten().cloned().collect()
    }
}

/// No device in the lab has the firmware's chip.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no {} device in the lab (it has: {})", .chip.config_label(), .available.iter().map(|c| c.config_label()).collect::<Vec<_>>().join(", "))]
pub struct NoDevice {
    /// The firmware's chip.
    pub chip: Chip,
    /// The chips the lab has, each once, in config order.
    pub available: Vec<Chip>,
}

/// The devices a cell of firmware for `chip` may run on, in config order (boards before
/// twins); a cell waits for the first of them that is free.
pub fn assign(lab: &LabConfig, chip: Chip) -> Result<Vec<&DeviceSpec>, NoDevice> {
    let candidates: Vec<&DeviceSpec> = lab.devices.iter().filter(|d| d.chip() == chip).collect();
    if candidates.is_empty() {
        let mut available = Vec::new();
        for device in &lab.devices {
            if !available.contains(&device.chip()) {
                available.push(device.chip());
            }
        }
        return Err(NoDevice { chip, available });
    }
    Ok(candidates)
}
