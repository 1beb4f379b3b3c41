//! The attachment's life cycle and the only ways to move through it.
//!
//! ```text
//!  Pending --verified--> Scanning --scanned--> Clean | Infected
//!     |                     |   \--no scanner--> Clean (scan: Skipped)
//!     |                     |
//!     +--refused------------+--> Failed
//!  every state but Expired and Deleted --> Expired (its time came) | Deleted (never attached)
//! ```
//!
//! Without a scanner, `complete` goes Pending -> Scanning -> Clean in memory
//! and stores Clean in one write; the table has no Pending -> Clean move.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, DomainResult};
use crate::ports::ScanVerdict;

use super::{Attachment, ContentType, ScanOutcome};

/// Where an attachment is in its life. Only [`Self::Clean`] is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachmentState {
    /// Created, upload URL handed out; the bytes are not confirmed yet.
    Pending,
    /// The bytes were checked (size, type, hash); the virus scan is to come.
    Scanning,
    /// Scanned clean, or no scanner is configured ([`ScanOutcome::Skipped`]).
    Clean,
    /// The scanner matched a signature. Its bytes are deleted at once.
    Infected,
    /// Refused after upload (size, type, unreadable image, or too large for
    /// the scanner). Its bytes are deleted at once.
    Failed,
    /// Its expiry came: the bytes are gone, messages show "expired".
    Expired,
    /// Removed: an upload never attached to a message, or deleted.
    Deleted,
}

impl AttachmentState {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Scanning,
        Self::Clean,
        Self::Infected,
        Self::Failed,
        Self::Expired,
        Self::Deleted,
    ];

    /// Whether the life cycle allows going from `self` to `next` directly.
    /// Staying put is not a move.
    pub fn may_become(self, next: Self) -> bool {
        use AttachmentState::*;
        match (self, next) {
            (Pending, Scanning) | (Scanning, Clean | Infected) | (Pending | Scanning, Failed) => {
                true
            }
            (Expired | Deleted, _) => false,
            (_, Expired | Deleted) => true,
            _ => false,
        }
    }

    /// Expired and Deleted: nothing leaves them.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Expired | Self::Deleted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scanning => "scanning",
            Self::Clean => "clean",
            Self::Infected => "infected",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// What checking the uploaded bytes found (`complete`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUpload {
    /// Bytes stored: the upload, or for images the served copy without metadata.
    pub size: u64,
    pub detected_type: ContentType,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// For images, as displayed (after the orientation is applied).
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl Attachment {
    fn move_to(&mut self, next: AttachmentState) -> DomainResult<()> {
        if !self.state.may_become(next) {
            return Err(DomainError::conflict(
                "attachment_state",
                format!(
                    "an attachment cannot go from {} to {}",
                    self.state.as_str(),
                    next.as_str()
                ),
            ));
        }
        self.state = next;
        Ok(())
    }

    /// Pending -> Scanning, with what the check of the bytes found.
    pub fn verified(&mut self, upload: VerifiedUpload) -> DomainResult<()> {
        self.move_to(AttachmentState::Scanning)?;
        self.size = upload.size;
        self.detected_type = Some(upload.detected_type);
        self.sha256 = Some(upload.sha256);
        self.width = upload.width;
        self.height = upload.height;
        Ok(())
    }

    /// Scanning -> Clean or Infected, as the scanner said.
    pub fn scanned(&mut self, verdict: ScanVerdict) -> DomainResult<()> {
        match verdict {
            ScanVerdict::Clean => {
                self.move_to(AttachmentState::Clean)?;
                self.scan = ScanOutcome::Clean;
            }
            ScanVerdict::Infected { signature } => {
                self.move_to(AttachmentState::Infected)?;
                self.scan = ScanOutcome::Infected { signature };
            }
        }
        Ok(())
    }

    /// Scanning -> Clean without a scan: no scanner is configured.
    pub fn scan_skipped(&mut self) -> DomainResult<()> {
        self.move_to(AttachmentState::Clean)?;
        self.scan = ScanOutcome::Skipped;
        Ok(())
    }

    /// Pending or Scanning -> Failed: the bytes were refused.
    pub fn refused(&mut self) -> DomainResult<()> {
        self.move_to(AttachmentState::Failed)
    }

    /// -> Expired. The scan outcome stays (what was found is still true).
    pub fn expire(&mut self) -> DomainResult<()> {
        self.move_to(AttachmentState::Expired)
    }

    /// -> Deleted.
    pub fn delete(&mut self) -> DomainResult<()> {
        self.move_to(AttachmentState::Deleted)
    }

    /// Whether its bytes may be served now: clean and not past its expiry
    /// (the expiry job may not have run yet; the URL is refused on time).
    pub fn is_downloadable(&self, now: DateTime<Utc>) -> bool {
        self.state == AttachmentState::Clean && !self.is_past_expiry(now)
    }

    pub fn is_past_expiry(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::AttachmentState::*;
    use super::*;
    use crate::attachment::tests::pending;

    /// The whole table, written out: every pair not listed is illegal.
    const LEGAL: &[(AttachmentState, AttachmentState)] = &[
        (Pending, Scanning),
        (Pending, Failed),
        (Pending, Expired),
        (Pending, Deleted),
        (Scanning, Clean),
        (Scanning, Infected),
        (Scanning, Failed),
        (Scanning, Expired),
        (Scanning, Deleted),
        (Clean, Expired),
        (Clean, Deleted),
        (Infected, Expired),
        (Infected, Deleted),
        (Failed, Expired),
        (Failed, Deleted),
    ];

    #[test]
    fn every_move_is_legal_exactly_when_the_table_lists_it() {
        for from in AttachmentState::ALL {
            for to in AttachmentState::ALL {
                assert_eq!(
                    from.may_become(to),
                    LEGAL.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn illegal_moves_are_refused_and_change_nothing() {
        for from in AttachmentState::ALL {
            for to in AttachmentState::ALL {
                if LEGAL.contains(&(from, to)) {
                    continue;
                }
                let mut attachment = Attachment {
                    state: from,
                    ..pending()
                };
                let err = attachment.move_to(to).unwrap_err();
                assert_eq!(err.code(), "attachment_state");
                assert_eq!(attachment.state, from);
            }
        }
    }

    #[test]
    fn nothing_leaves_expired_or_deleted() {
        for state in AttachmentState::ALL {
            assert_eq!(
                state.is_final(),
                AttachmentState::ALL.iter().all(|to| !state.may_become(*to))
            );
        }
    }

    #[test]
    fn a_verified_upload_is_scanning_with_its_facts() {
        let mut attachment = pending();
        attachment.verified(verified()).unwrap();
        assert_eq!(attachment.state, Scanning);
        assert_eq!(attachment.detected_type, Some(ContentType::Png));
        assert_eq!(attachment.sha256.as_deref(), Some("ab"));
        assert_eq!((attachment.width, attachment.height), (Some(3), Some(2)));
        assert_eq!(attachment.scan, ScanOutcome::NotScanned);
    }

    #[test]
    fn the_verdict_decides_clean_or_infected_and_is_kept() {
        let mut attachment = scanning();
        attachment.scanned(ScanVerdict::Clean).unwrap();
        assert_eq!(
            (attachment.state, &attachment.scan),
            (Clean, &ScanOutcome::Clean)
        );

        let mut attachment = scanning();
        let signature = "Eicar-Test-Signature".to_owned();
        attachment
            .scanned(ScanVerdict::Infected {
                signature: signature.clone(),
            })
            .unwrap();
        assert_eq!(attachment.state, Infected);
        assert_eq!(attachment.scan, ScanOutcome::Infected { signature });
    }

    #[test]
    fn a_skipped_scan_is_clean_and_says_so() {
        let mut attachment = scanning();
        attachment.scan_skipped().unwrap();
        assert_eq!(attachment.state, Clean);
        assert_eq!(attachment.scan, ScanOutcome::Skipped);
    }

    #[test]
    fn a_pending_upload_cannot_be_scanned_before_it_is_verified() {
        let mut attachment = pending();
        assert!(attachment.scanned(ScanVerdict::Clean).is_err());
        assert!(attachment.scan_skipped().is_err());
        assert_eq!(attachment.scan, ScanOutcome::NotScanned);
    }

    #[test]
    fn an_infected_file_never_becomes_clean() {
        let mut attachment = scanning();
        attachment
            .scanned(ScanVerdict::Infected {
                signature: "x".into(),
            })
            .unwrap();
        assert!(attachment.scanned(ScanVerdict::Clean).is_err());
        assert!(attachment.scan_skipped().is_err());
        assert!(!attachment.is_downloadable(attachment.created_at));
    }

    #[test]
    fn expiry_keeps_the_scan_outcome() {
        let mut attachment = scanning();
        attachment.scanned(ScanVerdict::Clean).unwrap();
        attachment.expire().unwrap();
        assert_eq!(
            (attachment.state, &attachment.scan),
            (Expired, &ScanOutcome::Clean)
        );
    }

    #[test]
    fn only_clean_attachments_before_their_expiry_are_downloadable() {
        let mut attachment = scanning();
        attachment.scan_skipped().unwrap();
        let expiry = attachment.created_at + chrono::Duration::hours(1);
        attachment.expires_at = Some(expiry);
        assert!(attachment.is_downloadable(expiry - chrono::Duration::seconds(1)));
        assert!(!attachment.is_downloadable(expiry));
        for state in AttachmentState::ALL.into_iter().filter(|s| *s != Clean) {
            let other = Attachment {
                state,
                expires_at: None,
                ..attachment.clone()
            };
            assert!(!other.is_downloadable(other.created_at), "{state:?}");
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in AttachmentState::ALL {
            assert_eq!(AttachmentState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AttachmentState::parse("clean "), None);
    }

    fn verified() -> VerifiedUpload {
        VerifiedUpload {
            size: 10,
            detected_type: ContentType::Png,
            sha256: "ab".into(),
            width: Some(3),
            height: Some(2),
        }
    }

    fn scanning() -> Attachment {
        let mut attachment = pending();
        attachment.verified(verified()).unwrap();
        attachment
    }
}
