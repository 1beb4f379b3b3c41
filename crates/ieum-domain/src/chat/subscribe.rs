//! Subscriptions of a connection's mailbox, and the replay of a resume.

use std::sync::Arc;

use crate::auth::Principal;
use crate::error::DomainResult;

use crate::hub::Mailbox;
use crate::message::{HistoryQuery, Message};
use crate::room::RoomKind;

use super::{ChatService, SubscribeRequest, Subscribed};

impl ChatService {
    /// Subscribes a connection to a non-room feed (its user feed, the lobby).
    pub async fn subscribe_feed(
        &self,
        who: &Principal,
        feed: &str,
        subscription: Arc<str>,
        shape: u8,
        mailbox: Mailbox,
    ) -> DomainResult<()> {
        self.hub
            .subscribe(feed, who.user_id, subscription, shape, mailbox)
            .await?;
        Ok(())
    }

    /// Subscribes a connection's mailbox to a room after checking membership.
    pub async fn subscribe(
        &self,
        who: &Principal,
        req: SubscribeRequest,
    ) -> DomainResult<Subscribed> {
        // The member cache first (as a send does): a reconnect storm
        // re-subscribes thousands of known members at once.
        let kind = self.rooms.member_kind(who, &req.room_id, req.entry).await?;
        let live_after = self
            .hub
            .subscribe(
                &req.room_id,
                who.user_id,
                req.subscription,
                req.shape,
                req.mailbox,
            )
            .await?;
        let max = i64::from(self.policy.max_resume);
        let (resume_after, truncated) = match req.resume_after {
            Some(after) if live_after - after.max(0) > max => (Some(live_after - max), true),
            Some(after) => (Some(after.max(0)), false),
            None => (None, false),
        };
        Ok(Subscribed {
            live_after,
            direct: kind == RoomKind::Direct,
            resume_after,
            truncated,
        })
    }

    pub fn unsubscribe(&self, room_id: &str, mailbox: &Mailbox, subscription: Arc<str>) {
        self.hub.unsubscribe(room_id, mailbox, subscription);
    }

    /// The next page of a resume: messages with `after < seq <= upto`, oldest
    /// first, at most `max_page`. Membership was checked at subscribe.
    pub async fn replay_page(
        &self,
        room_id: &str,
        after: i64,
        upto: i64,
    ) -> DomainResult<Vec<Message>> {
        if after >= upto {
            return Ok(Vec::new());
        }
        let limit = ((upto - after) as u32).min(self.policy.max_page);
        let query = HistoryQuery {
            after: Some(after),
            before: Some(upto + 1),
            limit,
            skip_system: false,
        };
        // After a reconnect storm a room's members all ask for the same
        // page at once: one read serves them (`crate::replays`).
        if let Some(slot) = self.hub.replay_slot(room_id, after, upto) {
            let shared = slot
                .get_or_read(|| async {
                    self.messages.page(room_id, query).await.ok().map(Arc::new)
                })
                .await;
            if let Some(page) = shared {
                return Ok(page.as_ref().clone());
            }
            self.hub.replay_failed(room_id, after, upto);
        }
        self.messages.page(room_id, query).await
    }
}
