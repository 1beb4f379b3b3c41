use chrono::{DateTime, TimeZone, Utc};
use ieum_domain::ports::{AccessClaims, RefreshClaims, TokenCodec};
use ieum_domain::{DomainError, DomainResult};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// HS256 secrets shorter than this are refused in production.
pub const MIN_SECRET_BYTES: usize = 32;

/// Substrings that mark a secret as a development placeholder. A production
/// server refuses to start with one.
pub const DEV_SECRET_MARKERS: &[&str] =
    &["dev", "change-me", "changeme", "secret", "example", "test"];

/// True when the secret is too short or looks like a placeholder.
pub fn is_development_secret(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    secret.len() < MIN_SECRET_BYTES || DEV_SECRET_MARKERS.iter().any(|m| lower.contains(m))
}

const ISSUER: &str = "ieum";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iss: String,
    iat: i64,
    exp: i64,
    /// "access" or "refresh": a refresh token is never accepted as an access token.
    typ: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fam: Option<Uuid>,
}

/// HS256 token codec. Expiry is checked against the domain's clock, not inside
/// jsonwebtoken, so that tests can move time.
pub struct JwtCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtCodec {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    fn sign(&self, claims: &Claims) -> DomainResult<String> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| DomainError::Internal(format!("token signing failed: {e}")))
    }

    fn read(&self, token: &str, typ: &str, now: DateTime<Utc>) -> DomainResult<Claims> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| DomainError::unauthenticated("token_invalid", "token is invalid"))?
            .claims;
        if claims.typ != typ {
            return Err(DomainError::unauthenticated(
                "token_invalid",
                format!("not an {typ} token"),
            ));
        }
        if claims.exp <= now.timestamp() {
            return Err(DomainError::unauthenticated(
                "token_expired",
                "token has expired",
            ));
        }
        Ok(claims)
    }
}

fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

impl TokenCodec for JwtCodec {
    fn encode_access(&self, c: &AccessClaims, issued_at: DateTime<Utc>) -> DomainResult<String> {
        self.sign(&Claims {
            sub: c.user_id,
            iss: ISSUER.into(),
            iat: issued_at.timestamp(),
            exp: c.expires_at.timestamp(),
            typ: "access".into(),
            name: Some(c.username.clone()),
            jti: None,
            fam: c.family_id,
        })
    }

    fn encode_refresh(&self, c: &RefreshClaims, issued_at: DateTime<Utc>) -> DomainResult<String> {
        self.sign(&Claims {
            sub: c.user_id,
            iss: ISSUER.into(),
            iat: issued_at.timestamp(),
            exp: c.expires_at.timestamp(),
            typ: "refresh".into(),
            name: None,
            jti: Some(c.token_id),
            fam: Some(c.family_id),
        })
    }

    fn decode_access(&self, token: &str, now: DateTime<Utc>) -> DomainResult<AccessClaims> {
        let c = self.read(token, "access", now)?;
        Ok(AccessClaims {
            user_id: c.sub,
            username: c.name.unwrap_or_default(),
            expires_at: ts(c.exp),
            family_id: c.fam,
        })
    }

    fn decode_refresh(&self, token: &str, now: DateTime<Utc>) -> DomainResult<RefreshClaims> {
        let c = self.read(token, "refresh", now)?;
        match (c.jti, c.fam) {
            (Some(token_id), Some(family_id)) => Ok(RefreshClaims {
                token_id,
                family_id,
                user_id: c.sub,
                expires_at: ts(c.exp),
            }),
            _ => Err(DomainError::unauthenticated(
                "token_invalid",
                "refresh token lacks its id",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-unit";

    fn access(now: DateTime<Utc>) -> AccessClaims {
        AccessClaims {
            user_id: Uuid::from_u128(42),
            username: "alice".into(),
            expires_at: now + Duration::minutes(15),
            family_id: Some(Uuid::from_u128(7)),
        }
    }

    /// A missing crypto backend only fails at run time: sign and verify for real.
    #[test]
    fn signs_and_verifies_with_the_crypto_backend() {
        let codec = JwtCodec::new(SECRET);
        let now = Utc::now();
        let token = codec.encode_access(&access(now), now).unwrap();
        assert_eq!(token.split('.').count(), 3);
        let back = codec.decode_access(&token, now).unwrap();
        assert_eq!(back.user_id, Uuid::from_u128(42));
        assert_eq!(back.username, "alice");
        assert_eq!(back.family_id, Some(Uuid::from_u128(7)));
    }

    #[test]
    fn rejects_expired_foreign_and_wrong_kind() {
        let codec = JwtCodec::new(SECRET);
        let now = Utc::now();
        let token = codec.encode_access(&access(now), now).unwrap();
        let err = codec
            .decode_access(&token, now + Duration::minutes(16))
            .unwrap_err();
        assert_eq!(err.code(), "token_expired");

        let other = JwtCodec::new(b"another-secret-another-secret-another");
        assert_eq!(
            other.decode_access(&token, now).unwrap_err().code(),
            "token_invalid"
        );

        let refresh = codec
            .encode_refresh(
                &RefreshClaims {
                    token_id: Uuid::from_u128(1),
                    family_id: Uuid::from_u128(2),
                    user_id: Uuid::from_u128(42),
                    expires_at: now + Duration::days(1),
                },
                now,
            )
            .unwrap();
        assert!(codec.decode_access(&refresh, now).is_err());
        assert!(codec.decode_refresh(&token, now).is_err());
        let r = codec.decode_refresh(&refresh, now).unwrap();
        assert_eq!(
            (r.token_id, r.family_id),
            (Uuid::from_u128(1), Uuid::from_u128(2))
        );
        assert!(codec.decode_access("garbage", now).is_err());
    }

    #[test]
    fn development_secrets_are_recognised() {
        assert!(is_development_secret("short"));
        assert!(is_development_secret(
            "dev-secret-dev-secret-dev-secret-dev"
        ));
        assert!(is_development_secret(
            "please-change-me-before-production-xx"
        ));
        assert!(!is_development_secret(
            "k3Jq9vX2pL8mN4rT7wY1zA5bC6dE0fGhIjKlMnOp"
        ));
    }
}
