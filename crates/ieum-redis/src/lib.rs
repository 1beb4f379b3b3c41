//! The Redis adapter: cross-node fan-out over Pub/Sub ([`RedisBus`]) and
//! presence shared by all nodes through per-node heartbeats ([`RedisPresence`]).
//!
//! Every key and channel lives under a prefix, so several deployments (or
//! tests) can share one Redis. Pool waits are bounded: nothing waits on Redis
//! for long, and a node whose Redis is gone keeps serving its own clients.

mod bus;
mod counter;
mod presence;

pub use bus::RedisBus;
pub use counter::RedisRateCounter;
pub use presence::RedisPresence;

use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};
use ieum_domain::DomainError;

/// How long any Redis call may wait for a connection or an answer.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis URL that cannot be used: a configuration error, found at start.
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct BadRedisUrl(String);

/// A pool with bounded waits. It connects lazily: a Redis that is down at start
/// is not an error here.
pub fn pool(url: &str) -> Result<Pool, BadRedisUrl> {
    let mut cfg = Config::from_url(url);
    cfg.pool = Some(deadpool_redis::PoolConfig {
        max_size: 16,
        timeouts: deadpool_redis::Timeouts {
            wait: Some(REDIS_TIMEOUT),
            create: Some(REDIS_TIMEOUT),
            recycle: Some(REDIS_TIMEOUT),
        },
        ..Default::default()
    });
    cfg.create_pool(Some(Runtime::Tokio1))
        .map_err(|e| BadRedisUrl(e.to_string()))
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> DomainError {
    DomainError::Unavailable(format!("redis: {e}"))
}

/// Runs a Redis command future with the adapter's time limit.
pub(crate) async fn timed<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, DomainError> {
    match tokio::time::timeout(REDIS_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("timed out")),
    }
}
