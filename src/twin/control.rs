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
//! input ends the channel, not the twin.

use std::io::{self, BufRead, Write};
use std::str::FromStr;

use super::device::TwinHandle;

/// One control line, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlCommand {
    /// EN pulsed: into the serial loader if `download`, else booting from flash.
    Reset { download: bool },
    /// Power removed.
    PowerCut,
}

/// The commands, as the error message lists them.
pub const COMMANDS: &str = "reset [boot|download], power-cut";

/// A control line that is no command; answered `error: ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown command {line:?}; commands: {COMMANDS}")]
pub struct UnknownCommand {
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
    pub fn apply(self, twin: &TwinHandle) {
        match self {
            Self::Reset { download } => twin.reset(download),
            Self::PowerCut => twin.power_cut(),
        }
    }
}

/// Reads commands from `input` until it ends, applying each to `twin` and answering on
/// `answers`. Returns the error that ended reading or answering, if any.
pub fn serve(input: impl BufRead, mut answers: impl Write, twin: &TwinHandle) -> io::Result<()> {
    for line in input.lines() {
        let line = line?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match text.parse::<ControlCommand>() {
            Ok(command) => {
                command.apply(twin);
                writeln!(answers, "ok")?;
            }
            Err(unknown) => writeln!(answers, "error: {unknown}")?,
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
}
