//! The standalone twin's control channel: what a lab's EN button and power switch do, as text
//! lines on `otarig twin`'s standard input.
//!
//! One command per line; each is answered with one line on standard output once it has taken
//! effect, so a script can wait for `ok` before it opens the port again:
//!
//! | line             | effect                                                      | answer |
//! |------------------|-------------------------------------------------------------|--------|
//! | `reset`          | EN pulsed, boot from flash (the boot log goes out)          | `ok`   |
//! | `reset boot`     | the same                                                    | `ok`   |
//! | `reset download` | EN pulsed with GPIO0 low: into the ROM's serial loader      | `ok`   |
//! | `power-cut`      | power removed: silent, flash keeps what was written so far  | `ok`   |
//!
//! After `power-cut`, either `reset` brings power back. Blank lines and lines starting with
//! `#` are ignored; anything else is answered `error: ...` and changes nothing. The end of
//! input ends the channel, not the twin. A line longer than `MAX_CONTROL_LINE` bytes or not
//! UTF-8 is answered `error: ...` too; it is neither kept whole nor echoed.

use std::io::{self, BufRead, Write};
use std::str::FromStr;

use super::device::TwinHandle;

/// One control line, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlCommand {
    /// EN pulsed: into the serial loader if `download`, else booting from flash.
    Reset { download: bool },
    /// Power removed.
    PowerCut,
}

/// The commands, as the error message lists them.
pub(crate) const COMMANDS: &str = "reset [boot|download], power-cut";

/// A control line that is no command; answered `error: ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown command {line:?}; commands: {COMMANDS}")]
pub(crate) struct UnknownCommand {
    /// The line, trimmed.
    pub line: String,
}

impl FromStr for ControlCommand {
    type Err = UnknownCommand;

    fn from_str(line: &str) -> Result<Self, UnknownCommand> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["reset"] | ["reset", "boot"] => Ok(Self::Reset { download: false }),
            ["reset", "download"] => Ok(Self::Reset { download: true }),
            ["power-cut"] => Ok(Self::PowerCut),
            _ => Err(UnknownCommand { line: line.trim().to_owned() }),
        }
    }
}

impl ControlCommand {
    /// Carries the command out; returns once it has taken effect.
    pub(crate) fn apply(self, twin: &TwinHandle) {
        match self {
            Self::Reset { download } => twin.reset(download),
            Self::PowerCut => twin.power_cut(),
        }
    }
}

/// The longest control line; longer lines are refused (and not kept), the channel goes on.
pub(crate) const MAX_CONTROL_LINE: usize = 4096;

/// A control line that cannot be a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadLine {
    #[error("line longer than {MAX_CONTROL_LINE} bytes")]
    TooLong,
    #[error("line is not UTF-8")]
    NotUtf8,
}

/// Reads the next line of `input` into `line` (without its `\n`), keeping at most
/// [`MAX_CONTROL_LINE`] bytes of it; `Ok(None)` at the end of input, `Ok(Some(false))` for a
/// line that was longer (the rest was read and dropped).
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let mut whole = true;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(any.then_some(whole));
        }
        any = true;
        let (part, used, ended) = match memchr::memchr(b'\n', available) {
            Some(at) => (&available[..at], at + 1, true),
            None => (available, available.len(), false),
        };
        let room = MAX_CONTROL_LINE.saturating_sub(line.len());
        if part.len() > room {
            whole = false;
        }
        line.extend_from_slice(&part[..part.len().min(room)]);
        input.consume(used);
        if ended {
            return Ok(Some(whole));
        }
    }
}

/// Reads commands from `input` until it ends, applying each to `twin` and answering on
/// `answers`. Returns the error that ended reading or answering, if any.
pub fn serve(input: impl BufRead, answers: impl Write, twin: &TwinHandle) -> io::Result<()> {
    serve_with(input, answers, |command| command.apply(twin))
}

/// [`serve`] with the commands going to `apply`. A line that is too long or not UTF-8 is
/// answered `error: ...` and the channel goes on.
pub(crate) fn serve_with(
    mut input: impl BufRead,
    mut answers: impl Write,
    mut apply: impl FnMut(ControlCommand),
) -> io::Result<()> {
    let mut line = Vec::new();
    while let Some(whole) = next_line(&mut input, &mut line)? {
        let text = match (whole, std::str::from_utf8(&line)) {
            (false, _) => Err(BadLine::TooLong),
            (true, Err(_)) => Err(BadLine::NotUtf8),
            (true, Ok(text)) => Ok(text.trim()),
        };
        match text {
            Ok(text) if text.is_empty() || text.starts_with('#') => continue,
            Ok(text) => match text.parse::<ControlCommand>() {
                Ok(command) => {
                    apply(command);
                    writeln!(answers, "ok")?;
                }
                Err(unknown) => writeln!(answers, "error: {unknown}")?,
            },
            Err(bad) => writeln!(answers, "error: {bad}; commands: {COMMANDS}")?,
        }
        answers.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_to_commands() {
        assert_eq!("reset".parse(), Ok(ControlCommand::Reset { download: false }));
        assert_eq!("  reset   boot ".parse(), Ok(ControlCommand::Reset { download: false }));
        assert_eq!("reset download".parse(), Ok(ControlCommand::Reset { download: true }));
        assert_eq!("power-cut".parse(), Ok(ControlCommand::PowerCut));
    }

    #[test]
    fn unknown_lines_are_refused_with_the_line() {
        for bad in ["reboot", "reset now", " power-cut please ", "RESET"] {
            assert_eq!(bad.parse::<ControlCommand>(), Err(UnknownCommand { line: bad.trim().to_owned() }));
        }
    }

    #[test]
    fn long_and_non_utf8_lines_are_refused_and_the_channel_goes_on() {
        let mut input = b"\xff\xfe reset\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_CONTROL_LINE));
        input.extend_from_slice(b"\nreset download\r\npower-cut");
        let mut answers = Vec::new();
        let mut applied = Vec::new();
        serve_with(&input[..], &mut answers, |command| applied.push(command)).unwrap();
        let answers = String::from_utf8(answers).unwrap();
        let lines: Vec<&str> = answers.lines().collect();
        assert_eq!(lines.len(), 4, "{answers}");
        assert!(lines[0].starts_with("error: line is not UTF-8"), "{answers}");
        assert!(lines[1].starts_with("error: line longer than 4096 bytes"), "{answers}");
        assert!(answers.len() < 1024, "a long line is not echoed: {answers}");
        assert_eq!(lines[2..], ["ok", "ok"]);
        assert_eq!(applied, [ControlCommand::Reset { download: true }, ControlCommand::PowerCut]);
    }
}
