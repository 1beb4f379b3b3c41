//! clamd's answer to `INSTREAM`, read in a pure function.
//!
//! With the `z` prefix clamd ends its reply with a NUL byte; the forms are
//! `stream: OK`, `stream: <signature> FOUND`, `INSTREAM size limit exceeded.
//! ERROR` (the stream went over its `StreamMaxLength`) and `<reason> ERROR`
//! when it could not scan. Anything else means something other than clamd
//! answered: it is never read as a verdict.

/// What clamd answered to `INSTREAM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanReply {
    Clean,
    Found {
        signature: String,
    },
    /// The stream went over clamd's `StreamMaxLength`.
    OverStreamMaxLength,
    /// clamd could not scan (`<reason> ERROR`).
    Failed {
        reason: String,
    },
}

/// A reply that is none of clamd's forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a clamd reply: {0:?}")]
pub(crate) struct Unrecognized(pub(crate) String);

/// Reads a reply, with or without its terminator (NUL, or a newline for `n`
/// commands).
pub(crate) fn parse_scan_reply(reply: &[u8]) -> Result<ScanReply, Unrecognized> {
    let unrecognized = || Unrecognized(String::from_utf8_lossy(reply).into_owned());
    let text = std::str::from_utf8(reply).map_err(|_| unrecognized())?;
    let text = text.trim_end_matches(['\0', '\n']);
    if let Some(reason) = text.strip_suffix(" ERROR") {
        if reason.starts_with("INSTREAM size limit exceeded") {
            return Ok(ScanReply::OverStreamMaxLength);
        }
        let reason = reason.strip_prefix("stream: ").unwrap_or(reason).trim();
        if reason.is_empty() {
            return Err(unrecognized());
        }
        return Ok(ScanReply::Failed {
            reason: reason.to_owned(),
        });
    }
    let result = text.strip_prefix("stream: ").ok_or_else(unrecognized)?;
    if result == "OK" {
        return Ok(ScanReply::Clean);
    }
    match result.strip_suffix(" FOUND") {
        Some(signature) if is_signature_name(signature) => Ok(ScanReply::Found {
            signature: signature.to_owned(),
        }),
        _ => Err(unrecognized()),
    }
}

/// Whether clamd's `PING` was answered.
pub(crate) fn is_pong(reply: &[u8]) -> bool {
    reply.strip_suffix(b"\0").unwrap_or(reply) == b"PONG"
}

/// Signature names are printable and have no blanks (with
/// `ExtendedDetectionInfo` they carry `(md5:size)`, still without blanks).
fn is_signature_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_is_clean() {
        assert_eq!(parse_scan_reply(b"stream: OK\0"), Ok(ScanReply::Clean));
        assert_eq!(parse_scan_reply(b"stream: OK"), Ok(ScanReply::Clean));
        assert_eq!(parse_scan_reply(b"stream: OK\n"), Ok(ScanReply::Clean));
    }

    #[test]
    fn found_carries_the_signature_name() {
        assert_eq!(
            parse_scan_reply(b"stream: Eicar-Signature FOUND\0"),
            Ok(ScanReply::Found {
                signature: "Eicar-Signature".into()
            })
        );
        assert_eq!(
            parse_scan_reply(b"stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0"),
            Ok(ScanReply::Found {
                signature: "Eicar-Test-Signature.UNOFFICIAL".into()
            })
        );
    }

    #[test]
    fn found_keeps_extended_detection_info() {
        assert_eq!(
            parse_scan_reply(
                b"stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND\0"
            ),
            Ok(ScanReply::Found {
                signature: "Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68)".into()
            })
        );
    }

    #[test]
    fn the_size_limit_error_is_its_own_reply() {
        assert_eq!(
            parse_scan_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Ok(ScanReply::OverStreamMaxLength)
        );
    }

    #[test]
    fn other_errors_carry_the_reason() {
        assert_eq!(
            parse_scan_reply(b"stream: Can't allocate memory ERROR\0"),
            Ok(ScanReply::Failed {
                reason: "Can't allocate memory".into()
            })
        );
        assert_eq!(
            parse_scan_reply(b"Error processing command. ERROR\0"),
            Ok(ScanReply::Failed {
                reason: "Error processing command.".into()
            })
        );
    }

    #[test]
    fn garbage_is_never_a_verdict() {
        for reply in [
            &b""[..],
            b"\0",
            b"PONG\0",
            b"OK\0",
            b"stream: \0",
            b"stream:  FOUND\0",
            b"stream: two words FOUND\0",
            b"stream: OK but more\0",
            b" ERROR\0",
            b"UNKNOWN COMMAND\0",
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            b"stream: \xff\xfe FOUND\0",
        ] {
            assert!(parse_scan_reply(reply).is_err(), "{reply:?}");
        }
    }

    #[test]
    fn pong_answers_ping() {
        assert!(is_pong(b"PONG\0"));
        assert!(is_pong(b"PONG"));
        assert!(!is_pong(b"PONG\n\0"));
        assert!(!is_pong(b""));
    }
}
