//! Entry points for the fuzz targets (`fuzz/`) and for the test that replays their corpora:
//! each takes any bytes, feeds them to one reader of outside input the way the rig does, and
//! checks what a result claims against the bytes it came from. They panic only when such a
//! claim is false; every other outcome (an error, nothing found) is a pass.
//!
//! One function per target, so the fuzzer and the test suite cannot drift apart.

use std::path::Path;
use std::sync::OnceLock;

use crate::console::Console;
use crate::image::{BundleFormat, CertBundle, find_trust, find_urls};
use crate::pki::LabPki;
use crate::toml_source::TomlSource;

/// Bytes a reader is given at once, where the rig reads in pieces: a prime, so that pieces do
/// not line up with the structures they cut.
const PIECE: usize = 97;

/// A fuzz target's entry point.
pub type Entry = fn(&[u8]);

/// Every fuzz target's name and entry point, in the order of `fuzz/Cargo.toml`.
pub const TARGETS: [(&str, Entry); 11] = [
    ("parse_app", app_image),
    ("find_trust", trust),
    ("rom_frames", rom_frames),
    ("console", console),
    ("partition_table", partition_table),
    ("scenario_toml", scenario_toml),
    ("manifest_toml", manifest_toml),
    ("lab_toml", lab_toml),
    ("http_request", http_request),
    ("control_line", control_line),
    ("rfc2217", rfc2217),
];

/// An app image and what tells files apart: `parse_app`, `identify`, the ESP8266 reader and the
/// bootloader's version.
pub fn app_image(data: &[u8]) {
    if let Ok(image) = crate::image::parse_app(data) {
        assert!(image.length + image.trailing == data.len());
        for segment in &image.segments {
            assert!(segment.data_range().end <= image.length);
        }
    }
    let _ = crate::image::identify::identify(data);
    if let Some(image) = crate::image::read_esp8266(data) {
        assert!(image.length <= data.len());
    }
    if let Some(version) = crate::image::bootloader_version(data) {
        assert!(version.offset + version.text.len() <= data.len());
    }
}

/// The trust scanners (certificates, bundles, private keys) and the bundle parser: a parsed
/// bundle encodes back to the bytes it came from.
pub fn trust(data: &[u8]) {
    for format in [BundleFormat::BigEndianV44, BundleFormat::OffsetTableV54] {
        if let Ok((bundle, used)) = CertBundle::parse_as(data, format) {
            assert!(used <= data.len());
            assert_eq!(CertBundle::encode_in_order(&bundle.entries, format), data[..used]);
        }
    }
    for item in find_trust(data) {
        assert!(item.offset + item.len <= data.len());
    }
    for key in crate::image::find_private_keys(data) {
        assert!(key.offset + key.len <= data.len());
    }
    let _ = find_urls(data);
}

/// The twin's serial line: the SLIP decoder and the ROM loader answer or ignore any bytes and
/// never write outside the flash.
pub fn rom_frames(data: &[u8]) {
    let mut decoder = crate::twin::slip::SlipDecoder::default();
    let mut loader = crate::twin::rom::RomLoader::default();
    let mut flash = crate::twin::flash::VirtualFlash::new(64 * 1024);
    for chunk in data.chunks(PIECE) {
        for frame in decoder.feed(chunk) {
            for reply in loader.handle(&frame, &mut flash) {
                assert!(reply.len() >= 8 && reply[0] == 0x01, "a response frame");
            }
        }
    }
    assert_eq!(flash.as_bytes().len(), 64 * 1024);
}

/// A device's output: the console in pieces and whole must see the same lines and give the
/// same verdict (no state depends on where a read ends).
pub fn console(data: &[u8]) {
    let mut pieces = Console::new();
    let mut judge = crate::verdict::Judge::new();
    for chunk in data.chunks(PIECE) {
        pieces.feed(chunk, |event| judge.observe(&event));
    }
    pieces.finish(|event| judge.observe(&event));
    let whole = crate::replay::replay_bytes(data);
    assert_eq!(pieces.lines(), whole.lines);
    assert_eq!(judge.finish(), whole.verdict);
}

/// A partition table region as the twin's bootloader and `inspect` read it.
pub fn partition_table(data: &[u8]) {
    if let Ok(table) = crate::image::partition::read_table(data) {
        for slot in crate::image::partition::app_slots(&table) {
            // The twin and the runner compute where a slot ends.
            assert!(slot.offset.checked_add(slot.size).is_some(), "{slot:?} ends past 4 GiB");
        }
        let _ = crate::image::partition::otadata_partition(&table);
    }
}

/// The lab authorities the TOML targets check against, read once.
fn lab_pki() -> Option<&'static LabPki> {
    static PKI: OnceLock<Option<LabPki>> = OnceLock::new();
    PKI.get_or_init(|| LabPki::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pki")).ok()).as_ref()
}

/// The text of `data` as a TOML source in a folder that does not exist (nothing it names can
/// be read).
fn source(data: &[u8], name: &str) -> Option<TomlSource> {
    let text = std::str::from_utf8(data).ok()?;
    Some(TomlSource::new(Path::new("/nonexistent/otarig-fuzz").join(name), text))
}

/// A scenario file: accepted or refused with a location inside the text.
pub fn scenario_toml(data: &[u8]) {
    let (Some(source), Some(pki)) = (source(data, "s.toml"), lab_pki()) else { return };
    if let Err(err) = crate::scenario::Scenario::from_source(&source, pki) {
        let _ = err.to_string();
    }
}

/// A firmware manifest: accepted or refused; the files it names are never found.
pub fn manifest_toml(data: &[u8]) {
    let (Some(source), Some(pki)) = (source(data, "m.toml"), lab_pki()) else { return };
    if let Err(err) = crate::firmware::load_manifest(&source, pki, &Default::default()) {
        let _ = err.to_string();
    }
}

/// A lab config.
pub fn lab_toml(data: &[u8]) {
    let Some(source) = source(data, "otarig.toml") else { return };
    if let Err(err) = crate::lab::parse(&source) {
        let _ = err.to_string();
    }
}

/// What a client sends the update server before its request is answered.
pub fn http_request(data: &[u8]) {
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().enable_time().build().ok();
    }
    RUNTIME.with(|runtime| {
        let Some(runtime) = runtime else { return };
        let mut stream = data;
        if let Ok(request) = runtime.block_on(crate::server::read_request(&mut stream)) {
            assert!(!request.method.is_empty());
        }
    });
}

/// A line of the twin's control channel.
pub fn control_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    if let Ok(command) = line.parse::<crate::twin::control::ControlCommand>() {
        assert!(line.trim_start().starts_with("reset") || line.trim_start().starts_with("power-cut"), "{command:?}");
    }
}

/// What an RFC 2217 client sends the twin: in pieces and whole, the same data for the chip,
/// the same line changes and answers; every answer is a Telnet command.
pub fn rfc2217(data: &[u8]) {
    use crate::twin::rfc2217::{ComPortServer, Event};
    let mut whole = ComPortServer::default();
    let expected = whole.feed(data);
    let mut pieces = ComPortServer::default();
    let mut seen: Vec<Event> = Vec::new();
    for chunk in data.chunks(PIECE) {
        seen.extend(pieces.feed(chunk));
    }
    // Data split by a piece's end arrives in two events: compare the bytes, and the rest in order.
    let flat = |events: &[Event]| {
        let mut data = Vec::new();
        let mut other = Vec::new();
        for event in events {
            match event {
                Event::Data(bytes) => data.extend_from_slice(bytes),
                Event::Reply(reply) => {
                    assert!(reply.first() == Some(&0xFF), "an answer is a Telnet command: {reply:?}");
                    other.push(event.clone());
                }
                _ => other.push(event.clone()),
            }
        }
        (data, other)
    };
    assert_eq!(flat(&seen), flat(&expected));
}
