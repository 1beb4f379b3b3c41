//! Couples (contract B): two users pair up through an invite code and own
//! exactly one 1:1 room whose id is the couple id.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{DomainError, DomainResult};
use crate::ports::{Clock, Couple, CoupleInvite, CoupleRepository, UserRepository};
use crate::room::NewRoom;
use crate::throttle::Limiter;
use crate::user::User;

pub struct CoupleService {
    couples: Arc<dyn CoupleRepository>,
    users: Arc<dyn UserRepository>,
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
        clock: Arc<dyn Clock>,
        invite_ttl: Duration,
    ) -> Self {
        Self {
            couples,
            users,
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

    fn already_paired() -> DomainError {
        DomainError::conflict("already_paired", "already in a couple")
    }

    /// A fresh invite code for the caller's partner to redeem.
    pub async fn invite(&self, who: &Principal) -> DomainResult<(String, DateTime<Utc>)> {
        if self.couples.couple_of(who.user_id).await?.is_some() {
            return Err(Self::already_paired());
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
            return Err(Self::already_paired());
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
    use crate::ports::{MockClock, MockCoupleRepository, MockUserRepository};

    fn who(n: u128) -> Principal {
        Principal {
            user_id: Uuid::from_u128(n),
            username: format!("u{n}"),
        }
    }

    fn service(couples: MockCoupleRepository) -> CoupleService {
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
            }))
        });
        CoupleService::new(
            Arc::new(couples),
            Arc::new(users),
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
}
