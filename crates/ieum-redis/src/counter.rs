//! Rate-limit counters shared by every node: one key per (limit, subject)
//! holding the count of its window, expiring when the window ends.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use deadpool_redis::Pool;
use deadpool_redis::redis;
use ieum_domain::throttle::{Hit, MemoryRateCounter, RateCounter};

use crate::timed;

pub struct RedisRateCounter {
    pool: Pool,
    prefix: String,
    /// Used while Redis cannot be reached, so limits never switch off.
    fallback: MemoryRateCounter,
}

impl RedisRateCounter {
    pub fn new(url: &str, prefix: &str) -> Result<Self, crate::BadRedisUrl> {
        Ok(Self {
            pool: crate::pool(url)?,
            prefix: format!("{prefix}limit:"),
            fallback: MemoryRateCounter::new(100_000),
        })
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }
}

#[async_trait]
impl RateCounter for RedisRateCounter {
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Hit {
        let window_ms = window.num_milliseconds().max(1);
        let key_name = self.key(key);
        let r = async {
            let mut c = timed(self.pool.get()).await?;
            // One transaction: the count and the window's end are read together,
            // and the expiry is set only by the hit that opened the window.
            let (count, _, ttl_ms): (u32, i64, i64) = timed(
                redis::pipe()
                    .atomic()
                    .incr(&key_name, 1)
                    .cmd("PEXPIRE")
                    .arg(&key_name)
                    .arg(window_ms)
                    .arg("NX")
                    .cmd("PTTL")
                    .arg(&key_name)
                    .query_async(&mut *c),
            )
            .await?;
            Ok::<_, ieum_domain::DomainError>(Hit {
                count,
                resets_in_secs: (ttl_ms.max(1) as u64).div_ceil(1000),
            })
        }
        .await;
        match r {
            Ok(hit) => hit,
            Err(e) => {
                tracing::warn!(error = %e, "rate counter falls back to this node");
                self.fallback.hit_now(key, window, now)
            }
        }
    }

    async fn release(&self, key: &str) {
        self.fallback.release_now(key);
        let key_name = self.key(key);
        if let Ok(mut c) = timed(self.pool.get()).await {
            // Never below zero, and never a key without an expiry.
            let after: Result<i64, _> = timed(
                redis::cmd("DECR")
                    .arg(&key_name)
                    .query_async::<i64>(&mut *c),
            )
            .await;
            if matches!(after, Ok(n) if n < 0) {
                let _: Result<i64, _> =
                    timed(redis::cmd("DEL").arg(&key_name).query_async::<i64>(&mut *c)).await;
            }
        }
    }

    async fn clear(&self, key: &str) {
        self.fallback.clear_now(key);
        if let Ok(mut c) = timed(self.pool.get()).await {
            let _: Result<i64, _> = timed(
                redis::cmd("DEL")
                    .arg(self.key(key))
                    .query_async::<i64>(&mut *c),
            )
            .await;
        }
    }
}
