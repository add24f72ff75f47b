//! Just enough of WebSocket (RFC 6455) on the client → server direction to find where a new frame
//! may be put: after the HTTP upgrade request, the proxy follows frame headers and payload
//! lengths (never the payload itself) and knows when a whole message has ended. Injected frames
//! go only there, so they never split a frame or a fragmented message, and never before the
//! first message (a protocol may insist on what comes first). A connection whose request is not
//! a WebSocket upgrade (plain HTTP, such as an upload) is not followed at all: its body is not
//! frames, and bytes put into it would corrupt it.

use crate::limits::REQUEST_HEAD_BYTES_MAX;

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the HTTP upgrade request; `matched` bytes of its final `\r\n\r\n` seen.
    Handshake { matched: usize },
    /// In a frame header; `len` of its bytes are in `header`.
    Header { len: usize },
    /// In a frame's payload, `remaining` bytes of it to go.
    Payload {
        remaining: u64,
        fin: bool,
        opcode: u8,
    },
    /// The client sent a close frame (or something this scanner does not understand): nothing
    /// may be injected any more.
    Done,
}

/// Follows one client → server byte stream.
#[derive(Debug, Clone)]
pub(crate) struct FrameScanner {
    state: State,
    /// The request head so far, while in the handshake.
    head: Vec<u8>,
    header: [u8; 14],
    /// Inside a fragmented data message (a data frame without FIN was seen).
    fragmented: bool,
    /// Whole messages seen so far.
    messages: u64,
}

impl FrameScanner {
    pub(crate) fn new() -> Self {
        FrameScanner {
            state: State::Handshake { matched: 0 },
            head: Vec::new(),
            header: [0; 14],
            fragmented: false,
            messages: 0,
        }
    }

    /// Whether a frame may be put right now: between frames, outside a fragmented message,
    /// after at least one whole message.
    pub(crate) fn at_boundary(&self) -> bool {
        self.state == State::Header { len: 0 } && !self.fragmented && self.messages > 0
    }

    /// Follows `bytes`; returns the first offset in `1..=bytes.len()` right after which a frame
    /// may be put, if any.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut first = None;
        let mut at = 0;
        while at < bytes.len() {
            match self.state {
                State::Done => return first,
                State::Handshake { matched } => {
                    let byte = bytes[at];
                    at += 1;
                    let matched = if byte == b"\r\n\r\n"[matched] {
                        matched + 1
                    } else if byte == b'\r' {
                        1
                    } else {
                        0
                    };
                    self.head.push(byte);
                    self.state = if matched == 4 {
                        let head = std::mem::take(&mut self.head);
                        if is_upgrade(&head) {
                            State::Header { len: 0 }
                        } else {
                            State::Done
                        }
                    } else if self.head.len() > REQUEST_HEAD_BYTES_MAX {
                        State::Done
                    } else {
                        State::Handshake { matched }
                    };
                }
                State::Header { len } => {
                    self.header[len] = bytes[at];
                    at += 1;
                    let len = len + 1;
                    self.state = State::Header { len };
                    if let Some(payload) = self.header_complete(len) {
                        let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0f);
                        self.state = State::Payload {
                            remaining: payload,
                            fin,
                            opcode,
                        };
                    }
                }
                State::Payload {
                    remaining,
                    fin,
                    opcode,
                } => {
                    let take = remaining.min((bytes.len() - at) as u64);
                    at += take as usize;
                    self.state = State::Payload {
                        remaining: remaining - take,
                        fin,
                        opcode,
                    };
                }
            }
            if let State::Payload {
                remaining: 0,
                fin,
                opcode,
            } = self.state
            {
                self.frame_ended(fin, opcode);
                if first.is_none() && self.at_boundary() {
                    first = Some(at);
                }
            }
        }
        first
    }

    /// The payload length once the header's `len` bytes are all there.
    fn header_complete(&self, len: usize) -> Option<u64> {
        if len < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let code = self.header[1] & 0x7f;
        let extended = match code {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if masked { 4 } else { 0 };
        if len < 2 + extended + mask {
            return None;
        }
        Some(match code {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
            short => u64::from(short),
        })
    }

    fn frame_ended(&mut self, fin: bool, opcode: u8) {
        self.state = State::Header { len: 0 };
        match opcode {
            // Close: whatever follows is not the client's.
            0x8 => self.state = State::Done,
            // Ping, pong: may come between fragments; a message boundary only outside them.
            0x9 | 0xa => {}
            // Continuation.
            0x0 => {
                if fin {
                    self.fragmented = false;
                    self.messages += 1;
                }
            }
            // Text, binary.
            0x1 | 0x2 => {
                if fin {
                    self.messages += 1;
                } else {
                    self.fragmented = true;
                }
            }
            // Reserved opcodes: the stream is not one this scanner follows.
            _ => self.state = State::Done,
        }
    }
}

/// Whether a request head asks for a WebSocket (`Upgrade: websocket`, names and values compared
/// without case).
fn is_upgrade(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n').any(|line| {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        name.trim_ascii().eq_ignore_ascii_case(b"upgrade")
            && value
                .to_ascii_lowercase()
                .windows(9)
                .any(|w| w == b"websocket")
    })
}

/// A complete masked text frame carrying `text`, as a client sends it. `mask` is the masking key.
pub(crate) fn masked_text_frame(text: &str, mask: [u8; 4]) -> Vec<u8> {
    let payload = text.as_bytes();
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | 0x1);
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";

    fn stream() -> Vec<u8> {
        let mut bytes = REQUEST.to_vec();
        bytes.extend(masked_text_frame("hello", [1, 2, 3, 4]));
        // A fragmented message with a ping in the middle.
        let mut first = masked_text_frame("frag-", [5, 6, 7, 8]);
        first[0] = 0x01; // text, no FIN
        bytes.extend(&first);
        let mut ping = masked_text_frame("p", [0, 0, 0, 0]);
        ping[0] = 0x89;
        bytes.extend(&ping);
        let mut last = masked_text_frame("ment", [9, 9, 9, 9]);
        last[0] = 0x80; // continuation, FIN
        bytes.extend(&last);
        bytes.extend(masked_text_frame(&"x".repeat(300), [1, 1, 1, 1]));
        bytes
    }

    /// For each piece of `piece` bytes fed in turn, the first boundary the scanner reports in it.
    fn first_boundaries(bytes: &[u8], piece: usize) -> Vec<usize> {
        let mut scanner = FrameScanner::new();
        let mut found = Vec::new();
        for (index, chunk) in bytes.chunks(piece).enumerate() {
            if let Some(k) = scanner.feed(chunk) {
                found.push(index * piece + k);
            }
        }
        found
    }

    #[test]
    fn boundaries_are_after_whole_messages_only() {
        let bytes = stream();
        let hello_end = REQUEST.len() + 2 + 4 + 5;
        let fragmented_end = hello_end + (2 + 4 + 5) + (2 + 4 + 1) + (2 + 4 + 4);
        let long_end = fragmented_end + 2 + 2 + 4 + 300;
        assert_eq!(long_end, bytes.len());
        let all = [hello_end, fragmented_end, long_end];
        for piece in [1, 3, 7, 64, bytes.len()] {
            // In each piece, the first of `all` that falls inside it.
            let want: Vec<usize> = bytes
                .chunks(piece)
                .enumerate()
                .filter_map(|(index, chunk)| {
                    let (start, end) = (index * piece, index * piece + chunk.len());
                    all.iter().copied().find(|&b| b > start && b <= end)
                })
                .collect();
            assert_eq!(first_boundaries(&bytes, piece), want, "pieces of {piece}");
        }
    }

    #[test]
    fn nothing_before_the_first_message_nor_after_a_close() {
        let mut scanner = FrameScanner::new();
        assert_eq!(scanner.feed(REQUEST), None);
        assert!(!scanner.at_boundary());
        let mut close = masked_text_frame("", [0; 4]);
        close[0] = 0x88;
        assert_eq!(scanner.feed(&masked_text_frame("hi", [0; 4])), Some(8));
        assert!(scanner.at_boundary());
        assert_eq!(scanner.feed(&close), None);
        assert!(!scanner.at_boundary());
        assert_eq!(scanner.feed(&masked_text_frame("after", [0; 4])), None);
    }

    #[test]
    fn plain_http_is_never_followed() {
        // An upload whose body happens to read as a WebSocket text frame.
        let mut upload =
            b"PATCH /v1/uploads/x HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n".to_vec();
        upload.extend(masked_text_frame("hi", [0; 4]));
        let mut scanner = FrameScanner::new();
        assert_eq!(scanner.feed(&upload), None);
        assert!(!scanner.at_boundary());
        // Header names and values in any case.
        let mut shouting = FrameScanner::new();
        shouting.feed(b"GET /v1/ws HTTP/1.1\r\nUPGRADE:WebSocket\r\n\r\n");
        assert_eq!(shouting.feed(&masked_text_frame("hi", [0; 4])), Some(8));
        // A head longer than the bound is not followed.
        let mut long = FrameScanner::new();
        let mut head = b"GET /v1/ws HTTP/1.1\r\n".to_vec();
        head.extend(format!("X: {}\r\n", "y".repeat(REQUEST_HEAD_BYTES_MAX)).as_bytes());
        head.extend(b"Upgrade: websocket\r\n\r\n");
        long.feed(&head);
        assert_eq!(long.feed(&masked_text_frame("hi", [0; 4])), None);
    }

    #[test]
    fn frames_are_masked_and_sized() {
        let frame = masked_text_frame("abc", [1, 2, 3, 4]);
        assert_eq!(
            frame,
            vec![0x81, 0x83, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]
        );
        let long = masked_text_frame(&"y".repeat(200), [0; 4]);
        assert_eq!(&long[..4], &[0x81, 0x80 | 126, 0, 200]);
        assert_eq!(long.len(), 4 + 4 + 200);
    }
}
