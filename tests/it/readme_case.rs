//! README's "The DST Root CA X3 case": each command shown there is run, and the output shown
//! beside it must appear in what it prints, line for line and in order (progress lines and
//! paths may come between), so the walkthrough cannot go stale. A command exits 0 unless its
//! shown output ends with `(exit status N)`, which it must then exit with.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The section's (command, shown output) pairs: a `sh` block followed by a `text` block.
fn pairs(readme: &str) -> Vec<(String, Vec<String>)> {
    let start = readme.find("\n## The DST Root CA X3 case\n").expect("the section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let (lang, body) = after.split_once('\n').unwrap();
        let close = body.find("```").unwrap();
        blocks.push((lang.trim().to_owned(), body[..close].to_owned()));
        rest = &body[close + 3..];
    }
    blocks
        .windows(2)
        .filter(|pair| pair[0].0 == "sh" && pair[1].0 == "text")
        .map(|pair| (pair[0].1.trim().to_owned(), pair[1].1.lines().map(str::to_owned).collect()))
        .collect()
}

#[test]
fn the_founding_case_walkthrough_runs_as_shown() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let pairs = pairs(&readme);
    assert!(pairs.len() >= 2, "the section shows its commands with their output");
    for (command, mut shown) in pairs {
        let stated = shown.last().and_then(|l| l.strip_prefix("(exit status ")?.strip_suffix(')')?.parse::<i32>().ok());
        if stated.is_some() {
            shown.pop();
        }
        let args: Vec<&str> = command.strip_prefix("otarig ").expect("an otarig command").split_whitespace().collect();
        let output = Command::new(env!("CARGO_BIN_EXE_otarig")).current_dir(ROOT).args(&args).output().unwrap();
        let expected = stated.unwrap_or(0);
        assert_eq!(output.status.code(), Some(expected), "{command}: {}", String::from_utf8_lossy(&output.stderr));
        let printed = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = printed.lines().map(str::trim_end).collect();
        let mut at = 0;
        for want in shown.iter().map(|l| l.trim_end()) {
            match lines[at..].iter().position(|line| *line == want) {
                Some(found) => at += found + 1,
                None => panic!("{command}: {want:?} not printed (in order); it printed:\n{printed}"),
            }
        }
    }
}
