//! `/api/v1` routes: LLM provider configurations.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `GET /providers` | any user | saved configs, then one placeholder (`id: null`) per type without one |
//! | `GET /providers/{id}` | any user | one config |
//! | `POST /providers/test` | admin | check unsaved credentials: 200 `{success, message}` even on failure |
//! | `POST /providers/models` | admin | models of unsaved credentials (sorted); 400 unknown type, 502 upstream |
//! | `POST /providers/{provider_type}` | admin | save a config (201) |
//! | `PUT /providers/{id}/config` | admin | partial update; `api_key: ""` removes the key |
//! | `DELETE /providers/{id}` | admin | delete (204) |
//! | `POST /providers/{id}/models` | admin | list models with the saved credentials and remember them |
//! | `POST /providers/{id}/test` | admin | check the saved credentials |
//!
//! No response carries an API key: `has_api_key` says whether one is saved.
//!
//! `embedding_model` is saved like `model` (`null`: the type's default, `"off"`: none);
//! `current_embedding_model` is the one in use, and `offers_embeddings` whether the provider's
//! plugin computes embeddings with it (the answer cache and examples then compare questions by
//! meaning, not only by words).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::api::state::AppState;
use crate::api::validation::{FieldError, Invalid};
use crate::llm::config::effective_embedding_model;
use crate::llm::{ConfigError, Secret};
use crate::providers::{self, CallError, ProviderType, TestOutcome, Unsaved};
use crate::store::providers::{NewProvider, ProviderChange, ProviderRecord};

use super::error::{ApiError, ApiResult};
use super::extract::{AdminUser, Body, CurrentUser};
use super::page::{PageParams, Paginated};
use super::state::Product;

/// Largest `max_tokens` a config may set.
pub const MAX_MAX_TOKENS: i64 = 10_000_000;
/// Longest display name, base URL, model or key accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The providers routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/providers", get(list))
        .route("/providers/test", post(test_unsaved))
        .route("/providers/models", post(models_unsaved))
        .route("/providers/{key}", get(get_one).post(create).delete(delete_one))
        .route("/providers/{id}/config", put(update))
        .route("/providers/{id}/models", post(models_saved))
        .route("/providers/{id}/test", post(test_saved))
}

/// A provider config (or a type's placeholder) as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStatus {
    /// The config's id; `null` for a type without a saved config.
    pub id: Option<String>,
    /// The provider type.
    pub provider_type: String,
    /// The config's name.
    pub display_name: String,
    /// The type's name for people.
    pub provider_display_name: String,
    /// Whether this is a saved config.
    pub is_configured: bool,
    /// Not checked here (see `POST /providers/{id}/test`): always false.
    pub is_healthy: bool,
    /// Whether the config is one of those in use.
    pub is_active: bool,
    /// The model a chat would use: the config's, else the type's default.
    pub current_model: Option<String>,
    /// Models listed the last time they were fetched.
    pub available_models: Vec<String>,
    /// The embedding model as saved: `null` for the type's default, `"off"` for none.
    pub embedding_model: Option<String>,
    /// The embedding model in use: the saved one, else the type's default; `null` for none.
    pub current_embedding_model: Option<String>,
    /// Whether the provider computes embeddings: its plugin exports them and an embedding model
    /// is in use.
    pub offers_embeddings: bool,
    /// The base URL: the config's, else the type's.
    pub base_url: Option<String>,
    /// Whether an API key is saved (the key itself is never shown).
    pub has_api_key: bool,
    /// Default temperature.
    pub temperature: Option<f64>,
    /// Default token bound.
    pub max_tokens: Option<i64>,
    /// When it was saved.
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl ProviderStatus {
    fn saved(record: &ProviderRecord, ty: Option<&ProviderType>) -> Self {
        let current_embedding_model = effective_embedding_model(
            record.embedding_model.as_deref(),
            ty.and_then(|t| t.default_embedding_model.as_deref()),
        );
        Self {
            id: Some(record.id.clone()),
            provider_type: record.provider_type.clone(),
            display_name: record.display_name.clone(),
            provider_display_name: ty.map(|t| t.display_name.clone()).unwrap_or_else(|| record.provider_type.clone()),
            is_configured: true,
            is_healthy: false,
            is_active: record.is_active,
            current_model: record.model.clone().or_else(|| ty.and_then(|t| t.default_model.clone())),
            available_models: record.models_cache.clone(),
            embedding_model: record.embedding_model.clone(),
            offers_embeddings: current_embedding_model.is_some() && ty.is_some_and(|t| t.exports_embeddings),
            current_embedding_model,
            base_url: record.base_url.clone().or_else(|| ty.and_then(|t| t.default_base_url.clone())),
            has_api_key: record.api_key_sealed.is_some(),
            temperature: record.temperature,
            max_tokens: record.max_tokens,
            created_at: Some(record.created_at),
            updated_at: Some(record.updated_at),
        }
    }

    fn placeholder(ty: &ProviderType) -> Self {
        Self {
            id: None,
            provider_type: ty.name.clone(),
            display_name: ty.display_name.clone(),
            provider_display_name: ty.display_name.clone(),
            is_configured: false,
            is_healthy: false,
            is_active: false,
            current_model: ty.default_model.clone(),
            available_models: Vec::new(),
            embedding_model: None,
            current_embedding_model: ty.default_embedding_model.clone(),
            offers_embeddings: ty.exports_embeddings && ty.default_embedding_model.is_some(),
            base_url: ty.default_base_url.clone(),
            has_api_key: false,
            temperature: None,
            max_tokens: None,
            created_at: None,
            updated_at: None,
        }
    }
}

/// `absent` → `None`; `null` → `Some(None)`; a value → `Some(Some(v))`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The body of `POST /providers/{type}` and `PUT /providers/{id}/config`: every field optional;
/// `null` clears an optional one; `api_key: ""` (or `null`) removes the saved key.
#[derive(Default, Deserialize)]
pub struct ConfigBody {
    /// A name for people (default: the type's).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The API key.
    #[serde(default, deserialize_with = "nullable")]
    pub api_key: Option<Option<String>>,
    /// The base URL.
    #[serde(default, deserialize_with = "nullable")]
    pub base_url: Option<Option<String>>,
    /// The model.
    #[serde(default, deserialize_with = "nullable")]
    pub model: Option<Option<String>>,
    /// The embedding model (`"off"`: none, not even the type's default).
    #[serde(default, deserialize_with = "nullable")]
    pub embedding_model: Option<Option<String>>,
    /// Temperature, 0–2.
    #[serde(default, deserialize_with = "nullable")]
    pub temperature: Option<Option<f64>>,
    /// Token bound, ≥ 1.
    #[serde(default, deserialize_with = "nullable")]
    pub max_tokens: Option<Option<i64>>,
    /// Whether it is in use.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// The body of `POST /providers/test` and `POST /providers/models`.
#[derive(Deserialize)]
pub struct UnsavedBody {
    /// The provider type.
    pub provider_type: String,
    /// The API key (blank: the operator's, for a preset's own URL).
    #[serde(default)]
    pub api_key: Option<String>,
    /// The model (test only).
    #[serde(default)]
    pub model: Option<String>,
    /// The base URL.
    #[serde(default)]
    pub base_url: Option<String>,
}

impl std::fmt::Debug for UnsavedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsavedBody")
            .field("provider_type", &self.provider_type)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ConfigBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBody").field("display_name", &self.display_name).finish_non_exhaustive()
    }
}

async fn list(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    page: PageParams,
) -> ApiResult<Json<Paginated<ProviderStatus>>> {
    let product = state.product()?;
    let types = providers::provider_types(product.engine.registry());
    let records = product.store.providers().await?;
    let mut all: Vec<ProviderStatus> =
        records.iter().map(|r| ProviderStatus::saved(r, types.iter().find(|t| t.name == r.provider_type))).collect();
    for ty in &types {
        if !records.iter().any(|r| r.provider_type == ty.name) {
            all.push(ProviderStatus::placeholder(ty));
        }
    }
    let total = all.len() as i64;
    let items = all.into_iter().skip(page.offset.max(0) as usize).take(page.limit.max(0) as usize).collect();
    Ok(Json(Paginated::new(items, total, page)))
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ProviderStatus>> {
    let product = state.product()?;
    let record = saved(product, &id).await?;
    Ok(Json(status(product, &record)))
}

async fn create(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(provider_type): Path<String>,
    Body(body): Body<ConfigBody>,
) -> Result<(StatusCode, Json<ProviderStatus>), Refusal> {
    let product = state.product()?;
    let ty = known_type(product, &provider_type)?;
    check_body(&body)?;
    let api_key = body.api_key.flatten().filter(|k| !k.is_empty());
    let new = NewProvider {
        provider_type: ty.name.clone(),
        display_name: body
            .display_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ty.display_name.clone()),
        base_url: body.base_url.flatten().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()),
        model: body.model.flatten().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()),
        embedding_model: body.embedding_model.flatten().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()),
        temperature: body.temperature.flatten(),
        max_tokens: body.max_tokens.flatten(),
        api_key_sealed: api_key.as_deref().map(|k| product.cipher.seal_str(k)),
        is_active: body.is_active.unwrap_or(false),
    };
    check_usable(&new.provider_type, new.base_url.as_deref())?;
    let record = product.store.insert_provider(new).await?;
    Ok((StatusCode::CREATED, Json(ProviderStatus::saved(&record, Some(&ty)))))
}

async fn update(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
    Body(body): Body<ConfigBody>,
) -> Result<Json<ProviderStatus>, Refusal> {
    let product = state.product()?;
    check_body(&body)?;
    let current = saved(product, &id).await?;
    let trimmed = |v: Option<Option<String>>| v.map(|o| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
    let change = ProviderChange {
        display_name: body.display_name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        base_url: trimmed(body.base_url),
        model: trimmed(body.model),
        embedding_model: trimmed(body.embedding_model),
        temperature: body.temperature,
        max_tokens: body.max_tokens,
        api_key_sealed: body.api_key.map(|k| k.filter(|k| !k.is_empty()).map(|k| product.cipher.seal_str(&k))),
        is_active: body.is_active,
    };
    let base_url = match &change.base_url {
        Some(new) => new.clone(),
        None => current.base_url.clone(),
    };
    check_usable(&current.provider_type, base_url.as_deref())?;
    let record = product.store.update_provider(&id, change).await?.ok_or_else(not_found)?;
    Ok(Json(status(product, &record)))
}

async fn delete_one(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    if product.store.delete_provider(&id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(not_found()) }
}

async fn test_unsaved(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Body(body): Body<UnsavedBody>,
) -> ApiResult<Json<TestOutcome>> {
    let product = state.product()?;
    let unsaved = unsaved_of(product, body)?;
    Ok(Json(providers::test(product.engine.registry(), unsaved.spec()).await))
}

async fn models_unsaved(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Body(body): Body<UnsavedBody>,
) -> ApiResult<Json<Vec<String>>> {
    let product = state.product()?;
    let unsaved = unsaved_of(product, body)?;
    let models = providers::list_models(product.engine.registry(), unsaved.spec()).await.map_err(call_error)?;
    Ok(Json(models))
}

async fn models_saved(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    let product = state.product()?;
    let record = saved(product, &id).await?;
    let unsaved = opened(product, &record)?;
    let models = providers::list_models(product.engine.registry(), unsaved.spec()).await.map_err(call_error)?;
    if !product.store.set_provider_models(&id, &models).await? {
        return Err(not_found());
    }
    Ok(Json(models))
}

async fn test_saved(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TestOutcome>> {
    let product = state.product()?;
    let record = saved(product, &id).await?;
    let unsaved = opened(product, &record)?;
    Ok(Json(providers::test(product.engine.registry(), unsaved.spec()).await))
}

fn not_found() -> ApiError {
    ApiError::not_found("Provider config not found")
}

async fn saved(product: &Product, id: &str) -> ApiResult<ProviderRecord> {
    product.store.provider(id).await?.ok_or_else(not_found)
}

fn status(product: &Product, record: &ProviderRecord) -> ProviderStatus {
    let ty = providers::provider_type(product.engine.registry(), &record.provider_type);
    ProviderStatus::saved(record, ty.as_ref())
}

fn known_type(product: &Product, name: &str) -> ApiResult<ProviderType> {
    providers::provider_type(product.engine.registry(), name).ok_or_else(|| {
        let known: Vec<String> =
            providers::provider_types(product.engine.registry()).into_iter().map(|t| t.name).collect();
        ApiError::bad_request(format!("Unknown provider type {name:?}; known types: {}", known.join(", ")))
    })
}

fn unsaved_of(product: &Product, body: UnsavedBody) -> ApiResult<Unsaved> {
    let ty = known_type(product, &body.provider_type)?;
    Ok(Unsaved {
        provider_type: ty.name,
        base_url: body.base_url,
        model: body.model,
        api_key: body.api_key.map(Secret::new),
        ..Unsaved::default()
    })
}

/// The saved config with its key opened; a key sealed under another secret key is a 400 that
/// says to save the key again.
fn opened(product: &Product, record: &ProviderRecord) -> ApiResult<Unsaved> {
    Unsaved::from_record(record, &product.cipher).map_err(|e| {
        tracing::warn!(provider = %record.id, "the saved API key cannot be opened: {e}");
        ApiError::bad_request("The saved API key cannot be opened (was the secret key changed?); save the key again")
    })
}

fn call_error(e: CallError) -> ApiError {
    match e {
        CallError::Config(m) => ApiError::bad_request(m),
        CallError::Upstream(m) => ApiError::bad_gateway(m),
    }
}

/// Ranges and sizes: 422 naming each field.
fn check_body(body: &ConfigBody) -> Result<(), Invalid> {
    let mut errors = Vec::new();
    let mut problem = |field: &str, msg: String, input: Value| {
        errors.push(FieldError::new("value_error", vec!["body".into(), field.into()], msg, input));
    };
    if let Some(Some(t)) = body.temperature
        && !(0.0..=2.0).contains(&t)
    {
        problem("temperature", "Input should be between 0 and 2".into(), Value::from(t));
    }
    if let Some(Some(n)) = body.max_tokens
        && !(1..=MAX_MAX_TOKENS).contains(&n)
    {
        problem("max_tokens", format!("Input should be between 1 and {MAX_MAX_TOKENS}"), Value::from(n));
    }
    let texts = [
        ("display_name", body.display_name.as_ref()),
        ("base_url", body.base_url.as_ref().and_then(Option::as_ref)),
        ("model", body.model.as_ref().and_then(Option::as_ref)),
        ("embedding_model", body.embedding_model.as_ref().and_then(Option::as_ref)),
        ("api_key", body.api_key.as_ref().and_then(Option::as_ref)),
    ];
    for (field, text) in texts {
        let Some(text) = text else { continue };
        // The key's own value is never echoed back.
        let input = if field == "api_key" { Value::Null } else { Value::from(text.as_str()) };
        if text.chars().count() > MAX_TEXT_CHARS {
            problem(field, format!("Input should have at most {MAX_TEXT_CHARS} characters"), input);
        } else if text.chars().any(char::is_control) {
            problem(field, "Input should not contain control characters".into(), input);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Invalid(errors)) }
}

/// A config must name a usable base URL (its own or its type's): 422 otherwise.
fn check_usable(provider_type: &str, base_url: Option<&str>) -> ApiResult<()> {
    let spec = Unsaved {
        provider_type: provider_type.to_string(),
        base_url: base_url.map(str::to_string),
        ..Unsaved::default()
    }
    .spec();
    match spec.resolve() {
        Ok(_) => Ok(()),
        Err(ConfigError::MissingBaseUrl { .. }) => {
            Err(ApiError::unprocessable(format!("Provider type {provider_type:?} needs a base_url")))
        }
        Err(ConfigError::BadValue { reason, .. }) => Err(ApiError::unprocessable(format!("base_url: {reason}"))),
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    }
}

/// A refusal: `{"detail": "..."}`, or the field list of a 422.
#[derive(Debug)]
enum Refusal {
    Api(ApiError),
    Fields(Invalid),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<Invalid> for Refusal {
    fn from(e: Invalid) -> Self {
        Refusal::Fields(e)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Api(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Fields(e) => e.into_response(),
        }
    }
}
