//! Checking a lab host before a nightly run: every board's port resolves and its ROM loader
//! answers with the configured chip, twins start and answer, the fleet's OTA host names resolve
//! to this host per the DNS overrides, the update server's address can be bound, the rig's DNS
//! and SNTP responders (when configured) start and answer.
//! One [`CheckLine`] per check, in order, through a callback; nothing is printed here.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use super::{DeviceSpec, LabConfig};
use crate::board::loader::LoaderAnswer;
use crate::board::port::PortError;
use crate::board::serial::{ResetSource, SerialBoard};
use crate::board::twin::TwinBoard;
use crate::board::{Board, BoardError, UsbIdentity};
use crate::firmware::OtaUrl;
use crate::labnet::dns::{DnsAnswer, DnsResponder, query_a};
use crate::labnet::sntp::{SntpResponder, now_unix, query_time};
use crate::twin::device::TwinConfig;

/// How a check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Works as the lab config says.
    Ok,
    /// Works, with a caveat the line names; does not fail the check.
    Warn,
    /// Does not work: cells on it would end in the rig's error; fails the check.
    Fail,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckLine {
    /// What was checked: `board esp32-a`, `dns ota.example.com`, `server`.
    pub subject: String,
    /// How it went.
    pub status: CheckStatus,
    /// What was found, for people: the port, the address, what failed.
    pub detail: String,
    /// What a failure is about, where the caller may have more to say (a hint).
    #[serde(skip)]
    pub cause: Option<CheckCause>,
}

/// What a failed check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckCause {
    /// No serial port of this host matches the board's selector.
    PortNotFound,
    /// More than one serial port matches the board's selector.
    PortAmbiguous,
}

/// Why boards on the lab network cannot reach an address of this host.
#[derive(Debug, thiserror::Error)]
enum RigAddressError {
    #[error("{ip} is no address a board can connect to")]
    Unspecified { ip: IpAddr },
    #[error("{ip} is loopback: boards cannot reach it")]
    Loopback { ip: IpAddr },
    #[error("{ip} is not an address of this host")]
    NotLocal { ip: IpAddr, source: std::io::Error },
}

/// A firmware's update host, as its OTA URL names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaHost {
    /// The firmware's id in the fleet.
    pub firmware: String,
    /// The URL's host name, as written.
    pub host: String,
    /// The URL's port (443 for `https://` without one).
    pub port: u16,
}

impl OtaHost {
    /// From a firmware id and its OTA URL.
    pub fn from_url(firmware: &str, url: &OtaUrl) -> Self {
        Self { firmware: firmware.to_owned(), host: url.host.clone(), port: url.port }
    }
}

/// Runs every check of `lab` against this host, `hosts` being the fleet's update hosts.
pub fn check_lab(lab: &LabConfig, hosts: &[OtaHost], report: &mut dyn FnMut(CheckLine)) {
    for device in &lab.devices {
        match device {
            DeviceSpec::Board(spec) => check_board(SerialBoard::new((**spec).clone()), report),
            DeviceSpec::Twin(spec) => check_twin(&spec.id, spec.flash_size, report),
        }
    }
    check_turns(lab, report);
    check_dns(lab, hosts, report);
    if let Some(listen) = lab.dns.listen {
        check_dns_responder(lab, listen, hosts, report);
    }
    check_binds(lab, report);
}

/// Boards without an `address` share one route to the update server: a warning when that
/// makes two or more of them take turns.
fn check_turns(lab: &LabConfig, report: &mut dyn FnMut(CheckLine)) {
    let unaddressed: Vec<&str> = lab.boards().filter(|b| b.address.is_none()).map(|b| b.id.as_str()).collect();
    if unaddressed.len() > 1 {
        let detail = format!(
            "{} have no `address`: their cells run one at a time (give each its DHCP-reserved address to run them side by side)",
            unaddressed.join(", ")
        );
        report(line("boards", CheckStatus::Warn, detail));
    }
}

fn line(subject: impl Into<String>, status: CheckStatus, detail: impl Into<String>) -> CheckLine {
    CheckLine { subject: subject.into(), status, detail: detail.into(), cause: None }
}

fn check_board(mut board: SerialBoard, report: &mut dyn FnMut(CheckLine)) {
    let subject = format!("board {}", board.spec().id);
    let (found, source) = match board.resolve() {
        Ok(found) => found,
        Err(err) => {
            let cause = match &err {
                BoardError::Port { source: PortError::NotFound { .. }, .. } => Some(CheckCause::PortNotFound),
                BoardError::Port { source: PortError::Ambiguous { .. }, .. } => Some(CheckCause::PortAmbiguous),
                _ => None,
            };
            let failed = line(subject, CheckStatus::Fail, without_id(&err, &board.spec().id));
            return report(CheckLine { cause, ..failed });
        }
    };
    let usb = found.usb.as_ref().map(describe_usb).map(|u| format!(" ({u})")).unwrap_or_default();
    let why = match source {
        ResetSource::Configured => "as configured".to_owned(),
        ResetSource::KnownDevice(name) => name.to_owned(),
        ResetSource::UnknownDevice => "unknown USB device: the classic circuit assumed".to_owned(),
        ResetSource::NotUsb => "not a USB port: the classic circuit assumed".to_owned(),
    };
    let reset = board.identity().reset.name();
    let port = match board.spec().probe {
        Some(_) => format!("console on port {}{usb}", found.path.display()),
        None => format!("port {}{usb}, reset {reset} ({why})", found.path.display()),
    };
    report(line(&subject, CheckStatus::Ok, port));
    if let Some(power) = &board.spec().power {
        let detail = format!("power off `{}`, on `{}` (not run by the check)", power.off.as_str(), power.on.as_str());
        report(line(&subject, CheckStatus::Ok, detail));
    }
    if let Some(probe) = &board.spec().probe {
        let detail = format!("flashed and reset by debug probe {probe} (the ROM loader is not checked)");
        return report(line(&subject, CheckStatus::Ok, detail));
    }
    report(match board.connect_loader() {
        Ok(answer) => line(&subject, CheckStatus::Ok, loader_answered(&answer)),
        Err(err) => line(&subject, CheckStatus::Fail, without_id(&err, &board.spec().id)),
    });
    if let Some(address) = board.spec().address {
        let detail = format!(
            "cells routed by its address {address}: the access point's DHCP must give it that address (reserved for its MAC)"
        );
        report(line(&subject, CheckStatus::Ok, detail));
    }
}

/// A board's error without the board's id in front (the line's subject names it).
fn without_id(err: &BoardError, id: &str) -> String {
    let text = err.to_string();
    text.strip_prefix(id).and_then(|rest| rest.strip_prefix(": ")).map_or(text.clone(), str::to_owned)
}

fn loader_answered(answer: &LoaderAnswer) -> String {
    let mac = answer.mac.as_ref().map(|mac| format!(", MAC {mac}")).unwrap_or_default();
    format!("the ROM loader answered: {}{mac}", answer.chip.config_label())
}

fn describe_usb(usb: &UsbIdentity) -> String {
    let mut parts = vec![format!("{:04x}:{:04x}", usb.vid, usb.pid)];
    parts.extend(usb.serial_number.as_ref().map(|s| format!("serial {s}")));
    parts.extend([&usb.manufacturer, &usb.product].into_iter().flatten().cloned());
    parts.join(", ")
}

fn check_twin(id: &str, flash_size: u32, report: &mut dyn FnMut(CheckLine)) {
    let subject = format!("twin {id}");
    let config = TwinConfig { flash_size, ..TwinConfig::default() };
    report(match TwinBoard::spawn(id, config).and_then(|mut twin| twin.connect_loader()) {
        Ok(answer) => line(subject, CheckStatus::Ok, loader_answered(&answer)),
        Err(err) => line(subject, CheckStatus::Fail, without_id(&err, id)),
    });
}

/// Whether boards on the lab network can reach `ip` on this host.
fn rig_address(ip: IpAddr) -> Result<(), RigAddressError> {
    if ip.is_unspecified() {
        return Err(RigAddressError::Unspecified { ip });
    }
    if ip.is_loopback() {
        return Err(RigAddressError::Loopback { ip });
    }
    UdpSocket::bind(SocketAddr::new(ip, 0)).map(drop).map_err(|source| RigAddressError::NotLocal { ip, source })
}

fn check_dns(lab: &LabConfig, hosts: &[OtaHost], report: &mut dyn FnMut(CheckLine)) {
    if lab.boards().next().is_none() {
        let detail = "twins only: each twin gets its cell's network from the rig";
        return report(line("dns", CheckStatus::Ok, detail));
    }
    let mut seen: Vec<(&str, u16)> = Vec::new();
    for host in hosts {
        if seen.contains(&(&host.host, host.port)) {
            continue;
        }
        seen.push((&host.host, host.port));
        let subject = format!("dns {}", host.host);
        let ip = match host.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match lab.dns.overrides.get(&host.host) {
                Some(ip) => *ip,
                None => {
                    let detail = format!(
                        "no [dns.overrides] entry: boards would reach the real server (firmware {})",
                        host.firmware
                    );
                    report(line(subject, CheckStatus::Fail, detail));
                    continue;
                }
            },
        };
        if let Err(why) = rig_address(ip) {
            report(line(subject, CheckStatus::Fail, why.to_string()));
            continue;
        }
        let Some(server) = lab.server else { continue };
        let listen = server.listen;
        if !listen.ip().is_unspecified() && listen.ip() != ip {
            let detail = format!("resolves to {ip}, but the server listens on {listen} only");
            report(line(subject, CheckStatus::Fail, detail));
        } else if listen.port() != host.port {
            let detail = format!(
                "{ip} (this host); boards connect to port {}, the server listens on {}: redirect one to the other",
                host.port,
                listen.port()
            );
            report(line(subject, CheckStatus::Warn, detail));
        } else {
            report(line(subject, CheckStatus::Ok, format!("{ip} (this host)")));
        }
    }
}

/// How long the check waits for its own responders' answers.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Starts the DNS responder on `listen` and asks it for every OTA host name.
fn check_dns_responder(lab: &LabConfig, listen: SocketAddr, hosts: &[OtaHost], report: &mut dyn FnMut(CheckLine)) {
    let subject = "dns responder";
    let responder = match DnsResponder::start(listen, &lab.dns.overrides) {
        Ok(responder) => responder,
        Err(err) => return report(line(subject, CheckStatus::Fail, format!("cannot bind {listen}: {err}"))),
    };
    // The fleet's OTA host names (none without boards: then the overridden names).
    let mut names: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).filter(|h| h.parse::<IpAddr>().is_err()).collect();
    if names.is_empty() {
        names.extend(lab.dns.overrides.keys().map(String::as_str));
    }
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return report(line(subject, CheckStatus::Ok, format!("listens on {listen}; no host name to ask for")));
    }
    for name in names {
        let expected = lab.dns.overrides.get(name).copied();
        report(match (query_a(responder.local_addr(), name, ANSWER_WAIT), expected) {
            (Ok(DnsAnswer::Addresses(got)), Some(ip)) if got == [ip] => {
                line(subject, CheckStatus::Ok, format!("{listen} answers {name}: {ip}"))
            }
            (Ok(DnsAnswer::Error(code)), None) => {
                line(subject, CheckStatus::Warn, format!("{listen} answers {name}: {code} (no [dns.overrides] entry)"))
            }
            (Ok(answer), _) => line(subject, CheckStatus::Fail, format!("{listen} answers {name}: {answer:?}")),
            (Err(err), _) => line(subject, CheckStatus::Fail, format!("{listen} did not answer {name}: {err}")),
        });
    }
}

fn check_binds(lab: &LabConfig, report: &mut dyn FnMut(CheckLine)) {
    if let Some(server) = lab.server {
        report(match TcpListener::bind(server.listen) {
            Ok(_) => line("server", CheckStatus::Ok, format!("{} can be bound", server.listen)),
            Err(err) => line("server", CheckStatus::Fail, format!("cannot bind {}: {err}", server.listen)),
        });
    }
    if let Some(sntp) = lab.sntp {
        report(check_sntp(sntp.listen));
    }
}

/// Starts the SNTP responder on `listen` with this host's time and asks it for the time.
fn check_sntp(listen: SocketAddr) -> CheckLine {
    let responder = match SntpResponder::start(listen, now_unix()) {
        Ok(responder) => responder,
        Err(err) => return line("sntp", CheckStatus::Fail, format!("cannot bind {listen}: {err}")),
    };
    match query_time(responder.local_addr(), ANSWER_WAIT) {
        Ok(got) if got == responder.time() => line(
            "sntp",
            CheckStatus::Ok,
            format!("{listen} answers with the lab date (each board cell's scenario date)"),
        ),
        Ok(got) => line("sntp", CheckStatus::Fail, format!("{listen} answered {got}, not {}", responder.time())),
        Err(err) => line("sntp", CheckStatus::Fail, format!("{listen} did not answer: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rig_addresses() {
        assert!(matches!(rig_address("127.0.0.1".parse().unwrap()), Err(RigAddressError::Loopback { .. })));
        assert!(matches!(rig_address("0.0.0.0".parse().unwrap()), Err(RigAddressError::Unspecified { .. })));
        // TEST-NET-3 (RFC 5737) is never assigned to a host.
        assert!(matches!(rig_address("203.0.113.77".parse().unwrap()), Err(RigAddressError::NotLocal { .. })));
    }
}
