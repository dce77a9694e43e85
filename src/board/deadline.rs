//! A time limit on a blocking exchange over a serial port that the exchange's library cannot be
//! given: espflash bounds each command (up to 40 s per MB for an erase) but not a whole flashing,
//! so a board that stops answering could hold a cell for minutes. When the limit passes, the
//! port's descriptor is swapped for `/dev/null` in one step (`dup2`): a read under way ends at
//! its own time limit (the command's), the next one finds nothing and the library's call fails,
//! and the caller reports the limit. The port is useless afterwards; the board is opened afresh.
//!
//! The descriptor is borrowed for the whole exchange and the watch runs on a scoped thread,
//! joined before [`run`] returns: the watch can never touch a descriptor its owner has closed
//! (whose number may name another file by then).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Armed,
    Done,
    Fired,
}

type Shared = (Mutex<State>, Condvar);

/// What an exchange run under a limit gave.
#[derive(Debug)]
pub struct Limited<T> {
    /// What the exchange returned.
    pub value: T,
    /// The limit passed first: the port was cut off, and reads nothing any more.
    pub cut: bool,
}

/// Runs `exchange` with `limit` on the port `fd`: once the limit passes, `fd` refers to
/// `/dev/null`, so the exchange's next read on it finds nothing. The exchange must use the port
/// behind `fd` (and may block in it); `fd` is borrowed until this returns.
pub fn run<T>(fd: BorrowedFd<'_>, limit: Duration, exchange: impl FnOnce() -> T) -> io::Result<Limited<T>> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let shared: Shared = (Mutex::new(State::Armed), Condvar::new());
    std::thread::scope(|scope| {
        let watch = std::thread::Builder::new()
            .name("otarig-port-deadline".into())
            .spawn_scoped(scope, || cut_at_limit(fd, &null, limit, &shared))?;
        let value = {
            // Stops the watch when the exchange ends, also by a panic.
            let _stop = Stop(&shared);
            exchange()
        };
        let _ = watch.join();
        let cut = *shared.0.lock().unwrap_or_else(PoisonError::into_inner) == State::Fired;
        Ok(Limited { value, cut })
    })
}

/// The watch: waits for the end of the exchange or the limit, whichever comes first, and at the
/// limit points `fd` at `null`.
fn cut_at_limit(fd: BorrowedFd<'_>, null: &File, limit: Duration, (state, changed): &Shared) {
    let state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let (mut state, _) =
        changed.wait_timeout_while(state, limit, |s| *s == State::Armed).unwrap_or_else(PoisonError::into_inner);
    if *state == State::Armed {
        // SAFETY: `fd` is borrowed for the whole of `run`, which joins this thread before it
        // returns, so `fd` is open; `null` is open and ours. dup2 makes `fd` refer to /dev/null
        // in one step: `fd` stays open (its owner later closes /dev/null instead of the port),
        // and no other descriptor changes.
        if unsafe { libc::dup2(null.as_raw_fd(), fd.as_raw_fd()) } < 0 {
            tracing::warn!("cannot cut the port off at its time limit: {}", io::Error::last_os_error());
        }
        *state = State::Fired;
    }
}

/// Ends the watch without cutting, unless it has cut already.
struct Stop<'a>(&'a Shared);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let (state, changed) = self.0;
        {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if *state == State::Armed {
                *state = State::Done;
            }
        }
        changed.notify_all();
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
        // SAFETY: `ours` stays open, in place, until the end of the test, after `run` returns;
        // TTYPort has no `AsFd` to borrow its descriptor through.
        let fd = unsafe { BorrowedFd::borrow_raw(ours.as_raw_fd()) };
        let mut buf = [0u8; 8];
        let limited = run(fd, Duration::from_millis(50), || {
            (0..100).find_map(|_| match ours.read(&mut buf) {
                Ok(n) => Some(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => None,
                Err(e) => panic!("{e}"),
            })
        })
        .unwrap();
        assert_eq!(limited.value, Some(0));
        assert!(limited.cut);
    }

    #[test]
    fn ended_in_time_the_port_is_untouched() {
        let (mut ours, mut theirs) = TTYPort::pair().unwrap();
        // SAFETY: `ours` stays open, in place, until the end of the test, after `run` returns.
        let fd = unsafe { BorrowedFd::borrow_raw(ours.as_raw_fd()) };
        let limited = run(fd, Duration::from_secs(60), || theirs.write_all(b"ok")).unwrap();
        assert!(!limited.cut);
        limited.value.unwrap();
        let mut buf = [0u8; 2];
        ours.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    }
}
