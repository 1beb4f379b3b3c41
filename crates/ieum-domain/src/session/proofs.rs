//! Proofs of receipt for pushes: which messages a connection was proven to
//! have received (its client answered a mark sent after them), so the
//! devices behind it are not pushed what they already show.

use tokio::time::Instant;
use uuid::Uuid;

use super::{PROOF_RECHECK, Session};
use crate::error::DomainResult;
use crate::message::Message;

impl Session {
    pub(super) async fn note_written(&mut self, message: &Message, me: Option<Uuid>) {
        let Some(me) = me.filter(|me| *me != message.sender_id) else {
            return;
        };
        if self.wants_proofs(me).await {
            self.proofs.written(&message.room_id, message.seq);
        }
    }

    /// Proofs cost a write each: a user with no device to push is spared
    /// them. Asked again every [`PROOF_RECHECK`], so a device registered
    /// while this connection is open counts from then on.
    async fn wants_proofs(&mut self, me: Uuid) -> bool {
        let Some(push) = self.services.push.clone() else {
            return false;
        };
        let now = Instant::now();
        match self.proofs_wanted {
            Some((wanted, at)) if now.duration_since(at) < PROOF_RECHECK => wanted,
            _ => {
                let wanted = push.wants_proofs(me).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "looking up push devices failed");
                    true
                });
                self.proofs_wanted = Some((wanted, now));
                wanted
            }
        }
    }

    /// Names the registered device this connection runs on: what it is
    /// proven to receive spares that device's pushes only (a connection
    /// that names none spares all of its user's devices).
    pub async fn use_device(&mut self, device_id: Uuid) -> DomainResult<()> {
        let who = self.principal()?;
        let Some(push) = &self.services.push else {
            return Ok(());
        };
        push.own_device(&who, device_id).await?;
        self.device = Some(device_id);
        Ok(())
    }

    /// After writing deliveries: a mark for the transport to send in
    /// something the client must answer once it read them (a WebSocket
    /// ping), when messages wait for proof and no mark is out.
    pub fn proof_request(&mut self) -> Option<u64> {
        self.proofs.request(Instant::now())
    }

    /// The proof mark out, for a keepalive ping to carry too (a client may
    /// answer only the latest ping).
    pub fn proof_outstanding(&self) -> Option<u64> {
        self.proofs.outstanding()
    }

    /// The client answered `mark`: what was written before it was received.
    pub async fn proven(&mut self, mark: u64) {
        let (Some(push), Some(user)) = (self.services.push.clone(), self.user.as_ref()) else {
            return;
        };
        for (room_id, seq) in self.proofs.answered(mark) {
            if let Err(e) = push.delivered(user.id, self.device, &room_id, seq).await {
                tracing::warn!(room = %room_id, error = %e, "recording a proof of receipt failed");
            }
        }
    }
}
