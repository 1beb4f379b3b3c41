//! Login throttling counters shared by every node: one key per (kind, subject)
//! holding the failure count, expiring with the window.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::Pool;
use deadpool_redis::redis::AsyncCommands;
use ieum_domain::throttle::{FailureCounter, FailureThrottle, ThrottleConfig};

use crate::timed;

pub struct RedisFailureCounter {
    pool: Pool,
    prefix: String,
    config: ThrottleConfig,
    /// Used while Redis cannot be reached, so throttling never switches off.
    fallback: Arc<FailureThrottle>,
}

impl RedisFailureCounter {
    /// `kind` separates counters (e.g. `login-user`, `login-client`).
    pub fn new(
        url: &str,
        prefix: &str,
        kind: &str,
        config: ThrottleConfig,
    ) -> ieum_domain::DomainResult<Self> {
        Ok(Self {
            pool: crate::pool(url)?,
            prefix: format!("{prefix}throttle:{kind}:"),
            config,
            fallback: Arc::new(FailureThrottle::new(config)),
        })
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }
}

#[async_trait]
impl FailureCounter for RedisFailureCounter {
    async fn blocked_for(&self, key: &str, now: DateTime<Utc>) -> Option<u64> {
        let r: Result<(Option<u32>, i64), _> = async {
            let mut c = timed(self.pool.get()).await?;
            let n: Option<u32> = timed(c.get(self.key(key))).await?;
            let ttl: i64 = timed(c.ttl(self.key(key))).await?;
            Ok::<_, ieum_domain::DomainError>((n, ttl))
        }
        .await;
        match r {
            Ok((Some(n), ttl)) if n >= self.config.max_failures && ttl > 0 => Some(ttl as u64),
            Ok(_) => None,
            Err(_) => self.fallback.blocked_for(key, now),
        }
    }

    async fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let window = self.config.window.num_seconds().max(1);
        let r = async {
            let mut c = timed(self.pool.get()).await?;
            let n: i64 = timed(c.incr(self.key(key), 1)).await?;
            if n == 1 {
                let _: bool = timed(c.expire(self.key(key), window)).await?;
            }
            Ok::<_, ieum_domain::DomainError>(())
        }
        .await;
        if r.is_err() {
            self.fallback.record_failure(key, now);
        }
    }

    async fn clear(&self, key: &str) {
        self.fallback.clear(key);
        if let Ok(mut c) = timed(self.pool.get()).await {
            let _: Result<i64, _> = timed(c.del(self.key(key))).await;
        }
    }
}
