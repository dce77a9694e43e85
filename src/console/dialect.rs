//! Which formats a log uses, and which ESP-IDF version printed it, guessed from the lines.
//!
//! Exact versions come from banners (`ESP-IDF v3.2 2nd stage bootloader`, `ESP-IDF: v4.4`);
//! otherwise from spellings that changed between versions (tags, hex case, a missing
//! parenthesis). A guess names the line it rests on.

use serde::Serialize;

use super::event::{EventKind, HexStyle};
use super::host::HostPrefix;
use super::record::{Body, IdfTimestamp, Record};

/// The logging formats seen in a log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Formats {
    pub(crate) esp_idf: bool,
    /// Arduino-ESP32 `log_x` lines or `[tag] message` debug lines.
    pub arduino: bool,
    /// ESPHome's own logger lines, or ESPHome's host prefix.
    pub esphome: bool,
    /// The ROM's reset or download-mode lines: the log covers a chip reset.
    pub rom: bool,
    pub(crate) monitor_timestamps: bool,
    /// Lines carried paste wrappers: Markdown quote marks, a code indent, bold markers,
    /// backticks, colour codes that lost their ESC byte.
    pub pasted: bool,
}

/// An ESP-IDF version (or range) and the line it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdfGuess {
    /// `v3.2`, or a range such as `v4.4 or later`.
    pub version: String,
    /// Whether the version was printed as such.
    pub exact: bool,
    /// Line number of the line it rests on.
    pub line: u64,
    /// What that line shows.
    pub basis: &'static str,
}

/// Collects [`Formats`] and an [`IdfGuess`] while a log streams past.
#[derive(Debug, Default)]
pub(crate) struct DialectTracker {
    formats: Formats,
    guess: Option<IdfGuess>,
}

impl DialectTracker {
    pub fn formats(&self) -> Formats {
        self.formats
    }

    pub(crate) fn idf_guess(&self) -> Option<&IdfGuess> {
        self.guess.as_ref()
    }

    /// Looks at one record and the event it produced.
    pub fn observe(&mut self, record: &Record<'_>, event: Option<&EventKind>) {
        if record.host == Some(HostPrefix::MonitorTimestamp) {
            self.formats.monitor_timestamps = true;
        }
        if record.pasted {
            self.formats.pasted = true;
        }
        match record.body {
            Body::Idf(line) => {
                self.formats.esp_idf = true;
                if line.timestamp == Some(IdfTimestamp::Clock) {
                    self.hint("v4.4 or later", record.number, "system-time timestamps");
                }
                self.tag_hint(line.tag, line.message, record.number);
            }
            Body::Arduino(_) | Body::Tagged(_) => self.formats.arduino = true,
            Body::EspHome(_) => self.formats.esphome = true,
            Body::Text(_) => {}
        }
        if record.host == Some(HostPrefix::EspHome) {
            self.formats.esphome = true;
        }
        match event {
            Some(EventKind::Reset { .. } | EventKind::DownloadMode) => self.formats.rom = true,
            Some(EventKind::BootloaderStarted { idf }) => {
                self.exact(idf, record.number, "bootloader banner");
            }
            Some(EventKind::AppIdf { version }) => self.exact(version, record.number, "application banner"),
            Some(EventKind::ImageMagic { .. }) if !record.text.ends_with(')') => {
                self.hint("v3.x", record.number, "invalid-magic line without its closing parenthesis");
            }
            _ => {}
        }
    }

    fn tag_hint(&mut self, tag: &str, message: &str, line: u64) {
        match tag {
            "esp-tls" | "esp-tls-mbedtls" => {
                if let Some(code) = message.strip_prefix("mbedtls_ssl_handshake returned -0x") {
                    match (tag, HexStyle::of(code.trim())) {
                        ("esp-tls", _) => self.hint("v3.x to v4.0", line, "handshake error tagged esp-tls"),
                        (_, HexStyle::Lower) => {
                            self.hint("v4.1 to v4.3", line, "handshake error in unpadded lowercase hex");
                        }
                        (_, HexStyle::Upper) => {
                            self.hint("v4.4 or later", line, "handshake error in padded uppercase hex");
                        }
                        (_, HexStyle::Either) => {}
                    }
                }
            }
            "TRANS_SSL" => self.hint("v4.3 or earlier", line, "transport tag TRANS_SSL"),
            "TRANSPORT_BASE" => self.hint("v4.4", line, "transport tag TRANSPORT_BASE"),
            "transport_base" => self.hint("v5.x", line, "transport tag transport_base"),
            "app_init" => self.hint("v5.4 or later", line, "start-up tag app_init"),
            "esp_https_ota" if message.starts_with("Writing to <") => {
                self.hint("v5.4 or later", line, "partition written to by label");
            }
            "esp-x509-crt-bundle" if message == "No matching trusted root certificate found" => {
                self.hint("v5.4 or later", line, "certificate bundle's no-match line");
            }
            _ => {}
        }
    }

    fn exact(&mut self, version: &str, line: u64, basis: &'static str) {
        if self.guess.as_ref().is_some_and(|g| g.exact && g.version == version) {
            return;
        }
        self.guess = Some(IdfGuess { version: version.to_owned(), exact: true, line, basis });
    }

    /// A format hint never overrides a printed version, nor a narrower hint.
    fn hint(&mut self, version: &'static str, line: u64, basis: &'static str) {
        match &self.guess {
            Some(guess) if guess.exact || narrowness(&guess.version) >= narrowness(version) => {}
            _ => self.guess = Some(IdfGuess { version: version.to_owned(), exact: false, line, basis }),
        }
    }
}

/// How narrow a version range is: open-ended ranges say less than a series or a span.
fn narrowness(version: &str) -> u8 {
    if version.ends_with("or later") || version.ends_with("or earlier") {
        1
    } else if version.ends_with(".x") {
        2
    } else {
        3
    }
}
