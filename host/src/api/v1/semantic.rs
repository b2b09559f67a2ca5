//! `/api/v1` routes: the semantic model of a connection.
//!
//! - `GET /connections/{id}/semantic`: the model, with an ETag (`If-None-Match` → 304); any
//!   signed-in user;
//! - `PUT /connections/{id}/semantic`: a partial update (tables merge per table and column,
//!   other sections are replaced when given); admins;
//! - `DELETE /connections/{id}/semantic`: remove it; admins.
//!
//! A change clears the connection's answer cache: cached SQL was written under the old model.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::api::state::AppState;
use crate::semantic::{self, SemanticError, SemanticModel, SemanticModelUpdate};

use super::error::{ApiError, ApiResult};
use super::extract::{AdminUser, Body, CurrentUser};
use super::state::Product;

/// `Cache-Control` of a semantic model: each user's client may keep it briefly, revalidating.
const CACHE_PRIVATE: &str = "private, max-age=300, must-revalidate";

/// The semantic routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/connections/{id}/semantic", get(get_model).put(put_model).delete(delete_model))
}

async fn get_model(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let product = state.product()?;
    connection_exists(product, &id).await?;
    let model = semantic::load(&product.store, &id)
        .await
        .map_err(semantic_error)?
        .ok_or_else(|| ApiError::not_found("Semantic model not found"))?;
    Ok(with_etag(&model, &headers))
}

async fn put_model(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
    Body(update): Body<SemanticModelUpdate>,
) -> ApiResult<Response> {
    let product = state.product()?;
    connection_exists(product, &id).await?;
    let model = semantic::save_update(&product.store, &id, update).await.map_err(semantic_error)?;
    clear_cache(product, &id).await;
    Ok(with_etag(&model, &HeaderMap::new()))
}

async fn delete_model(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    connection_exists(product, &id).await?;
    if !semantic::delete(&product.store, &id).await.map_err(semantic_error)? {
        return Err(ApiError::not_found("Semantic model not found"));
    }
    clear_cache(product, &id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// 404 unless `id` is an active connection.
async fn connection_exists(product: &Product, id: &str) -> ApiResult<()> {
    match product.store.connection(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("Connection not found")),
    }
}

/// Forget the connection's cached answers; a failure is logged, not fatal (the model is saved).
async fn clear_cache(product: &Product, id: &str) {
    if let Err(e) = product.cache.clear_connection(id).await {
        tracing::warn!(connection = %id, "clearing the answer cache after a semantic model change failed: {e}");
    }
}

fn semantic_error(e: SemanticError) -> ApiError {
    match e {
        SemanticError::Invalid(e) => ApiError::unprocessable(e.to_string()),
        SemanticError::Store(e) => e.into(),
        other => ApiError::internal(other),
    }
}

/// The ETag of a JSON body: the first 32 hex digits of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(body));
    format!("\"{}\"", &digest[..32])
}

/// Whether an `If-None-Match` header names `etag` (quoted or not, weak or strong, in a list,
/// or `*`).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|tag| {
        let tag = tag.trim();
        tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == bare
    })
}

/// 200 with the model, or 304 when the client's copy is current; with the caching headers.
fn with_etag(model: &SemanticModel, request: &HeaderMap) -> Response {
    let body = match serde_json::to_vec(model) {
        Ok(body) => body,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let etag = etag_of(&body);
    let mut response = if matches_etag(request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_PRIVATE));
    headers.insert(VARY, HeaderValue::from_static("Authorization"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_32_hex_digits_and_if_none_match_is_read_loosely() {
        let tag = etag_of(b"{}");
        assert_eq!(tag.len(), 34);
        assert!(tag.trim_matches('"').chars().all(|c| c.is_ascii_hexdigit()));
        let mut h = HeaderMap::new();
        assert!(!matches_etag(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap());
        assert!(matches_etag(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_str(tag.trim_matches('"')).unwrap());
        assert!(matches_etag(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"0000\""));
        assert!(!matches_etag(&h, &tag));
    }
}
