//! Users, presence and friendship states.

use chrono::{DateTime, Utc};
use ieum_domain::ports::FriendState;
use ieum_domain::social::PresenceView;
use ieum_domain::user::User;
use serde::Serialize;
use uuid::Uuid;

/// A user's public profile (`/api/users`, search, friends, blocks).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserJson<'a> {
    id: Uuid,
    username: &'a str,
    display_name: &'a str,
    profile_image_url: Option<&'a str>,
    status_message: Option<&'a str>,
    created_at: DateTime<Utc>,
}

/// The caller's own account (`GET`/`PATCH /api/me`): the profile and the
/// caller's privacy settings, which nobody else is shown.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeJson<'a> {
    #[serde(flatten)]
    profile: UserJson<'a>,
    discoverable: bool,
}

impl<'a> From<&'a User> for MeJson<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            profile: UserJson::from(user),
            discoverable: user.discoverable,
        }
    }
}

impl<'a> From<&'a User> for UserJson<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id,
            username: &user.username,
            display_name: &user.display_name,
            profile_image_url: user.profile_image_url.as_deref(),
            status_message: user.status_message.as_deref(),
            created_at: user.created_at,
        }
    }
}

/// `GET /api/users/{id}/presence`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PresenceJson {
    user_id: Uuid,
    online: bool,
    last_seen_at: Option<DateTime<Utc>>,
}

impl From<&PresenceView> for PresenceJson {
    fn from(presence: &PresenceView) -> Self {
        Self {
            user_id: presence.user_id,
            online: presence.online,
            last_seen_at: presence.last_seen_at,
        }
    }
}

/// The `state` of a friend request's answer.
pub(crate) fn friend_state_name(state: FriendState) -> &'static str {
    match state {
        FriendState::Requested => "requested",
        FriendState::Friends => "friends",
    }
}
