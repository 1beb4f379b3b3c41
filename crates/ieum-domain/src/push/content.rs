//! What a push says: a title (the room, or the sender of a 1:1 message), a
//! preview of the message (or only "New message" for members who hide
//! previews, and always for self-destructing messages), and the data an app
//! syncs with. Cut on characters, never inside one: Korean stays whole.

use crate::message::{Message, MessageKind};
use crate::room::{Room, RoomKind};

use super::{Device, Notification, OutboxEntry, PushData, PushPrefs};

/// The longest preview, in characters (an ellipsis follows a cut).
pub const PREVIEW_MAX_CHARS: usize = 120;

/// The few words a push needs, in the device's language (Korean or English).
struct Words {
    new_message: &'static str,
    photo: &'static str,
    file: &'static str,
    sticker: &'static str,
}

fn words(locale: Option<&str>) -> Words {
    if locale.is_some_and(|l| l.to_ascii_lowercase().starts_with("ko")) {
        Words {
            new_message: "새 메시지",
            photo: "사진",
            file: "파일",
            sticker: "스티커",
        }
    } else {
        Words {
            new_message: "New message",
            photo: "Photo",
            file: "File",
            sticker: "Sticker",
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
    }
}

fn preview(message: &Message, words: &Words) -> String {
    match message.kind {
        MessageKind::Image => words.photo.to_owned(),
        MessageKind::File => message
            .file
            .as_ref()
            .map(|f| f.name.clone())
            .unwrap_or_else(|| words.file.to_owned()),
        MessageKind::Sticker => words.sticker.to_owned(),
        _ => message.content.clone(),
    }
}

/// The member's push for `message` on `device`.
pub(super) struct Draft<'a> {
    pub device: &'a Device,
    pub room: &'a Room,
    pub message: &'a Message,
    pub prefs: PushPrefs,
    pub entry: &'a OutboxEntry,
    pub badge: i64,
}

impl Draft<'_> {
    pub(super) fn notification(self) -> Notification {
        let Draft {
            device,
            room,
            message,
            prefs,
            entry,
            badge,
        } = self;
        let words = words(device.locale.as_deref());
        let title = match room.kind {
            RoomKind::Direct => message.sender_name.clone(),
            RoomKind::Group => room.name.clone(),
        };
        let hidden = !prefs.previews || message.kind == MessageKind::Temp;
        let body = if hidden {
            words.new_message.to_owned()
        } else {
            let text = preview(message, &words);
            match room.kind {
                RoomKind::Direct => cut(&text, PREVIEW_MAX_CHARS),
                RoomKind::Group => cut(
                    &format!("{}: {text}", message.sender_name),
                    PREVIEW_MAX_CHARS,
                ),
            }
        };
        Notification {
            device_id: device.id,
            token: device.token.clone(),
            platform: device.platform,
            data_only: device.data_only,
            collapse_key: room.id.clone(),
            title: cut(&title, PREVIEW_MAX_CHARS),
            body,
            badge,
            data: PushData {
                room_id: room.id.clone(),
                message_id: message.id,
                seq: message.seq,
                kind: message.kind.as_str(),
                count: entry.count,
                sender_id: message.sender_id,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_korean_on_characters() {
        let text = "가".repeat(200);
        let cut = cut(&text, 120);
        assert_eq!(cut.chars().count(), 121);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("가가"));
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(cut("  안녕하세요 ", 120), "안녕하세요");
    }

    #[test]
    fn korean_locales_get_korean_words() {
        assert_eq!(words(Some("ko-KR")).new_message, "새 메시지");
        assert_eq!(words(Some("en-US")).new_message, "New message");
        assert_eq!(words(None).photo, "Photo");
    }
}
