//! Rooms, members and room lists, and the names of the room enums that
//! request bodies carry.

use chrono::{DateTime, Utc};
use ieum_domain::room::{
    HistoryVisibility, MemberView, PinPolicy, Role, Room, RoomSummary, Visibility,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::message::MessagePreviewJson;

/// A room's own fields: never its password hash or invite code. Always sent
/// inside a [`RoomJson`], which adds `hasPassword`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomFieldsJson<'a> {
    id: &'a str,
    /// `direct` or `group`.
    kind: &'static str,
    name: &'a str,
    description: Option<&'a str>,
    image_url: Option<&'a str>,
    /// `public` or `private`.
    visibility: &'static str,
    member_limit: u32,
    member_count: u32,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    last_message_at: Option<DateTime<Utc>>,
    /// `all`, `until_leave` or `none`.
    history_visibility: &'static str,
    /// `members` or `admins`.
    pin_policy: &'static str,
}

impl<'a> From<&'a Room> for RoomFieldsJson<'a> {
    fn from(room: &'a Room) -> Self {
        Self {
            id: &room.id,
            kind: room.kind.as_str(),
            name: &room.name,
            description: room.description.as_deref(),
            image_url: room.image_url.as_deref(),
            visibility: room.visibility.as_str(),
            member_limit: room.member_limit,
            member_count: room.member_count,
            created_by: room.created_by,
            created_at: room.created_at,
            last_seq: room.last_seq,
            last_message_at: room.last_message_at,
            history_visibility: room.history_visibility.as_str(),
            pin_policy: room.pin_policy.as_str(),
        }
    }
}

/// A room as HTTP answers it and as the `room` of a `ROOM_UPDATED` event: its
/// fields and `hasPassword` instead of the hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoomJson<'a> {
    #[serde(flatten)]
    room: RoomFieldsJson<'a>,
    has_password: bool,
}

impl<'a> From<&'a Room> for RoomJson<'a> {
    fn from(room: &'a Room) -> Self {
        Self {
            room: RoomFieldsJson::from(room),
            has_password: room.has_password(),
        }
    }
}

/// One row of `GET /api/rooms`: the room, and the caller's place in it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoomSummaryJson<'a> {
    room: RoomJson<'a>,
    /// `member`, `admin` or `owner`.
    role: &'static str,
    favorite: bool,
    last_read_seq: i64,
    unread_count: i64,
    mention_count: i64,
    /// `null` in a room without messages.
    last_message: Option<MessagePreviewJson<'a>>,
}

impl<'a> From<&'a RoomSummary> for RoomSummaryJson<'a> {
    fn from(summary: &'a RoomSummary) -> Self {
        Self {
            room: RoomJson::from(&summary.room),
            role: summary.role.as_str(),
            favorite: summary.favorite,
            last_read_seq: summary.last_read_seq,
            unread_count: summary.unread_count,
            mention_count: summary.mention_count,
            last_message: summary.last_message.as_ref().map(MessagePreviewJson::from),
        }
    }
}

/// A member as `GET /api/rooms/{id}/members` lists them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberJson<'a> {
    user_id: Uuid,
    username: &'a str,
    display_name: &'a str,
    profile_image_url: Option<&'a str>,
    role: &'static str,
    joined_at: DateTime<Utc>,
    last_read_seq: i64,
}

impl<'a> From<&'a MemberView> for MemberJson<'a> {
    fn from(member: &'a MemberView) -> Self {
        Self {
            user_id: member.user_id,
            username: &member.username,
            display_name: &member.display_name,
            profile_image_url: member.profile_image_url.as_deref(),
            role: member.role.as_str(),
            joined_at: member.joined_at,
            last_read_seq: member.last_read_seq,
        }
    }
}

// The room enums as request bodies name them: the names above (`as_str`),
// as serde enums so that a wrong value is refused with serde's own message
// ("unknown variant `x`, expected `public` or `private`").

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VisibilityName {
    Public,
    Private,
}

impl From<VisibilityName> for Visibility {
    fn from(name: VisibilityName) -> Self {
        match name {
            VisibilityName::Public => Self::Public,
            VisibilityName::Private => Self::Private,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleName {
    Member,
    Admin,
    Owner,
}

impl From<RoleName> for Role {
    fn from(name: RoleName) -> Self {
        match name {
            RoleName::Member => Self::Member,
            RoleName::Admin => Self::Admin,
            RoleName::Owner => Self::Owner,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HistoryVisibilityName {
    All,
    UntilLeave,
    None,
}

impl From<HistoryVisibilityName> for HistoryVisibility {
    fn from(name: HistoryVisibilityName) -> Self {
        match name {
            HistoryVisibilityName::All => Self::All,
            HistoryVisibilityName::UntilLeave => Self::UntilLeave,
            HistoryVisibilityName::None => Self::None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PinPolicyName {
    Members,
    Admins,
}

impl From<PinPolicyName> for PinPolicy {
    fn from(name: PinPolicyName) -> Self {
        match name {
            PinPolicyName::Members => Self::Members,
            PinPolicyName::Admins => Self::Admins,
        }
    }
}
