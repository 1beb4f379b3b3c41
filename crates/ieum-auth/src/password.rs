use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use ieum_domain::ports::PasswordHasher;
use ieum_domain::{DomainError, DomainResult};

/// argon2id cost. The default follows OWASP's recommendation (19 MiB, t=2, p=1);
/// tests use [`Argon2Params::fast_for_tests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Cheap parameters: only for test builds.
    pub fn fast_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Argon2Hasher {
    pub fn new(p: Argon2Params) -> Result<Self, String> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        Ok(Self { params })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

fn salt() -> SaltString {
    // 16 random bytes from the OS, via uuid's getrandom.
    let bytes = uuid::Uuid::new_v4().into_bytes();
    SaltString::encode_b64(&bytes).expect("16 bytes is a valid salt length")
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: String) -> DomainResult<String> {
        let argon = self.argon();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.as_bytes(), &salt())
                .map(|h| h.to_string())
                .map_err(|e| DomainError::Internal(format!("password hashing failed: {e}")))
        })
        .await
        .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))?
    }

    async fn verify(&self, password: String, hash: String) -> DomainResult<bool> {
        let argon = self.argon();
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| {
                DomainError::Internal(format!("stored password hash unreadable: {e}"))
            })?;
            // The stored hash names its own parameters, so old hashes keep working
            // after the cost changes.
            Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let h = Argon2Hasher::new(Argon2Params::fast_for_tests()).unwrap();
        let a = h.hash("비밀번호123".into()).await.unwrap();
        let b = h.hash("비밀번호123".into()).await.unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(h.verify("비밀번호123".into(), a.clone()).await.unwrap());
        assert!(!h.verify("wrong".into(), a).await.unwrap());
        assert!(h.verify("x".into(), "not a hash".into()).await.is_err());
    }
}
