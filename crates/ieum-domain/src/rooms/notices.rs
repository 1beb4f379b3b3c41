//! What a room is told when its membership changes: member events and
//! SYSTEM messages.

use uuid::Uuid;

use crate::auth::Principal;
use crate::chat::Sender;
use crate::hub::{EventPayload, RoomEvent, user_feed};
use crate::room::{Room, RoomKind};

use super::RoomService;

impl RoomService {
    /// Leaves a SYSTEM message in a group room (joins, leaves, kicks, renames);
    /// `actor` is who did it. Failures are logged: the action itself stands.
    /// A SYSTEM notice in a group room, by `actor` (staff notices).
    pub(crate) async fn notice(
        &self,
        room_id: &str,
        actor: Uuid,
        content: impl FnOnce(&str) -> String,
    ) {
        if let Ok(room) = self.room(room_id).await {
            self.system_message(&room, actor, content).await;
        }
    }

    pub(super) async fn system_message(
        &self,
        room: &Room,
        actor: Uuid,
        content: impl FnOnce(&str) -> String,
    ) {
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
    pub(super) async fn announce_join(&self, who: &Principal, room: &Room) {
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

    pub(super) async fn announce_leave(&self, room_id: &str, user_id: Uuid, kicked: bool) {
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
}
