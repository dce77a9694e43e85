//! Every line the twin prints is a line of its ESP-IDF release: the shipped matrix, and every
//! server fault on a firmware of every release with a table, run on twins through
//! `otarig::run::run`; each transcript line is matched against the format strings of the
//! release that prints it (`tests/data/idf-formats/`, extracted from ESP-IDF's source at the
//! tag by `cargo xtask idf-formats`): the bootloader's lines against the bootloader's release,
//! the app's against the release of the app the bootloader loaded (after an update, the new
//! image's), the ROM's against the ROM's own list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use otarig::firmware::start::StartState;
use otarig::idf::{IdfVersion, mbedtls_of};
use otarig::run::{self, LabDirs, Plan, RunEvent, RunOptions, Selection, WatchLimits};

use crate::common;

use common::TempDir;
use common::idf_formats::{Coverage, Part, check, format_regex, log_line, releases};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The default partition table's app slots: factory, ota_0, ota_1.
const SLOTS: [u32; 3] = [0x10000, 0x110000, 0x210000];

/// Each cell's transcript by (firmware, scenario).
type Transcripts = BTreeMap<(String, String), String>;

/// Runs the plan on twins and checks every transcript; returns the mismatches, one line each,
/// and the transcripts.
fn run_and_check(plan: &Plan, out: &Path, coverage: &mut Coverage) -> (Vec<String>, Transcripts) {
    let options = RunOptions {
        limits: WatchLimits::new(Duration::from_secs(30)),
        twins: 2,
        reuse_twins: true,
        retries: 0,
        ..RunOptions::new(out)
    };
    let finished = Mutex::new(Vec::new());
    run::run(plan, &options, |event| {
        if let RunEvent::CellFinished { result, .. } = event {
            finished
                .lock()
                .unwrap()
                .push(((result.firmware.clone(), result.scenario.clone()), result.transcript.clone()));
        }
    })
    .expect("the run");
    let finished = finished.into_inner().unwrap();
    assert_eq!(finished.len(), plan.cells.len(), "every cell finished");
    let release = |id: &str| plan.fleet.get(id).unwrap_or_else(|| panic!("{id} in the fleet")).idf.release.to_string();
    let mut mismatches = Vec::new();
    let mut transcripts = Transcripts::new();
    for ((firmware, scenario_id), transcript) in finished {
        let scenario = plan.scenarios.iter().find(|s| s.id == scenario_id).unwrap();
        let start = match scenario.start {
            StartState::Factory => SLOTS[0],
            StartState::Ota { index, .. } => SLOTS[1 + usize::from(index)],
        };
        let (own, update) = (release(&firmware), release(scenario.image.as_deref().unwrap()));
        let app = |offset: Option<u32>| if offset.is_none_or(|o| o == start) { own.clone() } else { update.clone() };
        let text = std::fs::read_to_string(out.join(&transcript)).unwrap();
        for mismatch in check(&text, &own, app, coverage) {
            mismatches.push(format!("{firmware} x {scenario_id}: {mismatch}"));
        }
        transcripts.insert((firmware, scenario_id), text);
    }
    (mismatches, transcripts)
}

fn assert_none(mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{} lines no format of their release holds; first of each kind:\n{}",
        mismatches.len(),
        mismatches.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_shipped_matrix_prints_only_lines_of_its_releases() {
    let tmp = TempDir::new("idf-lines-matrix");
    let dirs = LabDirs { scenarios: Path::new(ROOT).join("scenarios"), fleet: Path::new(ROOT).join("firmware-images") };
    let plan = Plan::new(&dirs, &Selection::default()).unwrap();
    let mut coverage = Coverage::default();
    let (mismatches, _) = run_and_check(&plan, &tmp.0.join("run"), &mut coverage);
    assert_none(&mismatches);
    assert!(coverage.rom_lines > 0 && coverage.calls.len() > 100, "{coverage:?}");
}

/// A scenario of the lab PKI's Let's Encrypt look-alikes (leaf <- R11), with `extra` under
/// `[server]` (a fault) or after it.
fn scenario(server: &str, rest: &str) -> String {
    format!(
        "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"r11\"\n\
         [server]\nchain = [\"leaf\", \"r11\"]\n{server}\n{rest}"
    )
}

/// The paths each release is driven through: an update, a chain it does not trust, a wrong
/// host name, each server fault that ends the download a different way, an image too big.
fn fault_scenarios() -> Vec<(&'static str, String)> {
    let image = "image = \"v2.0.0\"";
    let fault = |fault: &str| scenario(&format!("{image}\nfault = {fault}"), "");
    vec![
        ("ok", scenario(image, "")),
        (
            "untrusted",
            "title = \"t\"\ndate = \"2026-11-25\"\n[leaf]\nissuer = \"acme_update_ca\"\n\
             [server]\nchain = [\"leaf\", \"acme_update_ca\"]\nimage = \"v2.0.0\"\n"
                .to_owned(),
        ),
        (
            "wrong-host",
            scenario(image, "").replace("issuer = \"r11\"", "issuer = \"r11\"\ndns = [\"cdn.example.net\"]"),
        ),
        ("status-404", fault("{ kind = \"status\", status = 404 }")),
        ("status-500", fault("{ kind = \"status\", status = 500 }")),
        ("html", fault("{ kind = \"html-body\" }")),
        ("truncated", fault("{ kind = \"truncate\", after = 200000 }")),
        ("reset", fault("{ kind = \"reset\", after = 200000 }")),
        ("truncated-clean", fault("{ kind = \"truncate\", after = 200000, close_notify = true }")),
        ("short-length", fault("{ kind = \"wrong-content-length\", length = 100000 }")),
        ("plaintext", fault("{ kind = \"plaintext\" }")),
        ("alert", fault("{ kind = \"alert\" }")),
        ("oversized", scenario("image = \"v2.1.0-oversized\"", "")),
    ]
}

/// The trust a firmware of `release` is built with: ISRG Root X1 as its PEM, or the
/// certificate bundle of its generation's format.
fn bundle_of(release: &str) -> Option<&'static str> {
    let numbers: Vec<u32> = release.trim_start_matches('v').split('.').map(|n| n.parse().unwrap()).collect();
    match (numbers[0], numbers.get(1).copied().unwrap_or(0)) {
        (4, 4) => Some("idf-v4.4"),
        (5, 0..=3) => Some("idf-v5.2"),
        (5, _) => Some("idf-v5.4"),
        (6, _) => Some("idf-v6.0"),
        _ => None,
    }
}

#[test]
fn every_release_prints_only_its_own_lines_on_every_path() {
    let tmp = TempDir::new("idf-lines-releases");
    let (fleet, scenarios) = (tmp.0.join("fleet"), tmp.0.join("scenarios"));
    std::fs::create_dir_all(&fleet).unwrap();
    std::fs::create_dir_all(&scenarios).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("scenarios/pki"), scenarios.join("pki")).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("firmware-images/bundles"), fleet.join("bundles")).unwrap();
    for update in ["v2.0.0", "v2.1.0-oversized"] {
        let manifest = format!("firmware-images/{update}.toml");
        std::fs::copy(Path::new(ROOT).join(&manifest), fleet.join(format!("{update}.toml"))).unwrap();
    }
    let releases = releases();
    for release in &releases {
        let manifest = |trust: &str| {
            format!(
                "version = \"1.0.0\"\nidf = \"{release}\"\nchip = \"esp32\"\n\
                 ota_url = \"https://ota.example.com/firmware.bin\"\ntrust = {trust}\n"
            )
        };
        std::fs::write(fleet.join(format!("pem-{release}.toml")), manifest("{ pem = [\"isrg_root_x1\"] }")).unwrap();
        if let Some(bundle) = bundle_of(release) {
            let trust = format!("{{ bundle = \"{bundle}\" }}");
            std::fs::write(fleet.join(format!("bundle-{release}.toml")), manifest(&trust)).unwrap();
        }
    }
    for (id, text) in fault_scenarios() {
        std::fs::write(scenarios.join(format!("{id}.toml")), text).unwrap();
    }
    let plan = Plan::new(&LabDirs { scenarios, fleet }, &Selection::default()).unwrap();
    let mut coverage = Coverage::default();
    let (mismatches, transcripts) = run_and_check(&plan, &tmp.0.join("run"), &mut coverage);
    assert_none(&mismatches);
    cut_downloads_end_as_each_release_ends_them(&transcripts);
    // Every release's own table was used, for the bootloader's lines and the app's.
    for release in &releases {
        assert!(coverage.calls.keys().any(|k| k.starts_with(&format!("{release} boot I"))), "{release}: boot lines");
        assert!(
            coverage.calls.keys().any(|k| k.starts_with(&format!("{release} esp_https_ota "))),
            "{release}: OTA lines"
        );
    }
}

/// A lab of its own under `dir`: the shipped PKI, bundles and release `v2.0.0`, and no other
/// firmware or scenario; its (fleet, scenarios) directories.
fn small_lab(dir: &Path) -> (PathBuf, PathBuf) {
    let (fleet, scenarios) = (dir.join("fleet"), dir.join("scenarios"));
    std::fs::create_dir_all(&fleet).unwrap();
    std::fs::create_dir_all(&scenarios).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("scenarios/pki"), scenarios.join("pki")).unwrap();
    std::fs::copy(Path::new(ROOT).join("firmware-images/v2.0.0.toml"), fleet.join("v2.0.0.toml")).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("firmware-images/bundles"), fleet.join("bundles")).unwrap();
    (fleet, scenarios)
}

/// The manifest of a `release` build trusting ISRG Root X1, with `option` (a build option's key).
fn x1_manifest(release: &str, option: &str) -> String {
    format!(
        "version = \"1.0.0\"\nidf = \"{release}\"\nchip = \"esp32\"\n\
         ota_url = \"https://ota.example.com/firmware.bin\"\ntrust = {{ pem = [\"isrg_root_x1\"] }}\n{option}\n"
    )
}

/// A firmware of every release built with a 4 KB TLS input buffer, against a server that sends
/// 16 KB records (the download fails), 4 KB records (it updates) and a chain larger than the
/// buffer in 4 KB records (the handshake fails): every line is its release's, and the code is
/// its mbedTLS generation's (2.12–2.16: -0x7200; 2.28, 3.x and 4.0: -0x7100).
#[test]
fn a_reduced_input_buffer_fails_with_each_release_s_lines_and_code() {
    let tmp = TempDir::new("idf-lines-in4k");
    let (fleet, scenarios) = small_lab(&tmp.0);
    let releases = releases();
    for release in &releases {
        std::fs::write(fleet.join(format!("in4k-{release}.toml")), x1_manifest(release, "tls_in_content_len = 4096"))
            .unwrap();
    }
    let image = "image = \"v2.0.0\"";
    std::fs::write(scenarios.join("records-16k.toml"), scenario(image, "")).unwrap();
    std::fs::write(scenarios.join("records-4k.toml"), scenario(&format!("{image}\nrecord_size = 4096"), "")).unwrap();
    let large = std::fs::read_to_string(Path::new(ROOT).join("scenarios/le-gen-y-rsa-large-leaf-2026.toml")).unwrap();
    let large = large.split("\n[expect]").next().unwrap();
    std::fs::write(scenarios.join("large-chain.toml"), large).unwrap();
    let plan = Plan::new(&LabDirs { scenarios, fleet }, &Selection::default()).unwrap();
    let mut coverage = Coverage::default();
    let (mismatches, transcripts) = run_and_check(&plan, &tmp.0.join("run"), &mut coverage);
    assert_none(&mismatches);
    for release in &releases {
        let version = IdfVersion::parse(release).unwrap();
        let code: i32 = match mbedtls_of(version) {
            Some((2, minor, _)) if minor < 28 => -0x7200,
            _ => -0x7100,
        };
        let transcript = |scenario: &str| &transcripts[&(format!("in4k-{release}"), scenario.to_owned())];
        // The code as the release prints it: hex, or decimal in v3.x–v4.3's `read error`.
        let named = |line: &str| line.contains(&format!("{:x}", -code)) || line.contains(&format!("{:X}", -code));
        let download = transcript("records-16k");
        let read = download.lines().find(|line| line.contains("read error")).unwrap_or_else(|| panic!("{release}"));
        assert!(named(read) || read.contains(&code.to_string()), "{release}: {read}");
        assert!(!download.contains("mbedtls_ssl_handshake returned"), "{release}");
        let handshake = transcript("large-chain");
        let line = handshake.lines().find(|line| line.contains("mbedtls_ssl_handshake returned")).unwrap();
        assert!(named(line), "{release}: {line}");
        let updated = transcript("records-4k");
        assert!(!updated.contains("read error") && updated.contains("rst:0xc (SW_CPU_RESET)"), "{release}");
    }
}

/// A firmware of every release whose heap for TLS (`tls_heap`) holds its roots but not
/// `mbedtls_ssl_setup`'s buffers, and one whose heap does not even hold the parse of its root:
/// every line is its release's, and the step esp-tls names is the one that ran out, with
/// mbedTLS's allocation codes (-0x7F00 from the setup).
#[test]
fn a_heap_too_small_fails_with_each_release_s_lines() {
    let tmp = TempDir::new("idf-lines-heap");
    let (fleet, scenarios) = small_lab(&tmp.0);
    let releases = releases();
    // 20,000 bytes: ISRG Root X1's parse (3,174 on the twin) fits, the setup's two 16 KB
    // buffers do not; 1,000 bytes: the root's parse does not fit.
    for (name, heap) in [("setup", 20_000), ("roots", 1_000)] {
        for release in &releases {
            let manifest = x1_manifest(release, &format!("tls_heap = {heap}"));
            std::fs::write(fleet.join(format!("{name}-{release}.toml")), manifest).unwrap();
        }
    }
    std::fs::write(scenarios.join("short-chain.toml"), scenario("image = \"v2.0.0\"", "")).unwrap();
    let plan = Plan::new(&LabDirs { scenarios, fleet }, &Selection::default()).unwrap();
    let mut coverage = Coverage::default();
    let (mismatches, transcripts) = run_and_check(&plan, &tmp.0.join("run"), &mut coverage);
    assert_none(&mismatches);
    for release in &releases {
        let version = IdfVersion::parse(release).unwrap();
        let transcript = |name: &str| &transcripts[&(format!("{name}-{release}"), "short-chain".to_owned())];
        let setup = transcript("setup");
        let line = setup.lines().find(|line| line.contains("mbedtls_ssl_setup returned")).unwrap();
        assert!(line.contains("-0x7f00") || line.contains("-0x7F00"), "{release}: {line}");
        assert!(!setup.contains("mbedtls_ssl_handshake returned"), "{release}");
        let roots = transcript("roots");
        let line = roots.lines().find(|line| line.contains("mbedtls_x509_crt_parse")).unwrap();
        assert!(!roots.contains("mbedtls_ssl_setup returned"), "{release}");
        for transcript in [setup, roots] {
            // From v4.0 the function above the failed step says so too.
            assert_eq!(
                transcript.contains("create_ssl_handle failed"),
                version >= IdfVersion::new(4, 0, 0),
                "{release}"
            );
            assert!(transcript.contains("Failed to open new connection"), "{release}");
            let verdict = otarig::replay::replay_bytes(transcript.as_bytes()).verdict;
            assert_eq!(verdict.outcome.outcome, otarig::outcome::OutcomeClass::OutOfMemory, "{release}: {line}");
        }
    }
}

/// A download cut short (a reset, a FIN without close_notify, a close_notify) ends with the
/// lines of each layer of that release, in order (esp-tls, the transport, the HTTP client,
/// `esp_https_ota`), and without the lines the release does not have. mbedTLS reads a FIN as
/// 0 bytes, like the alert: only the `errno` lwIP leaves (ENOTCONN) tells them apart.
fn cut_downloads_end_as_each_release_ends_them(transcripts: &Transcripts) {
    let cases: [(&str, &str, &[&str], &[&str]); 8] = [
        (
            "pem-v3.3.5",
            "reset",
            &[
                "E esp-tls: read error :-80:",
                "E TRANS_SSL: esp_tls_conn_read error, errno=Connection reset by peer",
                "W HTTP_CLIENT: esp_transport_read returned:-80 and errno:104 ",
            ],
            &["data read", "Connection closed"],
        ),
        (
            "pem-v4.2.5",
            "reset",
            &[
                "E esp-tls-mbedtls: read error :-80:",
                "E TRANS_SSL: esp_tls_conn_read error, errno=Connection reset by peer",
                "W HTTP_CLIENT: esp_transport_read returned:-80 and errno:104 ",
                "E esp_https_ota: data read -1, errno 104",
            ],
            &[],
        ),
        (
            "pem-v4.4.8",
            "reset",
            &[
                "E esp-tls-mbedtls: read error :-0x0050:",
                "E TRANSPORT_BASE: esp_tls_conn_read error, errno=Connection reset by peer",
                "W HTTP_CLIENT: esp_transport_read returned:-80 and errno:104 ",
                "E esp_https_ota: data read -1, errno 104",
            ],
            &["transport_read: error"],
        ),
        (
            "pem-v4.4.8",
            "truncated",
            &[
                "W HTTP_CLIENT: esp_transport_read returned:-1 and errno:128 ",
                "E esp_https_ota: data read -1, errno 128",
            ],
            &["read error", "esp_tls_conn_read", "Connection closed"],
        ),
        ("pem-v4.4.8", "truncated-clean", &["E esp_https_ota: data read -1, errno 0"], &["read error", "HTTP_CLIENT"]),
        (
            "pem-v5.2.5",
            "truncated",
            &[
                "W HTTP_CLIENT: esp_transport_read returned:-1 and errno:128 ",
                "E esp_https_ota: data read -1, errno 128",
            ],
            &["read error", "esp_tls_conn_read", "transport_read: error", "Connection closed before complete data"],
        ),
        (
            "pem-v5.4.2",
            "reset",
            &[
                "E esp-tls-mbedtls: read error :-0x0050",
                "E transport_base: esp_tls_conn_read error, errno=Connection reset by peer",
                "W HTTP_CLIENT: esp_transport_read returned:-80 and errno:104 ",
                "E HTTP_CLIENT: transport_read: error - -1 | ESP_FAIL",
                "E esp_https_ota: data read -1, errno 104",
            ],
            &[],
        ),
        (
            "pem-v5.4.2",
            "truncated-clean",
            &["E esp_https_ota: data read -1, errno 0"],
            &["read error", "HTTP_CLIENT", "Connection closed before complete data was received!"],
        ),
    ];
    for (firmware, scenario, expected, absent) in cases {
        let text = &transcripts[&(firmware.to_owned(), scenario.to_owned())];
        let lines: Vec<String> = text
            .lines()
            .filter_map(|line| log_line(line.trim_end_matches('\r')))
            .map(|l| format!("{} {}: {}", l.level, l.tag, l.message))
            .collect();
        let mut at = 0;
        for want in expected {
            match lines[at..].iter().position(|line| line == want) {
                Some(found) => at += found + 1,
                None => panic!("{firmware} x {scenario}: {want:?} missing or out of order in\n{}", lines.join("\n")),
            }
        }
        for line in &lines {
            assert!(
                !absent.iter().any(|a| line.contains(a)),
                "{firmware} x {scenario}: {line:?}\n{}",
                lines.join("\n")
            );
        }
    }
}

/// A server that stalls longer than the client's 5 s timeout, at a record boundary: the
/// transport's poll times out before any read. v3.2 takes the 0 bytes read for the end of the
/// image (and finds it invalid); from v3.3.2 `esp_https_ota_perform` says it is still in
/// progress (0 bytes, errno 0; from v5.0 `-ESP_ERR_HTTP_EAGAIN`) and is called again, silently,
/// until the data comes. No release prints a read error for it.
#[test]
fn a_stalled_server_is_taken_for_the_end_or_waited_out_as_each_release_does() {
    let tmp = TempDir::new("idf-lines-stall");
    let (fleet, scenarios) = (tmp.0.join("fleet"), tmp.0.join("scenarios"));
    std::fs::create_dir_all(&fleet).unwrap();
    std::fs::create_dir_all(&scenarios).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("scenarios/pki"), scenarios.join("pki")).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("firmware-images/bundles"), fleet.join("bundles")).unwrap();
    std::fs::copy(Path::new(ROOT).join("firmware-images/v2.0.0.toml"), fleet.join("v2.0.0.toml")).unwrap();
    let releases = ["v3.2", "v4.2.5", "v5.2.5"];
    for release in releases {
        let manifest = format!(
            "version = \"1.0.0\"\nidf = \"{release}\"\nchip = \"esp32\"\n\
             ota_url = \"https://ota.example.com/firmware.bin\"\ntrust = {{ pem = [\"isrg_root_x1\"] }}\n"
        );
        std::fs::write(fleet.join(format!("pem-{release}.toml")), manifest).unwrap();
    }
    let stall = scenario("image = \"v2.0.0\"\nfault = { kind = \"stall\", after = 200000, seconds = 6 }", "");
    std::fs::write(scenarios.join("stall.toml"), stall).unwrap();
    let plan = Plan::new(&LabDirs { scenarios, fleet }, &Selection::default()).unwrap();
    let mut coverage = Coverage::default();
    let (mismatches, transcripts) = run_and_check(&plan, &tmp.0.join("run"), &mut coverage);
    assert_none(&mismatches);
    for release in releases {
        let text = &transcripts[&(format!("pem-{release}"), "stall".to_owned())];
        let lines: Vec<String> = text
            .lines()
            .filter_map(|line| log_line(line.trim_end_matches('\r')))
            .map(|l| format!("{} {}: {}", l.level, l.tag, l.message))
            .collect();
        let outcome = otarig::replay::replay_bytes(text.as_bytes()).verdict.outcome.outcome;
        assert!(
            !lines.iter().any(|l| l.contains("read error") || l.contains("esp_tls_conn_read")),
            "{release}: {lines:#?}"
        );
        if release == "v3.2" {
            let end = [
                "I esp_https_ota: Connection closed,all data received",
                "E esp_https_ota: Error: esp_ota_end failed! err=0x5379. Image is invalid",
            ];
            let at = lines.iter().position(|l| l == end[0]).unwrap_or_else(|| panic!("{lines:#?}"));
            assert!(lines[at..].iter().any(|l| l == end[1]), "{lines:#?}");
            assert_eq!(outcome, otarig::outcome::OutcomeClass::ImageInvalid);
        } else {
            assert!(!lines.iter().any(|l| l.starts_with("E ") || l.starts_with("W ")), "{release}: {lines:#?}");
            assert_eq!(outcome, otarig::outcome::OutcomeClass::Updated, "{release}");
        }
    }
}

/// v3.2's own lines, as the founding report's device printed them, for the checker's tests.
const V3_2_FAILURE: &str = "ets Jun  8 2016 00:22:57\r\n\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n\
    \x1b[0;32mI (29) boot: ESP-IDF v3.2 2nd stage bootloader\x1b[0m\r\n\
    \x1b[0;32mI (466) boot: Loaded app from partition at offset 0x10000\x1b[0m\r\n\
    \x1b[0;32mI (472) boot: Disabling RNG early entropy source...\x1b[0m\r\n\
    \x1b[0;32mI (486) cpu_start: Pro cpu up.\x1b[0m\r\n\
    \x1b[0;31mE (5521) esp-tls: mbedtls_ssl_handshake returned -0x2700\x1b[0m\r\n\
    \x1b[0;32mI (5521) esp-tls: Failed to verify peer certificate!\x1b[0m\r\n\
    \x1b[0;32mI (5531) esp-tls: verification info:   ! The certificate is not correctly signed by the trusted CA\r\n\x1b[0m\r\n\
    \x1b[0;31mE (5541) esp-tls: Failed to open new connection\x1b[0m\r\n\
    \x1b[0;31mE (6000) esp_https_ota: Error: esp_ota_write failed! err=0x5379\x1b[0m\r\n";

#[test]
fn printf_formats_match_what_they_render_and_nothing_else() {
    let regex = |format: &str| regex::Regex::new(&format!("^{}$", format_regex(format))).unwrap();
    let segment = regex("segment %d: paddr=0x%08x vaddr=0x%08x size=0x%05x (%6d) %s");
    assert!(segment.is_match("segment 0: paddr=0x00010020 vaddr=0x3f400020 size=0x005a0 (  1440) map"));
    assert!(!segment.is_match("segment 0: paddr=00010020 vaddr=3f400020 size=005a0h (  1440) map"), "v5's form");
    assert!(regex("compile time {__TIME__}").is_match("compile time 12:00:00"));
    assert!(regex("%-16s|%%").is_match("nvs             |%"));
    assert!(!regex("err=0x%x").is_match("err=0xZZ"));
}

#[test]
fn the_checker_holds_each_line_to_its_own_release() {
    let mut coverage = Coverage::default();
    let v3_2 = |_: Option<u32>| "v3.2".to_owned();
    let own = check(V3_2_FAILURE, "v3.2", v3_2, &mut coverage);
    assert!(own.is_empty(), "v3.2's own lines, the info on two lines: {own:#?}");
    assert_eq!(coverage.rom_lines, 2);

    // The same app lines are not v4.4.8's: its `err=0x%x` is hexadecimal, its verification
    // info at DEBUG, its esp-tls lines other.
    let v4_4 = |_: Option<u32>| "v4.4.8".to_owned();
    let mismatches = check(V3_2_FAILURE, "v3.2", v4_4, &mut coverage);
    assert!(mismatches.iter().all(|m| m.part == Part::App), "the bootloader is still v3.2's: {mismatches:#?}");
    assert!(mismatches.iter().any(|m| m.line.contains("verification info")), "{mismatches:#?}");

    // A bootloader line of another release, a level the release does not use for the line,
    // a colour that is not the level's, a line that is no log line at all.
    for (line, why) in [
        ("\x1b[0;32mI (36) boot: Multicore bootloader\x1b[0m", "no I format"),
        ("\x1b[0;33mW (466) boot: Loaded app from partition at offset 0x10000\x1b[0m", "no W format"),
        ("\x1b[0;31mI (466) boot: Loaded app from partition at offset 0x10000\x1b[0m", "colour"),
        ("Starting OTA", "neither"),
    ] {
        let transcript = format!("ets Jun  8 2016 00:22:57\r\n{line}\r\n");
        let mismatches = check(&transcript, "v3.2", v3_2, &mut coverage);
        assert!(mismatches.len() == 1 && mismatches[0].why.contains(why), "{line:?}: {mismatches:#?}");
    }
    // From v5.4 lines have no colour.
    let plain = "ets Jun  8 2016 00:22:57\r\nI (27) boot: ESP-IDF v5.4.2 2nd stage bootloader\r\n";
    let v5_4 = |_: Option<u32>| "v5.4.2".to_owned();
    assert!(check(plain, "v5.4.2", v5_4, &mut coverage).is_empty());
    assert!(
        !check(
            &plain.replace(
                "I (27) boot: ESP-IDF v5.4.2 2nd stage bootloader",
                "\x1b[0;32mI (27) boot: ESP-IDF v5.4.2 2nd stage bootloader\x1b[0m"
            ),
            "v5.4.2",
            v5_4,
            &mut coverage
        )
        .is_empty()
    );
    assert!(log_line("I (27) boot: x").is_some() && log_line("I (27) boot x").is_none());
}

#[test]
fn every_table_names_its_tag_and_commit() {
    let releases = releases();
    assert!(releases.len() >= 19, "{releases:?}");
    for release in releases {
        let table = common::idf_formats::table(&release);
        assert_eq!(table.commit.len(), 40);
        for tag in ["boot", "esp_https_ota", "esp_image", "cpu_start", "heap_init"] {
            assert!(table.by_tag.contains_key(tag), "{release}: {tag}");
        }
    }
}
