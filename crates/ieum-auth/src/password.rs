use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// How much hashing may run and wait at once. Each argon2 hash holds its
/// memory cost (19 MiB by default) while it runs, so unbounded parallel
/// sign-ups or logins grow the process by gigabytes: a public node is then one
/// burst away from its memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashBudget {
    /// Memory all running hashes may hold together; at least one always runs.
    pub memory_mib: u32,
    /// Requests that may wait for a running hash to finish; the next one is
    /// refused at once (503 with Retry-After) instead of queued without bound.
    pub queue: usize,
}

impl Default for HashBudget {
    fn default() -> Self {
        Self {
            memory_mib: 64,
            queue: 16,
        }
    }
}

/// Admission to hashing: a semaphore sized from the budget, and a bounded
/// count of waiters.
#[derive(Debug)]
struct Gate {
    running: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// A waiter's place in the queue, given back however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    async fn enter(&self) -> DomainResult<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Reserve a place, then check it, so parallel callers cannot overfill.
        let place = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            drop(place);
            return Err(DomainError::Busy {
                code: "hashing_busy",
                retry_after_secs: 1,
            });
        }
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DomainError::Internal("hashing gate closed".into()));
        drop(place);
        permit
    }
}

#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    gate: Arc<Gate>,
}

impl Argon2Hasher {
    pub fn new(p: Argon2Params) -> Result<Self, String> {
        Self::with_budget(p, HashBudget::default())
    }

    pub fn with_budget(p: Argon2Params, budget: HashBudget) -> Result<Self, String> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let parallel = (u64::from(budget.memory_mib) * 1024 / u64::from(p.memory_kib.max(1)))
            .clamp(1, 4096) as usize;
        Ok(Self {
            params,
            gate: Arc::new(Gate {
                running: Arc::new(tokio::sync::Semaphore::new(parallel)),
                waiting: AtomicUsize::new(0),
                queue: budget.queue,
            }),
        })
    }

    /// How many hashes may run at once.
    pub fn parallel(&self) -> usize {
        self.gate.running.available_permits()
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
        let permit = self.gate.enter().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
        let permit = self.gate.enter().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
    async fn hashes_beyond_the_running_slots_and_the_queue_are_refused_at_once() {
        let params = Argon2Params {
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let h = Argon2Hasher::with_budget(
            params,
            HashBudget {
                memory_mib: 8,
                queue: 2,
            },
        )
        .unwrap();
        assert_eq!(h.parallel(), 1);
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(format!("password{i}")).await })
            })
            .collect();
        let mut hashed = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => hashed += 1,
                Err(e) => {
                    assert_eq!(e.code(), "hashing_busy");
                    assert_eq!(e.retry_after_secs(), Some(1));
                    busy += 1;
                }
            }
        }
        // One runs and two wait: the other seven are refused.
        assert_eq!((hashed, busy), (3, 7));
        assert_eq!(h.parallel(), 1, "every slot is given back");
    }

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
