//! The FCM adapter against the fake FCM of ieum-test-support, which checks
//! the assertion's RS256 signature and the v1 request shape.

use std::time::Duration;

use ieum_domain::ports::PushGateway;
use ieum_domain::push::{Notification, Platform, PushData, PushOutcome};
use ieum_fcm::{FcmConfig, FcmGateway, ServiceAccount};
use ieum_test_support::fcm::{FakeFcm, Reply};
use uuid::Uuid;

fn gateway(fake: &FakeFcm) -> FcmGateway {
    FcmGateway::new(FcmConfig {
        account: ServiceAccount::from_json(&fake.account_json()).unwrap(),
        endpoint: fake.endpoint(),
        token_uri: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn notification(token: &str, data_only: bool) -> Notification {
    Notification {
        device_id: Uuid::now_v7(),
        token: token.into(),
        platform: Platform::Android,
        data_only,
        collapse_key: format!("dm:{}:{}", Uuid::nil(), Uuid::max()),
        title: "앨리스".into(),
        body: "사랑해 ❤️".into(),
        badge: 4,
        data: PushData {
            room_id: "room-1".into(),
            message_id: Uuid::now_v7(),
            seq: 7,
            kind: "TEXT",
            count: 2,
            sender_id: Uuid::nil(),
        },
    }
}

#[tokio::test]
async fn a_notification_goes_out_signed_and_in_the_v1_shape() {
    let fake = FakeFcm::start();
    let gateway = gateway(&fake);
    assert_eq!(
        gateway.send(&notification("t-1", false)).await,
        PushOutcome::Sent
    );
    assert_eq!(
        gateway.send(&notification("t-2", false)).await,
        PushOutcome::Sent
    );
    let pushes = fake.pushes();
    assert_eq!(pushes.len(), 2, "{:?}", fake.problems());
    let push = &pushes[0];
    assert_eq!(push["notification"]["title"], "앨리스");
    assert_eq!(push["notification"]["body"], "사랑해 ❤️");
    assert_eq!(push["data"]["seq"], "7");
    assert_eq!(push["data"]["badge"], "4");
    assert_eq!(push["apns"]["payload"]["aps"]["badge"], 4);
    assert_eq!(fake.token_requests(), 1, "the access token is kept");
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
}

#[tokio::test]
async fn a_data_only_notification_carries_its_words_in_data() {
    let fake = FakeFcm::start();
    assert_eq!(
        gateway(&fake).send(&notification("t-1", true)).await,
        PushOutcome::Sent
    );
    let push = &fake.pushes()[0];
    assert!(push.get("notification").is_none());
    assert_eq!(push["data"]["title"], "앨리스");
    assert_eq!(push["apns"]["payload"]["aps"]["content-available"], 1);
}

#[tokio::test]
async fn unavailable_answers_retry_after_what_fcm_said() {
    let fake = FakeFcm::start();
    fake.script([Reply::Status(503, Some(2))]);
    let outcome = gateway(&fake).send(&notification("t-1", false)).await;
    assert_eq!(
        outcome,
        PushOutcome::Retry {
            after: Some(Duration::from_secs(2))
        }
    );
}

#[tokio::test]
async fn an_unregistered_token_is_a_bad_token() {
    let fake = FakeFcm::start();
    fake.unregister("gone");
    assert_eq!(
        gateway(&fake).send(&notification("gone", false)).await,
        PushOutcome::BadToken
    );
}

#[tokio::test]
async fn an_unreachable_fcm_is_retried() {
    let fake = FakeFcm::start();
    let mut config = FcmConfig {
        account: ServiceAccount::from_json(&fake.account_json()).unwrap(),
        endpoint: "http://127.0.0.1:9".into(),
        token_uri: None,
        timeout: Duration::from_secs(5),
    };
    config.token_uri = Some("http://127.0.0.1:9/token".into());
    let outcome = FcmGateway::new(config)
        .unwrap()
        .send(&notification("t", false))
        .await;
    assert_eq!(outcome, PushOutcome::Retry { after: None });
}

#[test]
fn a_broken_key_is_refused_at_start() {
    let json = r#"{"project_id":"p","private_key_id":"k","private_key":"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n","client_email":"a@b"}"#;
    assert!(ServiceAccount::from_json(json).is_err());
}
