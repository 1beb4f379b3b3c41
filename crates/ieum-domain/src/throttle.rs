//! Login throttling: a bounded count of recent failures per key.
//!
//! Keys are usernames and client addresses. Memory is bounded by `capacity`
//! entries per throttle: when full, expired entries go first, then the entry
//! whose window started earliest.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub capacity: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: DateTime<Utc>,
}

/// Counts failures per key within a window: this node's memory
/// ([`FailureThrottle`]) or shared by every node (the Redis adapter).
#[async_trait::async_trait]
pub trait FailureCounter: Send + Sync {
    /// `Some(seconds)` to wait when the key is blocked now.
    async fn blocked_for(&self, key: &str, now: DateTime<Utc>) -> Option<u64>;
    async fn record_failure(&self, key: &str, now: DateTime<Utc>);
    async fn clear(&self, key: &str);
}

#[async_trait::async_trait]
impl FailureCounter for FailureThrottle {
    async fn blocked_for(&self, key: &str, now: DateTime<Utc>) -> Option<u64> {
        FailureThrottle::blocked_for(self, key, now)
    }
    async fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        FailureThrottle::record_failure(self, key, now)
    }
    async fn clear(&self, key: &str) {
        FailureThrottle::clear(self, key)
    }
}

#[derive(Debug)]
pub struct FailureThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<String, Entry>>,
}

impl FailureThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(seconds)` to wait when the key is blocked now.
    pub fn blocked_for(&self, key: &str, now: DateTime<Utc>) -> Option<u64> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        let ends = entry.window_start + self.config.window;
        if entry.failures >= self.config.max_failures && ends > now {
            Some((ends - now).num_seconds().max(1) as u64)
        } else {
            None
        }
    }

    pub fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let mut entries = self.lock();
        let window = self.config.window;
        if let Some(entry) = entries.get_mut(key) {
            if entry.window_start + window <= now {
                *entry = Entry {
                    failures: 1,
                    window_start: now,
                };
            } else {
                entry.failures = entry.failures.saturating_add(1);
            }
            return;
        }
        if entries.len() >= self.config.capacity {
            entries.retain(|_, e| e.window_start + window > now);
            if entries.len() >= self.config.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.window_start)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key.to_owned(),
            Entry {
                failures: 1,
                window_start: now,
            },
        );
    }

    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max: u32, capacity: usize) -> FailureThrottle {
        FailureThrottle::new(ThrottleConfig {
            max_failures: max,
            window: Duration::minutes(15),
            capacity,
        })
    }

    #[test]
    fn blocks_after_max_failures_until_window_ends() {
        let t = throttle(3, 10);
        let t0 = Utc::now();
        for _ in 0..2 {
            t.record_failure("alice", t0);
        }
        assert_eq!(t.blocked_for("alice", t0), None);
        t.record_failure("alice", t0);
        let wait = t.blocked_for("alice", t0).expect("blocked");
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert_eq!(t.blocked_for("alice", t0 + Duration::minutes(16)), None);
        assert_eq!(t.blocked_for("bob", t0), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let t = throttle(3, 100);
        let t0 = Utc::now();
        for i in 0..10_000 {
            t.record_failure(&format!("user{i}"), t0 + Duration::milliseconds(i));
        }
        assert!(t.len() <= 100, "{}", t.len());
    }

    #[test]
    fn clear_forgets_failures() {
        let t = throttle(1, 10);
        let t0 = Utc::now();
        t.record_failure("alice", t0);
        assert!(t.blocked_for("alice", t0).is_some());
        t.clear("alice");
        assert!(t.blocked_for("alice", t0).is_none());
    }
}
