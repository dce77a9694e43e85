//! Any bytes into the trust scanners (certificates, bundles, private keys) and the certificate
//! bundle parser: they must return, never panic or allocate from a count the input claims.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otarig::image::{BundleFormat, CertBundle, find_urls, scan_trust};

fuzz_target!(|data: &[u8]| {
    for format in [BundleFormat::BigEndianV44, BundleFormat::OffsetTableV54] {
        if let Ok((bundle, used)) = CertBundle::parse_as(data, format) {
            assert!(used <= data.len());
            // A parsed bundle encodes back to the bytes it came from.
            assert_eq!(CertBundle::encode_in_order(&bundle.entries, format), data[..used]);
        }
    }
    let scan = scan_trust(data);
    for item in scan.items {
        assert!(item.offset + item.len <= data.len());
    }
    for key in scan.private_keys {
        assert!(key.offset + key.len <= data.len());
    }
    let _ = find_urls(data);
});
