//! Making rooms: group rooms, and the one direct room of two users.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::hub::{EventPayload, LOBBY_FEED, RoomEvent, user_feed};
use crate::room::{
    HistoryVisibility, NewRoom, Role, Room, RoomKind, Visibility, check_client_room_id, check_url,
    direct_room_id, normalize_description, normalize_room_name,
};

use super::{CreateRoom, RoomService, not_found};

impl RoomService {
    fn member_limit(&self, requested: Option<u32>) -> DomainResult<u32> {
        let limit = requested.unwrap_or(self.policy.default_member_limit);
        if !(2..=self.policy.max_member_limit).contains(&limit) {
            return Err(DomainError::invalid(
                "invalid_member_limit",
                format!("member limit must be 2 to {}", self.policy.max_member_limit),
            ));
        }
        Ok(limit)
    }

    pub async fn create_group(&self, who: &Principal, req: CreateRoom) -> DomainResult<Room> {
        let id = match req.id {
            Some(id) => {
                check_client_room_id(&id)?;
                id
            }
            None => Uuid::now_v7().to_string(),
        };
        self.limiter
            .reserve(
                &self.limiter.limits().room_create_user,
                &who.user_id.to_string(),
            )
            .await?;
        let password_hash = match req.password.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if p.len() > crate::user::PASSWORD_MAX_BYTES => {
                return Err(DomainError::invalid(
                    "invalid_password",
                    "room password is too long",
                ));
            }
            Some(p) => Some(self.hasher.hash(p.to_owned()).await?),
            None => None,
        };
        let room = self
            .rooms
            .create(NewRoom {
                id,
                kind: RoomKind::Group,
                name: normalize_room_name(&req.name)?,
                description: normalize_description(req.description.as_deref())?,
                image_url: check_url("invalid_image_url", req.image_url.as_deref())?,
                visibility: req.visibility.unwrap_or(Visibility::Public),
                password_hash,
                member_limit: self.member_limit(req.member_limit)?,
                history_visibility: HistoryVisibility::All,
                pin_policy: crate::room::PinPolicy::Members,
                created_by: who.user_id,
                creator_role: Role::Owner,
                created_at: self.clock.now(),
            })
            .await?;
        tracing::info!(room = %room.id, by = %who.user_id, "room created");
        let feed = match room.visibility {
            Visibility::Public => LOBBY_FEED.to_owned(),
            Visibility::Private => user_feed(who.user_id),
        };
        self.hub
            .publish(RoomEvent::ephemeral(
                feed,
                EventPayload::RoomCreated(Box::new(room.clone())),
                None,
            ))
            .await;
        Ok(room)
    }

    /// The one direct room of the caller and `peer`, made on first use.
    pub async fn open_direct(&self, who: &Principal, peer: Uuid) -> DomainResult<Room> {
        if peer == who.user_id {
            return Err(DomainError::invalid(
                "invalid_peer",
                "a direct room needs another user",
            ));
        }
        if self.social.blocked_between(who.user_id, peer).await? {
            return Err(crate::error::named::blocked());
        }
        let peer_user = self
            .users
            .find_by_id(peer)
            .await?
            .ok_or_else(crate::error::named::user_not_found)?;
        let id = direct_room_id(who.user_id, peer);
        if let Some(room) = self.rooms.find(&id).await? {
            // Someone who left comes back.
            self.rooms
                .add_member(&id, who.user_id, Role::Member, self.clock.now())
                .await?;
            return Ok(room);
        }
        let created = self
            .rooms
            .create(NewRoom::direct(
                id.clone(),
                format!("{} & {}", who.username, peer_user.username),
                who.user_id,
                self.clock.now(),
            ))
            .await;
        let room = match created {
            Ok(room) => room,
            // Both opened it at once: the other call made it.
            Err(DomainError::Conflict { .. }) => {
                self.rooms.find(&id).await?.ok_or_else(not_found)?
            }
            Err(e) => return Err(e),
        };
        self.rooms
            .add_member(&id, peer, Role::Member, self.clock.now())
            .await?;
        Ok(room)
    }
}
