//! The scan job: attachments waiting in `Scanning` go to the virus scanner,
//! oldest first, off every send path.
//!
//! Only a clean verdict makes an attachment clean. A scanner that is down or
//! busy (`Unavailable`, or any error but a refusal) leaves everything
//! `Scanning` and ends the round, so a dead clamd is asked once per round,
//! not once per file; the next round retries. A file the scanner refuses
//! (`Invalid`: larger than it accepts) can never be scanned: `Failed`.

use crate::attachment::{Attachment, AttachmentState};
use crate::error::{DomainError, DomainResult, ErrorKind};
use crate::ports::{Fetched, ScanVerdict, VirusScanner};

use super::AttachmentService;

/// What one round of [`AttachmentService::scan_pending`] did.
#[derive(Debug, Default)]
pub struct ScanRound {
    /// Attachments that left `Scanning` now (clean, infected or failed):
    /// the caller tells their rooms (a message showing `scan: pending`
    /// changes).
    pub finished: Vec<Attachment>,
    /// Why the round ended early (scanner or store unavailable); the rest
    /// wait in `Scanning` for a later round.
    pub stopped_by: Option<DomainError>,
}

/// How scanning one attachment ended: `Some` when it left `Scanning` now,
/// `None` when another node moved it first.
type Step = Option<Attachment>;

impl AttachmentService {
    /// Scans up to `limit` waiting attachments. Without a scanner they become
    /// clean with `scan: skipped` (left over from when one was configured).
    pub async fn scan_pending(&self, limit: u32) -> DomainResult<ScanRound> {
        let waiting = self.attachments.awaiting_scan(limit).await?;
        let mut round = ScanRound::default();
        for attachment in waiting {
            match self.scan_one(attachment).await {
                Ok(Some(attachment)) => round.finished.push(attachment),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "attachment scan round stopped");
                    round.stopped_by = Some(error);
                    break;
                }
            }
        }
        Ok(round)
    }

    async fn scan_one(&self, mut attachment: Attachment) -> DomainResult<Step> {
        let Some(scanner) = &self.scanner else {
            attachment.scan_skipped()?;
            return self.store_scanned(attachment).await;
        };
        match self
            .store
            .get(&attachment.served_key(), attachment.size)
            .await?
        {
            Fetched::Bytes(bytes) => self.scan_bytes(scanner.as_ref(), attachment, &bytes).await,
            // Verified bytes that vanished or grew: nothing trustworthy to scan.
            Fetched::Missing | Fetched::TooLarge { .. } => {
                tracing::warn!(attachment = %attachment.id, "scanned object missing or changed");
                self.fail_scan(attachment).await
            }
        }
    }

    async fn scan_bytes(
        &self,
        scanner: &dyn VirusScanner,
        mut attachment: Attachment,
        bytes: &[u8],
    ) -> DomainResult<Step> {
        match scanner.scan(bytes).await {
            Ok(ScanVerdict::Clean) => {
                attachment.scanned(ScanVerdict::Clean)?;
                self.store_scanned(attachment).await
            }
            Ok(infected @ ScanVerdict::Infected { .. }) => {
                attachment.scanned(infected)?;
                let step = self.store_scanned(attachment).await?;
                if let Some(infected) = &step {
                    tracing::info!(attachment = %infected.id, room = %infected.room_id, "infected attachment found");
                    self.delete_objects_or_log(infected).await;
                }
                Ok(step)
            }
            Err(refused) if refused.kind() == ErrorKind::Invalid => {
                tracing::warn!(attachment = %attachment.id, error = %refused, "the scanner refused an attachment");
                self.fail_scan(attachment).await
            }
            Err(trouble) => Err(trouble),
        }
    }

    async fn fail_scan(&self, mut attachment: Attachment) -> DomainResult<Step> {
        attachment.refused()?;
        let step = self.store_scanned(attachment).await?;
        if let Some(failed) = &step {
            self.delete_objects_or_log(failed).await;
        }
        Ok(step)
    }

    async fn store_scanned(&self, attachment: Attachment) -> DomainResult<Step> {
        if self
            .attachments
            .set_state(&attachment, AttachmentState::Scanning)
            .await?
        {
            Ok(Some(attachment))
        } else {
            Ok(None)
        }
    }
}
