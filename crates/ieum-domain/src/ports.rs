//! The port traits the use cases depend on. Adapters implement them; with the
//! `mocks` feature (or in this crate's tests) mockall generates `Mock*` types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::DomainResult;
use crate::user::{NewUser, User, UserCredentials};

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user. A taken username is `Conflict { code: "username_taken" }`.
    async fn create(&self, user: NewUser) -> DomainResult<User>;
    async fn find_credentials(&self, username: &str) -> DomainResult<Option<UserCredentials>>;
    async fn find_by_id(&self, id: Uuid) -> DomainResult<Option<User>>;
}

/// A stored refresh token. The token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RefreshTokenRepository: Send + Sync {
    async fn insert(&self, record: RefreshTokenRecord) -> DomainResult<()>;
    async fn find(&self, id: Uuid) -> DomainResult<Option<RefreshTokenRecord>>;
    /// Marks the token used if it is neither used nor revoked, atomically.
    /// Returns whether this call was the one that marked it.
    async fn mark_used(&self, id: Uuid, at: DateTime<Utc>) -> DomainResult<bool>;
    /// Revokes every token of the family. Returns how many were revoked now.
    async fn revoke_family(&self, family_id: Uuid, at: DateTime<Utc>) -> DomainResult<u64>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: String) -> DomainResult<String>;
    /// `Ok(false)` for a wrong password; `Err` only when the hash cannot be read.
    async fn verify(&self, password: String, hash: String) -> DomainResult<bool>;
}

/// What an access token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: Uuid,
    pub username: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshClaims {
    pub token_id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Signs and checks tokens. Verification errors are `Unauthenticated` with the
/// codes `token_expired` or `token_invalid`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenCodec: Send + Sync {
    fn encode_access(
        &self,
        claims: &AccessClaims,
        issued_at: DateTime<Utc>,
    ) -> DomainResult<String>;
    fn encode_refresh(
        &self,
        claims: &RefreshClaims,
        issued_at: DateTime<Utc>,
    ) -> DomainResult<String>;
    fn decode_access(&self, token: &str, now: DateTime<Utc>) -> DomainResult<AccessClaims>;
    fn decode_refresh(&self, token: &str, now: DateTime<Utc>) -> DomainResult<RefreshClaims>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
