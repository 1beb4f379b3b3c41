//! Thread replies.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;

use crate::message::Message;
use crate::rooms::Entry;

use super::ChatService;

impl ChatService {
    /// Replies to a message, oldest first.
    pub async fn thread(
        &self,
        who: &Principal,
        room_id: &str,
        parent: Uuid,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> DomainResult<(Message, Vec<Message>)> {
        let upto = self
            .rooms
            .readable_upto(who, room_id, Entry::MembersOnly)
            .await?;
        let p = self.live_message(room_id, parent).await?;
        // A leaver who may read only up to their leave sees no later parent.
        if upto.is_some_and(|max| p.seq > max) {
            return Err(crate::error::named::message_not_found());
        }
        let mut replies = self
            .messages
            .thread(parent, after, self.policy.page(limit))
            .await?;
        if let Some(max) = upto {
            replies.retain(|m| m.seq <= max);
        }
        self.attach_reactions(&mut replies).await?;
        Ok((p, replies))
    }
}
