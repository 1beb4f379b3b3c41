//! Who may do what: active membership, roles, and how much history a
//! former member may read.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::room::{HistoryVisibility, MemberState, Membership, Role, RoomKind};

use super::{Entry, RoomService, direct_room_has_no_admins, not_member};

impl RoomService {
    /// What a SEND, a typing notice or a read needs: `who` is an active member
    /// (joining first where `entry` lets them), and the room's kind. Served from
    /// the hub's member cache when it can be (see [`crate::members`]).
    pub async fn member_kind(
        &self,
        who: &Principal,
        id: &str,
        entry: Entry,
    ) -> DomainResult<RoomKind> {
        self.member_kind_checked(who, id, entry, false).await
    }

    /// [`Self::member_kind`] for sending: a muted member is refused
    /// (`muted`). The member cache holds unmuted members only, and a mute
    /// evicts its member on every node (`EventPayload::MemberMuted`).
    pub async fn sender_kind(
        &self,
        who: &Principal,
        id: &str,
        entry: Entry,
    ) -> DomainResult<RoomKind> {
        self.member_kind_checked(who, id, entry, true).await
    }

    async fn member_kind_checked(
        &self,
        who: &Principal,
        id: &str,
        entry: Entry,
        sending: bool,
    ) -> DomainResult<RoomKind> {
        if let Some(kind) = self.hub.cached_member(id, who.user_id) {
            return Ok(kind);
        }
        let ticket = self.hub.member_ticket();
        let m = self.enter(who, id, entry).await?;
        if m.is_muted_at(self.clock.now()) {
            if sending {
                let until = m.muted_until.map(|u| u.to_rfc3339()).unwrap_or_default();
                return Err(DomainError::forbidden(
                    "muted",
                    format!("a room admin muted you here until {until}"),
                ));
            }
            return Ok(m.room_kind);
        }
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

    pub(super) async fn require_role(
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
}
