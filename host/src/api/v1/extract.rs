//! Extractors every `/api/v1` route uses: the JSON body ([`Body`], 422 with the field's location
//! when it does not fit, secrets masked; [`OptionalBody`] when a body may be absent), the
//! signed-in user ([`CurrentUser`], 401 without a valid access token) and an admin
//! ([`AdminUser`], 403 for a member).

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::state::AppState;
use crate::api::validation::{FieldError, Invalid, parse_json};
use crate::auth::{Role, User};

use super::error::ApiError;

/// A JSON body deserialized into `T`. Malformed JSON, a missing body and a value that does not
/// fit `T` are a 422 whose `detail` lists the problem and where it is (`["body", "field"]`);
/// a body over the server's size limit is a 413.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let value = parse_json(&bytes).map_err(IntoResponse::into_response)?;
        deserialize_body(value).map(Body).map_err(IntoResponse::into_response)
    }
}

/// An optional JSON body: an empty (or all-whitespace) body is `None`; anything else must fit
/// `T` as for [`Body`] (422 otherwise).
#[derive(Debug, Clone)]
pub struct OptionalBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        let value = parse_json(&bytes).map_err(IntoResponse::into_response)?;
        deserialize_body(value).map(|t| OptionalBody(Some(t))).map_err(IntoResponse::into_response)
    }
}

/// The raw body; a body over the size limit is a 413 in the API's `{"detail"}` shape.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Response> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        let detail = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            "The request body is too large".to_string()
        } else {
            rejection.body_text()
        };
        ApiError::new(status, detail).into_response()
    })
}

/// `value` as a `T`, or a 422 naming where it does not fit. The error echoes only the offending
/// part of the body, with secrets (passwords, tokens, keys) masked, never the whole body.
fn deserialize_body<T: DeserializeOwned>(value: Value) -> Result<T, Invalid> {
    let input = value.clone();
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut loc: Vec<Value> = vec!["body".into()];
        let mut at = Some(&input);
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    loc.push((*index).into());
                    at = at.and_then(|v| v.get(*index));
                }
                serde_path_to_error::Segment::Map { key } => {
                    loc.push(key.clone().into());
                    at = at.and_then(|v| v.get(key));
                }
                serde_path_to_error::Segment::Enum { variant } => loc.push(variant.clone().into()),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let mut offending = at.cloned().unwrap_or(Value::Null);
        let mut msg = e.into_inner().to_string();
        let kind = if let Some(field) = missing_field(&msg) {
            // Like pydantic: the location names the missing field; the input is its object.
            loc.push(field.into());
            "missing"
        } else {
            "value_error"
        };
        let leaf_is_secret = loc.last().and_then(Value::as_str).is_some_and(is_secret_key);
        if leaf_is_secret && kind != "missing" {
            // serde's message may quote the value ("invalid type: string \"...\"").
            msg = "Input is not valid for this field".to_string();
            offending = Value::String("***".into());
        }
        mask_secrets(&mut offending);
        Invalid(vec![FieldError::new(kind, loc, msg, offending)])
    })
}

/// The field named by serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Whether a field of this name holds a secret that must never be echoed.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "api_key", "apikey", "credential"].iter().any(|s| key.contains(s))
}

/// Replace the value of every secret-named field in `value` (at any depth) with `"***"`.
fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    if !v.is_null() {
                        *v = Value::String("***".into());
                    }
                } else {
                    mask_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The user a valid access token belongs to. 401 `Not authenticated` without one.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who.
    pub user: User,
    /// The access token's id (`jti`), for logout.
    pub token_id: String,
}

impl FromRequestParts<Arc<AppState>> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let product = state.product()?;
        let token = bearer_token(parts).ok_or_else(|| ApiError::unauthorized("Not authenticated"))?;
        let (user, token_id) = product.auth.authenticate(&product.store, token).await?;
        Ok(CurrentUser { user, token_id })
    }
}

/// A signed-in admin. 401 without a valid token, 403 for a member.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequestParts<Arc<AppState>> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.user.role == Role::Admin {
            Ok(AdminUser(current))
        } else {
            Err(ApiError::forbidden("This action needs the admin role"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        count: Option<u32>,
    }

    fn error_of(value: Value) -> FieldError {
        let Invalid(mut errors) = deserialize_body::<Login>(value).unwrap_err();
        assert_eq!(errors.len(), 1);
        errors.remove(0)
    }

    #[test]
    fn a_missing_field_is_named_and_secrets_are_masked() {
        let e = error_of(json!({ "password": "Hunter2-Hunter2" }));
        assert_eq!(e.kind, "missing");
        assert_eq!(e.loc, vec![json!("body"), json!("email")]);
        assert_eq!(e.input, json!({ "password": "***" }));
    }

    #[test]
    fn a_wrong_type_echoes_only_that_field() {
        let e = error_of(json!({ "email": "a@b.io", "password": "Hunter2-Hunter2", "count": "x" }));
        assert_eq!(e.loc, vec![json!("body"), json!("count")]);
        assert_eq!(e.input, json!("x"));
        let e = error_of(json!({ "email": "a@b.io", "password": 123456789 }));
        assert_eq!(e.loc, vec![json!("body"), json!("password")]);
        assert_eq!(e.input, json!("***"));
        assert!(!e.msg.contains("123456789"), "{}", e.msg);
    }
}
