use thiserror::Error;

use crate::frame::{Command, Frame};

/// Explicit bounds on what one frame may be. Exceeding one is an error, never an
/// allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Command line, headers and body together.
    pub max_frame_bytes: usize,
    pub max_headers: usize,
    /// One header line (or the command line), escaped, without its EOL.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_headers: 64,
            max_header_bytes: 8 * 1024,
        }
    }
}

/// What the decoder could not accept. Each has a stable [`StompError::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StompError {
    #[error("frame larger than {limit} bytes")]
    FrameTooLarge { limit: usize },
    #[error("more than {limit} headers")]
    TooManyHeaders { limit: usize },
    #[error("header line longer than {limit} bytes")]
    HeaderTooLong { limit: usize },
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("malformed header line {0:?}")]
    MalformedHeader(String),
    #[error("invalid escape sequence in header {0:?}")]
    InvalidEscape(String),
    #[error("invalid content-length {0:?}")]
    InvalidContentLength(String),
    #[error("frame body not terminated by NUL")]
    MissingNul,
    #[error("command or header is not UTF-8")]
    InvalidUtf8,
}

impl StompError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::TooManyHeaders { .. } => "too_many_headers",
            Self::HeaderTooLong { .. } => "header_too_long",
            Self::UnknownCommand(_) => "unknown_command",
            Self::MalformedHeader(_) => "malformed_header",
            Self::InvalidEscape(_) => "invalid_escape",
            Self::InvalidContentLength(_) => "invalid_content_length",
            Self::MissingNul => "missing_nul",
            Self::InvalidUtf8 => "invalid_utf8",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Frame(Frame),
    /// A bare EOL between frames: the peer's heart-beat.
    Heartbeat,
}

/// Incremental decoder. Push bytes as they arrive; pull items until `None`.
/// After an error the stream cannot be resynchronised: close the connection.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    limits: Limits,
}

enum Step {
    Item(Item, usize),
    NeedMore,
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| from + i)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn unescape(raw: &[u8]) -> Result<String, StompError> {
    let s = std::str::from_utf8(raw).map_err(|_| StompError::InvalidUtf8)?;
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            _ => return Err(StompError::InvalidEscape(s.to_owned())),
        }
    }
    Ok(out)
}

fn plain(raw: &[u8]) -> Result<String, StompError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| StompError::InvalidUtf8)
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True while part of a frame is buffered, waiting for the rest.
    pub fn has_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The next complete item, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>, StompError> {
        match self.step()? {
            Step::Item(item, used) => {
                self.start += used;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                } else if self.start > 64 * 1024 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                Ok(Some(item))
            }
            Step::NeedMore => {
                if self.buf.len() - self.start > self.limits.max_frame_bytes {
                    return Err(StompError::FrameTooLarge {
                        limit: self.limits.max_frame_bytes,
                    });
                }
                Ok(None)
            }
        }
    }

    fn step(&self) -> Result<Step, StompError> {
        let buf = &self.buf[self.start..];
        let limits = self.limits;
        match buf {
            [] | [b'\r'] => return Ok(Step::NeedMore),
            [b'\n', ..] => return Ok(Step::Item(Item::Heartbeat, 1)),
            [b'\r', b'\n', ..] => return Ok(Step::Item(Item::Heartbeat, 2)),
            _ => {}
        }
        let too_long = StompError::HeaderTooLong {
            limit: limits.max_header_bytes,
        };
        // Command line.
        let Some(eol) = line_end(buf, 0) else {
            if buf.len() > limits.max_header_bytes {
                return Err(too_long);
            }
            return Ok(Step::NeedMore);
        };
        let cmd_raw = trim_cr(&buf[..eol]);
        if cmd_raw.len() > limits.max_header_bytes {
            return Err(too_long);
        }
        let command = Command::parse(cmd_raw).ok_or_else(|| {
            StompError::UnknownCommand(
                String::from_utf8_lossy(&cmd_raw[..cmd_raw.len().min(32)]).into_owned(),
            )
        })?;
        // Headers.
        let mut headers = Vec::new();
        let mut pos = eol + 1;
        let body_start = loop {
            let Some(eol) = line_end(buf, pos) else {
                if buf.len() - pos > limits.max_header_bytes {
                    return Err(too_long);
                }
                return Ok(Step::NeedMore);
            };
            let line = trim_cr(&buf[pos..eol]);
            if line.len() > limits.max_header_bytes {
                return Err(too_long);
            }
            pos = eol + 1;
            if line.is_empty() {
                break pos;
            }
            if headers.len() == limits.max_headers {
                return Err(StompError::TooManyHeaders {
                    limit: limits.max_headers,
                });
            }
            let colon = line.iter().position(|&b| b == b':').ok_or_else(|| {
                StompError::MalformedHeader(String::from_utf8_lossy(line).into_owned())
            })?;
            let (k, v) = (&line[..colon], &line[colon + 1..]);
            let (k, v) = if command.escapes_headers() {
                (unescape(k)?, unescape(v)?)
            } else {
                (plain(k)?, plain(v)?)
            };
            headers.push((k, v));
        };
        if body_start > limits.max_frame_bytes {
            return Err(StompError::FrameTooLarge {
                limit: limits.max_frame_bytes,
            });
        }
        // Body.
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| StompError::InvalidContentLength(v.clone()))
            })
            .transpose()?;
        let (body_end, frame_end) = match length {
            Some(n) => {
                if body_start.saturating_add(n) >= limits.max_frame_bytes {
                    return Err(StompError::FrameTooLarge {
                        limit: limits.max_frame_bytes,
                    });
                }
                if buf.len() <= body_start + n {
                    return Ok(Step::NeedMore);
                }
                if buf[body_start + n] != 0 {
                    return Err(StompError::MissingNul);
                }
                (body_start + n, body_start + n + 1)
            }
            None => match buf[body_start..].iter().position(|&b| b == 0) {
                Some(i) => (body_start + i, body_start + i + 1),
                None => {
                    if buf.len() > limits.max_frame_bytes {
                        return Err(StompError::FrameTooLarge {
                            limit: limits.max_frame_bytes,
                        });
                    }
                    return Ok(Step::NeedMore);
                }
            },
        };
        if frame_end > limits.max_frame_bytes {
            return Err(StompError::FrameTooLarge {
                limit: limits.max_frame_bytes,
            });
        }
        let frame = Frame {
            command,
            headers,
            body: buf[body_start..body_end].to_vec(),
        };
        Ok(Step::Item(Item::Frame(frame), frame_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Item>, StompError> {
        let mut d = Decoder::new(Limits::default());
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(item) = d.next()? {
            out.push(item);
        }
        Ok(out)
    }

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        decode_all(bytes)
            .unwrap()
            .into_iter()
            .filter_map(|i| match i {
                Item::Frame(f) => Some(f),
                Item::Heartbeat => None,
            })
            .collect()
    }

    #[test]
    fn parses_a_connect_frame_without_unescaping() {
        let f =
            &frames(b"CONNECT\naccept-version:1.2\nhost:x\nAuthorization:Bearer a\\cb\n\n\0")[0];
        assert_eq!(f.command, Command::Connect);
        assert_eq!(f.get("accept-version"), Some("1.2"));
        assert_eq!(
            f.get("Authorization"),
            Some("Bearer a\\cb"),
            "CONNECT is not unescaped"
        );
    }

    #[test]
    fn unescapes_other_frames_and_first_repeated_header_wins() {
        let f = &frames(b"SEND\ndestination:/a\\cb\\\\c\\nd\\re\nx:1\nx:2\n\nhi\0")[0];
        assert_eq!(f.get("destination"), Some("/a:b\\c\nd\re"));
        assert_eq!(f.get("x"), Some("1"));
        assert_eq!(f.body, b"hi");
        assert!(matches!(
            decode_all(b"SEND\nd:\\t\n\n\0"),
            Err(StompError::InvalidEscape(_))
        ));
    }

    #[test]
    fn content_length_bodies_may_contain_nul() {
        let f = &frames(b"SEND\ncontent-length:5\n\na\0b\0c\0")[0];
        assert_eq!(f.body, b"a\0b\0c");
        assert_eq!(
            decode_all(b"SEND\ncontent-length:2\n\nabc\0"),
            Err(StompError::MissingNul)
        );
        assert!(matches!(
            decode_all(b"SEND\ncontent-length:x\n\n\0"),
            Err(StompError::InvalidContentLength(_))
        ));
    }

    #[test]
    fn heartbeats_crlf_and_several_frames_in_one_chunk() {
        let items = decode_all(b"\n\r\nSEND\r\na:b\r\n\r\nx\0\nMESSAGE\n\n\0").unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0], Item::Heartbeat);
        assert_eq!(items[1], Item::Heartbeat);
        assert!(
            matches!(&items[2], Item::Frame(f) if f.command == Command::Send && f.get("a") == Some("b"))
        );
        assert_eq!(items[3], Item::Heartbeat);
        assert!(matches!(&items[4], Item::Frame(f) if f.command == Command::Message));
    }

    #[test]
    fn a_frame_split_byte_by_byte_decodes_once() {
        let bytes = encode(
            &Frame::new(Command::Send)
                .header("destination", "/x")
                .body("안녕"),
        );
        let mut d = Decoder::new(Limits::default());
        let mut got = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(i) = d.next().unwrap() {
                got.push(i);
            }
        }
        assert_eq!(got.len(), 1);
        assert!(!d.has_partial());
    }

    #[test]
    fn limits_are_enforced_with_typed_errors() {
        let limits = Limits {
            max_frame_bytes: 100,
            max_headers: 2,
            max_header_bytes: 20,
        };
        let mut d = Decoder::new(limits);
        d.push(b"SEND\na:1\nb:2\nc:3\n\n\0");
        assert_eq!(d.next(), Err(StompError::TooManyHeaders { limit: 2 }));
        let mut d = Decoder::new(limits);
        d.push(b"SEND\naaaaaaaaaaaaaaaaaaaaaaaaa:1\n\n\0");
        assert_eq!(d.next(), Err(StompError::HeaderTooLong { limit: 20 }));
        let mut d = Decoder::new(limits);
        d.push(b"SEND\n\n");
        d.push(&[b'x'; 200]);
        assert_eq!(d.next(), Err(StompError::FrameTooLarge { limit: 100 }));
        let mut d = Decoder::new(limits);
        d.push(b"SEND\ncontent-length:1000\n\n");
        assert_eq!(d.next(), Err(StompError::FrameTooLarge { limit: 100 }));
        let mut d = Decoder::new(limits);
        let mut whole = b"SEND\n\n".to_vec();
        whole.extend([b'y'; 150]);
        whole.push(0);
        d.push(&whole);
        assert_eq!(
            d.next(),
            Err(StompError::FrameTooLarge { limit: 100 }),
            "complete but too large"
        );
        let mut d = Decoder::new(limits);
        d.push(&[b'A'; 50]);
        assert_eq!(d.next(), Err(StompError::HeaderTooLong { limit: 20 }));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            decode_all(b"HELLO\n\n\0"),
            Err(StompError::UnknownCommand(_))
        ));
        assert!(matches!(
            decode_all(b"SEND\nno-colon\n\n\0"),
            Err(StompError::MalformedHeader(_))
        ));
        assert!(matches!(
            decode_all(b"\xff\xfe\n\n\0"),
            Err(StompError::UnknownCommand(_))
        ));
        assert_eq!(
            decode_all(b"SEND\nk:\xff\n\n\0"),
            Err(StompError::InvalidUtf8)
        );
        assert_eq!(StompError::MissingNul.code(), "missing_nul");
    }

    #[test]
    fn without_nul_the_frame_stays_partial() {
        let mut d = Decoder::new(Limits::default());
        d.push(b"SEND\ndestination:/x\n\nno nul here");
        assert_eq!(d.next(), Ok(None));
        assert!(d.has_partial());
    }
}
