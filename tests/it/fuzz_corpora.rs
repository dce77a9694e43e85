//! Every fuzz target's corpus (`fuzz/corpus/TARGET/`: seeds from the test data and what the
//! fuzzer kept) replayed through the same entry point the target calls, so what was fuzzed
//! stays fixed; and the targets `fuzz/Cargo.toml` builds are exactly those entry points.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_corpus_replays_through_its_target_s_entry_point() {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("fuzz/Cargo.toml")).unwrap();
    let built: Vec<&str> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .collect();
    let entries: Vec<&str> = otarig::fuzzing::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(built[1..], entries[..], "fuzz/Cargo.toml builds one binary per entry point");
    for (name, entry) in otarig::fuzzing::TARGETS {
        let dir = Path::new(ROOT).join("fuzz/corpus").join(name);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "{name}: an empty corpus");
        let mut bytes = 0;
        for file in files {
            let data = std::fs::read(&file).unwrap();
            bytes += data.len();
            entry(&data);
        }
        assert!(bytes <= 2 * 1024 * 1024, "{name}: a corpus of at most 2 MB ({bytes} bytes)");
    }
}
