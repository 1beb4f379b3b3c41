//! Couples (contract B): two users pair up through an invite code and own
//! exactly one 1:1 room whose id is the couple id.
//!
//! Either partner may end the couple ([`CoupleService::unpair`]): both leave
//! the room, which keeps its history, readable by both and writable by
//! neither. Each may then pair again, with anyone, the same person included;
//! a new couple has a new id and a new room.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::named::not_paired;
use crate::error::{DomainError, DomainResult};
use crate::ports::{Clock, Couple, CoupleInvite, CoupleRepository, UserRepository};
use crate::room::NewRoom;
use crate::rooms::RoomService;
use crate::throttle::Limiter;
use crate::user::User;

pub struct CoupleService {
    couples: Arc<dyn CoupleRepository>,
    users: Arc<dyn UserRepository>,
    rooms: Arc<RoomService>,
    clock: Arc<dyn Clock>,
    invite_ttl: Duration,
    limiter: Arc<Limiter>,
}

fn code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bits = Uuid::new_v4().as_u128();
    (0..8)
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

impl CoupleService {
    pub fn new(
        couples: Arc<dyn CoupleRepository>,
        users: Arc<dyn UserRepository>,
        rooms: Arc<RoomService>,
        clock: Arc<dyn Clock>,
        invite_ttl: Duration,
    ) -> Self {
        Self {
            couples,
            users,
            rooms,
            clock,
            invite_ttl,
            limiter: Arc::new(Limiter::in_memory()),
        }
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// A fresh invite code for the caller's partner to redeem.
    pub async fn invite(&self, who: &Principal) -> DomainResult<(String, DateTime<Utc>)> {
        if self.couples.couple_of(who.user_id).await?.is_some() {
            return Err(crate::error::named::already_paired());
        }
        let invite = CoupleInvite {
            code: code(),
            inviter_id: who.user_id,
            expires_at: self.clock.now() + self.invite_ttl,
        };
        self.couples.save_invite(invite.clone()).await?;
        Ok((invite.code, invite.expires_at))
    }

    /// Redeems a code: the couple and its room are made. Returns the couple and
    /// the partner. Codes have 40 bits, so tries are limited per user and per
    /// client address (`client`); a redeemed code gives its tries back.
    pub async fn join(
        &self,
        who: &Principal,
        code: &str,
        client: &str,
    ) -> DomainResult<(Couple, Uuid)> {
        let limits = *self.limiter.limits();
        let user = who.user_id.to_string();
        self.limiter
            .reserve(&limits.couple_code_user, &user)
            .await?;
        self.limiter
            .reserve(&limits.couple_code_client, client)
            .await?;
        let joined = self.redeem(who, code).await;
        if joined.is_ok() {
            self.limiter.release(&limits.couple_code_user, &user).await;
            self.limiter
                .release(&limits.couple_code_client, client)
                .await;
        }
        joined
    }

    async fn redeem(&self, who: &Principal, code: &str) -> DomainResult<(Couple, Uuid)> {
        crate::text::refuse_nul(code)?;
        let bad = || crate::error::named::invalid_invite_code("the code is unknown or expired");
        let invite = self
            .couples
            .take_invite(code.trim())
            .await?
            .ok_or_else(bad)?;
        if invite.expires_at <= self.clock.now() {
            return Err(bad());
        }
        if invite.inviter_id == who.user_id {
            return Err(DomainError::invalid(
                "own_invite",
                "you cannot redeem your own code",
            ));
        }
        if self.couples.couple_of(who.user_id).await?.is_some()
            || self.couples.couple_of(invite.inviter_id).await?.is_some()
        {
            return Err(crate::error::named::already_paired());
        }
        let inviter = self
            .users
            .find_by_id(invite.inviter_id)
            .await?
            .ok_or_else(bad)?;
        let couple_id = Uuid::now_v7();
        let now = self.clock.now();
        let couple = self
            .couples
            .create(
                Couple {
                    id: couple_id,
                    user_a: invite.inviter_id,
                    user_b: who.user_id,
                    created_at: now,
                },
                NewRoom::direct(
                    couple_id.to_string(),
                    format!("{} ♥ {}", inviter.username, who.username),
                    invite.inviter_id,
                    now,
                ),
            )
            .await?;
        Ok((couple, invite.inviter_id))
    }

    /// Ends the caller's couple, for both partners.
    pub async fn unpair(&self, who: &Principal) -> DomainResult<()> {
        let couple = self
            .couples
            .couple_of(who.user_id)
            .await?
            .ok_or_else(not_paired)?;
        let partner = if couple.user_a == who.user_id {
            couple.user_b
        } else {
            couple.user_a
        };
        // The room first, then the couple: a failure part-way leaves the
        // couple in place, so unpairing again finishes the job. Both steps
        // are idempotent; two partners unpairing at once both succeed.
        self.rooms
            .end_couple(&couple.id.to_string(), who.user_id, partner)
            .await?;
        self.couples.dissolve(couple.id).await?;
        Ok(())
    }

    /// The caller's couple and partner, if paired.
    pub async fn mine(&self, who: &Principal) -> DomainResult<Option<(Couple, User)>> {
        let Some(c) = self.couples.couple_of(who.user_id).await? else {
            return Ok(None);
        };
        let partner_id = if c.user_a == who.user_id {
            c.user_b
        } else {
            c.user_a
        };
        let partner = self
            .users
            .find_by_id(partner_id)
            .await?
            .ok_or_else(|| DomainError::Internal("partner missing".into()))?;
        Ok(Some((c, partner)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::ports::{
        LocalBus, MockClock, MockCoupleRepository, MockMessageRepository, MockPasswordHasher,
        MockRoomRepository, MockSocialRepository, MockUserRepository,
    };
    use crate::rooms::{RoomPolicy, RoomPorts};
    use std::sync::Mutex;

    /// The room side of a couple: records who was removed from which room.
    fn rooms(removed: Arc<Mutex<Vec<(String, Uuid)>>>) -> Arc<RoomService> {
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_remove_member()
            .returning(move |room, user, _| {
                removed.lock().unwrap().push((room.to_owned(), user));
                Ok(true)
            });
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let mut messages = MockMessageRepository::new();
        messages.expect_last_seq().returning(|_| Ok(0));
        let messages = Arc::new(messages);
        Arc::new(RoomService::new(
            RoomPorts {
                messages: messages.clone(),
                rooms: Arc::new(rooms),
                users: Arc::new(MockUserRepository::new()),
                social: Arc::new(MockSocialRepository::new()),
                couples: Arc::new(MockCoupleRepository::new()),
                hasher: Arc::new(MockPasswordHasher::new()),
                hub: Hub::new(messages, Arc::new(LocalBus)),
                clock: Arc::new(clock),
            },
            RoomPolicy::default(),
        ))
    }

    fn who(n: u128) -> Principal {
        Principal {
            user_id: Uuid::from_u128(n),
            username: format!("u{n}"),
        }
    }

    fn service(couples: MockCoupleRepository) -> CoupleService {
        service_with_rooms(couples, rooms(Default::default()))
    }

    fn service_with_rooms(couples: MockCoupleRepository, rooms: Arc<RoomService>) -> CoupleService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let mut users = MockUserRepository::new();
        users.expect_find_by_id().returning(|id| {
            Ok(Some(User {
                id,
                username: "inviter".into(),
                display_name: "inviter".into(),
                profile_image_url: None,
                status_message: None,
                created_at: Utc::now(),
                discoverable: false,
            }))
        });
        CoupleService::new(
            Arc::new(couples),
            Arc::new(users),
            rooms,
            Arc::new(clock),
            Duration::hours(24),
        )
    }

    #[tokio::test]
    async fn expired_own_and_paired_codes_are_refused() {
        let mut couples = MockCoupleRepository::new();
        couples.expect_take_invite().returning(|c| {
            Ok(Some(CoupleInvite {
                code: c.into(),
                inviter_id: Uuid::from_u128(1),
                expires_at: if c == "OLD" {
                    Utc::now() - Duration::minutes(1)
                } else {
                    Utc::now() + Duration::hours(1)
                },
            }))
        });
        couples.expect_couple_of().returning(|u| {
            Ok((u == Uuid::from_u128(3)).then(|| Couple {
                id: Uuid::nil(),
                user_a: u,
                user_b: Uuid::from_u128(4),
                created_at: Utc::now(),
            }))
        });
        couples.expect_create().never();
        let svc = service(couples);
        assert_eq!(
            svc.join(&who(2), "OLD", "c").await.unwrap_err().code(),
            "invalid_invite_code"
        );
        assert_eq!(
            svc.join(&who(1), "NEW", "c").await.unwrap_err().code(),
            "own_invite"
        );
        assert_eq!(
            svc.join(&who(3), "NEW", "c").await.unwrap_err().code(),
            "already_paired"
        );
    }

    /// Users 1 and 2, couple 99.
    fn paired() -> Couple {
        Couple {
            id: Uuid::from_u128(99),
            user_a: Uuid::from_u128(1),
            user_b: Uuid::from_u128(2),
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn unpairing_ends_the_couple_and_its_room_for_both() {
        let mut couples = MockCoupleRepository::new();
        couples.expect_couple_of().returning(|_| Ok(Some(paired())));
        couples
            .expect_dissolve()
            .withf(|id| *id == Uuid::from_u128(99))
            .times(1)
            .returning(|_| Ok(true));
        let removed = Arc::new(Mutex::new(Vec::new()));
        let svc = service_with_rooms(couples, rooms(removed.clone()));
        svc.unpair(&who(2)).await.unwrap();
        let room = Uuid::from_u128(99).to_string();
        assert_eq!(
            *removed.lock().unwrap(),
            vec![
                (room.clone(), Uuid::from_u128(2)),
                (room, Uuid::from_u128(1))
            ]
        );
    }

    #[tokio::test]
    async fn unpairing_without_a_couple_is_not_paired_and_touches_nothing() {
        let mut couples = MockCoupleRepository::new();
        couples.expect_couple_of().returning(|_| Ok(None));
        couples.expect_dissolve().never();
        let removed = Arc::new(Mutex::new(Vec::new()));
        let svc = service_with_rooms(couples, rooms(removed.clone()));
        assert_eq!(svc.unpair(&who(3)).await.unwrap_err().code(), "not_paired");
        assert!(removed.lock().unwrap().is_empty(), "no room was touched");
    }

    #[tokio::test]
    async fn an_unpairing_the_partner_finished_first_still_succeeds() {
        let mut couples = MockCoupleRepository::new();
        couples.expect_couple_of().returning(|_| Ok(Some(paired())));
        // The partner dissolved it between our lookup and our dissolve.
        couples.expect_dissolve().returning(|_| Ok(false));
        let removed = Arc::new(Mutex::new(Vec::new()));
        let svc = service_with_rooms(couples, rooms(removed.clone()));
        svc.unpair(&who(1)).await.unwrap();
        assert_eq!(removed.lock().unwrap().len(), 2);
    }
}
