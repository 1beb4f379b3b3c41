//! Room settings, member roles and favorites.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::hub::{EventPayload, RoomEvent};
use crate::room::{
    Role, Room, RoomSettings, check_url, normalize_description, normalize_room_name,
};

use super::RoomService;

impl RoomService {
    /// Admins change the room's name, description, image and settings.
    pub async fn update_settings(
        &self,
        who: &Principal,
        id: &str,
        mut settings: RoomSettings,
    ) -> DomainResult<Room> {
        self.require_role(who, id, Role::Admin).await?;
        if let Some(name) = &settings.name {
            settings.name = Some(normalize_room_name(name)?);
        }
        if let Some(d) = &settings.description {
            settings.description = Some(normalize_description(d.as_deref())?);
        }
        if let Some(u) = &settings.image_url {
            settings.image_url = Some(check_url("invalid_image_url", u.as_deref())?);
        }
        let renamed = settings.name.clone();
        self.rooms.update_settings(id, settings).await?;
        let room = self.room(id).await?;
        if let Some(name) = renamed {
            self.system_message(&room, who.user_id, |n| {
                format!("{n} renamed the room to {name}")
            })
            .await;
        }
        self.hub
            .publish(RoomEvent::ephemeral(
                id,
                EventPayload::RoomUpdated(Box::new(room.clone())),
                None,
            ))
            .await;
        Ok(room)
    }

    /// The owner makes a member admin or member (and may hand over ownership).
    pub async fn set_role(
        &self,
        who: &Principal,
        id: &str,
        target: Uuid,
        role: Role,
    ) -> DomainResult<()> {
        self.require_role(who, id, Role::Owner).await?;
        if target == who.user_id {
            return Err(DomainError::invalid(
                "own_role",
                "you cannot change your own role",
            ));
        }
        self.require_member(target, id)
            .await
            .map_err(|_| DomainError::not_found("member_not_found", "no such member"))?;
        self.rooms.set_role(id, target, role).await?;
        if role == Role::Owner {
            self.rooms.set_role(id, who.user_id, Role::Admin).await?;
        }
        Ok(())
    }

    pub async fn set_favorite(
        &self,
        who: &Principal,
        id: &str,
        favorite: bool,
    ) -> DomainResult<()> {
        self.require_member(who.user_id, id).await?;
        self.rooms.set_favorite(id, who.user_id, favorite).await?;
        Ok(())
    }
}
