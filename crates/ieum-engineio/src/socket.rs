//! Socket.IO 5 packets: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
}

impl Kind {
    fn digit(self) -> char {
        match self {
            Self::Connect => '0',
            Self::Disconnect => '1',
            Self::Event => '2',
            Self::Ack => '3',
            Self::ConnectError => '4',
        }
    }
}

/// One Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    pub kind: Kind,
    /// `/` unless the packet names another.
    pub namespace: String,
    /// The acknowledgement id an event asks for, or an ack answers.
    pub id: Option<u64>,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SioError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownKind(char),
    #[error("binary packets are not supported")]
    Binary,
    #[error("the namespace is not terminated by a comma")]
    BadNamespace,
    #[error("the acknowledgement id is out of range")]
    BadAckId,
    #[error("the data is not JSON: {0}")]
    BadJson(String),
    #[error("an event needs an array starting with its name")]
    BadEvent,
    #[error("this packet type cannot carry that data")]
    BadPayload,
}

impl SioError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Binary => "binary_unsupported",
            Self::BadEvent => "invalid_event",
            Self::BadPayload => "invalid_packet",
            _ => "invalid_packet",
        }
    }
}

impl SioPacket {
    /// An event `[name, data]` on `/`.
    pub fn event(name: &str, data: Value) -> Self {
        Self {
            kind: Kind::Event,
            namespace: "/".to_owned(),
            id: None,
            data: Some(Value::Array(vec![Value::String(name.to_owned()), data])),
        }
    }

    /// The answer to the event with acknowledgement id `id`.
    pub fn ack(namespace: &str, id: u64, args: Vec<Value>) -> Self {
        Self {
            kind: Kind::Ack,
            namespace: namespace.to_owned(),
            id: Some(id),
            data: Some(Value::Array(args)),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        out.push(self.kind.digit());
        if self.namespace != "/" {
            out.push_str(&self.namespace);
            out.push(',');
        }
        if let Some(id) = self.id {
            out.push_str(&id.to_string());
        }
        if let Some(data) = &self.data {
            out.push_str(&data.to_string());
        }
        out
    }

    /// Decodes a packet; an event's data must be an array whose first
    /// element is a string (its name).
    pub fn decode(text: &str) -> Result<Self, SioError> {
        let mut rest = text;
        let kind = match rest.chars().next().ok_or(SioError::Empty)? {
            '0' => Kind::Connect,
            '1' => Kind::Disconnect,
            '2' => Kind::Event,
            '3' => Kind::Ack,
            '4' => Kind::ConnectError,
            '5' | '6' => return Err(SioError::Binary),
            other => return Err(SioError::UnknownKind(other)),
        };
        rest = &rest[1..];
        let namespace = if rest.starts_with('/') {
            let end = rest.find(',').ok_or(SioError::BadNamespace)?;
            let namespace = rest[..end].to_owned();
            rest = &rest[end + 1..];
            namespace
        } else {
            "/".to_owned()
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            Some(
                rest[..digits]
                    .parse::<u64>()
                    .map_err(|_| SioError::BadAckId)?,
            )
        } else {
            None
        };
        rest = &rest[digits..];
        let data = if rest.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Value>(rest)
                    .map_err(|e| SioError::BadJson(e.to_string()))?,
            )
        };
        // What each type may carry (socket.io-parser's `isPayloadValid`):
        // the rest would not survive being written again (a bare number
        // after the type reads as an acknowledgement id).
        match (kind, &data) {
            (Kind::Event, data)
                if !data
                    .as_ref()
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .is_some_and(Value::is_string) =>
            {
                return Err(SioError::BadEvent);
            }
            (Kind::Event, _) => {}
            (Kind::Connect, None | Some(Value::Object(_)))
            | (Kind::Disconnect, None)
            | (Kind::Ack, Some(Value::Array(_)))
            | (Kind::ConnectError, Some(Value::Object(_) | Value::String(_))) => {}
            _ => return Err(SioError::BadPayload),
        }
        Ok(Self {
            kind,
            namespace,
            id,
            data,
        })
    }

    /// An event's name and its arguments after the name.
    pub fn event_parts(&self) -> Option<(&str, &[Value])> {
        let array = self.data.as_ref()?.as_array()?;
        let (name, args) = array.split_first()?;
        Some((name.as_str()?, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_socket_io_client_sends() {
        let connect = SioPacket::decode(r#"0{"token":"abc"}"#).unwrap();
        assert_eq!(connect.kind, Kind::Connect);
        assert_eq!(connect.data, Some(json!({"token": "abc"})));
        let event = SioPacket::decode(r#"212["chat",{"chatSeq":"r","message":"안녕"}]"#).unwrap();
        assert_eq!(event.id, Some(12));
        assert_eq!(event.event_parts().unwrap().0, "chat");
        let admin = SioPacket::decode(r#"2/admin,["x"]"#).unwrap();
        assert_eq!(admin.namespace, "/admin");
    }

    #[test]
    fn writes_what_socket_io_client_reads() {
        assert_eq!(
            SioPacket::event("rooms", json!([])).encode(),
            r#"2["rooms",[]]"#
        );
        assert_eq!(
            SioPacket::ack("/", 3, vec![json!({"ok": true})]).encode(),
            r#"33[{"ok":true}]"#
        );
    }

    #[test]
    fn refuses_data_its_type_cannot_carry() {
        // Found by the fuzzer: `0 4` read as CONNECT with data 4, written
        // again as `04`, CONNECT with ack id 4.
        assert_eq!(SioPacket::decode("0 4"), Err(SioError::BadPayload));
        assert_eq!(SioPacket::decode("1{}"), Err(SioError::BadPayload));
        assert_eq!(SioPacket::decode("3{}"), Err(SioError::BadPayload));
        assert_eq!(
            SioPacket::decode("4\"no\""),
            Ok(SioPacket {
                kind: Kind::ConnectError,
                namespace: "/".into(),
                id: None,
                data: Some(json!("no"))
            })
        );
    }

    #[test]
    fn numbers_survive_being_written_again() {
        // Found by the fuzzer: without serde_json's float_roundtrip the
        // last digit of a large float moved.
        let packet = SioPacket::decode("34[3333433333333333333333333333333333333333]").unwrap();
        assert_eq!(SioPacket::decode(&packet.encode()).unwrap(), packet);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(
            SioPacket::decode("51-[\"x\",{\"_placeholder\":true,\"num\":0}]"),
            Err(SioError::Binary)
        );
        assert_eq!(SioPacket::decode("2{}"), Err(SioError::BadEvent));
        assert_eq!(SioPacket::decode("2[1]"), Err(SioError::BadEvent));
        assert_eq!(SioPacket::decode("2/nsp"), Err(SioError::BadNamespace));
        assert_eq!(
            SioPacket::decode("299999999999999999999999[\"x\"]"),
            Err(SioError::BadAckId)
        );
        assert!(matches!(
            SioPacket::decode("2[\"x\""),
            Err(SioError::BadJson(_))
        ));
        assert_eq!(SioPacket::decode("9"), Err(SioError::UnknownKind('9')));
    }
}
