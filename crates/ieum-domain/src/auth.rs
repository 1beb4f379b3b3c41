//! Accounts and sessions: signup, login, refresh with rotation, logout.
//!
//! Refresh tokens form families: login starts one, every refresh rotates within
//! it. Presenting a token that was already rotated means it was copied, so the
//! whole family is revoked (theft detection). Logout revokes the family too.

use std::sync::{Arc, OnceLock};

use chrono::Duration;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
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

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn RefreshTokenRepository>,
    hasher: Arc<dyn PasswordHasher>,
    codec: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    policy: AuthPolicy,
    limiter: Arc<Limiter>,
    /// Users whose token was checked against the store: an account is never
    /// deleted, so one look per user (per node) is enough. Bounded.
    known_users: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    /// A real hash of a random password, verified when the user does not exist so
    /// that a wrong username costs as long as a wrong password.
    decoy_hash: OnceLock<String>,
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
            known_users: Default::default(),
            policy,
            decoy_hash: OnceLock::new(),
        }
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
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
        client: &str,
    ) -> DomainResult<(User, TokenPair)> {
        let username = normalize_username(username)?;
        check_password(password)?;
        let display_name = normalize_display_name(display_name.unwrap_or(&username))?;
        self.limiter
            .reserve(&self.limiter.limits().signup_client, client)
            .await?;
        let password_hash = self.hasher.hash(password.to_owned()).await?;
        let user = self
            .users
            .create(NewUser {
                id: Uuid::now_v7(),
                username,
                display_name,
                password_hash,
                created_at: self.clock.now(),
            })
            .await?;
        let pair = self.start_family(&user).await?;
        tracing::info!(user_id = %user.id, username = %user.username, "account created");
        Ok((user, pair))
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
        self.limiter
            .reserve(&limits.login_user_client, &user_client)
            .await?;
        self.limiter.reserve(&limits.login_user, &key).await?;
        self.limiter.reserve(&limits.login_client, client).await?;
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
            return Err(bad_refresh(
                "refresh token was already used; please log in again",
            ));
        }
        let user = self
            .users
            .find_by_id(record.user_id)
            .await?
            .ok_or_else(|| bad_refresh("account no longer exists"))?;
        self.issue(&user, record.family_id).await
    }

    /// Revokes the session family the refresh token belongs to. Idempotent.
    pub async fn logout(&self, refresh_token: &str) -> DomainResult<()> {
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
        Ok(())
    }

    /// Checks an access token.
    pub fn authenticate(&self, access_token: &str) -> DomainResult<Principal> {
        let claims = self.codec.decode_access(access_token, self.clock.now())?;
        Ok(Principal {
            user_id: claims.user_id,
            username: claims.username,
        })
    }

    /// Checks an access token and that its user exists: a token signed for an
    /// account that is not there (another deployment's, a restored backup's)
    /// is refused like a bad one.
    pub async fn authenticate_user(&self, access_token: &str) -> DomainResult<Principal> {
        let principal = self.authenticate(access_token)?;
        let known = |set: &std::collections::HashSet<Uuid>| set.contains(&principal.user_id);
        if known(&self.known_users.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(principal);
        }
        self.me(&principal).await?;
        let mut set = self.known_users.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= 100_000 {
            set.clear();
        }
        set.insert(principal.user_id);
        Ok(principal)
    }

    pub async fn me(&self, principal: &Principal) -> DomainResult<User> {
        self.users
            .find_by_id(principal.user_id)
            .await?
            .ok_or_else(|| DomainError::unauthenticated("unknown_user", "account no longer exists"))
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
mod tests {
    use super::*;
    use crate::ports::{
        MockClock, MockPasswordHasher, MockRefreshTokenRepository, MockTokenCodec,
        MockUserRepository,
    };
    use crate::user::UserCredentials;
    use chrono::{TimeZone, Utc};
    use mockall::predicate::*;

    fn user() -> User {
        User {
            id: Uuid::from_u128(1),
            username: "alice".into(),
            display_name: "앨리스".into(),
            profile_image_url: None,
            status_message: None,
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn clock() -> MockClock {
        let mut c = MockClock::new();
        c.expect_now()
            .returning(|| Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
        c
    }

    fn codec() -> MockTokenCodec {
        let mut c = MockTokenCodec::new();
        c.expect_encode_access()
            .returning(|cl, _| Ok(format!("access-{}", cl.user_id)));
        c.expect_encode_refresh()
            .returning(|cl, _| Ok(format!("refresh-{}", cl.token_id)));
        c
    }

    struct Mocks {
        users: MockUserRepository,
        tokens: MockRefreshTokenRepository,
        hasher: MockPasswordHasher,
        codec: MockTokenCodec,
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                users: MockUserRepository::new(),
                tokens: MockRefreshTokenRepository::new(),
                hasher: MockPasswordHasher::new(),
                codec: codec(),
            }
        }
        fn service(self, policy: AuthPolicy) -> AuthService {
            AuthService::new(
                Arc::new(self.users),
                Arc::new(self.tokens),
                Arc::new(self.hasher),
                Arc::new(self.codec),
                Arc::new(clock()),
                policy,
            )
        }
    }

    #[tokio::test]
    async fn signup_normalizes_and_issues_a_family() {
        let mut m = Mocks::new();
        m.hasher
            .expect_hash()
            .with(eq("testpass".to_string()))
            .returning(|_| Ok("HASH".into()));
        m.users
            .expect_create()
            .withf(|u| {
                u.username == "alice" && u.display_name == "alice" && u.password_hash == "HASH"
            })
            .returning(|u| {
                Ok(User {
                    id: u.id,
                    username: u.username,
                    display_name: u.display_name,
                    profile_image_url: None,
                    status_message: None,
                    created_at: u.created_at,
                })
            });
        m.tokens
            .expect_insert()
            .times(1)
            .withf(|r| r.token_hash.len() == 64 && r.used_at.is_none())
            .returning(|_| Ok(()));
        let svc = m.service(AuthPolicy::default());
        let (u, pair) = svc
            .signup(" Alice ", "testpass", None, "10.0.0.1")
            .await
            .unwrap();
        assert_eq!(u.username, "alice");
        assert!(pair.access_token.starts_with("access-"));
        assert_eq!(pair.access_expires_in_secs, 900);
    }

    #[tokio::test]
    async fn signup_rejects_bad_input_before_touching_storage() {
        let m = Mocks::new();
        let svc = m.service(AuthPolicy::default());
        let err = svc.signup("x", "testpass", None, "c").await.unwrap_err();
        assert_eq!(err.code(), "invalid_username");
        let err = svc.signup("alice", "short", None, "c").await.unwrap_err();
        assert_eq!(err.code(), "weak_password");
    }

    #[tokio::test]
    async fn signup_taken_name_is_a_conflict() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("HASH".into()));
        m.users
            .expect_create()
            .returning(|_| Err(DomainError::conflict("username_taken", "taken")));
        let svc = m.service(AuthPolicy::default());
        let err = svc
            .signup("alice", "testpass", None, "c")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "username_taken");
    }

    fn alice_with_password(m: &mut Mocks) {
        m.users.expect_find_credentials().returning(|_| {
            Ok(Some(UserCredentials {
                user: user(),
                password_hash: "HASH".into(),
            }))
        });
        m.hasher
            .expect_verify()
            .returning(|password, _| Ok(password == "testpass"));
        m.tokens.expect_insert().returning(|_| Ok(()));
    }

    #[tokio::test]
    async fn login_throttles_an_account_from_the_guessing_address() {
        let mut m = Mocks::new();
        alice_with_password(&mut m);
        let svc = m.service(AuthPolicy::default());
        for _ in 0..5 {
            let err = svc
                .login("alice", "wrongpass", "10.0.0.1")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "invalid_credentials");
        }
        // The right password from the guessing address waits too.
        let err = svc
            .login("ALICE", "testpass", "10.0.0.1")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "login_throttled");
        assert!(err.retry_after_secs().is_some_and(|s| s > 0));
    }

    #[tokio::test]
    async fn the_owner_logs_in_from_another_address_while_someone_guesses() {
        let mut m = Mocks::new();
        alice_with_password(&mut m);
        let svc = m.service(AuthPolicy::default());
        for _ in 0..10 {
            let _ = svc.login("alice", "wrongpass", "10.0.0.1").await;
        }
        svc.login("alice", "testpass", "10.0.0.2").await.unwrap();
    }

    #[tokio::test]
    async fn parallel_guesses_are_counted_before_they_are_checked() {
        let mut m = Mocks::new();
        alice_with_password(&mut m);
        let svc = Arc::new(m.service(AuthPolicy::default()));
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let svc = svc.clone();
                tokio::spawn(async move { svc.login("alice", "wrongpass", "10.0.0.1").await })
            })
            .collect();
        let mut checked = 0;
        for task in tasks {
            if task.await.unwrap().unwrap_err().code() == "invalid_credentials" {
                checked += 1;
            }
        }
        assert_eq!(checked, 5);
    }

    #[tokio::test]
    async fn login_unknown_user_still_verifies_a_decoy() {
        let mut m = Mocks::new();
        m.users.expect_find_credentials().returning(|_| Ok(None));
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("DECOY".into()));
        m.hasher
            .expect_verify()
            .withf(|_, h| h == "DECOY")
            .times(2)
            .returning(|_, _| Ok(false));
        let svc = m.service(AuthPolicy::default());
        for _ in 0..2 {
            let err = svc.login("nobody", "testpass", "c").await.unwrap_err();
            assert_eq!(err.code(), "invalid_credentials");
        }
    }

    fn record(used: bool, revoked: bool) -> RefreshTokenRecord {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap();
        RefreshTokenRecord {
            id: Uuid::from_u128(7),
            family_id: Uuid::from_u128(9),
            user_id: user().id,
            token_hash: token_hash("tok"),
            created_at: now,
            expires_at: now + Duration::days(30),
            used_at: used.then_some(now),
            revoked_at: revoked.then_some(now),
        }
    }

    fn refresh_codec(m: &mut Mocks) {
        m.codec.expect_decode_refresh().returning(|_, _| {
            Ok(RefreshClaims {
                token_id: Uuid::from_u128(7),
                family_id: Uuid::from_u128(9),
                user_id: Uuid::from_u128(1),
                expires_at: Utc::now() + Duration::days(1),
            })
        });
    }

    #[tokio::test]
    async fn refresh_rotates_within_the_family() {
        let mut m = Mocks::new();
        refresh_codec(&mut m);
        m.tokens
            .expect_find()
            .returning(|_| Ok(Some(record(false, false))));
        m.tokens
            .expect_mark_used()
            .with(eq(Uuid::from_u128(7)), always())
            .returning(|_, _| Ok(true));
        m.tokens
            .expect_insert()
            .withf(|r| r.family_id == Uuid::from_u128(9) && r.id != Uuid::from_u128(7))
            .times(1)
            .returning(|_| Ok(()));
        m.users.expect_find_by_id().returning(|_| Ok(Some(user())));
        m.tokens.expect_revoke_family().never();
        let svc = m.service(AuthPolicy::default());
        let pair = svc.refresh("tok").await.unwrap();
        assert!(pair.refresh_token.starts_with("refresh-"));
    }

    #[tokio::test]
    async fn reusing_a_rotated_token_revokes_the_family() {
        let mut m = Mocks::new();
        refresh_codec(&mut m);
        m.tokens
            .expect_find()
            .returning(|_| Ok(Some(record(true, false))));
        m.tokens
            .expect_revoke_family()
            .with(eq(Uuid::from_u128(9)), always())
            .times(1)
            .returning(|_, _| Ok(2));
        m.tokens.expect_insert().never();
        let svc = m.service(AuthPolicy::default());
        let err = svc.refresh("tok").await.unwrap_err();
        assert_eq!(err.code(), "invalid_refresh_token");
    }

    #[tokio::test]
    async fn losing_the_mark_race_counts_as_reuse() {
        let mut m = Mocks::new();
        refresh_codec(&mut m);
        m.tokens
            .expect_find()
            .returning(|_| Ok(Some(record(false, false))));
        m.tokens.expect_mark_used().returning(|_, _| Ok(false));
        m.tokens
            .expect_revoke_family()
            .times(1)
            .returning(|_, _| Ok(1));
        let svc = m.service(AuthPolicy::default());
        assert!(svc.refresh("tok").await.is_err());
    }

    #[tokio::test]
    async fn revoked_or_tampered_tokens_are_refused() {
        let mut m = Mocks::new();
        refresh_codec(&mut m);
        m.tokens
            .expect_find()
            .returning(|_| Ok(Some(record(false, true))));
        m.tokens.expect_mark_used().never();
        let svc = m.service(AuthPolicy::default());
        assert_eq!(
            svc.refresh("tok").await.unwrap_err().code(),
            "invalid_refresh_token"
        );
        // The stored hash is of "tok": another string with the same claims is refused.
        assert!(svc.refresh("other").await.is_err());
    }

    #[tokio::test]
    async fn logout_revokes_the_family() {
        let mut m = Mocks::new();
        refresh_codec(&mut m);
        m.tokens
            .expect_find()
            .returning(|_| Ok(Some(record(false, false))));
        m.tokens
            .expect_revoke_family()
            .with(eq(Uuid::from_u128(9)), always())
            .times(1)
            .returning(|_, _| Ok(1));
        let svc = m.service(AuthPolicy::default());
        svc.logout("tok").await.unwrap();
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
