//! `/api/v1` routes: the answer cache's usage and entries.
//!
//! - `GET /chat/cache/stats`: totals over every connection (any signed-in user);
//! - `GET /chat/cache/{connection_id}/entries?limit&offset&search`: a connection's entries, most
//!   hits first (`limit` 1..=100, default 20; 404 for an unknown connection);
//! - `DELETE /chat/cache/{connection_id}`: clear a connection's cache (admins; 204, 404);
//! - `DELETE /chat/cache/entries/{entry_id}`: delete one entry (admins; 204, 404).
//!
//! `stats` and `entries` are static segments, which the router prefers to `{connection_id}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::answer_cache::{CacheEntry, CacheStats};
use crate::api::state::AppState;
use crate::api::validation::{FieldError, Invalid};

use super::error::{ApiError, ApiResult};
use super::extract::{AdminUser, CurrentUser};
use super::page::PageParams;
use super::page::Paginated;
use super::state::Product;

/// Entries per page unless asked otherwise.
pub const DEFAULT_ENTRIES_LIMIT: i64 = 20;
/// Most entries per page.
pub const MAX_ENTRIES_LIMIT: i64 = 100;
/// Longest `search` text, in characters.
pub const MAX_SEARCH_CHARS: usize = 500;

/// The cache routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/chat/cache/stats", get(stats))
        .route("/chat/cache/entries/{entry_id}", delete(delete_entry))
        .route("/chat/cache/{connection_id}/entries", get(entries))
        .route("/chat/cache/{connection_id}", delete(clear_connection))
}

/// A cache entry as listed.
#[derive(Debug, Serialize)]
pub struct EntryResponse {
    /// The entry's id.
    pub id: String,
    /// The question it answers, as first asked.
    pub question_raw: String,
    /// The dialect plugin its SQL is written for.
    pub query_dialect: String,
    /// Times served.
    pub hit_count: i64,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When it was last served.
    pub last_hit_at: Option<DateTime<Utc>>,
}

impl From<CacheEntry> for EntryResponse {
    fn from(e: CacheEntry) -> Self {
        Self {
            id: e.id,
            question_raw: e.question_raw,
            query_dialect: e.dialect,
            hit_count: e.hit_count,
            created_at: e.created_at,
            last_hit_at: e.last_hit_at,
        }
    }
}

/// `?limit&offset&search` of the entries route: `limit` 1..=100 (default 20), `offset` ≥ 0,
/// `search` up to [`MAX_SEARCH_CHARS`] characters. Bad values are a 422 naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntriesQuery {
    /// Entries to return at most.
    pub limit: i64,
    /// Entries to skip.
    pub offset: i64,
    /// Only entries whose question contains this (case-insensitive).
    pub search: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for EntriesQuery {
    type Rejection = Invalid;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut query = EntriesQuery { limit: DEFAULT_ENTRIES_LIMIT, offset: 0, search: None };
        let mut errors = Vec::new();
        let raw = parts.uri.query().unwrap_or("");
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let loc = vec![Value::from("query"), Value::from(key.as_ref())];
            let (slot, min, max) = match key.as_ref() {
                "limit" => (&mut query.limit, 1, MAX_ENTRIES_LIMIT),
                "offset" => (&mut query.offset, 0, i64::MAX),
                "search" => {
                    if value.chars().count() > MAX_SEARCH_CHARS || value.contains('\0') {
                        errors.push(FieldError::new(
                            "string_too_long",
                            loc,
                            format!("String should have at most {MAX_SEARCH_CHARS} characters and no NUL"),
                            Value::Null,
                        ));
                    } else {
                        query.search = Some(value.into_owned());
                    }
                    continue;
                }
                _ => continue,
            };
            match value.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => *slot = n,
                Ok(_) => errors.push(FieldError::new(
                    "value_error",
                    loc,
                    format!("Input should be between {min} and {max}"),
                    Value::from(value.as_ref()),
                )),
                Err(_) => errors.push(FieldError::new(
                    "int_parsing",
                    loc,
                    "Input should be a valid integer, unable to parse string as an integer",
                    Value::from(value.as_ref()),
                )),
            }
        }
        if errors.is_empty() { Ok(query) } else { Err(Invalid(errors)) }
    }
}

/// 404 unless `id` is an active connection.
pub(super) async fn require_connection(
    product: &Product,
    id: &str,
) -> ApiResult<crate::store::connections::ConnectionRecord> {
    product.store.connection(id).await?.ok_or_else(|| ApiError::not_found("Connection not found"))
}

/// `GET /chat/cache/stats`.
async fn stats(State(state): State<Arc<AppState>>, _user: CurrentUser) -> ApiResult<Json<CacheStats>> {
    let product = state.product()?;
    Ok(Json(product.cache.stats().await?))
}

/// `GET /chat/cache/{connection_id}/entries`.
async fn entries(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(connection_id): Path<String>,
    query: EntriesQuery,
) -> ApiResult<Json<Paginated<EntryResponse>>> {
    let product = state.product()?;
    require_connection(product, &connection_id).await?;
    let limit = usize::try_from(query.limit).unwrap_or(0);
    let offset = usize::try_from(query.offset).unwrap_or(0);
    let page = product.cache.entries(&connection_id, limit, offset, query.search.as_deref()).await?;
    let params = PageParams { limit: query.limit, offset: query.offset };
    Ok(Json(Paginated::new(page.items.into_iter().map(EntryResponse::from).collect(), page.total, params)))
}

/// `DELETE /chat/cache/{connection_id}`.
async fn clear_connection(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(connection_id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    require_connection(product, &connection_id).await?;
    product.cache.clear_connection(&connection_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /chat/cache/entries/{entry_id}`.
async fn delete_entry(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(entry_id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    if product.cache.delete_entry(&entry_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Cache entry not found"))
    }
}
