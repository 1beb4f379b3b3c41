//! Rooms, memberships and the rules over them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Active,
    Left,
    Banned,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident = $s:literal),+ }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}
/// Whether someone who left may still read the room's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryVisibility {
    All,
    UntilLeave,
    None,
}

/// Who may pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    Members,
    Admins,
}

str_enum!(HistoryVisibility { All = "all", UntilLeave = "until_leave", None = "none" });
str_enum!(PinPolicy { Members = "members", Admins = "admins" });
str_enum!(RoomKind { Direct = "direct", Group = "group" });
str_enum!(Visibility { Public = "public", Private = "private" });
str_enum!(Role { Member = "member", Admin = "admin", Owner = "owner" });
str_enum!(MemberState { Active = "active", Left = "left", Banned = "banned" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub kind: RoomKind,
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Visibility,
    pub password_hash: Option<String>,
    pub member_limit: u32,
    pub member_count: u32,
    pub invite_code: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub history_visibility: HistoryVisibility,
    pub pin_policy: PinPolicy,
}

impl Room {
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// Settings admins may change; `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSettings {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub image_url: Option<Option<String>>,
    pub history_visibility: Option<HistoryVisibility>,
    pub pin_policy: Option<PinPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub id: String,
    pub kind: RoomKind,
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Visibility,
    pub password_hash: Option<String>,
    pub member_limit: u32,
    pub history_visibility: HistoryVisibility,
    pub pin_policy: PinPolicy,
    pub created_by: Uuid,
    /// The creator's role: the owner of a group; a plain member of a direct
    /// room, which has no admins.
    pub creator_role: Role,
    pub created_at: DateTime<Utc>,
}

impl NewRoom {
    /// A 1:1 room (a direct room or a couple's): private, two seats, no
    /// owner, every setting at its default.
    pub fn direct(id: String, name: String, created_by: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            id,
            kind: RoomKind::Direct,
            name,
            description: None,
            image_url: None,
            visibility: Visibility::Private,
            password_hash: None,
            member_limit: 2,
            history_visibility: HistoryVisibility::All,
            pin_policy: PinPolicy::Members,
            created_by,
            creator_role: Role::Member,
            created_at: at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub room_id: String,
    pub room_kind: RoomKind,
    pub user_id: Uuid,
    pub role: Role,
    pub state: MemberState,
    pub joined_at: DateTime<Utc>,
    pub last_read_seq: i64,
    pub favorite: bool,
    /// The room's last seq when the member left.
    pub left_seq: Option<i64>,
    /// A room admin muted the member until then: they read, not send.
    pub muted_until: Option<DateTime<Utc>>,
}

impl Membership {
    pub fn is_active(&self) -> bool {
        self.state == MemberState::Active
    }

    pub fn is_muted_at(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }
}

/// A member as a member list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub profile_image_url: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// What the member has read up to: a message at seq `s` is unread by
    /// every other member whose `last_read_seq` is below `s` (the "1" of a
    /// group chat), live updates arriving as read events.
    pub last_read_seq: i64,
}

/// A room in "my rooms": what a room list needs in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: Room,
    pub role: Role,
    pub favorite: bool,
    pub last_read_seq: i64,
    pub unread_count: i64,
    /// Unread messages that mention the user.
    pub mention_count: i64,
    pub last_message: Option<crate::message::MessagePreview>,
}

pub const ROOM_NAME_MAX: usize = 100;
pub const ROOM_DESCRIPTION_MAX: usize = 1000;
pub const ROOM_ID_MAX: usize = 64;
pub const URL_MAX: usize = 2048;

/// Room ids chosen by clients (contract A's `room-1`): 1 to 64 of
/// `A-Z a-z 0-9 _ - .`. Server-made ids are UUIDs (groups) or `dm:<uuid>:<uuid>`
/// (direct rooms), so the two never collide.
pub fn check_client_room_id(id: &str) -> DomainResult<()> {
    let ok = !id.is_empty()
        && id.len() <= ROOM_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "invalid_room_id",
            format!("room id must be 1 to {ROOM_ID_MAX} of A-Z a-z 0-9 _ - ."),
        ))
    }
}

/// Any room id the server may hold (client-chosen, UUID or direct).
pub fn check_room_id(id: &str) -> DomainResult<()> {
    if id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        && !id.is_empty()
    {
        Ok(())
    } else {
        Err(DomainError::invalid("invalid_room_id", "malformed room id"))
    }
}

/// The one direct room of a pair of users.
pub fn direct_room_id(a: Uuid, b: Uuid) -> String {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    format!("dm:{}:{}", x.simple(), y.simple())
}

pub fn normalize_room_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    let n = name.chars().count();
    crate::text::refuse_nul(name)?;
    if n == 0 || n > ROOM_NAME_MAX || !crate::text::is_clean_name(name) {
        return Err(DomainError::invalid(
            "invalid_room_name",
            format!(
                "room name must be 1 to {ROOM_NAME_MAX} characters without control or invisible formatting characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

pub fn normalize_description(raw: Option<&str>) -> DomainResult<Option<String>> {
    crate::text::refuse_nul(raw.unwrap_or_default())?;
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(d) if d.chars().count() <= ROOM_DESCRIPTION_MAX => Ok(Some(d.to_owned())),
        Some(_) => Err(DomainError::invalid(
            "invalid_description",
            format!("description must be at most {ROOM_DESCRIPTION_MAX} characters"),
        )),
    }
}

/// An absolute http(s) URL or a path on this server. `//host/x` is neither:
/// a browser reads it as another host.
pub fn check_url(field: &'static str, raw: Option<&str>) -> DomainResult<Option<String>> {
    crate::text::refuse_nul(raw.unwrap_or_default())?;
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(u)
            if u.len() <= URL_MAX
                && !u
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
                && (u.starts_with("https://")
                    || u.starts_with("http://")
                    || (u.starts_with('/') && !u.starts_with("//"))) =>
        {
            Ok(Some(u.to_owned()))
        }
        Some(_) => Err(DomainError::invalid(
            field,
            "must be an http(s) URL or a server path of at most 2048 bytes",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_ids_are_symmetric_and_distinct_from_client_ids() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(direct_room_id(a, b), direct_room_id(b, a));
        assert!(check_client_room_id(&direct_room_id(a, b)).is_err());
        assert!(check_room_id(&direct_room_id(a, b)).is_ok());
        assert!(check_client_room_id("room-1").is_ok());
        assert!(check_client_room_id("").is_err());
        assert!(check_client_room_id("방1").is_err());
        assert!(check_client_room_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn names_and_urls() {
        assert_eq!(normalize_room_name(" 우리 방 🏠 ").unwrap(), "우리 방 🏠");
        assert!(normalize_room_name(" ").is_err());
        assert!(check_url("invalid_image_url", Some("javascript:alert(1)")).is_err());
        assert_eq!(
            check_url("invalid_image_url", Some("https://x/y.png"))
                .unwrap()
                .as_deref(),
            Some("https://x/y.png")
        );
        assert_eq!(normalize_description(Some("  ")).unwrap(), None);
    }
}
