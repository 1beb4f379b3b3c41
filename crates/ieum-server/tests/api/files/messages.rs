//! A file message's round trip on both stores, what the stores refuse, and
//! contract B's `imageUrl`.

use super::*;

async fn file_messages_reach_the_partner(db: TestDb, storage: Storage) {
    let server = TestServer::start_with(&db, |s| storage.apply(s)).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let mut alices = subscribed(&server, &alice, &room).await;
    let mut bobs = subscribed(&server, &bob, &room).await;

    let image = png();
    let attachment = upload(&server, &alice, &room, "cat.png", "image/png", &image).await;
    assert_eq!(
        (&attachment["state"], &attachment["scan"]),
        (&json!("clean"), &json!("skipped"))
    );
    let send = |kind: &str, id: &Value, cmid: &str| json!({"type": kind, "attachmentId": id, "content": "", "clientMsgId": cmid});
    let destination = format!("/app/rooms/{room}/messages");
    alices
        .send_json(
            &destination,
            &send("IMAGE", &attachment["id"], "m-1"),
            None,
            &[],
        )
        .await;
    let (_, message) = bobs.next_message().await;
    assert_eq!(message["type"], "IMAGE");
    let file = &message["file"];
    assert_eq!(file["id"], attachment["id"]);
    assert_eq!(
        (&file["name"], &file["contentType"], &file["scan"]),
        (&json!("cat.png"), &json!("image/png"), &json!("skipped"))
    );
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(4), Some(3))
    );
    let got = download(file["url"].as_str().expect("a link")).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image), "identical bytes");
    assert_eq!(got.header("content-type"), Some("image/png"));
    let thumb = download(file["thumbnailUrl"].as_str().expect("a thumbnail link")).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    assert_eq!(&thumb.body[..2], b"\xFF\xD8", "a JPEG");

    let document = pdf();
    let attachment = upload(
        &server,
        &alice,
        &room,
        "계약서.pdf",
        "application/pdf",
        &document,
    )
    .await;
    alices
        .send_json(
            &destination,
            &send("FILE", &attachment["id"], "m-2"),
            None,
            &[],
        )
        .await;
    let (_, message) = bobs.next_message().await;
    assert_eq!(message["type"], "FILE");
    assert_eq!(message["file"]["name"], "계약서.pdf");
    assert_eq!(message["file"]["thumbnailUrl"], Value::Null);
    let got = download(message["file"]["url"].as_str().unwrap()).await;
    assert_eq!(sha256_hex(&got.body), sha256_hex(&document));
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment;"),
        "documents download, not display"
    );

    // A retry of the same send answers the stored message; another message
    // cannot take the file.
    alices
        .send_json(
            &destination,
            &send("FILE", &attachment["id"], "m-2"),
            None,
            &[],
        )
        .await;
    alices
        .send_json(
            &destination,
            &send("FILE", &attachment["id"], "m-3"),
            Some("r-3"),
            &[],
        )
        .await;
    let error = refusal(&mut alices).await;
    let body: Value = serde_json::from_slice(&error.body).unwrap_or(Value::Null);
    assert!(
        format!("{error:?}{body}").contains("attachment_in_use"),
        "{error:?}"
    );

    // History shows both files.
    let page = history(&server, &bob, &room).await;
    let files: Vec<&Value> = page.iter().filter(|m| m["file"].is_object()).collect();
    assert_eq!(files.len(), 2, "{page:?}");
    assert_eq!(files[1]["file"]["name"], "계약서.pdf");

    // Deleting the photo's message takes the photo with it.
    let photo_link = files[0]["file"]["url"].as_str().unwrap().to_owned();
    let before = storage.objects(&server);
    let (status, body) = http_json(
        server.addr,
        "DELETE",
        &format!(
            "/api/rooms/{room}/messages/{}",
            files[0]["id"].as_str().unwrap()
        ),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let gone = raw("GET", &photo_link, &[], Vec::new()).await;
    assert_eq!(gone.status, 404, "a deleted message's file is not served");
    assert_eq!(
        storage.objects(&server),
        before - 3,
        "the image and its two thumbnails are deleted, the PDF stays"
    );
    server.stop().await;
}

on_both_stores!(file_messages_reach_the_partner => file_messages_on_the_local_disk, file_messages_on_s3);

/// S3 itself refuses a body longer than the presigned PUT declares (its
/// signature binds the length), and nothing is kept.
async fn s3_refuses_a_longer_body(db: TestDb) {
    let storage = Storage::S3(S3Bucket::create());
    let server = TestServer::start_with(&db, |s| storage.apply(s)).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let bytes = png();
    let started = begin(&server, &alice, &room, "cat.png", "image/png", bytes.len()).await;
    assert!(
        started["uploadUrl"]
            .as_str()
            .unwrap()
            .contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{started}"
    );
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 64]);
    let refused = put(&started, longer).await;
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(storage.objects(&server), 0);
    let (status, body) = complete(&server, &alice, &started).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("upload_missing"))
    );
    // The exact body is taken.
    let stored = put(&started, bytes).await;
    assert_eq!(stored.status, 200);
    let (status, body) = complete(&server, &alice, &started).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// Contract B: the upload answers an `imageUrl`; an IMAGE message with it
/// reaches the partner with an `imageUrl` a plain GET downloads.
async fn contract_b_image_messages_carry_a_downloadable_image_url(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (ann, _) = signup(&server, "ann").await;
    let (ben, _) = signup(&server, "ben").await;
    let (status, invite) = http_json(a, "POST", "/api/couples/invite", Some(&ann), None).await;
    assert_eq!(status, 201);
    let (status, couple) = http_json(
        a,
        "POST",
        "/api/couples/join",
        Some(&ben),
        Some(json!({"code": invite["code"]})),
    )
    .await;
    assert_eq!(status, 200, "{couple}");
    let couple = couple["coupleId"].as_str().unwrap().to_owned();
    let mut bens = Stomp::connect(&server.ws_url(), &ben).await;
    bens.subscribe("c", &format!("/topic/couple/{couple}"), &[])
        .await;
    let mut anns = Stomp::connect(&server.ws_url(), &ann).await;

    let image = png();
    let attachment = upload(&server, &ann, &couple, "us.png", "image/png", &image).await;
    let image_url = attachment["imageUrl"]
        .as_str()
        .expect("an imageUrl")
        .to_owned();
    anns.send_json(
        &format!("/app/chat/{couple}"),
        &json!({"type": "IMAGE", "content": "", "imageUrl": image_url, "tempId": "t-1"}),
        None,
        &[],
    )
    .await;
    let (_, delivered) = bens.next_message().await;
    assert_eq!(delivered["type"], "IMAGE");
    assert_eq!(delivered["tempId"], "t-1");
    let url = delivered["imageUrl"].as_str().expect("imageUrl");
    assert_eq!(url, image_url);
    let got = download(url).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image));
    // History gives the same link.
    let (status, page) = http_json(
        a,
        "GET",
        &format!("/chat/rooms/{couple}/messages"),
        Some(&ben),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["imageUrl"], image_url);
    // Another host's URL, even one shaped like a link, is delivered as sent.
    let outside = format!(
        "https://cdn.example/media/{}/file.png",
        uuid::Uuid::now_v7()
    );
    anns.send_json(
        &format!("/app/chat/{couple}"),
        &json!({"type": "IMAGE", "content": "", "imageUrl": outside, "tempId": "t-2"}),
        None,
        &[],
    )
    .await;
    let (_, delivered) = bens.next_message().await;
    assert_eq!(delivered["imageUrl"], json!(outside));
    server.stop().await;
}

/// A link this server did not sign is not found; a FILE without an
/// attachment is refused.
async fn forged_links_and_empty_files_are_refused(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let attachment = upload(&server, &alice, &room, "cat.png", "image/png", &png()).await;
    let link = attachment["url"].as_str().unwrap();
    let forged = format!("{}AAAA", &link[..link.len() - 4]);
    let answer = raw("GET", &forged, &[], Vec::new()).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["code"], "attachment_not_found");
    let mut alices = subscribed(&server, &alice, &room).await;
    alices
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"type": "FILE", "content": "nothing attached"}),
            None,
            &[],
        )
        .await;
    let error = refusal(&mut alices).await;
    assert!(
        format!("{error:?}").contains("missing_attachment"),
        "{error:?}"
    );
    server.stop().await;
}

/// The upload URL stays usable until it expires, but what was checked and
/// scanned is a copy it cannot reach: a second PUT after completion changes
/// nothing that is served.
async fn a_put_after_completion_changes_nothing_served(db: TestDb, storage: Storage) {
    let server = TestServer::start_with(&db, |s| storage.apply(s)).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let document = pdf();
    let started = begin(
        &server,
        &alice,
        &room,
        "a.pdf",
        "application/pdf",
        document.len(),
    )
    .await;
    assert_eq!(put(&started, document.clone()).await.status, 200);
    let (status, done) = complete(&server, &alice, &started).await;
    assert_eq!(status, 200, "{done}");
    let mut swapped = document.clone();
    swapped[20] ^= 0xff;
    let again = put(&started, swapped).await;
    assert_eq!(again.status, 200, "the URL itself still works");
    let id = done["id"].as_str().unwrap();
    let (_, view) = http_json(
        server.addr,
        "GET",
        &format!("/api/attachments/{id}"),
        Some(&bob),
        None,
    )
    .await;
    let got = download(view["url"].as_str().expect("a link")).await;
    assert_eq!(
        sha256_hex(&got.body),
        sha256_hex(&document),
        "the checked bytes"
    );
    server.stop().await;
}

on_both_stores!(a_put_after_completion_changes_nothing_served => a_late_put_on_the_local_disk, a_late_put_on_s3);

both_backends!(
    file_messages_on_the_local_disk,
    file_messages_on_s3,
    s3_refuses_a_longer_body,
    contract_b_image_messages_carry_a_downloadable_image_url,
    forged_links_and_empty_files_are_refused,
    a_late_put_on_the_local_disk,
    a_late_put_on_s3,
);
