//! Engine.IO 4 packets: a type digit, then the data.

/// One Engine.IO packet (text only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + the handshake JSON.
    Open(String),
    Close,
    /// `2`, with the probe's `probe` during an upgrade.
    Ping(String),
    Pong(String),
    /// `4` + a Socket.IO packet.
    Message(String),
    Upgrade,
    Noop,
}

/// The record separator between packets of one long-polling body.
pub const SEPARATOR: char = '\u{1e}';

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("binary packets are not supported")]
    Binary,
    #[error("more than {0} packets in one body")]
    TooManyPackets(usize),
    #[error("a body of {0} bytes is over the limit")]
    TooLarge(usize),
}

impl EngineError {
    /// A stable code for logs and error notices.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty | Self::UnknownType(_) => "invalid_packet",
            Self::Binary => "binary_unsupported",
            Self::TooManyPackets(_) | Self::TooLarge(_) => "payload_too_large",
        }
    }
}

impl Packet {
    pub fn encode(&self) -> String {
        match self {
            Self::Open(json) => format!("0{json}"),
            Self::Close => "1".to_owned(),
            Self::Ping(data) => format!("2{data}"),
            Self::Pong(data) => format!("3{data}"),
            Self::Message(data) => format!("4{data}"),
            Self::Upgrade => "5".to_owned(),
            Self::Noop => "6".to_owned(),
        }
    }

    /// One packet: a WebSocket text message, or one record of a body.
    pub fn decode(text: &str) -> Result<Self, EngineError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(EngineError::Empty)?;
        let data = chars.as_str().to_owned();
        Ok(match kind {
            '0' => Self::Open(data),
            '1' => Self::Close,
            '2' => Self::Ping(data),
            '3' => Self::Pong(data),
            '4' => Self::Message(data),
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            'b' => return Err(EngineError::Binary),
            other => return Err(EngineError::UnknownType(other)),
        })
    }
}

/// A long-polling request body: up to `max_packets` packets, at most
/// `max_bytes` in all.
pub fn decode_payload(
    body: &str,
    max_bytes: usize,
    max_packets: usize,
) -> Result<Vec<Packet>, EngineError> {
    if body.len() > max_bytes {
        return Err(EngineError::TooLarge(body.len()));
    }
    let mut packets = Vec::new();
    for record in body.split(SEPARATOR) {
        if packets.len() == max_packets {
            return Err(EngineError::TooManyPackets(max_packets));
        }
        packets.push(Packet::decode(record)?);
    }
    Ok(packets)
}

/// A long-polling response body of encoded packets.
pub fn encode_payload<S: AsRef<str>>(packets: &[S]) -> String {
    let mut body = String::new();
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            body.push(SEPARATOR);
        }
        body.push_str(packet.as_ref());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_splits_on_the_record_separator() {
        let packets = decode_payload("2\u{1e}42[\"chat\",1]\u{1e}3probe", 1000, 10).unwrap();
        assert_eq!(
            packets,
            [
                Packet::Ping(String::new()),
                Packet::Message("2[\"chat\",1]".into()),
                Packet::Pong("probe".into())
            ]
        );
    }

    #[test]
    fn limits_and_binary_are_refused() {
        assert_eq!(decode_payload("4x", 1, 10), Err(EngineError::TooLarge(2)));
        assert_eq!(
            decode_payload("6\u{1e}6\u{1e}6", 100, 2),
            Err(EngineError::TooManyPackets(2))
        );
        assert_eq!(Packet::decode("bAQI="), Err(EngineError::Binary));
        assert_eq!(Packet::decode(""), Err(EngineError::Empty));
        assert_eq!(Packet::decode("9"), Err(EngineError::UnknownType('9')));
    }
}
