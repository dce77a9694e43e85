//! The lab config as written: private shapes that refuse unknown keys, checked into a
//! [`LabConfig`] with every error at its place.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    DeviceSpec, DnsConfig, EVERY_BOARD, LabConfig, LabError, LabErrorKind, PowerSpecError, ServerConfig, SntpConfig,
    Timeouts, TwinSpec,
};
use crate::board::port::{PortSelector, parse_vid_pid};
use crate::board::power::{CommandTemplate, PowerControl};
use crate::board::serial::SerialSpec;
use crate::board::{Chip, Region, ResetStrategy};
use crate::toml_source::TomlSource;

/// A twin's flash unless its table says otherwise.
pub(super) const TWIN_FLASH: u32 = crate::twin::flash::DEFAULT_SIZE;
/// How long a board stays unpowered unless its `power.off_ms` says otherwise.
const DEFAULT_OFF_TIME: Duration = Duration::from_secs(1);
const SECTOR: u64 = 0x1000;
/// The most twins a config may name, as `otarig run --twins` allows.
pub(crate) const MAX_TWINS: usize = 64;
/// The most retries a config may ask for, as `otarig run --retries` allows.
pub(crate) const MAX_RETRIES: u32 = 10;
/// The longest time limit a config may set: a day.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;
/// The longest a board may be kept unpowered: a minute.
pub(crate) const MAX_OFF_MS: u64 = 60_000;
/// The largest region a `[prepare]` table may write: the largest ESP32 flash.
pub(crate) const MAX_REGION: u64 = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    twins: Option<Spanned<usize>>,
    retries: Option<Spanned<u32>>,
    #[serde(default)]
    board: Vec<Spanned<RawBoard>>,
    #[serde(default)]
    twin: Vec<Spanned<RawTwin>>,
    server: Option<RawServer>,
    #[serde(default)]
    dns: RawDns,
    sntp: Option<RawSntp>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    prepare: BTreeMap<String, Spanned<Vec<Spanned<RawRegion>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    id: Spanned<String>,
    chip: Chip,
    port: Option<String>,
    usb_serial: Option<String>,
    vid_pid: Option<Spanned<String>>,
    reset: Option<ResetStrategy>,
    flash_size: Option<Spanned<String>>,
    baud: Option<Spanned<u64>>,
    power: Option<Spanned<RawPower>>,
    probe: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPower {
    command: Option<Spanned<String>>,
    off: Option<Spanned<String>>,
    on: Option<Spanned<String>>,
    off_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTwin {
    id: Spanned<String>,
    flash_size: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    listen: Option<Spanned<String>>,
    #[serde(default)]
    overrides: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSntp {
    listen: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    flash: Option<Spanned<u64>>,
    boot: Option<Spanned<u64>>,
    update: Option<Spanned<u64>>,
    total: Option<Spanned<u64>>,
    power: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    offset: Spanned<u64>,
    file: Option<Spanned<String>>,
    nvs: Option<Spanned<String>>,
    size: Option<Spanned<u64>>,
}

/// Errors at byte offsets of one file.
struct At<'a>(&'a TomlSource);

impl At<'_> {
    fn err(&self, at: usize, kind: LabErrorKind) -> LabError {
        LabError { location: self.0.location(at), kind }
    }
}

pub(super) fn check(source: &TomlSource) -> Result<LabConfig, LabError> {
    let raw: RawLab = source.parse()?;
    let at = At(source);
    let mut devices = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut claim = |id: &Spanned<String>| -> Result<String, LabError> {
        let text = id.get_ref();
        let usable = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !usable {
            return Err(at.err(id.span().start, LabErrorKind::Id { text: text.clone() }));
        }
        if ids.contains(text) {
            return Err(at.err(id.span().start, LabErrorKind::Duplicate { id: text.clone() }));
        }
        ids.push(text.clone());
        Ok(text.clone())
    };
    let timeouts = timeouts(&at, &raw.timeouts)?;

    let mut addresses = Vec::new();
    for board in &raw.board {
        let id = claim(&board.get_ref().id)?;
        let spec = board_spec(&at, id, board, timeouts.power, timeouts.flash)?;
        if let (Some(address), Some(text)) = (spec.address, &board.get_ref().address) {
            if addresses.contains(&address) {
                return Err(at.err(text.span().start, LabErrorKind::Duplicate { id: text.get_ref().clone() }));
            }
            addresses.push(address);
        }
        devices.push(DeviceSpec::Board(Box::new(spec)));
    }
    if let (Some(twins), false) = (&raw.twins, raw.twin.is_empty()) {
        return Err(at.err(twins.span().start, LabErrorKind::TwinsTwice));
    }
    for twin in &raw.twin {
        let twin = twin.get_ref();
        let id = claim(&twin.id)?;
        let flash_size = twin.flash_size.as_ref().map(|s| flash_size(&at, s)).transpose()?.unwrap_or(TWIN_FLASH);
        devices.push(DeviceSpec::Twin(TwinSpec { id, flash_size }));
    }
    if let Some(twins) = &raw.twins {
        if *twins.get_ref() > MAX_TWINS {
            return Err(at.err(twins.span().start, LabErrorKind::TooMany { what: "twins", max: MAX_TWINS as u64 }));
        }
        for i in 1..=*twins.get_ref() {
            let id = claim(&Spanned::new(twins.span(), format!("twin-{i}")))?;
            devices.push(DeviceSpec::Twin(TwinSpec { id, flash_size: TWIN_FLASH }));
        }
    }
    if devices.is_empty() {
        return Err(at.err(0, LabErrorKind::NoDevices));
    }

    let server = match (&raw.server, raw.board.first()) {
        (Some(server), _) => Some(ServerConfig { listen: socket_addr(&at, &server.listen)? }),
        (None, Some(board)) => return Err(at.err(board.span().start, LabErrorKind::NoServer)),
        (None, None) => None,
    };
    let dns = dns(&at, &raw.dns)?;
    let sntp = raw.sntp.as_ref().map(|s| Ok::<_, LabError>(SntpConfig { listen: socket_addr(&at, &s.listen)? }));
    let prepare = prepare(&at, &raw.prepare, &ids)?;
    Ok(LabConfig {
        path: source.path().to_owned(),
        devices,
        server,
        dns,
        sntp: sntp.transpose()?,
        timeouts,
        retries: retries(&at, raw.retries.as_ref())?,
        prepare,
    })
}

fn board_spec(
    at: &At<'_>,
    id: String,
    board: &Spanned<RawBoard>,
    power_timeout: Duration,
    flash_timeout: Duration,
) -> Result<SerialSpec, LabError> {
    let table = board.span().start;
    let raw = board.get_ref();
    let vid_pid = match &raw.vid_pid {
        Some(text) => Some(
            parse_vid_pid(text.get_ref())
                .ok_or_else(|| at.err(text.span().start, LabErrorKind::VidPid { text: text.get_ref().clone() }))?,
        ),
        None => None,
    };
    let selector = match (&raw.port, &raw.usb_serial, vid_pid) {
        (Some(port), None, None) => PortSelector::Path(PathBuf::from(port)),
        (Some(_), _, _) => return Err(at.err(table, LabErrorKind::PortConflict { id })),
        (None, Some(serial), vid_pid) => PortSelector::UsbSerial { serial: serial.clone(), vid_pid },
        (None, None, Some((vid, pid))) => PortSelector::VidPid(vid, pid),
        (None, None, None) => return Err(at.err(table, LabErrorKind::NoPort { id })),
    };
    let baud = match &raw.baud {
        Some(baud) if !(9_600..=5_000_000).contains(baud.get_ref()) => {
            return Err(at.err(baud.span().start, LabErrorKind::Baud { baud: *baud.get_ref() }));
        }
        Some(baud) => Some(*baud.get_ref() as u32),
        None => None,
    };
    let power = raw.power.as_ref().map(|power| power_control(at, &id, power)).transpose()?;
    let probe = raw.probe.as_ref().map(|text| probe_selector(at, text)).transpose()?;
    Ok(SerialSpec {
        chip: raw.chip,
        selector,
        reset: raw.reset,
        baud,
        flash_size: raw.flash_size.as_ref().map(|s| flash_size(at, s)).transpose()?,
        power,
        power_timeout,
        flash_timeout,
        probe,
        address: raw.address.as_ref().map(|text| ip_addr(at, text)).transpose()?,
        id,
    })
}

/// A `probe = "VID:PID[:SERIAL]"` key: the selector as written, once probe-rs reads it.
#[cfg(feature = "probe")]
fn probe_selector(at: &At<'_>, text: &Spanned<String>) -> Result<String, LabError> {
    match crate::board::probe::parse_selector(text.get_ref()) {
        Ok(_) => Ok(text.get_ref().clone()),
        Err(source) => {
            Err(at.err(text.span().start, LabErrorKind::ProbeSelector { text: text.get_ref().clone(), source }))
        }
    }
}

/// A `probe` key in a build that cannot drive a probe: refused where it is written.
#[cfg(not(feature = "probe"))]
fn probe_selector(at: &At<'_>, text: &Spanned<String>) -> Result<String, LabError> {
    Err(at.err(text.span().start, LabErrorKind::ProbeFeature))
}

fn power_control(at: &At<'_>, id: &str, power: &Spanned<RawPower>) -> Result<PowerControl, LabError> {
    let raw = power.get_ref();
    let fail = |span: usize, source| at.err(span, LabErrorKind::Power { id: id.to_owned(), source });
    let template = |text: &Spanned<String>| {
        CommandTemplate::parse(text.get_ref()).map_err(|e| fail(text.span().start, PowerSpecError::Template(e)))
    };
    let (off, on) = match (&raw.command, &raw.off, &raw.on) {
        (Some(command), None, None) => {
            let template = template(command)?;
            if !template.uses("action") {
                return Err(fail(command.span().start, PowerSpecError::NoAction));
            }
            (template.clone(), template)
        }
        (None, Some(off), Some(on)) => (template(off)?, template(on)?),
        _ => return Err(fail(power.span().start, PowerSpecError::NoCommands)),
    };
    let off_time = match &raw.off_ms {
        Some(ms) if *ms.get_ref() > MAX_OFF_MS => {
            let kind = LabErrorKind::TooMany { what: "power.off_ms", max: MAX_OFF_MS };
            return Err(at.err(ms.span().start, kind));
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
        None => DEFAULT_OFF_TIME,
    };
    Ok(PowerControl { off, on, off_time })
}

/// `4MB` → bytes; powers of two from 1 to 128 MB.
fn flash_size(at: &At<'_>, text: &Spanned<String>) -> Result<u32, LabError> {
    let megabytes = text.get_ref().strip_suffix("MB").and_then(|n| n.parse::<u32>().ok());
    match megabytes {
        Some(mb) if mb.is_power_of_two() && mb <= 128 => Ok(mb << 20),
        _ => Err(at.err(text.span().start, LabErrorKind::FlashSize { text: text.get_ref().clone() })),
    }
}

fn socket_addr(at: &At<'_>, text: &Spanned<String>) -> Result<SocketAddr, LabError> {
    text.get_ref().parse().map_err(|_| {
        let kind = LabErrorKind::Address { text: text.get_ref().clone(), expected: "IP:PORT, as `0.0.0.0:8443`" };
        at.err(text.span().start, kind)
    })
}

fn ip_addr(at: &At<'_>, text: &Spanned<String>) -> Result<IpAddr, LabError> {
    text.get_ref().parse().map_err(|_| {
        let kind = LabErrorKind::Address { text: text.get_ref().clone(), expected: "an IP address, as `192.168.4.21`" };
        at.err(text.span().start, kind)
    })
}

fn dns(at: &At<'_>, raw: &RawDns) -> Result<DnsConfig, LabError> {
    let listen = raw.listen.as_ref().map(|l| socket_addr(at, l)).transpose()?;
    let mut overrides = BTreeMap::new();
    for (host, address) in &raw.overrides {
        let span = address.span().start;
        if !is_host_name(host) {
            return Err(at.err(span, LabErrorKind::HostName { text: host.clone() }));
        }
        let ip: IpAddr = address.get_ref().parse().map_err(|_| {
            let kind =
                LabErrorKind::Address { text: address.get_ref().clone(), expected: "an IP address, as `192.168.4.1`" };
            at.err(span, kind)
        })?;
        overrides.insert(host.to_ascii_lowercase(), ip);
    }
    Ok(DnsConfig { listen, overrides })
}

/// Labels of letters, digits and inner hyphens, joined by dots.
fn is_host_name(text: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !text.is_empty() && text.len() <= 253 && text.split('.').all(label)
}

/// `retries = N`, at most [`MAX_RETRIES`].
fn retries(at: &At<'_>, raw: Option<&Spanned<u32>>) -> Result<u32, LabError> {
    match raw {
        Some(n) if *n.get_ref() > MAX_RETRIES => {
            Err(at.err(n.span().start, LabErrorKind::TooMany { what: "retries", max: u64::from(MAX_RETRIES) }))
        }
        Some(n) => Ok(*n.get_ref()),
        None => Ok(0),
    }
}

fn timeouts(at: &At<'_>, raw: &RawTimeouts) -> Result<Timeouts, LabError> {
    let defaults = Timeouts::default();
    let pick = |field: &'static str, value: &Option<Spanned<u64>>, default: Duration| match value {
        Some(secs) if !(1..=MAX_TIMEOUT_SECS).contains(secs.get_ref()) => {
            Err(at.err(secs.span().start, LabErrorKind::Timeout { field, max: MAX_TIMEOUT_SECS }))
        }
        Some(secs) => Ok(Duration::from_secs(*secs.get_ref())),
        None => Ok(default),
    };
    Ok(Timeouts {
        flash: pick("flash", &raw.flash, defaults.flash)?,
        boot: pick("boot", &raw.boot, defaults.boot)?,
        update: pick("update", &raw.update, defaults.update)?,
        total: pick("total", &raw.total, defaults.total)?,
        power: pick("power", &raw.power, defaults.power)?,
    })
}

fn prepare(
    at: &At<'_>,
    raw: &BTreeMap<String, Spanned<Vec<Spanned<RawRegion>>>>,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<Region>>, LabError> {
    let folder = at.0.path().parent().unwrap_or(Path::new("")).to_owned();
    let mut prepare = BTreeMap::new();
    // What every cell writes, which no region may touch.
    let owned = crate::image::partition::cell_owned(&crate::image::partition::two_ota_table());
    for (id, regions) in raw {
        if id != EVERY_BOARD && !ids.contains(id) {
            return Err(at.err(regions.span().start, LabErrorKind::UnknownDevice { id: id.clone() }));
        }
        let mut read = Vec::new();
        for region in regions.get_ref() {
            let region = region.get_ref();
            let offset = *region.offset.get_ref();
            if offset % SECTOR != 0 || offset > u64::from(u32::MAX) {
                return Err(at.err(region.offset.span().start, LabErrorKind::Alignment { offset }));
            }
            let bytes = match (&region.file, &region.nvs, &region.size) {
                (Some(file), None, None) => {
                    let path = folder.join(file.get_ref());
                    crate::input::read_image(&path).map_err(|source| {
                        let kind = LabErrorKind::PrepareFile { path: path.clone(), source };
                        at.err(file.span().start, kind)
                    })?
                }
                (None, Some(csv), size) => {
                    let size = match size {
                        Some(size) if *size.get_ref() > MAX_REGION => {
                            let kind = LabErrorKind::TooMany { what: "size", max: MAX_REGION };
                            return Err(at.err(size.span().start, kind));
                        }
                        Some(size) => u32::try_from(*size.get_ref()).unwrap_or(u32::MAX),
                        None => super::nvs::DEFAULT_SIZE,
                    };
                    super::nvs::generate(&folder.join(csv.get_ref()), size).map_err(|e| {
                        let kind = LabErrorKind::Nvs { path: e.path, source: e.problem };
                        at.err(csv.span().start, kind)
                    })?
                }
                _ => return Err(at.err(region.offset.span().start, LabErrorKind::RegionSource)),
            };
            let end = offset + bytes.len() as u64;
            if let Some((what, _, _)) =
                owned.iter().find(|(_, start, stop)| offset < u64::from(*stop) && end > u64::from(*start))
            {
                let kind = LabErrorKind::PrepareOverlap { offset, end, what: what.clone() };
                return Err(at.err(region.offset.span().start, kind));
            }
            read.push(Region::padded(offset as u32, bytes));
        }
        prepare.insert(id.clone(), read);
    }
    Ok(prepare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for good in ["ota.example.com", "localhost", "a-b.c1", "OTA.Example.COM"] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in ["", "-a.com", "a-.com", "a..com", "a_b.com", "ota.example.com.", "*.example.com"] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
