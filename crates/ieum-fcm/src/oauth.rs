//! The access token: the OAuth2 JWT-bearer grant with the service account's
//! key, cached until a minute before it expires. One refresh at a time: the
//! workers' parallel sends wait for it instead of each asking Google.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::account::ServiceAccount;

/// What the token may do: send FCM messages, nothing else.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const TOKEN_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long an assertion asks for (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A token this close to its expiry is refreshed first.
const EARLY: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    3600
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("signing the assertion: {0}")]
    Sign(String),
    #[error("the token endpoint: {0}")]
    Http(String),
    #[error("the token endpoint answered {status}: {body}")]
    Refused { status: u16, body: String },
}

pub(crate) struct TokenSource {
    account: ServiceAccount,
    key: jsonwebtoken::EncodingKey,
    token_uri: String,
    cached: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    token: Option<(String, Instant)>,
    /// After a failed refresh, callers fail at once until then instead of
    /// each waiting for the token endpoint in turn.
    failed_until: Option<Instant>,
}

/// How long a failed refresh answers for the next callers.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

impl TokenSource {
    pub(crate) fn new(account: ServiceAccount, token_uri: Option<String>) -> Result<Self, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| e.to_string())?;
        let token_uri = token_uri.unwrap_or_else(|| account.token_uri.clone());
        Ok(Self {
            account,
            key,
            token_uri,
            cached: Mutex::new(Cached::default()),
        })
    }

    fn assertion(&self) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.account.private_key_id.clone());
        let claims = Claims {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// A token good for at least another minute.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some((token, until)) = cached.token.as_ref()
            && now + EARLY < *until
        {
            return Ok(token.clone());
        }
        if cached.failed_until.is_some_and(|until| now < until) {
            return Err(TokenError::Http(
                "the token endpoint failed moments ago".into(),
            ));
        }
        let fetched = self.fetch(http).await;
        match &fetched {
            Ok((token, until)) => {
                cached.token = Some((token.clone(), *until));
                cached.failed_until = None;
            }
            Err(_) => cached.failed_until = Some(now + FAILURE_MEMORY),
        }
        fetched.map(|(token, _)| token)
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(String, Instant), TokenError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", TOKEN_GRANT)
            .append_pair("assertion", &self.assertion()?)
            .finish();
        let answer = http
            .post(&self.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| TokenError::Http(e.to_string()))?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|e| TokenError::Http(e.to_string()))?;
        if !status.is_success() {
            return Err(TokenError::Refused {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| TokenError::Http(e.to_string()))?;
        let until = Instant::now() + Duration::from_secs(answer.expires_in);
        tracing::debug!(expires_in = answer.expires_in, "fcm access token refreshed");
        Ok((answer.access_token, until))
    }

    /// The service refused `token`: the next send asks for a new one
    /// (unless another caller already has).
    pub(crate) async fn forget(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.token.as_ref().is_some_and(|(held, _)| held == token) {
            cached.token = None;
        }
    }
}
