//! The layers ARCHITECTURE.md draws, held against the code: every `crate::` path from one
//! top-level module of `src/` to another goes to a lower layer, so no two modules depend on each
//! other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The layers as ARCHITECTURE.md lists them (`1. outcome, codes, ...`), module → layer.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let section = text.split("## Layers").nth(1).expect("ARCHITECTURE.md has a Layers section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut layers = BTreeMap::new();
    for line in section.lines() {
        let Some((number, modules)) = line.split_once(". ") else { continue };
        let Ok(layer) = number.trim().parse::<usize>() else { continue };
        for module in modules.split(',') {
            layers.insert(module.trim().to_owned(), layer);
        }
    }
    layers
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules `text` names through `crate::` paths (also inside `use crate::{...}`).
fn named_modules(text: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                named.push(ident(item.trim()));
            }
        } else {
            named.push(ident(rest));
        }
    }
    named
}

fn ident(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

#[test]
fn every_module_uses_only_lower_layers() {
    let layers = layers();
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut unlisted = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if matches!(top.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        let Some(&layer) = layers.get(&top) else {
            unlisted.push(top);
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for named in named_modules(&text) {
            if named == top {
                continue;
            }
            if let Some(&other) = layers.get(&named)
                && other >= layer
            {
                wrong.push(format!("{} (layer {layer}) uses {named} (layer {other})", relative.display()));
            }
        }
    }
    unlisted.sort();
    unlisted.dedup();
    assert!(unlisted.is_empty(), "modules ARCHITECTURE.md's layers do not list: {unlisted:?}");
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "paths against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_layers_list_every_module_once() {
    let layers = layers();
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> =
        lib.lines().filter_map(|line| line.trim().strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    for module in &declared {
        assert!(layers.contains_key(*module), "`{module}` is in no layer of ARCHITECTURE.md");
    }
    assert_eq!(layers.len(), declared.len(), "layers list modules lib.rs does not declare: {layers:?}");
}

#[test]
fn paths_are_found_in_groups_and_alone() {
    assert_eq!(named_modules("use crate::{idf::X, image::Chip};\nlet x = crate::pki::Y;"), ["idf", "image", "pki"]);
}
