//! Finding a board's serial port: by USB serial number or VID:PID among the ports the system
//! lists (`/dev/ttyUSB*` names move between boots and replugs), or by an explicit path (a udev
//! symlink such as `/dev/esp32-a`, or a twin's pseudo-terminal).
//!
//! serialport is built without libudev: on Linux, [`list_ports`] reads `/sys/class/tty`, keeps
//! devices whose subsystem is usb, usb-serial, pci, pnp, amba or serial-base, and fills the USB
//! fields (`idVendor`, `idProduct`, `serial`, `manufacturer`, `product`) from sysfs. Legacy
//! `ttyS*` UARTs are listed whether or not hardware is behind them; pseudo-terminals never are
//! (open those by path). Without `/sys/class/tty` (some containers) the list is empty.

use std::fmt;
use std::path::{Path, PathBuf};

use serialport::{SerialPortInfo, SerialPortType, UsbPortInfo};

use super::UsbIdentity;

/// How the lab config names a board's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSelector {
    /// A device path, used as it is (it may be a symlink, or a port the system does not list).
    Path(PathBuf),
    /// The USB device's serial number, optionally narrowed to a VID:PID.
    UsbSerial {
        /// The serial number string, matched exactly.
        serial: String,
        /// The vendor and product id the device must also have.
        vid_pid: Option<(u16, u16)>,
    },
    /// The only USB device with this VID:PID.
    VidPid(u16, u16),
}

impl fmt::Display for PortSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "port {}", path.display()),
            Self::UsbSerial { serial, vid_pid: None } => write!(f, "USB serial number `{serial}`"),
            Self::UsbSerial { serial, vid_pid: Some((vid, pid)) } => {
                write!(f, "USB serial number `{serial}` on {vid:04x}:{pid:04x}")
            }
            Self::VidPid(vid, pid) => write!(f, "USB device {vid:04x}:{pid:04x}"),
        }
    }
}

/// A port that could not be found.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PortError {
    /// No listed port matches (unplugged, another serial number, no such path).
    #[error("no serial port matches {selector}")]
    NotFound {
        /// The selector, for people.
        selector: String,
    },
    /// Several ports match a selector that must name one.
    #[error("{selector} matches {} ports ({})", ports.len(), ports.join(", "))]
    Ambiguous {
        /// The selector, for people.
        selector: String,
        /// The matching ports' paths.
        ports: Vec<String>,
    },
    /// The system's port list could not be read.
    #[error("cannot list serial ports: {source}")]
    List {
        /// The serial driver's error.
        source: serialport::Error,
    },
}

/// A port found for a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundPort {
    /// The port's device path (`/dev/ttyUSB0`).
    pub path: PathBuf,
    /// The USB device, when the system lists the port as one.
    pub usb: Option<UsbIdentity>,
}

/// The USB identity of a listed port, if it is a USB port.
pub fn usb_identity(info: &SerialPortInfo) -> Option<UsbIdentity> {
    match &info.port_type {
        SerialPortType::UsbPort(usb) => Some(UsbIdentity {
            vid: usb.vid,
            pid: usb.pid,
            serial_number: usb.serial_number.clone(),
            manufacturer: usb.manufacturer.clone(),
            product: usb.product.clone(),
        }),
        _ => None,
    }
}

/// What espflash wants to know of the port (the PID picks its USB-JTAG handling); zeros for a
/// port that is not USB.
///
/// The one place outside tests that builds a `UsbPortInfo`: serialport's
/// `usbportinfo-interface` feature, which probe-rs turns on (the `probe` feature), adds a
/// field to it.
pub fn espflash_port_info(usb: Option<&UsbIdentity>) -> UsbPortInfo {
    let usb = usb.cloned().unwrap_or_default();
    UsbPortInfo {
        vid: usb.vid,
        pid: usb.pid,
        serial_number: usb.serial_number,
        manufacturer: usb.manufacturer,
        product: usb.product,
        #[cfg(feature = "probe")]
        interface: None,
    }
}

/// Picks the port `selector` names among `ports`.
///
/// A path is taken as it is, with the USB identity of the listed port it is (or links to);
/// serial numbers and VID:PIDs must match exactly one listed USB port.
pub fn find_port(selector: &PortSelector, ports: &[SerialPortInfo]) -> Result<FoundPort, PortError> {
    let found = |info: &SerialPortInfo| FoundPort { path: PathBuf::from(&info.port_name), usb: usb_identity(info) };
    if let PortSelector::Path(path) = selector {
        let real = std::fs::canonicalize(path).ok();
        let listed = ports.iter().find(|info| {
            let listed = Path::new(&info.port_name);
            listed == path || real.as_deref() == Some(listed)
        });
        return Ok(FoundPort { path: path.clone(), usb: listed.and_then(usb_identity) });
    }
    let matching: Vec<&SerialPortInfo> = ports
        .iter()
        .filter(|info| match (&info.port_type, selector) {
            (SerialPortType::UsbPort(usb), PortSelector::UsbSerial { serial, vid_pid }) => {
                usb.serial_number.as_deref() == Some(serial.as_str())
                    && vid_pid.is_none_or(|(vid, pid)| usb.vid == vid && usb.pid == pid)
            }
            (SerialPortType::UsbPort(usb), PortSelector::VidPid(vid, pid)) => usb.vid == *vid && usb.pid == *pid,
            _ => false,
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(found(one)),
        [] => Err(PortError::NotFound { selector: selector.to_string() }),
        many => Err(PortError::Ambiguous {
            selector: selector.to_string(),
            ports: many.iter().map(|info| info.port_name.clone()).collect(),
        }),
    }
}

/// The serial ports the system lists (see the module's notes on Linux without libudev).
pub fn list_ports() -> Result<Vec<SerialPortInfo>, PortError> {
    // serialport panics when /sys/class/tty is missing; such a system lists no ports.
    if cfg!(target_os = "linux") && !Path::new("/sys/class/tty").is_dir() {
        return Ok(Vec::new());
    }
    let mut ports = serialport::available_ports().map_err(|source| PortError::List { source })?;
    ports.sort_by(|a, b| a.port_name.cmp(&b.port_name));
    Ok(ports)
}

/// `"303a:1001"` → (0x303a, 0x1001).
pub(crate) fn parse_vid_pid(text: &str) -> Option<(u16, u16)> {
    let (vid, pid) = text.split_once(':')?;
    let hex = |s: &str| (s.len() == 4).then(|| u16::from_str_radix(s, 16).ok()).flatten();
    Some((hex(vid)?, hex(pid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usb(name: &str, vid: u16, pid: u16, serial: Option<&str>) -> SerialPortInfo {
        SerialPortInfo {
            port_name: name.into(),
            port_type: SerialPortType::UsbPort(UsbPortInfo {
                vid,
                pid,
                serial_number: serial.map(Into::into),
                manufacturer: Some("Silicon Labs".into()),
                product: None,
                #[cfg(feature = "probe")]
                interface: None,
            }),
        }
    }

    fn lab() -> Vec<SerialPortInfo> {
        vec![
            SerialPortInfo { port_name: "/dev/ttyS0".into(), port_type: SerialPortType::Unknown },
            usb("/dev/ttyUSB0", 0x10c4, 0xea60, Some("A1")),
            usb("/dev/ttyUSB1", 0x10c4, 0xea60, Some("B2")),
            usb("/dev/ttyACM0", 0x303a, 0x1001, Some("24:0A:C4:07:7A:01")),
            usb("/dev/ttyUSB2", 0x1a86, 0x7523, None),
        ]
    }

    fn path(selector: PortSelector) -> Result<String, PortError> {
        find_port(&selector, &lab()).map(|found| found.path.display().to_string())
    }

    fn serial(serial: &str) -> PortSelector {
        PortSelector::UsbSerial { serial: serial.into(), vid_pid: None }
    }

    #[test]
    fn serial_numbers_pick_one_port() {
        assert_eq!(path(serial("B2")).unwrap(), "/dev/ttyUSB1");
        assert_eq!(path(serial("24:0A:C4:07:7A:01")).unwrap(), "/dev/ttyACM0");
        let narrowed = PortSelector::UsbSerial { serial: "A1".into(), vid_pid: Some((0x10c4, 0xea60)) };
        assert_eq!(path(narrowed).unwrap(), "/dev/ttyUSB0");
        let wrong_device = PortSelector::UsbSerial { serial: "A1".into(), vid_pid: Some((0x1a86, 0x7523)) };
        assert!(matches!(path(wrong_device), Err(PortError::NotFound { .. })));
        // Serial numbers are compared exactly.
        assert!(matches!(path(serial("a1")), Err(PortError::NotFound { .. })));
    }

    #[test]
    fn vid_pid_must_be_unique() {
        assert_eq!(path(PortSelector::VidPid(0x1a86, 0x7523)).unwrap(), "/dev/ttyUSB2");
        let err = path(PortSelector::VidPid(0x10c4, 0xea60)).unwrap_err();
        assert!(
            matches!(
                err,
                PortError::Ambiguous { ref selector, ref ports }
                    if selector == "USB device 10c4:ea60" && ports == &["/dev/ttyUSB0", "/dev/ttyUSB1"]
            ),
            "{err:?}"
        );
        assert!(matches!(path(PortSelector::VidPid(0x0403, 0x6001)), Err(PortError::NotFound { .. })));
    }

    #[test]
    fn two_ports_sharing_a_serial_number_are_ambiguous() {
        let mut ports = lab();
        ports.push(usb("/dev/ttyUSB3", 0x10c4, 0xea60, Some("A1")));
        let err = find_port(&serial("A1"), &ports).unwrap_err();
        assert!(matches!(err, PortError::Ambiguous { ref ports, .. } if ports.len() == 2), "{err:?}");
    }

    #[test]
    fn explicit_paths_are_taken_as_they_are() {
        let found = find_port(&PortSelector::Path("/dev/ttyUSB1".into()), &lab()).unwrap();
        assert_eq!(found.usb.map(|u| (u.vid, u.serial_number)), Some((0x10c4, Some("B2".into()))));
        // A pseudo-terminal is never listed, and is still a port.
        let found = find_port(&PortSelector::Path("/dev/pts/7".into()), &lab()).unwrap();
        assert_eq!((found.path, found.usb), (PathBuf::from("/dev/pts/7"), None));
    }

    #[test]
    fn non_usb_ports_never_match_usb_selectors() {
        let ports = vec![SerialPortInfo { port_name: "/dev/ttyS0".into(), port_type: SerialPortType::Unknown }];
        assert!(matches!(find_port(&PortSelector::VidPid(0, 0), &ports), Err(PortError::NotFound { .. })));
    }

    #[test]
    fn vid_pid_text() {
        assert_eq!(parse_vid_pid("303a:1001"), Some((0x303a, 0x1001)));
        assert_eq!(parse_vid_pid("10C4:EA60"), Some((0x10c4, 0xea60)));
        for bad in ["303a1001", "303a:", "30:1001", "303a:10011", "zzzz:0001", ""] {
            assert_eq!(parse_vid_pid(bad), None, "{bad}");
        }
    }

    #[test]
    fn espflash_sees_the_usb_pid() {
        let usb = UsbIdentity { vid: 0x303a, pid: 0x1001, ..UsbIdentity::default() };
        assert_eq!(espflash_port_info(Some(&usb)).pid, 0x1001);
        assert_eq!(espflash_port_info(None).pid, 0);
    }
}
