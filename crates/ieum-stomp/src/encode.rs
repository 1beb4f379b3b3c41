use crate::frame::Frame;

fn escape_into(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b':' => out.extend_from_slice(b"\\c"),
            _ => out.push(b),
        }
    }
}

/// A header name or value escaped as STOMP 1.2 requires (`\\`, `\n`, `\r`,
/// `\c`), for servers that write part of a frame once and reuse it.
pub fn encode_header_value(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    escape_into(&mut out, s);
    // Only ASCII bytes were replaced by ASCII: still valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the frame's bytes to `out`. A `content-length` header is added when the
/// body is not empty and the frame has none, so bodies may hold NUL bytes.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    let escape = frame.command.escapes_headers();
    out.extend_from_slice(frame.command.as_str().as_bytes());
    out.push(b'\n');
    let mut has_length = false;
    for (k, v) in &frame.headers {
        has_length |= k == "content-length";
        if escape {
            escape_into(out, k);
            out.push(b':');
            escape_into(out, v);
        } else {
            out.extend_from_slice(k.as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    if !has_length && !frame.body.is_empty() {
        out.extend_from_slice(b"content-length:");
        out.extend_from_slice(frame.body.len().to_string().as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&frame.body);
    out.push(0);
}

pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + frame.body.len());
    encode_into(frame, &mut out);
    out
}
