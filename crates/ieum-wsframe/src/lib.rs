//! Refuses an oversized WebSocket frame as soon as its header arrives.
//!
//! actix-http's WebSocket parser compares a frame's length with its limit only
//! after the whole frame has been buffered. A client, before it authenticates,
//! can announce a 2^62-byte (or a 300 MB) frame and the server keeps buffering
//! until memory runs out. [`FrameGuard`] sits on the raw bytes the client sends
//! after the upgrade and reads the RFC 6455 (section 5.2) frame headers as they
//! pass: a header announcing too much is refused before any of its payload is
//! buffered. The bytes still go, unchanged, to actix's parser; the guard keeps at
//! most one header (14 bytes) of its own and skips payloads by counting.

/// Limits in force for the next bytes; may change between calls (a small budget before authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A frame header announced a payload over the limit (close code 1009).
    FrameTooLarge { announced: u64, limit: usize },
    /// Continuation frames added up past the message limit (close code 1009).
    MessageTooLarge { total: u64, limit: usize },
    /// The client broke RFC 6455 framing (close code 1002): an oversized or
    /// fragmented control frame, a continuation with no message open, a new data
    /// frame inside an open message, an unmasked frame, a reserved opcode, or a
    /// 64-bit length with its top bit set.
    Protocol(&'static str),
}

impl Refusal {
    /// The close code to send: 1009 (message too big) or 1002 (protocol error).
    pub fn close_code(&self) -> u16 {
        match self {
            Refusal::FrameTooLarge { .. } | Refusal::MessageTooLarge { .. } => 1009,
            Refusal::Protocol(_) => 1002,
        }
    }
}

/// 2 fixed bytes, up to 8 of extended length, 4 of mask key.
const MAX_HEADER_BYTES: usize = 14;
const MASK_KEY_BYTES: usize = 4;
const MAX_CONTROL_PAYLOAD_BYTES: u8 = 125;

/// What a frame's opcode means for the fragmentation bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Continuation,
    /// Text or binary: starts a message.
    Data,
    /// Close, ping or pong: may sit inside a fragmented message, counts toward nothing.
    Control,
}

impl FrameKind {
    fn of(first_header_byte: u8) -> Result<Self, Refusal> {
        match first_header_byte & 0x0F {
            0x0 => Ok(FrameKind::Continuation),
            0x1 | 0x2 => Ok(FrameKind::Data),
            0x8..=0xA => Ok(FrameKind::Control),
            // No extension is negotiated, so a reserved opcode leaves us unable to
            // tell whether the frame belongs to a message; refuse it as RFC 6455 asks.
            _ => Err(Refusal::Protocol("reserved opcode")),
        }
    }
}

/// Watches the client's byte stream and refuses the first frame whose header breaks a limit.
#[derive(Debug, Default)]
pub struct FrameGuard {
    /// The header of the frame being received; only its first `header_len` bytes are meaningful.
    header: [u8; MAX_HEADER_BYTES],
    header_len: usize,
    /// Payload bytes of the current frame still to pass; set as soon as the length is read.
    payload_left: u64,
    /// Payload announced so far by the fragments of the open message; `None` when no message is open.
    open_message_total: Option<u64>,
    /// Kept so that a caller who keeps feeding bytes after a refusal keeps being refused.
    refusal: Option<Refusal>,
}

impl FrameGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next bytes the client sent. Returns the first refusal; after a refusal every later call returns the same refusal again.
    pub fn scan(&mut self, chunk: &[u8], limits: Limits) -> Result<(), Refusal> {
        if let Some(refusal) = &self.refusal {
            return Err(refusal.clone());
        }
        let mut rest = chunk;
        while let Some((&byte, after_byte)) = rest.split_first() {
            if self.header_len == 0 && self.payload_left > 0 {
                let skipped = usize::try_from(self.payload_left)
                    .map_or(rest.len(), |left| left.min(rest.len()));
                self.payload_left -= skipped as u64;
                rest = &rest[skipped..];
                continue;
            }
            if let Err(refusal) = self.take_header_byte(byte, limits) {
                self.refusal = Some(refusal.clone());
                return Err(refusal);
            }
            rest = after_byte;
        }
        Ok(())
    }

    /// True while no frame is partly received (useful for tests / diagnostics).
    pub fn at_frame_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }

    /// Each check runs at the first header byte that makes it decidable, so a bad
    /// frame is refused with as few of its bytes as possible: the length is judged
    /// before the mask key arrives, and the payload is never waited for.
    fn take_header_byte(&mut self, byte: u8, limits: Limits) -> Result<(), Refusal> {
        self.header[self.header_len] = byte;
        self.header_len += 1;
        let kind = FrameKind::of(self.header[0])?;
        let final_fragment = self.header[0] & 0x80 != 0;
        if self.header_len == 1 {
            return self.check_fragment_order(kind, final_fragment);
        }
        if self.header[1] & 0x80 == 0 {
            return Err(Refusal::Protocol("unmasked client frame"));
        }
        let short_length = self.header[1] & 0x7F;
        // 126 and 127 only announce lengths over 125, so the 7 bits alone decide it.
        if kind == FrameKind::Control && short_length > MAX_CONTROL_PAYLOAD_BYTES {
            return Err(Refusal::Protocol("control frame over 125 bytes"));
        }
        let length_end = match short_length {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        if self.header_len == length_end {
            let announced = match short_length {
                126 | 127 => self.header[2..length_end]
                    .iter()
                    .fold(0, |length, byte| length << 8 | u64::from(*byte)),
                _ => u64::from(short_length),
            };
            if announced >> 63 != 0 {
                return Err(Refusal::Protocol("64-bit length with its top bit set"));
            }
            self.admit(kind, final_fragment, announced, limits)?;
            // Counted down by `scan` only once the mask key is in (`header_len` back to 0).
            self.payload_left = announced;
        }
        if self.header_len == length_end + MASK_KEY_BYTES {
            self.header_len = 0;
        }
        Ok(())
    }

    fn check_fragment_order(&self, kind: FrameKind, final_fragment: bool) -> Result<(), Refusal> {
        match (kind, self.open_message_total) {
            (FrameKind::Control, _) if !final_fragment => {
                Err(Refusal::Protocol("fragmented control frame"))
            }
            (FrameKind::Continuation, None) => {
                Err(Refusal::Protocol("continuation with no message open"))
            }
            (FrameKind::Data, Some(_)) => {
                Err(Refusal::Protocol("new data frame inside an open message"))
            }
            _ => Ok(()),
        }
    }

    /// Checks the announced length against the limits and updates the open message.
    fn admit(
        &mut self,
        kind: FrameKind,
        final_fragment: bool,
        announced: u64,
        limits: Limits,
    ) -> Result<(), Refusal> {
        if exceeds(announced, limits.max_frame_bytes) {
            return Err(Refusal::FrameTooLarge {
                announced,
                limit: limits.max_frame_bytes,
            });
        }
        let total = match kind {
            FrameKind::Control => return Ok(()),
            FrameKind::Data => announced,
            FrameKind::Continuation => self
                .open_message_total
                .unwrap_or(0)
                .saturating_add(announced),
        };
        // An unfragmented data frame is a whole message, so it is held to the message limit too.
        if exceeds(total, limits.max_message_bytes) {
            return Err(Refusal::MessageTooLarge {
                total,
                limit: limits.max_message_bytes,
            });
        }
        self.open_message_total = (!final_fragment).then_some(total);
        Ok(())
    }
}

fn exceeds(value: u64, limit: usize) -> bool {
    u64::try_from(limit).is_ok_and(|limit| value > limit)
}
