//! `otarig boards`: the serial ports on this host, each with the `[[board]]` table to paste
//! into the lab config, and (built with the `probe` feature) the debug probes.

use std::path::PathBuf;

use clap::Args;
use otarig::board::UsbIdentity;
use otarig::board::port::{PortSelector, find_port, list_ports, usb_identity};
use otarig::board::serial::{ResetSource, choose_reset};
use otarig::lab::{self, LabConfig};
use serde_json::json;
use serialport::SerialPortInfo;

use super::{OutputFormat, exit};

pub const AFTER_HELP: &str = "\
Lists USB serial ports (path, VID:PID, USB serial number, manufacturer and product) with the
reset strategy each gets and a [[board]] table for otarig.toml: by USB serial number when the
port has a unique one (ttyUSB names move between boots), else by VID:PID, else by path. Ports
that a board in the lab config already names are marked. Exit status 0, also when no port is
found; 2 when the lab config is in error. Built with the `probe` feature, it also lists debug
probes (identifier, VID:PID, serial number) with the `probe = \"...\"` line for a board's table.

Examples:
  otarig boards
  otarig boards --all                     also serial ports that are not USB devices
  otarig boards --format json | jq '.[].port'";

#[derive(Debug, Args)]
pub struct BoardsArgs {
    /// The lab config, to mark ports its boards name (default: ./otarig.toml when present).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Also list ports that are not USB devices (legacy ttyS* UARTs).
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// One listed port and what to write for it.
struct Listed {
    info: SerialPortInfo,
    usb: Option<UsbIdentity>,
    /// The board of the lab config that names this port.
    board: Option<String>,
    snippet: String,
    reset: &'static str,
    why: String,
}

pub fn run(args: &BoardsArgs) -> u8 {
    let lab = match lab::config_path(args.config.as_deref()) {
        Some(path) => match lab::load(&path) {
            Ok(lab) => Some(lab),
            Err(err) => {
                super::lab::report_config(&err);
                return exit::USAGE;
            }
        },
        None => None,
    };
    let ports = match list_ports() {
        Ok(ports) => ports,
        Err(err) => {
            eprintln!("error: {err}");
            return exit::USAGE;
        }
    };
    let (usb, other): (Vec<_>, Vec<_>) = ports.iter().cloned().partition(|p| usb_identity(p).is_some());
    let shown = if args.all { ports.clone() } else { usb };
    let listed: Vec<Listed> =
        shown.iter().enumerate().map(|(i, info)| describe(info, i + 1, &ports, lab.as_ref())).collect();
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&to_json(&listed)).unwrap_or_default()),
        OutputFormat::Text => {
            print!("{}", to_text(&listed, if args.all { &[] } else { &other }));
            print!("{}", probes_text());
        }
    }
    exit::OK
}

/// The debug probes on this host, each with the line that names it in a `[[board]]` table.
#[cfg(feature = "probe")]
fn probes_text() -> String {
    let probes = otarig::board::probe::list_probes();
    if probes.is_empty() {
        return "no debug probes found\n".to_owned();
    }
    let mut out = String::new();
    for probe in probes {
        let serial = probe.serial_number.as_deref().unwrap_or("(none)");
        out.push_str(&format!("probe {}  {:04x}:{:04x}  serial {serial}\n", probe.identifier, probe.vid, probe.pid));
        out.push_str("  in a [[board]] table (its console named by port, usb_serial or vid_pid):\n");
        out.push_str(&format!("    probe = \"{}\"\n", probe.selector()));
    }
    out
}

#[cfg(not(feature = "probe"))]
fn probes_text() -> String {
    "(debug probes are listed only by an otarig built with --features probe)\n".to_owned()
}

fn describe(info: &SerialPortInfo, n: usize, ports: &[SerialPortInfo], lab: Option<&LabConfig>) -> Listed {
    let usb = usb_identity(info);
    let (reset, source) = choose_reset(None, usb.as_ref());
    let why = match source {
        ResetSource::KnownDevice(name) => name.to_owned(),
        ResetSource::UnknownDevice => "USB device not in the table: check the board's reset wiring".to_owned(),
        ResetSource::NotUsb | ResetSource::Configured => "not a USB device".to_owned(),
    };
    let board = lab.and_then(|lab| {
        lab.boards()
            .find(|b| find_port(&b.selector, ports).is_ok_and(|found| found.path.to_string_lossy() == info.port_name))
            .map(|b| b.id.clone())
    });
    let id = board.clone().unwrap_or_else(|| format!("board-{n}"));
    let snippet = snippet(&id, info, usb.as_ref(), ports, reset.name());
    Listed { info: info.clone(), usb, board, snippet, reset: reset.name(), why }
}

/// The `[[board]]` table for a port: the steadiest selector that names it alone.
fn snippet(
    id: &str,
    info: &SerialPortInfo,
    usb: Option<&UsbIdentity>,
    ports: &[SerialPortInfo],
    reset: &str,
) -> String {
    let unique = |selector: PortSelector| find_port(&selector, ports).is_ok();
    let selector = match usb {
        Some(usb) => match &usb.serial_number {
            Some(serial) if unique(PortSelector::UsbSerial { serial: serial.clone(), vid_pid: None }) => {
                format!("usb_serial = \"{serial}\"")
            }
            _ if unique(PortSelector::VidPid(usb.vid, usb.pid)) => format!(
                "vid_pid = \"{:04x}:{:04x}\"   # no unique serial number: only while it is the one such device",
                usb.vid, usb.pid
            ),
            _ => format!(
                "port = \"{}\"   # no unique serial number: a udev symlink keeps the name (ci/LAB-HOST.md)",
                info.port_name
            ),
        },
        None => format!("port = \"{}\"", info.port_name),
    };
    // The USB-Serial-JTAG peripheral is on newer chips only, never on the original ESP32.
    let chip = match usb {
        Some(usb) if (usb.vid, usb.pid) == (0x303a, 0x1001) => "esp32c3\"   # or esp32s3: the chip on the board",
        _ => "esp32\"   # or esp32c3, esp32s3: the chip on the board",
    };
    format!("[[board]]\nid = \"{id}\"\nchip = \"{chip}\n{selector}\nreset = \"{reset}\"\nflash_size = \"4MB\"\n")
}

fn to_text(listed: &[Listed], skipped: &[SerialPortInfo]) -> String {
    let mut out = String::new();
    if listed.is_empty() {
        out.push_str("no serial ports found\n");
    }
    for port in listed {
        let mut head = vec![port.info.port_name.clone()];
        if let Some(usb) = &port.usb {
            head.push(format!("{:04x}:{:04x}", usb.vid, usb.pid));
            head.push(format!("serial {}", usb.serial_number.as_deref().unwrap_or("(none)")));
            let names: Vec<&str> =
                [&usb.manufacturer, &usb.product].into_iter().flatten().map(String::as_str).collect();
            if !names.is_empty() {
                head.push(names.join(" / "));
            }
        }
        out.push_str(&head.join("  "));
        out.push('\n');
        out.push_str(&format!("  reset: {} ({})\n", port.reset, port.why));
        match &port.board {
            Some(id) => out.push_str(&format!("  in the lab config as `{id}`\n")),
            None => {
                out.push_str("  for otarig.toml:\n");
                for line in port.snippet.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|p| p.port_name.as_str()).collect();
        out.push_str(&format!("(not shown, not USB devices: {}; --all lists them)\n", names.join(", ")));
    }
    out
}

fn to_json(listed: &[Listed]) -> serde_json::Value {
    let ports: Vec<serde_json::Value> = listed
        .iter()
        .map(|port| {
            json!({
                "port": port.info.port_name,
                "usb": port.usb,
                "reset": port.reset,
                "reset_source": port.why,
                "board": port.board,
                "snippet": port.snippet,
            })
        })
        .collect();
    serde_json::Value::Array(ports)
}
