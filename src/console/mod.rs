//! Console output of an ESP32 → events: bytes → lines → records → events.
//!
//! Pure and streaming: [`Console::feed`] takes bytes as they arrive from a UART, a file or a
//! pipe, in chunks of any size, and never fails. Memory is bounded by the longest kept line.
//! Lines are read the way users paste them: wrappers of chat and issue trackers are peeled,
//! formats are found wherever they stand in a line, and the errors a line names are read
//! from any of their forms.

mod ansi;
mod dialect;
mod event;
mod facts;
mod host;
mod lines;
mod paste;
mod recognise;
mod record;

pub use dialect::{Formats, IdfGuess};
pub use event::{Event, EventKind, Source};
pub use host::HostPrefix;
pub use lines::MAX_LINE_BYTES;
pub use record::{ArduinoLine, Body, EspHomeLine, IdfLine, IdfTimestamp, Level, Record, TaggedLine};

use dialect::DialectTracker;
use lines::{LineSplitter, RawLine};
use recognise::Recogniser;

/// Turns console bytes into [`Event`]s; see the module documentation.
#[derive(Debug, Default)]
pub struct Console {
    splitter: LineSplitter,
    reader: LineReader,
}

#[derive(Debug, Default)]
struct LineReader {
    recogniser: Recogniser,
    dialect: DialectTracker,
    scratch: Vec<u8>,
}

impl Console {
    /// A console that has read nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes; `on_event` is called for every event the completed lines hold.
    pub fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(Event)) {
        let reader = &mut self.reader;
        self.splitter.feed(bytes, |line| reader.read(line, &mut on_event));
    }

    /// Ends the stream; a last line without a terminator is read too.
    pub fn finish(&mut self, mut on_event: impl FnMut(Event)) {
        let reader = &mut self.reader;
        self.splitter.finish(|line| reader.read(line, &mut on_event));
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.splitter.lines()
    }

    /// The logging formats seen so far.
    pub fn formats(&self) -> Formats {
        self.reader.dialect.formats()
    }

    /// The ESP-IDF version the lines so far point to.
    pub(crate) fn idf_guess(&self) -> Option<&IdfGuess> {
        self.reader.dialect.idf_guess()
    }
}

impl LineReader {
    fn read(&mut self, line: RawLine<'_>, on_event: &mut impl FnMut(Event)) {
        let clean = ansi::strip(line.bytes, &mut self.scratch);
        // Nearly every line is valid UTF-8 (mostly ASCII): validate once, repair only if needed.
        let text = match std::str::from_utf8(clean) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(clean),
        };
        let record = Record::parse(line.number, &text);
        let found = self.recogniser.recognise(&record);
        self.dialect.observe(&record, found.as_ref().map(|(kind, _)| kind));
        if let Some((kind, source)) = found {
            on_event(Event { line: line.number, text: record.text.to_owned(), kind, source });
        }
    }
}

/// All events of a complete log held in memory (tests, small inputs).
pub fn events_of(bytes: &[u8]) -> Vec<Event> {
    let mut console = Console::new();
    let mut events = Vec::new();
    console.feed(bytes, |event| events.push(event));
    console.finish(|event| events.push(event));
    events
}
