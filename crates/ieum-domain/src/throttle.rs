//! Rate limits: a count of hits per key in a fixed window that starts with
//! the key's first hit.
//!
//! Every limit is reserved before it is checked: a hit is counted first and
//! the answer is the count including it, so parallel attempts each see a
//! distinct count and at most `max` of them pass. (Checking first and counting
//! afterwards let 44 of 60 parallel wrong passwords through a limit of 5.)
//! An attempt that turns out fine may give its hit back ([`Limiter::release`]).
//!
//! The counter is this node's memory ([`MemoryRateCounter`]) or shared by every
//! node (the Redis adapter). Keys name the limit and its subject; subjects a
//! client chose (a username) are hashed, so a key never grows with the input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::error::{DomainError, DomainResult};
use crate::ports::{Clock, SystemClock};

/// One limit: at most `max` hits per `window`, refused with `code`. `name`
/// keeps its counters apart from other limits' (several share a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub name: &'static str,
    pub code: &'static str,
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    pub fn new(name: &'static str, code: &'static str, max: u32, window: Duration) -> Self {
        Self {
            name,
            code,
            max,
            window,
        }
    }
}

/// Every limit the use cases apply. Defaults suit a public node; each is a
/// setting (README, configuration table) and each code is in docs/PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Wrong passwords for one account from one client address. The owner,
    /// on another address, is not locked out by somebody else's guesses.
    pub login_user_client: RateLimit,
    /// Wrong passwords for one account from anywhere: a much higher ceiling
    /// against guessing spread over many addresses.
    pub login_user: RateLimit,
    /// Wrong passwords from one client address, whatever the account.
    pub login_client: RateLimit,
    /// Accounts made from one client address.
    pub signup_client: RateLimit,
    /// Messages sent by one user, over all their connections and nodes.
    pub send_user: RateLimit,
    /// Read receipts from one user.
    pub read_user: RateLimit,
    /// Reactions added or removed by one user.
    pub reaction_user: RateLimit,
    /// Rooms created by one user (contract A's auto-created rooms included).
    pub room_create_user: RateLimit,
    /// Couple invite codes tried by one user.
    pub couple_code_user: RateLimit,
    /// Couple invite codes tried from one client address.
    pub couple_code_client: RateLimit,
}

pub const LOGIN_THROTTLED: &str = "login_throttled";

impl Default for RateLimits {
    fn default() -> Self {
        let minutes = Duration::minutes;
        Self {
            login_user_client: RateLimit::new("login-uc", LOGIN_THROTTLED, 5, minutes(15)),
            login_user: RateLimit::new("login-u", LOGIN_THROTTLED, 100, minutes(15)),
            login_client: RateLimit::new("login-c", LOGIN_THROTTLED, 30, minutes(15)),
            signup_client: RateLimit::new("signup-c", "signup_rate_limited", 20, minutes(60)),
            send_user: RateLimit::new("send-u", "send_rate_limited", 100, Duration::seconds(1)),
            read_user: RateLimit::new("read-u", "read_rate_limited", 20, Duration::seconds(1)),
            reaction_user: RateLimit::new(
                "react-u",
                "reaction_rate_limited",
                10,
                Duration::seconds(1),
            ),
            room_create_user: RateLimit::new("room-u", "room_create_rate_limited", 30, minutes(60)),
            couple_code_user: RateLimit::new(
                "couple-u",
                "couple_code_rate_limited",
                10,
                minutes(15),
            ),
            couple_code_client: RateLimit::new(
                "couple-c",
                "couple_code_rate_limited",
                30,
                minutes(15),
            ),
        }
    }
}

/// What a hit found: the count in the current window, this hit included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub count: u32,
    /// Seconds until the window ends (at least 1).
    pub resets_in_secs: u64,
}

/// Fixed-window counters by key.
#[async_trait::async_trait]
pub trait RateCounter: Send + Sync {
    /// Counts one hit on `key` and answers the count including it. Atomic:
    /// parallel hits on one key each get a different count.
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Hit;
    /// Takes one hit back (never below zero).
    async fn release(&self, key: &str);
    /// Forgets the key.
    async fn clear(&self, key: &str);
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    ends: DateTime<Utc>,
}

/// Counters in this node's memory, at most `capacity` keys: when full,
/// ended windows go first, then the window that ends soonest.
#[derive(Debug)]
pub struct MemoryRateCounter {
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryRateCounter {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hit_now(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Hit {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            if entry.ends <= now {
                *entry = Entry {
                    count: 1,
                    ends: now + window,
                };
            } else {
                entry.count = entry.count.saturating_add(1);
            }
            return hit_of(*entry, now);
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, e| e.ends > now);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.ends)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&soonest);
            }
        }
        let entry = Entry {
            count: 1,
            ends: now + window,
        };
        entries.insert(key.to_owned(), entry);
        hit_of(entry, now)
    }

    pub fn release_now(&self, key: &str) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    pub fn clear_now(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hit_of(entry: Entry, now: DateTime<Utc>) -> Hit {
    Hit {
        count: entry.count,
        resets_in_secs: (entry.ends - now).num_seconds().max(1) as u64,
    }
}

#[async_trait::async_trait]
impl RateCounter for MemoryRateCounter {
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Hit {
        self.hit_now(key, window, now)
    }
    async fn release(&self, key: &str) {
        self.release_now(key)
    }
    async fn clear(&self, key: &str) {
        self.clear_now(key)
    }
}

/// The key of `limit` for `subject`: short subjects as they are, longer ones
/// (or ones with characters a key should not hold) as a hash.
fn key_of(limit: &RateLimit, subject: &str) -> String {
    let plain = subject.len() <= 64
        && subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:[]".contains(&b));
    if plain {
        format!("{}:{subject}", limit.name)
    } else {
        let digest = Sha256::digest(subject.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:#{hex}", limit.name)
    }
}

/// Applies [`RateLimit`]s on a [`RateCounter`].
pub struct Limiter {
    counter: Arc<dyn RateCounter>,
    clock: Arc<dyn Clock>,
    limits: RateLimits,
}

impl Limiter {
    pub fn new(counter: Arc<dyn RateCounter>, clock: Arc<dyn Clock>, limits: RateLimits) -> Self {
        Self {
            counter,
            clock,
            limits,
        }
    }

    /// This node's memory with the default limits, for one node and for tests.
    pub fn in_memory() -> Self {
        Self::new(
            Arc::new(MemoryRateCounter::new(100_000)),
            Arc::new(SystemClock),
            RateLimits::default(),
        )
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Counts one hit of `subject` against `limit`; `RateLimited` (with the
    /// limit's code) when it is one too many.
    pub async fn reserve(&self, limit: &RateLimit, subject: &str) -> DomainResult<()> {
        let key = key_of(limit, subject);
        let hit = self.counter.hit(&key, limit.window, self.clock.now()).await;
        if hit.count > limit.max {
            return Err(DomainError::RateLimited {
                code: limit.code,
                retry_after_secs: hit.resets_in_secs,
            });
        }
        Ok(())
    }

    /// [`Self::reserve`], also saying whether this hit is the first one
    /// over the limit in its window (a crossing worth recording once).
    pub async fn reserve_noting_crossing(
        &self,
        limit: &RateLimit,
        subject: &str,
    ) -> (DomainResult<()>, bool) {
        let key = key_of(limit, subject);
        let hit = self.counter.hit(&key, limit.window, self.clock.now()).await;
        if hit.count > limit.max {
            let err = DomainError::RateLimited {
                code: limit.code,
                retry_after_secs: hit.resets_in_secs,
            };
            return (Err(err), hit.count == limit.max.saturating_add(1));
        }
        (Ok(()), false)
    }

    /// Gives back a hit that [`Self::reserve`] took (the attempt was fine).
    pub async fn release(&self, limit: &RateLimit, subject: &str) {
        self.counter.release(&key_of(limit, subject)).await;
    }

    /// Forgets every hit of `subject` against `limit`.
    pub async fn clear(&self, limit: &RateLimit, subject: &str) {
        self.counter.clear(&key_of(limit, subject)).await;
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::in_memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u32) -> RateLimit {
        RateLimit::new("test", "test_limited", max, Duration::minutes(15))
    }

    #[tokio::test]
    async fn the_hit_over_the_limit_is_refused_until_the_window_ends() {
        let counter = MemoryRateCounter::new(10);
        let t0 = Utc::now();
        let window = Duration::minutes(15);
        for expected in 1..=3 {
            assert_eq!(counter.hit_now("alice", window, t0).count, expected);
        }
        let hit = counter.hit_now("alice", window, t0);
        assert_eq!(hit.count, 4);
        assert!(hit.resets_in_secs > 800 && hit.resets_in_secs <= 900);
        let later = counter.hit_now("alice", window, t0 + Duration::minutes(16));
        assert_eq!(later.count, 1);
        assert_eq!(counter.hit_now("bob", window, t0).count, 1);
    }

    #[tokio::test]
    async fn parallel_reservations_let_at_most_max_through() {
        let limiter = Arc::new(Limiter::in_memory());
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.reserve(&limit(5), "alice").await.is_ok() })
            })
            .collect();
        let mut passed = 0;
        for task in tasks {
            passed += usize::from(task.await.unwrap());
        }
        assert_eq!(passed, 5);
    }

    #[tokio::test]
    async fn a_refusal_names_the_limit_and_when_to_retry() {
        let limiter = Limiter::in_memory();
        limiter.reserve(&limit(1), "alice").await.unwrap();
        let err = limiter.reserve(&limit(1), "alice").await.unwrap_err();
        assert_eq!(err.code(), "test_limited");
        assert!(
            matches!(err, DomainError::RateLimited { retry_after_secs, .. } if retry_after_secs > 0)
        );
    }

    #[tokio::test]
    async fn a_released_hit_is_given_back_and_clear_forgets() {
        let limiter = Limiter::in_memory();
        limiter.reserve(&limit(1), "alice").await.unwrap();
        limiter.release(&limit(1), "alice").await;
        limiter.reserve(&limit(1), "alice").await.unwrap();
        assert!(limiter.reserve(&limit(1), "alice").await.is_err());
        limiter.clear(&limit(1), "alice").await;
        limiter.reserve(&limit(1), "alice").await.unwrap();
    }

    #[test]
    fn memory_stays_bounded() {
        let counter = MemoryRateCounter::new(100);
        let t0 = Utc::now();
        for i in 0..10_000 {
            counter.hit_now(&format!("user{i}"), Duration::minutes(15), t0);
        }
        assert!(counter.len() <= 100, "{}", counter.len());
    }

    #[test]
    fn long_or_odd_subjects_become_short_keys() {
        let long = "a".repeat(60_000);
        let key = key_of(&limit(1), &long);
        assert!(key.len() < 80, "{key}");
        assert_ne!(key, key_of(&limit(1), &"a".repeat(59_999)));
        assert_eq!(key_of(&limit(1), "127.0.0.1"), "test:127.0.0.1");
        assert!(key_of(&limit(1), "al ice\n").contains('#'));
    }
}
