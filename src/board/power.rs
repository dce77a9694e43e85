//! Power control by a shell command, e.g. a switchable USB hub port:
//! `uhubctl -l 1-1 -p 2 -a {action}`.
//!
//! A template names values in braces, each replaced (shell-quoted) when the command runs:
//! `{action}` (`off` or `on`), `{id}` (the board's id), `{port}` (its serial port, empty when
//! not resolved) and `{usb_serial}` (its USB serial number, empty when it has none). `{{` and
//! `}}` stand for literal braces (`${{HOME}}` is `${HOME}`). Commands run with `sh -c`, standard
//! output discarded, standard error kept for the error message.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a power command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerAction {
    /// Cut the board's power.
    Off,
    /// Restore it.
    On,
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::On => "on",
        })
    }
}

/// The placeholders a template may use.
pub(crate) const PLACEHOLDERS: [&str; 4] = ["action", "id", "port", "usb_serial"];

/// A piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(&'static str),
}

/// A command line with placeholders, checked when the lab config is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandTemplate {
    text: String,
    pieces: Vec<Piece>,
}

/// A template that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{name}` the template does not know.
    #[error(
        "unknown placeholder `{{{name}}}` (known: {{action}}, {{id}}, {{port}}, {{usb_serial}}; `{{{{` for a brace)"
    )]
    UnknownPlaceholder {
        /// What stood between the braces.
        name: String,
    },
    /// A brace without its partner.
    #[error("unbalanced `{{` or `}}` at byte {at} (`{{{{` and `}}}}` for literal braces)")]
    Unbalanced {
        /// Byte offset of the brace in the template.
        at: usize,
    },
    /// The template is empty or only whitespace.
    #[error("the command is empty")]
    Empty,
}

/// The values a template is rendered with.
#[derive(Clone, Copy, Debug)]
pub struct PowerValues<'a> {
    /// `{action}`: `off` or `on`.
    pub action: PowerAction,
    /// `{id}`: the board's id in the lab config.
    pub id: &'a str,
    /// `{port}`: the board's serial port, once resolved.
    pub port: Option<&'a Path>,
    /// `{usb_serial}`: the USB serial number behind the port, when there is one.
    pub usb_serial: Option<&'a str>,
}

impl CommandTemplate {
    /// Reads a template, checking every placeholder and brace.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let position = text.len() - rest.len() + at;
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(TemplateError::Unbalanced { at: position });
            }
            let close = tail.find('}').ok_or(TemplateError::Unbalanced { at: position })?;
            let name = &tail[1..close];
            let known = PLACEHOLDERS
                .iter()
                .find(|p| **p == name)
                .ok_or_else(|| TemplateError::UnknownPlaceholder { name: name.to_owned() })?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Value(known));
            rest = &tail[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self { text: text.to_owned(), pieces })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template names `placeholder`.
    pub(crate) fn uses(&self, placeholder: &str) -> bool {
        self.pieces.iter().any(|piece| matches!(piece, Piece::Value(name) if *name == placeholder))
    }

    /// The command line with every placeholder replaced by its shell-quoted value.
    pub fn render(&self, values: &PowerValues<'_>) -> String {
        let mut line = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => line.push_str(text),
                Piece::Value(name) => {
                    let port = values.port.map(|p| p.to_string_lossy().into_owned());
                    let value = match *name {
                        "action" => values.action.to_string(),
                        "id" => values.id.to_owned(),
                        "port" => port.unwrap_or_default(),
                        _ => values.usb_serial.unwrap_or_default().to_owned(),
                    };
                    line.push_str(&shell_quote(&value));
                }
            }
        }
        line
    }
}

/// `value` as one shell word: bare when it holds only safe characters, else single-quoted.
pub(crate) fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// A power command that did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// The command could not be started (not found, not executable).
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line as rendered.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The command exited unsuccessfully.
    #[error("`{command}` exited with {status}: {stderr}")]
    Failed {
        /// The command line as rendered.
        command: String,
        /// Its exit status, as the system words it.
        status: String,
        /// What it wrote to standard error, trimmed.
        stderr: String,
    },
    /// The command ran past the lab's power timeout and was killed.
    #[error("`{command}` did not end within {after:?}")]
    TimedOut {
        /// The command line as rendered.
        command: String,
        /// The time it was given.
        after: Duration,
    },
}

/// How a board's power is switched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerControl {
    /// The command that cuts power.
    pub off: CommandTemplate,
    /// The command that restores it.
    pub on: CommandTemplate,
    /// How long the board stays unpowered.
    pub off_time: Duration,
}

impl PowerControl {
    /// The template for `action`.
    pub fn template(&self, action: PowerAction) -> &CommandTemplate {
        match action {
            PowerAction::Off => &self.off,
            PowerAction::On => &self.on,
        }
    }

    /// Runs the command for `values.action`, waiting at most `limit`.
    pub fn run(&self, values: &PowerValues<'_>, limit: Duration) -> Result<(), PowerError> {
        run_command(&self.template(values.action).render(values), limit)
    }
}

/// Runs `line` with `sh -c`; fails on a non-zero exit or after `limit` (the command is killed).
pub(crate) fn run_command(line: &str, limit: Duration) -> Result<(), PowerError> {
    let command = line.to_owned();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PowerError::Spawn { command: command.clone(), source })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PowerError::TimedOut { command, after: limit });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(source) => return Err(PowerError::Spawn { command, source }),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    Err(PowerError::Failed { command, status: status.to_string(), stderr: stderr.trim().to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(action: PowerAction) -> PowerValues<'static> {
        PowerValues { action, id: "esp32-a", port: Some(Path::new("/dev/ttyUSB0")), usb_serial: Some("A1 B") }
    }

    fn render(template: &str, action: PowerAction) -> String {
        CommandTemplate::parse(template).unwrap().render(&values(action))
    }

    #[test]
    fn placeholders_are_replaced_and_quoted() {
        assert_eq!(render("uhubctl -l 1-1 -p 2 -a {action}", PowerAction::Off), "uhubctl -l 1-1 -p 2 -a off");
        assert_eq!(render("uhubctl -l 1-1 -p 2 -a {action}", PowerAction::On), "uhubctl -l 1-1 -p 2 -a on");
        assert_eq!(render("relay {id} {port} {usb_serial}", PowerAction::On), "relay esp32-a /dev/ttyUSB0 'A1 B'");
        assert_eq!(render("echo ${{HOME}} {{x}}", PowerAction::On), "echo ${HOME} {x}");
        let none = PowerValues { action: PowerAction::On, id: "b", port: None, usb_serial: None };
        assert_eq!(CommandTemplate::parse("x {port}").unwrap().render(&none), "x ''");
    }

    #[test]
    fn values_cannot_break_out_of_their_word() {
        assert_eq!(shell_quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("24:0A:C4:07:7A:01"), "24:0A:C4:07:7A:01");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(
            CommandTemplate::parse("uhubctl -a {acton}"),
            Err(TemplateError::UnknownPlaceholder { name: "acton".into() })
        );
        assert_eq!(CommandTemplate::parse("x {action"), Err(TemplateError::Unbalanced { at: 2 }));
        assert_eq!(CommandTemplate::parse("x } y"), Err(TemplateError::Unbalanced { at: 2 }));
        assert_eq!(CommandTemplate::parse("  "), Err(TemplateError::Empty));
        assert!(CommandTemplate::parse("a {action}").unwrap().uses("action"));
        assert!(!CommandTemplate::parse("a {id}").unwrap().uses("action"));
    }

    #[test]
    fn commands_run_and_failures_say_why() {
        run_command("true", Duration::from_secs(10)).unwrap();
        match run_command("echo 'hub not found' >&2; exit 3", Duration::from_secs(10)) {
            Err(PowerError::Failed { stderr, status, .. }) => {
                assert_eq!(stderr, "hub not found");
                assert!(status.contains('3'), "{status}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_rendered_command_is_what_runs() {
        let dir = std::env::temp_dir().join(format!("otarig-power-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let template = format!("echo {{action}} {{id}} >> {}", log.display());
        let control = PowerControl {
            off: CommandTemplate::parse(&template).unwrap(),
            on: CommandTemplate::parse(&template).unwrap(),
            off_time: Duration::ZERO,
        };
        control.run(&values(PowerAction::Off), Duration::from_secs(10)).unwrap();
        control.run(&values(PowerAction::On), Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "off esp32-a\non esp32-a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
