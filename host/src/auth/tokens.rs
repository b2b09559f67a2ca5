//! Access tokens: HS256 JWTs with `sub` (user id), `jti` (token id), `iat`, `exp` and
//! `type: "access"`. Verification here covers the token alone (signature, algorithm, expiry,
//! type); the deny-list and the user's state are checked by [`super::Auth::authenticate`].
//!
//! `iat` carries microseconds (a JWT NumericDate may be fractional), so "every token issued
//! before this instant is refused" can tell a token issued just before a sign-out-everywhere
//! from one issued just after, within the same second.

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `type` claim of an access token.
pub const ACCESS_TYPE: &str = "access";

/// Fewest bytes a signing secret may have.
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id.
    pub sub: String,
    /// The token's id, for the deny-list.
    pub jti: String,
    /// Issued at: seconds since the Unix epoch, with microseconds.
    pub iat: f64,
    /// Expires at: whole seconds since the Unix epoch.
    pub exp: i64,
    /// Always [`ACCESS_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

impl AccessClaims {
    /// `iat` in microseconds since the epoch.
    pub fn issued_at_micros(&self) -> i64 {
        (self.iat * 1_000_000.0).round() as i64
    }
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedAccess {
    /// The JWT.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Well-formed and signed by us, but past its `exp`.
    #[error("token expired")]
    Expired,
    /// Anything else: malformed, wrong signature or algorithm, not an access token.
    #[error("invalid token")]
    Invalid,
    /// Signing failed (should not happen with an HMAC key).
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// The HMAC key access tokens are signed and verified with.
pub struct AccessKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl AccessKeys {
    /// Keys from a secret of at least [`MIN_SECRET_BYTES`] bytes (checked by the caller).
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Replicas share a store and (NTP-synced) clocks; an expired token is expired.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    /// Sign an access token for `user_id`, issued `now`, valid for `ttl_secs`.
    pub fn issue(&self, user_id: &str, now: DateTime<Utc>, ttl_secs: u64) -> Result<IssuedAccess, TokenError> {
        let now = now.trunc_subsecs(6);
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
        let exp = now.timestamp().saturating_add(ttl);
        let claims = AccessClaims {
            sub: user_id.to_string(),
            jti: Uuid::new_v4().to_string(),
            iat: now.timestamp_micros() as f64 / 1_000_000.0,
            exp,
            kind: ACCESS_TYPE.to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        let expires_at = Utc.timestamp_opt(exp, 0).single().unwrap_or(now);
        Ok(IssuedAccess { token, jti: claims.jti, expires_at })
    }

    /// The claims of `token` if it is an unexpired access token signed with this key.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        if data.claims.kind != ACCESS_TYPE || data.claims.jti.is_empty() || !data.claims.iat.is_finite() {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    #[test]
    fn issued_token_verifies_with_its_claims() {
        let keys = AccessKeys::new(SECRET);
        let now = Utc::now();
        let issued = keys.issue("user-1", now, 1800).unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.jti, issued.jti);
        assert_eq!(claims.kind, "access");
        assert_eq!(claims.exp, now.timestamp() + 1800);
        assert_eq!(claims.issued_at_micros(), now.trunc_subsecs(6).timestamp_micros());
        assert_eq!(issued.expires_at.timestamp(), claims.exp);
        // Every token gets its own id.
        assert_ne!(keys.issue("user-1", now, 1800).unwrap().jti, issued.jti);
    }

    #[test]
    fn expired_token_is_reported_as_expired() {
        let keys = AccessKeys::new(SECRET);
        let issued = keys.issue("user-1", Utc::now() - Duration::seconds(120), 60).unwrap();
        assert_eq!(keys.verify(&issued.token), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_or_a_tampered_token_is_invalid() {
        let keys = AccessKeys::new(SECRET);
        let other = AccessKeys::new(b"another-secret-of-at-least-32-bytes!!");
        let issued = keys.issue("user-1", Utc::now(), 60).unwrap();
        assert_eq!(other.verify(&issued.token), Err(TokenError::Invalid));
        let mut tampered = issued.token.clone();
        tampered.pop();
        assert_eq!(keys.verify(&tampered), Err(TokenError::Invalid));
        assert_eq!(keys.verify("not.a.jwt"), Err(TokenError::Invalid));
        assert_eq!(keys.verify(""), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_of_another_type_or_algorithm_is_invalid() {
        let keys = AccessKeys::new(SECRET);
        let claims = AccessClaims {
            sub: "user-1".into(),
            jti: "j".into(),
            iat: Utc::now().timestamp() as f64,
            exp: Utc::now().timestamp() + 60,
            kind: "refresh".into(),
        };
        let wrong_type =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(keys.verify(&wrong_type), Err(TokenError::Invalid));
        let access = AccessClaims { kind: "access".into(), ..claims };
        let hs512 =
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &access, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(keys.verify(&hs512), Err(TokenError::Invalid));
        // The same claims under HS256 pass, so the refusals above are about type and algorithm.
        let good =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &access, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(keys.verify(&good).is_ok());
    }

    #[test]
    fn unsigned_token_is_invalid() {
        let keys = AccessKeys::new(SECRET);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let exp = Utc::now().timestamp() + 60;
        let body = b64.encode(format!(r#"{{"sub":"u","jti":"j","iat":1,"exp":{exp},"type":"access"}}"#));
        assert_eq!(keys.verify(&format!("{header}.{body}.")), Err(TokenError::Invalid));
    }
}
