//! Messages as the native protocol writes them: history, search, threads,
//! pins, and the `/topic/rooms/{id}` MESSAGE body.

use chrono::{DateTime, Utc};
use ieum_domain::message::{Message, MessageFile, MessagePreview, ReactionCount};
use serde::Serialize;
use uuid::Uuid;

use crate::links::FileLinks;

/// A stored message. `reactions` is absent when there are none (live
/// deliveries never carry any); every other field is always present, `null`
/// when unset.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageJson<'a> {
    id: Uuid,
    room_id: &'a str,
    seq: i64,
    sender_id: Uuid,
    sender_username: &'a str,
    sender_name: &'a str,
    sender_image: Option<&'a str>,
    /// `TEXT`, `IMAGE`, ... (upper case).
    #[serde(rename = "type")]
    kind: &'static str,
    content: &'a str,
    image_url: Option<&'a str>,
    client_msg_id: Option<&'a str>,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
    parent_id: Option<Uuid>,
    reply_count: i32,
    last_reply_at: Option<DateTime<Utc>>,
    edited_at: Option<DateTime<Utc>>,
    deleted: bool,
    expires_at: Option<DateTime<Utc>>,
    mentions: &'a [Uuid],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reactions: Vec<ReactionJson<'a>>,
    /// IMAGE and FILE messages' file; absent on other messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileJson<'a>>,
}

impl<'a> MessageJson<'a> {
    pub(crate) fn new(message: &'a Message, links: &FileLinks) -> Self {
        Self {
            file: message
                .file
                .as_ref()
                .filter(|_| !message.deleted)
                .map(|file| FileJson::new(file, links)),
            id: message.id,
            room_id: &message.room_id,
            seq: message.seq,
            sender_id: message.sender_id,
            sender_username: &message.sender_username,
            sender_name: &message.sender_name,
            sender_image: message.sender_image.as_deref(),
            kind: message.kind.as_str(),
            content: &message.content,
            image_url: message.image_url.as_deref(),
            client_msg_id: message.client_msg_id.as_deref(),
            created_at: message.created_at,
            read_at: message.read_at,
            parent_id: message.parent_id,
            reply_count: message.reply_count,
            last_reply_at: message.last_reply_at,
            edited_at: message.edited_at,
            deleted: message.deleted,
            expires_at: message.expires_at,
            mentions: &message.mentions,
            reactions: message.reactions.iter().map(ReactionJson::from).collect(),
        }
    }
}

/// The file of an IMAGE or FILE message. The URLs are stable links
/// ([`crate::links`]), present only while the file may be downloaded.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileJson<'a> {
    id: Uuid,
    name: &'a str,
    size: u64,
    content_type: &'a str,
    width: Option<u32>,
    height: Option<u32>,
    /// `pending`, `clean`, `skipped` (no scanner), `infected`, `failed`.
    scan: &'static str,
    /// The attachment's state: `clean` files are served; `expired` ones
    /// are gone.
    state: &'static str,
    url: Option<String>,
    /// The 320-pixel JPEG thumbnail of an image.
    thumbnail_url: Option<String>,
    /// The 1280-pixel JPEG thumbnail of an image.
    thumbnail_large_url: Option<String>,
}

impl<'a> FileJson<'a> {
    pub(crate) fn new(file: &'a MessageFile, links: &FileLinks) -> Self {
        let links = links.for_file(file);
        Self {
            id: file.id,
            name: &file.name,
            size: file.size,
            content_type: &file.content_type,
            width: file.width,
            height: file.height,
            scan: file.scan.as_str(),
            state: file.state.as_str(),
            url: links.file,
            thumbnail_url: links.thumbnail,
            thumbnail_large_url: links.thumbnail_large,
        }
    }
}

/// One emoji on a message: how many, and who.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReactionJson<'a> {
    emoji: &'a str,
    count: i64,
    user_ids: &'a [Uuid],
}

impl<'a> From<&'a ReactionCount> for ReactionJson<'a> {
    fn from(reaction: &'a ReactionCount) -> Self {
        Self {
            emoji: &reaction.emoji,
            count: reaction.count,
            user_ids: &reaction.user_ids,
        }
    }
}

/// A room list's `lastMessage`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessagePreviewJson<'a> {
    id: Uuid,
    seq: i64,
    sender_id: Uuid,
    sender_name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    content: &'a str,
    created_at: DateTime<Utc>,
}

impl<'a> From<&'a MessagePreview> for MessagePreviewJson<'a> {
    fn from(preview: &'a MessagePreview) -> Self {
        Self {
            id: preview.id,
            seq: preview.seq,
            sender_id: preview.sender_id,
            sender_name: &preview.sender_name,
            kind: preview.kind.as_str(),
            content: &preview.content,
            created_at: preview.created_at,
        }
    }
}
