//! Substring search.

use crate::error::DomainResult;

use crate::error::DomainError;
use crate::message::{Message, SearchQuery};

use super::ChatService;

impl ChatService {
    /// Substring search in what the caller may read.
    pub async fn search(&self, mut q: SearchQuery) -> DomainResult<Vec<Message>> {
        crate::text::refuse_nul(&q.text)?;
        let text = q.text.trim().to_owned();
        let n = text.chars().count();
        if n == 0 || n > crate::message::SEARCH_MAX_CHARS {
            return Err(DomainError::invalid(
                "invalid_query",
                format!(
                    "q must be 1 to {} characters",
                    crate::message::SEARCH_MAX_CHARS
                ),
            ));
        }
        q.text = text;
        q.limit = self.policy.page(Some(q.limit).filter(|l| *l > 0));
        q.now = self.clock.now();
        self.messages.search(q).await
    }
}
