//! Who gets a push: a device that did not receive the message within the
//! grace period, and only such a device.

use super::{PushServer, android, connect_device, direct, keep_reading, say};
use crate::common::{Stomp, WAIT, signup};
use ieum_test_support::{TestDb, both_backends};

/// Waits until the reading client got the message of `seq` (events and
/// other frames pass by).
async fn received_seq(
    received: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    seq: i64,
) {
    tokio::time::timeout(WAIT, async {
        while let Some(body) = received.recv().await {
            if body["seq"] == seq && body["type"] == "TEXT" {
                return;
            }
        }
        panic!("the reader's connection closed");
    })
    .await
    .expect("the message reached the reader");
}

async fn an_offline_partner_gets_exactly_one_push_with_the_documented_payload(db: TestDb) {
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, alice_id) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    android(server, &bob, "bob-phone").await;
    let room = direct(server, &alice, &bob_id).await;
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "오늘 저녁 같이 먹자 🍜").await;
    let sent = push.wait_push("bob-phone", seq).await;
    assert_eq!(sent["notification"]["title"], "alice");
    assert_eq!(sent["notification"]["body"], "오늘 저녁 같이 먹자 🍜");
    assert_eq!(sent["data"]["roomId"], room.as_str());
    assert_eq!(sent["data"]["type"], "TEXT");
    assert_eq!(sent["data"]["count"], "1");
    assert_eq!(sent["data"]["badge"], "1");
    assert_eq!(sent["data"]["senderId"], alice_id.as_str());
    assert!(sent["data"]["messageId"].as_str().unwrap().len() == 36);
    assert_eq!(sent["android"]["collapse_key"], room.as_str());
    // One more message after the window: its push comes, and the first
    // message was pushed once only.
    let later = say(&mut client, &room, "답장 줘").await;
    push.wait_push("bob-phone", later).await;
    let first: Vec<_> = push
        .pushes_to("bob-phone")
        .into_iter()
        .filter(|p| super::seq_of(p) == seq)
        .collect();
    assert_eq!(first.len(), 1);
    assert!(push.fcm.problems().is_empty(), "{:?}", push.fcm.problems());
}

async fn a_device_that_received_the_message_gets_no_push(db: TestDb) {
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    let phone = android(server, &bob, "bob-phone").await;
    // A second device of bob's, never connected: it is pushed, and its
    // push marks when the phone's decision was made too.
    android(server, &bob, "bob-tablet").await;
    let room = direct(server, &alice, &bob_id).await;
    let reading = connect_device(&server.ws_url(), &bob, &phone, &room).await;
    let mut received = keep_reading(reading);
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "hi").await;
    received_seq(&mut received, seq).await;
    push.wait_push("bob-tablet", seq).await;
    // A round later (the next message, after the window) the phone has
    // still been pushed nothing.
    let next = say(&mut client, &room, "again").await;
    push.wait_push("bob-tablet", next).await;
    assert!(
        push.pushes_to("bob-phone").is_empty(),
        "{:?}",
        push.pushes_to("bob-phone")
    );
}

async fn a_frozen_connection_is_pushed_after_the_grace_period(db: TestDb) {
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    let phone = android(server, &bob, "bob-phone").await;
    let room = direct(server, &alice, &bob_id).await;
    // Connected and subscribed, then it stops reading: what the server
    // writes sits in the socket, and no pong answers its ping.
    let frozen = connect_device(&server.ws_url(), &bob, &phone, &room).await;
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "are you there?").await;
    let sent = push.wait_push("bob-phone", seq).await;
    assert_eq!(sent["data"]["count"], "1");
    assert_eq!(push.pushes_to("bob-phone").len(), 1);
    drop(frozen);
}

async fn a_connection_naming_no_device_spares_every_device_of_its_user(db: TestDb) {
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    let (carol, carol_id) = signup(server, "carol").await;
    android(server, &bob, "bob-phone").await;
    android(server, &carol, "carol-phone").await;
    let room = direct(server, &alice, &bob_id).await;
    let other = direct(server, &alice, &carol_id).await;
    // Bob reads on the web (no device named).
    let mut web = Stomp::connect(&server.ws_url(), &bob).await;
    web.subscribe("s", &format!("/topic/rooms/{room}"), &[])
        .await;
    let mut received = keep_reading(web);
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "hi bob").await;
    received_seq(&mut received, seq).await;
    // Carol's push comes a grace period later; bob's phone got none.
    let marker = say(&mut client, &other, "hi carol").await;
    push.wait_push("carol-phone", marker).await;
    let next = say(&mut client, &other, "and again").await;
    push.wait_push("carol-phone", next).await;
    assert!(
        push.pushes_to("bob-phone").is_empty(),
        "seq {seq}: {:?}",
        push.pushes_to("bob-phone")
    );
}

both_backends!(
    an_offline_partner_gets_exactly_one_push_with_the_documented_payload,
    a_device_that_received_the_message_gets_no_push,
    a_frozen_connection_is_pushed_after_the_grace_period,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_connection_spares_the_phone() {
    a_connection_naming_no_device_spares_every_device_of_its_user(TestDb::sqlite().await).await;
}
