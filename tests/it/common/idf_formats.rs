//! ESP-IDF's own log formats, release by release, as a test reads them: the tables in
//! `tests/data/idf-formats/` (every `ESP_LOGx` / `ESP_EARLY_LOGx` call of the OTA path's
//! components at a release tag, made by `cargo xtask idf-formats`), the ROM's lines (not in
//! ESP-IDF's source) from `rom-lines.tsv`, and the twin's deliberate differences from
//! `differences.tsv`. A transcript is split into boots (ROM, bootloader, app) and each line is
//! matched against the formats of the release that prints it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use regex::Regex;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/idf-formats");

/// One log call of a release.
#[derive(Debug)]
pub struct Row {
    pub component: String,
    pub location: String,
    /// `E`, `W`, `I`, `D`, `V`, or `?` for a level chosen at run time (`ESP_LOG_LEVEL(sev, …)`).
    pub level: char,
    pub format: String,
    regex: Regex,
}

/// One release's log calls, by tag.
#[derive(Debug)]
pub struct Table {
    pub release: String,
    pub commit: String,
    pub by_tag: HashMap<String, Vec<Row>>,
}

impl Table {
    /// The call of tag `tag` at `level` whose format renders `message`, if any.
    pub fn matching(&self, tag: &str, level: char, message: &str) -> Option<&Row> {
        self.by_tag.get(tag)?.iter().find(|row| (row.level == level || row.level == '?') && row.regex.is_match(message))
    }

    /// Whether the bootloader's own code (not the app's) logs under `tag` in this release.
    fn bootloader_tag(&self, tag: &str) -> bool {
        const BOOTLOADER_SIDE: [&str; 6] =
            ["bootloader", "bootloader_support", "esp_hw_support", "efuse", "spi_flash", "esp_bootloader_format"];
        self.by_tag.get(tag).is_some_and(|rows| rows.iter().any(|r| BOOTLOADER_SIDE.contains(&r.component.as_str())))
    }
}

/// The table of `release` (a tag such as `v4.4.8`), loaded once per test binary.
pub fn table(release: &str) -> Arc<Table> {
    static TABLES: OnceLock<Mutex<HashMap<String, Arc<Table>>>> = OnceLock::new();
    let tables = TABLES.get_or_init(Default::default);
    if let Some(table) = tables.lock().unwrap().get(release) {
        return Arc::clone(table);
    }
    let table = Arc::new(load(release));
    tables.lock().unwrap().insert(release.to_owned(), Arc::clone(&table));
    table
}

/// The releases with a table.
pub fn releases() -> Vec<String> {
    let mut releases: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".tsv").filter(|n| n.starts_with('v')).map(str::to_owned))
        .collect();
    releases.sort();
    releases
}

fn load(release: &str) -> Table {
    let path = Path::new(DIR).join(format!("{release}.tsv"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (no table for {release})", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("the header");
    let mut words = header.strip_prefix("# esp-idf ").expect("`# esp-idf TAG COMMIT`").split(' ');
    assert_eq!(words.next(), Some(release), "{}: the table's tag", path.display());
    let commit = words.next().expect("the commit").to_owned();
    assert_eq!(commit.len(), 40, "{}: a full commit id", path.display());
    let mut by_tag: HashMap<String, Vec<Row>> = HashMap::new();
    for (number, line) in lines.enumerate().filter(|(_, l)| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [component, location, tag, level, format] = fields[..] else {
            panic!("{}:{}: five fields expected: {line:?}", path.display(), number + 2);
        };
        let format = unescape(format);
        let regex = Regex::new(&format!("(?s)^{}$", format_regex(format.trim_end_matches('\n')))).unwrap();
        let level = level.chars().next().expect("a level");
        by_tag.entry(tag.to_owned()).or_default().push(Row {
            component: component.to_owned(),
            location: location.to_owned(),
            level,
            format,
            regex,
        });
    }
    Table { release: release.to_owned(), commit, by_tag }
}

/// A format as the C compiler reads it: the table keeps the string literal's escapes (`\"`,
/// `\\`, `\n`, `\t`, octal and hex) as written.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let mut value = 0u32;
                while let Some(digit) = chars.peek().and_then(|d| d.to_digit(16)) {
                    value = value * 16 + digit;
                    chars.next();
                }
                out.push(char::from_u32(value).unwrap_or('?'));
            }
            Some(d @ '0'..='7') => {
                let mut value = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value).unwrap_or('?'));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A regular expression for what a printf format renders: each conversion stands for the text
/// it can produce (with its padding), `{MACRO}` for a macro's text, the rest literally.
pub fn format_regex(format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' if chars.peek() == Some(&'%') => {
                chars.next();
                out.push('%');
            }
            '%' => {
                let mut flags = String::new();
                while let Some(&f) = chars.peek().filter(|f| "-+ #0".contains(**f)) {
                    flags.push(f);
                    chars.next();
                }
                let mut width = false;
                while chars.peek().is_some_and(|d| d.is_ascii_digit() || *d == '*') {
                    width = true;
                    chars.next();
                }
                if chars.peek() == Some(&'.') {
                    chars.next();
                    while chars.peek().is_some_and(|d| d.is_ascii_digit() || *d == '*') {
                        chars.next();
                    }
                }
                while chars.peek().is_some_and(|l| "hlzjtLq".contains(*l)) {
                    chars.next();
                }
                let conversion = chars.next().unwrap_or('s');
                let body = match conversion {
                    'd' | 'i' => r"[-+ ]?\d+",
                    'u' => r"\d+",
                    'x' => "[0-9a-f]+",
                    'X' => "[0-9A-F]+",
                    'o' => "[0-7]+",
                    'p' => "(?:0x)?[0-9a-f]+",
                    'c' => "(?s:.)",
                    'f' | 'e' | 'g' | 'E' | 'G' => r"[-+]?[0-9.]+(?:e[-+]?\d+)?|inf|nan",
                    _ => ".*?",
                };
                let pad = width && !flags.contains('0');
                if pad && !flags.contains('-') {
                    out.push_str(" *");
                }
                out.push_str(&format!("(?:{body})"));
                if pad && flags.contains('-') {
                    out.push_str(" *");
                }
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                assert!(!name.is_empty(), "an empty macro in {format:?}");
                out.push_str(".+?");
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

/// A line outside ESP-IDF's log calls: the ROM's, listed with the captures they come from.
#[derive(Debug)]
pub struct RomLine {
    pub regex: Regex,
    pub source: String,
}

/// The ROM's lines.
pub fn rom_lines() -> &'static [RomLine] {
    static LINES: OnceLock<Vec<RomLine>> = OnceLock::new();
    LINES.get_or_init(|| {
        let path = Path::new(DIR).join("rom-lines.tsv");
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|line| {
                let (pattern, source) = line.split_once('\t').expect("PATTERN<TAB>SOURCE");
                RomLine { regex: Regex::new(&format!("^{pattern}$")).unwrap(), source: source.to_owned() }
            })
            .collect()
    })
}

/// A deliberate difference: a line the twin prints that its release's tables do not hold,
/// with the reason.
#[derive(Debug)]
pub struct Difference {
    pub regex: Regex,
    pub reason: String,
}

/// The twin's deliberate differences (`differences.tsv`, also listed in the README).
pub fn differences() -> &'static [Difference] {
    static LINES: OnceLock<Vec<Difference>> = OnceLock::new();
    LINES.get_or_init(|| {
        let path = Path::new(DIR).join("differences.tsv");
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|line| {
                let (pattern, reason) = line.split_once('\t').expect("PATTERN<TAB>REASON");
                Difference { regex: Regex::new(&format!("^{pattern}$")).unwrap(), reason: reason.to_owned() }
            })
            .collect()
    })
}

/// Which part of a boot prints a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Rom,
    Bootloader,
    App,
}

/// An ESP-IDF log line taken apart: level, tag, message, and its colour if any.
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub level: char,
    pub tag: &'a str,
    pub message: &'a str,
    pub colour: Option<&'a str>,
}

/// `L (TIME) TAG: MESSAGE`, with or without the ANSI colour around it. The message may span
/// lines (a `%s` argument with newlines, mbedTLS's verification info say): the colour's end
/// is then at the end of the last.
pub fn log_line(record: &str) -> Option<LogLine<'_>> {
    static PREFIX: OnceLock<Regex> = OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        Regex::new(r"(?s)^(?:\x1b\[(0;3\d)m)?([EWIDV]) \((\d+)\) ([^ :][^:\n]*?): (.*?)(?:\x1b\[0m)?$").unwrap()
    });
    let caps = prefix.captures(record)?;
    Some(LogLine {
        level: caps[2].chars().next()?,
        tag: caps.get(4)?.as_str(),
        // A message's own trailing newlines come before the colour's reset (v3.x's
        // `... returned -0x%x\n\n`); the formats are held without them.
        message: caps.get(5)?.as_str().trim_end_matches('\n'),
        colour: caps.get(1).map(|c| c.as_str()),
    })
}

/// Whether a line begins an ESP-IDF log line.
fn starts_log_line(line: &str) -> bool {
    static START: OnceLock<Regex> = OnceLock::new();
    START.get_or_init(|| Regex::new(r"^(?:\x1b\[0;3\dm)?[EWIDV] \(\d+\) [^ :][^:]*?: ").unwrap()).is_match(line)
}

/// A transcript cut into records: a ROM line, a log line with the lines its message runs
/// on to, or a line that is neither. Each with its first line's number.
fn records(transcript: &str) -> Vec<(usize, String)> {
    let mut records: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (index, raw) in transcript.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if rom_lines().iter().any(|r| r.regex.is_match(line)) {
            records.push((index + 1, line.to_owned()));
            open = false;
        } else if starts_log_line(line) {
            records.push((index + 1, line.to_owned()));
            open = true;
        } else if open {
            let last = records.last_mut().expect("an open record");
            last.1.push('\n');
            last.1.push_str(line);
        } else if !line.is_empty() {
            records.push((index + 1, line.to_owned()));
        }
    }
    // Empty lines after a log line belong to it only when more of its message follows them.
    for record in &mut records {
        let kept = record.1.trim_end_matches('\n').len();
        record.1.truncate(kept);
    }
    records
}

/// The colour ESP-IDF gives a level (none for debug and verbose).
fn colour_of(level: char) -> Option<&'static str> {
    match level {
        'E' => Some("0;31"),
        'W' => Some("0;33"),
        'I' => Some("0;32"),
        _ => None,
    }
}

/// Whether a release colours its lines by default (`CONFIG_LOG_COLORS`: y up to v5.3, n from v5.4).
fn colours(release: &str) -> bool {
    let numbers: Vec<u32> = release.trim_start_matches('v').split('.').map(|n| n.parse().unwrap()).collect();
    (numbers[0], numbers.get(1).copied().unwrap_or(0)) < (5, 4)
}

/// A line no format of its release holds.
#[derive(Debug)]
pub struct Mismatch {
    pub line_number: usize,
    pub line: String,
    pub part: Part,
    pub release: String,
    pub why: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} ({:?} of {}): {:?}: {}", self.line_number, self.part, self.release, self.line, self.why)
    }
}

/// What checked transcripts held: the calls matched, by release, and the lines outside them.
#[derive(Debug, Default)]
pub struct Coverage {
    /// `release tag level format` → times seen.
    pub calls: BTreeMap<String, usize>,
    pub rom_lines: usize,
    /// A deliberate difference's reason → times seen.
    pub differences: BTreeMap<String, usize>,
}

/// Checks a transcript. `bootloader` is the release of the bootloader on the board;
/// `app_release(offset)` the release of the app the bootloader loaded from `offset` (the
/// offset from `boot: Loaded app from partition at offset 0x…`; `None` when the bootloader
/// said nothing, and the app is then the one the board started with).
pub fn check(
    transcript: &str,
    bootloader: &str,
    app_release: impl Fn(Option<u32>) -> String,
    coverage: &mut Coverage,
) -> Vec<Mismatch> {
    let bootloader_table = table(bootloader);
    let mut mismatches = Vec::new();
    let mut part = Part::App;
    let mut app = table(&app_release(None));
    let mut loaded: Option<u32> = None;
    let mut after_loaded = false;
    for (line_number, line) in records(transcript) {
        let line = line.as_str();
        let mismatch = |part: Part, release: &str, why: String| Mismatch {
            line_number,
            line: line.to_owned(),
            part,
            release: release.to_owned(),
            why,
        };
        if rom_lines().iter().any(|r| r.regex.is_match(line)) {
            coverage.rom_lines += 1;
            part = Part::Rom;
            loaded = None;
            after_loaded = false;
            continue;
        }
        if let Some(difference) = differences().iter().find(|d| d.regex.is_match(line)) {
            *coverage.differences.entry(difference.reason.clone()).or_default() += 1;
            continue;
        }
        let Some(log) = log_line(line) else {
            mismatches.push(mismatch(part, "-", "neither an ESP-IDF log line nor a ROM line".into()));
            continue;
        };
        if part == Part::Rom {
            part = Part::Bootloader;
        }
        if part == Part::Bootloader {
            let leaves = if after_loaded { log.tag != "boot" } else { !bootloader_table.bootloader_tag(log.tag) };
            if leaves {
                part = Part::App;
                app = table(&app_release(loaded));
            }
        }
        let table = if part == Part::Bootloader { &bootloader_table } else { &app };
        let colour_expected = colours(&table.release).then(|| colour_of(log.level)).flatten();
        if log.colour != colour_expected {
            mismatches.push(mismatch(
                part,
                &table.release,
                format!("colour {:?} where the release prints {:?}", log.colour, colour_expected),
            ));
        }
        match table.matching(log.tag, log.level, log.message) {
            Some(row) => {
                let key = format!("{} {} {} {}", table.release, log.tag, row.level, row.format);
                *coverage.calls.entry(key).or_default() += 1;
            }
            None => {
                let near: Vec<String> = table
                    .by_tag
                    .get(log.tag)
                    .map(|rows| {
                        rows.iter()
                            .filter(|r| r.level == log.level)
                            .map(|r| format!("{:?}", r.format))
                            .take(6)
                            .collect()
                    })
                    .unwrap_or_default();
                let why = if table.by_tag.contains_key(log.tag) {
                    format!("no {} format of tag {:?} matches (some are: {})", log.level, log.tag, near.join(", "))
                } else {
                    format!("the release has no tag {:?}", log.tag)
                };
                mismatches.push(mismatch(part, &table.release, why));
            }
        }
        if part == Part::Bootloader
            && log.tag == "boot"
            && let Some(offset) = log.message.strip_prefix("Loaded app from partition at offset 0x")
        {
            loaded = u32::from_str_radix(offset, 16).ok();
            after_loaded = true;
        }
    }
    mismatches
}
