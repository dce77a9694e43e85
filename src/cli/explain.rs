//! Plain words for an outcome: what it means on an ESP32 and what usually fixes it.

use otarig::outcome::{Outcome, OutcomeClass as C, VerifyReason as R};
use otarig::verdict::AttemptReport;

pub struct Explanation {
    pub meaning: &'static str,
    pub fix: Option<&'static str>,
}

const fn says(meaning: &'static str, fix: &'static str) -> Explanation {
    Explanation { meaning, fix: Some(fix) }
}

pub fn explain(outcome: Outcome, attempt: Option<&AttemptReport>) -> Explanation {
    match outcome.outcome {
        C::Updated => UPDATED,
        C::RolledBack => ROLLED_BACK,
        C::TlsVerify => rejected_chain(outcome.reason, attempt.is_some_and(|a| a.certificate_bundle)),
        C::TlsCrypto => TLS_CRYPTO,
        C::TlsAlert => TLS_ALERT,
        C::TlsProtocol => TLS_PROTOCOL,
        C::OutOfMemory => OUT_OF_MEMORY,
        C::Network => NETWORK,
        C::HttpStatus => HTTP_STATUS,
        C::ImageInvalid => IMAGE_INVALID,
        C::Crashed => CRASHED,
        C::Timeout => TIMEOUT,
        C::Incomplete => INCOMPLETE,
        C::Unknown => UNKNOWN,
    }
}

/// Why the device rejected the chain, by the reason its log gave; `bundle`: it verifies with
/// ESP-IDF's certificate bundle.
fn rejected_chain(reason: Option<R>, bundle: bool) -> Explanation {
    match reason {
        Some(R::Untrusted) if bundle => UNTRUSTED_BY_BUNDLE,
        Some(R::Untrusted) => UNTRUSTED,
        Some(R::Expired) => EXPIRED,
        Some(R::NotYetValid) => NOT_YET_VALID,
        Some(R::Hostname) => HOSTNAME,
        Some(R::WeakHash) => WEAK_HASH,
        Some(R::WeakKey) => WEAK_KEY,
        Some(R::KeyUsage) => KEY_USAGE,
        _ => REJECTED_WITHOUT_REASON,
    }
}

const UPDATED: Explanation = Explanation {
    meaning: "the new image was written, the device restarted, the bootloader loaded the \
              written partition and the new image started.",
    fix: None,
};

const ROLLED_BACK: Explanation = says(
    "the new image started, then the device went back to the previous image (the new \
     one marked itself invalid, or restarted before confirming itself).",
    "read the new image's own start-up lines before the rollback; it must call \
     esp_ota_mark_app_valid_cancel_rollback() once it is healthy.",
);

const UNTRUSTED_BY_BUNDLE: Explanation = says(
    "the certificate bundle found no trusted root for the chain the server sent. The \
     bundle looks up the issuer name of the top certificate the server sends, so a \
     chain that ends in a cross-sign whose issuer is not in the bundle fails even when \
     the bundle holds the root itself.",
    "serve a chain whose top certificate is issued by a root in the firmware's bundle \
     (often: stop sending the cross-signed root), or ship firmware with a newer bundle.",
);

const UNTRUSTED: Explanation = says(
    "the device rejected the server's chain: no certificate in it is signed by a root \
     compiled into the firmware. The chain must reach the firmware's own root, not the \
     root a browser would use.",
    "serve a chain that ends at the firmware's root, e.g. for firmware that trusts only \
     DST Root CA X3: leaf <- intermediate <- ISRG Root X1 cross-signed by DST Root CA \
     X3. ESP-IDF does not check certificate dates by default, so an expired cross-sign \
     still verifies. Then ship firmware that trusts more than one root.",
);

const EXPIRED: Explanation = says(
    "a certificate in the chain is past its validity. ESP-IDF checks dates only when the \
     firmware enables MBEDTLS_HAVE_TIME_DATE and its clock is set.",
    "renew the expired certificate, or serve a chain that avoids the expired one.",
);

const NOT_YET_VALID: Explanation = says(
    "a certificate is not valid yet by the device's clock. With date checks enabled and \
     the clock not set (1970), every certificate is 'in the future'.",
    "set the clock (SNTP) before updating, or check that the certificate's start date \
     has passed.",
);

const HOSTNAME: Explanation = says(
    "the server's certificate does not name the host the device connected to (CN/SAN \
     mismatch). ESP-IDF checks the name unless skip_cert_common_name_check is set.",
    "put the device's OTA host name in the certificate's subjectAltName.",
);

const WEAK_HASH: Explanation = says(
    "a certificate is signed with a hash mbedTLS's default profile refuses (SHA-1 or MD5).",
    "re-issue the certificate with SHA-256 or better.",
);

const WEAK_KEY: Explanation = says(
    "a certificate's key is refused by mbedTLS's profile (RSA shorter than 2048 bits, an \
     unsupported curve or algorithm).",
    "re-issue with RSA >= 2048 bits or a P-256/P-384 key.",
);

const KEY_USAGE: Explanation = says(
    "a certificate's key usage or extended key usage does not allow this use.",
    "issue the server certificate with keyUsage digitalSignature and extendedKeyUsage \
     serverAuth.",
);

const REJECTED_WITHOUT_REASON: Explanation = says(
    "the device rejected the server's certificate chain, but the log does not say why: \
     ESP-IDF v4.4 and later print the reason only at DEBUG log level.",
    "replay a log taken with CONFIG_LOG_DEFAULT_LEVEL_DEBUG, or run the chain through \
     otarig's scenarios against this firmware.",
);

const TLS_CRYPTO: Explanation = says(
    "client and server share no usable cipher suite, curve or signature scheme.",
    "offer TLS 1.2 with an ECDHE-RSA/ECDSA AES-GCM suite and a P-256 or RSA-2048 key.",
);

const TLS_ALERT: Explanation = says(
    "the server ended the handshake with a fatal alert (it refused something the device \
     sent: protocol version, cipher suites, SNI, or a client certificate).",
    "read the server's log for the alert it sent.",
);

const TLS_PROTOCOL: Explanation = says(
    "the peer did not speak TLS as expected: an invalid record or an unexpected message. \
     Often the port serves plain HTTP, or a record is larger than the device's input \
     buffer (MBEDTLS_SSL_IN_CONTENT_LEN). 'Certificate verified.' in such logs is \
     printed before any certificate was seen and means nothing.",
    "check that the URL's port speaks TLS, and that the server does not send records \
     larger than the device accepts (max_fragment_length).",
);

const OUT_OF_MEMORY: Explanation = says(
    "an allocation failed while setting up TLS or downloading; TLS needs tens of KiB of \
     heap at once (more with Bluetooth enabled).",
    "free heap before updating (stop BLE, shrink buffers), or enable \
     MBEDTLS_DYNAMIC_BUFFER / asymmetric in/out buffers.",
);

const NETWORK: Explanation = says(
    "the connection failed below TLS: DNS, TCP connect, reset, EOF or timeout.",
    "check that the device can reach the host and port, and that nothing between cuts \
     long transfers.",
);

const HTTP_STATUS: Explanation = says(
    "the server answered with a status the client refused (404, 403, 5xx, a failed \
     redirect).",
    "check the image URL on the server.",
);

const IMAGE_INVALID: Explanation = says(
    "the downloaded bytes are not a valid image for this device. A first byte of 0x3c \
     ('<') is an HTML page (an error page or redirect body: ESP-IDF v3.2 never checks \
     the HTTP status and writes it to flash).",
    "serve the raw .bin built for this chip, no larger than the OTA partition.",
);

const CRASHED: Explanation = says(
    "the device panicked, hit a watchdog or a brownout.",
    "decode the backtrace (idf.py monitor or xtensa-esp32-elf-addr2line) and check the \
     power supply during flash writes.",
);

const TIMEOUT: Explanation = says("nothing decisive happened within the time limit.", "look at the transcript.");

const INCOMPLETE: Explanation = Explanation {
    meaning: "the log ends before the outcome is known.",
    fix: Some("capture the log until the device has restarted into the new image or printed its failure."),
};

const UNKNOWN: Explanation = Explanation {
    meaning: "the log says something failed but not what.",
    fix: Some("capture the log from the start of the update, at INFO level or more."),
};
