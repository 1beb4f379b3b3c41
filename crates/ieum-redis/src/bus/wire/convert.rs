//! The conversions between the domain's types and the bus's mirrors of them
//! (`super`), both ways. The format and its compatibility rules are in
//! `wire.rs`; a change here must follow them.

use super::*;

// Domain -> wire. Domain values are taken apart field by field, so a field
// added to the domain does not compile here until the bus says what it does
// with it.

impl From<&domain::EventPayload> for Payload {
    fn from(payload: &domain::EventPayload) -> Self {
        use domain::EventPayload as E;
        match payload {
            E::Message(message) => Self::Message(message.into()),
            E::Read {
                user_id,
                seq,
                message_ids,
                read_at,
            } => Self::Read {
                user_id: *user_id,
                seq: *seq,
                message_ids: message_ids.clone(),
                read_at: *read_at,
            },
            E::Delivered { user_id, seq } => Self::Delivered {
                user_id: *user_id,
                seq: *seq,
            },
            E::Typing { user_id, at, until } => Self::Typing {
                user_id: *user_id,
                at: *at,
                until: *until,
            },
            E::Presence {
                user_id,
                online,
                at,
            } => Self::Presence {
                user_id: *user_id,
                online: *online,
                at: *at,
            },
            E::MemberJoined {
                room,
                user_id,
                username,
            } => Self::MemberJoined {
                room: room.as_ref().into(),
                user_id: *user_id,
                username: username.clone(),
            },
            E::MemberLeft {
                room_id,
                user_id,
                kicked,
            } => Self::MemberLeft {
                room_id: room_id.clone(),
                user_id: *user_id,
                kicked: *kicked,
            },
            E::RoomCreated(room) => Self::RoomCreated(room.as_ref().into()),
            E::RoomUpdated(room) => Self::RoomUpdated(room.as_ref().into()),
            E::Edited {
                message_id,
                seq,
                content,
                edited_at,
            } => Self::Edited {
                message_id: *message_id,
                seq: *seq,
                content: content.clone(),
                edited_at: *edited_at,
            },
            E::Deleted {
                message_id,
                seq,
                expired,
            } => Self::Deleted {
                message_id: *message_id,
                seq: *seq,
                expired: *expired,
            },
            E::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            } => Self::Reaction {
                message_id: *message_id,
                user_id: *user_id,
                emoji: emoji.clone(),
                added: *added,
            },
            E::Pinned {
                message_id,
                by,
                pinned,
            } => Self::Pinned {
                message_id: *message_id,
                by: *by,
                pinned: *pinned,
            },
            E::SessionRevoked { family_id } => Self::SessionRevoked {
                family_id: *family_id,
            },
            E::UserSuspended { user_id } => Self::UserSuspended { user_id: *user_id },
            E::MemberMuted { user_id, until } => Self::MemberMuted {
                user_id: *user_id,
                until: *until,
            },
            E::FileUpdated {
                message_id,
                seq,
                file,
            } => Self::FileUpdated {
                message_id: *message_id,
                seq: *seq,
                file: MessageFile::from(file.as_ref()),
            },
        }
    }
}

impl From<&domain::Room> for Room {
    fn from(room: &domain::Room) -> Self {
        let domain::Room {
            id,
            kind,
            name,
            description,
            image_url,
            visibility,
            password_hash,
            member_limit,
            member_count,
            invite_code: _, // a secret: read from the store by whoever needs it
            created_by,
            created_at,
            last_seq,
            last_message_at,
            history_visibility,
            pin_policy,
        } = room;
        Self {
            id: id.clone(),
            kind: (*kind).into(),
            name: name.clone(),
            description: description.clone(),
            image_url: image_url.clone(),
            visibility: (*visibility).into(),
            has_password: password_hash.is_some(),
            member_limit: *member_limit,
            member_count: *member_count,
            created_by: *created_by,
            created_at: *created_at,
            last_seq: *last_seq,
            last_message_at: *last_message_at,
            history_visibility: (*history_visibility).into(),
            pin_policy: (*pin_policy).into(),
        }
    }
}

impl From<&domain::Message> for Message {
    fn from(message: &domain::Message) -> Self {
        let domain::Message {
            id,
            room_id,
            seq,
            sender_id,
            sender_username,
            sender_name,
            sender_image,
            kind,
            content,
            image_url,
            file,
            client_msg_id,
            created_at,
            read_at,
            parent_id,
            reply_count,
            last_reply_at,
            edited_at,
            deleted,
            expires_at,
            mentions,
            reactions,
        } = message;
        Self {
            id: *id,
            room_id: room_id.clone(),
            seq: *seq,
            sender_id: *sender_id,
            sender_username: sender_username.clone(),
            sender_name: sender_name.clone(),
            sender_image: sender_image.clone(),
            kind: (*kind).into(),
            content: content.clone(),
            image_url: image_url.clone(),
            client_msg_id: client_msg_id.clone(),
            created_at: *created_at,
            read_at: *read_at,
            parent_id: *parent_id,
            reply_count: *reply_count,
            last_reply_at: *last_reply_at,
            edited_at: *edited_at,
            deleted: *deleted,
            expires_at: *expires_at,
            mentions: mentions.clone(),
            reactions: reactions.iter().map(ReactionCount::from).collect(),
            file: file.as_ref().map(MessageFile::from),
        }
    }
}

impl From<&domain::MessageFile> for MessageFile {
    fn from(file: &domain::MessageFile) -> Self {
        let domain::MessageFile {
            id,
            name,
            size,
            content_type,
            width,
            height,
            scan,
            state,
            is_image,
        } = file;
        Self {
            id: *id,
            name: name.clone(),
            size: *size,
            content_type: content_type.clone(),
            width: *width,
            height: *height,
            scan: (*scan).into(),
            state: (*state).into(),
            is_image: *is_image,
        }
    }
}

impl From<MessageFile> for domain::MessageFile {
    fn from(file: MessageFile) -> Self {
        Self {
            id: file.id,
            name: file.name,
            size: file.size,
            content_type: file.content_type,
            width: file.width,
            height: file.height,
            scan: file.scan.into(),
            state: file.state.into(),
            is_image: file.is_image,
        }
    }
}

impl From<&domain::ReactionCount> for ReactionCount {
    fn from(reaction: &domain::ReactionCount) -> Self {
        let domain::ReactionCount {
            emoji,
            count,
            user_ids,
        } = reaction;
        Self {
            emoji: emoji.clone(),
            count: *count,
            user_ids: user_ids.clone(),
        }
    }
}

// Wire -> domain.

impl From<Payload> for domain::EventPayload {
    fn from(payload: Payload) -> Self {
        use Payload as P;
        match payload {
            P::Message(message) => Self::Message(message.into()),
            P::Read {
                user_id,
                seq,
                message_ids,
                read_at,
            } => Self::Read {
                user_id,
                seq,
                message_ids,
                read_at,
            },
            P::Delivered { user_id, seq } => Self::Delivered { user_id, seq },
            P::Typing { user_id, at, until } => Self::Typing { user_id, at, until },
            P::Presence {
                user_id,
                online,
                at,
            } => Self::Presence {
                user_id,
                online,
                at,
            },
            P::MemberJoined {
                room,
                user_id,
                username,
            } => Self::MemberJoined {
                room: Box::new(room.into()),
                user_id,
                username,
            },
            P::MemberLeft {
                room_id,
                user_id,
                kicked,
            } => Self::MemberLeft {
                room_id,
                user_id,
                kicked,
            },
            P::RoomCreated(room) => Self::RoomCreated(Box::new(room.into())),
            P::RoomUpdated(room) => Self::RoomUpdated(Box::new(room.into())),
            P::Edited {
                message_id,
                seq,
                content,
                edited_at,
            } => Self::Edited {
                message_id,
                seq,
                content,
                edited_at,
            },
            P::Deleted {
                message_id,
                seq,
                expired,
            } => Self::Deleted {
                message_id,
                seq,
                expired,
            },
            P::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            } => Self::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            },
            P::Pinned {
                message_id,
                by,
                pinned,
            } => Self::Pinned {
                message_id,
                by,
                pinned,
            },
            P::SessionRevoked { family_id } => Self::SessionRevoked { family_id },
            P::UserSuspended { user_id } => Self::UserSuspended { user_id },
            P::MemberMuted { user_id, until } => Self::MemberMuted { user_id, until },
            P::FileUpdated {
                message_id,
                seq,
                file,
            } => Self::FileUpdated {
                message_id,
                seq,
                file: Box::new(file.into()),
            },
        }
    }
}

impl From<Room> for domain::Room {
    fn from(room: Room) -> Self {
        Self {
            id: room.id,
            kind: room.kind.into(),
            name: room.name,
            description: room.description,
            image_url: room.image_url,
            visibility: room.visibility.into(),
            password_hash: room.has_password.then(|| PASSWORD_HASH_STAND_IN.to_owned()),
            member_limit: room.member_limit,
            member_count: room.member_count,
            // Not shared either; admins read it from the store.
            invite_code: None,
            created_by: room.created_by,
            created_at: room.created_at,
            last_seq: room.last_seq,
            last_message_at: room.last_message_at,
            history_visibility: room.history_visibility.into(),
            pin_policy: room.pin_policy.into(),
        }
    }
}

impl From<Message> for domain::Message {
    fn from(message: Message) -> Self {
        Self {
            id: message.id,
            room_id: message.room_id,
            seq: message.seq,
            sender_id: message.sender_id,
            sender_username: message.sender_username,
            sender_name: message.sender_name,
            sender_image: message.sender_image,
            kind: message.kind.into(),
            content: message.content,
            image_url: message.image_url,
            file: message.file.map(Into::into),
            client_msg_id: message.client_msg_id,
            created_at: message.created_at,
            read_at: message.read_at,
            parent_id: message.parent_id,
            reply_count: message.reply_count,
            last_reply_at: message.last_reply_at,
            edited_at: message.edited_at,
            deleted: message.deleted,
            expires_at: message.expires_at,
            mentions: message.mentions,
            reactions: message.reactions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ReactionCount> for domain::ReactionCount {
    fn from(reaction: ReactionCount) -> Self {
        Self {
            emoji: reaction.emoji,
            count: reaction.count,
            user_ids: reaction.user_ids,
        }
    }
}

/// Both ways between a domain enum and its mirror, value for value; with
/// `unknown:`, the mirror's `Unknown` (a newer node's value) reads as that
/// domain value.
macro_rules! mirror_enum {
    ($wire:ident <-> $domain:ident { $($variant:ident),+ $(,)? } $(unknown: $unknown:ident)?) => {
        impl From<domain::$domain> for $wire {
            fn from(value: domain::$domain) -> Self {
                match value {
                    $(domain::$domain::$variant => Self::$variant,)+
                }
            }
        }
        impl From<$wire> for domain::$domain {
            fn from(value: $wire) -> Self {
                match value {
                    $($wire::$variant => Self::$variant,)+
                    $($wire::Unknown => Self::$unknown,)?
                }
            }
        }
    };
}

mirror_enum!(RoomKind <-> RoomKind { Direct, Group });
mirror_enum!(Visibility <-> Visibility { Public, Private });
mirror_enum!(HistoryVisibility <-> HistoryVisibility { All, UntilLeave, None });
mirror_enum!(PinPolicy <-> PinPolicy { Members, Admins });
mirror_enum!(ScanStatus <-> ScanStatus {
    Pending, Clean, Skipped, Infected, Failed
} unknown: Pending);
mirror_enum!(AttachmentState <-> AttachmentState {
    Pending, Scanning, Clean, Infected, Failed, Expired, Deleted
} unknown: Scanning);
mirror_enum!(MessageKind <-> MessageKind { Text, Image, File, Sticker, System, Thread, Temp });
