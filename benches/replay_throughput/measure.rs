//! Runs child processes, times them, reads their peak memory, and checks their answers.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{DECISIVE, Locale, LogFile};

/// The best of several runs of one command on one file.
#[derive(Debug)]
pub struct Measured {
    /// Fastest wall time (spawn to exit).
    pub best: Duration,
    /// Highest peak resident set size of any run, in KiB.
    pub max_rss_kib: u64,
    /// `grep -c`'s count (for grep runs).
    pub count: Option<u64>,
    /// The locale grep ran in (for grep runs).
    pub locale: Option<String>,
}

/// One finished child.
struct Run {
    wall: Duration,
    max_rss_kib: u64,
    stdout: Vec<u8>,
}

/// `otarig replay --format json FILE`, `runs` times; every run's answer is checked
/// against what the generator wrote.
pub fn otarig(exe: &Path, log: &LogFile, runs: usize) -> Measured {
    let mut best = Duration::MAX;
    let mut max_rss_kib = 0;
    for _ in 0..runs {
        let mut cmd = Command::new(exe);
        cmd.arg("replay").arg("--format").arg("json").arg(&log.path);
        let run = run(&mut cmd, "otarig replay");
        check_report(&run.stdout, log);
        best = best.min(run.wall);
        max_rss_kib = max_rss_kib.max(run.max_rss_kib);
    }
    Measured { best, max_rss_kib, count: None, locale: None }
}

/// The ERE alternation of [`DECISIVE`] for `grep -E`.
pub fn pattern() -> String {
    DECISIVE
        .iter()
        .map(|literal| {
            literal.chars().fold(String::new(), |mut out, c| {
                if r"\.[]()*+?{}|^$".contains(c) {
                    out.push('\\');
                }
                out.push(c);
                out
            })
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// `grep -cE PATTERN FILE`, `runs` times, in `locale`; the count is checked.
pub fn grep(log: &LogFile, locale: Locale, runs: usize) -> Measured {
    let pattern = pattern();
    let mut best = Duration::MAX;
    let mut max_rss_kib = 0;
    let mut count = None;
    for _ in 0..runs {
        let mut cmd = Command::new("grep");
        cmd.arg("-cE").arg(&pattern).arg(&log.path);
        if let Locale::C = locale {
            cmd.env("LC_ALL", "C");
        }
        let run = run(&mut cmd, "grep -cE");
        let text = String::from_utf8_lossy(&run.stdout);
        let n: u64 = text.trim().parse().unwrap_or_else(|_| panic!("grep -c printed {text:?}, not a count"));
        assert_eq!(
            n, log.summary.decisive_lines,
            "grep -cE counted {n} lines, the generator wrote {} lines with a decisive pattern",
            log.summary.decisive_lines
        );
        count = Some(n);
        best = best.min(run.wall);
        max_rss_kib = max_rss_kib.max(run.max_rss_kib);
    }
    let locale = match locale {
        Locale::C => "C".to_owned(),
        Locale::Default(name) => name,
    };
    Measured { best, max_rss_kib, count, locale: Some(locale) }
}

/// The locale a child inherits for its character handling (`LC_ALL`, else `LC_CTYPE`,
/// else `LANG`, else C).
pub fn default_locale() -> String {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|value| !value.is_empty())
        .unwrap_or_else(|| "C".to_owned())
}

pub fn is_c_locale(name: &str) -> bool {
    matches!(name, "C" | "POSIX")
}

/// Spawns `cmd`, collects its output, and reaps it with `wait4` to read its peak RSS.
/// Panics with `what` and the child's stderr unless it exited 0.
fn run(cmd: &mut Command, what: &str) -> Run {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
    let pid = libc::pid_t::try_from(child.id()).expect("a process id fits in pid_t");
    let mut stdout_pipe = child.stdout.take().expect("stdout was piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr was piped");
    // Read stderr on the side so neither pipe can fill up and stall the child.
    let stderr_reader = thread::spawn(move || {
        let mut stderr = Vec::new();
        stderr_pipe.read_to_end(&mut stderr).map(|_| stderr)
    });
    let mut stdout = Vec::new();
    stdout_pipe.read_to_end(&mut stdout).unwrap_or_else(|err| panic!("cannot read the output of {what}: {err}"));
    let (status, usage) = wait4(pid, what);
    let wall = started.elapsed();
    let stderr = stderr_reader
        .join()
        .expect("the stderr reader does not panic")
        .unwrap_or_else(|err| panic!("cannot read the error output of {what}: {err}"));
    // The child is reaped already; dropping `Child` neither waits nor kills.
    drop(child);
    let stderr = String::from_utf8_lossy(&stderr);
    if !libc::WIFEXITED(status) {
        panic!("{what} was killed by signal {}; stderr:\n{stderr}", libc::WTERMSIG(status));
    }
    let code = libc::WEXITSTATUS(status);
    assert_eq!(code, 0, "{what} exited with status {code}; stderr:\n{stderr}");
    // Linux reports ru_maxrss in KiB.
    let max_rss_kib = u64::try_from(usage.ru_maxrss).expect("ru_maxrss is not negative");
    Run { wall, max_rss_kib, stdout }
}

/// Waits for `pid` and returns its wait status and resource usage.
fn wait4(pid: libc::pid_t, what: &str) -> (libc::c_int, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our own unreaped child.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return (status, usage);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            panic!("wait4 on {what} (pid {pid}) failed: {err}");
        }
    }
}

/// Checks otarig's JSON against the generator: lines, attempt count, and the outcome of
/// every attempt it kept (the last ones, oldest first) and of the log.
fn check_report(stdout: &[u8], log: &LogFile) {
    let report: Value = serde_json::from_slice(stdout).expect("otarig printed valid JSON");
    let expected = &log.summary;
    assert_eq!(report["lines"].as_u64(), Some(expected.lines), "lines read");
    assert_eq!(report["attempts_total"].as_u64(), Some(expected.attempts), "attempts_total");
    let attempts = report["attempts"].as_array().expect("`attempts` is an array");
    assert_eq!(attempts.len(), expected.last_outcomes.len(), "attempts kept");
    for (n, (got, want)) in attempts.iter().zip(&expected.last_outcomes).enumerate() {
        let outcome = got["outcome"].as_str();
        let reason = got["reason"].as_str();
        assert!(
            outcome == Some(want.outcome) && reason == want.reason,
            "kept attempt {n} (lines {}): otarig says {outcome:?}/{reason:?}, the generator wrote {want:?}",
            got["lines"]
        );
    }
    if let Some(last) = expected.last_outcomes.back() {
        assert_eq!(report["outcome"].as_str(), Some(last.outcome), "the log's outcome");
    }
}
