//! The moderation rules on mocks of the ports.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use mockall::predicate::eq;
use uuid::Uuid;

use super::*;
use crate::ports::{MockClock, MockUserRepository};
use crate::user::UserCredentials;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
}

fn person(id: Uuid, name: &str) -> User {
    User {
        id,
        username: name.to_owned(),
        display_name: name.to_owned(),
        profile_image_url: None,
        status_message: None,
        created_at: now(),
        discoverable: false,
    }
}

/// Roles by user: `staff` moderators and admins, everyone else a member.
fn roles(repo: &mut MockModerationRepository, staff: Vec<(Uuid, ServerRole)>) {
    repo.expect_role_of().returning(move |id| {
        Ok(staff
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(ServerRole::Member, |(_, r)| *r))
    });
}

fn service(
    repo: MockModerationRepository,
    audit: MockAuditLog,
    users: MockUserRepository,
) -> ModerationService {
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    ModerationService::new(
        Arc::new(repo),
        Arc::new(audit),
        Arc::new(users),
        Arc::new(clock),
    )
}

fn known(users: &mut MockUserRepository, who: User) {
    users
        .expect_find_by_id()
        .returning(move |id| Ok((id == who.id).then(|| who.clone())));
}

#[tokio::test]
async fn a_moderator_suspends_a_member_ends_their_sessions_and_audits_it() {
    let (moderator, member) = (Uuid::now_v7(), Uuid::now_v7());
    let mut repo = MockModerationRepository::new();
    roles(&mut repo, vec![(moderator, ServerRole::Moderator)]);
    repo.expect_set_suspension()
        .withf(move |id, s| {
            *id == member
                && s.as_ref()
                    .is_some_and(|s| s.reason == "spam" && s.by == Some(moderator))
        })
        .times(1)
        .returning(|_, _| Ok(false));
    repo.expect_revoke_sessions()
        .with(eq(member), eq(now()))
        .times(1)
        .returning(|_, _| Ok(2));
    let mut audit = MockAuditLog::new();
    audit
        .expect_append()
        .withf(move |e| {
            e.action == "user.suspend"
                && e.actor_id == Some(moderator)
                && e.target_id == member.to_string()
                && e.reason.as_deref() == Some("spam")
                && e.request_id.as_deref() == Some("req-1")
        })
        .times(1)
        .returning(|_| Ok(()));
    let mut users = MockUserRepository::new();
    known(&mut users, person(member, "member"));
    let until = now() + Duration::hours(1);
    let s = service(repo, audit, users)
        .suspend(
            &Actor::user(moderator, Some("req-1".into())),
            member,
            Some(until),
            " spam ",
        )
        .await
        .unwrap();
    assert_eq!(s.until, Some(until));
}

#[tokio::test]
async fn members_cannot_suspend_and_nothing_changes() {
    let (member, other) = (Uuid::now_v7(), Uuid::now_v7());
    let mut repo = MockModerationRepository::new();
    roles(&mut repo, vec![]);
    repo.expect_set_suspension().never();
    repo.expect_revoke_sessions().never();
    let mut audit = MockAuditLog::new();
    audit.expect_append().never();
    let err = service(repo, audit, MockUserRepository::new())
        .suspend(&Actor::user(member, None), other, None, "because")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_staff");
}

#[tokio::test]
async fn staff_are_suspended_only_by_admins_and_admins_never() {
    let (admin, moderator, other_mod) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let staff = vec![
        (admin, ServerRole::Admin),
        (moderator, ServerRole::Moderator),
        (other_mod, ServerRole::Moderator),
    ];
    let attempt = |actor: Uuid, target: Uuid| {
        let staff = staff.clone();
        async move {
            let mut repo = MockModerationRepository::new();
            roles(&mut repo, staff);
            repo.expect_set_suspension().returning(|_, _| Ok(false));
            repo.expect_revoke_sessions().returning(|_, _| Ok(0));
            let mut audit = MockAuditLog::new();
            audit.expect_append().returning(|_| Ok(()));
            let mut users = MockUserRepository::new();
            users
                .expect_find_by_id()
                .returning(|id| Ok(Some(person(id, "someone"))));
            service(repo, audit, users)
                .suspend(&Actor::user(actor, None), target, None, "reason")
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        }
    };
    assert_eq!(attempt(moderator, other_mod).await, Err("not_staff"));
    assert_eq!(attempt(moderator, admin).await, Err("not_staff"));
    assert_eq!(attempt(admin, moderator).await, Ok(()));
    assert_eq!(attempt(moderator, moderator).await, Err("own_account"));
}

#[tokio::test]
async fn a_suspension_needs_a_reason_and_an_end_in_the_future() {
    let (admin, member) = (Uuid::now_v7(), Uuid::now_v7());
    for (until, reason, code) in [
        (None, "  ", "invalid_reason"),
        (None, &*"x".repeat(REASON_MAX + 1), "invalid_reason"),
        (Some(now() - Duration::seconds(1)), "late", "invalid_until"),
    ] {
        let mut repo = MockModerationRepository::new();
        roles(&mut repo, vec![(admin, ServerRole::Admin)]);
        repo.expect_set_suspension().never();
        let err = service(repo, MockAuditLog::new(), MockUserRepository::new())
            .suspend(&Actor::user(admin, None), member, until, reason)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code);
    }
}

#[tokio::test]
async fn a_suspension_that_ended_no_longer_refuses() {
    let user = Uuid::now_v7();
    for (until, active) in [
        (None, true),
        (Some(now() + Duration::minutes(1)), true),
        (Some(now() - Duration::minutes(1)), false),
    ] {
        let mut repo = MockModerationRepository::new();
        repo.expect_suspension_of().returning(move |_| {
            Ok(Some(Suspension {
                until,
                reason: "r".into(),
                by: None,
                at: now() - Duration::hours(1),
            }))
        });
        let result = service(repo, MockAuditLog::new(), MockUserRepository::new())
            .check_active(user)
            .await;
        assert_eq!(result.is_err(), active, "{until:?}");
        if let Err(e) = result {
            assert_eq!(e.code(), "suspended");
        }
    }
}

#[tokio::test]
async fn the_cli_grants_roles_and_members_cannot() {
    let target = Uuid::now_v7();
    let creds = UserCredentials {
        user: person(target, "alice"),
        password_hash: "h".into(),
    };
    let mut users = MockUserRepository::new();
    users
        .expect_find_credentials()
        .with(eq("alice"))
        .returning(move |_| Ok(Some(creds.clone())));
    let mut repo = MockModerationRepository::new();
    roles(&mut repo, vec![]);
    repo.expect_set_role()
        .with(eq(target), eq(ServerRole::Admin))
        .times(1)
        .returning(|_, _| Ok(()));
    let mut audit = MockAuditLog::new();
    audit
        .expect_append()
        .withf(|e| e.action == "role.admin" && e.actor_id.is_none())
        .times(1)
        .returning(|_| Ok(()));
    let svc = service(repo, audit, users);
    let user = svc
        .grant(&Actor::server(), "Alice", ServerRole::Admin)
        .await
        .unwrap();
    assert_eq!(user.id, target);
    let err = svc
        .grant(
            &Actor::user(Uuid::now_v7(), None),
            "alice",
            ServerRole::Admin,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_staff");
}

#[tokio::test]
async fn only_admins_read_the_audit_log_a_page_at_a_time() {
    let (admin, moderator) = (Uuid::now_v7(), Uuid::now_v7());
    let mut repo = MockModerationRepository::new();
    roles(
        &mut repo,
        vec![
            (admin, ServerRole::Admin),
            (moderator, ServerRole::Moderator),
        ],
    );
    let mut audit = MockAuditLog::new();
    audit
        .expect_page()
        .withf(|q| q.limit == AUDIT_PAGE_MAX)
        .times(1)
        .returning(|_| Ok(vec![]));
    let svc = service(repo, audit, MockUserRepository::new());
    let query = AuditQuery {
        limit: 10_000,
        ..Default::default()
    };
    assert!(
        svc.audit(&Actor::user(admin, None), query.clone())
            .await
            .is_ok()
    );
    let err = svc
        .audit(&Actor::user(moderator, None), query)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_staff");
}

#[tokio::test]
async fn people_report_users_once_and_not_themselves() {
    let (reporter, target) = (Uuid::now_v7(), Uuid::now_v7());
    let mut users = MockUserRepository::new();
    known(&mut users, person(target, "troll"));
    let mut repo = MockModerationRepository::new();
    let mut filed = false;
    repo.expect_insert_report()
        .withf(move |r| r.reporter_id == reporter && r.target == ReportTarget::User(target))
        .times(2)
        .returning(move |_| {
            let first = !filed;
            filed = true;
            Ok(first)
        });
    let svc = service(repo, MockAuditLog::new(), users);
    let report = svc
        .report(reporter, ReportTarget::User(target), "spam")
        .await
        .unwrap();
    assert_eq!(report.resolved, None);
    let again = svc
        .report(reporter, ReportTarget::User(target), "spam")
        .await
        .unwrap_err();
    assert_eq!(again.code(), "already_reported");
    let own = svc
        .report(reporter, ReportTarget::User(reporter), "me")
        .await
        .unwrap_err();
    assert_eq!(own.code(), "own_account");
}

#[tokio::test]
async fn only_staff_resolve_reports_and_only_as_dismissed_or_actioned() {
    let (member, moderator) = (Uuid::now_v7(), Uuid::now_v7());
    let mut repo = MockModerationRepository::new();
    roles(&mut repo, vec![(moderator, ServerRole::Moderator)]);
    repo.expect_resolve_report()
        .times(1)
        .returning(|_, _| Ok(None));
    let svc = service(repo, MockAuditLog::new(), MockUserRepository::new());
    let id = Uuid::now_v7();
    let err = svc
        .resolve_report(&Actor::user(member, None), id, "dismissed", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_staff");
    let err = svc
        .resolve_report(&Actor::user(moderator, None), id, "ignored", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_resolution");
    let err = svc
        .resolve_report(&Actor::user(moderator, None), id, "actioned", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "report_not_found");
}

#[tokio::test]
async fn only_admins_make_invites_within_their_terms_and_each_is_audited() {
    use crate::registration::MockInviteRepository;
    let (admin, moderator) = (Uuid::now_v7(), Uuid::now_v7());
    let mut repo = MockModerationRepository::new();
    roles(
        &mut repo,
        vec![
            (admin, ServerRole::Admin),
            (moderator, ServerRole::Moderator),
        ],
    );
    let mut invites = MockInviteRepository::new();
    invites
        .expect_insert()
        .withf(move |i| {
            i.code.len() == 12
                && i.uses_left == 3
                && i.max_uses == 3
                && i.created_by == Some(admin)
                && i.expires_at == Some(now() + Duration::hours(48))
        })
        .times(1)
        .returning(|_| Ok(()));
    let mut audit = MockAuditLog::new();
    audit
        .expect_append()
        .withf(|e| e.action == "invite.create" && e.target_kind == "invite")
        .times(1)
        .returning(|_| Ok(()));
    let svc = service(repo, audit, MockUserRepository::new()).with_invites(Arc::new(invites));
    let made = svc
        .create_invite(&Actor::user(admin, None), Some(3), Some(48))
        .await
        .unwrap();
    assert_eq!(made.uses_left, 3);
    let err = svc
        .create_invite(&Actor::user(moderator, None), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_staff");
    for (uses, hours) in [(0, 1), (1001, 1), (1, 0), (1, 90 * 24 + 1)] {
        let err = svc
            .create_invite(&Actor::user(admin, None), Some(uses), Some(hours))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_invite_terms", "{uses} {hours}");
    }
}
