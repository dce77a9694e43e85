//! RFC 2217 (Telnet COM-PORT-OPTION) as a serial port server speaks it, as a pure state
//! machine: the bytes a client sends in, what they mean for the serial line out — data for the
//! chip, DTR/RTS levels, the baud rate — with the answers owed to the client, in order.
//!
//! Telnet (RFC 854): `IAC` (0xFF) starts a command, `IAC IAC` is a data byte 0xFF in either
//! direction, `IAC WILL/WONT/DO/DONT opt` negotiate an option and `IAC SB ... IAC SE` carries a
//! subnegotiation. The server agrees to BINARY, SUPPRESS-GO-AHEAD and COM-PORT-OPTION in both
//! directions and refuses every other option. Each COM-PORT-OPTION request is answered with its
//! server code (request + 100) and the value now in force, as RFC 2217 requires and pyserial's
//! client waits for: SET-BAUDRATE, SET-DATASIZE, SET-PARITY, SET-STOPSIZE (0: a query),
//! SET-CONTROL (flow control, BREAK, DTR, RTS and their queries), PURGE-DATA, the state masks,
//! SIGNATURE, and NOTIFY-MODEMSTATE / NOTIFY-LINESTATE asked of the server. Once
//! COM-PORT-OPTION is agreed, the server tells the modem state unasked (no input asserted), as
//! pyserial's server does and its client relies on: its `cts`, `dsr`, `ri` and `cd` fail until
//! a NOTIFY-MODEMSTATE has come.
//!
//! Nothing here panics on input: a subnegotiation longer than [`MAX_SUBNEGOTIATION`] is
//! dropped whole, one without the data its code needs is ignored.

/// Interpret As Command.
const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
/// Subnegotiation begin and end.
const SB: u8 = 250;
const SE: u8 = 240;

/// Telnet options the server takes part in.
const BINARY: u8 = 0;
const SGA: u8 = 3;
const COM_PORT_OPTION: u8 = 44;

/// COM-PORT-OPTION codes, client to server (the server answers with code + 100).
const SIGNATURE: u8 = 0;
const SET_BAUDRATE: u8 = 1;
const SET_DATASIZE: u8 = 2;
const SET_PARITY: u8 = 3;
const SET_STOPSIZE: u8 = 4;
const SET_CONTROL: u8 = 5;
const NOTIFY_LINESTATE: u8 = 6;
const NOTIFY_MODEMSTATE: u8 = 7;
const SET_LINESTATE_MASK: u8 = 10;
const SET_MODEMSTATE_MASK: u8 = 11;
const PURGE_DATA: u8 = 12;
/// Server codes are the client's plus this.
const SERVER: u8 = 100;

/// The longest subnegotiation kept (a signature is the longest a client sends).
pub(crate) const MAX_SUBNEGOTIATION: usize = 256;
/// What the server answers a SIGNATURE query with.
const SERVER_SIGNATURE: &[u8] = b"otarig ESP32 twin";

/// The serial line's settings as a client set them (8N1 at 115200 until told otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineSettings {
    /// Baud rate.
    pub baud: u32,
    /// Data bits (5–8).
    pub data_size: u8,
    /// RFC 2217 parity code (1 none, 2 odd, 3 even, 4 mark, 5 space).
    pub parity: u8,
    /// RFC 2217 stop-bit code (1 one, 2 two, 3 one and a half).
    pub stop_size: u8,
    /// RFC 2217 outbound flow control code (1 none, 2 XON/XOFF, 3 hardware).
    pub flow: u8,
    /// RFC 2217 inbound flow control code (14 none, 15 XON/XOFF, 16 hardware...).
    pub inbound_flow: u8,
    /// BREAK asserted.
    pub break_on: bool,
    /// DTR asserted.
    pub dtr: bool,
    /// RTS asserted.
    pub rts: bool,
}

impl Default for LineSettings {
    fn default() -> Self {
        Self {
            baud: 115_200,
            data_size: 8,
            parity: 1,
            stop_size: 1,
            flow: 1,
            inbound_flow: 14,
            break_on: false,
            dtr: false,
            rts: false,
        }
    }
}

/// What a client's bytes mean, in the order they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Bytes for the chip's UART (Telnet escapes removed).
    Data(Vec<u8>),
    /// DTR or RTS changed: both levels now (`true`: asserted).
    Lines { dtr: bool, rts: bool },
    /// The baud rate changed.
    Baud(u32),
    /// Bytes owed to the client (negotiation answers and acknowledgements).
    Reply(Vec<u8>),
}

/// Where the parser is between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT.
    Option(u8),
    /// Inside IAC SB ...
    Sub,
    /// Inside a subnegotiation, after IAC.
    SubIac,
    /// A subnegotiation too long to keep: skipped up to IAC SE.
    SubSkip,
    SubSkipIac,
}

/// One client connection's Telnet and COM-PORT-OPTION state.
#[derive(Debug, Clone)]
pub(crate) struct ComPortServer {
    state: State,
    sub: Vec<u8>,
    settings: LineSettings,
    /// Options in force: (we will, they will), indexed BINARY, SGA, COM-PORT.
    ours: [bool; 3],
    theirs: [bool; 3],
    /// The modem state was told (once COM-PORT-OPTION was first agreed).
    modem_told: bool,
}

impl Default for ComPortServer {
    fn default() -> Self {
        Self {
            state: State::Data,
            sub: Vec::new(),
            settings: LineSettings::default(),
            ours: [false; 3],
            theirs: [false; 3],
            modem_told: false,
        }
    }
}

/// The slot of an option the server takes part in.
fn slot(option: u8) -> Option<usize> {
    match option {
        BINARY => Some(0),
        SGA => Some(1),
        COM_PORT_OPTION => Some(2),
        _ => None,
    }
}

impl ComPortServer {
    /// Reads a client's bytes; returns what they mean, in order.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut data = Vec::new();
        for &byte in bytes {
            match (self.state, byte) {
                (State::Data, IAC) => self.state = State::Command,
                (State::Data, _) => data.push(byte),
                (State::Command, IAC) => {
                    data.push(IAC);
                    self.state = State::Data;
                }
                (State::Command, WILL | WONT | DO | DONT) => self.state = State::Option(byte),
                (State::Command, SB) => {
                    self.sub.clear();
                    self.state = State::Sub;
                }
                // NOP, BREAK, AYT and the rest carry nothing for the line.
                (State::Command, _) => self.state = State::Data,
                (State::Option(verb), option) => {
                    self.state = State::Data;
                    if let Some(reply) = self.negotiate(verb, option) {
                        flush(&mut data, &mut events);
                        events.push(Event::Reply(reply.to_vec()));
                    }
                    if option == COM_PORT_OPTION && !self.modem_told && (self.ours[2] || self.theirs[2]) {
                        self.modem_told = true;
                        flush(&mut data, &mut events);
                        events.push(Event::Reply(modem_state_notification()));
                    }
                }
                (State::Sub, IAC) => self.state = State::SubIac,
                (State::Sub, _) => self.push_sub(byte),
                (State::SubIac, IAC) => {
                    self.state = State::Sub;
                    self.push_sub(IAC);
                }
                (State::SubIac, SE) => {
                    self.state = State::Data;
                    flush(&mut data, &mut events);
                    let sub = std::mem::take(&mut self.sub);
                    self.subnegotiation(&sub, &mut events);
                }
                // IAC followed by anything else inside a subnegotiation: RFC 854 leaves it
                // undefined; the subnegotiation is dropped.
                (State::SubIac, _) => {
                    self.sub.clear();
                    self.state = State::SubSkip;
                }
                (State::SubSkip, IAC) => self.state = State::SubSkipIac,
                (State::SubSkip, _) => {}
                (State::SubSkipIac, SE) => self.state = State::Data,
                (State::SubSkipIac, _) => self.state = State::SubSkip,
            }
        }
        flush(&mut data, &mut events);
        events
    }

    fn push_sub(&mut self, byte: u8) {
        if self.sub.len() >= MAX_SUBNEGOTIATION {
            self.sub.clear();
            self.state = State::SubSkip;
        } else {
            self.sub.push(byte);
        }
    }

    /// The answer to WILL/WONT/DO/DONT, if one is owed (none for what is already agreed).
    fn negotiate(&mut self, verb: u8, option: u8) -> Option<[u8; 3]> {
        let known = slot(option);
        match (verb, known) {
            (WILL, Some(i)) if !self.theirs[i] => {
                self.theirs[i] = true;
                Some([IAC, DO, option])
            }
            (DO, Some(i)) if !self.ours[i] => {
                self.ours[i] = true;
                Some([IAC, WILL, option])
            }
            (WILL | DO, Some(_)) => None,
            (WILL, None) => Some([IAC, DONT, option]),
            (DO, None) => Some([IAC, WONT, option]),
            (WONT, Some(i)) if self.theirs[i] => {
                self.theirs[i] = false;
                Some([IAC, DONT, option])
            }
            (DONT, Some(i)) if self.ours[i] => {
                self.ours[i] = false;
                Some([IAC, WONT, option])
            }
            _ => None,
        }
    }

    /// One complete subnegotiation (the bytes between IAC SB and IAC SE, unescaped).
    fn subnegotiation(&mut self, sub: &[u8], events: &mut Vec<Event>) {
        let [COM_PORT_OPTION, code, value @ ..] = sub else {
            return;
        };
        let code = *code;
        let s = &mut self.settings;
        let answer: Vec<u8> = match (code, value) {
            (SIGNATURE, []) => SERVER_SIGNATURE.to_vec(),
            // The client told its own signature: nothing is owed.
            (SIGNATURE, _) => return,
            (SET_BAUDRATE, [a, b, c, d]) => {
                let baud = u32::from_be_bytes([*a, *b, *c, *d]);
                if baud != 0 && baud != s.baud {
                    s.baud = baud;
                    events.push(Event::Baud(baud));
                }
                s.baud.to_be_bytes().to_vec()
            }
            (SET_DATASIZE, [size, ..]) => {
                if (5..=8).contains(size) {
                    s.data_size = *size;
                }
                vec![s.data_size]
            }
            (SET_PARITY, [parity, ..]) => {
                if (1..=5).contains(parity) {
                    s.parity = *parity;
                }
                vec![s.parity]
            }
            (SET_STOPSIZE, [stop, ..]) => {
                if (1..=3).contains(stop) {
                    s.stop_size = *stop;
                }
                vec![s.stop_size]
            }
            (SET_CONTROL, [control, ..]) => {
                let before = (s.dtr, s.rts);
                let answer = set_control(s, *control);
                if (s.dtr, s.rts) != before {
                    events.push(Event::Lines { dtr: s.dtr, rts: s.rts });
                }
                match answer {
                    Some(answer) => vec![answer],
                    None => return,
                }
            }
            // Nothing waits in the server between the chip and the client, in either direction:
            // a purge has nothing to drop, and is acknowledged.
            (PURGE_DATA, [which @ 1..=3, ..]) => vec![*which],
            (SET_LINESTATE_MASK | SET_MODEMSTATE_MASK, [mask, ..]) => vec![*mask],
            // Asked of the server: no line errors, no modem inputs asserted.
            (NOTIFY_LINESTATE | NOTIFY_MODEMSTATE, _) => vec![0],
            _ => return,
        };
        let mut reply = vec![IAC, SB, COM_PORT_OPTION, code + SERVER];
        reply.extend(escape(&answer));
        reply.extend_from_slice(&[IAC, SE]);
        events.push(Event::Reply(reply));
    }
}

/// SET-CONTROL: applies `control` and returns the value to answer with (none for a code RFC
/// 2217 does not define).
fn set_control(s: &mut LineSettings, control: u8) -> Option<u8> {
    match control {
        0 => Some(s.flow),
        1..=3 => {
            s.flow = control;
            Some(control)
        }
        4 => Some(if s.break_on { 5 } else { 6 }),
        5 | 6 => {
            s.break_on = control == 5;
            Some(control)
        }
        7 => Some(if s.dtr { 8 } else { 9 }),
        8 | 9 => {
            s.dtr = control == 8;
            Some(control)
        }
        10 => Some(if s.rts { 11 } else { 12 }),
        11 | 12 => {
            s.rts = control == 11;
            Some(control)
        }
        13 => Some(s.inbound_flow),
        14..=19 => {
            s.inbound_flow = control;
            Some(control)
        }
        _ => None,
    }
}

/// NOTIFY-MODEMSTATE from the server: CTS, DSR, RI and CD not asserted, none changed (the
/// twin's USB-serial bridge has nothing on its modem inputs, as on ESP32 DevKit boards).
fn modem_state_notification() -> Vec<u8> {
    vec![IAC, SB, COM_PORT_OPTION, NOTIFY_MODEMSTATE + SERVER, 0, IAC, SE]
}

fn flush(data: &mut Vec<u8>, events: &mut Vec<Event>) {
    if !data.is_empty() {
        events.push(Event::Data(std::mem::take(data)));
    }
}

/// The chip's bytes as they go to the client: every 0xFF doubled.
pub(crate) fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64);
    for &byte in bytes {
        out.push(byte);
        if byte == IAC {
            out.push(IAC);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(code: u8, value: &[u8]) -> Vec<u8> {
        [&[IAC, SB, COM_PORT_OPTION, code][..], value, &[IAC, SE]].concat()
    }

    /// What pyserial's client sends on open, and what it waits for.
    #[test]
    fn pyserial_open_is_answered_and_acknowledged() {
        let mut server = ComPortServer::default();
        let mut open = Vec::new();
        for (verb, option) in [(DO, 1), (WILL, SGA), (DO, SGA), (DO, COM_PORT_OPTION), (WILL, COM_PORT_OPTION)] {
            open.extend([IAC, verb, option]);
        }
        let events = server.feed(&open);
        let replies: Vec<Vec<u8>> = events
            .into_iter()
            .map(|event| match event {
                Event::Reply(reply) => reply,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            replies,
            [
                vec![IAC, WONT, 1],
                vec![IAC, DO, SGA],
                vec![IAC, WILL, SGA],
                vec![IAC, WILL, COM_PORT_OPTION],
                sub(NOTIFY_MODEMSTATE + SERVER, &[0]),
                vec![IAC, DO, COM_PORT_OPTION]
            ]
        );
        // Asked again: already agreed, nothing more is said (no negotiation loop).
        assert!(server.feed(&[IAC, WILL, COM_PORT_OPTION]).is_empty());

        let settings = [
            sub(SET_BAUDRATE, &115_200u32.to_be_bytes()),
            sub(SET_DATASIZE, &[8]),
            sub(SET_PARITY, &[1]),
            sub(SET_STOPSIZE, &[1]),
            sub(SET_CONTROL, &[1]),
            sub(SET_CONTROL, &[8]),
            sub(SET_CONTROL, &[11]),
            sub(PURGE_DATA, &[1]),
        ]
        .concat();
        let events = server.feed(&settings);
        assert_eq!(
            events,
            [
                Event::Reply(sub(SET_BAUDRATE + SERVER, &115_200u32.to_be_bytes())),
                Event::Reply(sub(SET_DATASIZE + SERVER, &[8])),
                Event::Reply(sub(SET_PARITY + SERVER, &[1])),
                Event::Reply(sub(SET_STOPSIZE + SERVER, &[1])),
                Event::Reply(sub(SET_CONTROL + SERVER, &[1])),
                Event::Lines { dtr: true, rts: false },
                Event::Reply(sub(SET_CONTROL + SERVER, &[8])),
                Event::Lines { dtr: true, rts: true },
                Event::Reply(sub(SET_CONTROL + SERVER, &[11])),
                Event::Reply(sub(PURGE_DATA + SERVER, &[1])),
            ]
        );
    }

    #[test]
    fn data_keeps_its_order_with_line_changes_and_iac_is_unescaped() {
        let mut server = ComPortServer::default();
        let mut wire = vec![0xC0, IAC, IAC, 0x01];
        wire.extend(sub(SET_CONTROL, &[12]));
        wire.extend(sub(SET_CONTROL, &[9]));
        wire.extend(sub(SET_CONTROL, &[8]));
        wire.extend([0xC0]);
        let events = server.feed(&wire);
        assert_eq!(events[0], Event::Data(vec![0xC0, 0xFF, 0x01]));
        assert_eq!(events[3], Event::Lines { dtr: true, rts: false });
        assert_eq!(events[5], Event::Data(vec![0xC0]));
        assert_eq!(events.len(), 6, "RTS and DTR off change nothing: {events:?}");
    }

    #[test]
    fn baud_changes_are_reported_once_and_queries_answered() {
        let mut server = ComPortServer::default();
        let events = server.feed(&sub(SET_BAUDRATE, &460_800u32.to_be_bytes()));
        assert_eq!(events, [Event::Baud(460_800), Event::Reply(sub(SET_BAUDRATE + SERVER, &460_800u32.to_be_bytes()))]);
        let events = server.feed(&sub(SET_BAUDRATE, &[0, 0, 0, 0]));
        assert_eq!(events, [Event::Reply(sub(SET_BAUDRATE + SERVER, &460_800u32.to_be_bytes()))]);
        assert_eq!(server.feed(&sub(SET_CONTROL, &[7])), [Event::Reply(sub(SET_CONTROL + SERVER, &[9]))]);
        assert_eq!(server.settings.baud, 460_800);
    }

    #[test]
    fn split_reads_and_escaped_values() {
        // 0x0001C2FF baud: its 0xFF is doubled inside the subnegotiation, both ways.
        let wire = sub(SET_BAUDRATE, &[0, 1, 0xC2, IAC, IAC]);
        for chunk in 1..wire.len() {
            let mut server = ComPortServer::default();
            let events: Vec<Event> = wire.chunks(chunk).flat_map(|c| server.feed(c)).collect();
            assert_eq!(
                events,
                [Event::Baud(0x0001_C2FF), Event::Reply(sub(SET_BAUDRATE + SERVER, &[0, 1, 0xC2, IAC, IAC]))],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn hostile_input_is_dropped_without_panic() {
        let mut server = ComPortServer::default();
        let mut wire = vec![IAC, SB, COM_PORT_OPTION, SET_BAUDRATE, IAC, SE]; // no value
        wire.extend([IAC, SB]);
        wire.extend(std::iter::repeat_n(7u8, 10 * MAX_SUBNEGOTIATION));
        wire.extend([IAC, SE, IAC, SB, IAC, 0x42, 1, IAC, SE, b'x', IAC, 0xF1, b'y', IAC, DONT, 99]);
        let events = server.feed(&wire);
        assert_eq!(events, [Event::Data(b"xy".to_vec())]);
        assert!(server.sub.capacity() <= 2 * MAX_SUBNEGOTIATION);
        for byte in 0..=255u8 {
            let _ = server.feed(&[IAC, SB, COM_PORT_OPTION, byte, IAC, SE, IAC, byte, byte]);
        }
    }

    #[test]
    fn output_doubles_iac() {
        assert_eq!(escape(&[1, 0xFF, 2]), [1, 0xFF, 0xFF, 2]);
    }
}
