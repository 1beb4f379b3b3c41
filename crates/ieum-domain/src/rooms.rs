//! Room use cases: create, open a direct room, join (password, invite code,
//! member limit, bans), leave, roles, favorites, invite codes, room lists.

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::Principal;
use crate::chat::Sender;
use crate::error::{DomainError, DomainResult};
use crate::hub::{EventPayload, Hub, LOBBY_FEED, RoomEvent, user_feed};
use crate::ports::{
    Clock, JoinOutcome, MessageRepository, PasswordHasher, RoomRepository, SocialRepository,
    UserRepository,
};
use crate::room::{
    HistoryVisibility, MemberState, MemberView, Membership, NewRoom, Role, Room, RoomKind,
    RoomSettings, RoomSummary, Visibility, check_client_room_id, check_room_id, check_url,
    direct_room_id, normalize_description, normalize_room_name,
};
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
    hasher: Arc<dyn PasswordHasher>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    policy: RoomPolicy,
}

fn not_found() -> DomainError {
    DomainError::not_found("room_not_found", "no such room")
}

/// Admin actions in a 1:1 room.
pub fn direct_room_has_no_admins() -> DomainError {
    DomainError::forbidden(
        "direct_room",
        "a direct room has no admins: nobody manages its members or settings",
    )
}

fn not_member() -> DomainError {
    DomainError::forbidden("not_a_member", "you are not a member of this room")
}

fn invite_code() -> String {
    // 12 characters from 122 random bits: unguessable, easy to type.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bits = Uuid::new_v4().as_u128();
    (0..12)
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// What a [`RoomService`] works with, by name (wiring reads as a list, and
/// two ports of one type cannot swap places unnoticed).
pub struct RoomPorts {
    pub messages: Arc<dyn MessageRepository>,
    pub rooms: Arc<dyn RoomRepository>,
    pub users: Arc<dyn UserRepository>,
    pub social: Arc<dyn SocialRepository>,
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
            hasher,
            hub,
            clock,
        } = ports;
        Self {
            messages,
            rooms,
            users,
            social,
            hasher,
            hub,
            clock,
            policy,
            limiter: Arc::new(Limiter::in_memory()),
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

    fn member_limit(&self, requested: Option<u32>) -> DomainResult<u32> {
        let limit = requested.unwrap_or(self.policy.default_member_limit);
        if !(2..=self.policy.max_member_limit).contains(&limit) {
            return Err(DomainError::invalid(
                "invalid_member_limit",
                format!("member limit must be 2 to {}", self.policy.max_member_limit),
            ));
        }
        Ok(limit)
    }

    pub async fn create_group(&self, who: &Principal, req: CreateRoom) -> DomainResult<Room> {
        let id = match req.id {
            Some(id) => {
                check_client_room_id(&id)?;
                id
            }
            None => Uuid::now_v7().to_string(),
        };
        self.limiter
            .reserve(
                &self.limiter.limits().room_create_user,
                &who.user_id.to_string(),
            )
            .await?;
        let password_hash = match req.password.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if p.len() > crate::user::PASSWORD_MAX_BYTES => {
                return Err(DomainError::invalid(
                    "invalid_password",
                    "room password is too long",
                ));
            }
            Some(p) => Some(self.hasher.hash(p.to_owned()).await?),
            None => None,
        };
        let room = self
            .rooms
            .create(NewRoom {
                id,
                kind: RoomKind::Group,
                name: normalize_room_name(&req.name)?,
                description: normalize_description(req.description.as_deref())?,
                image_url: check_url("invalid_image_url", req.image_url.as_deref())?,
                visibility: req.visibility.unwrap_or(Visibility::Public),
                password_hash,
                member_limit: self.member_limit(req.member_limit)?,
                history_visibility: HistoryVisibility::All,
                pin_policy: crate::room::PinPolicy::Members,
                created_by: who.user_id,
                creator_role: Role::Owner,
                created_at: self.clock.now(),
            })
            .await?;
        tracing::info!(room = %room.id, by = %who.user_id, "room created");
        let feed = match room.visibility {
            Visibility::Public => LOBBY_FEED.to_owned(),
            Visibility::Private => user_feed(who.user_id),
        };
        self.hub
            .publish(RoomEvent::ephemeral(
                feed,
                EventPayload::RoomCreated(Box::new(room.clone())),
                None,
            ))
            .await;
        Ok(room)
    }

    /// The one direct room of the caller and `peer`, made on first use.
    pub async fn open_direct(&self, who: &Principal, peer: Uuid) -> DomainResult<Room> {
        if peer == who.user_id {
            return Err(DomainError::invalid(
                "invalid_peer",
                "a direct room needs another user",
            ));
        }
        if self.social.blocked_between(who.user_id, peer).await? {
            return Err(crate::error::named::blocked());
        }
        let peer_user = self
            .users
            .find_by_id(peer)
            .await?
            .ok_or_else(crate::error::named::user_not_found)?;
        let id = direct_room_id(who.user_id, peer);
        if let Some(room) = self.rooms.find(&id).await? {
            // Someone who left comes back.
            self.rooms
                .add_member(&id, who.user_id, Role::Member, self.clock.now())
                .await?;
            return Ok(room);
        }
        let created = self
            .rooms
            .create(NewRoom::direct(
                id.clone(),
                format!("{} & {}", who.username, peer_user.username),
                who.user_id,
                self.clock.now(),
            ))
            .await;
        let room = match created {
            Ok(room) => room,
            // Both opened it at once: the other call made it.
            Err(DomainError::Conflict { .. }) => {
                self.rooms.find(&id).await?.ok_or_else(not_found)?
            }
            Err(e) => return Err(e),
        };
        self.rooms
            .add_member(&id, peer, Role::Member, self.clock.now())
            .await?;
        Ok(room)
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

    /// Joins a room under its rules: no direct rooms, no bans, the invite code of
    /// a private room, the password of a password room, a free seat.
    pub async fn join(&self, who: &Principal, id: &str, req: JoinRequest) -> DomainResult<Room> {
        let room = self.room(id).await?;
        self.admit(who, &room, &req).await?;
        self.rooms.find(id).await?.ok_or_else(not_found)
    }

    /// Admits the user under the room's rules; true when they joined just now.
    async fn admit(&self, who: &Principal, room: &Room, req: &JoinRequest) -> DomainResult<bool> {
        let existing = self.rooms.membership(&room.id, who.user_id).await?;
        match existing.as_ref().map(|m| m.state) {
            Some(MemberState::Active) => return Ok(false),
            Some(MemberState::Banned) => {
                return Err(crate::error::named::banned());
            }
            _ => {}
        }
        if room.kind == RoomKind::Direct {
            return Err(DomainError::forbidden(
                "direct_room",
                "direct rooms cannot be joined",
            ));
        }
        let by_code = match (&room.invite_code, &req.invite_code) {
            (Some(code), Some(given)) => code == given.trim(),
            _ => false,
        };
        if room.visibility == Visibility::Private && !by_code {
            return Err(DomainError::forbidden(
                "private_room",
                "this room is private: join with its invite code",
            ));
        }
        if let Some(hash) = &room.password_hash {
            let ok = match req.password.as_deref() {
                Some(p) if p.len() <= crate::user::PASSWORD_MAX_BYTES => {
                    self.hasher.verify(p.to_owned(), hash.clone()).await?
                }
                _ => false,
            };
            if !ok {
                return Err(DomainError::forbidden(
                    "wrong_password",
                    "wrong room password",
                ));
            }
        }
        match self
            .rooms
            .add_member(&room.id, who.user_id, Role::Member, self.clock.now())
            .await?
        {
            JoinOutcome::Joined => {
                self.announce_join(who, room).await;
                Ok(true)
            }
            JoinOutcome::AlreadyMember => Ok(false),
            JoinOutcome::Banned => Err(crate::error::named::banned()),
            JoinOutcome::Full => Err(DomainError::conflict(
                "room_full",
                format!("the room is full ({} members)", room.member_limit),
            )),
        }
    }

    /// Leaves a SYSTEM message in a group room (joins, leaves, kicks, renames);
    /// `actor` is who did it. Failures are logged: the action itself stands.
    async fn system_message(&self, room: &Room, actor: Uuid, content: impl FnOnce(&str) -> String) {
        if room.kind != RoomKind::Group {
            return;
        }
        let sender = match self.users.find_by_id(actor).await {
            Ok(Some(u)) => Sender::from(&u),
            _ => return,
        };
        let content = content(&sender.display_name);
        self.post_system(&room.id, &sender, content).await;
    }

    /// The one way a SYSTEM message is posted: stored, then published. It
    /// tells of something that already happened (a join, a pin), so a failure
    /// is logged and never undoes or fails that.
    pub(crate) async fn post_system(&self, room_id: &str, actor: &Sender, content: String) {
        let appended = self
            .messages
            .append(actor.system_message(room_id, content, self.clock.now()))
            .await;
        match appended {
            Ok(a) => self.hub.publish(RoomEvent::message(a.message)).await,
            Err(e) => tracing::warn!(room = %room_id, error = %e, "system message failed"),
        }
    }

    /// Tells the room's members (and the joiner's own devices) that someone joined.
    async fn announce_join(&self, who: &Principal, room: &Room) {
        let payload = EventPayload::MemberJoined {
            room: Box::new(room.clone()),
            user_id: who.user_id,
            username: who.username.clone(),
        };
        self.hub
            .publish(RoomEvent::ephemeral(room.id.clone(), payload.clone(), None))
            .await;
        self.hub
            .publish(RoomEvent::ephemeral(user_feed(who.user_id), payload, None))
            .await;
        self.system_message(room, who.user_id, |n| format!("{n} joined"))
            .await;
    }

    async fn announce_leave(&self, room_id: &str, user_id: Uuid, kicked: bool) {
        let payload = EventPayload::MemberLeft {
            room_id: room_id.to_owned(),
            user_id,
            kicked,
        };
        // On the room's feed only: the leaver's connections are still subscribed
        // there and get it; then every node's feed ends their subscriptions and
        // forgets the membership.
        self.hub
            .publish(RoomEvent::ephemeral(room_id.to_owned(), payload, None))
            .await;
    }

    pub async fn join_by_code(&self, who: &Principal, code: &str) -> DomainResult<Room> {
        crate::text::refuse_nul(code)?;
        let room = self
            .rooms
            .find_by_invite_code(code.trim())
            .await?
            .ok_or_else(|| {
                crate::error::named::invalid_invite_code("no room has that invite code")
            })?;
        let req = JoinRequest {
            password: None,
            invite_code: Some(code.to_owned()),
        };
        // An invite code stands in for the password too.
        let room_for_admit = Room {
            password_hash: None,
            ..room.clone()
        };
        self.admit(who, &room_for_admit, &req).await?;
        Ok(room)
    }

    /// What a send or subscribe needs: an active membership, joining first under
    /// `Entry::AutoJoin`.
    pub async fn enter(&self, who: &Principal, id: &str, entry: Entry) -> DomainResult<Membership> {
        if let Some(m) = self.rooms.membership(id, who.user_id).await?
            && m.is_active()
        {
            return Ok(m);
        }
        match entry {
            Entry::MembersOnly => {
                check_room_id(id)?;
                Err(not_member())
            }
            Entry::AutoJoinExisting => {
                let room = self.room(id).await?;
                self.admit(who, &room, &JoinRequest::default()).await?;
                self.require_member(who.user_id, id).await
            }
            Entry::AutoJoin => {
                let room = match self.rooms.find(id).await? {
                    Some(room) => room,
                    None => {
                        check_client_room_id(id)?;
                        let created = self
                            .create_group(
                                who,
                                CreateRoom {
                                    id: Some(id.to_owned()),
                                    name: id.to_owned(),
                                    ..Default::default()
                                },
                            )
                            .await;
                        match created {
                            Ok(room) => room,
                            Err(DomainError::Conflict { .. }) => self.room(id).await?,
                            Err(e) => return Err(e),
                        }
                    }
                };
                self.admit(who, &room, &JoinRequest::default()).await?;
                self.rooms
                    .membership(id, who.user_id)
                    .await?
                    .filter(Membership::is_active)
                    .ok_or_else(not_member)
            }
        }
    }

    /// What a SEND, a typing notice or a read needs: `who` is an active member
    /// (joining first where `entry` lets them), and the room's kind. Served from
    /// the hub's member cache when it can be (see [`crate::members`]).
    pub async fn member_kind(
        &self,
        who: &Principal,
        id: &str,
        entry: Entry,
    ) -> DomainResult<RoomKind> {
        if let Some(kind) = self.hub.cached_member(id, who.user_id) {
            return Ok(kind);
        }
        let ticket = self.hub.member_ticket();
        let m = self.enter(who, id, entry).await?;
        if let Some(t) = ticket {
            self.hub.remember_member(t, id, who.user_id, m.room_kind);
        }
        Ok(m.room_kind)
    }

    /// Up to which seq the caller may read the room's history: `None` for all of
    /// it. Members read everything; someone who left reads under the room's
    /// history visibility; anyone else must get in under `entry` first.
    pub async fn readable_upto(
        &self,
        who: &Principal,
        id: &str,
        entry: Entry,
    ) -> DomainResult<Option<i64>> {
        match self.rooms.membership(id, who.user_id).await? {
            Some(m) if m.is_active() => Ok(None),
            Some(m) if m.state == MemberState::Left => {
                let room = self.room(id).await?;
                match room.history_visibility {
                    HistoryVisibility::All => Ok(None),
                    HistoryVisibility::UntilLeave => Ok(Some(m.left_seq.unwrap_or(0))),
                    HistoryVisibility::None => Err(DomainError::forbidden(
                        "history_hidden",
                        "this room hides its history from people who left",
                    )),
                }
            }
            Some(_) => Err(crate::error::named::banned()),
            None => self.enter(who, id, entry).await.map(|_| None),
        }
    }

    /// Admins change the room's name, description, image and settings.
    pub async fn update_settings(
        &self,
        who: &Principal,
        id: &str,
        mut settings: RoomSettings,
    ) -> DomainResult<Room> {
        self.require_role(who, id, Role::Admin).await?;
        if let Some(name) = &settings.name {
            settings.name = Some(normalize_room_name(name)?);
        }
        if let Some(d) = &settings.description {
            settings.description = Some(normalize_description(d.as_deref())?);
        }
        if let Some(u) = &settings.image_url {
            settings.image_url = Some(check_url("invalid_image_url", u.as_deref())?);
        }
        let renamed = settings.name.clone();
        self.rooms.update_settings(id, settings).await?;
        let room = self.room(id).await?;
        if let Some(name) = renamed {
            self.system_message(&room, who.user_id, |n| {
                format!("{n} renamed the room to {name}")
            })
            .await;
        }
        self.hub
            .publish(RoomEvent::ephemeral(
                id,
                EventPayload::RoomUpdated(Box::new(room.clone())),
                None,
            ))
            .await;
        Ok(room)
    }

    /// Admins remove a member (`ban` keeps them out for good).
    pub async fn kick(
        &self,
        who: &Principal,
        id: &str,
        target: Uuid,
        ban: bool,
    ) -> DomainResult<()> {
        let me = self.require_role(who, id, Role::Admin).await?;
        if target == who.user_id {
            return Err(DomainError::invalid("own_kick", "leave the room instead"));
        }
        let them = self.rooms.membership(id, target).await?;
        if let Some(t) = &them
            && t.role >= me.role
        {
            return Err(crate::error::named::insufficient_role(
                "you cannot remove someone of your role or higher",
            ));
        }
        let state = if ban {
            MemberState::Banned
        } else {
            MemberState::Left
        };
        let was_active = them.as_ref().is_some_and(Membership::is_active);
        if was_active {
            self.rooms.remove_member(id, target, state).await?;
            self.announce_leave(id, target, true).await;
            let target_name = match self.users.find_by_id(target).await? {
                Some(u) => u.display_name,
                None => "someone".to_owned(),
            };
            let room = self.room(id).await?;
            let verb = if ban { "banned" } else { "removed" };
            self.system_message(&room, who.user_id, |n| format!("{n} {verb} {target_name}"))
                .await;
        } else if ban {
            // Banning someone who never joined keeps a row for them: they must exist.
            if them.is_none() && self.users.find_by_id(target).await?.is_none() {
                return Err(crate::error::named::user_not_found());
            }
            if self
                .rooms
                .ban_outsider(id, target, self.clock.now())
                .await?
            {
                return Ok(());
            }
            // Not a member when we looked, but they joined meanwhile: remove
            // them like a member, so every node hears that they left.
            if self
                .rooms
                .remove_member(id, target, MemberState::Banned)
                .await?
            {
                self.announce_leave(id, target, true).await;
            }
        }
        Ok(())
    }

    /// Whether `role` may act as an admin in the room: never in a direct room.
    pub async fn acts_as_admin(&self, id: &str, role: Role) -> DomainResult<bool> {
        Ok(role >= Role::Admin && self.room(id).await?.kind != RoomKind::Direct)
    }

    /// An active membership or `Forbidden`.
    pub async fn require_member(&self, user_id: Uuid, id: &str) -> DomainResult<Membership> {
        self.rooms
            .membership(id, user_id)
            .await?
            .filter(Membership::is_active)
            .ok_or_else(not_member)
    }

    pub async fn leave(&self, who: &Principal, id: &str) -> DomainResult<()> {
        let me = self.require_member(who.user_id, id).await?;
        self.rooms
            .remove_member(id, who.user_id, MemberState::Left)
            .await?;
        self.announce_leave(id, who.user_id, false).await;
        if let Ok(room) = self.room(id).await {
            self.system_message(&room, who.user_id, |n| format!("{n} left"))
                .await;
        }
        if me.role == Role::Owner {
            // Hand the room to the longest-standing admin, else member.
            let members = self.rooms.members(id).await?;
            let heir = members
                .iter()
                .find(|m| m.role == Role::Admin)
                .or_else(|| members.first());
            if let Some(heir) = heir {
                self.rooms.set_role(id, heir.user_id, Role::Owner).await?;
            }
        }
        Ok(())
    }

    async fn require_role(
        &self,
        who: &Principal,
        id: &str,
        at_least: Role,
    ) -> DomainResult<Membership> {
        let m = self.require_member(who.user_id, id).await?;
        if self.room(id).await?.kind == RoomKind::Direct {
            return Err(direct_room_has_no_admins());
        }
        if m.role < at_least {
            return Err(crate::error::named::insufficient_role(format!(
                "this needs the {} role",
                at_least.as_str()
            )));
        }
        Ok(m)
    }

    /// Makes (or replaces) the room's invite code. Admins and the owner only.
    pub async fn rotate_invite_code(&self, who: &Principal, id: &str) -> DomainResult<String> {
        self.require_role(who, id, Role::Admin).await?;
        let room = self.room(id).await?;
        if room.kind == RoomKind::Direct {
            return Err(DomainError::forbidden(
                "direct_room",
                "direct rooms have no invite code",
            ));
        }
        let code = invite_code();
        self.rooms.set_invite_code(id, Some(code.clone())).await?;
        Ok(code)
    }

    /// The current invite code (admins and the owner only).
    pub async fn invite_code(&self, who: &Principal, id: &str) -> DomainResult<Option<String>> {
        self.require_role(who, id, Role::Admin).await?;
        Ok(self.room(id).await?.invite_code)
    }

    pub async fn revoke_invite_code(&self, who: &Principal, id: &str) -> DomainResult<()> {
        self.require_role(who, id, Role::Admin).await?;
        self.rooms.set_invite_code(id, None).await
    }

    /// The owner makes a member admin or member (and may hand over ownership).
    pub async fn set_role(
        &self,
        who: &Principal,
        id: &str,
        target: Uuid,
        role: Role,
    ) -> DomainResult<()> {
        self.require_role(who, id, Role::Owner).await?;
        if target == who.user_id {
            return Err(DomainError::invalid(
                "own_role",
                "you cannot change your own role",
            ));
        }
        self.require_member(target, id)
            .await
            .map_err(|_| DomainError::not_found("member_not_found", "no such member"))?;
        self.rooms.set_role(id, target, role).await?;
        if role == Role::Owner {
            self.rooms.set_role(id, who.user_id, Role::Admin).await?;
        }
        Ok(())
    }

    pub async fn set_favorite(
        &self,
        who: &Principal,
        id: &str,
        favorite: bool,
    ) -> DomainResult<()> {
        self.require_member(who.user_id, id).await?;
        self.rooms.set_favorite(id, who.user_id, favorite).await?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        LocalBus, MockClock, MockMessageRepository, MockPasswordHasher, MockRoomRepository,
        MockSocialRepository, MockUserRepository,
    };
    use chrono::Utc;

    fn who() -> Principal {
        Principal {
            user_id: Uuid::from_u128(1),
            username: "alice".into(),
        }
    }

    fn room(visibility: Visibility, password: bool) -> Room {
        Room {
            id: "room-1".into(),
            kind: RoomKind::Group,
            name: "room-1".into(),
            description: None,
            image_url: None,
            visibility,
            password_hash: password.then(|| "HASH".into()),
            member_limit: 50,
            member_count: 1,
            invite_code: Some("CODE".into()),
            created_by: Uuid::from_u128(9),
            created_at: Utc::now(),
            last_seq: 0,
            last_message_at: None,
            history_visibility: HistoryVisibility::All,
            pin_policy: crate::room::PinPolicy::Members,
        }
    }

    /// A group-room membership as the repository would return it.
    fn membership(room_id: &str, user_id: Uuid, role: Role, state: MemberState) -> Membership {
        Membership {
            room_id: room_id.into(),
            room_kind: RoomKind::Group,
            user_id,
            role,
            state,
            joined_at: Utc::now(),
            last_read_seq: 0,
            favorite: false,
            left_seq: None,
        }
    }

    fn service(rooms: MockRoomRepository, hasher: MockPasswordHasher) -> RoomService {
        service_with_users(rooms, hasher, MockUserRepository::new())
    }

    fn service_with_users(
        rooms: MockRoomRepository,
        hasher: MockPasswordHasher,
        users: MockUserRepository,
    ) -> RoomService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let mut messages = MockMessageRepository::new();
        messages.expect_last_seq().returning(|_| Ok(0));
        let mut sys = MockMessageRepository::new();
        sys.expect_last_seq().returning(|_| Ok(0));
        RoomService::new(
            RoomPorts {
                messages: Arc::new(sys),
                rooms: Arc::new(rooms),
                users: Arc::new(users),
                social: Arc::new(MockSocialRepository::new()),
                hasher: Arc::new(hasher),
                hub: Hub::new(Arc::new(messages), Arc::new(LocalBus)),
                clock: Arc::new(clock),
            },
            RoomPolicy::default(),
        )
    }

    #[tokio::test]
    async fn joining_checks_privacy_password_and_seats() {
        // private without code
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_find()
            .returning(|_| Ok(Some(room(Visibility::Private, false))));
        rooms.expect_membership().returning(|_, _| Ok(None));
        rooms.expect_add_member().never();
        let svc = service(rooms, MockPasswordHasher::new());
        let err = svc
            .join(&who(), "room-1", JoinRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "private_room");

        // wrong password
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_find()
            .returning(|_| Ok(Some(room(Visibility::Public, true))));
        rooms.expect_membership().returning(|_, _| Ok(None));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(|p, _| Ok(p == "right"));
        let svc = service(rooms, hasher);
        let wrong = JoinRequest {
            password: Some("wrong".into()),
            invite_code: None,
        };
        assert_eq!(
            svc.join(&who(), "room-1", wrong).await.unwrap_err().code(),
            "wrong_password"
        );

        // full
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_find()
            .returning(|_| Ok(Some(room(Visibility::Public, false))));
        rooms.expect_membership().returning(|_, _| Ok(None));
        rooms
            .expect_add_member()
            .returning(|_, _, _, _| Ok(JoinOutcome::Full));
        let svc = service(rooms, MockPasswordHasher::new());
        let err = svc
            .join(&who(), "room-1", JoinRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "room_full");
    }

    #[tokio::test]
    async fn banned_users_stay_out_even_with_auto_join() {
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_find()
            .returning(|_| Ok(Some(room(Visibility::Public, false))));
        rooms
            .expect_membership()
            .returning(|r, u| Ok(Some(membership(r, u, Role::Member, MemberState::Banned))));
        rooms.expect_add_member().never();
        let svc = service(rooms, MockPasswordHasher::new());
        let err = svc
            .enter(&who(), "room-1", Entry::AutoJoin)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "banned");
    }

    #[tokio::test]
    async fn banning_an_unknown_user_is_not_found() {
        let mut rooms = MockRoomRepository::new();
        rooms.expect_membership().returning(|r, u| {
            Ok((u == who().user_id).then(|| membership(r, u, Role::Owner, MemberState::Active)))
        });
        rooms
            .expect_find()
            .returning(|_| Ok(Some(room(Visibility::Public, false))));
        rooms.expect_ban_outsider().never();
        let mut users = MockUserRepository::new();
        users.expect_find_by_id().returning(|_| Ok(None));
        let svc = service_with_users(rooms, MockPasswordHasher::new(), users);
        let err = svc
            .kick(&who(), "room-1", Uuid::from_u128(99), true)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "user_not_found");
    }

    #[tokio::test]
    async fn nobody_rules_a_direct_room_whatever_role_is_stored() {
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_membership()
            .returning(|r, u| Ok(Some(membership(r, u, Role::Owner, MemberState::Active))));
        rooms.expect_find().returning(|_| {
            Ok(Some(Room {
                kind: RoomKind::Direct,
                ..room(Visibility::Private, false)
            }))
        });
        rooms.expect_remove_member().never();
        rooms.expect_update_settings().never();
        let svc = service(rooms, MockPasswordHasher::new());
        let err = svc
            .kick(&who(), "room-1", Uuid::from_u128(99), true)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "direct_room");
        let err = svc
            .update_settings(&who(), "room-1", RoomSettings::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "direct_room");
        assert!(!svc.acts_as_admin("room-1", Role::Owner).await.unwrap());
    }

    #[tokio::test]
    async fn room_creation_past_the_hourly_limit_is_refused_before_storing() {
        let mut rooms = MockRoomRepository::new();
        rooms.expect_create().times(2).returning(|r| {
            Ok(Room {
                id: r.id,
                ..room(Visibility::Public, false)
            })
        });
        let mut limits = crate::throttle::RateLimits::default();
        limits.room_create_user.max = 2;
        let limiter = crate::throttle::Limiter::new(
            Arc::new(crate::throttle::MemoryRateCounter::new(10)),
            Arc::new(crate::ports::SystemClock),
            limits,
        );
        let svc = service(rooms, MockPasswordHasher::new()).with_limiter(Arc::new(limiter));
        for _ in 0..2 {
            svc.create_group(
                &who(),
                CreateRoom {
                    name: "r".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        let err = svc
            .create_group(
                &who(),
                CreateRoom {
                    name: "r".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "room_create_rate_limited");
        assert!(err.retry_after_secs().is_some_and(|s| s > 3000));
    }

    #[tokio::test]
    async fn auto_join_creates_unknown_rooms_as_public_groups() {
        let mut rooms = MockRoomRepository::new();
        rooms.expect_find().returning(|_| Ok(None));
        rooms
            .expect_create()
            .withf(|r| {
                r.id == "room-7" && r.visibility == Visibility::Public && r.kind == RoomKind::Group
            })
            .times(1)
            .returning(|r| {
                Ok(Room {
                    id: r.id,
                    ..room(Visibility::Public, false)
                })
            });
        let mut calls = 0;
        rooms.expect_membership().returning(move |r, u| {
            calls += 1;
            Ok((r == "room-7" && calls > 2)
                .then(|| membership(r, u, Role::Owner, MemberState::Active)))
        });
        rooms
            .expect_add_member()
            .returning(|_, _, _, _| Ok(JoinOutcome::AlreadyMember));
        let svc = service(rooms, MockPasswordHasher::new());
        let m = svc.enter(&who(), "room-7", Entry::AutoJoin).await.unwrap();
        assert!(m.is_active());
        let err = svc
            .enter(&who(), "bad id!", Entry::AutoJoin)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_room_id");
    }

    #[test]
    fn invite_codes_look_random() {
        let a = invite_code();
        assert_eq!(a.len(), 12);
        assert_ne!(a, invite_code());
    }
}
