//! The Redis bus against a real Redis, under a channel prefix of its own: real
//! hubs on both ends, the store mocked (no test here reads history).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use deadpool_redis::redis::{self, AsyncCommands};
use futures_util::StreamExt;
use ieum_domain::hub::{EventPayload, Hub, LOBBY_FEED, MailboxReceiver, RoomEvent, mailbox};
use ieum_domain::message::Message;
use ieum_domain::ports::{EventBus, MockMessageRepository};
use ieum_domain::room::{HistoryVisibility, PinPolicy, Room, RoomKind, Visibility};
use ieum_redis::RedisBus;
use ieum_test_support::{RedisPrefix, redis_url};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

/// A node: its bus, subscribed, and its hub over an empty store.
async fn node(prefix: &RedisPrefix) -> (Arc<RedisBus>, Arc<Hub>) {
    let mut store = MockMessageRepository::new();
    store.expect_last_seq().returning(|_| Ok(0));
    let bus = RedisBus::new(&redis_url(), &prefix.0, Uuid::new_v4()).unwrap();
    let hub = Hub::new(Arc::new(store), bus.clone());
    bus.start(hub.clone());
    let deadline = Instant::now() + WAIT;
    while !bus.healthy() {
        assert!(
            Instant::now() < deadline,
            "Redis reachable (scripts/test starts it)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (bus, hub)
}

async fn subscriber(hub: &Hub, feed: &str) -> MailboxReceiver {
    let (mailbox, receiver) = mailbox(16);
    hub.subscribe(feed, Uuid::new_v4(), "s".into(), 0, mailbox)
        .await
        .unwrap();
    receiver
}

async fn next(receiver: &mut MailboxReceiver) -> Arc<RoomEvent> {
    tokio::time::timeout(WAIT, receiver.rx.recv())
        .await
        .expect("a delivery in time")
        .expect("mailbox open")
        .event
}

fn message(seq: i64, content: &str) -> Message {
    Message {
        id: Uuid::new_v4(),
        sender_username: "alice".into(),
        sender_name: "Alice".into(),
        ..Message::text("room-1", seq, Uuid::new_v4(), content)
    }
}

async fn publish_raw(prefix: &RedisPrefix, body: &Value) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = conn
        .publish(format!("{}events", prefix.0), body.to_string())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_password_room_made_on_one_node_has_a_password_on_the_other() {
    let prefix = RedisPrefix::new();
    let (_a_bus, a) = node(&prefix).await;
    let (_b_bus, b) = node(&prefix).await;
    let mut lobby = subscriber(&b, LOBBY_FEED).await;
    let room = Room {
        id: "room-1".into(),
        kind: RoomKind::Group,
        name: "locked".into(),
        description: None,
        image_url: None,
        visibility: Visibility::Public,
        password_hash: Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$secret".into()),
        member_limit: 50,
        member_count: 1,
        invite_code: None,
        created_by: Uuid::new_v4(),
        created_at: Utc::now(),
        last_seq: 0,
        last_message_at: None,
        history_visibility: HistoryVisibility::All,
        pin_policy: PinPolicy::Members,
    };
    a.publish(RoomEvent::ephemeral(
        LOBBY_FEED,
        EventPayload::RoomCreated(Box::new(room)),
        None,
    ))
    .await;
    let event = next(&mut lobby).await;
    let EventPayload::RoomCreated(got) = &event.payload else {
        panic!("room created: {event:?}");
    };
    assert_eq!(got.name, "locked");
    assert!(got.has_password());
    assert!(!got.password_hash.as_deref().unwrap().contains("argon2"));
}

/// A newer node's message event: a real one from node a, with fields this node
/// does not know added at every level, as if a node c sent it.
#[tokio::test]
async fn a_message_event_with_unknown_fields_is_delivered() {
    let prefix = RedisPrefix::new();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut tap = client.get_async_pubsub().await.unwrap();
    tap.subscribe(format!("{}events", prefix.0)).await.unwrap();
    let mut tapped = tap.into_on_message();
    let (_a_bus, a) = node(&prefix).await;
    let (_b_bus, b) = node(&prefix).await;
    let mut room = subscriber(&b, "room-1").await;

    a.publish(RoomEvent::message(message(1, "real"))).await;
    let real = tokio::time::timeout(WAIT, tapped.next())
        .await
        .unwrap()
        .unwrap();
    let mut newer: Value = serde_json::from_slice(real.get_payload_bytes()).unwrap();
    newer["node"] = json!(Uuid::new_v4());
    newer["seq"] = json!(2);
    newer["trace"] = json!({"id": "t-1"});
    let message = &mut newer["payload"]["message"];
    message["seq"] = json!(2);
    message["id"] = json!(Uuid::new_v4());
    message["content"] = json!("from a newer node");
    message["translation"] = json!({"en": "from a newer node"});
    publish_raw(&prefix, &newer).await;

    let contents: Vec<_> = [next(&mut room).await, next(&mut room).await]
        .iter()
        .map(|event| match &event.payload {
            EventPayload::Message(m) => (m.seq, m.content.clone()),
            other => panic!("a message: {other:?}"),
        })
        .collect();
    assert_eq!(
        contents,
        [(1, "real".to_owned()), (2, "from a newer node".to_owned())]
    );
}

#[tokio::test]
async fn an_unknown_kind_of_event_is_dropped_and_the_subscription_goes_on() {
    let prefix = RedisPrefix::new();
    let (bus, hub) = node(&prefix).await;
    let mut room = subscriber(&hub, "room-1").await;
    let epoch = bus.epoch();
    let other_node = Uuid::new_v4();
    for body in [
        json!({"v": 2, "node": other_node, "room": "room-1", "payload": {"poll_closed": {"poll": 1}}}),
        json!({"v": 1, "node": other_node, "room": "room-1", "payload": {"typing": {"user_id": 5}}}),
        json!("not an envelope"),
    ] {
        publish_raw(&prefix, &body).await;
    }
    let user = Uuid::new_v4();
    publish_raw(
        &prefix,
        &json!({"v": 1, "node": other_node, "room": "room-1", "seq": null, "exclude": null,
            "payload": {"presence": {"user_id": user, "online": true, "at": Utc::now()}}}),
    )
    .await;
    let event = next(&mut room).await;
    assert!(
        matches!(&event.payload, EventPayload::Presence { user_id, .. } if *user_id == user),
        "{event:?}"
    );
    assert_eq!(bus.epoch(), epoch, "the subscription was never dropped");
}
