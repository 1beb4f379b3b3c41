//! Engine.IO 4 and Socket.IO 5, the protocols of socket.io-client 4, as
//! pure codecs: text in, packets out, typed errors for every limit, no IO.
//!
//! Engine.IO carries packets over HTTP long-polling (several per body,
//! separated by the record separator `\x1e`) or one per WebSocket message;
//! its `message` packets carry Socket.IO packets (`42["chat",{...}]`).
//! Binary packets are refused: the chat contracts are JSON.
//!
//! Specs: <https://socket.io/docs/v4/engine-io-protocol/> and
//! <https://socket.io/docs/v4/socket-io-protocol/>.

pub mod engine;
pub mod socket;

pub use engine::{EngineError, Packet, decode_payload, encode_payload};
pub use socket::{Kind, SioError, SioPacket};
