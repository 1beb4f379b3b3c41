//! Joining and leaving: join (by request or invite code), entry on first
//! use, leave, and admins removing, banning, unbanning and muting members.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::hub::{EventPayload, RoomEvent};

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::ports::JoinOutcome;
use crate::room::{
    MemberState, Membership, Role, Room, RoomKind, Visibility, check_client_room_id, check_room_id,
};

use super::closing::room_closed;
use super::{CreateRoom, Entry, JoinRequest, RoomService, not_found, not_member};

impl RoomService {
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
            JoinOutcome::Closed => Err(room_closed()),
            JoinOutcome::Full => Err(DomainError::conflict(
                "room_full",
                format!("the room is full ({} members)", room.member_limit),
            )),
        }
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

    pub async fn leave(&self, who: &Principal, id: &str) -> DomainResult<()> {
        let me = self.require_member(who.user_id, id).await?;
        if me.room_kind == RoomKind::Direct
            && let Some(couple) = self.couples.couple_of(who.user_id).await?
            && couple.id.to_string() == id
        {
            // Leaving alone would leave a couple nobody can write to or end.
            return Err(DomainError::conflict(
                "couple_room",
                "leaving the couple room would end the couple: unpair instead (DELETE /api/couples/me)",
            ));
        }
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

    /// Ends a dissolved couple's room: both partners leave it, the one who
    /// ended the couple first. Nobody can send to it again; its history
    /// stays readable by both (a direct room shows its whole history to
    /// those who left it).
    pub async fn end_couple(&self, room_id: &str, by: Uuid, partner: Uuid) -> DomainResult<()> {
        for user in [by, partner] {
            // Again after a failure part-way: who already left is not
            // announced twice.
            if self
                .rooms
                .remove_member(room_id, user, MemberState::Left)
                .await?
            {
                self.announce_leave(room_id, user, false).await;
            }
        }
        Ok(())
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
            let action = if ban { "room.ban" } else { "room.kick" };
            self.audit(who, action, id, target).await;
        } else if ban {
            self.audit(who, "room.ban", id, target).await;
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

    /// Room admins mute a member until `until` (`None`: unmute): a muted
    /// member reads and receives but cannot send. Same rank rules as kicks.
    pub async fn mute(
        &self,
        who: &Principal,
        id: &str,
        target: Uuid,
        until: Option<DateTime<Utc>>,
    ) -> DomainResult<()> {
        let me = self.require_role(who, id, Role::Admin).await?;
        if target == who.user_id {
            return Err(DomainError::invalid("own_mute", "you cannot mute yourself"));
        }
        if until.is_some_and(|until| until <= self.clock.now()) {
            return Err(DomainError::invalid(
                "invalid_until",
                "a mute ends in the future",
            ));
        }
        let them = self
            .rooms
            .membership(id, target)
            .await?
            .filter(Membership::is_active)
            .ok_or_else(|| {
                DomainError::not_found("not_a_member", "they are not a member of this room")
            })?;
        if them.role >= me.role {
            return Err(crate::error::named::insufficient_role(
                "you cannot mute someone of your role or higher",
            ));
        }
        if !self.rooms.set_muted(id, target, until).await? {
            return Err(DomainError::not_found(
                "not_a_member",
                "they are not a member of this room",
            ));
        }
        self.hub
            .publish(RoomEvent::ephemeral(
                id.to_owned(),
                EventPayload::MemberMuted {
                    user_id: target,
                    until,
                },
                None,
            ))
            .await;
        let action = if until.is_some() {
            "room.mute"
        } else {
            "room.unmute"
        };
        self.audit(who, action, id, target).await;
        Ok(())
    }

    /// Room admins let a banned user back: they may join again.
    pub async fn unban(&self, who: &Principal, id: &str, target: Uuid) -> DomainResult<()> {
        self.require_role(who, id, Role::Admin).await?;
        if !self.rooms.unban(id, target).await? {
            return Err(DomainError::not_found(
                "not_banned",
                "they are not banned from this room",
            ));
        }
        self.audit(who, "room.unban", id, target).await;
        Ok(())
    }
}
