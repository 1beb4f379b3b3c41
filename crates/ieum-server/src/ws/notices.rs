//! The body of a per-frame error notice on `/user/queue/errors`, in the
//! style of the contract the failed frame spoke.

use ieum_domain::DomainError;
use ieum_domain::error::ErrorKind;
use ieum_stomp::Frame;
use serde_json::{Value, json};

use super::routing::{Profile, profile_of};

/// `{"type":"ERROR","code",...}`: native codes, or contract B's three codes
/// (`AUTH_FAILED`, `UNAUTHORIZED`, `SEND_FAILED`) with the native code as
/// `reason`. `tempId` whenever the frame carried one that could be read.
pub fn error_notice(err: &DomainError, frame: &Frame, temp_id: Option<&str>) -> Value {
    let profile = frame
        .get("destination")
        .map(profile_of)
        .unwrap_or(Profile::Native);
    let code = match profile {
        Profile::Native => err.code(),
        Profile::Couple => match err.kind() {
            ErrorKind::Unauthenticated => "AUTH_FAILED",
            ErrorKind::Forbidden | ErrorKind::NotFound => "UNAUTHORIZED",
            _ => "SEND_FAILED",
        },
    };
    let mut body = json!({
        "type": "ERROR",
        "code": code,
        "message": err.public_message(),
        "command": frame.command.as_str(),
    });
    if profile == Profile::Couple {
        body["reason"] = json!(err.code());
    }
    if let Some(t) = temp_id {
        body["tempId"] = json!(t);
    }
    if let Some(r) = frame.get("receipt") {
        body["receiptId"] = json!(r);
    }
    if let Some(d) = frame.get("destination") {
        body["destination"] = json!(d);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use ieum_stomp::Command;

    #[test]
    fn couple_app_errors_use_its_codes_and_keep_the_temp_id() {
        let frame = Frame::new(Command::Send).header("destination", "/app/chat/c-1");
        let err = DomainError::invalid("invalid_type", "unknown message type");
        let body = error_notice(&err, &frame, Some("t-1"));
        assert_eq!(body["code"], "SEND_FAILED");
        assert_eq!(body["reason"], "invalid_type");
        assert_eq!(body["tempId"], "t-1");
        let native = Frame::new(Command::Send).header("destination", "/app/rooms/x/messages");
        assert_eq!(error_notice(&err, &native, None)["code"], "invalid_type");
    }
}
