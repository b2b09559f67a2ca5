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
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::state::AppState;
use crate::semantic::{self, SemanticError, SemanticModel, SemanticModelUpdate};

use super::error::{ApiError, ApiResult};
use super::etag::json_with_etag;
use super::extract::{AdminUser, Body, CurrentUser};
use super::state::Product;

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

/// 200 with the model, or 304 when the client's copy is current; with the caching headers.
fn with_etag(model: &SemanticModel, request: &HeaderMap) -> Response {
    match serde_json::to_vec(model) {
        Ok(body) => json_with_etag(body, request),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
