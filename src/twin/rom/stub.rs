//! The flasher stubs the twin recognises, and the stub's streamed READ_FLASH.
//!
//! The twin runs no Xtensa code. A flasher's stub is recognised by what was loaded: the SHA-256
//! of its text and data segments at their load addresses, and its entry point, as shipped in
//! esptool 5.6's `targets/stub_flasher/{1,2}/esp32.json` and espflash 4.7's
//! `resources/stubs/esp32.toml` (espflash 4.7 ships the same build as esptool's `2`). When
//! MEM_END starts one of these, the twin answers `OHAI` and speaks the stub's protocol from then
//! on; any other RAM program starts nothing (the caller warns).

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::RamSegment;

/// One stub build, by what its loader uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KnownStub {
    /// Where it comes from.
    pub name: &'static str,
    pub entry: u32,
    pub text_start: u32,
    pub text_sha256: [u8; 32],
    pub data_start: u32,
    pub data_sha256: [u8; 32],
}

/// Decodes a 64-digit hex constant at compile time.
const fn digest(hex: &str) -> [u8; 32] {
    let bytes = hex.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(bytes[2 * i]) << 4 | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

// Evaluated only at compile time, for the constants below: a bad literal fails the build and
// nothing panics at run time.
#[allow(clippy::panic)]
const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lowercase hex digit"),
    }
}

/// The ESP32 stubs of esptool 5.6 and espflash 4.7.
pub(crate) const KNOWN_STUBS: [KnownStub; 2] = [
    KnownStub {
        name: "esp-flasher-stub 1.4.1 (esptool 5.6 stub 2, espflash 4.7)",
        entry: 0x400A_902C,
        text_start: 0x400A_8000,
        text_sha256: digest("fc5fb606754d152b9b9e4f20c72fdad83d1d99b1b139744bc53cc160b1edd570"),
        data_start: 0x3FFD_ED6C,
        data_sha256: digest("580837cfef9d57b223a4d30cf634dad72f1fdcc19b499ca62b514b487a0c3438"),
    },
    KnownStub {
        name: "esptool legacy flasher stub 1.11.1 (esptool 5.6 stub 1)",
        entry: 0x400B_E658,
        text_start: 0x400B_E000,
        text_sha256: digest("b2dff40d626d2e83234ba17f79ab968cf5505cf989d15f9954ed477777eeddad"),
        data_start: 0x3FFD_EBAC,
        data_sha256: digest("67e2e29deda649edc6921f9c7149f2c18f0497b94828553ec743873aea219c73"),
    },
];

/// The known stub that `segments` hold and `entry` starts, if any.
pub(crate) fn recognise(segments: &[RamSegment], entry: u32) -> Option<&'static KnownStub> {
    let loaded = |addr: u32, sha: &[u8; 32]| {
        segments.iter().any(|segment| segment.addr == addr && Sha256::digest(&segment.data)[..] == sha[..])
    };
    KNOWN_STUBS.iter().find(|stub| {
        stub.entry == entry && loaded(stub.text_start, &stub.text_sha256) && loaded(stub.data_start, &stub.data_sha256)
    })
}

/// READ_FLASH under way: packets of `packet` bytes, at most `window` unacknowledged, then the
/// MD5 of the whole read.
#[derive(Debug, Clone)]
pub(crate) struct FlashRead {
    data: Vec<u8>,
    packet: usize,
    window: usize,
    sent: usize,
    acked: usize,
}

impl FlashRead {
    /// A read of `data` (already taken from the flash) in packets of `packet` bytes.
    pub(crate) fn new(data: Vec<u8>, packet: usize, window: usize) -> Self {
        Self { data, packet: packet.max(1), window: window.max(1), sent: 0, acked: 0 }
    }

    /// The packets that may go out now (the window not full).
    pub(crate) fn packets(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.sent < self.data.len() && (self.sent - self.acked.min(self.sent)) < self.window * self.packet {
            let end = (self.sent + self.packet).min(self.data.len());
            out.push(self.data[self.sent..end].to_vec());
            self.sent = end;
        }
        out
    }

    /// The client acknowledged `total` bytes. Returns what goes out next, and whether the read
    /// is over (its MD5 among what goes out).
    pub(crate) fn ack(&mut self, total: usize) -> (Vec<Vec<u8>>, bool) {
        self.acked = total.min(self.sent);
        let mut out = self.packets();
        if self.acked >= self.data.len() {
            out.push(Md5::digest(&self.data).to_vec());
            return (out, true);
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_streams_within_its_window_and_ends_with_the_md5() {
        let data: Vec<u8> = (0..10u8).collect();
        let mut read = FlashRead::new(data.clone(), 3, 2);
        assert_eq!(read.packets(), [vec![0, 1, 2], vec![3, 4, 5]]);
        assert_eq!(read.ack(3), (vec![vec![6, 7, 8]], false));
        assert_eq!(read.ack(6), (vec![vec![9]], false));
        let (last, done) = read.ack(10);
        assert!(done);
        assert_eq!(last, [Md5::digest(&data).to_vec()]);
    }

    /// The digests above are those of the stub files esptool 5.6 ships (from the virtual
    /// environment `ci/setup-host` makes); espflash 4.7's is checked by flashing with it.
    #[test]
    fn the_known_stubs_are_esptools_files() {
        use base64::Engine as _;
        let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/esptool-venv/lib");
        let python = std::fs::read_dir(&lib)
            .unwrap_or_else(|e| panic!("{}: {e}; run ci/setup-host", lib.display()))
            .map(|entry| entry.unwrap().path())
            .find(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("python3")))
            .expect("a python3.* folder");
        for (subdir, stub) in [("2", &KNOWN_STUBS[0]), ("1", &KNOWN_STUBS[1])] {
            let path = python.join("site-packages/esptool/targets/stub_flasher").join(subdir).join("esp32.json");
            let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let segment = |name: &str| {
                let text = json[name].as_str().unwrap();
                let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
                <[u8; 32]>::from(Sha256::digest(bytes))
            };
            assert_eq!(json["entry"], stub.entry, "{subdir}");
            assert_eq!(json["text_start"], stub.text_start, "{subdir}");
            assert_eq!(json["data_start"], stub.data_start, "{subdir}");
            assert_eq!(segment("text"), stub.text_sha256, "{subdir}");
            assert_eq!(segment("data"), stub.data_sha256, "{subdir}");
        }
    }

    #[test]
    fn only_the_whole_stub_is_recognised() {
        let stub = KNOWN_STUBS[0];
        let text = RamSegment { addr: stub.text_start, data: b"not the stub".to_vec() };
        assert_eq!(recognise(&[text], stub.entry), None);
        assert_eq!(recognise(&[], stub.entry), None);
    }
}
