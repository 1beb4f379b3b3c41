//! What a room hears about its members reading and writing: read receipts,
//! delivery marks of 1:1 rooms, typing notices.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;
use chrono::Duration;

use crate::hub::{EventPayload, RoomEvent};
use crate::room::RoomKind;
use crate::rooms::Entry;

use super::{ChatService, ReadReceipt, TYPING_TTL_MS};

impl ChatService {
    /// Marks messages read (the listed ones, or up to `upto`), moves the read
    /// cursor and tells the room (all of the reader's devices included).
    pub async fn mark_read(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        message_ids: Vec<Uuid>,
        upto: Option<i64>,
    ) -> DomainResult<ReadReceipt> {
        let kind = self.rooms.member_kind(who, room_id, entry).await?;
        self.limiter
            .reserve(&self.limiter.limits().read_user, &who.user_id.to_string())
            .await?;
        let at = self.clock.now();
        let marked = if kind == RoomKind::Direct {
            self.receipts
                .mark_messages_read(room_id, who.user_id, message_ids, upto, at)
                .await?
        } else {
            Vec::new()
        };
        let seq = marked
            .iter()
            .map(|(_, s)| *s)
            .chain(upto)
            .max()
            .unwrap_or(0);
        let last_read_seq = self.rooms.record_read(who, room_id, seq).await?;
        let ids: Vec<Uuid> = marked.iter().map(|(id, _)| *id).collect();
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Read {
                    user_id: who.user_id,
                    seq: last_read_seq,
                    message_ids: ids.clone(),
                    read_at: at,
                },
                None,
            ))
            .await;
        Ok(ReadReceipt {
            last_read_seq,
            message_ids: ids,
            read_at: at,
        })
    }

    /// A message of a 1:1 room reached one of `who`'s devices.
    pub async fn delivered(&self, who: Uuid, room_id: &str, seq: i64) -> DomainResult<()> {
        if self.receipts.mark_delivered(room_id, who, seq).await? {
            self.hub
                .publish(RoomEvent::ephemeral(
                    room_id,
                    EventPayload::Delivered { user_id: who, seq },
                    None,
                ))
                .await;
        }
        Ok(())
    }

    /// Tells the room's other members that `who` is typing; never stored.
    pub async fn typing(&self, who: &Principal, room_id: &str, entry: Entry) -> DomainResult<()> {
        self.rooms.member_kind(who, room_id, entry).await?;
        let at = self.clock.now();
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Typing {
                    user_id: who.user_id,
                    at,
                    until: at + Duration::milliseconds(TYPING_TTL_MS),
                },
                Some(who.user_id),
            ))
            .await;
        Ok(())
    }
}
