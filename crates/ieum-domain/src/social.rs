//! Profiles, friends, blocks and presence.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::hub::{EventPayload, Hub, RoomEvent};
use crate::ports::{
    Clock, FriendState, PresenceRegistry, ProfileUpdate, ReceiptRepository, SocialRepository,
    UserRepository,
};
use crate::room::check_url;
use crate::user::{USERNAME_MAX, User, normalize_display_name};

pub const STATUS_MESSAGE_MAX: usize = 200;
/// People one user search answers when the caller names no limit, and at most.
pub(crate) const USER_SEARCH_DEFAULT: u32 = 20;
pub(crate) const USER_SEARCH_MAX: u32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceView {
    pub user_id: Uuid,
    pub online: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A username or the start of one, lower-cased; None when it cannot be one.
fn username_prefix(raw: &str) -> Option<String> {
    let prefix = raw.trim().to_ascii_lowercase();
    let valid = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (!prefix.is_empty() && prefix.len() <= USERNAME_MAX && valid).then_some(prefix)
}

pub struct SocialService {
    social: Arc<dyn SocialRepository>,
    users: Arc<dyn UserRepository>,
    receipts: Arc<dyn ReceiptRepository>,
    presence: Arc<dyn PresenceRegistry>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
}

fn no_user() -> DomainError {
    crate::error::named::user_not_found()
}

/// What a [`SocialService`] works with, by name.
pub struct SocialPorts {
    pub social: Arc<dyn SocialRepository>,
    pub users: Arc<dyn UserRepository>,
    pub receipts: Arc<dyn ReceiptRepository>,
    pub presence: Arc<dyn PresenceRegistry>,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
}

impl SocialService {
    pub fn new(ports: SocialPorts) -> Self {
        let SocialPorts {
            social,
            users,
            receipts,
            presence,
            hub,
            clock,
        } = ports;
        Self {
            social,
            users,
            receipts,
            presence,
            hub,
            clock,
        }
    }

    pub async fn user(&self, id: Uuid) -> DomainResult<User> {
        self.users.find_by_id(id).await?.ok_or_else(no_user)
    }

    pub async fn update_profile(
        &self,
        who: &Principal,
        mut p: ProfileUpdate,
    ) -> DomainResult<User> {
        if let Some(name) = &p.display_name {
            p.display_name = Some(normalize_display_name(name)?);
        }
        if let Some(url) = &p.profile_image_url {
            p.profile_image_url = Some(check_url("invalid_image_url", url.as_deref())?);
        }
        if let Some(Some(status)) = &p.status_message {
            crate::text::refuse_nul(status)?;
            let status = status.trim();
            if status.chars().count() > STATUS_MESSAGE_MAX || status.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    "invalid_status_message",
                    format!("status message must be at most {STATUS_MESSAGE_MAX} characters"),
                ));
            }
            p.status_message = Some((!status.is_empty()).then(|| status.to_owned()));
        }
        self.social.update_profile(who.user_id, p).await
    }

    /// People the caller may find whose username starts with `prefix`: who
    /// share a room with them, their friends and friends of friends, and
    /// anyone who chose to be discoverable. `limit` 0 is the default.
    pub async fn find_users(
        &self,
        who: &Principal,
        prefix: &str,
        limit: u32,
    ) -> DomainResult<Vec<User>> {
        let Some(prefix) = username_prefix(prefix) else {
            return Err(DomainError::invalid(
                "invalid_query",
                format!(
                    "search by 1 to {USERNAME_MAX} characters of a username (a-z, 0-9, '_', '.', '-')"
                ),
            ));
        };
        let limit = match limit {
            0 => USER_SEARCH_DEFAULT,
            n => n.min(USER_SEARCH_MAX),
        };
        self.social.find_users(who.user_id, &prefix, limit).await
    }

    /// Sends a friend request by username, to someone the caller may find
    /// ([`Self::find_users`]); anyone else is `user_not_found`, so a request
    /// reveals no more than a search would.
    pub async fn request_friend_by_username(
        &self,
        who: &Principal,
        username: &str,
    ) -> DomainResult<(User, FriendState)> {
        let name = username_prefix(username).ok_or_else(no_user)?;
        let found = self
            .social
            .find_users(who.user_id, &name, USER_SEARCH_MAX)
            .await?;
        let user = found
            .into_iter()
            .find(|u| u.username == name)
            .ok_or_else(no_user)?;
        let state = self.request_friend(who, user.id).await?;
        Ok((user, state))
    }

    /// Sends a friend request, or accepts theirs when they asked first.
    pub async fn request_friend(&self, who: &Principal, other: Uuid) -> DomainResult<FriendState> {
        if other == who.user_id {
            return Err(DomainError::invalid(
                "invalid_friend",
                "you cannot befriend yourself",
            ));
        }
        self.user(other).await?;
        if self.social.blocked_between(who.user_id, other).await? {
            return Err(crate::error::named::blocked());
        }
        let now = self.clock.now();
        match self.social.friend_state(other, who.user_id).await? {
            Some(FriendState::Requested) | Some(FriendState::Friends) => {
                self.social
                    .set_friend_state(who.user_id, other, Some(FriendState::Friends), now)
                    .await?;
                self.social
                    .set_friend_state(other, who.user_id, Some(FriendState::Friends), now)
                    .await?;
                Ok(FriendState::Friends)
            }
            None => {
                if self.social.friend_state(who.user_id, other).await? == Some(FriendState::Friends)
                {
                    return Ok(FriendState::Friends);
                }
                self.social
                    .set_friend_state(who.user_id, other, Some(FriendState::Requested), now)
                    .await?;
                Ok(FriendState::Requested)
            }
        }
    }

    /// Accepts a pending request from `other`.
    pub async fn accept_friend(&self, who: &Principal, other: Uuid) -> DomainResult<()> {
        if self.social.friend_state(other, who.user_id).await? != Some(FriendState::Requested) {
            return Err(DomainError::not_found(
                "no_request",
                "no pending request from that user",
            ));
        }
        self.request_friend(who, other).await.map(|_| ())
    }

    /// Removes a friend, or withdraws or declines a request. Idempotent.
    pub async fn remove_friend(&self, who: &Principal, other: Uuid) -> DomainResult<()> {
        let now = self.clock.now();
        self.social
            .set_friend_state(who.user_id, other, None, now)
            .await?;
        self.social
            .set_friend_state(other, who.user_id, None, now)
            .await
    }

    pub async fn friends(&self, who: &Principal) -> DomainResult<Vec<User>> {
        self.social
            .friends_of(who.user_id, FriendState::Friends)
            .await
    }

    pub async fn incoming_requests(&self, who: &Principal) -> DomainResult<Vec<User>> {
        self.social.requests_to(who.user_id).await
    }

    pub async fn outgoing_requests(&self, who: &Principal) -> DomainResult<Vec<User>> {
        self.social
            .friends_of(who.user_id, FriendState::Requested)
            .await
    }

    /// Blocking also ends any friendship or request between the two.
    pub async fn block(&self, who: &Principal, other: Uuid) -> DomainResult<()> {
        if other == who.user_id {
            return Err(DomainError::invalid(
                "invalid_block",
                "you cannot block yourself",
            ));
        }
        self.user(other).await?;
        self.remove_friend(who, other).await?;
        self.social
            .set_block(who.user_id, other, true, self.clock.now())
            .await
    }

    pub async fn unblock(&self, who: &Principal, other: Uuid) -> DomainResult<()> {
        self.social
            .set_block(who.user_id, other, false, self.clock.now())
            .await
    }

    pub async fn blocks(&self, who: &Principal) -> DomainResult<Vec<User>> {
        self.social.blocks_of(who.user_id).await
    }

    pub async fn blocked_between(&self, a: Uuid, b: Uuid) -> DomainResult<bool> {
        self.social.blocked_between(a, b).await
    }

    /// Online state and last seen, only for someone who shares a room with the
    /// viewer (or the viewer themself).
    pub async fn presence_of(&self, who: &Principal, user: Uuid) -> DomainResult<PresenceView> {
        if user != who.user_id && !self.receipts.share_room(who.user_id, user).await? {
            return Err(no_user());
        }
        Ok(PresenceView {
            user_id: user,
            online: self.presence.is_online(user).await?,
            last_seen_at: self.social.last_seen(user).await?,
        })
    }

    /// A device connected. The first device of a user tells the user's rooms.
    pub async fn connected(&self, user: Uuid, connection: u64) -> DomainResult<()> {
        if self.presence.connected(user, connection).await? {
            self.announce(user, true).await?;
        }
        Ok(())
    }

    /// A device went away. The last one records "last seen" and tells the rooms.
    pub async fn disconnected(&self, user: Uuid, connection: u64) -> DomainResult<()> {
        if self.presence.disconnected(user, connection).await? {
            self.social.set_last_seen(user, self.clock.now()).await?;
            self.announce(user, false).await?;
        }
        Ok(())
    }

    /// Runs for the process's life: keeps this node's presence alive and
    /// announces the users of nodes that died as offline.
    pub async fn run_presence_sweeper(self: Arc<Self>, every: std::time::Duration) {
        loop {
            if let Err(e) = self.presence.heartbeat().await {
                tracing::warn!(error = %e, "presence heartbeat failed");
            }
            match self.presence.take_orphaned_users().await {
                Ok(users) => {
                    for user in users {
                        if let Err(e) = self.social.set_last_seen(user, self.clock.now()).await {
                            tracing::warn!(error = %e, "last seen update failed");
                        }
                        if let Err(e) = self.announce(user, false).await {
                            tracing::warn!(error = %e, "offline announcement failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
            }
            tokio::time::sleep(every).await;
        }
    }

    pub fn presence_healthy(&self) -> bool {
        self.presence.healthy()
    }

    async fn announce(&self, user: Uuid, online: bool) -> DomainResult<()> {
        let at = self.clock.now();
        for room in self.receipts.room_ids_of(user).await? {
            let event = RoomEvent::ephemeral(
                room,
                EventPayload::Presence {
                    user_id: user,
                    online,
                    at,
                },
                Some(user),
            );
            self.hub.publish(event).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        LocalBus, LocalPresence, MockClock, MockMessageRepository, MockReceiptRepository,
        MockSocialRepository, MockUserRepository,
    };

    fn service(social: MockSocialRepository) -> SocialService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let mut messages = MockMessageRepository::new();
        messages.expect_last_seq().returning(|_| Ok(0));
        SocialService::new(SocialPorts {
            social: Arc::new(social),
            users: Arc::new(MockUserRepository::new()),
            receipts: Arc::new(MockReceiptRepository::new()),
            presence: Arc::new(LocalPresence::default()),
            hub: Hub::new(Arc::new(messages), Arc::new(LocalBus)),
            clock: Arc::new(clock),
        })
    }

    fn who() -> Principal {
        Principal {
            user_id: Uuid::from_u128(1),
            username: "alice".into(),
        }
    }

    #[tokio::test]
    async fn user_search_takes_a_username_prefix_and_bounds_its_page() {
        let mut social = MockSocialRepository::new();
        social
            .expect_find_users()
            .withf(|viewer, prefix, limit| {
                *viewer == Uuid::from_u128(1) && prefix == "ki_m" && *limit == USER_SEARCH_DEFAULT
            })
            .times(1)
            .returning(|_, _, _| Ok(vec![]));
        social
            .expect_find_users()
            .withf(|_, prefix, limit| prefix == "b" && *limit == USER_SEARCH_MAX)
            .times(1)
            .returning(|_, _, _| Ok(vec![]));
        let svc = service(social);
        svc.find_users(&who(), " Ki_M ", 0).await.unwrap();
        svc.find_users(&who(), "b", 10_000).await.unwrap();
        for bad in ["", "a%", "김", &"a".repeat(USERNAME_MAX + 1)] {
            assert_eq!(
                svc.find_users(&who(), bad, 0).await.unwrap_err().code(),
                "invalid_query",
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_friend_request_by_username_reaches_only_someone_the_caller_may_find() {
        let mut social = MockSocialRepository::new();
        // Nobody findable is called exactly "bob" (only "bobby").
        social.expect_find_users().returning(|_, _, _| {
            Ok(vec![User {
                id: Uuid::from_u128(2),
                username: "bobby".into(),
                display_name: "Bobby".into(),
                profile_image_url: None,
                status_message: None,
                created_at: Utc::now(),
                discoverable: true,
            }])
        });
        social.expect_set_friend_state().never();
        let svc = service(social);
        let err = svc
            .request_friend_by_username(&who(), "bob")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "user_not_found");
    }
}
