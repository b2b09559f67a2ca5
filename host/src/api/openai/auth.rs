//! Bearer-key check for every `/v1` route: the keys are `OPENAI_API_KEY`'s comma-separated
//! list; with none configured, everyone is let in. Keys are compared in constant time (their
//! SHA-256 digests, so not even the length leaks), and every configured key is always compared.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::OpenAiError;
use crate::api::state::AppState;

/// Middleware: refuse the request with 401 unless it carries an accepted key.
pub async fn require_api_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, OpenAiError> {
    if authorized(&state.settings.api_keys, request.headers()) {
        Ok(next.run(request).await)
    } else {
        Err(OpenAiError::InvalidApiKey)
    }
}

/// Whether `headers` carry `Authorization: Bearer <one of keys>`; always true without keys.
pub fn authorized(keys: &[String], headers: &HeaderMap) -> bool {
    if keys.is_empty() {
        return true;
    }
    let Some(presented) = bearer_token(headers) else {
        return false;
    };
    let presented = Sha256::digest(presented.as_bytes());
    keys.iter()
        .fold(subtle::Choice::from(0), |found, key| {
            found
                | Sha256::digest(key.as_bytes())
                    .as_slice()
                    .ct_eq(presented.as_slice())
        })
        .into()
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn checks_bearer_keys() {
        let keys = vec!["k1".to_string(), "k2".to_string()];
        assert!(authorized(&keys, &with_auth("Bearer k2")));
        assert!(authorized(&keys, &with_auth("bearer  k1 ")));
        assert!(!authorized(&keys, &with_auth("Bearer k3")));
        assert!(!authorized(&keys, &with_auth("Basic k1")));
        assert!(!authorized(&keys, &HeaderMap::new()));
        assert!(
            authorized(&[], &HeaderMap::new()),
            "no keys configured: no auth"
        );
    }
}
