//! Room use cases: create, open a direct room, join (password, invite code,
//! member limit, bans), leave, roles, favorites, invite codes, room lists.
//!
//! One type, [`RoomService`], its `impl` blocks spread by concern: `create.rs`
//! (group and direct rooms), `membership.rs` (join, enter, leave, kick, ban),
//! `access.rs` (membership and role checks, readable history), `closing.rs`
//! (staff closing a room), `settings.rs`
//! (settings, roles, favorites), `invites.rs`, `notices.rs` (member events and
//! SYSTEM messages). Lookups and room lists stay here.

mod access;
mod closing;
mod create;
pub(crate) mod invites;
mod membership;
mod notices;
mod settings;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::hub::Hub;
use crate::ports::{
    Clock, CoupleRepository, MessageRepository, PasswordHasher, RoomRepository, SocialRepository,
    UserRepository,
};
use crate::room::{MemberView, Membership, Room, RoomKind, RoomSummary, Visibility, check_room_id};
use crate::throttle::Limiter;

#[derive(Debug, Clone, Copy)]
pub struct RoomPolicy {
    pub default_member_limit: u32,
    pub max_member_limit: u32,
}

impl Default for RoomPolicy {
    fn default() -> Self {
        Self {
            default_member_limit: 50,
            max_member_limit: 1000,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CreateRoom {
    /// A client-chosen id (contract paths); a UUID is made when absent.
    pub id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Option<Visibility>,
    pub password: Option<String>,
    pub member_limit: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub password: Option<String>,
    pub invite_code: Option<String>,
}

/// How a contract that has no membership concept enters rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The user must already be a member.
    MembersOnly,
    /// Join on first use, creating a public group room when the id is new
    /// (contract A's SEND and SUBSCRIBE).
    AutoJoin,
    /// Join an existing room on first use if its rules allow; never create
    /// (contract A's history).
    AutoJoinExisting,
}

pub struct RoomService {
    messages: Arc<dyn MessageRepository>,
    rooms: Arc<dyn RoomRepository>,
    users: Arc<dyn UserRepository>,
    social: Arc<dyn SocialRepository>,
    couples: Arc<dyn CoupleRepository>,
    hasher: Arc<dyn PasswordHasher>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    policy: RoomPolicy,
    /// Where room admin actions are recorded (issue 20).
    audit: Option<Arc<crate::moderation::ModerationService>>,
}

fn not_found() -> DomainError {
    crate::error::named::room_not_found()
}

/// Admin actions in a 1:1 room.
pub fn direct_room_has_no_admins() -> DomainError {
    DomainError::forbidden(
        "direct_room",
        "a direct room has no admins: nobody manages its members or settings",
    )
}

pub(crate) fn not_member() -> DomainError {
    DomainError::forbidden("not_a_member", "you are not a member of this room")
}

/// What a [`RoomService`] works with, by name (wiring reads as a list, and
/// two ports of one type cannot swap places unnoticed).
pub struct RoomPorts {
    pub messages: Arc<dyn MessageRepository>,
    pub rooms: Arc<dyn RoomRepository>,
    pub users: Arc<dyn UserRepository>,
    pub social: Arc<dyn SocialRepository>,
    /// Which direct room is a couple's (leaving it is unpairing).
    pub couples: Arc<dyn CoupleRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
}

impl RoomService {
    pub fn new(ports: RoomPorts, policy: RoomPolicy) -> Self {
        let RoomPorts {
            messages,
            rooms,
            users,
            social,
            couples,
            hasher,
            hub,
            clock,
        } = ports;
        Self {
            messages,
            rooms,
            users,
            social,
            couples,
            hasher,
            hub,
            clock,
            policy,
            limiter: Arc::new(Limiter::in_memory()),
            audit: None,
        }
    }

    /// Records room admin actions (kick, ban, unban, mute) in this audit log.
    pub fn with_audit(mut self, audit: Arc<crate::moderation::ModerationService>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Appends a room admin action to the audit log (when there is one).
    pub(crate) async fn audit(
        &self,
        who: &Principal,
        action: &str,
        room_id: &str,
        target: uuid::Uuid,
    ) {
        if let Some(audit) = &self.audit {
            let actor = crate::moderation::Actor::user(who.user_id, None);
            let detail = Some(format!("room {room_id}"));
            if let Err(e) = audit
                .record(&actor, action, ("user", target.to_string()), detail)
                .await
            {
                tracing::warn!(error = %e, action, "audit entry not written");
            }
        }
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn policy(&self) -> RoomPolicy {
        self.policy
    }

    /// The room by id, whoever asks (callers check access).
    pub async fn room(&self, id: &str) -> DomainResult<Room> {
        check_room_id(id)?;
        self.rooms.find(id).await?.ok_or_else(not_found)
    }

    /// The room, if the caller may see it (a member, or any public group room).
    pub async fn get(&self, who: &Principal, id: &str) -> DomainResult<Room> {
        let room = self.room(id).await?;
        let member = self.rooms.membership(id, who.user_id).await?;
        if member.as_ref().is_some_and(Membership::is_active)
            || (room.kind == RoomKind::Group && room.visibility == Visibility::Public)
        {
            Ok(room)
        } else {
            Err(not_found())
        }
    }

    pub async fn members(&self, who: &Principal, id: &str) -> DomainResult<Vec<MemberView>> {
        self.require_member(who.user_id, id).await?;
        self.rooms.members(id).await
    }

    pub async fn my_rooms(&self, who: &Principal) -> DomainResult<Vec<RoomSummary>> {
        self.rooms.rooms_of(who.user_id).await
    }

    /// Moves a member's read cursor (membership was checked by the caller:
    /// [`crate::chat::ChatService::mark_read`] is the use case).
    pub(crate) async fn record_read(
        &self,
        who: &Principal,
        id: &str,
        seq: i64,
    ) -> DomainResult<i64> {
        // Never past the newest message, so later messages still count as unread.
        let last = self.room(id).await?.last_seq;
        self.rooms
            .mark_read(id, who.user_id, seq.clamp(0, last))
            .await
    }
}
