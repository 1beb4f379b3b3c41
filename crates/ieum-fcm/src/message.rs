//! The FCM HTTP v1 message for one notification. `data` values are strings
//! (FCM refuses anything else). A room's pushes collapse into one on the
//! device: Android's `collapse_key` and notification `tag`, APNs'
//! `apns-collapse-id` (at most 64 bytes, so a hash of the room id).

use ieum_domain::push::Notification;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

fn apns_collapse_id(room_id: &str) -> String {
    let digest = Sha256::digest(room_id.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The request body of `messages:send` for `notification`.
pub fn v1_message(notification: &Notification) -> Value {
    let n = notification;
    let mut data = Map::new();
    for (key, value) in [
        ("roomId", n.data.room_id.clone()),
        ("messageId", n.data.message_id.to_string()),
        ("seq", n.data.seq.to_string()),
        ("type", n.data.kind.to_owned()),
        ("count", n.data.count.to_string()),
        ("senderId", n.data.sender_id.to_string()),
        ("badge", n.badge.to_string()),
    ] {
        data.insert(key.into(), Value::String(value));
    }
    let collapse = apns_collapse_id(&n.collapse_key);
    let mut message = json!({
        "token": n.token,
        "data": data,
        "android": {
            "collapse_key": n.collapse_key,
            "priority": "HIGH",
        },
        "apns": {
            "headers": {"apns-collapse-id": collapse, "apns-priority": "10"},
            "payload": {"aps": {"badge": n.badge, "thread-id": collapse}},
        },
        "webpush": {"headers": {"Urgency": "high"}},
    });
    if n.data_only {
        // The app draws the notification: it gets the words in `data`, and
        // iOS wakes it silently (a background push must not be priority 10).
        message["data"]["title"] = Value::String(n.title.clone());
        message["data"]["body"] = Value::String(n.body.clone());
        message["apns"]["headers"]["apns-priority"] = json!("5");
        message["apns"]["payload"]["aps"] = json!({"content-available": 1});
    } else {
        message["notification"] = json!({"title": n.title, "body": n.body});
        message["android"]["notification"] = json!({
            "tag": n.collapse_key,
            "notification_count": n.badge,
        });
    }
    json!({ "message": message })
}
