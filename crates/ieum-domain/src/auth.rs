//! Accounts and sessions: signup, login, refresh with rotation, logout.
//!
//! Refresh tokens form families: login starts one, every refresh rotates within
//! it. Presenting a token that was already rotated means it was copied, so the
//! whole family is revoked (theft detection). Logout revokes the family too.
//! Access tokens name their family, and a revocation is announced on the
//! user's feed, so open connections of that family end within moments
//! (`crate::session`) instead of outliving the logout.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
use crate::hub::{EventPayload, Hub, RoomEvent, user_feed};
use crate::ports::{
    AccessClaims, Clock, PasswordHasher, RefreshClaims, RefreshTokenRecord, RefreshTokenRepository,
    TokenCodec, UserRepository,
};
use crate::throttle::Limiter;
use crate::user::{NewUser, User, check_password, normalize_display_name, normalize_username};

#[derive(Debug, Clone, Copy)]
pub struct AuthPolicy {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            access_ttl: Duration::minutes(15),
            refresh_ttl: Duration::days(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_in_secs: i64,
}

/// Who is calling, as proven by an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
}

/// What an access token grants a long-lived connection: who, until when, and
/// under which session family, so that revoking the family ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
    /// None for tokens issued before access tokens named their family.
    pub family_id: Option<Uuid>,
}

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn RefreshTokenRepository>,
    hasher: Arc<dyn PasswordHasher>,
    codec: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    policy: AuthPolicy,
    limiter: Arc<Limiter>,
    /// Where revocations are announced to open connections (every node).
    hub: Option<Arc<Hub>>,
    /// Suspensions refuse logins and connections; security events go to
    /// its audit log.
    moderation: Option<Arc<crate::moderation::ModerationService>>,
    /// Users whose token was checked against the store: an account is never
    /// deleted, so one look per user (per node) is enough. Bounded.
    known_users: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    /// A real hash of a random password, verified when the user does not exist so
    /// that a wrong username costs as long as a wrong password.
    decoy_hash: OnceLock<String>,
    /// Who may sign up, and the invite codes when it takes one.
    registration: crate::registration::Registration,
    invites: Option<Arc<dyn crate::registration::InviteRepository>>,
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn bad_credentials() -> DomainError {
    DomainError::unauthenticated("invalid_credentials", "wrong username or password")
}

fn bad_refresh(message: &str) -> DomainError {
    DomainError::unauthenticated("invalid_refresh_token", message)
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        tokens: Arc<dyn RefreshTokenRepository>,
        hasher: Arc<dyn PasswordHasher>,
        codec: Arc<dyn TokenCodec>,
        clock: Arc<dyn Clock>,
        policy: AuthPolicy,
    ) -> Self {
        Self {
            users,
            tokens,
            hasher,
            codec,
            clock,
            limiter: Arc::new(Limiter::in_memory()),
            hub: None,
            moderation: None,
            known_users: Default::default(),
            policy,
            decoy_hash: OnceLock::new(),
            registration: Default::default(),
            invites: None,
        }
    }

    /// Who may sign up (open by default).
    pub fn with_registration(
        mut self,
        registration: crate::registration::Registration,
        invites: Arc<dyn crate::registration::InviteRepository>,
    ) -> Self {
        self.registration = registration;
        self.invites = Some(invites);
        self
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Announces revoked session families on this hub, which closes their
    /// open connections on every node.
    pub fn with_hub(mut self, hub: Arc<Hub>) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Refuses suspended users and audits security events.
    pub fn with_moderation(
        mut self,
        moderation: Arc<crate::moderation::ModerationService>,
    ) -> Self {
        self.moderation = Some(moderation);
        self
    }

    /// Appends a security event to the audit log (when there is one).
    async fn audit(&self, action: &str, target: (&str, String), reason: Option<String>) {
        if let Some(m) = &self.moderation
            && let Err(e) = m
                .record(&crate::moderation::Actor::server(), action, target, reason)
                .await
        {
            tracing::warn!(error = %e, action, "audit entry not written");
        }
    }

    /// `Err(suspended)` for a suspended user.
    async fn check_not_suspended(&self, user_id: Uuid) -> DomainResult<()> {
        match &self.moderation {
            Some(m) => m.check_active(user_id).await,
            None => Ok(()),
        }
    }

    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    /// Creates an account and signs it in. `client` is the caller's address:
    /// each address may make a limited number of accounts.
    pub async fn signup(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
        invite: Option<&str>,
        client: &str,
    ) -> DomainResult<(User, TokenPair)> {
        let username = normalize_username(username)?;
        check_password(password)?;
        let display_name = normalize_display_name(display_name.unwrap_or(&username))?;
        self.limiter
            .reserve(&self.limiter.limits().signup_client, client)
            .await?;
        let taken = crate::registration::admit(
            self.registration,
            self.invites.as_ref(),
            invite,
            self.clock.now(),
        )
        .await?;
        let created = self.create_user(username, display_name, password).await;
        let user = match created {
            Ok(user) => user,
            Err(e) => {
                // The code's use goes back: a taken username spent nothing.
                if let (Some(code), Some(invites)) = (&taken, &self.invites)
                    && let Err(back) = invites.give_back(code).await
                {
                    tracing::warn!(error = %back, "an invite's use was not given back");
                }
                return Err(e);
            }
        };
        let pair = self.start_family(&user).await?;
        tracing::info!(user_id = %user.id, username = %user.username, "account created");
        Ok((user, pair))
    }

    /// Makes an account on the operator's word (a seed file): no registration
    /// mode or sign-up limit applies, and nothing is signed in.
    pub async fn provision(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> DomainResult<User> {
        let username = normalize_username(username)?;
        check_password(password)?;
        let display_name = normalize_display_name(display_name.unwrap_or(&username))?;
        let user = self.create_user(username, display_name, password).await?;
        tracing::info!(user_id = %user.id, username = %user.username, "account provisioned");
        Ok(user)
    }

    /// Hashes the password and stores the account (names already normalized).
    async fn create_user(
        &self,
        username: String,
        display_name: String,
        password: &str,
    ) -> DomainResult<User> {
        let password_hash = self.hasher.hash(password.to_owned()).await?;
        self.users
            .create(NewUser {
                id: Uuid::now_v7(),
                username,
                display_name,
                password_hash,
                created_at: self.clock.now(),
            })
            .await
    }

    /// Checks a password. `client` is the caller's address, for throttling.
    ///
    /// Every attempt is reserved against three limits before the password is
    /// checked: this account from this address (low), this account from
    /// anywhere (a much higher ceiling) and this address (any account). A
    /// success gives its reservations back. So somebody guessing at an account
    /// locks out their own address, while the owner, from an address that has
    /// not been failing, still gets in until the account-wide ceiling.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> DomainResult<TokenPair> {
        // A name that can never exist is treated as a wrong one, throttled the same.
        let key = username.trim().to_lowercase();
        let user_client = format!("{key}\n{client}");
        let limits = *self.limiter.limits();
        // Failures over a threshold are a security event: recorded once per
        // window, when the limit is first crossed (not per refused attempt).
        let short: String = key.chars().take(64).collect();
        for (limit, subject, target) in [
            (
                &limits.login_user_client,
                user_client.as_str(),
                ("username", short.clone()),
            ),
            (
                &limits.login_user,
                key.as_str(),
                ("username", short.clone()),
            ),
            (&limits.login_client, client, ("address", client.to_owned())),
        ] {
            let (reserved, crossed) = self.limiter.reserve_noting_crossing(limit, subject).await;
            if crossed {
                self.audit(
                    "security.login_throttled",
                    target,
                    Some(format!("login failures over {} (from {client})", limit.max)),
                )
                .await;
            }
            reserved?;
        }
        if password.len() > crate::user::PASSWORD_MAX_BYTES {
            return Err(bad_credentials());
        }
        let found = match normalize_username(username) {
            Ok(name) => self.users.find_credentials(&name).await?,
            Err(_) => None,
        };
        let (user, ok) = match found {
            Some(creds) => {
                let ok = self
                    .hasher
                    .verify(password.to_owned(), creds.password_hash)
                    .await?;
                (Some(creds.user), ok)
            }
            None => {
                let decoy = self.decoy().await?;
                let _ = self.hasher.verify(password.to_owned(), decoy).await;
                (None, false)
            }
        };
        match user {
            Some(user) if ok => {
                self.limiter
                    .clear(&limits.login_user_client, &user_client)
                    .await;
                self.limiter.release(&limits.login_user, &key).await;
                self.limiter.release(&limits.login_client, client).await;
                if let Err(e) = self.check_not_suspended(user.id).await {
                    self.audit(
                        "security.suspended_login",
                        ("user", user.id.to_string()),
                        Some(format!("from {client}")),
                    )
                    .await;
                    return Err(e);
                }
                self.start_family(&user).await
            }
            _ => {
                tracing::info!(username = %key.chars().take(64).collect::<String>(), client, "failed login");
                Err(bad_credentials())
            }
        }
    }

    async fn decoy(&self) -> DomainResult<String> {
        if let Some(h) = self.decoy_hash.get() {
            return Ok(h.clone());
        }
        let h = self.hasher.hash(Uuid::new_v4().to_string()).await?;
        Ok(self.decoy_hash.get_or_init(|| h).clone())
    }

    /// Exchanges a refresh token for a new pair; the presented one stops working.
    pub async fn refresh(&self, refresh_token: &str) -> DomainResult<TokenPair> {
        let now = self.clock.now();
        let claims = self
            .codec
            .decode_refresh(refresh_token, now)
            .map_err(|_| bad_refresh("refresh token is invalid or expired"))?;
        let record = self
            .tokens
            .find(claims.token_id)
            .await?
            .filter(|r| r.token_hash == token_hash(refresh_token) && r.user_id == claims.user_id)
            .ok_or_else(|| bad_refresh("refresh token is unknown"))?;
        if record.revoked_at.is_some() {
            return Err(bad_refresh("refresh token was revoked"));
        }
        if record.expires_at <= now {
            return Err(bad_refresh("refresh token expired"));
        }
        if record.used_at.is_some() || !self.tokens.mark_used(record.id, now).await? {
            // Somebody presents a token that was already exchanged: the family is
            // compromised. Revoke it so neither holder can go on.
            let n = self.tokens.revoke_family(record.family_id, now).await?;
            tracing::warn!(user_id = %record.user_id, family = %record.family_id, revoked = n,
                "refresh token reuse detected; family revoked");
            self.audit(
                "security.refresh_reuse",
                ("user", record.user_id.to_string()),
                Some(format!("family {} revoked", record.family_id)),
            )
            .await;
            self.announce_revoked(record.user_id, record.family_id)
                .await;
            return Err(bad_refresh(
                "refresh token was already used; please log in again",
            ));
        }
        let user = self
            .users
            .find_by_id(record.user_id)
            .await?
            .ok_or_else(|| bad_refresh("account no longer exists"))?;
        let pair = self.issue(&user, record.family_id).await?;
        // A logout that revoked the family while this refresh ran must win:
        // the token just issued would be a live member of a revoked family.
        // Checked after the insert, so a revocation either sees the new token
        // or is seen here.
        if self.tokens.family_revoked(record.family_id).await? {
            self.tokens.revoke_family(record.family_id, now).await?;
            return Err(bad_refresh("refresh token was revoked"));
        }
        Ok(pair)
    }

    /// Revokes the session family the refresh token belongs to. Idempotent.
    /// Answers the family: what else the session held goes with it (its
    /// devices' push registrations).
    pub async fn logout(&self, refresh_token: &str) -> DomainResult<Uuid> {
        let now = self.clock.now();
        // An expired token still names its family; only the signature must hold.
        let claims = self
            .codec
            .decode_refresh(refresh_token, now - self.policy.refresh_ttl)
            .map_err(|_| bad_refresh("refresh token is invalid"))?;
        let record = self
            .tokens
            .find(claims.token_id)
            .await?
            .filter(|r| r.token_hash == token_hash(refresh_token))
            .ok_or_else(|| bad_refresh("refresh token is unknown"))?;
        self.tokens.revoke_family(record.family_id, now).await?;
        self.announce_revoked(record.user_id, record.family_id)
            .await;
        Ok(record.family_id)
    }

    /// Tells every node's connections of this family to end.
    async fn announce_revoked(&self, user_id: Uuid, family_id: Uuid) {
        if let Some(hub) = &self.hub {
            let revoked = EventPayload::SessionRevoked { family_id };
            hub.publish(RoomEvent::ephemeral(user_feed(user_id), revoked, None))
                .await;
        }
    }

    /// Checks an access token.
    pub fn authenticate(&self, access_token: &str) -> DomainResult<Principal> {
        Ok(self.decode(access_token)?.principal)
    }

    fn decode(&self, access_token: &str) -> DomainResult<Grant> {
        let claims = self.codec.decode_access(access_token, self.clock.now())?;
        Ok(Grant {
            principal: Principal {
                user_id: claims.user_id,
                username: claims.username,
            },
            expires_at: claims.expires_at,
            family_id: claims.family_id,
        })
    }

    /// Checks an access token and that its user exists: a token signed for an
    /// account that is not there (another deployment's, a restored backup's)
    /// is refused like a bad one.
    pub async fn authenticate_user(&self, access_token: &str) -> DomainResult<Principal> {
        let principal = self.authenticate(access_token)?;
        self.check_exists(&principal).await?;
        Ok(principal)
    }

    /// Checks an access token for a connection that outlives one request, as
    /// [`Self::authenticate_user`] does, and says until when and under which
    /// session family it holds. Whether the family was revoked is
    /// [`Self::check_live`]'s question: a connection asks it once it listens
    /// for revocations (the session does), or also at once to refuse early
    /// (the WebSocket handshake does).
    pub async fn grant(&self, access_token: &str) -> DomainResult<Grant> {
        let grant = self.decode(access_token)?;
        self.check_exists(&grant.principal).await?;
        Ok(grant)
    }

    /// A token on a WebSocket handshake: [`Self::grant`], and a family
    /// logged out already is refused at once (the session checks again when
    /// it listens for revocations; CONNECT may come seconds later).
    pub async fn admit(&self, access_token: &str) -> DomainResult<Grant> {
        let grant = self.grant(access_token).await?;
        self.check_live(&grant).await?;
        Ok(grant)
    }

    /// Refuses a grant whose session family was revoked since, or whose
    /// user is suspended. A connection
    /// checks again once it listens for revocations, so one that lands
    /// between its first check and its listening is not missed.
    pub async fn check_live(&self, grant: &Grant) -> DomainResult<()> {
        // A suspension revokes the families too: say the reason that matters.
        self.check_not_suspended(grant.principal.user_id).await?;
        if let Some(family) = grant.family_id
            && self.tokens.family_revoked(family).await?
        {
            return Err(session_revoked());
        }
        Ok(())
    }

    /// A real-time sign-in, once its connection listens for revocations:
    /// the account, refused as [`Self::check_live`] and [`Self::me`] would
    /// refuse it (suspended, session logged out, account gone), from one
    /// lookup instead of three.
    pub async fn sign_in(&self, grant: &Grant) -> DomainResult<User> {
        let standing = self
            .users
            .standing(grant.principal.user_id, grant.family_id)
            .await?
            .ok_or_else(unknown_user)?;
        if let Some(s) = &standing.suspension
            && s.active_at(self.clock.now())
        {
            return Err(crate::moderation::suspended_error(s));
        }
        if standing.family_revoked {
            return Err(session_revoked());
        }
        Ok(standing.user)
    }

    async fn check_exists(&self, principal: &Principal) -> DomainResult<()> {
        let known = |set: &std::collections::HashSet<Uuid>| set.contains(&principal.user_id);
        if known(&self.known_users.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        self.me(principal).await?;
        let mut set = self.known_users.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= 100_000 {
            set.clear();
        }
        set.insert(principal.user_id);
        Ok(())
    }

    pub async fn me(&self, principal: &Principal) -> DomainResult<User> {
        self.users
            .find_by_id(principal.user_id)
            .await?
            .ok_or_else(unknown_user)
    }

    async fn start_family(&self, user: &User) -> DomainResult<TokenPair> {
        self.issue(user, Uuid::now_v7()).await
    }

    async fn issue(&self, user: &User, family_id: Uuid) -> DomainResult<TokenPair> {
        let now = self.clock.now();
        let access = self.codec.encode_access(
            &AccessClaims {
                user_id: user.id,
                username: user.username.clone(),
                expires_at: now + self.policy.access_ttl,
                family_id: Some(family_id),
            },
            now,
        )?;
        let refresh_claims = RefreshClaims {
            token_id: Uuid::now_v7(),
            family_id,
            user_id: user.id,
            expires_at: now + self.policy.refresh_ttl,
        };
        let refresh = self.codec.encode_refresh(&refresh_claims, now)?;
        self.tokens
            .insert(RefreshTokenRecord {
                id: refresh_claims.token_id,
                family_id,
                user_id: user.id,
                token_hash: token_hash(&refresh),
                created_at: now,
                expires_at: refresh_claims.expires_at,
                used_at: None,
                revoked_at: None,
            })
            .await?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            access_expires_in_secs: self.policy.access_ttl.num_seconds(),
        })
    }
}

#[cfg(test)]
mod tests;

fn unknown_user() -> DomainError {
    DomainError::unauthenticated("unknown_user", "account no longer exists")
}

fn session_revoked() -> DomainError {
    DomainError::unauthenticated(
        "session_revoked",
        "this session was logged out; log in again",
    )
}
