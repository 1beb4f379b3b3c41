//! Presence shared by all nodes.
//!
//! Each node counts its own connections (in memory) and records in Redis which
//! users it has (`{p}node_users:{node}`) and, per user, which nodes have them
//! (`{p}user_nodes:{user}`). A node proves it is alive with a key that expires
//! (`{p}node:{node}`, refreshed by [`RedisPresence::heartbeat`]); a node that
//! dies stops refreshing it, and within the TTL another node claims its users
//! (one claim per dead node, by `SET NX`) and announces those connected nowhere
//! else as offline. While Redis is unreachable, answers are this node's own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands};
use ieum_domain::DomainResult;
use ieum_domain::ports::{LocalPresence, PresenceRegistry};
use uuid::Uuid;

use crate::timed;

pub struct RedisPresence {
    pool: Pool,
    prefix: String,
    node: Uuid,
    ttl: Duration,
    /// This node's own connections (the source of truth for what it writes to Redis).
    local: LocalPresence,
    healthy: AtomicBool,
}

impl RedisPresence {
    pub fn new(
        url: &str,
        prefix: &str,
        node: Uuid,
        ttl: Duration,
    ) -> Result<Self, crate::BadRedisUrl> {
        Ok(Self {
            pool: crate::pool(url)?,
            prefix: prefix.to_owned(),
            node,
            ttl,
            local: LocalPresence::default(),
            healthy: AtomicBool::new(true),
        })
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }
    fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    fn node_users_key(&self, node: &str) -> String {
        format!("{}node_users:{node}", self.prefix)
    }
    fn user_nodes_key(&self, user: Uuid) -> String {
        format!("{}user_nodes:{}", self.prefix, user.simple())
    }

    fn note<T>(&self, r: DomainResult<T>) -> DomainResult<T> {
        self.healthy.store(r.is_ok(), Ordering::Relaxed);
        r
    }

    /// Other live nodes that have the user.
    async fn live_elsewhere(
        &self,
        conn: &mut deadpool_redis::Connection,
        user: Uuid,
    ) -> DomainResult<bool> {
        let nodes: Vec<String> = timed(conn.smembers(self.user_nodes_key(user))).await?;
        let me = self.node.to_string();
        for n in nodes.iter().filter(|n| **n != me) {
            let alive: bool = timed(conn.exists(self.node_key(n))).await?;
            if alive {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn remote_connected(&self, user: Uuid) -> DomainResult<bool> {
        let mut conn = timed(self.pool.get()).await?;
        let elsewhere = self.live_elsewhere(&mut conn, user).await?;
        let me = self.node.to_string();
        let _: i64 = timed(conn.sadd(self.user_nodes_key(user), &me)).await?;
        let _: i64 = timed(conn.sadd(self.node_users_key(&me), user.to_string())).await?;
        Ok(!elsewhere)
    }

    async fn remote_disconnected(&self, user: Uuid) -> DomainResult<bool> {
        let mut conn = timed(self.pool.get()).await?;
        let me = self.node.to_string();
        let _: i64 = timed(conn.srem(self.user_nodes_key(user), &me)).await?;
        let _: i64 = timed(conn.srem(self.node_users_key(&me), user.to_string())).await?;
        Ok(!self.live_elsewhere(&mut conn, user).await?)
    }
}

#[async_trait]
impl PresenceRegistry for RedisPresence {
    async fn connected(&self, user_id: Uuid, connection: u64) -> DomainResult<bool> {
        let first_here = self.local.connected(user_id, connection).await?;
        if !first_here {
            return Ok(false);
        }
        match self.note(self.remote_connected(user_id).await) {
            Ok(first_anywhere) => Ok(first_anywhere),
            Err(_) => Ok(true), // degraded: this node's view
        }
    }

    async fn disconnected(&self, user_id: Uuid, connection: u64) -> DomainResult<bool> {
        let last_here = self.local.disconnected(user_id, connection).await?;
        if !last_here {
            return Ok(false);
        }
        match self.note(self.remote_disconnected(user_id).await) {
            Ok(last_anywhere) => Ok(last_anywhere),
            Err(_) => Ok(true),
        }
    }

    async fn is_online(&self, user_id: Uuid) -> DomainResult<bool> {
        if self.local.is_online(user_id).await? {
            return Ok(true);
        }
        let r = async {
            let mut conn = timed(self.pool.get()).await?;
            self.live_elsewhere(&mut conn, user_id).await
        }
        .await;
        match self.note(r) {
            Ok(v) => Ok(v),
            Err(_) => Ok(false),
        }
    }

    async fn heartbeat(&self) -> DomainResult<()> {
        let r = async {
            let mut conn = timed(self.pool.get()).await?;
            let me = self.node.to_string();
            let _: () =
                timed(conn.set_ex(self.node_key(&me), "1", self.ttl.as_secs().max(1))).await?;
            let _: i64 = timed(conn.sadd(self.nodes_key(), &me)).await?;
            // After a Redis restart the sets are gone: write this node's users again.
            for user in self.local.users() {
                let _: i64 = timed(conn.sadd(self.user_nodes_key(user), &me)).await?;
                let _: i64 = timed(conn.sadd(self.node_users_key(&me), user.to_string())).await?;
            }
            Ok(())
        }
        .await;
        self.note(r)
    }

    async fn take_orphaned_users(&self) -> DomainResult<Vec<Uuid>> {
        let r = async {
            let mut conn = timed(self.pool.get()).await?;
            let nodes: Vec<String> = timed(conn.smembers(self.nodes_key())).await?;
            let me = self.node.to_string();
            let mut orphans = Vec::new();
            for dead in nodes.iter().filter(|n| **n != me) {
                let alive: bool = timed(conn.exists(self.node_key(dead))).await?;
                if alive {
                    continue;
                }
                // One node claims a dead node's users.
                let claim: Option<String> = timed(
                    redis::cmd("SET")
                        .arg(format!("{}sweep:{dead}", self.prefix))
                        .arg(&me)
                        .arg("NX")
                        .arg("EX")
                        .arg(60)
                        .query_async(&mut *conn),
                )
                .await?;
                if claim.is_none() {
                    continue;
                }
                let users: Vec<String> = timed(conn.smembers(self.node_users_key(dead))).await?;
                for u in users {
                    let Ok(user) = Uuid::parse_str(&u) else {
                        continue;
                    };
                    let _: i64 = timed(conn.srem(self.user_nodes_key(user), dead)).await?;
                    if !self.local.is_online(user).await?
                        && !self.live_elsewhere(&mut conn, user).await?
                    {
                        orphans.push(user);
                    }
                }
                let _: i64 = timed(conn.del(self.node_users_key(dead))).await?;
                let _: i64 = timed(conn.srem(self.nodes_key(), dead)).await?;
            }
            Ok(orphans)
        }
        .await;
        self.note(r)
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}
