//! `ci/scenario-pr`, the pull-request check for certificate changes, on a repository of its
//! own: a new scenario runs against the whole fleet and shows as added cells; an expectation
//! the branch changes is run with both libraries and the worse cell fails the check; a branch
//! that touches no scenario or manifest runs nothing.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=otarig", "-c", "user.email=otarig@example.com"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A repository with the lab PKI, two scenarios and two firmware of the shipped library, its
/// first commit the base.
fn repository(dir: &Path) {
    let (scenarios, fleet) = (dir.join("scenarios"), dir.join("firmware-images"));
    copy_dir(&Path::new(ROOT).join("scenarios/pki"), &scenarios.join("pki"));
    copy_dir(&Path::new(ROOT).join("firmware-images/bundles"), &fleet.join("bundles"));
    for id in ["gts-chain", "le-short-chain"] {
        std::fs::copy(Path::new(ROOT).join(format!("scenarios/{id}.toml")), scenarios.join(format!("{id}.toml")))
            .unwrap();
    }
    for id in ["dst-x3-idf3.2", "isrg-x1-idf4.4", "v2.0.0"] {
        std::fs::copy(Path::new(ROOT).join(format!("firmware-images/{id}.toml")), fleet.join(format!("{id}.toml")))
            .unwrap();
    }
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "base"]);
}

fn scenario_pr(repo: &Path, out: &Path) -> Output {
    Command::new(Path::new(ROOT).join("ci/scenario-pr"))
        .current_dir(repo)
        .env("OTARIG", env!("CARGO_BIN_EXE_otarig"))
        .args(["HEAD~1".as_ref(), out.as_os_str()])
        .output()
        .unwrap()
}

#[test]
fn a_certificate_change_shows_what_it_does_to_the_fleet_before_it_merges() {
    let tmp = TempDir::new("scenario-pr");
    let repo = tmp.0.join("repo");
    repository(&repo);

    // A new scenario: its cells are added, and pass.
    std::fs::copy(Path::new(ROOT).join("scenarios/dst-cross-sign-rescue.toml"), repo.join("scenarios/rescue.toml"))
        .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "a scenario"]);
    let added = scenario_pr(&repo, &tmp.0.join("added"));
    let comment = std::fs::read_to_string(tmp.0.join("added/comment.md")).unwrap();
    assert_eq!(added.status.code(), Some(0), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(comment.contains("Ran the changed scenarios against the whole fleet"), "{comment}");
    assert!(comment.contains("added    dst-x3-idf3.2 × rescue: pass updated"), "{comment}");
    assert!(comment.contains("2 cells: 2 pass, 0 fail, 0 error, 0 observed"), "{comment}");

    // An expectation the branch gets wrong: both libraries run it, the cell is worse, the check
    // fails with the run's status.
    let path = repo.join("scenarios/gts-chain.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let wrong = text.replace(
        "[expect]\n",
        "[expect]\n\"dst-x3-idf3.2\" = { outcome = \"updated\", source = \"derived: a guess that is wrong\" }\n",
    );
    assert_ne!(wrong, text, "gts-chain has an [expect] table");
    std::fs::write(&path, wrong).unwrap();
    git(&repo, &["commit", "-qam", "a wrong expectation"]);
    let worse = scenario_pr(&repo, &tmp.0.join("worse"));
    let comment = std::fs::read_to_string(tmp.0.join("worse/comment.md")).unwrap();
    assert_eq!(worse.status.code(), Some(1), "{comment}");
    assert!(comment.contains("dst-x3-idf3.2 × gts-chain"), "{comment}");
    assert!(comment.contains("1 worse"), "{comment}");

    // Nothing of the library touched: nothing runs.
    std::fs::write(repo.join("NOTES"), "no library change\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "notes"]);
    let none = scenario_pr(&repo, &tmp.0.join("none"));
    assert_eq!(none.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&none.stdout).contains("No change to scenarios/ or firmware-images/"));
    assert!(!tmp.0.join("none/head").exists());
}
