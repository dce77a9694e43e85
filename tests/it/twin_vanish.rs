//! The twin's serial port vanishing, as a USB serial device its hub drops: after a chosen
//! number of bytes the reader gets an error, the port's path and its udev-like link are gone,
//! and the port cannot be opened again.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use otarig::twin::device::{TwinConfig, TwinDevice};

use crate::common::TempDir;

#[test]
fn the_port_vanishes_after_the_bytes_armed_and_stays_gone() {
    let tmp = TempDir::new("twin-vanish");
    let link = tmp.0.join("usb-Espressif_twin-if00");
    let twin = TwinDevice::spawn(TwinConfig { link: Some(link.clone()), ..TwinConfig::default() }).unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), twin.port_path(), "the link names the port");
    let mut port = serialport::new(link.to_string_lossy(), 115_200).timeout(Duration::from_millis(20)).open().unwrap();
    // What the chip printed at power-on (the download banner) is on the line already.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let banner_end = Instant::now() + Duration::from_secs(5);
    while !seen.ends_with(b"waiting for download\r\n") {
        assert!(Instant::now() < banner_end, "{}", String::from_utf8_lossy(&seen));
        if let Ok(n) = port.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
    }
    seen.clear();

    // An erased flash boots into the ROM's complaint, far longer than 100 bytes.
    twin.vanish(100);
    twin.reset(false);
    assert!(twin.wait_for_vanish(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(5);
    // The reader's read ends: an error (the line hung up) or the end of input.
    loop {
        assert!(Instant::now() < deadline, "the reader never saw the port go");
        match port.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    // A hangup drops what the line held, as a USB serial device's unplugging does.
    assert!(seen.len() <= 100, "at most the bytes before it vanished: {}", String::from_utf8_lossy(&seen));
    assert!(std::fs::symlink_metadata(&link).is_err(), "the link is gone");
    assert!(!twin.port_path().exists(), "the port's path is gone");
    assert!(serialport::new(link.to_string_lossy(), 115_200).open().is_err(), "it cannot be opened again");
}
