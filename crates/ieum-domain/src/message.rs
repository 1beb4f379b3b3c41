//! Messages.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::attachment::{Attachment, AttachmentState, ScanStatus};
use crate::error::{DomainError, DomainResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Image,
    File,
    Sticker,
    System,
    Thread,
    Temp,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "TEXT",
            Self::Image => "IMAGE",
            Self::File => "FILE",
            Self::Sticker => "STICKER",
            Self::System => "SYSTEM",
            Self::Thread => "THREAD",
            Self::Temp => "TEMP",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TEXT" => Self::Text,
            "IMAGE" => Self::Image,
            "FILE" => Self::File,
            "STICKER" => Self::Sticker,
            "SYSTEM" => Self::System,
            "THREAD" => Self::Thread,
            "TEMP" => Self::Temp,
            _ => return None,
        })
    }
}

/// A stored message. `seq` is the room's gapless order: 1, 2, 3, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub room_id: String,
    pub seq: i64,
    pub sender_id: Uuid,
    pub sender_username: String,
    pub sender_name: String,
    pub sender_image: Option<String>,
    pub kind: MessageKind,
    pub content: String,
    pub image_url: Option<String>,
    /// IMAGE and FILE messages: the uploaded file, as it is now (its scan
    /// may end or its expiry come after the send).
    pub file: Option<MessageFile>,
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// In 1:1 rooms: when the other member read it.
    pub read_at: Option<DateTime<Utc>>,
    /// A thread reply names its parent.
    pub parent_id: Option<Uuid>,
    /// On a parent: how many replies, and the latest one's time.
    pub reply_count: i32,
    pub last_reply_at: Option<DateTime<Utc>>,
    pub edited_at: Option<DateTime<Utc>>,
    /// A tombstone: the content is gone.
    pub deleted: bool,
    /// Self-destructing messages (TEMP): when they go.
    pub expires_at: Option<DateTime<Utc>>,
    /// Users mentioned with `@username`.
    pub mentions: Vec<Uuid>,
    /// Filled by history pages; live deliveries carry none.
    pub reactions: Vec<ReactionCount>,
}

impl Message {
    /// A plain stored text message, for tests (here and in adapters' tests,
    /// through the `mocks` feature): sender name "a", sent now, nothing else
    /// set. Tests change what they care about with `..Message::text(...)`.
    #[cfg(any(test, feature = "mocks"))]
    pub fn text(room_id: &str, seq: i64, sender_id: Uuid, content: &str) -> Self {
        Self {
            id: Uuid::from_u128(seq as u128),
            room_id: room_id.to_owned(),
            seq,
            sender_id,
            sender_username: "a".into(),
            sender_name: "a".into(),
            sender_image: None,
            kind: MessageKind::Text,
            content: content.to_owned(),
            image_url: None,
            file: None,
            client_msg_id: None,
            created_at: Utc::now(),
            read_at: None,
            parent_id: None,
            reply_count: 0,
            last_reply_at: None,
            edited_at: None,
            deleted: false,
            expires_at: None,
            mentions: Vec::new(),
            reactions: Vec::new(),
        }
    }
}

/// The file an IMAGE or FILE message carries: what its subscribers are
/// shown of the attachment. URLs are the server's to make from `id`, and
/// only while [`Self::is_downloadable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFile {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    /// Detected from the bytes.
    pub content_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub scan: ScanStatus,
    pub state: AttachmentState,
    /// An image: thumbnails exist.
    pub is_image: bool,
}

impl MessageFile {
    pub fn is_downloadable(&self) -> bool {
        self.state == AttachmentState::Clean
    }
}

impl From<&Attachment> for MessageFile {
    fn from(attachment: &Attachment) -> Self {
        Self {
            id: attachment.id,
            name: attachment.file_name.clone(),
            size: attachment.size,
            content_type: attachment
                .detected_type
                .map_or_else(|| attachment.declared_type.clone(), |t| t.mime().to_owned()),
            width: attachment.width,
            height: attachment.height,
            scan: attachment.scan_status(),
            state: attachment.state,
            is_image: attachment.is_image(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    pub user_ids: Vec<Uuid>,
}

/// Finds `@username` mentions (lower-cased, without duplicates).
pub fn extract_mentions(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in content.split(|c: char| c.is_whitespace()) {
        let Some(rest) = word.strip_prefix('@') else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect::<String>()
            .trim_end_matches(['.', '-'])
            .to_ascii_lowercase();
        if name.len() >= crate::user::USERNAME_MIN && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

pub const EMOJI_MAX_BYTES: usize = 32;

/// A reaction is one emoji (or short code such as `:+1:`): 1 to 32 bytes, no spaces.
pub fn check_emoji(e: &str) -> DomainResult<String> {
    crate::text::refuse_nul(e)?;
    let e = e.trim();
    if e.is_empty()
        || e.len() > EMOJI_MAX_BYTES
        || e.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(DomainError::invalid(
            "invalid_emoji",
            "a reaction is 1 to 32 bytes without spaces",
        ));
    }
    Ok(e.to_owned())
}

/// A search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub user_id: Uuid,
    pub text: String,
    pub room_id: Option<String>,
    pub sender_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Results older than this (created_at, id) cursor.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
    pub now: DateTime<Utc>,
}

pub const SEARCH_MAX_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePreview {
    pub id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    pub sender_name: String,
    pub kind: MessageKind,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

/// What the store needs to append a message; it assigns `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub parent_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub mentions: Vec<Uuid>,
    pub id: Uuid,
    pub room_id: String,
    pub sender_id: Uuid,
    pub sender_username: String,
    pub sender_name: String,
    pub sender_image: Option<String>,
    pub kind: MessageKind,
    pub content: String,
    pub image_url: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The result of an append: the stored message, and whether it was stored by an
/// earlier send with the same client message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub message: Message,
    pub duplicate: bool,
}

/// A page request over a room's seq order. Results are always oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Only messages with seq < before.
    pub before: Option<i64>,
    /// Only messages with seq > after.
    pub after: Option<i64>,
    pub limit: u32,
    /// Leave out SYSTEM messages (for contracts whose clients know no such type).
    pub skip_system: bool,
}

/// One page of history, oldest first, and whether paging on in the same
/// direction would find more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

pub const CLIENT_MSG_ID_MAX: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct MessagePolicy {
    /// Authors may edit for this long after sending.
    pub edit_window: chrono::Duration,
    /// Authors may delete for this long after sending; admins any time.
    pub delete_window: chrono::Duration,
    /// The longest self-destruct lifetime.
    pub max_ttl_secs: u32,
    pub max_content_chars: usize,
    pub max_page: u32,
    pub default_page: u32,
    /// Messages replayed on resume before the client must page history instead.
    pub max_resume: u32,
}

impl Default for MessagePolicy {
    fn default() -> Self {
        Self {
            edit_window: chrono::Duration::minutes(15),
            delete_window: chrono::Duration::hours(1),
            max_ttl_secs: 7 * 24 * 3600,
            max_content_chars: 4000,
            max_page: 500,
            default_page: 50,
            max_resume: 5000,
        }
    }
}

/// What a client asks to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendMessage {
    /// A thread reply.
    pub parent_id: Option<Uuid>,
    /// Self-destruct after this many seconds (TEMP).
    pub ttl_seconds: Option<u32>,
    pub kind: Option<MessageKind>,
    pub content: String,
    pub image_url: Option<String>,
    /// IMAGE and FILE: an uploaded attachment of the sender in this room.
    pub attachment_id: Option<Uuid>,
    pub client_msg_id: Option<String>,
}

impl MessagePolicy {
    /// Checks a send and returns its normalized parts.
    pub fn check(
        &self,
        m: &SendMessage,
    ) -> DomainResult<(MessageKind, String, Option<String>, Option<String>)> {
        for text in [
            Some(m.content.as_str()),
            m.image_url.as_deref(),
            m.client_msg_id.as_deref(),
        ] {
            crate::text::refuse_nul(text.unwrap_or_default())?;
        }
        let kind = m.kind.unwrap_or(MessageKind::Text);
        if matches!(kind, MessageKind::System) {
            return Err(DomainError::invalid(
                "invalid_type",
                "SYSTEM messages are made by the server",
            ));
        }
        let content = m.content.clone();
        if content.chars().count() > self.max_content_chars {
            return Err(DomainError::invalid(
                "content_too_long",
                format!(
                    "content must be at most {} characters",
                    self.max_content_chars
                ),
            ));
        }
        let image_url = crate::room::check_url("invalid_image_url", m.image_url.as_deref())?;
        match kind {
            MessageKind::Image if image_url.is_none() && m.attachment_id.is_none() => {
                return Err(DomainError::invalid(
                    "missing_image_url",
                    "IMAGE messages need attachmentId or imageUrl",
                ));
            }
            MessageKind::File if m.attachment_id.is_none() => {
                return Err(DomainError::invalid(
                    "missing_attachment",
                    "FILE messages need attachmentId (POST /api/uploads)",
                ));
            }
            _ if m.attachment_id.is_some()
                && !matches!(kind, MessageKind::Image | MessageKind::File) =>
            {
                return Err(DomainError::invalid(
                    "attachment_kind",
                    "only IMAGE and FILE messages carry attachments",
                ));
            }
            MessageKind::Text | MessageKind::Thread | MessageKind::Temp
                if content.trim().is_empty() =>
            {
                return Err(crate::error::named::empty_content());
            }
            _ => {}
        }
        let client_msg_id = match m.client_msg_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id) if id.len() <= CLIENT_MSG_ID_MAX && !id.chars().any(char::is_control) => {
                Some(id.to_owned())
            }
            Some(_) => {
                return Err(DomainError::invalid(
                    "invalid_client_msg_id",
                    format!("client message id must be at most {CLIENT_MSG_ID_MAX} bytes"),
                ));
            }
        };
        Ok((kind, content, image_url, client_msg_id))
    }

    /// Checks edited content.
    pub fn check_content(&self, content: &str) -> DomainResult<()> {
        crate::text::refuse_nul(content)?;
        if content.trim().is_empty() {
            return Err(crate::error::named::empty_content());
        }
        if content.chars().count() > self.max_content_chars {
            return Err(DomainError::invalid(
                "content_too_long",
                format!(
                    "content must be at most {} characters",
                    self.max_content_chars
                ),
            ));
        }
        Ok(())
    }

    /// The page size for a request: the default when none (or 0) was asked
    /// for, never more than `max_page`.
    pub fn page(&self, requested: Option<u32>) -> u32 {
        requested
            .filter(|limit| *limit > 0)
            .unwrap_or(self.default_page)
            .clamp(1, self.max_page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_emoji() {
        assert_eq!(
            extract_mentions("hi @Alice, @bob.kim! and @al @alice"),
            ["alice", "bob.kim"]
        );
        assert_eq!(extract_mentions("no mentions@here"), Vec::<String>::new());
        assert_eq!(check_emoji(" 👍 ").unwrap(), "👍");
        assert!(check_emoji("a b").is_err());
        assert!(check_emoji("").is_err());
    }

    #[test]
    fn a_nul_anywhere_in_a_send_is_refused_with_its_code() {
        let p = MessagePolicy::default();
        for send in [
            SendMessage {
                content: "a\0b".into(),
                ..Default::default()
            },
            SendMessage {
                content: "ok".into(),
                client_msg_id: Some("t\0".into()),
                ..Default::default()
            },
            SendMessage {
                kind: Some(MessageKind::Image),
                image_url: Some("https://x/\0".into()),
                ..Default::default()
            },
        ] {
            assert_eq!(p.check(&send).unwrap_err().code(), "nul_character");
        }
        assert_eq!(p.check_content("x\0").unwrap_err().code(), "nul_character");
    }

    #[test]
    fn checks_sends() {
        let p = MessagePolicy::default();
        let ok = SendMessage {
            content: "안녕 👋".into(),
            ..Default::default()
        };
        assert_eq!(p.check(&ok).unwrap().0, MessageKind::Text);
        let empty = SendMessage::default();
        assert_eq!(p.check(&empty).unwrap_err().code(), "empty_content");
        let long = SendMessage {
            content: "가".repeat(4001),
            ..Default::default()
        };
        assert_eq!(p.check(&long).unwrap_err().code(), "content_too_long");
        let img = SendMessage {
            kind: Some(MessageKind::Image),
            ..Default::default()
        };
        assert_eq!(p.check(&img).unwrap_err().code(), "missing_image_url");
        let sys = SendMessage {
            kind: Some(MessageKind::System),
            content: "x".into(),
            ..Default::default()
        };
        assert!(p.check(&sys).is_err());
        assert_eq!(p.page(Some(10_000)), 500);
        assert_eq!(p.page(None), 50);
        assert_eq!(MessageKind::parse("image"), Some(MessageKind::Image));
    }
}
