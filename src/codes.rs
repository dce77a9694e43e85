//! Names of the error codes an ESP32 prints during an update: mbedTLS (negative) and
//! `esp_err_t` (positive). Values from mbedTLS 2.28 / 3.6 headers and ESP-IDF's
//! `esp_err_to_name.c`.

/// The mbedTLS name of an error code (negative, as printed: `-0x2700`, `-9984`).
pub fn mbedtls_name(code: i32) -> Option<&'static str> {
    Some(match code {
        -0x0010 => "MBEDTLS_ERR_MPI_ALLOC_FAILED",
        -0x0044 => "MBEDTLS_ERR_NET_CONNECT_FAILED",
        -0x0045 => "MBEDTLS_ERR_NET_INVALID_CONTEXT",
        -0x004C => "MBEDTLS_ERR_NET_RECV_FAILED",
        -0x004E => "MBEDTLS_ERR_NET_SEND_FAILED",
        -0x0050 => "MBEDTLS_ERR_NET_CONN_RESET",
        -0x0052 => "MBEDTLS_ERR_NET_UNKNOWN_HOST",
        -0x1080 => "MBEDTLS_ERR_PEM_NO_HEADER_FOOTER_PRESENT",
        -0x2180 => "MBEDTLS_ERR_X509_INVALID_FORMAT",
        -0x2700 => "MBEDTLS_ERR_X509_CERT_VERIFY_FAILED",
        -0x2880 => "MBEDTLS_ERR_X509_ALLOC_FAILED",
        -0x3000 => "MBEDTLS_ERR_X509_FATAL_ERROR",
        -0x3A00 => "MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE",
        -0x3F80 => "MBEDTLS_ERR_PK_ALLOC_FAILED",
        -0x6800 => "MBEDTLS_ERR_SSL_TIMEOUT",
        -0x6880 => "MBEDTLS_ERR_SSL_WANT_WRITE",
        -0x6900 => "MBEDTLS_ERR_SSL_WANT_READ",
        -0x6980 => "MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE",
        -0x6E00 => "MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE",
        -0x6E80 => "MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION",
        -0x7200 => "MBEDTLS_ERR_SSL_INVALID_RECORD",
        -0x7280 => "MBEDTLS_ERR_SSL_CONN_EOF",
        -0x7300 => "MBEDTLS_ERR_SSL_DECODE_ERROR",
        -0x7380 => "MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN",
        -0x7680 => "MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED",
        -0x7700 => "MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE",
        -0x7780 => "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE",
        -0x7880 => "MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY",
        -0x7980 => "MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO",
        -0x7A00 => "MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE",
        -0x7F00 => "MBEDTLS_ERR_SSL_ALLOC_FAILED",
        _ => return None,
    })
}

/// The ESP-IDF name of an `esp_err_t` value.
pub fn esp_err_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "ESP_OK",
        0xFFFF_FFFF => "ESP_FAIL",
        0x101 => "ESP_ERR_NO_MEM",
        0x102 => "ESP_ERR_INVALID_ARG",
        0x103 => "ESP_ERR_INVALID_STATE",
        0x104 => "ESP_ERR_INVALID_SIZE",
        0x105 => "ESP_ERR_NOT_FOUND",
        0x10a => "ESP_ERR_INVALID_VERSION",
        0x1501 => "ESP_ERR_OTA_PARTITION_CONFLICT",
        0x1502 => "ESP_ERR_OTA_SELECT_INFO_INVALID",
        0x1503 => "ESP_ERR_OTA_VALIDATE_FAILED",
        0x1504 => "ESP_ERR_OTA_SMALL_SEC_VER",
        0x1505 => "ESP_ERR_OTA_ROLLBACK_FAILED",
        0x1506 => "ESP_ERR_OTA_ROLLBACK_INVALID_STATE",
        0x2001 => "ESP_ERR_IMAGE_FLASH_FAIL",
        0x2002 => "ESP_ERR_IMAGE_INVALID",
        0x7001 => "ESP_ERR_HTTP_MAX_REDIRECT",
        0x7002 => "ESP_ERR_HTTP_CONNECT",
        0x7003 => "ESP_ERR_HTTP_WRITE_DATA",
        0x7004 => "ESP_ERR_HTTP_FETCH_HEADER",
        0x7005 => "ESP_ERR_HTTP_INVALID_TRANSPORT",
        0x7006 => "ESP_ERR_HTTP_CONNECTING",
        0x7007 => "ESP_ERR_HTTP_EAGAIN",
        0x7008 => "ESP_ERR_HTTP_CONNECTION_CLOSED",
        0x9001 => "ESP_ERR_HTTPS_OTA_IN_PROGRESS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arduino_decimal_codes_name_the_same_errors() {
        assert_eq!(mbedtls_name(-9984), Some("MBEDTLS_ERR_X509_CERT_VERIFY_FAILED"));
        assert_eq!(mbedtls_name(-12288), Some("MBEDTLS_ERR_X509_FATAL_ERROR"));
        assert_eq!(mbedtls_name(-16256), Some("MBEDTLS_ERR_PK_ALLOC_FAILED"));
        assert_eq!(mbedtls_name(-1), None);
    }

    #[test]
    fn esp_err_names() {
        assert_eq!(esp_err_name(0x1503), Some("ESP_ERR_OTA_VALIDATE_FAILED"));
        assert_eq!(esp_err_name(0x7002), Some("ESP_ERR_HTTP_CONNECT"));
        assert_eq!(esp_err_name(0x4242), None);
    }
}
