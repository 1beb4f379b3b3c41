//! The tokens in the local store's presigned URLs: a grant (method, key,
//! expiry, and what the request is bound to) signed with HMAC-SHA256. Pure:
//! no IO, no clock (the caller passes `now`).
//!
//! A token is `base64url_nopad(payload || tag)`, where `tag` is the 32-byte
//! HMAC-SHA256 of `payload` under the node's secret and `payload` is
//!
//! ```text
//! version 0x01 | method b'P' or b'G' | expiry: i64 big-endian Unix seconds | key
//! PUT: length u64 BE | content type
//! GET: served content type | disposition b'i' or b'a' | file name
//! ```
//!
//! each string a u16 big-endian byte length then UTF-8. Length prefixes make
//! the encoding unambiguous whatever a string holds, so no two grants sign
//! the same bytes. The tag is checked (in constant time) before any field is
//! read, and the method and expiry after, so a caller learns nothing from a
//! forged token but "bad signature". The token is not encrypted: key, type
//! and file name are readable by whoever holds the URL, who knows them anyway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use ieum_domain::attachment::{Disposition, TransferMethod};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const TAG_BYTES: usize = 32;
/// Longest string field signed (key, content type, file name), in bytes.
pub const FIELD_MAX_BYTES: usize = 1024;
/// Tokens longer than this are refused before decoding.
const TOKEN_MAX_CHARS: usize = 8192;
/// Shortest secret accepted: the HMAC's output size.
pub const SECRET_MIN_BYTES: usize = 32;

/// What a token allows: one method on one key until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key: String,
    /// Whole seconds: what is signed.
    pub expires_at: DateTime<Utc>,
    pub terms: Terms,
}

/// What the request is bound to, per method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terms {
    /// The body must have exactly `length` bytes and this `Content-Type`.
    Put { length: u64, content_type: String },
    /// The object is answered with these, whatever it was stored with.
    Get {
        content_type: String,
        disposition: Disposition,
        file_name: String,
    },
}

impl Terms {
    pub fn method(&self) -> TransferMethod {
        match self {
            Self::Put { .. } => TransferMethod::Put,
            Self::Get { .. } => TransferMethod::Get,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token at all: bad base64, too short or too long, or an unknown version.
    #[error("malformed token")]
    Malformed,
    /// Altered, or signed with another secret.
    #[error("bad token signature")]
    BadSignature,
    #[error("the token is for {granted}, not {used}", granted = .granted.as_str(), used = .used.as_str())]
    WrongMethod {
        granted: TransferMethod,
        used: TransferMethod,
    },
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    /// Only when signing: a string field over [`FIELD_MAX_BYTES`].
    #[error("a token field is longer than {FIELD_MAX_BYTES} bytes")]
    FieldTooLong,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the token secret must have at least {SECRET_MIN_BYTES} bytes")]
pub struct ShortSecret;

/// The node's signing secret. Every node serving the same root needs the same one.
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Result<Self, ShortSecret> {
        if secret.len() < SECRET_MIN_BYTES {
            return Err(ShortSecret);
        }
        Ok(Self {
            secret: secret.to_vec(),
        })
    }

    /// The URL-safe token for `grant`.
    pub fn sign(&self, grant: &Grant) -> Result<String, TokenError> {
        let mut token = encode(grant)?;
        let tag = self.mac(&token).finalize().into_bytes();
        token.extend_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The grant `token` carries, if it is genuine, for `method` and not
    /// expired at `now`.
    pub fn verify(
        &self,
        token: &str,
        method: TransferMethod,
        now: DateTime<Utc>,
    ) -> Result<Grant, TokenError> {
        if token.len() > TOKEN_MAX_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() <= TAG_BYTES {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        self.mac(payload)
            .verify_slice(tag)
            .map_err(|_| TokenError::BadSignature)?;
        let grant = decode(payload).ok_or(TokenError::Malformed)?;
        let granted = grant.terms.method();
        if granted != method {
            return Err(TokenError::WrongMethod {
                granted,
                used: method,
            });
        }
        if now >= grant.expires_at {
            return Err(TokenError::Expired(grant.expires_at));
        }
        Ok(grant)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length; new_from_slice cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(payload);
        mac
    }
}

fn encode(grant: &Grant) -> Result<Vec<u8>, TokenError> {
    let mut payload = Vec::with_capacity(64 + grant.key.len());
    payload.push(VERSION);
    payload.push(match grant.terms.method() {
        TransferMethod::Put => b'P',
        TransferMethod::Get => b'G',
    });
    payload.extend_from_slice(&grant.expires_at.timestamp().to_be_bytes());
    put_str(&mut payload, &grant.key)?;
    match &grant.terms {
        Terms::Put {
            length,
            content_type,
        } => {
            payload.extend_from_slice(&length.to_be_bytes());
            put_str(&mut payload, content_type)?;
        }
        Terms::Get {
            content_type,
            disposition,
            file_name,
        } => {
            put_str(&mut payload, content_type)?;
            payload.push(match disposition {
                Disposition::Inline => b'i',
                Disposition::Attachment => b'a',
            });
            put_str(&mut payload, file_name)?;
        }
    }
    Ok(payload)
}

fn put_str(payload: &mut Vec<u8>, field: &str) -> Result<(), TokenError> {
    if field.len() > FIELD_MAX_BYTES {
        return Err(TokenError::FieldTooLong);
    }
    let length = u16::try_from(field.len()).map_err(|_| TokenError::FieldTooLong)?;
    payload.extend_from_slice(&length.to_be_bytes());
    payload.extend_from_slice(field.as_bytes());
    Ok(())
}

/// The grant in a payload whose tag was checked; `None` if it does not parse.
fn decode(payload: &[u8]) -> Option<Grant> {
    let mut reader = Reader(payload);
    if reader.byte()? != VERSION {
        return None;
    }
    let method = reader.byte()?;
    let expires_at = DateTime::from_timestamp(i64::from_be_bytes(reader.array()?), 0)?;
    let key = reader.string()?;
    let terms = match method {
        b'P' => Terms::Put {
            length: u64::from_be_bytes(reader.array()?),
            content_type: reader.string()?,
        },
        b'G' => Terms::Get {
            content_type: reader.string()?,
            disposition: match reader.byte()? {
                b'i' => Disposition::Inline,
                b'a' => Disposition::Attachment,
                _ => return None,
            },
            file_name: reader.string()?,
        },
        _ => return None,
    };
    reader.0.is_empty().then_some(Grant {
        key,
        expires_at,
        terms,
    })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        if self.0.len() < count {
            return None;
        }
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self) -> Option<String> {
        let length = u16::from_be_bytes(self.array()?);
        let bytes = self.take(usize::from(length))?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(&[7; 32]).unwrap()
    }

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
    }

    fn put_grant() -> Grant {
        Grant {
            key: "attachments/1/upload".into(),
            expires_at: noon() + chrono::Duration::minutes(15),
            terms: Terms::Put {
                length: 1234,
                content_type: "image/png".into(),
            },
        }
    }

    fn get_grant() -> Grant {
        Grant {
            key: "attachments/1/image".into(),
            expires_at: noon() + chrono::Duration::hours(1),
            terms: Terms::Get {
                content_type: "image/png".into(),
                disposition: Disposition::Attachment,
                file_name: "우리 사진 \"1\".png".into(),
            },
        }
    }

    #[test]
    fn a_signed_grant_verifies_to_itself() {
        for grant in [put_grant(), get_grant()] {
            let token = key().sign(&grant).unwrap();
            assert!(
                token
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
                "not URL-safe: {token}"
            );
            let method = grant.terms.method();
            assert_eq!(key().verify(&token, method, noon()), Ok(grant));
        }
    }

    #[test]
    fn any_altered_byte_is_a_bad_signature() {
        let token = key().sign(&put_grant()).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for index in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[index] ^= 0x01;
            let altered = URL_SAFE_NO_PAD.encode(altered);
            assert_eq!(
                key().verify(&altered, TransferMethod::Put, noon()),
                Err(TokenError::BadSignature),
                "byte {index}"
            );
        }
    }

    #[test]
    fn a_token_for_put_does_not_get() {
        let token = key().sign(&put_grant()).unwrap();
        assert_eq!(
            key().verify(&token, TransferMethod::Get, noon()),
            Err(TokenError::WrongMethod {
                granted: TransferMethod::Put,
                used: TransferMethod::Get
            })
        );
    }

    #[test]
    fn a_token_stops_working_at_its_expiry() {
        let grant = put_grant();
        let token = key().sign(&grant).unwrap();
        let just_before = grant.expires_at - chrono::Duration::seconds(1);
        assert!(
            key()
                .verify(&token, TransferMethod::Put, just_before)
                .is_ok()
        );
        assert_eq!(
            key().verify(&token, TransferMethod::Put, grant.expires_at),
            Err(TokenError::Expired(grant.expires_at))
        );
    }

    #[test]
    fn another_secret_does_not_verify() {
        let token = key().sign(&put_grant()).unwrap();
        let other = TokenKey::new(&[8; 32]).unwrap();
        assert_eq!(
            other.verify(&token, TransferMethod::Put, noon()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let too_long = "A".repeat(TOKEN_MAX_CHARS + 1);
        for garbage in ["", "abc", "!!!!", "a b", "AAAA=", too_long.as_str()] {
            assert_eq!(
                key().verify(garbage, TransferMethod::Put, noon()),
                Err(TokenError::Malformed),
                "{garbage:?}"
            );
        }
        // Long enough, valid base64, but no tag made it.
        let forged = URL_SAFE_NO_PAD.encode([0u8; 80]);
        assert_eq!(
            key().verify(&forged, TransferMethod::Put, noon()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn short_secrets_and_long_fields_are_refused() {
        assert_eq!(TokenKey::new(&[1; 31]).unwrap_err(), ShortSecret);
        let mut grant = put_grant();
        grant.key = "k".repeat(FIELD_MAX_BYTES + 1);
        assert_eq!(key().sign(&grant), Err(TokenError::FieldTooLong));
    }
}
