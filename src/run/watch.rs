//! Reading a device's console until its update is decided: every byte kept in the transcript,
//! fed to the console and the judge as it arrives, within a time limit.
//!
//! The judge decides (see `Judge::decided`) once the new image has started or the firmware
//! printed its closing failure line. After an update, the start-up lines that follow at once
//! (`App version`, `Calling app_main()`) are read too, as long as they keep coming, so the
//! transcript ends after them; of those only start-up events still reach the judge, so the new
//! image's own update check cannot start another attempt. After a failure the closing line is
//! the last one read; a failure without one (an app that prints nothing of its own) is decided
//! once the line stays quiet (`WatchLimits::failure_quiet`).

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use crate::console::{Console, Event, EventKind};
use crate::outcome::{Outcome, OutcomeClass};
use crate::results::Observed;
use crate::verdict::{Judge, Verdict};

/// Time limits of a watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchLimits {
    /// From the start of the watch to a decision.
    pub(crate) decide_within: Duration,
    /// After an update is decided, the new image's start-up counts as done once the line is
    /// quiet this long...
    pub(crate) tail_quiet: Duration,
    /// ... or at the latest this long after the decision.
    pub(crate) tail_max: Duration,
    /// A failure the firmware printed without a closing line of its own (an app around the
    /// update library that says nothing more) is decided once the line has been quiet this
    /// long after it.
    pub(crate) failure_quiet: Duration,
}

impl WatchLimits {
    /// `decide_within` with the default tail.
    pub fn new(decide_within: Duration) -> Self {
        Self {
            decide_within,
            tail_quiet: Duration::from_millis(100),
            tail_max: Duration::from_secs(1),
            failure_quiet: Duration::from_secs(2),
        }
    }
}

/// How a watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// The judge decided.
    Decided,
    /// Nothing was decided within the limit.
    TimedOut,
    /// The console ended (end of input) before a decision.
    Closed,
}

/// What a watch saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    pub end: WatchEnd,
    /// The judge's verdict on what it was fed.
    pub verdict: Verdict,
    /// Bytes read (all of them are in the transcript).
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
}

/// A watch that does not yield an outcome: the device said nothing, or its console went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Silence {
    #[error("the device printed nothing within {0:?}")]
    Mute(Duration),
    #[error("the console closed after {bytes} bytes, before an outcome")]
    Closed { bytes: u64 },
}

impl Watch {
    /// The observed outcome: the judge's when it decided, `timeout` (with the lines of the
    /// attempt so far) when it did not.
    pub fn observed(&self, limits: &WatchLimits) -> Result<Observed, Silence> {
        match self.end {
            WatchEnd::Decided => {
                Ok(Observed { outcome: self.verdict.outcome, evidence: self.verdict.evidence.clone() })
            }
            WatchEnd::TimedOut if self.bytes == 0 => Err(Silence::Mute(limits.decide_within)),
            WatchEnd::TimedOut => {
                Ok(Observed { outcome: Outcome::of(OutcomeClass::Timeout), evidence: self.verdict.evidence.clone() })
            }
            WatchEnd::Closed => Err(Silence::Closed { bytes: self.bytes }),
        }
    }
}

/// A watch cut short by I/O.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("reading the console: {0}")]
    Read(#[source] io::Error),
    #[error("writing the transcript: {0}")]
    Transcript(#[source] io::Error),
}

/// Reads `console` into `transcript`, judging as it goes, until decided, the limit, or the end
/// of input. `console` must return from `read` now and then even when quiet (a serial port with
/// a short timeout: `TimedOut`/`WouldBlock` count as quiet), or the limits cannot apply.
pub fn watch(console: &mut impl Read, transcript: &mut impl Write, limits: &WatchLimits) -> Result<Watch, WatchError> {
    let started = Instant::now();
    let mut reader = Console::new();
    let mut judge = Judge::new();
    let mut decided_at: Option<Instant> = None;
    // An image started: its start-up lines follow.
    let mut started_up = false;
    let mut last_byte = started;
    let mut bytes = 0u64;
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = match console.read(&mut buf) {
            Ok(0) => break if decided_at.is_some() { WatchEnd::Decided } else { WatchEnd::Closed },
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted) => 0,
            Err(e) => return Err(WatchError::Read(e)),
        };
        if n > 0 {
            transcript.write_all(&buf[..n]).map_err(WatchError::Transcript)?;
            bytes += n as u64;
            last_byte = Instant::now();
            reader.feed(&buf[..n], |event| {
                if decided_at.is_none() {
                    judge.observe(&event);
                    if let Some(outcome) = judge.decided() {
                        decided_at = Some(last_byte);
                        started_up = matches!(outcome.outcome, OutcomeClass::Updated | OutcomeClass::RolledBack);
                    }
                } else if is_start_up(&event) {
                    judge.observe(&event);
                }
            });
        }
        let now = Instant::now();
        match decided_at {
            Some(_) if !started_up => break WatchEnd::Decided,
            Some(at) if now - last_byte >= limits.tail_quiet || now - at >= limits.tail_max => break WatchEnd::Decided,
            None if now - started >= limits.decide_within => break WatchEnd::TimedOut,
            None if now - last_byte >= limits.failure_quiet && judge.failed().is_some() => break WatchEnd::Decided,
            _ => {}
        }
    };
    transcript.flush().map_err(WatchError::Transcript)?;
    Ok(Watch { end, verdict: judge.finish(), bytes, lines: reader.lines() })
}

/// Lines of the start-up that follows a decision; they add evidence (the new image's version)
/// and cannot start an attempt.
fn is_start_up(event: &Event) -> bool {
    matches!(event.kind, EventKind::AppStarted | EventKind::AppVersion { .. } | EventKind::AppIdf { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(log: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/synthetic/{log}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Watches a log held in memory, read `chunk` bytes at a time.
    fn watch_log(bytes: &[u8], chunk: usize) -> (Watch, Vec<u8>) {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut transcript = Vec::new();
        let limits = WatchLimits::new(Duration::from_secs(60));
        let watch = watch(&mut Chunks(bytes, chunk), &mut transcript, &limits).unwrap();
        (watch, transcript)
    }

    #[test]
    fn a_decided_update_keeps_the_new_images_start_up_and_not_its_own_check() {
        let log = synthetic("idf-v5.2/updated.log");
        for chunk in [1, 7, 4096] {
            let (watch, transcript) = watch_log(&log, chunk);
            assert_eq!(watch.end, WatchEnd::Decided);
            assert_eq!(watch.verdict.outcome.outcome, OutcomeClass::Updated);
            assert_eq!(transcript, log, "everything read is in the transcript");
            let observed = watch.observed(&WatchLimits::new(Duration::from_secs(1))).unwrap();
            assert!(observed.evidence.iter().any(|e| e.text.contains("App version:")), "{observed:?}");
        }
    }

    #[test]
    fn a_failure_is_decided_and_an_undecided_log_that_ends_is_closed() {
        let (watch, _) = watch_log(&synthetic("idf-v3.2/tls-verify-untrusted.log"), 64);
        assert_eq!((watch.end, watch.verdict.outcome.outcome), (WatchEnd::Decided, OutcomeClass::TlsVerify));

        let log = synthetic("idf-v3.2/incomplete-power-cut.log");
        let (watch, _) = watch_log(&log, 64);
        assert_eq!(watch.end, WatchEnd::Closed);
        let limits = WatchLimits::new(Duration::from_secs(1));
        assert_eq!(watch.observed(&limits), Err(Silence::Closed { bytes: log.len() as u64 }));
    }

    #[test]
    fn a_quiet_console_times_out_and_a_mute_one_is_an_error() {
        struct Quiet(Vec<u8>);
        impl Read for Quiet {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(ErrorKind::TimedOut.into());
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        // The limit is looked at after each read: a zero limit still reads once.
        let limits = WatchLimits::new(Duration::ZERO);
        let boot = b"I (447) boot: Loaded app from partition at offset 0x10000\r\n".to_vec();
        let mut transcript = Vec::new();
        let mute = watch(&mut Quiet(Vec::new()), &mut transcript, &limits).unwrap();
        assert_eq!(mute.observed(&limits), Err(Silence::Mute(Duration::ZERO)));

        let quiet = watch(&mut Quiet(boot.clone()), &mut transcript, &limits).unwrap();
        assert_eq!(quiet.end, WatchEnd::TimedOut);
        assert_eq!(quiet.observed(&limits).unwrap().outcome, Outcome::of(OutcomeClass::Timeout));
        assert_eq!(transcript, boot);
    }
}
