//! Pinned messages.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;
use chrono::{DateTime, Utc};

use crate::hub::{EventPayload, RoomEvent};
use crate::message::Message;
use crate::room::{PinPolicy, Role};

use super::{ChatService, Sender};

impl ChatService {
    /// Pins or unpins under the room's pin policy; a pin also leaves a SYSTEM
    /// message in the room.
    pub async fn pin(
        &self,
        sender: &Sender,
        room_id: &str,
        id: Uuid,
        on: bool,
    ) -> DomainResult<()> {
        let who = sender.principal();
        let me = self.rooms.require_member(who.user_id, room_id).await?;
        let room = self.rooms.room(room_id).await?;
        if room.pin_policy == PinPolicy::Admins && me.role < Role::Admin {
            return Err(crate::error::named::insufficient_role(
                "only admins may pin in this room",
            ));
        }
        self.live_message(room_id, id).await?;
        let now = self.clock.now();
        if !self
            .messages
            .set_pin(room_id, id, who.user_id, on, now)
            .await?
        {
            return Ok(());
        }
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Pinned {
                    message_id: id,
                    by: who.user_id,
                    pinned: on,
                },
                None,
            ))
            .await;
        if on {
            let content = format!("{} pinned a message", sender.display_name);
            self.rooms.post_system(room_id, sender, content).await;
        }
        Ok(())
    }

    pub async fn pins(
        &self,
        who: &Principal,
        room_id: &str,
    ) -> DomainResult<Vec<(Message, Uuid, DateTime<Utc>)>> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.messages.pins(room_id).await
    }
}
