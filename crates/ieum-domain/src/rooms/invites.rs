//! Invite codes: made, read and revoked by admins.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::room::{Role, RoomKind};

use super::RoomService;

pub(crate) fn invite_code() -> String {
    // 12 characters from 122 random bits: unguessable, easy to type.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bits = Uuid::new_v4().as_u128();
    (0..12)
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

impl RoomService {
    /// Makes (or replaces) the room's invite code. Admins and the owner only.
    pub async fn rotate_invite_code(&self, who: &Principal, id: &str) -> DomainResult<String> {
        self.require_role(who, id, Role::Admin).await?;
        let room = self.room(id).await?;
        if room.kind == RoomKind::Direct {
            return Err(DomainError::forbidden(
                "direct_room",
                "direct rooms have no invite code",
            ));
        }
        let code = invite_code();
        self.rooms.set_invite_code(id, Some(code.clone())).await?;
        Ok(code)
    }

    /// The current invite code (admins and the owner only).
    pub async fn invite_code(&self, who: &Principal, id: &str) -> DomainResult<Option<String>> {
        self.require_role(who, id, Role::Admin).await?;
        Ok(self.room(id).await?.invite_code)
    }

    pub async fn revoke_invite_code(&self, who: &Principal, id: &str) -> DomainResult<()> {
        self.require_role(who, id, Role::Admin).await?;
        self.rooms.set_invite_code(id, None).await
    }
}
