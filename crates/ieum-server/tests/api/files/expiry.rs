//! Expiry across a restart, on both stores.

use super::*;

/// A two-second expiry: after it, with a restart in between, the objects
/// are gone from storage, the message says expired and the link answers 410.
async fn attachments_expire_across_a_restart(db: TestDb, storage: Storage) {
    let expiring = |s: &mut Settings| {
        storage.apply(s);
        s.attachment_expiry_secs = Some(2);
    };
    let server = TestServer::start_with(&db, expiring).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let mut alices = subscribed(&server, &alice, &room).await;
    let attachment = upload(&server, &alice, &room, "cat.png", "image/png", &png()).await;
    let expires_at: chrono::DateTime<chrono::Utc> =
        attachment["expiresAt"].as_str().unwrap().parse().unwrap();
    alices
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"type": "IMAGE", "attachmentId": attachment["id"], "content": ""}),
            None,
            &[],
        )
        .await;
    let (_, message) = alices.next_message().await;
    let link = message["file"]["url"].as_str().unwrap().to_owned();
    assert_eq!(download(&link).await.status, 200);
    assert!(storage.objects(&server) > 0);
    alices.disconnect().await;
    let data_dir = server.stop_keeping_data().await;

    // Down while the expiry comes.
    while chrono::Utc::now() <= expires_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = TestServer::start_in(&db, data_dir, expiring).await;
    // The restarted server finds the due deletion in the store.
    let deadline = Instant::now() + WAIT;
    let shown = loop {
        let shown = history(&server, &bob, &room)
            .await
            .into_iter()
            .find(|m| m["id"] == message["id"])
            .expect("the message");
        if shown["file"]["state"] == "expired" {
            break shown;
        }
        assert!(Instant::now() < deadline, "never expired: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shown["file"]["url"], Value::Null);
    assert_eq!(storage.objects(&server), 0, "the objects are gone");
    // The link names the first server's port; the path is what counts.
    let link = server.url(&link[link.find("/media/").unwrap()..]);
    let gone = raw("GET", &link, &[], Vec::new()).await;
    assert_eq!(gone.status, 410, "{}", String::from_utf8_lossy(&gone.body));
    assert_eq!(gone.json()["code"], "expired");
    server.stop().await;
}

on_both_stores!(attachments_expire_across_a_restart => expiry_on_the_local_disk, expiry_on_s3);

both_backends!(expiry_on_the_local_disk, expiry_on_s3);
