//! Emoji reactions.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;

use crate::hub::{EventPayload, RoomEvent};

use super::ChatService;

impl ChatService {
    pub async fn react(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
        emoji: &str,
        on: bool,
    ) -> DomainResult<()> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.limiter
            .reserve(
                &self.limiter.limits().reaction_user,
                &who.user_id.to_string(),
            )
            .await?;
        self.live_message(room_id, id).await?;
        let emoji = crate::message::check_emoji(emoji)?;
        if self
            .messages
            .set_reaction(id, who.user_id, &emoji, on, self.clock.now())
            .await?
        {
            self.hub
                .publish(RoomEvent::ephemeral(
                    room_id,
                    EventPayload::Reaction {
                        message_id: id,
                        user_id: who.user_id,
                        emoji,
                        added: on,
                    },
                    None,
                ))
                .await;
        }
        Ok(())
    }

    pub async fn reactions(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
    ) -> DomainResult<Vec<crate::message::ReactionCount>> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.live_message(room_id, id).await?;
        Ok(self
            .messages
            .reactions(vec![id])
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }
}
