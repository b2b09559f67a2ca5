//! `/api/v1` routes: verified examples (question → SQL pairs used as few-shot).
//!
//! - `GET /chat/examples/{connection_id}?limit&offset`: a connection's examples, oldest first;
//! - `POST /chat/examples/{connection_id}` `{question, query}`: add one (201). The SQL is checked
//!   by the connection's dialect plugin first: unsafe or unparsable SQL is a 422 listing the
//!   violations. Similar cache entries are evicted so the next ask uses the new example.
//! - `PUT /chat/examples/{example_id}` `{question?, query?}`: edit (SQL re-checked);
//! - `DELETE /chat/examples/{example_id}`: delete (admins; 204).
//!
//! When the preferred provider offers embeddings, an added or re-worded example is stored with
//! its question's vector (the chat ranks examples by it); when it does not, or the call fails,
//! the example is stored without one and ranked by its words.
//!
//! Any signed-in user reads, adds and edits (members "add examples and feedback"); deleting is
//! for admins. The four share one path pattern, `/chat/examples/{id}`: the router cannot hold
//! the same pattern twice under different parameter names.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::state::AppState;
use crate::api::validation::{FieldError, Invalid};
use crate::examples::{self, MAX_QUESTION_CHARS, SqlCheckError};
use crate::plugins::dialect::MAX_SQL_BYTES;
use crate::store::examples::{ExampleChange, ExampleRecord, ExampleUpdate};

use super::cache::require_connection;
use super::chat::context::question_vectors_for;
use super::error::ApiError;
use super::extract::{AdminUser, Body, CurrentUser};
use super::page::{PageParams, Paginated};
use super::state::Product;

/// The examples routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/chat/examples/{id}", get(list).post(create).put(update).delete(remove))
}

/// An example as the API shows it.
#[derive(Debug, Serialize)]
pub struct ExampleResponse {
    /// The example's id.
    pub id: String,
    /// The connection it belongs to.
    pub connection_id: String,
    /// The question.
    pub question: String,
    /// The SQL that answers it.
    pub query: String,
    /// The dialect plugin the SQL is written for.
    pub query_dialect: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<ExampleRecord> for ExampleResponse {
    fn from(r: ExampleRecord) -> Self {
        Self {
            id: r.id,
            connection_id: r.connection_id,
            question: r.question,
            query: r.sql,
            query_dialect: r.dialect,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `POST` body.
#[derive(Debug, Deserialize)]
pub struct NewExampleBody {
    /// The question.
    pub question: String,
    /// The SQL.
    pub query: String,
}

/// `PUT` body: what to change.
#[derive(Debug, Deserialize)]
pub struct ExampleChangeBody {
    /// A new question.
    #[serde(default)]
    pub question: Option<String>,
    /// New SQL.
    #[serde(default)]
    pub query: Option<String>,
}

/// A refusal: an API error, or a 422 field list.
enum Refusal {
    Api(ApiError),
    Invalid(Invalid),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Api(e.into())
    }
}

impl From<Invalid> for Refusal {
    fn from(e: Invalid) -> Self {
        Refusal::Invalid(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Invalid(e) => e.into_response(),
        }
    }
}

type Reply<T> = Result<T, Refusal>;

/// `GET /chat/examples/{connection_id}`.
async fn list(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(connection_id): Path<String>,
    page: PageParams,
) -> Reply<Json<Paginated<ExampleResponse>>> {
    let product = state.product()?;
    require_connection(product, &connection_id).await?;
    let limit = usize::try_from(page.limit).unwrap_or(0);
    let offset = usize::try_from(page.offset).unwrap_or(0);
    let (items, total) = product.store.list_examples(&connection_id, limit, offset).await?;
    Ok(Json(Paginated::new(items.into_iter().map(ExampleResponse::from).collect(), total, page)))
}

/// `POST /chat/examples/{connection_id}`.
async fn create(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(connection_id): Path<String>,
    Body(body): Body<NewExampleBody>,
) -> Reply<(StatusCode, Json<ExampleResponse>)> {
    let product = state.product()?;
    let connection = require_connection(product, &connection_id).await?;
    let mut problems = Vec::new();
    let question = check_question(&body.question, &mut problems);
    let sql = check_query(&body.query, &mut problems);
    if !problems.is_empty() {
        return Err(Invalid(problems).into());
    }
    let dialect = examples::dialect_for_source(&connection.source_type).ok_or_else(|| {
        ApiError::unprocessable(format!("Connections of type {} have no SQL dialect", connection.source_type))
    })?;
    check_sql(product, dialect, sql).await?;
    let threshold = product.settings.current().await?.semantic_similarity_threshold;
    let vectors = question_vectors_for(product, None).await;
    let (store, cache) = (&product.store, &product.cache);
    let added = examples::add(store, cache, &vectors, &connection_id, dialect, question, sql, threshold).await?;
    let record = added.ok_or_else(|| ApiError::conflict("This connection already has that example"))?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// `PUT /chat/examples/{example_id}`.
async fn update(
    State(state): State<Arc<AppState>>,
    _user: CurrentUser,
    Path(example_id): Path<String>,
    Body(body): Body<ExampleChangeBody>,
) -> Reply<Json<ExampleResponse>> {
    let product = state.product()?;
    let existing = product.store.example(&example_id).await?.ok_or_else(not_found)?;
    let mut problems = Vec::new();
    let question = body.question.as_deref().map(|q| check_question(q, &mut problems));
    let sql = body.query.as_deref().map(|q| check_query(q, &mut problems));
    if !problems.is_empty() {
        return Err(Invalid(problems).into());
    }
    if let Some(sql) = sql {
        check_sql(product, &existing.dialect, sql).await?;
    }
    let normalized = question.map(crate::answer_cache::text::normalize);
    let vectors = question_vectors_for(product, None).await;
    // A new question needs its own vector (or none): the old one describes the old question.
    let embedding = match question {
        Some(question) => vectors.of(question).await,
        None => None,
    };
    let change = ExampleChange { question: question.zip(normalized.as_deref()), embedding: embedding.as_ref(), sql };
    let record = match product.store.update_example(&example_id, change).await? {
        ExampleUpdate::Updated(record) => record,
        ExampleUpdate::NotFound => return Err(not_found().into()),
        ExampleUpdate::Duplicate => return Err(ApiError::conflict("This connection already has that example").into()),
    };
    // The edited example should be used at the next ask, not a cached answer.
    let threshold = product.settings.current().await?.semantic_similarity_threshold;
    product.cache.evict_similar_with(&record.connection_id, &record.question, threshold, &vectors).await?;
    Ok(Json(record.into()))
}

/// `DELETE /chat/examples/{example_id}`.
async fn remove(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(example_id): Path<String>,
) -> Reply<StatusCode> {
    let product = state.product()?;
    if product.store.delete_example(&example_id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(not_found().into()) }
}

fn not_found() -> ApiError {
    ApiError::not_found("Example not found")
}

/// The trimmed question, or a problem noted for it.
fn check_question<'a>(question: &'a str, problems: &mut Vec<FieldError>) -> &'a str {
    let trimmed = question.trim();
    let loc = vec![Value::from("body"), Value::from("question")];
    if trimmed.is_empty() {
        problems.push(FieldError::new(
            "string_too_short",
            loc,
            "The question must not be empty",
            Value::from(question),
        ));
    } else if trimmed.chars().count() > MAX_QUESTION_CHARS {
        problems.push(FieldError::new(
            "string_too_long",
            loc,
            format!("The question may have at most {MAX_QUESTION_CHARS} characters"),
            Value::Null,
        ));
    } else if trimmed.contains('\0') {
        problems.push(FieldError::new("value_error", loc, "The question contains a NUL character", Value::Null));
    }
    trimmed
}

/// The trimmed SQL, or a problem noted for it.
fn check_query<'a>(query: &'a str, problems: &mut Vec<FieldError>) -> &'a str {
    let trimmed = query.trim();
    let loc = vec![Value::from("body"), Value::from("query")];
    if trimmed.is_empty() {
        problems.push(FieldError::new("string_too_short", loc, "The query must not be empty", Value::from(query)));
    } else if trimmed.len() > MAX_SQL_BYTES {
        problems.push(FieldError::new(
            "string_too_long",
            loc,
            format!("The query may have at most {MAX_SQL_BYTES} bytes"),
            Value::Null,
        ));
    } else if trimmed.contains('\0') {
        problems.push(FieldError::new("value_error", loc, "The query contains a NUL character", Value::Null));
    }
    trimmed
}

/// The dialect plugin's verdict: a 422 listing each violation when it refuses the SQL.
async fn check_sql(product: &Product, dialect: &str, sql: &str) -> Reply<()> {
    let loc = || vec![Value::from("body"), Value::from("query")];
    let violations = match examples::check_sql(product.engine.registry(), dialect, sql).await {
        Ok(violations) => violations,
        Err(SqlCheckError::NoDialect(name)) => {
            return Err(ApiError::unavailable(format!("The {name} dialect plugin is not loaded")).into());
        }
        Err(SqlCheckError::Plugin(e)) => {
            tracing::warn!("checking an example's SQL failed: {e}");
            vec!["[unchecked] The query could not be validated".to_string()]
        }
    };
    if violations.is_empty() {
        return Ok(());
    }
    let problems = violations
        .into_iter()
        .map(|v| {
            let kind = if v.starts_with("[parse-error]") { "sql_parse_error" } else { "sql_refused" };
            FieldError::new(kind, loc(), v, Value::from(sql))
        })
        .collect();
    Err(Invalid(problems).into())
}
