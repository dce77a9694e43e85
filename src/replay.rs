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
    /// The outcome, its evidence and the attempts.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Lines read.
    pub lines: u64,
    /// The log formats its lines were found in.
    pub formats: Formats,
    /// The ESP-IDF version the log's lines point to.
    pub idf_version: Option<IdfGuess>,
}

/// Replays a log from a reader, streaming: memory does not grow with the input.
pub fn replay(mut input: impl Read) -> io::Result<ReplayReport> {
    let mut replayer = Replayer::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => replayer.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(replayer.finish())
}

/// Replays a log held in memory.
///
/// ```
/// use otarig::outcome::{OutcomeClass, VerifyReason};
///
/// let report = otarig::replay::replay_bytes(
///     b"E (9012) esp-tls: mbedtls_ssl_handshake returned -0x2700\n\
///       I (9012) esp-tls: Failed to verify peer certificate!\n\
///       I (9012) esp-tls: verification info:   ! The certificate is not correctly signed by the trusted CA\n",
/// );
/// assert_eq!(report.lines, 3);
/// assert_eq!(report.verdict.outcome.outcome, OutcomeClass::TlsVerify);
/// assert_eq!(report.verdict.outcome.reason, Some(VerifyReason::Untrusted));
/// ```
pub fn replay_bytes(bytes: &[u8]) -> ReplayReport {
    let mut replayer = Replayer::default();
    replayer.feed(bytes);
    replayer.finish()
}

/// The console and the judge, fed together.
#[derive(Default)]
struct Replayer {
    console: Console,
    judge: Judge,
}

impl Replayer {
    fn feed(&mut self, bytes: &[u8]) {
        let judge = &mut self.judge;
        self.console.feed(bytes, |event| judge.observe(&event));
    }

    fn finish(mut self) -> ReplayReport {
        let judge = &mut self.judge;
        self.console.finish(|event| judge.observe(&event));
        ReplayReport {
            verdict: self.judge.finish(),
            lines: self.console.lines(),
            formats: self.console.formats(),
            idf_version: self.console.idf_guess().cloned(),
        }
    }
}
