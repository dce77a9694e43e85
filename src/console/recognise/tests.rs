use super::*;
use crate::console::record::Record;

fn check(line: &str) -> Option<EventKind> {
    Recogniser::new().recognise(&Record::parse(1, line)).map(|(kind, _)| kind)
}

fn source(line: &str) -> Option<Source> {
    Recogniser::new().recognise(&Record::parse(1, line)).map(|(_, source)| source)
}

#[test]
fn handshake_codes_in_every_printed_form() {
    for (line, code) in [
        ("E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700", -0x2700),
        ("E (1) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x0050", -0x50),
        ("E (1) esp-tls: mbedtls_ssl_handshake returned -0x50", -0x50),
        ("E (1) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x7F00", -0x7F00),
        ("E (6804) TRANS_SSL: mbedtls_ssl_handshake returned -0x2700", -0x2700),
        ("E (13597) ota: mbedtls_ssl_handshake returned -0x2700", -0x2700),
        ("esp-tls: mbedtls_ssl_handshake returned -0x2700", -0x2700),
        ("mbedtls_ssl_handshake returned -0x2700", -0x2700),
    ] {
        assert_eq!(check(line), Some(EventKind::HandshakeFailed { code }), "{line}");
        assert_eq!(source(line), Some(Source::Format), "{line}");
    }
}

#[test]
fn read_errors_in_decimal_and_hex() {
    assert_eq!(check("E (1) esp-tls: read error :-29312:"), Some(EventKind::ReadFailed { code: -0x7280 }));
    assert_eq!(check("E (1) esp-tls-mbedtls: read error :-0x7280:"), Some(EventKind::ReadFailed { code: -0x7280 }));
    assert_eq!(
        check("E (1) TRANS_SSL: esp_tls_conn_read error, errno=No more processes"),
        Some(EventKind::TransportReadError)
    );
    assert_eq!(check("W (1) HTTP_CLIENT: esp_transport_read returned:-26880 and errno:11 "), None);
}

#[test]
fn v32_magic_line_lacks_its_parenthesis() {
    let v32 = "E (644744) esp_ota_ops: OTA image has invalid magic byte (expected 0xE9, saw 0x3c";
    let v44 = "E (644744) esp_ota_ops: OTA image has invalid magic byte (expected 0xE9, saw 0x3c)";
    assert_eq!(check(v32), Some(EventKind::ImageMagic { saw: Some(0x3c) }));
    assert_eq!(check(v44), Some(EventKind::ImageMagic { saw: Some(0x3c) }));
}

#[test]
fn verify_info_continues_on_the_next_line() {
    let mut recogniser = Recogniser::new();
    let first = Record::parse(
        1,
        "I (1) esp-tls: verification info:   ! The certificate Common Name (CN) does not match with the expected CN",
    );
    let Some((EventKind::VerifyInfo { reasons, continued: false }, _)) = recogniser.recognise(&first) else {
        panic!("no verify info");
    };
    assert_eq!(reasons[0].flag, VerifyFlag::CnMismatch);
    let second = Record::parse(2, "  ! The certificate is not");
    let Some((EventKind::VerifyInfo { reasons, continued: true }, _)) = recogniser.recognise(&second) else {
        panic!("no continuation");
    };
    assert_eq!(reasons[0].flag, VerifyFlag::NotTrusted);
    assert!(reasons[0].truncated);
    // Without a verification info line before it, the same text means nothing.
    assert_eq!(check("  ! The certificate is not"), None);
}

#[test]
fn start_up_and_boot_lines() {
    assert_eq!(
        check("I (45) boot: Loaded app from partition at offset 0x110000"),
        Some(EventKind::AppLoaded { offset: 0x110000 })
    );
    assert_eq!(
        check("I (29) boot:  4 ota_0            OTA app          00 10 00110000 00100000"),
        Some(EventKind::PartitionRow { label: "ota_0".into(), offset: 0x110000 })
    );
    assert_eq!(
        check("rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"),
        Some(EventKind::Reset { code: 0xc, reason: "SW_CPU_RESET".into() })
    );
    assert_eq!(
        check(" ets Jan  8 2013,rst cause:4, boot mode:(3,6)"),
        Some(EventKind::Reset { code: 4, reason: "WDT_RESET".into() })
    );
    assert_eq!(
        check("Guru Meditation Error: Core  0 panic'ed (LoadProhibited). Exception was unhandled."),
        Some(EventKind::Panic { reason: "LoadProhibited".into() })
    );
    assert_eq!(
        check("Guru Meditation Error of type LoadProhibited occurred on core   0. Exception was unhandled."),
        Some(EventKind::Panic { reason: "LoadProhibited".into() })
    );
    assert_eq!(check("13:27:59.733 -> flash read err, 1000"), Some(EventKind::BootFailed));
}

#[test]
fn arduino_ssl_errors() {
    let line = "[  5123][E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: (-9984) X509 - Certificate verification failed, e.g. CRL, CA or signature check failed";
    assert_eq!(check(line), Some(EventKind::HandshakeFailed { code: -9984 }));
    let oom =
        "[E][ssl_client.cpp:33] _handle_error(): [start_ssl_client():199]: (-16256) PK - Memory allocation failed";
    assert_eq!(check(oom), Some(EventKind::TlsSetupFailed { code: -16256 }));
    let bare = "[ 25671][E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: code -9984";
    assert_eq!(check(bare), Some(EventKind::HandshakeFailed { code: -9984 }));
    let read = "[ 25671][E][ssl_client.cpp:37] _handle_error(): [data_to_read():361]: (-76) UNKNOWN ERROR CODE (004C)";
    assert_eq!(check(read), Some(EventKind::ReadFailed { code: -76 }));
    let core_103 = "[E][ssl_client.cpp:35] handle_error(): MbedTLS message code: -9984";
    assert_eq!(check(core_103), Some(EventKind::HandshakeFailed { code: -9984 }));
    let core_100_text = "[E][ssl_client.cpp:34] handle_error(): X509 - Certificate verification failed, e.g. CRL, CA or signature check failed";
    assert_eq!(check(core_100_text), Some(EventKind::HandshakeFailed { code: -9984 }));
    let bundle = "`[E][esp_crt_bundle.c:147] esp_crt_verify_callback(): Failed to verify certificate`";
    assert_eq!(check(bundle), Some(EventKind::BundleRejected));
}

#[test]
fn esp_err_names_after_any_call() {
    assert_eq!(
        check("[08:27:20]E (730418) esp_https_ota: esp_ota_begin failed (ESP_ERR_OTA_PARTITION_CONFLICT)"),
        Some(EventKind::EspError { err: 0x1501 })
    );
    assert_eq!(check("[E][ota.idf:064]: esp_ota_begin failed (err=0x105)"), Some(EventKind::EspError { err: 0x105 }));
    assert_eq!(check("E (730428) OTA: OTA Update failed"), Some(EventKind::UpdateFailed));
    assert_eq!(check("E (1) i2c: i2c_master_cmd_begin(1480): I2C bus is busy"), None);
}

#[test]
fn a_wrapped_error_line_ends_on_the_next() {
    let mut recogniser = Recogniser::new();
    let first = Record::parse(1, "E (730418) myapp: esp_ota_begin failed");
    assert_eq!(recogniser.recognise(&first).map(|r| r.0), Some(EventKind::UpdateFailed));
    let second = Record::parse(2, "(ESP_ERR_OTA_PARTITION_CONFLICT)");
    assert_eq!(recogniser.recognise(&second), Some((EventKind::EspError { err: 0x1501 }, Source::Format)));
    // The same text alone is a mention, not a report.
    assert_eq!(check("(ESP_ERR_OTA_PARTITION_CONFLICT)"), None);
}

#[test]
fn facts_in_free_text() {
    let bare = "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE -0x7780 (-30592)";
    assert_eq!(check(bare), Some(EventKind::TlsError { code: -0x7780 }));
    assert_eq!(source(bare), Some(Source::FreeText));
    for prose in [
        "Fixed: MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE (-0x7780) is now reported when the server closes",
        "ESP_ERR_HTTP_CONNECT",
        "ESP_ERR_HTTP_CONNECT, ESP_ERR_HTTP_FETCH_HEADER, ESP_ERR_HTTP_WRITE_DATA",
        "then I saw mbedtls_ssl_handshake returned -0x2700 again and again",
    ] {
        assert_eq!(check(prose), None, "{prose}");
    }
    let prefixed = "<6>app] mbedtls_ssl_handshake returned -0x2700";
    assert_eq!(source(prefixed), Some(Source::FreeText));
}

#[test]
fn esphome_safe_mode_and_ota() {
    assert_eq!(
        check("> [14:01:49.128][W][safe_mode:094]: OTA rollback detected! Rolled back from partition 'app1'"),
        Some(EventKind::RollbackReported)
    );
    assert_eq!(check("[D][ota:308]: OTA in progress: 16.6%"), Some(EventKind::OtaProgress));
    assert_eq!(
        check("[I][ota:341]: OTA update finished!"),
        Some(EventKind::UpdateSucceeded { silent_bootloader: false })
    );
    assert_eq!(
        check(
            "[21:38:12][E][ota_http:103]: Error code (131) writing binary data to flash at offset 4000 and size 1132272"
        ),
        Some(EventKind::UpdateFailed)
    );
}

#[test]
fn arduino_libraries_and_examples() {
    assert_eq!(
        check("HTTP_UPDATE_FAILD Error (-1): HTTP error: connection refused."),
        Some(EventKind::ArduinoUpdateError { code: -1 })
    );
    assert_eq!(
        check("Got a non 200 status code from server. Exiting OTA Update."),
        Some(EventKind::HttpStatus { status: None })
    );
    assert_eq!(check("[httpUpdate] HTTP Code is (302)"), Some(EventKind::HttpStatus { status: Some(302) }));
    assert_eq!(
        check("[httpUpdate] Update.end failed! (ERROR[10]: Magic byte is wrong, not 0xE9)"),
        Some(EventKind::ArduinoUpdateError { code: 8 })
    );
    assert_eq!(
        check("[W][HTTPClient.cpp:1469] returnError(): error(-1): connection refused"),
        Some(EventKind::HttpClientError { code: -1 })
    );
    assert_eq!(check("Error: SSL error 40"), Some(EventKind::HandshakeFailed { code: -0x7780 }));
}
