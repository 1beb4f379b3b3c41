//! Registration open, by invite, or closed.

use super::*;

async fn signup_with(server: &TestServer, name: &str, invite: Option<&str>) -> (u16, Value) {
    let mut body = json!({"username": name, "password": "testpass"});
    if let Some(code) = invite {
        body["inviteCode"] = json!(code);
    }
    http_json(server.addr, "POST", "/auth/signup", None, Some(body)).await
}

/// `IEUM_REGISTRATION=invite`: sign-up takes a code an admin made (over
/// HTTP or the CLI), each code for its number of uses, and `closed` takes
/// nobody.
async fn registration_by_invite_or_closed(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.registration = Some("invite".into())).await;
    let (status, body) = signup_with(&server, "first", None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["success"], false);
    assert!(
        body["message"].as_str().unwrap().contains("by invite"),
        "{body}"
    );

    // The first code comes from the shell, as the first admin does.
    let config =
        ieum_server::Config::resolve(common::settings(&db, server.data_dir.clone())).unwrap();
    ieum_server::app::admin(
        config,
        AdminCommand::Invite {
            uses: Some(1),
            hours: Some(24),
        },
    )
    .await
    .expect("an invite from the CLI");
    // The CLI printed the code; the test reads it from the store.
    let store = ieum_store::Store::connect(db.url(), &Default::default())
        .await
        .unwrap();
    use ieum_domain::registration::InviteRepository;
    let codes = ieum_store::SqlInvites::new(store.clone())
        .usable(chrono::Utc::now())
        .await
        .unwrap();
    store.close().await;
    assert_eq!(codes.len(), 1);
    let first_code = codes[0].code.clone();
    let (status, body) = signup_with(&server, "boss", Some(&first_code)).await;
    assert_eq!(status, 201, "{body}");
    let boss = body["data"]["accessToken"].as_str().unwrap().to_owned();
    let (status, body) = signup_with(&server, "second", Some(&first_code)).await;
    assert_eq!(status, 403, "a one-use code is used up: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("used up"),
        "{body}"
    );
    grant(&db, &server, "boss", "admin").await;

    // A body that is there must make sense: no code on terms nobody asked for.
    let (status, body) = http_json(
        server.addr,
        "POST",
        "/api/admin/invites",
        Some(&boss),
        Some(json!({"maxUses": "lots"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_body")),
        "{body}"
    );
    // Admins make codes over HTTP; members may not.
    let (status, body) = http_json(
        server.addr,
        "POST",
        "/api/admin/invites",
        Some(&boss),
        Some(json!({"maxUses": 2, "expiresInHours": 1})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["maxUses"].as_u64(), body["usesLeft"].as_u64()),
        (Some(2), Some(2))
    );
    let code = body["code"].as_str().unwrap().to_owned();
    let (status, member) = signup_with(&server, "friend", Some(&code)).await;
    assert_eq!(status, 201, "{member}");
    let friend = member["data"]["accessToken"].as_str().unwrap().to_owned();
    let (status, body) = http_json(
        server.addr,
        "POST",
        "/api/admin/invites",
        Some(&friend),
        None,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_staff")));
    // A taken username spends no use.
    let (status, _) = signup_with(&server, "friend", Some(&code)).await;
    assert_eq!(status, 409);
    let (_, list) = http_json(server.addr, "GET", "/api/admin/invites", Some(&boss), None).await;
    let listed = list["invites"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the used-up CLI code is not listed: {list}"
    );
    assert_eq!(listed[0]["usesLeft"], 1);
    let (status, _) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/admin/invites/{code}"),
        Some(&boss),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = signup_with(&server, "late", Some(&code)).await;
    assert_eq!(status, 403, "a revoked code admits nobody");
    let (_, log) = audit(&server, &boss, "action=invite.").await;
    assert_eq!(
        super::actions(&log),
        ["invite.revoke", "invite.create", "invite.create"]
    );
    server.stop().await;

    let server = TestServer::start_with(&db, |s| s.registration = Some("closed".into())).await;
    let (status, body) = signup_with(&server, "nobody", Some(&code)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not take new accounts")
    );
    // Logins go on.
    let (status, _) = login(&server, "friend").await;
    assert_eq!(status, 200);
    server.stop().await;
}

both_backends!(registration_by_invite_or_closed);
