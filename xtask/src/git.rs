//! Read-only access to a git directory through the `git` command line.
//! Nothing is checked out: files are read as `TAG:path` blobs.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Repo {
    dir: PathBuf,
}

pub type Result<T> = std::result::Result<T, String>;

impl Repo {
    pub fn new(dir: &Path) -> Self {
        Repo { dir: dir.to_path_buf() }
    }

    fn git(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .map_err(|e| format!("running git: {e}"))?;
        if !out.status.success() {
            return Err(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The commit a tag (or any revision) points to.
    pub fn commit_of(&self, rev: &str) -> Result<String> {
        Ok(self.git(&["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])?.trim().to_string())
    }

    /// Paths of all blobs under `roots` at `rev`.
    pub fn list_files(&self, rev: &str, roots: &[String]) -> Result<Vec<String>> {
        let mut args = vec!["ls-tree", "-r", "--name-only", rev, "--"];
        args.extend(roots.iter().map(String::as_str));
        Ok(self.git(&args)?.lines().map(str::to_string).collect())
    }

    /// Reads `rev:path` for every path, in order, through one
    /// `git cat-file --batch` process (the same content `git show rev:path`
    /// prints, without a process per file).
    pub fn read_files(&self, rev: &str, paths: &[String]) -> Result<Vec<Vec<u8>>> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running git cat-file: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let requests: String = paths.iter().map(|p| format!("{rev}:{p}\n")).collect();
        // Write from a thread so a large batch cannot deadlock on full pipes.
        let writer = std::thread::spawn(move || stdin.write_all(requests.as_bytes()));
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut blobs = Vec::with_capacity(paths.len());
        for p in paths {
            let mut header = String::new();
            stdout.read_line(&mut header).map_err(|e| e.to_string())?;
            let fields: Vec<&str> = header.split_whitespace().collect();
            match fields.as_slice() {
                [_, "blob", size] => {
                    let size: usize = size.parse().map_err(|_| format!("bad header {header:?}"))?;
                    let mut buf = vec![0; size + 1]; // content + trailing LF
                    stdout.read_exact(&mut buf).map_err(|e| e.to_string())?;
                    buf.pop();
                    blobs.push(buf);
                }
                _ => return Err(format!("cannot read {rev}:{p}: {}", header.trim())),
            }
        }
        writer.join().map_err(|_| "writer panicked")?.map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        Ok(blobs)
    }
}
