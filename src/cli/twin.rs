//! `otarig twin`: the ESP32 twin as a serial device on a pseudo-terminal or an RFC 2217 port.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use otarig::twin::control;
use otarig::twin::device::{Serve, TwinConfig, TwinDevice};

use super::exit;

pub const AFTER_HELP: &str = "\
The first line of standard output is `serial port: /dev/pts/N`, or with --rfc2217
`serial port: rfc2217://HOST:PORT` (a contract): open that port with a flasher or a serial
monitor. The twin starts in the ROM's serial loader (--download, the default) or boots from
flash (--boot); after FLASH_END it prints the boot log computed from its flash, then ignores
its input.
A pseudo-terminal has no DTR/RTS: flashers must connect without a reset (--before no-reset).
Over RFC 2217 (one client at a time; a second is refused while one is connected) DTR and RTS
drive EN and GPIO0 through a DevKit's auto-reset circuit, so esptool, esp-idf-monitor and
espflash reset the twin as they reset a board. The flasher stubs of esptool 5.6 and espflash
4.7 are recognised by their bytes and their protocol spoken; other code loaded into RAM runs
nothing (a warning on stderr). With --flash FILE the flash is kept in FILE:
created erased when missing, loaded when present (its size must match --flash-size), every
write passed through in order. Stop with Ctrl-C.

Control channel: standard input takes one command per line, each answered `ok` on standard
output once done (`error: ...` for anything else):
  reset            EN pulsed: boot from flash
  reset download   EN pulsed with GPIO0 low: into the serial loader
  power-cut        power off (flash keeps what was written); a reset powers it again

Examples:
  otarig twin                       a 4 MB twin waiting for a flasher
  otarig twin --flash-size 8MB      the same with 8 MB of flash
  otarig twin --flash lab/board-a.flash --boot   boot what an earlier session flashed
  otarig twin --rfc2217 127.0.0.1:4000   esptool --port rfc2217://127.0.0.1:4000 flash-id
  otarig twin --rfc2217 0              a free loopback port, named on the first line
  mkfifo ctl; otarig twin < ctl & exec 3> ctl; echo 'reset download' >&3   reset by script";

#[derive(Debug, Args)]
pub struct TwinArgs {
    /// The chip to be: only the ESP32 (ESP32-D0WD-V3) is modelled.
    #[arg(long, default_value = "esp32", value_parser = ["esp32"])]
    chip: String,
    /// Flash size: 1MB, 2MB, 4MB, 8MB or 16MB.
    #[arg(long, default_value = "4MB", value_parser = parse_flash_size, value_name = "SIZE")]
    flash_size: u32,
    /// Start in the ROM's serial loader, waiting for a flasher (the default).
    #[arg(long, conflicts_with = "boot")]
    download: bool,
    /// Start by booting from flash.
    #[arg(long)]
    boot: bool,
    /// Keep the flash in this file (created erased, loaded when present, written through).
    #[arg(long, value_name = "FILE")]
    flash: Option<std::path::PathBuf>,
    /// Serve the UART as an RFC 2217 port on ADDR:PORT instead of a pseudo-terminal; a bare
    /// PORT listens on loopback (127.0.0.1), and port 0 takes a free one.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    rfc2217: Option<SocketAddr>,
}

/// `ADDR:PORT`, or a bare port on loopback.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| format!("{text:?} is neither ADDR:PORT (127.0.0.1:4000, [::1]:4000) nor a port"))
}

fn parse_flash_size(text: &str) -> Result<u32, String> {
    let megabytes: u32 = text
        .strip_suffix("MB")
        .and_then(|n| n.parse().ok())
        .filter(|n| [1, 2, 4, 8, 16].contains(n))
        .ok_or_else(|| format!("{text:?} is not one of 1MB, 2MB, 4MB, 8MB, 16MB"))?;
    Ok(megabytes * 1024 * 1024)
}

pub fn run(args: &TwinArgs) -> u8 {
    let config = TwinConfig {
        serve: args.rfc2217.map_or(Serve::Pty, Serve::Rfc2217),
        flash_size: args.flash_size,
        download: !args.boot,
        flash_file: args.flash.clone(),
        ..TwinConfig::default()
    };
    let handle = match TwinDevice::spawn(config) {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::USAGE;
        }
    };
    println!("serial port: {}", handle.port());
    let _ = std::io::stdout().flush();
    let handle = Arc::new(handle);
    let controlled = Arc::clone(&handle);
    let spawned = std::thread::Builder::new().name("twin-control".into()).spawn(move || {
        if let Err(error) = control::serve(std::io::stdin().lock(), std::io::stdout(), &controlled) {
            tracing::warn!("control channel closed: {error}");
        }
    });
    if let Err(error) = spawned {
        eprintln!("error: cannot start the control channel: {error}");
        return exit::USAGE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot wait for Ctrl-C: {error}");
            return exit::USAGE;
        }
    };
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(handle);
    exit::OK
}
