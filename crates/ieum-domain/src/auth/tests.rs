//! Unit tests of signup, login and refresh-token rotation, against mocked
//! ports.

use super::*;
use crate::ports::{
    MockClock, MockPasswordHasher, MockRefreshTokenRepository, MockTokenCodec, MockUserRepository,
};
use crate::user::UserCredentials;
use chrono::{TimeZone, Utc};
use mockall::predicate::*;

fn user() -> User {
    User {
        id: Uuid::from_u128(1),
        username: "alice".into(),
        display_name: "앨리스".into(),
        profile_image_url: None,
        status_message: None,
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        discoverable: false,
    }
}

fn clock() -> MockClock {
    let mut c = MockClock::new();
    c.expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
    c
}

fn codec() -> MockTokenCodec {
    let mut c = MockTokenCodec::new();
    c.expect_encode_access()
        .returning(|cl, _| Ok(format!("access-{}", cl.user_id)));
    c.expect_encode_refresh()
        .returning(|cl, _| Ok(format!("refresh-{}", cl.token_id)));
    c
}

struct Mocks {
    users: MockUserRepository,
    tokens: MockRefreshTokenRepository,
    hasher: MockPasswordHasher,
    codec: MockTokenCodec,
}

impl Mocks {
    fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            tokens: MockRefreshTokenRepository::new(),
            hasher: MockPasswordHasher::new(),
            codec: codec(),
        }
    }
    fn service(self, policy: AuthPolicy) -> AuthService {
        AuthService::new(
            Arc::new(self.users),
            Arc::new(self.tokens),
            Arc::new(self.hasher),
            Arc::new(self.codec),
            Arc::new(clock()),
            policy,
        )
    }
}

#[tokio::test]
async fn signup_normalizes_and_issues_a_family() {
    let mut m = Mocks::new();
    m.hasher
        .expect_hash()
        .with(eq("testpass".to_string()))
        .returning(|_| Ok("HASH".into()));
    m.users
        .expect_create()
        .withf(|u| u.username == "alice" && u.display_name == "alice" && u.password_hash == "HASH")
        .returning(|u| {
            Ok(User {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
                profile_image_url: None,
                status_message: None,
                created_at: u.created_at,
                discoverable: false,
            })
        });
    m.tokens
        .expect_insert()
        .times(1)
        .withf(|r| r.token_hash.len() == 64 && r.used_at.is_none())
        .returning(|_| Ok(()));
    let svc = m.service(AuthPolicy::default());
    let (u, pair) = svc
        .signup(" Alice ", "testpass", None, None, "10.0.0.1")
        .await
        .unwrap();
    assert_eq!(u.username, "alice");
    assert!(pair.access_token.starts_with("access-"));
    assert_eq!(pair.access_expires_in_secs, 900);
}

#[tokio::test]
async fn signup_rejects_bad_input_before_touching_storage() {
    let m = Mocks::new();
    let svc = m.service(AuthPolicy::default());
    let err = svc
        .signup("x", "testpass", None, None, "c")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_username");
    let err = svc
        .signup("alice", "short", None, None, "c")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "weak_password");
}

#[tokio::test]
async fn signup_taken_name_is_a_conflict() {
    let mut m = Mocks::new();
    m.hasher.expect_hash().returning(|_| Ok("HASH".into()));
    m.users
        .expect_create()
        .returning(|_| Err(DomainError::conflict("username_taken", "taken")));
    let svc = m.service(AuthPolicy::default());
    let err = svc
        .signup("alice", "testpass", None, None, "c")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "username_taken");
}

#[tokio::test]
async fn provision_makes_an_account_while_registration_is_closed_and_signs_nobody_in() {
    let mut m = Mocks::new();
    m.hasher.expect_hash().returning(|_| Ok("HASH".into()));
    m.users
        .expect_create()
        .withf(|u| u.username == "bob" && u.display_name == "밥" && u.password_hash == "HASH")
        .times(1)
        .returning(|u| {
            Ok(User {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
                ..user()
            })
        });
    // No refresh-token expectation: a token family made here would panic the mock.
    let svc = m.service(AuthPolicy::default()).with_registration(
        crate::registration::Registration::Closed,
        Arc::new(crate::registration::MockInviteRepository::new()),
    );
    let closed = svc
        .signup("carol", "testpass", None, None, "c")
        .await
        .unwrap_err();
    assert_eq!(closed.code(), "registration_closed");
    let made = svc
        .provision(" Bob ", "testpass", Some("밥"))
        .await
        .unwrap();
    assert_eq!(made.username, "bob");
    let weak = svc.provision("dave", "short", None).await.unwrap_err();
    assert_eq!(weak.code(), "weak_password");
}

#[tokio::test]
async fn sign_in_refuses_a_gone_suspended_or_logged_out_account_from_one_lookup() {
    use crate::moderation::Suspension;
    use crate::ports::Standing;
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let suspension = move |until| Suspension {
        until,
        reason: "spam".into(),
        by: None,
        at,
    };
    let mut m = Mocks::new();
    m.users.expect_standing().returning(move |id, family| {
        let standing = |suspension, family_revoked| {
            Some(Standing {
                user: user(),
                suspension,
                family_revoked,
            })
        };
        Ok(match (id.as_u128(), family.map(|f| f.as_u128())) {
            (1, Some(7)) => standing(None, true),
            (1, _) => standing(None, false),
            // Suspended until a day after the clock; and one that ended.
            (2, _) => standing(
                Some(suspension(Some(at + chrono::Duration::days(24)))),
                false,
            ),
            (3, _) => standing(Some(suspension(Some(at))), false),
            _ => None,
        })
    });
    let svc = m.service(AuthPolicy::default());
    let grant = |id: u128, family: Option<u128>| Grant {
        principal: Principal {
            user_id: Uuid::from_u128(id),
            username: "alice".into(),
        },
        expires_at: Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap(),
        family_id: family.map(Uuid::from_u128),
    };
    let code = |r: DomainResult<User>| {
        r.map(|u| u.username)
            .unwrap_or_else(|e| e.code().to_owned())
    };
    assert_eq!(code(svc.sign_in(&grant(1, Some(8))).await), "alice");
    assert_eq!(
        code(svc.sign_in(&grant(1, Some(7))).await),
        "session_revoked"
    );
    assert_eq!(code(svc.sign_in(&grant(2, None)).await), "suspended");
    assert_eq!(code(svc.sign_in(&grant(3, None)).await), "alice");
    assert_eq!(code(svc.sign_in(&grant(4, None)).await), "unknown_user");
}

fn alice_with_password(m: &mut Mocks) {
    m.users.expect_find_credentials().returning(|_| {
        Ok(Some(UserCredentials {
            user: user(),
            password_hash: "HASH".into(),
        }))
    });
    m.hasher
        .expect_verify()
        .returning(|password, _| Ok(password == "testpass"));
    m.tokens.expect_insert().returning(|_| Ok(()));
}

#[tokio::test]
async fn login_throttles_an_account_from_the_guessing_address() {
    let mut m = Mocks::new();
    alice_with_password(&mut m);
    let svc = m.service(AuthPolicy::default());
    for _ in 0..5 {
        let err = svc
            .login("alice", "wrongpass", "10.0.0.1")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_credentials");
    }
    // The right password from the guessing address waits too.
    let err = svc
        .login("ALICE", "testpass", "10.0.0.1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "login_throttled");
    assert!(err.retry_after_secs().is_some_and(|s| s > 0));
}

#[tokio::test]
async fn the_owner_logs_in_from_another_address_while_someone_guesses() {
    let mut m = Mocks::new();
    alice_with_password(&mut m);
    let svc = m.service(AuthPolicy::default());
    for _ in 0..10 {
        let _ = svc.login("alice", "wrongpass", "10.0.0.1").await;
    }
    svc.login("alice", "testpass", "10.0.0.2").await.unwrap();
}

#[tokio::test]
async fn parallel_guesses_are_counted_before_they_are_checked() {
    let mut m = Mocks::new();
    alice_with_password(&mut m);
    let svc = Arc::new(m.service(AuthPolicy::default()));
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.login("alice", "wrongpass", "10.0.0.1").await })
        })
        .collect();
    let mut checked = 0;
    for task in tasks {
        if task.await.unwrap().unwrap_err().code() == "invalid_credentials" {
            checked += 1;
        }
    }
    assert_eq!(checked, 5);
}

#[tokio::test]
async fn login_unknown_user_still_verifies_a_decoy() {
    let mut m = Mocks::new();
    m.users.expect_find_credentials().returning(|_| Ok(None));
    m.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok("DECOY".into()));
    m.hasher
        .expect_verify()
        .withf(|_, h| h == "DECOY")
        .times(2)
        .returning(|_, _| Ok(false));
    let svc = m.service(AuthPolicy::default());
    for _ in 0..2 {
        let err = svc.login("nobody", "testpass", "c").await.unwrap_err();
        assert_eq!(err.code(), "invalid_credentials");
    }
}

fn record(used: bool, revoked: bool) -> RefreshTokenRecord {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap();
    RefreshTokenRecord {
        id: Uuid::from_u128(7),
        family_id: Uuid::from_u128(9),
        user_id: user().id,
        token_hash: token_hash("tok"),
        created_at: now,
        expires_at: now + Duration::days(30),
        used_at: used.then_some(now),
        revoked_at: revoked.then_some(now),
    }
}

fn refresh_codec(m: &mut Mocks) {
    m.codec.expect_decode_refresh().returning(|_, _| {
        Ok(RefreshClaims {
            token_id: Uuid::from_u128(7),
            family_id: Uuid::from_u128(9),
            user_id: Uuid::from_u128(1),
            expires_at: Utc::now() + Duration::days(1),
        })
    });
}

#[tokio::test]
async fn refresh_rotates_within_the_family() {
    let mut m = Mocks::new();
    refresh_codec(&mut m);
    m.tokens
        .expect_find()
        .returning(|_| Ok(Some(record(false, false))));
    m.tokens
        .expect_mark_used()
        .with(eq(Uuid::from_u128(7)), always())
        .returning(|_, _| Ok(true));
    m.tokens
        .expect_insert()
        .withf(|r| r.family_id == Uuid::from_u128(9) && r.id != Uuid::from_u128(7))
        .times(1)
        .returning(|_| Ok(()));
    m.users.expect_find_by_id().returning(|_| Ok(Some(user())));
    m.tokens.expect_family_revoked().returning(|_| Ok(false));
    m.tokens.expect_revoke_family().never();
    let svc = m.service(AuthPolicy::default());
    let pair = svc.refresh("tok").await.unwrap();
    assert!(pair.refresh_token.starts_with("refresh-"));
}

#[tokio::test]
async fn a_refresh_that_races_a_logout_loses() {
    let mut m = Mocks::new();
    refresh_codec(&mut m);
    m.tokens
        .expect_find()
        .returning(|_| Ok(Some(record(false, false))));
    m.tokens.expect_mark_used().returning(|_, _| Ok(true));
    m.tokens.expect_insert().times(1).returning(|_| Ok(()));
    m.users.expect_find_by_id().returning(|_| Ok(Some(user())));
    // The logout revoked the family after the token was found.
    m.tokens.expect_family_revoked().returning(|_| Ok(true));
    m.tokens
        .expect_revoke_family()
        .with(eq(Uuid::from_u128(9)), always())
        .times(1)
        .returning(|_, _| Ok(1));
    let svc = m.service(AuthPolicy::default());
    let err = svc.refresh("tok").await.unwrap_err();
    assert_eq!(err.code(), "invalid_refresh_token");
}

#[tokio::test]
async fn reusing_a_rotated_token_revokes_the_family() {
    let mut m = Mocks::new();
    refresh_codec(&mut m);
    m.tokens
        .expect_find()
        .returning(|_| Ok(Some(record(true, false))));
    m.tokens
        .expect_revoke_family()
        .with(eq(Uuid::from_u128(9)), always())
        .times(1)
        .returning(|_, _| Ok(2));
    m.tokens.expect_insert().never();
    let svc = m.service(AuthPolicy::default());
    let err = svc.refresh("tok").await.unwrap_err();
    assert_eq!(err.code(), "invalid_refresh_token");
}

#[tokio::test]
async fn losing_the_mark_race_counts_as_reuse() {
    let mut m = Mocks::new();
    refresh_codec(&mut m);
    m.tokens
        .expect_find()
        .returning(|_| Ok(Some(record(false, false))));
    m.tokens.expect_mark_used().returning(|_, _| Ok(false));
    m.tokens
        .expect_revoke_family()
        .times(1)
        .returning(|_, _| Ok(1));
    let svc = m.service(AuthPolicy::default());
    assert!(svc.refresh("tok").await.is_err());
}

#[tokio::test]
async fn revoked_or_tampered_tokens_are_refused() {
    let mut m = Mocks::new();
    refresh_codec(&mut m);
    m.tokens
        .expect_find()
        .returning(|_| Ok(Some(record(false, true))));
    m.tokens.expect_mark_used().never();
    let svc = m.service(AuthPolicy::default());
    assert_eq!(
        svc.refresh("tok").await.unwrap_err().code(),
        "invalid_refresh_token"
    );
    // The stored hash is of "tok": another string with the same claims is refused.
    assert!(svc.refresh("other").await.is_err());
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let mut m = Mocks::new();
    refresh_codec(&mut m);
    m.tokens
        .expect_find()
        .returning(|_| Ok(Some(record(false, false))));
    m.tokens
        .expect_revoke_family()
        .with(eq(Uuid::from_u128(9)), always())
        .times(1)
        .returning(|_, _| Ok(1));
    let svc = m.service(AuthPolicy::default());
    svc.logout("tok").await.unwrap();
}

#[test]
fn token_hash_is_sha256_hex() {
    assert_eq!(
        token_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn crossing_the_login_threshold_is_audited_once_per_window() {
    let mut m = Mocks::new();
    alice_with_password(&mut m);
    let mut audit = crate::moderation::MockAuditLog::new();
    audit
        .expect_append()
        .withf(|e| {
            e.action == "security.login_throttled"
                && e.target_kind == "username"
                && e.target_id == "alice"
                && e.actor_id.is_none()
        })
        .times(1)
        .returning(|_| Ok(()));
    let moderation = crate::moderation::ModerationService::new(
        Arc::new(crate::moderation::MockModerationRepository::new()),
        Arc::new(audit),
        Arc::new(MockUserRepository::new()),
        Arc::new(clock()),
    );
    let svc = m
        .service(AuthPolicy::default())
        .with_moderation(Arc::new(moderation));
    let mut throttled = 0;
    for _ in 0..9 {
        if let Err(e) = svc.login("alice", "wrongpass", "10.0.0.1").await
            && e.code() == "login_throttled"
        {
            throttled += 1;
        }
    }
    assert_eq!(throttled, 4, "five failures allowed, then throttled");
}

mod registration {
    use super::*;
    use crate::registration::{MockInviteRepository, Registration};

    fn invite_mode(m: Mocks, invites: MockInviteRepository) -> AuthService {
        m.service(AuthPolicy::default())
            .with_registration(Registration::Invite, Arc::new(invites))
    }

    #[tokio::test]
    async fn closed_and_invite_modes_refuse_before_any_hashing() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().never();
        m.users.expect_create().never();
        let svc = m
            .service(AuthPolicy::default())
            .with_registration(Registration::Closed, Arc::new(MockInviteRepository::new()));
        let err = svc
            .signup("alice", "testpass", None, Some("ANY"), "c")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "registration_closed");

        let mut m = Mocks::new();
        m.hasher.expect_hash().never();
        let mut invites = MockInviteRepository::new();
        invites
            .expect_take()
            .withf(|code, _| code == "USEDUP")
            .returning(|_, _| Ok(false));
        let svc = invite_mode(m, invites);
        for (code, expected) in [
            (None, "invite_required"),
            (Some("  "), "invite_required"),
            (Some("USEDUP"), "invalid_invite"),
        ] {
            let err = svc
                .signup("alice", "testpass", None, code, "c")
                .await
                .unwrap_err();
            assert_eq!(err.code(), expected, "{code:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_signup_gives_its_invite_use_back() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("HASH".into()));
        m.users
            .expect_create()
            .returning(|_| Err(DomainError::conflict("username_taken", "taken")));
        let mut invites = MockInviteRepository::new();
        invites
            .expect_take()
            .withf(|code, _| code == "GOOD")
            .times(1)
            .returning(|_, _| Ok(true));
        invites
            .expect_give_back()
            .withf(|code| code == "GOOD")
            .times(1)
            .returning(|_| Ok(()));
        let svc = invite_mode(m, invites);
        let err = svc
            .signup("alice", "testpass", None, Some(" GOOD "), "c")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "username_taken");
    }
}
