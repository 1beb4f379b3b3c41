//! The deletion jobs: attachments whose expiry came, and uploads no message
//! took within the policy's unattached lifetime.
//!
//! Expiry deletes the objects first and writes the state after: a failure in
//! between leaves the attachment due, and the next round (on any node, after
//! any restart) deletes again, which the store allows. The sweep of unused
//! uploads claims the row first instead (only while nothing took it), so a
//! send taking the upload at that moment keeps it; its failed object
//! deletions are logged and the objects stay, never served.

use chrono::{DateTime, Utc};

use crate::attachment::Attachment;
use crate::error::DomainResult;

use super::{AttachmentService, JOB_BATCH};

impl AttachmentService {
    /// Deletes the bytes of up to [`JOB_BATCH`] attachments whose expiry is
    /// at or before `now` and marks them `Expired`. Answers those it expired:
    /// the caller tells their rooms (messages show "expired"). A storage
    /// failure ends the round with the error; what was done stays done.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> DomainResult<Vec<Attachment>> {
        let due = self.attachments.due_expired(now, JOB_BATCH).await?;
        let mut expired = Vec::with_capacity(due.len());
        for mut attachment in due {
            let from = attachment.state;
            self.delete_objects(&attachment).await?;
            attachment.expire()?;
            if self.attachments.set_state(&attachment, from).await? {
                expired.push(attachment);
            }
        }
        Ok(expired)
    }

    /// Deletes up to [`JOB_BATCH`] uploads that nothing took within the
    /// unattached lifetime (abandoned, refused or never completed). Each is
    /// claimed first (`Deleted`, only while still untaken), so a send taking
    /// it at the same moment keeps it; then its objects go (a failure is
    /// logged: they stay, never served). Answers how many.
    pub async fn delete_unattached(&self, now: DateTime<Utc>) -> DomainResult<usize> {
        let cutoff = now - self.policy.unattached_lifetime;
        let abandoned = self
            .attachments
            .unattached_before(cutoff, JOB_BATCH)
            .await?;
        let mut deleted = 0;
        for attachment in abandoned {
            if self
                .attachments
                .delete_unused(attachment.id, attachment.state)
                .await?
            {
                self.delete_objects_or_log(&attachment).await;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
