//! History pages within what the caller may read.

use crate::auth::Principal;
use crate::error::DomainResult;

use crate::message::{HistoryPage, HistoryQuery, Message};
use crate::rooms::Entry;

use super::ChatService;

impl ChatService {
    /// A page of history, oldest first, within what the caller may read.
    pub async fn history(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        mut q: HistoryQuery,
    ) -> DomainResult<Vec<Message>> {
        let upto = self.rooms.readable_upto(who, room_id, entry).await?;
        q.limit = self.policy.page(Some(q.limit));
        if let Some(max) = upto {
            q.before = Some(q.before.map_or(max + 1, |b| b.min(max + 1)));
        }
        let mut page = self.messages.page(room_id, q).await?;
        self.attach_reactions(&mut page).await?;
        Ok(page)
    }

    /// A page of history and whether there is more: a full page may have more
    /// behind it. `limit` 0 (or none) is the default page, as in [`Self::history`].
    pub async fn history_page(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        q: HistoryQuery,
    ) -> DomainResult<HistoryPage> {
        let limit = self.policy.page(Some(q.limit));
        let messages = self.history(who, room_id, entry, q).await?;
        let has_more = messages.len() as u32 >= limit;
        Ok(HistoryPage { messages, has_more })
    }
}
