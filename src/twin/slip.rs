//! SLIP framing as the ESP32 ROM loader speaks it: frames between `0xC0` delimiters, with
//! `0xC0` sent as `DB DC` and `0xDB` as `DB DD` inside a frame.
//!
//! [`SlipDecoder`] is streaming: bytes arrive in reads of any size and complete frames come out.
//! Bytes outside a frame (boot messages, line noise) are ignored, as the ROM ignores them. A
//! frame with an invalid escape or longer than the cap is dropped whole, without memory growing
//! past the cap.

/// Frame delimiter.
pub const END: u8 = 0xC0;
/// Escape introducer.
pub(crate) const ESC: u8 = 0xDB;
/// Escaped `END`.
pub(crate) const ESC_END: u8 = 0xDC;
/// Escaped `ESC`.
pub(crate) const ESC_ESC: u8 = 0xDD;

/// Default cap on a decoded frame: larger than any request a flasher sends (the stub's
/// 16 KiB blocks plus header), small enough to bound a twin's memory.
pub(crate) const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// Where the decoder is between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a frame: everything but `END` is ignored.
    Idle,
    /// Inside a frame.
    InFrame,
    /// Inside a frame, after `ESC`.
    Escape,
    /// The frame is being dropped (bad escape or too long); wait for its closing `END`.
    Discard,
}

/// Why frames were dropped, counted so a twin can report noise on the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SlipDrops {
    /// Frames dropped for an `ESC` followed by something other than `DC`/`DD`.
    pub(crate) bad_escape: u64,
    /// Frames dropped for growing past the cap.
    pub oversized: u64,
}

/// Streaming SLIP decoder: `feed` bytes, get complete frames.
#[derive(Debug, Clone)]
pub(crate) struct SlipDecoder {
    state: State,
    frame: Vec<u8>,
    max_frame: usize,
    drops: SlipDrops,
}

impl Default for SlipDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl SlipDecoder {
    /// A decoder that drops frames longer than `max_frame` decoded bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { state: State::Idle, frame: Vec::new(), max_frame, drops: SlipDrops::default() }
    }

    #[cfg(test)]
    /// Frames dropped so far, by reason.
    pub(crate) fn drops(&self) -> SlipDrops {
        self.drops
    }

    /// Decodes `bytes`, returning every frame completed by them (empty frames, such as the
    /// `C0 C0` between two back-to-back frames, are not returned).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for &byte in bytes {
            match (self.state, byte) {
                (State::Idle, END) => self.start(),
                (State::Idle, _) => {}
                // An END on an empty frame is a doubled delimiter: stay ready for data.
                (State::InFrame, END) if self.frame.is_empty() => {}
                // Flashers send both delimiters (`C0 … C0`), so after a frame the line is idle
                // again and text between frames is not mistaken for one.
                (State::InFrame, END) => {
                    frames.push(std::mem::take(&mut self.frame));
                    self.state = State::Idle;
                }
                (State::InFrame, ESC) => self.state = State::Escape,
                (State::InFrame, _) => self.push(byte),
                (State::Escape, ESC_END) => {
                    self.state = State::InFrame;
                    self.push(END);
                }
                (State::Escape, ESC_ESC) => {
                    self.state = State::InFrame;
                    self.push(ESC);
                }
                (State::Escape, END) => {
                    // An END right after ESC ends a broken frame: drop it.
                    self.drops.bad_escape += 1;
                    self.frame.clear();
                    self.state = State::Idle;
                }
                (State::Escape, _) => {
                    self.drops.bad_escape += 1;
                    self.discard();
                }
                (State::Discard, END) => self.state = State::Idle,
                (State::Discard, _) => {}
            }
        }
        frames
    }

    fn start(&mut self) {
        self.frame.clear();
        self.state = State::InFrame;
    }

    fn push(&mut self, byte: u8) {
        if self.frame.len() >= self.max_frame {
            self.drops.oversized += 1;
            self.discard();
        } else {
            self.frame.push(byte);
        }
    }

    fn discard(&mut self) {
        self.frame.clear();
        self.state = State::Discard;
    }
}

/// Encodes one frame: `C0`, the escaped bytes, `C0`.
pub fn encode(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + frame.len() / 16 + 2);
    out.push(END);
    for &byte in frame {
        match byte {
            END => out.extend_from_slice(&[ESC, ESC_END]),
            ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
            _ => out.push(byte),
        }
    }
    out.push(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_special_bytes() {
        assert_eq!(encode(&[1, 0xC0, 2, 0xDB, 3]), [0xC0, 1, 0xDB, 0xDC, 2, 0xDB, 0xDD, 3, 0xC0]);
        assert_eq!(encode(&[]), [0xC0, 0xC0]);
    }

    #[test]
    fn round_trips_every_byte_value_in_any_chunking() {
        let frame: Vec<u8> = (0..=255u8).chain([0xC0, 0xDB, 0xDB, 0xC0]).collect();
        let wire: Vec<u8> = [encode(&frame), encode(b"second")].concat();
        for chunk in [1, 2, 3, 7, 64, wire.len()] {
            let mut decoder = SlipDecoder::default();
            let frames: Vec<Vec<u8>> = wire.chunks(chunk).flat_map(|c| decoder.feed(c)).collect();
            assert_eq!(frames, [frame.clone(), b"second".to_vec()], "chunk {chunk}");
        }
    }

    #[test]
    fn escape_split_across_reads() {
        let mut decoder = SlipDecoder::default();
        assert!(decoder.feed(&[0xC0, 7, 0xDB]).is_empty());
        assert_eq!(decoder.feed(&[0xDC, 0xC0]), [vec![7, 0xC0]]);
    }

    #[test]
    fn ignores_bytes_outside_frames() {
        let mut decoder = SlipDecoder::default();
        let mut wire = b"ets Jun  8 2016 00:22:57\r\nwaiting for download\r\n".to_vec();
        wire.extend(encode(&[1, 2, 3]));
        wire.extend(b"noise between frames");
        wire.extend([0xC0, 0xC0, 4, 0xC0]);
        assert_eq!(decoder.feed(&wire), [vec![1, 2, 3], vec![4]]);
    }

    #[test]
    fn bad_escape_drops_only_that_frame() {
        let mut decoder = SlipDecoder::default();
        let mut wire = vec![0xC0, 1, 0xDB, 0x00, 2, 0xC0];
        wire.extend(encode(&[9]));
        assert_eq!(decoder.feed(&wire), [vec![9]]);
        assert_eq!(decoder.drops().bad_escape, 1);

        // ESC then END: the frame is dropped and the END closes it.
        let mut decoder = SlipDecoder::default();
        assert_eq!(decoder.feed(&[0xC0, 1, 0xDB, 0xC0, 0xC0, 5, 0xC0]), [vec![5]]);
        assert_eq!(decoder.drops().bad_escape, 1);
    }

    #[test]
    fn oversized_frame_is_dropped_without_growing() {
        let mut decoder = SlipDecoder::new(16);
        let mut wire = vec![0xC0];
        wire.extend([0x55; 1000]);
        wire.push(0xC0);
        wire.extend(encode(&[0x55; 16]));
        assert_eq!(decoder.feed(&wire), [vec![0x55; 16]]);
        assert_eq!(decoder.drops().oversized, 1);
        assert!(decoder.frame.capacity() <= 32, "capacity {}", decoder.frame.capacity());
    }
}
