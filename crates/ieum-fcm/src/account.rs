//! A Google service account's JSON key, as the Firebase console downloads it.

use serde::Deserialize;

/// The fields of the key FCM needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub private_key_id: String,
    /// PEM (PKCS#8).
    pub private_key: String,
    pub client_email: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the service account JSON is not readable: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the service account's private_key is not an RSA key in PEM: {0}")]
    Key(String),
    #[error("the service account JSON has an empty {0}")]
    Empty(&'static str),
}

impl ServiceAccount {
    /// Reads and checks a key: its fields are there and its private key
    /// signs (a broken key fails at start, not at the first push).
    pub fn from_json(json: &str) -> Result<Self, AccountError> {
        let account: Self = serde_json::from_str(json)?;
        for (name, value) in [
            ("project_id", &account.project_id),
            ("client_email", &account.client_email),
            ("private_key", &account.private_key),
        ] {
            if value.trim().is_empty() {
                return Err(AccountError::Empty(name));
            }
        }
        jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| AccountError::Key(e.to_string()))?;
        Ok(account)
    }
}
