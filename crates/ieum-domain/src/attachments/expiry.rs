//! The deletion jobs: attachments whose expiry came, and uploads no message
//! took within the policy's unattached lifetime.
//!
//! Objects are deleted first and the state is written after: a failure in
//! between leaves the attachment due, and the next round (on any node, after
//! any restart) deletes again, which the store allows. Marking first would
//! lose the objects of a failed deletion for good.

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

    /// Deletes up to [`JOB_BATCH`] uploads that no message referenced within
    /// the unattached lifetime (abandoned, refused or never completed) and
    /// marks them `Deleted`. Answers how many.
    pub async fn delete_unattached(&self, now: DateTime<Utc>) -> DomainResult<usize> {
        let cutoff = now - self.policy.unattached_lifetime;
        let abandoned = self
            .attachments
            .unattached_before(cutoff, JOB_BATCH)
            .await?;
        let mut deleted = 0;
        for mut attachment in abandoned {
            let from = attachment.state;
            self.delete_objects(&attachment).await?;
            attachment.delete()?;
            if self.attachments.set_state(&attachment, from).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
