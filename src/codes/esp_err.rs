//! `esp_err_t` values an update can end with, named as ESP-IDF's `esp_err_to_name` names them
//! (`components/esp_common/src/esp_err_to_name.c`, v3.2 to v5.x).

/// `(value, name)`; `ESP_FAIL` (-1) is kept as `0xFFFF_FFFF`, the way it reads as a `u32`.
const TABLE: &[(u32, &str)] = &[
    (0, "ESP_OK"),
    (0xFFFF_FFFF, "ESP_FAIL"),
    (0x101, "ESP_ERR_NO_MEM"),
    (0x102, "ESP_ERR_INVALID_ARG"),
    (0x103, "ESP_ERR_INVALID_STATE"),
    (0x104, "ESP_ERR_INVALID_SIZE"),
    (0x105, "ESP_ERR_NOT_FOUND"),
    (0x106, "ESP_ERR_NOT_SUPPORTED"),
    (0x107, "ESP_ERR_TIMEOUT"),
    (0x108, "ESP_ERR_INVALID_RESPONSE"),
    (0x109, "ESP_ERR_INVALID_CRC"),
    (0x10a, "ESP_ERR_INVALID_VERSION"),
    (0x1501, "ESP_ERR_OTA_PARTITION_CONFLICT"),
    (0x1502, "ESP_ERR_OTA_SELECT_INFO_INVALID"),
    (0x1503, "ESP_ERR_OTA_VALIDATE_FAILED"),
    (0x1504, "ESP_ERR_OTA_SMALL_SEC_VER"),
    (0x1505, "ESP_ERR_OTA_ROLLBACK_FAILED"),
    (0x1506, "ESP_ERR_OTA_ROLLBACK_INVALID_STATE"),
    (0x2001, "ESP_ERR_IMAGE_FLASH_FAIL"),
    (0x2002, "ESP_ERR_IMAGE_INVALID"),
    (0x6001, "ESP_ERR_FLASH_OP_FAIL"),
    (0x6002, "ESP_ERR_FLASH_OP_TIMEOUT"),
    (0x7001, "ESP_ERR_HTTP_MAX_REDIRECT"),
    (0x7002, "ESP_ERR_HTTP_CONNECT"),
    (0x7003, "ESP_ERR_HTTP_WRITE_DATA"),
    (0x7004, "ESP_ERR_HTTP_FETCH_HEADER"),
    (0x7005, "ESP_ERR_HTTP_INVALID_TRANSPORT"),
    (0x7006, "ESP_ERR_HTTP_CONNECTING"),
    (0x7007, "ESP_ERR_HTTP_EAGAIN"),
    (0x7008, "ESP_ERR_HTTP_CONNECTION_CLOSED"),
    (0x8001, "ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME"),
    (0x8002, "ESP_ERR_ESP_TLS_CANNOT_CREATE_SOCKET"),
    (0x8003, "ESP_ERR_ESP_TLS_UNSUPPORTED_PROTOCOL_FAMILY"),
    (0x8004, "ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST"),
    (0x8005, "ESP_ERR_ESP_TLS_SOCKET_SETOPT_FAILED"),
    (0x8006, "ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT"),
    (0x8008, "ESP_ERR_ESP_TLS_TCP_CLOSED_FIN"),
    (0x8010, "ESP_ERR_MBEDTLS_CERT_PARTLY_OK"),
    (0x8011, "ESP_ERR_MBEDTLS_CTR_DRBG_SEED_FAILED"),
    (0x8012, "ESP_ERR_MBEDTLS_SSL_SET_HOSTNAME_FAILED"),
    (0x8013, "ESP_ERR_MBEDTLS_SSL_CONFIG_DEFAULTS_FAILED"),
    (0x8014, "ESP_ERR_MBEDTLS_SSL_CONF_ALPN_PROTOCOLS_FAILED"),
    (0x8015, "ESP_ERR_MBEDTLS_X509_CRT_PARSE_FAILED"),
    (0x8016, "ESP_ERR_MBEDTLS_SSL_CONF_OWN_CERT_FAILED"),
    (0x8017, "ESP_ERR_MBEDTLS_SSL_SETUP_FAILED"),
    (0x8018, "ESP_ERR_MBEDTLS_SSL_WRITE_FAILED"),
    (0x8019, "ESP_ERR_MBEDTLS_PK_PARSE_KEY_FAILED"),
    (0x801a, "ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED"),
    (0x801b, "ESP_ERR_MBEDTLS_SSL_CONF_PSK_FAILED"),
    (0x801c, "ESP_ERR_MBEDTLS_SSL_TICKET_SETUP_FAILED"),
    (0x9001, "ESP_ERR_HTTPS_OTA_IN_PROGRESS"),
    (0xe001, "ESP_ERR_TCP_TRANSPORT_CONNECTION_TIMEOUT"),
    (0xe002, "ESP_ERR_TCP_TRANSPORT_CONNECTION_CLOSED_BY_FIN"),
    (0xe003, "ESP_ERR_TCP_TRANSPORT_CONNECTION_FAILED"),
    (0xe004, "ESP_ERR_TCP_TRANSPORT_NO_MEM"),
];

/// The ESP-IDF name of an `esp_err_t` value.
pub fn esp_err_name(code: u32) -> Option<&'static str> {
    TABLE.iter().find(|(value, _)| *value == code).map(|(_, name)| *name)
}

/// The value an `esp_err_t` name stands for.
pub(crate) fn esp_err_by_name(name: &str) -> Option<u32> {
    TABLE.iter().find(|(_, n)| *n == name).map(|(value, _)| *value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_err_names() {
        assert_eq!(esp_err_name(0x1503), Some("ESP_ERR_OTA_VALIDATE_FAILED"));
        assert_eq!(esp_err_name(0x7002), Some("ESP_ERR_HTTP_CONNECT"));
        assert_eq!(esp_err_name(0x4242), None);
        assert_eq!(esp_err_by_name("ESP_FAIL"), Some(0xFFFF_FFFF));
        assert_eq!(esp_err_by_name("ESP_ERR_NOT_FOUND"), Some(0x105));
    }
}
