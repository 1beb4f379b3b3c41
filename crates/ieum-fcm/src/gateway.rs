//! The two gateways: FCM HTTP v1, and the log.

use std::time::Duration;

use async_trait::async_trait;
use ieum_domain::ports::PushGateway;
use ieum_domain::push::{Notification, PushOutcome};
use serde::Deserialize;

use crate::account::ServiceAccount;
use crate::message::v1_message;
use crate::oauth::TokenSource;

/// Where and as whom to send.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    pub account: ServiceAccount,
    /// `https://fcm.googleapis.com` unless a test says otherwise.
    pub endpoint: String,
    /// The OAuth2 token endpoint; `None`: the account's `token_uri`.
    pub token_uri: Option<String>,
    /// One request's limit.
    pub timeout: Duration,
}

pub struct FcmGateway {
    http: reqwest::Client,
    tokens: TokenSource,
    send_url: String,
}

impl FcmGateway {
    pub fn new(config: FcmConfig) -> Result<Self, String> {
        // reqwest takes the process's rustls provider; ring is the one the
        // workspace builds. Already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let send_url = format!(
            "{}/v1/projects/{}/messages:send",
            config.endpoint.trim_end_matches('/'),
            config.account.project_id
        );
        Ok(Self {
            http,
            tokens: TokenSource::new(config.account, config.token_uri)?,
            send_url,
        })
    }
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// A refusal FCM gives for good: a token it no longer knows (or never
/// did, or that belongs to another project) removes the device.
fn refusal(status: u16, body: &[u8]) -> PushOutcome {
    let parsed: Option<ErrorAnswer> = serde_json::from_slice(body).ok();
    let Some(ErrorAnswer { error }) = parsed else {
        return PushOutcome::Rejected {
            reason: format!(
                "{status}: {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        };
    };
    let code = error
        .details
        .iter()
        .find_map(|d| d.error_code.clone())
        .unwrap_or_default();
    // A bare 404 (a wrong project id) is no verdict on the token.
    let bad_token = matches!(code.as_str(), "UNREGISTERED" | "SENDER_ID_MISMATCH")
        || (code == "INVALID_ARGUMENT" || error.status == "INVALID_ARGUMENT")
            && error
                .message
                .to_ascii_lowercase()
                .contains("registration token");
    if bad_token {
        PushOutcome::BadToken
    } else {
        PushOutcome::Rejected {
            reason: format!("{status} {code}: {}", error.message),
        }
    }
}

fn third_party(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("THIRD_PARTY_AUTH_ERROR")
}

#[async_trait]
impl PushGateway for FcmGateway {
    async fn send(&self, notification: &Notification) -> PushOutcome {
        let body = v1_message(notification).to_string();
        // A second pass only after a 401: the cached token was revoked.
        for pass in 0..2 {
            let token = match self.tokens.token(&self.http).await {
                Ok(token) => token,
                Err(error) => {
                    tracing::warn!(error = %error, "fcm access token unavailable");
                    return PushOutcome::Retry { after: None };
                }
            };
            let answer = self
                .http
                .post(&self.send_url)
                .bearer_auth(&token)
                .header("content-type", "application/json; charset=utf-8")
                .body(body.clone())
                .send()
                .await;
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::warn!(error = %error, "fcm unreachable");
                    return PushOutcome::Retry { after: None };
                }
            };
            let status = answer.status().as_u16();
            let after = retry_after(answer.headers());
            let body = answer.bytes().await.unwrap_or_default();
            match status {
                200..=299 => return PushOutcome::Sent,
                // THIRD_PARTY_AUTH_ERROR is APNs' or Web Push's refusal,
                // not ours: the access token stands.
                401 if pass == 0 && !third_party(&body) => self.tokens.forget(&token).await,
                429 | 500..=599 => return PushOutcome::Retry { after },
                _ => return refusal(status, &body),
            }
        }
        PushOutcome::Retry { after: None }
    }
}

/// The embedded default: pushes are logged (at info), not sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogGateway;

#[async_trait]
impl PushGateway for LogGateway {
    async fn send(&self, notification: &Notification) -> PushOutcome {
        tracing::info!(
            device = %notification.device_id,
            room = %notification.data.room_id,
            seq = notification.data.seq,
            count = notification.data.count,
            badge = notification.badge,
            title = %notification.title,
            body = %notification.body,
            "push (logged, not sent: no FCM credentials configured)"
        );
        PushOutcome::Sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unregistered_tokens_are_bad_tokens() {
        let body = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(refusal(404, body), PushOutcome::BadToken);
    }

    #[test]
    fn a_bare_not_found_is_no_verdict_on_the_token() {
        let body = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#;
        assert!(matches!(refusal(404, body), PushOutcome::Rejected { .. }));
    }

    #[test]
    fn an_invalid_registration_token_is_a_bad_token() {
        let body = br#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"errorCode":"INVALID_ARGUMENT"}]}}"#;
        assert_eq!(refusal(400, body), PushOutcome::BadToken);
    }

    #[test]
    fn other_invalid_arguments_are_refusals() {
        let body = br#"{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}"#;
        assert!(matches!(refusal(400, body), PushOutcome::Rejected { .. }));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
