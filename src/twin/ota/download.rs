//! The download into the passive OTA partition, as each generation does it: v3.1–v3.2's one
//! function (the partition erased first, whatever the body is written, verified at the end);
//! from v3.3 begin/perform/finish (the whole partition erased to v4.2, sector by sector from
//! v4.3; the image header read and its chip checked from v4.3.3 and v4.4.1); the image verified
//! twice; otadata switched. A body cut short (a reset, a FIN without close_notify, a
//! close_notify) is reported by each layer as its release does.

use std::io::{self, Read, Write};

use mbedtls::error::codes;
use mbedtls::ssl::io::Io;

use super::flow::{Client, ESP_FAIL, OTA, SOCKET_TIMEOUT, Step, Stop};
use super::http::Head;
use super::ota_ops::{self, ERR_INVALID_ARG, ERR_INVALID_SIZE, ERR_OTA_VALIDATE_FAILED, Layout, OtaWrite, WriteError};
use crate::device_tls::client::{EspSocket, Session};
use crate::firmware::start::PowerCut;
use crate::idf::IdfVersion;
use crate::image::partition::AppSlot;
use crate::twin::boot::verify_app;

/// Download speed of an ESP32 on Wi-Fi writing to flash, for the timestamps: µs per byte.
const MICROS_PER_BYTE: u64 = 10;
/// The client's timeout, for the timestamps after a poll that timed out.
const SOCKET_TIMEOUT_MS: u64 = SOCKET_TIMEOUT.as_millis() as u64;
/// `ESP_ERR_INVALID_VERSION`: the image is for another chip.
const ERR_INVALID_VERSION: u32 = 0x10a;

impl Client<'_, '_, '_> {
    /// The partition the update goes to, announced as the release does.
    fn update_partition(&mut self) -> Step<(Layout, AppSlot)> {
        self.info(OTA, "Starting OTA...");
        let layout = Layout::read(&self.device.flash.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let slot = layout.as_ref().and_then(|layout| layout.next_update(self.device.running)).cloned();
        let (Some(layout), Some(slot)) = (layout, slot) else {
            self.error(OTA, "Passive OTA partition not found");
            return Err(Stop::Failed(ESP_FAIL));
        };
        let line = if self.release.version.at_least(5, 4) {
            format!("Writing to <{}> partition at offset {:#x}", slot.name, slot.offset)
        } else {
            let subtype = 0x10 + u32::from(slot.ota.unwrap_or(0));
            format!("Writing to partition subtype {subtype} at offset {:#x}", slot.offset)
        };
        self.info(OTA, &line);
        Ok((layout, slot))
    }

    /// v3.1–v3.2: erase the partition, write whatever the body is (the status is never checked),
    /// verify at the end, then switch.
    pub(super) fn download_v3(&mut self, mut session: Session, head: Option<Head>) -> Step<()> {
        let (layout, slot) = self.update_partition()?;
        let mut writer = OtaWrite::begin(self.device.flash, &slot, true, self.device.power_cut);
        self.wait_ms(u64::from(slot.size) / 4096 * 25);
        self.info(OTA, "esp_ota_begin succeeded");
        self.info(OTA, "Please Wait. This may take time");
        let mut body = Body::new(head.as_ref());
        let mut write_failed = false;
        loop {
            match body.next(&mut session) {
                Chunk::Data(data) => {
                    self.uart.wait_us(data.len() as u64 * MICROS_PER_BYTE);
                    if let Err(error) = writer.write(self.device.flash, &data) {
                        if error == WriteError::PowerLost {
                            return Err(Stop::PowerLost);
                        }
                        if let WriteError::Magic(byte) = error {
                            self.error("esp_ota_ops", &invalid_magic(self.release.version, byte));
                        }
                        write_failed = true;
                        break;
                    }
                }
                Chunk::End | Chunk::Cut(Cut::Closed | Cut::Eof) => {
                    // esp-tls reads 0 for a close_notify and for a FIN alike.
                    self.info(OTA, "Connection closed,all data received");
                    break;
                }
                Chunk::Cut(Cut::Timeout) => {
                    // The transport's poll timed out: `esp_http_client_read` returns the 0 bytes
                    // it read, which `esp_https_ota` takes for the end of the data.
                    self.wait_ms(SOCKET_TIMEOUT_MS);
                    self.info(OTA, "Connection closed,all data received");
                    break;
                }
                Chunk::Cut(Cut::Failed(code)) => {
                    // esp_http_client_read returns what it has; the end of data follows.
                    self.error("esp-tls", &format!("read error :{code}:"));
                    self.error("TRANS_SSL", &format!("esp_tls_conn_read error, errno={}", errno_of(code).1));
                    self.info(OTA, "Connection closed,all data received");
                    break;
                }
            }
        }
        drop(session);
        let end_error = if writer.written == 0 {
            Some(ERR_INVALID_ARG)
        } else {
            self.verify(&slot).is_none().then_some(ERR_OTA_VALIDATE_FAILED)
        };
        if write_failed {
            // Sic: v3.1–v3.3.0 print the result of opening the connection (0), not the write's.
            self.error(OTA, "Error: esp_ota_write failed! err=0x0");
            return Err(Stop::Failed(ERR_OTA_VALIDATE_FAILED));
        }
        if let Some(error) = end_error {
            let line = format!("Error: esp_ota_end failed! err={}. Image is invalid", self.release.err_code(error));
            self.error(OTA, &line);
            return Err(Stop::Failed(error));
        }
        self.set_boot_partition(&layout, &slot)?;
        self.info(OTA, "esp_ota_set_boot_partition succeeded");
        Ok(())
    }

    /// v3.3 and later (`esp_https_ota_begin`/`perform`/`finish`): the header read first where
    /// the release does (the chip checked), the data written as it comes, verified, switched.
    pub(super) fn download(&mut self, mut session: Session, head: Head) -> Step<()> {
        let v = self.release.version;
        let (layout, slot) = self.update_partition()?;
        if self.device.profile.rollback.value && ota_ops::running_app_on_trial(self.device.flash, self.device.running) {
            // esp_ota_begin with rollback enabled refuses while the running app is unconfirmed.
            self.error("esp_ota_ops", "Running app has not confirmed state (ESP_OTA_IMG_PENDING_VERIFY)");
            self.error(OTA, "esp_ota_begin failed (ESP_ERR_OTA_ROLLBACK_INVALID_STATE)");
            return Err(Stop::Failed(0x1506));
        }
        // To v4.2 `esp_ota_begin(OTA_SIZE_UNKNOWN)` erases the whole partition first.
        let erase_all = !v.at_least(4, 3);
        let mut writer = OtaWrite::begin(self.device.flash, &slot, erase_all, self.device.power_cut);
        if erase_all {
            self.wait_ms(u64::from(slot.size) / 4096 * 25);
        }
        let mut body = Body::new(Some(&head));
        let mut ended = false;
        if reads_header(v) {
            let (header, complete) = self.read_header(&mut body, &mut session)?;
            ended = complete;
            self.write(&mut writer, &header)?;
        }
        while !ended {
            let cut = match body.next(&mut session) {
                Chunk::Data(data) => {
                    self.write(&mut writer, &data)?;
                    continue;
                }
                Chunk::End => {
                    ended = true;
                    continue;
                }
                Chunk::Cut(Cut::Timeout) => {
                    self.wait_ms(SOCKET_TIMEOUT_MS);
                    // Nothing came within the client's timeout: `perform` asks again (or, in the
                    // releases that take 0 bytes for the end, ends the image there).
                    ended = !waits_out_silence(v);
                    continue;
                }
                Chunk::Cut(cut) => cut,
            };
            match self.read_cut(cut) {
                // The client says the data ended: `perform` takes it as the end of the image.
                HttpRead::Empty { .. } => ended = true,
                HttpRead::Failed { errno } => {
                    if says_data_read(v) {
                        self.error(OTA, &format!("data read -1, errno {errno}"));
                    }
                    return Err(Stop::Failed(ESP_FAIL));
                }
            }
        }
        self.closed();
        drop(session);
        if writer.written == 0 || self.verify(&slot).is_none() {
            return Err(Stop::Failed(ERR_OTA_VALIDATE_FAILED));
        }
        self.set_boot_partition(&layout, &slot)
    }

    /// `read_header` and the chip check of `esp_https_ota_perform`'s first call: the image
    /// header's worth of bytes (289, 1024 from v5.0), and whether the body ended with them.
    fn read_header(&mut self, body: &mut Body, session: &mut Session) -> Step<(Vec<u8>, bool)> {
        let header_size = if self.release.version.at_least(5, 0) { 1024 } else { 289 };
        let mut header = Vec::new();
        let mut ended = false;
        while header.len() < header_size {
            let cut = match body.next(session) {
                Chunk::Data(data) => {
                    header.extend_from_slice(&data);
                    continue;
                }
                Chunk::End => {
                    ended = true;
                    break;
                }
                Chunk::Cut(Cut::Timeout) => {
                    // `read_header` reads again: 0 bytes (to v4.4) or ESP_ERR_HTTP_EAGAIN (v5).
                    self.wait_ms(SOCKET_TIMEOUT_MS);
                    continue;
                }
                Chunk::Cut(cut) => cut,
            };
            // Every release that reads the header reads through a client that fails.
            let errno = match self.read_cut(cut) {
                HttpRead::Failed { errno } | HttpRead::Empty { errno } => errno,
            };
            self.error(OTA, &format!("Connection closed, errno = {errno}"));
            break;
        }
        if header.len() < header_size {
            self.error(OTA, "Complete headers were not received");
            return Err(Stop::Failed(ESP_FAIL));
        }
        let chip_id = u16::from_le_bytes([header.get(12).copied().unwrap_or(0), header.get(13).copied().unwrap_or(0)]);
        if chip_id != 0 {
            self.error(OTA, &format!("Mismatch chip id, expected 0, found {chip_id}"));
            return Err(Stop::Failed(ERR_INVALID_VERSION));
        }
        Ok((header, ended))
    }

    /// The end of the body as `perform` reports it: at INFO from v3.3.2 to v4.3 (`Connection
    /// closed, all data received` in v3.3.0, v3.3.1 and v4.0.0), at DEBUG from v4.4.
    fn closed(&mut self) {
        let v = self.release.version;
        let early = [IdfVersion::new(3, 3, 0), IdfVersion::new(3, 3, 1), IdfVersion::new(4, 0, 0)];
        if early.contains(&v) {
            self.info(OTA, "Connection closed, all data received");
        } else if !v.at_least(4, 4) {
            self.info(OTA, "Connection closed");
        }
    }

    /// The body stopped before its end: what esp-tls, the transport and `esp_http_client_read`
    /// print on the way up, and what the client returns (`esp_tls_mbedtls.c`'s
    /// `esp_mbedtls_read`, `transport_ssl.c`'s `ssl_read`, `esp_http_client.c`'s
    /// `esp_http_client_read`, at each release). A close_notify and a FIN are a clean 0 for
    /// esp-tls (`mbedtls_ssl_read` returns 0 on `MBEDTLS_ERR_SSL_CONN_EOF`), which the transport
    /// turns into -1 (`ERR_TCP_TRANSPORT_CONNECTION_CLOSED_BY_FIN` from v5.0); lwIP's `recv`
    /// leaves `ENOTCONN` after the FIN and nothing after the alert. An mbedTLS failure is
    /// printed and passed up with the socket's `errno`.
    fn read_cut(&mut self, cut: Cut) -> HttpRead {
        let release = self.release;
        let v = release.version;
        let (rlen, errno) = match cut {
            Cut::Closed => (-1, 0),
            Cut::Eof => (-1, ENOTCONN),
            // Handled where the body is read; as the early releases take it: no data, no errno.
            Cut::Timeout => return HttpRead::Empty { errno: 0 },
            Cut::Failed(code) => {
                let shown = if v.at_least(4, 4) { release.mbedtls_code(code) } else { code.to_string() };
                let tail = if v.at_least(5, 4) { "" } else { ":" };
                self.error(release.tls_tag(), &format!("read error :{shown}{tail}"));
                let (errno, text) = errno_of(code);
                self.error(release.transport_tag(), &format!("esp_tls_conn_read error, errno={text}"));
                (code, errno)
            }
        };
        if !fails_reads(v) {
            // v3.3.0, v3.3.1 and v4.0.0: `if (rlen <= 0) return ridx;`, silently.
            return HttpRead::Empty { errno };
        }
        if errno != 0 {
            self.warn("HTTP_CLIENT", &format!("esp_transport_read returned:{rlen} and errno:{errno} "));
        }
        if v.at_least(5, 0) && rlen != -1 {
            // `esp_transport_translate_error` of an mbedTLS code: none of the transport's own.
            self.error("HTTP_CLIENT", "transport_read: error - -1 | ESP_FAIL");
        }
        HttpRead::Failed { errno }
    }

    /// `_ota_write`: the data into the partition, or the line of the write's failure.
    fn write(&mut self, writer: &mut OtaWrite, data: &[u8]) -> Step<()> {
        self.uart.wait_us(data.len() as u64 * MICROS_PER_BYTE);
        let code = match writer.write(self.device.flash, data) {
            Ok(()) => return Ok(()),
            Err(WriteError::PowerLost) => return Err(Stop::PowerLost),
            Err(WriteError::Magic(byte)) => {
                self.error("esp_ota_ops", &invalid_magic(self.release.version, byte));
                ERR_OTA_VALIDATE_FAILED
            }
            Err(WriteError::Size) => ERR_INVALID_SIZE,
        };
        self.error(OTA, &format!("Error: esp_ota_write failed! err={}", self.release.err_code(code)));
        Err(Stop::Failed(code))
    }

    /// `esp_image_verify` of the written partition, with its lines.
    fn verify(&mut self, slot: &AppSlot) -> Option<()> {
        let verified = {
            let flash = self.device.flash.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            verify_app(flash.as_bytes(), slot.offset, slot.size, self.release.version, &mut self.uart).map(|_| ())
        };
        let bytes = self.uart.take();
        (self.emit)(&bytes);
        verified
    }

    /// `esp_ota_set_boot_partition`: verify again, then write otadata.
    fn set_boot_partition(&mut self, layout: &Layout, slot: &AppSlot) -> Step<()> {
        self.verify(slot).ok_or(Stop::Failed(ERR_OTA_VALIDATE_FAILED))?;
        let rollback = self.device.profile.rollback.value && self.release.version.at_least(3, 3);
        let cut = self.device.power_cut.and_then(PowerCut::otadata_bytes);
        if !ota_ops::set_boot_slot(self.device.flash, layout, slot, rollback, cut) {
            let line = format!("esp_ota_set_boot_partition failed! err={}", self.release.err_code(0x1502));
            self.error(OTA, &line);
            return Err(Stop::Failed(0x1502));
        }
        if cut.is_some() {
            // The power went in the otadata write, or right after it, before the restart.
            return Err(Stop::PowerLost);
        }
        Ok(())
    }
}

/// Whether `esp_https_ota_perform` reads the image header first: v4.3.3–v4.3.7 and v4.4.1 on
/// (v4.4.0 lost it).
fn reads_header(v: IdfVersion) -> bool {
    let ver = IdfVersion::new;
    (ver(4, 3, 3)..ver(4, 4, 0)).contains(&v) || v >= ver(4, 4, 1)
}

/// Whether `esp_http_client_read` returns `ESP_FAIL` when the transport fails before any data
/// of the call (from v3.3.2, except v4.0.0); before, it returns the 0 bytes it read.
fn fails_reads(v: IdfVersion) -> bool {
    let ver = IdfVersion::new;
    v >= ver(3, 3, 2) && v != ver(4, 0, 0)
}

/// Whether `esp_https_ota_perform` waits out a server that sends nothing within the client's
/// timeout: from v3.3.2 (but v4.0.0) to v4.4, `esp_http_client_read` returns 0 bytes with errno
/// 0 and `perform` returns `ESP_ERR_HTTPS_OTA_IN_PROGRESS` while the image is incomplete; from
/// v5.0 the transport's `ERR_TCP_TRANSPORT_CONNECTION_TIMEOUT` is `-ESP_ERR_HTTP_EAGAIN`, and
/// `perform` returns the same. `esp_https_ota()` calls `perform` again, silently (the lines say
/// so at DEBUG). Before, `perform` takes the 0 bytes for the end of the image.
fn waits_out_silence(v: IdfVersion) -> bool {
    fails_reads(v)
}

/// Whether `esp_https_ota_perform` prints `data read %d, errno %d` when the client fails:
/// v4.0.4, v4.1.3, v4.2.3, v4.3.2 and later patch releases of each (before, it returns
/// `ESP_FAIL` without a word).
fn says_data_read(v: IdfVersion) -> bool {
    let ver = IdfVersion::new;
    [ver(4, 0, 4)..ver(4, 1, 0), ver(4, 1, 3)..ver(4, 2, 0), ver(4, 2, 3)..ver(4, 3, 0)]
        .iter()
        .any(|range| range.contains(&v))
        || v >= ver(4, 3, 2)
}

/// `esp_ota_write`'s magic-byte refusal; the closing parenthesis is missing in v3.1–v3.1.6,
/// v3.2.0–v3.2.3 and v3.3.0.
fn invalid_magic(v: IdfVersion, byte: u8) -> String {
    let ver = IdfVersion::new;
    let unclosed = v < ver(3, 1, 7) || (ver(3, 2, 0)..ver(3, 2, 4)).contains(&v) || v == ver(3, 3, 0);
    let close = if unclosed { "" } else { ")" };
    format!("OTA image has invalid magic byte (expected 0xE9, saw 0x{byte:02x}{close}")
}

/// The socket's `errno` after mbedTLS failed to read with `code` (newlib's numbers and
/// `strerror` texts): a reset leaves ECONNRESET, a receive timeout EAGAIN.
fn errno_of(code: i32) -> (i32, &'static str) {
    match code {
        -0x50 => (104, "Connection reset by peer"),
        -0x4C => (11, "No more processes"),
        _ => (0, "Success"),
    }
}

/// newlib's `ENOTCONN`.
const ENOTCONN: i32 = 128;

/// How a body stopped before its end.
#[derive(Clone, Copy)]
enum Cut {
    /// The server's close_notify.
    Closed,
    /// The server's FIN without close_notify.
    Eof,
    /// mbedTLS failed to read (its code, e.g. -0x50 for a reset).
    Failed(i32),
    /// Nothing came within the client's timeout: the transport's `select()` before a read
    /// (`esp_transport_poll_read`) timed out, and nothing was read.
    Timeout,
}

/// What `esp_http_client_read` returned after a [`Cut`], with the `errno` it leaves.
enum HttpRead {
    /// 0 bytes: the caller sees the end of the data.
    Empty { errno: i32 },
    /// `ESP_FAIL`.
    Failed { errno: i32 },
}

/// One step of reading the body.
enum Chunk {
    Data(Vec<u8>),
    /// The announced length was reached, or the server closed a body of no announced length.
    End,
    /// The body stopped before its announced end.
    Cut(Cut),
}

/// The response body as `esp_http_client_read` delivers it: the bytes that came with the head,
/// then the stream, up to the announced length.
pub(super) struct Body {
    pending: Vec<u8>,
    remaining: Option<u64>,
}

impl Body {
    pub fn new(head: Option<&Head>) -> Body {
        match head {
            Some(head) => {
                let mut pending = head.body_start.clone();
                if let Some(len) = head.content_length {
                    pending.truncate(usize::try_from(len).unwrap_or(usize::MAX));
                }
                let remaining = head.content_length.map(|len| len.saturating_sub(pending.len() as u64));
                Body { pending, remaining }
            }
            None => Body { pending: Vec::new(), remaining: Some(0) },
        }
    }

    fn next(&mut self, session: &mut Session) -> Chunk {
        if !self.pending.is_empty() {
            return Chunk::Data(std::mem::take(&mut self.pending));
        }
        if self.remaining == Some(0) {
            return Chunk::End;
        }
        let open_ended = self.remaining.is_none();
        let ended = |cut: Cut| if open_ended { Chunk::End } else { Chunk::Cut(cut) };
        // The transport's `ssl_read` polls the socket for the client's timeout before reading
        // when esp-tls holds nothing decrypted (mbedTLS reads a record exactly, so nothing of the
        // next one is held either): a server that sends nothing that long is a timeout of the
        // poll, not a failed read.
        if session.bytes_available() == 0
            && let Some(cut) = silence(session)
        {
            return Chunk::Cut(cut);
        }
        let mut buf = vec![0u8; 4096];
        let want = self.remaining.map_or(buf.len(), |r| r.min(buf.len() as u64) as usize);
        match Io::recv(session, &mut buf[..want]) {
            Ok(0) => ended(Cut::Eof),
            Ok(n) => {
                if let Some(remaining) = &mut self.remaining {
                    *remaining = remaining.saturating_sub(n as u64);
                }
                buf.truncate(n);
                Chunk::Data(buf)
            }
            Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => ended(Cut::Closed),
            Err(e) => Chunk::Cut(Cut::Failed(e.to_int())),
        }
    }
}

/// Waits, as the transport's `select()` does, for the session's socket to have something to
/// read (data, or its end) within the socket's receive timeout: `None` when it has, a
/// [`Cut::Timeout`] when it has not. A socket that failed meanwhile (a reset) fails here as the
/// read would have (the pending error is reported once, to this wait).
fn silence(session: &Session) -> Option<Cut> {
    let socket = session.io()?;
    let mut probe = [0u8; 1];
    match socket.stream().peek(&mut probe) {
        Ok(_) => None,
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Some(Cut::Timeout),
        Err(e) => Some(Cut::Failed(EspSocket::recv_error(e.kind()).to_int())),
    }
}

/// The session as a byte stream for the HTTP head (errors become `io::Error`s).
pub(super) struct Tls<'s> {
    session: &'s mut Session,
}

impl<'s> Tls<'s> {
    pub fn new(session: &'s mut Session) -> Self {
        Tls { session }
    }
}

impl Read for Tls<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Io::recv(self.session, buf) {
            Ok(n) => Ok(n),
            Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => Ok(0),
            Err(e) => Err(io::Error::other(format!("mbedTLS {}", e.to_int()))),
        }
    }
}

impl Write for Tls<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Io::send(self.session, buf).map_err(|e| io::Error::other(format!("mbedTLS {}", e.to_int())))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_read_where_the_release_reads_it() {
        let v = IdfVersion::new;
        assert!(!reads_header(v(4, 3, 2)));
        assert!(reads_header(v(4, 3, 3)));
        assert!(!reads_header(v(4, 4, 0)));
        assert!(reads_header(v(4, 4, 1)));
        assert!(reads_header(v(5, 2, 5)));
    }

    #[test]
    fn the_client_fails_a_cut_read_from_v3_3_2_except_v4_0_0() {
        let v = IdfVersion::new;
        assert!(!fails_reads(v(3, 3, 1)));
        assert!(fails_reads(v(3, 3, 2)));
        assert!(!fails_reads(v(4, 0, 0)));
        assert!(fails_reads(v(4, 0, 1)));
        assert!(fails_reads(v(5, 4, 2)));
    }

    #[test]
    fn perform_says_data_read_from_each_branch_s_fix_on() {
        let v = IdfVersion::new;
        let said: Vec<bool> = [v(3, 3, 5), v(4, 0, 3), v(4, 0, 4), v(4, 1, 2), v(4, 1, 3), v(4, 2, 2), v(4, 2, 3)]
            .into_iter()
            .chain([v(4, 3, 0), v(4, 3, 1), v(4, 3, 2), v(4, 4, 0), v(6, 0, 0)])
            .map(says_data_read)
            .collect();
        let expected = [false, false, true, false, true, false, true, false, false, true, true, true];
        assert_eq!(said, expected);
    }

    #[test]
    fn the_magic_byte_line_lost_its_parenthesis_in_some_releases() {
        let v = IdfVersion::new;
        assert!(invalid_magic(v(3, 2, 0), 0x3c).ends_with("saw 0x3c"));
        assert!(invalid_magic(v(3, 2, 4), 0x3c).ends_with("saw 0x3c)"));
        assert!(invalid_magic(v(4, 4, 8), 0x3c).ends_with("saw 0x3c)"));
    }
}
