//! Staff closing a group room: nobody joins it again, every member is
//! removed (their live subscriptions end as after a kick), the history
//! stays for the record, and the audit log says who and why.

use crate::error::{DomainError, DomainResult};
use crate::moderation::{Actor, ModerationService, check_reason};
use crate::room::{MemberState, RoomKind};

use super::RoomService;

/// A join, or a staff action, on a room staff closed.
pub(crate) fn room_closed() -> DomainError {
    DomainError::forbidden("room_closed", "the server's moderators closed this room")
}

impl RoomService {
    /// Closes a group room (moderators and admins). A SYSTEM notice with the
    /// reason goes first, so it is the last message its members saw.
    pub async fn close_by_staff(
        &self,
        moderation: &ModerationService,
        actor: &Actor,
        id: &str,
        reason: &str,
    ) -> DomainResult<()> {
        moderation.require_staff(actor).await?;
        let reason = check_reason(reason)?;
        let room = self.room(id).await?;
        if room.kind != RoomKind::Group {
            return Err(DomainError::invalid(
                "not_closable",
                "only group rooms are closed: suspend a person, or they block each other",
            ));
        }
        if !self
            .rooms
            .close(id, actor.user_id, self.clock.now(), &reason)
            .await?
        {
            return Err(DomainError::conflict(
                "room_closed",
                "this room is already closed",
            ));
        }
        if let Some(staff) = actor.user_id {
            self.system_message(&room, staff, |_| {
                format!("The server's moderators closed this room: {reason}")
            })
            .await;
        }
        for m in self.rooms.members(id).await? {
            if self
                .rooms
                .remove_member(id, m.user_id, MemberState::Left)
                .await?
            {
                self.announce_leave(id, m.user_id, true).await;
            }
        }
        moderation
            .record(actor, "room.close", ("room", id.to_owned()), Some(reason))
            .await
    }
}
