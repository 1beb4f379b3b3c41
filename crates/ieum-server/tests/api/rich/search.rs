//! Korean substring search, and who may find what.

use super::*;

async fn search_finds_korean_substrings_and_respects_access(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let (eve, _) = signup(&server, "eve").await;
    let r = room(&server, &alice, &[&bob]).await;
    let secret = room(&server, &eve, &[]).await;
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    let mut ew = Stomp::connect(&server.ws_url(), &eve).await;
    for text in [
        "오늘 날씨가 좋네요",
        "회의록을 공유했어요",
        "Hello World from Seoul",
        "100% 완료_했음 \\ 끝",
        "점심 🍜 먹자 lunch",
    ] {
        send(&mut aw, &r, json!({"content": text})).await;
    }
    send(&mut bw, &r, json!({"content": "bob의 날씨 이야기"})).await;
    send(&mut ew, &secret, json!({"content": "eve의 날씨 비밀"})).await;

    let search = |token: String, q: String| async move {
        let (s, body) = http_json(
            a,
            "GET",
            &format!("/api/search/messages?{q}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("날씨"))).await,
        ["bob의 날씨 이야기", "오늘 날씨가 좋네요"],
        "two-character Korean"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("회의록"))).await,
        ["회의록을 공유했어요"]
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("날씨가 좋"))).await,
        ["오늘 날씨가 좋네요"]
    );
    assert_eq!(
        search(alice.clone(), "q=hello%20world".into()).await,
        ["Hello World from Seoul"],
        "case-insensitive"
    );
    assert_eq!(
        search(alice.clone(), "q=SEOUL".into()).await,
        ["Hello World from Seoul"]
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("🍜"))).await,
        ["점심 🍜 먹자 lunch"],
        "emoji"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("🍜 먹자 lun"))).await,
        ["점심 🍜 먹자 lunch"],
        "mixed"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("100%"))).await,
        ["100% 완료_했음 \\ 끝"],
        "% is text"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("%"))).await.len(),
        1,
        "% alone is text too"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("_"))).await.len(),
        1,
        "_ is text"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("\\")))
            .await
            .len(),
        1,
        "backslash is text"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("\"'")))
            .await
            .len(),
        0,
        "quotes are text"
    );
    assert_eq!(
        search(
            alice.clone(),
            format!("q={}&senderId={bob_id}", enc("날씨"))
        )
        .await,
        ["bob의 날씨 이야기"],
        "author filter"
    );
    let future = "2999-01-01T00:00:00Z";
    assert!(
        search(alice.clone(), format!("q={}&from={future}", enc("날씨")))
            .await
            .is_empty(),
        "period filter"
    );
    assert_eq!(
        search(
            alice.clone(),
            format!("q={}&to={future}&roomId={}", enc("날씨"), r.id)
        )
        .await
        .len(),
        2
    );
    // Eve's room is not alice's to read, and eve sees none of alice's.
    assert!(
        !search(alice.clone(), format!("q={}", enc("비밀")))
            .await
            .contains(&"eve의 날씨 비밀".to_owned())
    );
    assert_eq!(
        search(eve.clone(), format!("q={}", enc("날씨"))).await,
        ["eve의 날씨 비밀"]
    );
    // Paging with the cursor.
    let (_, p1) = http_json(
        a,
        "GET",
        &format!("/api/search/messages?q={}&limit=1", enc("날씨")),
        Some(&alice),
        None,
    )
    .await;
    let cursor = p1["nextCursor"].as_str().unwrap().to_owned();
    let (_, p2) = http_json(
        a,
        "GET",
        &format!(
            "/api/search/messages?q={}&limit=1&cursor={}",
            enc("날씨"),
            enc(&cursor)
        ),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(p2["messages"][0]["content"], "오늘 날씨가 좋네요");

    // until_leave: after bob leaves, later messages are hidden from him.
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"historyVisibility": "until_leave"})),
    )
    .await;
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/leave", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    send(&mut aw, &r, json!({"content": "떠난 뒤의 날씨"})).await;
    let bob_sees = search(bob.clone(), format!("q={}", enc("날씨"))).await;
    assert!(bob_sees.contains(&"오늘 날씨가 좋네요".to_owned()));
    assert!(
        !bob_sees.contains(&"떠난 뒤의 날씨".to_owned()),
        "{bob_sees:?}"
    );
    let h = history(&server, &bob, &r.id).await;
    assert!(h.iter().all(|m| m["content"] != "떠난 뒤의 날씨"));
    // none: nothing at all.
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"historyVisibility": "none"})),
    )
    .await;
    assert!(
        search(bob.clone(), format!("q={}", enc("날씨")))
            .await
            .is_empty()
    );
    let (s, _) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{}/messages", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // all: everything again.
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"historyVisibility": "all"})),
    )
    .await;
    assert!(
        search(bob.clone(), format!("q={}", enc("날씨")))
            .await
            .contains(&"떠난 뒤의 날씨".to_owned())
    );
    let (s, _) = http_json(a, "GET", "/api/search/messages?q=", Some(&alice), None).await;
    assert_eq!(s, 400);
    server.stop().await;
}

both_backends!(search_finds_korean_substrings_and_respects_access,);
