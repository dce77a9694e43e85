//! Events: what a console line means for an update, independent of the format that printed it.

use serde::Serialize;

use crate::verify_flags::FlagText;

/// Something the device reported, with the line that said it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Line number in the input, counted from 1.
    pub line: u64,
    /// The line as printed, without terminal escape codes.
    pub text: String,
    /// What the line means.
    #[serde(flatten)]
    pub kind: EventKind,
    /// Whether a recognised format said it, or it was found in free text.
    pub source: Source,
}

/// Where an event's line stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A line in a recognised log format, or a message a known program prints, read from its
    /// start: it decides.
    Format,
    /// An error named in free text, outside any recognised format (a bare `MBEDTLS_ERR_*`
    /// line, a known message after an unknown prefix). It decides only an attempt that no
    /// line of a recognised format decides, and only when such facts agree.
    FreeText,
}

/// The meaning of one console line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    // --- start-up -------------------------------------------------------------------------
    /// The ROM's `rst:0x.. (REASON),boot:0x..` line: the chip has just reset.
    Reset {
        /// The reset cause's number after `rst:` (or the ESP8266's `rst cause:`).
        code: u32,
        /// The cause's name in the parenthesis (`POWERON_RESET`, `SW_CPU_RESET`), as printed.
        reason: String,
    },
    /// The ROM waits in its serial loader (`waiting for download`).
    DownloadMode,
    /// The ROM jumps to the 2nd-stage bootloader (`entry 0x...`).
    RomEntry,
    /// `boot: ESP-IDF vX 2nd stage bootloader`.
    BootloaderStarted {
        /// The ESP-IDF version the banner names (`v4.4.6`).
        idf: String,
    },
    /// A row of the partition table the bootloader prints.
    PartitionRow {
        /// The partition's label (`factory`, `ota_0`).
        label: String,
        /// Where the partition starts in flash, in bytes.
        offset: u32,
    },
    /// `boot: Loaded app from partition at offset 0x..`.
    AppLoaded {
        /// Flash offset of the partition the app was loaded from, in bytes.
        offset: u32,
    },
    /// The bootloader refused an app slot (`OTA app partition slot N is not bootable`).
    SlotNotBootable,
    /// The application's start-up code is running.
    AppStarted,
    /// `App version:` in the start-up banner (v3.3 and later).
    AppVersion {
        /// The application's own version string, as printed (`PROJECT_VER`).
        version: String,
    },
    /// `ESP-IDF:` in the start-up banner.
    AppIdf {
        /// The ESP-IDF version the application was built with (`v5.1.2`).
        version: String,
    },
    /// MicroPython's banner (`MicroPython v1.13 on 2020-09-11; ESP module with ESP8266`);
    /// `axtls` when the port's `ssl` module is axTLS (ESP8266).
    MicropythonStarted {
        /// The banner names an ESP8266 board, whose `ssl` module is axTLS, not mbedTLS.
        axtls: bool,
    },
    /// `Rollback to previously worked partition. Restart.`
    RollbackRequested,
    /// The running image reports that the bootloader went back to it after an update (ESPHome's
    /// `OTA rollback detected! Rolled back from partition 'app1'`).
    RollbackReported,
    /// The ROM could not load the 2nd-stage bootloader (`flash read err, 1000`).
    BootFailed,

    // --- update progress ------------------------------------------------------------------
    /// The application announces an update check (example apps, Arduino sketches).
    UpdateCheck,
    /// `esp_https_ota: Starting OTA...`: connected, headers read.
    OtaStarted,
    /// Download progress (`OTA in progress: 16.6%`, `Progress: 0%`).
    OtaProgress,
    /// `Writing to partition subtype N at offset 0x..` / `Writing to <label> partition ...`.
    OtaWriting {
        /// Flash offset of the partition being written, in bytes, when the line gives it.
        offset: Option<u32>,
        /// The partition's label, when the line names it (v5.4 and later).
        label: Option<String>,
    },
    /// The download ended normally (v3.2 `Connection closed,all data received`).
    DownloadFinished,
    /// An `esp_image: segment N: ...` line: an image in flash is being verified.
    ImageSegment,
    /// v3.2 `esp_ota_set_boot_partition succeeded`.
    BootPartitionSet,
    /// The application says it will restart into the new image. Arduino-ESP32's bootloader
    /// prints nothing, so after its claim only the ROM's lines show the restart.
    UpdateSucceeded {
        /// The firmware's bootloader prints nothing (Arduino-ESP32), so no bootloader line
        /// will follow the restart.
        silent_bootloader: bool,
    },

    // --- TLS ------------------------------------------------------------------------------
    /// `mbedtls_ssl_handshake returned -0x..` (or Arduino's decimal form).
    HandshakeFailed {
        /// The mbedTLS error code, negative (`-0x2700` is -9984).
        code: i32,
    },
    /// An mbedTLS error code a failure line names without a known operation (`net_connect
    /// returned -0x0052`, MicroPython's `OSError: -29312`, a bare `MBEDTLS_ERR_*` line).
    TlsError {
        /// The mbedTLS error code, negative.
        code: i32,
    },
    /// MicroPython's `OSError: -40`: a number no mbedTLS build raises. On axTLS (the ESP8266
    /// port) a negative TLS alert number is the fatal alert the server sent.
    SslError {
        /// The number as printed, negative (`-40`).
        code: i32,
    },
    /// `mbedtls_ssl_setup returned -0x..`.
    TlsSetupFailed {
        /// The mbedTLS error code, negative.
        code: i32,
    },
    /// The firmware's own CA certificate did not parse.
    CaParseFailed {
        /// The mbedTLS error code the certificate parser returned, negative.
        code: i32,
    },
    /// `Failed to verify peer certificate!`
    PeerVerifyFailed,
    /// `Certificate verified.`: printed whenever no flag is set, also when the handshake died
    /// for another reason, so it proves nothing by itself.
    PeerVerified,
    /// `verification info: ...` and its continuation lines.
    VerifyInfo {
        /// The `BADCERT_*` reasons the line states, in printed order.
        reasons: Vec<FlagText>,
        /// A continuation line of the same report (the reasons after the first), not its
        /// `verification info:` line.
        continued: bool,
    },
    /// `esp-x509-crt-bundle: No matching trusted root certificate found`.
    BundleNoMatch,
    /// The bundle has the issuer's name but the signature did not verify.
    BundleBadSignature,
    /// `esp-x509-crt-bundle: Failed to verify certificate`.
    BundleRejected,
    /// `esp-x509-crt-bundle: Certificate validated`.
    BundleAccepted,

    // --- network and HTTP -----------------------------------------------------------------
    /// TCP connect failed (`Failed to connnect to host (errno N)`, `connect() error`).
    ConnectFailed {
        /// The socket `errno` (`113` is `EHOSTUNREACH`), when the line gives one.
        errno: Option<i32>,
    },
    /// DNS lookup failed.
    HostLookupFailed,
    /// Connect or read timed out below TLS.
    NetworkTimeout,
    /// A TLS read failed after the handshake (`read error :..:`).
    ReadFailed {
        /// The mbedTLS (or Arduino's decimal) error code the read returned, negative.
        code: i32,
    },
    /// The connection closed before the whole image arrived.
    DownloadCutShort,
    /// The client refused an HTTP status.
    HttpStatus {
        /// The HTTP status, when the line gives it (ESP-IDF's `Got a non 200 status code`
        /// does not).
        status: Option<u16>,
    },
    /// A follow-on line of a failed connection (`Failed to open new connection`,
    /// `Connection failed, sock < 0`, `Failed to establish HTTP connection`).
    ConnectionFailed,
    /// The transport's `esp_tls_conn_read error`: printed after every read error, and also for
    /// a read that only has to be tried again, so it decides nothing by itself.
    TransportReadError,

    // --- the image ------------------------------------------------------------------------
    /// `OTA image has invalid magic byte (expected 0xE9, saw 0x..` (Arduino's HTTPUpdate
    /// says only `Magic header does not start with 0xE9`).
    ImageMagic {
        /// The first byte the image had instead of `0xE9`, when the line gives it.
        saw: Option<u8>,
    },
    /// The image was built for another chip.
    ImageChipMismatch,
    /// `Complete headers were not received`: the response ended before an image header's
    /// worth of bytes (an error page served with status 200); after the connection's own
    /// failure line it is that failure's consequence.
    ImageHeaderShort,
    /// Image verification failed (checksum, hash, segment, size).
    ImageCorrupt,
    /// `esp_ota_write failed! err=0x..` (v3.2 always prints `err=0x0`).
    OtaWriteFailed {
        /// The `esp_err_t` the write returned, when its digits read as one (v3.2 prints it in
        /// decimal behind `0x`).
        err: Option<u32>,
    },
    /// `esp_ota_end failed!` / `esp_ota_set_boot_partition failed!`.
    OtaEndFailed,
    /// An allocation failed outside TLS (`Couldn't allocate memory to upgrade data buffer`).
    OutOfMemory,
    /// An `esp_err_t` a call returned (`esp_ota_begin failed (ESP_ERR_OTA_PARTITION_CONFLICT)`,
    /// `Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT`, `err=0x105`): after a failure it
    /// follows from it; alone it means what the README's table says.
    EspError {
        /// The `esp_err_t` value (`0x105` is `ESP_ERR_NOT_FOUND`); a name is read as its value.
        err: u32,
    },
    /// The application says the update failed without saying why.
    UpdateFailed,
    /// Arduino's HTTPUpdate error (`HTTP_UPDATE_FAILED Error (CODE): TEXT`, or `HTTP error:
    /// TEXT` with HTTPClient's code): a summary whose code says what failed, used when no line
    /// before it did.
    ArduinoUpdateError {
        /// HTTPUpdate's error code (`HTTP_UE_*`, negative), or HTTPClient's
        /// (`HTTPC_ERROR_*`) for `HTTP error:`.
        code: i32,
    },
    /// HTTPClient's `error(-1): connection refused` (and its examples' `[HTTPS] GET... failed,
    /// error: ...`): the code says what failed, used when no line before it did.
    HttpClientError {
        /// HTTPClient's error code (`HTTPC_ERROR_*`, negative: `-1` is connection refused).
        code: i32,
    },

    // --- crashes --------------------------------------------------------------------------
    /// `Guru Meditation Error: Core  N panic'ed (REASON)`.
    Panic {
        /// The exception in the parenthesis (`LoadProhibited`), or what the line reports.
        reason: String,
    },
    /// `abort() was called at PC ...`.
    Abort,
    /// `Brownout detector was triggered`.
    Brownout,
    /// `Task watchdog got triggered`.
    TaskWatchdog,
    /// `***ERROR*** A stack overflow in task ...`.
    StackOverflow,
    /// `CORRUPT HEAP: ...`.
    HeapCorrupt,
    /// `ESP_ERROR_CHECK failed: esp_err_t 0x.. (NAME) ...`.
    ErrorCheckFailed,
    /// The device reports that it kept resetting before its start-up finished (ESPHome's
    /// `Boot loop detected`).
    ResetLoop,
}

/// How the hex digits of a printed error code look; versions differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HexStyle {
    /// `-0x%x`: lowercase, no padding (ESP-IDF before v4.4's mbedTLS port rewrite).
    Lower,
    /// `-0x%04X`: uppercase, four digits (v4.4 and later).
    Upper,
    /// Digits only and four of them: both styles print it the same.
    Either,
}

impl HexStyle {
    pub(crate) fn of(digits: &str) -> Self {
        let lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if lower || (!upper && digits.len() < 4) {
            Self::Lower
        } else if upper || digits.starts_with('0') {
            Self::Upper
        } else {
            Self::Either
        }
    }
}
