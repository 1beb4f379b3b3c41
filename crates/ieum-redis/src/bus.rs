//! Cross-node fan-out over Redis Pub/Sub.
//!
//! Every node publishes each room event to one channel and subscribes to it on
//! a dedicated connection that reconnects (with backoff) and resubscribes by
//! itself. Events from other nodes go to the local hub, whose feeds order them
//! by seq, drop duplicates and fill gaps from the store, so a message lost in a
//! Redis blip is never a gap for clients. After a reconnect the hub resyncs
//! every feed with the store, in case the lost message was the last one.
//!
//! Events cross in the bus's own versioned format ([`wire`]), never in the
//! domain's or HTTP's shapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands};
use futures_util::StreamExt;
use ieum_domain::hub::{Hub, RoomEvent};
use ieum_domain::ports::EventBus;
use ieum_domain::{DomainError, DomainResult};
use uuid::Uuid;

use crate::timed;

mod wire;

pub struct RedisBus {
    pool: Pool,
    url: String,
    channel: String,
    node: Uuid,
    healthy: AtomicBool,
    /// Subscriptions made so far: events may have been missed between two.
    subscriptions: AtomicU64,
    /// `ieum_bus_lag_seconds`, its handle taken once.
    lag: metrics::Histogram,
}

impl RedisBus {
    pub fn new(url: &str, prefix: &str, node: Uuid) -> Result<Arc<Self>, crate::BadRedisUrl> {
        Ok(Arc::new(Self {
            pool: crate::pool(url)?,
            url: url.to_owned(),
            channel: format!("{prefix}events"),
            node,
            healthy: AtomicBool::new(false),
            subscriptions: AtomicU64::new(0),
            lag: metrics::histogram!("ieum_bus_lag_seconds"),
        }))
    }

    /// Whether the subscription is up now.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Starts the subscriber task, handing other nodes' events to `hub`.
    pub fn start(self: &Arc<Self>, hub: Arc<Hub>) {
        let bus = self.clone();
        tokio::spawn(async move { bus.subscribe_forever(hub).await });
    }

    async fn subscribe_forever(self: Arc<Self>, hub: Arc<Hub>) {
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        loop {
            match self.subscribe_once(&hub).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "redis subscription lost; this node serves its own clients until it returns");
                        warned = true;
                    }
                }
            }
            if self.healthy.swap(false, Ordering::SeqCst) {
                warned = false;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn subscribe_once(&self, hub: &Arc<Hub>) -> DomainResult<()> {
        let client = redis::Client::open(self.url.as_str()).map_err(crate::unavailable)?;
        let mut pubsub = timed(client.get_async_pubsub()).await?;
        timed(pubsub.subscribe(&self.channel)).await?;
        self.subscriptions.fetch_add(1, Ordering::SeqCst);
        self.healthy.store(true, Ordering::SeqCst);
        tracing::info!(channel = %self.channel, "redis subscription up");
        // Anything missed while down is read from the store.
        hub.resync();
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            self.receive(hub, msg.get_payload_bytes());
        }
        Err(crate::unavailable("subscription closed"))
    }

    /// Hands another node's event to the hub. What this node cannot read is
    /// dropped and logged: the subscription goes on.
    fn receive(&self, hub: &Hub, bytes: &[u8]) {
        let envelope = match wire::read(bytes) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable bus message dropped");
                return;
            }
        };
        if envelope.node == self.node {
            return; // delivered locally already
        }
        if let Some(at) = envelope.at_ms {
            let lag = (chrono::Utc::now().timestamp_millis() - at).max(0);
            self.lag.record(lag as f64 / 1000.0);
        }
        let (node, v) = (envelope.node, envelope.v);
        match envelope.into_incoming() {
            wire::Incoming::Event(event) => hub.deliver(event),
            wire::Incoming::UnknownKind { kind } => {
                tracing::debug!(%node, v, kind, "bus event of an unknown kind dropped");
            }
            // A newer node's change, which it should not have made this way.
            wire::Incoming::Malformed { kind, error } if v > wire::VERSION => {
                tracing::debug!(%node, v, kind, %error, "bus event of a newer version dropped");
            }
            wire::Incoming::Malformed { kind, error } => {
                tracing::warn!(%node, v, kind, %error, "malformed bus event dropped");
            }
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: &RoomEvent) -> DomainResult<()> {
        let body =
            wire::encode(self.node, event).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut conn = timed(self.pool.get()).await?;
        let _: i64 = timed(conn.publish(&self.channel, body)).await?;
        Ok(())
    }

    /// Every node subscribes to every room's events on one channel, so while
    /// the subscription is up nothing is missed; each new subscription is a new
    /// epoch.
    fn epoch(&self) -> Option<u64> {
        self.healthy
            .load(Ordering::SeqCst)
            .then(|| self.subscriptions.load(Ordering::SeqCst))
    }
}
