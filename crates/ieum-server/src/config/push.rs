//! Push settings: the FCM adapter's, read and checked at start, and the
//! outbox's timing, each bounded.

use std::path::PathBuf;

use super::ConfigError;

/// The FCM adapter's settings, when a service account key is given (a
/// file or inline, not both). The key is read and checked now: a broken one
/// stops the start, not the first push.
pub(super) fn fcm(
    file: Option<PathBuf>,
    inline: Option<String>,
    endpoint: Option<String>,
    token_uri: Option<String>,
) -> Result<Option<ieum_fcm::FcmConfig>, ConfigError> {
    let json = match (file, inline.filter(|j| !j.trim().is_empty())) {
        (Some(_), Some(_)) => {
            return Err(ConfigError(
                "set IEUM_FCM_CREDENTIALS_FILE or IEUM_FCM_CREDENTIALS, not both".into(),
            ));
        }
        (Some(path), None) => std::fs::read_to_string(&path).map_err(|e| {
            ConfigError(format!("IEUM_FCM_CREDENTIALS_FILE {}: {e}", path.display()))
        })?,
        (None, Some(json)) => json,
        (None, None) => return Ok(None),
    };
    let account = ieum_fcm::ServiceAccount::from_json(&json)
        .map_err(|e| ConfigError(format!("FCM credentials: {e}")))?;
    Ok(Some(ieum_fcm::FcmConfig {
        account,
        endpoint: endpoint
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "https://fcm.googleapis.com".to_owned()),
        token_uri: token_uri.filter(|t| !t.is_empty()),
        timeout: std::time::Duration::from_secs(10),
    }))
}

pub(super) fn push_policy(
    grace_ms: Option<u64>,
    coalesce_secs: Option<u64>,
    lease_secs: Option<u64>,
    max_attempts: Option<u32>,
    retry_max_secs: Option<u64>,
    poll_ms: Option<u64>,
) -> Result<ieum_domain::push::PushPolicy, ConfigError> {
    use std::time::Duration;
    let defaults = ieum_domain::push::PushPolicy::default();
    let within = |name: &str, value: u64, max: u64| {
        if value == 0 || value > max {
            Err(ConfigError(format!("{name} must be 1 to {max}")))
        } else {
            Ok(value)
        }
    };
    Ok(ieum_domain::push::PushPolicy {
        grace: grace_ms.map_or(Ok(defaults.grace), |ms| {
            within("push_grace_ms", ms, 3_600_000).map(Duration::from_millis)
        })?,
        coalesce: coalesce_secs.map_or(Ok(defaults.coalesce), |secs| {
            within("push_coalesce_secs", secs, 86_400).map(Duration::from_secs)
        })?,
        lease: lease_secs.map_or(Ok(defaults.lease), |secs| {
            within("push_lease_secs", secs, 3_600).map(Duration::from_secs)
        })?,
        max_attempts: max_attempts.map_or(Ok(defaults.max_attempts), |n| {
            within("push_max_attempts", u64::from(n), 100).map(|n| n as u32)
        })?,
        retry_max: retry_max_secs.map_or(Ok(defaults.retry_max), |secs| {
            within("push_retry_max_secs", secs, 86_400).map(Duration::from_secs)
        })?,
        poll: poll_ms.map_or(Ok(defaults.poll), |ms| {
            within("push_poll_ms", ms, 60_000).map(Duration::from_millis)
        })?,
        ..defaults
    })
}
