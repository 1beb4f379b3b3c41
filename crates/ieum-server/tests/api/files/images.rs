//! Profile and room images through the upload flow.

use super::*;

/// Profile and room images take the same flow: upload with a purpose,
/// complete, then name the upload in `PATCH /api/me` or `PATCH
/// /api/rooms/{id}`. The profile or room shows the link; a replaced image is
/// deleted; such an upload cannot go into a message.
async fn profile_and_room_images_use_the_same_flow(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, bob, room) = room_with_bob(&server).await;
    let image = png();
    let upload_as = |token: String, purpose: &'static str, room: Option<String>| {
        let server = &server;
        let image = image.clone();
        async move {
            let mut body = json!({"fileName": "me.png", "contentType": "image/png",
                                  "size": image.len(), "purpose": purpose});
            if let Some(room) = room {
                body["roomId"] = json!(room);
            }
            let (status, started) = http_json(
                server.addr,
                "POST",
                "/api/uploads",
                Some(&token),
                Some(body),
            )
            .await;
            assert_eq!(status, 201, "{started}");
            assert_eq!(put(&started, image).await.status, 200);
            let (status, done) = complete(server, &token, &started).await;
            assert_eq!(status, 200, "{done}");
            assert_eq!(
                done["expiresAt"],
                Value::Null,
                "profile and room images never expire"
            );
            done["id"].clone()
        }
    };

    let first = upload_as(alice.clone(), "profile_image", None).await;
    let (status, me) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&alice),
        Some(json!({"profileImageAttachmentId": first})),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    let first_link = me["profileImageUrl"].as_str().expect("a link").to_owned();
    let got = download(&first_link).await;
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image));
    let second = upload_as(alice.clone(), "profile_image", None).await;
    let (status, me) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&alice),
        Some(json!({"profileImageAttachmentId": second})),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_ne!(me["profileImageUrl"], json!(first_link));
    assert_eq!(
        download(&first_link).await.status,
        404,
        "the replaced image is gone"
    );
    assert_eq!(
        download(me["profileImageUrl"].as_str().unwrap())
            .await
            .status,
        200
    );

    // A profile image is in no room: no message of a room can take it.
    let mut alices = subscribed(&server, &alice, &room).await;
    alices
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"type": "IMAGE", "attachmentId": second, "content": ""}),
            None,
            &[],
        )
        .await;
    let error = refusal(&mut alices).await;
    assert!(
        format!("{error:?}").contains("attachment_not_found"),
        "{error:?}"
    );

    // The room's image: its admin may set it, a member may not.
    let picture = upload_as(alice.clone(), "room_image", Some(room.clone())).await;
    let (status, updated) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{room}"),
        Some(&alice),
        Some(json!({"imageAttachmentId": picture})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let got = download(updated["imageUrl"].as_str().expect("a link")).await;
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image));
    let bobs = upload_as(bob.clone(), "room_image", Some(room.clone())).await;
    let (status, refused) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{room}"),
        Some(&bob),
        Some(json!({"imageAttachmentId": bobs})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    server.stop().await;
}

both_backends!(profile_and_room_images_use_the_same_flow);
