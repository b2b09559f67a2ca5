//! `/api/v1/datasources` and `/api/v1/connections`: the database kinds Quarry can ask, saved
//! connections (credentials sealed at rest), their test, masked config, privacy settings,
//! execution mode and cached schema.
//!
//! Members may list and read connections and their schema; everything that changes a connection
//! or touches its config (create, test, config, refresh, privacy, mode, delete) needs an admin.
//! No response and no error message carries a password: configs come back with secrets replaced
//! by `**redacted**`, and connection errors are scrubbed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::state::AppState;
use crate::api::validation::{FieldError, Invalid};
use crate::connections::{
    self, ConfigProblem, ConnectionConfig, ConnectionError, ExecutionMode, PrivacySettings, PrivacyUpdate, SourceType,
    redact_config,
};
use crate::schema::Schema;
use crate::store::connections::{ConnectionRecord, NewConnection};

use super::error::{ApiError, ApiResult};
use super::etag::json_with_etag;
use super::extract::{AdminUser, Body, CurrentUser};
use super::page::{PageParams, Paginated};
use super::state::Product;

/// The datasource and connection routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/datasources", get(datasource_types))
        .route("/connections/test", post(test_unsaved))
        .route("/connections", get(list).post(create))
        .route("/connections/{id}", get(detail).delete(remove))
        .route("/connections/{id}/test", post(test_saved))
        .route("/connections/{id}/config", get(get_config).put(put_config))
        .route("/connections/{id}/schema", get(get_schema))
        .route("/connections/{id}/schema/refresh", post(refresh_schema))
        .route("/connections/{id}/privacy", put(put_privacy))
        .route("/connections/{id}/execution-mode", put(put_execution_mode))
}

/// A saved connection as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionResponse {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `postgresql`, `mysql` or `sqlite`.
    pub source_type: String,
    /// `auto_execute`, `review_first` or `generate_only`.
    pub execution_mode: String,
    /// Always true for what the API returns (deleted connections are gone).
    pub is_active: bool,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// When the cached schema was read (`null`: nothing cached).
    pub schema_refreshed_at: Option<DateTime<Utc>>,
}

impl From<&ConnectionRecord> for ConnectionResponse {
    fn from(r: &ConnectionRecord) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            source_type: r.source_type.clone(),
            execution_mode: r.execution_mode.clone(),
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
            schema_refreshed_at: r.schema_refreshed_at,
        }
    }
}

/// One connection with its privacy settings.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionDetail {
    /// The listed fields.
    #[serde(flatten)]
    pub connection: ConnectionResponse,
    /// Every privacy setting, defaults filled in.
    pub privacy_settings: PrivacySettings,
}

fn detail_of(record: &ConnectionRecord) -> ApiResult<ConnectionDetail> {
    let privacy_settings = PrivacySettings::from_stored(&record.privacy).map_err(ApiError::internal)?;
    Ok(ConnectionDetail { connection: record.into(), privacy_settings })
}

/// `POST /connections` body.
#[derive(Debug, Deserialize)]
struct CreateBody {
    name: String,
    source_type: String,
    config: Value,
    #[serde(default)]
    privacy_settings: Option<Value>,
    #[serde(default)]
    execution_mode: Option<String>,
}

/// `POST /connections/test` body.
#[derive(Debug, Deserialize)]
struct TestBody {
    source_type: String,
    config: Value,
}

/// `PUT /connections/{id}/config` body.
#[derive(Debug, Deserialize)]
struct ConfigBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    config: Option<Value>,
}

/// `PUT /connections/{id}/execution-mode` body.
#[derive(Debug, Deserialize)]
struct ModeBody {
    execution_mode: String,
}

/// `GET /connections/{id}/config` answer.
#[derive(Debug, Serialize)]
struct ConfigView {
    name: String,
    source_type: String,
    config: Map<String, Value>,
}

/// A 422 for one field, with an input that holds no secret.
fn invalid(loc: &[&str], msg: impl Into<String>, input: Value) -> Response {
    let loc = std::iter::once("body").chain(loc.iter().copied()).map(Value::from).collect();
    Invalid(vec![FieldError::new("value_error", loc, msg, input)]).into_response()
}

/// A 422 listing config problems (`["body", "config", field]`), each echoing the field's value
/// with secrets redacted.
fn config_invalid(problems: &[ConfigProblem], given: &Value) -> Response {
    let shown = given.as_object().map(redact_config).unwrap_or_default();
    let errors = problems
        .iter()
        .map(|p| {
            let mut loc: Vec<Value> = vec!["body".into(), "config".into()];
            if !p.field.is_empty() {
                loc.push(p.field.clone().into());
            }
            let input = if p.field.is_empty() {
                Value::Object(shown.clone())
            } else {
                shown.get(&p.field).cloned().unwrap_or(Value::Null)
            };
            FieldError::new("value_error", loc, p.message.clone(), input)
        })
        .collect();
    Invalid(errors).into_response()
}

fn parse_source_type(text: &str) -> Result<SourceType, Response> {
    text.parse::<SourceType>().map_err(|msg| invalid(&["source_type"], msg, Value::from(text)))
}

fn parse_mode(text: &str) -> Result<ExecutionMode, Response> {
    text.parse::<ExecutionMode>().map_err(|msg| invalid(&["execution_mode"], msg, Value::from(text)))
}

/// Check a config for `source_type`, including where a SQLite file may live; problems are reported
/// against `shown` (what the client sent, without stored secrets merged in).
fn check_config(
    product: &Product,
    source_type: SourceType,
    given: &Value,
    shown: &Value,
) -> Result<ConnectionConfig, Response> {
    let config = ConnectionConfig::parse(source_type, given).map_err(|p| config_invalid(&p, shown))?;
    connections::check_sqlite_path(&config, &product.engine.config().settings.data_dir).map_err(|e| match e {
        ConnectionError::InvalidConfig(p) => config_invalid(&p, shown),
        other => ApiError::internal(other).into_response(),
    })?;
    Ok(config)
}

/// The active connection `id`; 404 "Connection not found" otherwise (also for ids that are not UUIDs).
async fn load(product: &Product, id: &str) -> ApiResult<ConnectionRecord> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    product.store.connection(id).await?.ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::not_found("Connection not found")
}

/// The API error for a connection that failed to resolve, test or introspect; `prefix` starts the
/// 400 message. Nothing here carries a secret (the connections module scrubs them).
fn connection_error(e: ConnectionError, prefix: &str) -> ApiError {
    match e {
        ConnectionError::Sealed(e) => {
            tracing::error!("cannot open a stored connection config: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The stored credentials cannot be opened with the current secret key",
            )
        }
        ConnectionError::Stored(why) => ApiError::internal(why),
        other => ApiError::bad_request(format!("{prefix}{other}")),
    }
}

/// Forget the answer cache of `id` after a change that makes its answers stale.
async fn clear_cache(product: &Product, id: &str) -> ApiResult<()> {
    product.cache.clear_connection(id).await?;
    Ok(())
}

async fn datasource_types(State(state): State<Arc<AppState>>, _user: CurrentUser) -> ApiResult<Json<Value>> {
    state.product()?;
    Ok(Json(connections::datasource_types()))
}

async fn test_unsaved(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Body(body): Body<TestBody>,
) -> Result<Json<connections::TestOutcome>, Response> {
    let product = state.product().map_err(IntoResponse::into_response)?;
    let source_type =
        body.source_type.parse::<SourceType>().map_err(|msg| ApiError::bad_request(msg).into_response())?;
    let config = check_config(product, source_type, &body.config, &body.config)?;
    let outcome = connections::test_connection(&config)
        .await
        .map_err(|e| connection_error(e, "Connection failed: ").into_response())?;
    Ok(Json(outcome))
}

async fn create(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Body(body): Body<CreateBody>,
) -> Result<(StatusCode, Json<ConnectionResponse>), Response> {
    let product = state.product().map_err(IntoResponse::into_response)?;
    let name = crate::store::connections::check_name(&body.name).map_err(|e| {
        invalid(&["name"], e.to_string().trim_start_matches("invalid input: "), body.name.clone().into())
    })?;
    let source_type = parse_source_type(&body.source_type)?;
    let mode = match &body.execution_mode {
        Some(m) => parse_mode(m)?,
        None => ExecutionMode::default(),
    };
    let config = check_config(product, source_type, &body.config, &body.config)?;
    let mut settings = PrivacySettings::default();
    if let Some(given) = body.privacy_settings.as_ref().filter(|v| !v.is_null()) {
        let update: PrivacyUpdate = serde_json::from_value(given.clone())
            .map_err(|e| invalid(&["privacy_settings"], e.to_string(), given.clone()))?;
        settings.apply(update, source_type).map_err(|problems| privacy_invalid(&problems, given))?;
    }
    let new = NewConnection {
        name,
        source_type: source_type.as_str().to_string(),
        config_sealed: connections::seal_config(&config, &product.cipher),
        privacy: settings.to_json(),
        execution_mode: mode.as_str().to_string(),
    };
    let record = product
        .store
        .create_connection(new)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .map_err(|_| ApiError::conflict("A connection with this name already exists").into_response())?;
    Ok((StatusCode::CREATED, Json((&record).into())))
}

fn privacy_invalid(problems: &[(String, String)], given: &Value) -> Response {
    let errors = problems
        .iter()
        .map(|(field, msg)| {
            let loc = vec![Value::from("body"), Value::from(field.as_str())];
            FieldError::new("value_error", loc, msg.clone(), given.get(field).cloned().unwrap_or(Value::Null))
        })
        .collect();
    Invalid(errors).into_response()
}

async fn list(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    page: PageParams,
) -> ApiResult<Json<Paginated<ConnectionResponse>>> {
    let product = state.product()?;
    let (records, total) = product.store.list_connections(page.limit, page.offset).await?;
    Ok(Json(Paginated::new(records.iter().map(ConnectionResponse::from).collect(), total, page)))
}

async fn detail(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionDetail>> {
    let product = state.product()?;
    Ok(Json(detail_of(&load(product, &id).await?)?))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    load(product, &id).await?;
    if !product.store.delete_connection(&id).await? {
        return Err(not_found());
    }
    // The connection is gone: its cache entries, miss counter and examples can no longer be
    // reached through it. A failure leaves unreachable rows behind, nothing worse.
    if let Err(e) = product.cache.forget_connection(&id).await {
        tracing::warn!("could not clear the answer cache of deleted connection {id}: {e}");
    }
    if let Err(e) = crate::examples::delete_for_connection(&product.store, &id).await {
        tracing::warn!("could not delete the examples of deleted connection {id}: {e}");
    }
    if let Err(e) = product.store.delete_semantic_model(&id).await {
        tracing::warn!("could not delete the semantic model of deleted connection {id}: {e}");
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn test_saved(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<connections::TestOutcome>> {
    let product = state.product()?;
    let record = load(product, &id).await?;
    let config = connections::open_config(&record, &product.cipher).map_err(|e| connection_error(e, ""))?;
    connections::check_sqlite_path(&config, &product.engine.config().settings.data_dir)
        .map_err(|e| connection_error(e, "Connection failed: "))?;
    let outcome =
        connections::test_connection(&config).await.map_err(|e| connection_error(e, "Connection failed: "))?;
    Ok(Json(outcome))
}

async fn get_config(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ConfigView>> {
    let product = state.product()?;
    let record = load(product, &id).await?;
    let config = connections::open_config(&record, &product.cipher).map_err(|e| connection_error(e, ""))?;
    Ok(Json(ConfigView { name: record.name, source_type: record.source_type, config: config.redacted() }))
}

async fn put_config(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
    Body(body): Body<ConfigBody>,
) -> Result<Json<ConnectionResponse>, Response> {
    let product = state.product().map_err(IntoResponse::into_response)?;
    let record = load(product, &id).await.map_err(IntoResponse::into_response)?;
    let name =
        match &body.name {
            Some(n) => Some(crate::store::connections::check_name(n).map_err(|e| {
                invalid(&["name"], e.to_string().trim_start_matches("invalid input: "), n.clone().into())
            })?),
            None => None,
        };
    let sealed = match &body.config {
        Some(given) => {
            let old = connections::open_config(&record, &product.cipher)
                .map_err(|e| connection_error(e, "").into_response())?;
            let merged = ConnectionConfig::merge_redacted(given, &old).map_err(|p| config_invalid(&p, given))?;
            let source_type = old.source_type();
            let config = check_config(product, source_type, &merged, given)?;
            // An unchanged config keeps the cached schema.
            (config != old).then(|| connections::seal_config(&config, &product.cipher))
        }
        None => None,
    };
    let updated = product
        .store
        .update_connection(&id, name.as_deref().filter(|n| *n != record.name), sealed.as_deref())
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .map_err(|_| ApiError::conflict("A connection with this name already exists").into_response())?
        .ok_or_else(|| not_found().into_response())?;
    if sealed.is_some() {
        clear_cache(product, &id).await.map_err(IntoResponse::into_response)?;
    }
    Ok(Json((&updated).into()))
}

/// The DataSourceSchema JSON of a stored schema.
fn schema_body(source_type: &str, schema: &Value, refreshed_at: DateTime<Utc>) -> Option<Vec<u8>> {
    let source_type: SourceType = source_type.parse().ok()?;
    // A schema stored by another version of Quarry that no longer reads counts as not cached.
    let schema: Schema = serde_json::from_value(schema.clone()).ok()?;
    let body = serde_json::to_vec(&connections::datasource_schema(source_type, &schema, refreshed_at)).ok()?;
    Some(body)
}

async fn get_schema(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let product = state.product()?;
    let record = load(product, &id).await?;
    let no_schema = || ApiError::not_found("No schema cached — run a refresh first");
    let cached = product.store.connection_schema(&id).await?.ok_or_else(no_schema)?;
    let body = schema_body(&record.source_type, &cached.schema, cached.refreshed_at).ok_or_else(no_schema)?;
    Ok(json_with_etag(body, &headers))
}

async fn refresh_schema(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let product = state.product()?;
    let record = load(product, &id).await?;
    let failed = "Schema refresh failed: ";
    let config = connections::open_config(&record, &product.cipher).map_err(|e| connection_error(e, failed))?;
    connections::check_sqlite_path(&config, &product.engine.config().settings.data_dir)
        .map_err(|e| connection_error(e, failed))?;
    let resolved = connections::resolve(&record, &product.cipher).map_err(|e| connection_error(e, failed))?;
    let schema = connections::introspect(&resolved).await.map_err(|e| connection_error(e, failed))?;
    // At the precision the store keeps, so this answer and a later GET are byte-identical.
    let refreshed_at = Utc::now().trunc_subsecs(6);
    let stored = serde_json::to_value(&schema).map_err(ApiError::internal)?;
    if !product.store.store_connection_schema(&id, &stored, &schema.fingerprint, refreshed_at).await? {
        return Err(not_found());
    }
    clear_cache(product, &id).await?;
    let body = schema_body(&record.source_type, &stored, refreshed_at)
        .ok_or_else(|| ApiError::internal("a freshly read schema did not serialize"))?;
    Ok(json_with_etag(body, &headers))
}

async fn put_privacy(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
    Body(given): Body<Value>,
) -> Result<Json<ConnectionDetail>, Response> {
    let product = state.product().map_err(IntoResponse::into_response)?;
    let record = load(product, &id).await.map_err(IntoResponse::into_response)?;
    let update: PrivacyUpdate = serde_json::from_value(given.clone()).map_err(|e| {
        let msg = e.to_string();
        // serde names an unknown field as "unknown field `x`, expected ..."
        let field = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).unwrap_or("");
        let loc: Vec<&str> = if field.is_empty() { vec![] } else { vec![field] };
        invalid(&loc, msg.clone(), if field.is_empty() { given.clone() } else { given[field].clone() })
    })?;
    let source_type: SourceType =
        record.source_type.parse().map_err(|e: String| ApiError::internal(e).into_response())?;
    let mut settings =
        PrivacySettings::from_stored(&record.privacy).map_err(|e| ApiError::internal(e).into_response())?;
    settings.apply(update, source_type).map_err(|problems| privacy_invalid(&problems, &given))?;
    let updated = product
        .store
        .set_connection_privacy(&id, &settings.to_json())
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .ok_or_else(|| not_found().into_response())?;
    clear_cache(product, &id).await.map_err(IntoResponse::into_response)?;
    Ok(Json(detail_of(&updated).map_err(IntoResponse::into_response)?))
}

async fn put_execution_mode(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
    Body(body): Body<ModeBody>,
) -> Result<Json<ConnectionDetail>, Response> {
    let product = state.product().map_err(IntoResponse::into_response)?;
    load(product, &id).await.map_err(IntoResponse::into_response)?;
    let mode = parse_mode(&body.execution_mode)?;
    let updated = product
        .store
        .set_connection_execution_mode(&id, mode.as_str())
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .ok_or_else(|| not_found().into_response())?;
    Ok(Json(detail_of(&updated).map_err(IntoResponse::into_response)?))
}
