//! A STOMP 1.2 codec: bytes in, frames out, no IO.
//!
//! * [`Decoder`] takes bytes as they arrive (a frame may be split across several
//!   WebSocket messages, and one message may hold several frames) and yields
//!   [`Item`]s: frames and heart-beats.
//! * [`encode`] turns a [`Frame`] into bytes.
//!
//! Header values are escaped (`\r`, `\n`, `:` and `\`) except in CONNECT and
//! CONNECTED frames, as the specification says. A `content-length` header makes the
//! body exactly that many bytes (so it may contain NUL); otherwise the body ends at
//! the first NUL. Every limit in [`Limits`] is explicit and yields a typed error.

mod decode;
mod encode;
mod frame;

pub use decode::{Decoder, Item, Limits, StompError};
pub use encode::{encode, encode_header_value, encode_into};
pub use frame::{Command, Frame};

/// The EOL a server sends as a heart-beat.
pub const HEARTBEAT: &[u8] = b"\n";
