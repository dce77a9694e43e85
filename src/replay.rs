//! Replay: a captured UART log → the verdict the rig would give a live board.

use std::io::{self, Read};

use serde::Serialize;

use crate::console::{Console, Formats, IdfGuess};
use crate::verdict::{Judge, Verdict};

/// Read size; any size gives the same result.
const CHUNK: usize = 64 * 1024;

/// The verdict on a log and what was learnt about the log itself.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayReport {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Lines read.
    pub lines: u64,
    pub formats: Formats,
    /// The ESP-IDF version the log's lines point to.
    pub idf_version: Option<IdfGuess>,
}

/// Replays a log from a reader, streaming: memory does not grow with the input.
pub fn replay(mut input: impl Read) -> io::Result<ReplayReport> {
    let mut console = Console::new();
    let mut judge = Judge::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        console.feed(&buf[..n], |event| judge.observe(&event));
    }
    console.finish(|event| judge.observe(&event));
    Ok(ReplayReport {
        verdict: judge.finish(),
        lines: console.lines(),
        formats: console.formats(),
        idf_version: console.idf_guess().cloned(),
    })
}

/// Replays a log held in memory.
pub fn replay_bytes(bytes: &[u8]) -> ReplayReport {
    replay(bytes).expect("reading from a slice cannot fail")
}
