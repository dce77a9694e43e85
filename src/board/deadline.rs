//! A time limit on a blocking exchange over a serial port that the exchange's library cannot be
//! given: espflash bounds each command (up to 40 s per MB for an erase) but not a whole flashing,
//! so a board that stops answering could hold a cell for minutes. When the limit passes, the
//! port's descriptor is swapped for `/dev/null` in one step (`dup2`): a read under way ends at
//! its own time limit (the command's), the next one finds nothing and the library's call fails,
//! and the caller reports the limit. The port is useless afterwards; the board is opened afresh.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Armed,
    Done,
    Fired,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// A limit running on a port's descriptor until [`PortDeadline::disarm`]ed.
pub struct PortDeadline {
    shared: Shared,
    watch: Option<JoinHandle<()>>,
}

impl PortDeadline {
    /// Starts the clock on the open descriptor `fd`, which must stay open until disarmed.
    pub fn arm(fd: RawFd, limit: Duration) -> io::Result<Self> {
        let null = File::options().read(true).write(true).open("/dev/null")?;
        let shared: Shared = Arc::new((Mutex::new(State::Armed), Condvar::new()));
        let watched = Arc::clone(&shared);
        let watch = std::thread::Builder::new().name("otarig-port-deadline".into()).spawn(move || {
            let (state, changed) = &*watched;
            let state = state.lock().unwrap_or_else(PoisonError::into_inner);
            let (mut state, _) = changed
                .wait_timeout_while(state, limit, |s| *s == State::Armed)
                .unwrap_or_else(PoisonError::into_inner);
            if *state == State::Armed {
                // Under the lock: `disarm` cannot return, so `fd` is still the port's.
                // SAFETY: both descriptors are open; dup2 replaces `fd` atomically.
                if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                    tracing::warn!("cannot cut the port off at its time limit: {}", io::Error::last_os_error());
                }
                *state = State::Fired;
            }
        })?;
        Ok(Self { shared, watch: Some(watch) })
    }

    /// Stops the clock: whether the limit had passed first (the port then reads nothing).
    pub fn disarm(mut self) -> bool {
        self.stop()
    }

    fn stop(&mut self) -> bool {
        let (state, changed) = &*self.shared;
        let fired = {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if *state == State::Armed {
                *state = State::Done;
            }
            *state == State::Fired
        };
        changed.notify_all();
        if let Some(watch) = self.watch.take() {
            let _ = watch.join();
        }
        fired
    }
}

impl Drop for PortDeadline {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serialport::{SerialPort, TTYPort};
    use std::io::{Read, Write};

    #[test]
    fn reads_past_the_limit_find_nothing() {
        // A serial port's reads wait on their own (a read under way when the limit passes ends
        // at its own time; the next one finds the end of /dev/null).
        let (mut ours, _theirs) = TTYPort::pair().unwrap();
        ours.set_timeout(Duration::from_millis(100)).unwrap();
        let deadline = PortDeadline::arm(ours.as_raw_fd(), Duration::from_millis(50)).unwrap();
        let mut buf = [0u8; 8];
        let ended = (0..100).find_map(|_| match ours.read(&mut buf) {
            Ok(n) => Some(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => None,
            Err(e) => panic!("{e}"),
        });
        assert_eq!(ended, Some(0));
        assert!(deadline.disarm());
    }

    #[test]
    fn disarmed_in_time_the_port_is_untouched() {
        let (mut ours, mut theirs) = TTYPort::pair().unwrap();
        let deadline = PortDeadline::arm(ours.as_raw_fd(), Duration::from_secs(60)).unwrap();
        assert!(!deadline.disarm());
        theirs.write_all(b"ok").unwrap();
        let mut buf = [0u8; 2];
        ours.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    }
}
