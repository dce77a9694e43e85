//! TOML files with positions: every error about a file names `file:line:column`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;

/// A place in a file, counted from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as it was named when read.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The text of a TOML file and its path.
#[derive(Clone, Debug)]
pub struct TomlSource {
    path: PathBuf,
    text: String,
}

/// A TOML file that did not parse into the expected shape (syntax, unknown key, wrong type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// Where the parser stopped.
    pub location: Location,
    /// The parser's message, as a lowercase fragment.
    pub message: String,
}

impl TomlSource {
    /// A source from text already read; `path` is only named in errors.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self { path: path.into(), text: text.into() }
    }

    /// Reads `path` as text, with the limit of any text input (4 MiB).
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(path, crate::input::read_text(path)?))
    }

    /// The file, as named when read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The location of byte offset `at`.
    pub fn location(&self, at: usize) -> Location {
        let at = at.min(self.text.len());
        let before = &self.text.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Location { file: self.path.clone(), line, column }
    }

    /// Parses the file into `T` (whose types deny unknown fields).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ShapeError> {
        toml::from_str(&self.text).map_err(|err| ShapeError {
            location: self.location(err.span().map_or(0, |span| span.start)),
            message: err.message().trim_end().to_owned(),
        })
    }
}

/// The TOML files directly in a directory (`*.toml`; folders such as `pki/` are not read),
/// sorted by path so every machine reads them in the same order.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_from_one() {
        let source = TomlSource::new("a.toml", "x = 1\ny = \"é\"\nz = 3\n");
        assert_eq!(source.location(0).line, 1);
        let z = source.location(source.text.find('z').unwrap());
        assert_eq!((z.line, z.column), (3, 1));
        let after_e = source.location(source.text.find('é').unwrap() + 'é'.len_utf8());
        assert_eq!((after_e.line, after_e.column), (2, 7));
        assert_eq!(z.to_string(), "a.toml:3:1");
    }

    #[test]
    fn unknown_keys_are_located() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Shape {
            x: u32,
        }
        let source = TomlSource::new("b.toml", "x = 1\nbogus = 2\n");
        let err = source.parse::<Shape>().unwrap_err();
        assert_eq!(err.location.line, 2);
        assert!(err.message.contains("bogus"), "{}", err.message);
    }
}

/// Why a `tags` list is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagProblem {
    /// Empty, or not only lowercase letters, digits and `-`.
    Malformed,
    /// Given twice.
    Twice,
}

/// A `tags` list as scenarios and manifests write it: distinct tags of lowercase letters,
/// digits and `-`; else the first tag refused, with why.
pub fn check_tags(raw: &[Spanned<String>]) -> Result<Vec<String>, (&Spanned<String>, TagProblem)> {
    let mut tags: Vec<String> = Vec::new();
    for tag in raw {
        let name = tag.get_ref();
        let well_formed =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed {
            return Err((tag, TagProblem::Malformed));
        }
        if tags.contains(name) {
            return Err((tag, TagProblem::Twice));
        }
        tags.push(name.clone());
    }
    Ok(tags)
}
