use super::*;

fn body(line: &str) -> Body<'_> {
    Record::parse(1, line).body
}

fn idf(line: &str) -> IdfLine<'_> {
    match body(line) {
        Body::Idf(idf) => idf,
        other => panic!("not an ESP-IDF line: {line:?} → {other:?}"),
    }
}

#[test]
fn esp_idf_lines_with_either_timestamp() {
    assert_eq!(
        body("E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700"),
        Body::Idf(IdfLine {
            level: Some(Level::Error),
            timestamp: Some(IdfTimestamp::Millis(7513)),
            tag: "esp-tls",
            message: "mbedtls_ssl_handshake returned -0x2700",
        })
    );
    let line = idf("I (12:00:01.250) boot: Loaded app from partition at offset 0x10000");
    assert_eq!(line.timestamp, Some(IdfTimestamp::Clock));
    assert_eq!(line.tag, "boot");
}

#[test]
fn idf_tag_is_everything_before_the_first_colon_space() {
    assert_eq!(idf("E (644754) OTA_UPDATE :::: Firmware Upgrades Failed").message, "Firmware Upgrades Failed");
}

#[test]
fn near_misses_are_text() {
    for line in ["", "I", "I (", "I (x) tag: m", "X (1) tag: m", "ets Jun  8 2016 00:22:57", "I (really) think so"] {
        assert!(matches!(body(line), Body::Text(_)), "{line:?}");
    }
}

#[test]
fn arduino_lines_old_and_new() {
    let new = "[  5123][E][ssl_client.cpp:37] _handle_error(): [start_ssl_client():273]: (-9984) X509 - Certificate verification failed";
    let Body::Arduino(line) = body(new) else { panic!("not arduino") };
    assert_eq!(line.millis, Some(5123));
    assert_eq!(line.level, Some(Level::Error));
    assert_eq!(line.file, "ssl_client.cpp");
    assert!(line.message.starts_with("[start_ssl_client():273]: (-9984)"));

    let old = "[E][ssl_client.cpp:33] _handle_error(): (-12288) X509 - A fatal error occurred";
    let Body::Arduino(line) = body(old) else { panic!("not arduino") };
    assert_eq!(line.millis, None);
    assert_eq!(line.message, "(-12288) X509 - A fatal error occurred");

    let cut = "][esp32FOTA.cpp:460] execOTA(): HTTP Error**";
    let record = Record::parse(1, cut);
    assert!(record.embedded);
    let Body::Arduino(line) = record.body else { panic!("not arduino") };
    assert_eq!((line.level, line.file, line.message), (None, "esp32FOTA.cpp", "HTTP Error"));
}

#[test]
fn esphome_native_and_wrapped_lines() {
    let native = "[23:45:15][E][nabu_media_player.pipeline:171]: Media reader encountered an error";
    assert!(matches!(body(native), Body::EspHome(EspHomeLine { tag: "nabu_media_player.pipeline", .. })));

    let device = "[D][esp-idf:000]: E (2819431) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x3000";
    assert_eq!(Record::parse(1, device).host, Some(HostPrefix::EspHome));
    let config = "[14:02:11][C][wifi:443]:   SSID: 'lab'";
    assert!(matches!(body(config), Body::EspHome(EspHomeLine { tag: "wifi", .. })));
    let wrapped = Record::parse(
        3,
        "[23:45:15][D][esp-idf:000][ann_read]: E (2819431) esp-tls-mbedtls: mbedtls_ssl_handshake returned -0x3000",
    );
    assert_eq!(wrapped.host, Some(HostPrefix::EspHome));
    assert!(matches!(wrapped.body, Body::Idf(IdfLine { tag: "esp-tls-mbedtls", .. })));
}

#[test]
fn pasted_lines_are_read_through_their_wrappers() {
    for pasted in [
        "> E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700",
        "    E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700",
        "**E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700**",
        "[1B][0;31mE (1) esp-tls: mbedtls_ssl_handshake returned -0x2700[1B][0m",
        "[08:27:20]E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700",
        "12:00:01.002 -> [0;31mE (1) esp-tls: mbedtls_ssl_handshake returned -0x2700[0m",
    ] {
        let record = Record::parse(1, pasted);
        assert!(record.pasted || record.host.is_some(), "{pasted}");
        assert_eq!(record.body, body("E (1) esp-tls: mbedtls_ssl_handshake returned -0x2700"), "{pasted}");
    }
}

#[test]
fn a_component_line_without_level_and_time() {
    let line = idf("esp_https_ota: Failed to open HTTP connection: ESP_ERR_HTTP_CONNECT");
    assert_eq!((line.level, line.timestamp, line.tag), (None, None, "esp_https_ota"));
    assert!(matches!(body("note: this is prose"), Body::Text(_)));
}

#[test]
fn a_record_inside_a_line() {
    let record = Record::parse(1, "<6>[  12.5] E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700");
    assert!(record.embedded);
    assert_eq!(record.body, body("E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700"));
    assert!(matches!(body("é (x) ü (7) tag: m"), Body::Text(_)));
}

#[test]
fn tagged_debug_lines() {
    assert_eq!(
        body("[httpUpdate] HTTP Code is (302)"),
        Body::Tagged(TaggedLine { tag: "httpUpdate", level: None, message: "HTTP Code is (302)" })
    );
    assert_eq!(
        body("[HTTP-Client][handleHeaderResponse] code: 400"),
        Body::Tagged(TaggedLine { tag: "HTTP-Client", level: None, message: "code: 400" })
    );
    let logger = "[12:12:44.340 ERROR @ ota.cpp:57] Update failed: RSA - The public key operation failed";
    let Body::Tagged(line) = body(logger) else { panic!("not a logger line") };
    assert_eq!(line.level, Some(Level::Error));
    assert!(line.message.starts_with("Update failed"));
    assert!(matches!(body("[note 1] see below"), Body::Text(_)));
}

#[test]
fn esphome_lines_copied_from_its_log_viewers() {
    for line in [
        "19:46:41 | [W] | [esphome.ota:362] | No data received for 90000 ms",
        "19:46:41\t[W]\t[esphome.ota:362]\tNo data received for 90000 ms",
    ] {
        assert_eq!(
            body(line),
            Body::EspHome(EspHomeLine {
                level: Level::Warn,
                tag: "esphome.ota",
                message: "No data received for 90000 ms"
            }),
            "{line:?}"
        );
    }
}
