//! `/api/v1/chat/sessions`: a user's conversations — list (paginated, newest activity first),
//! one session, its history as messages in order (each question, then its answer), delete, and
//! its live events: the frames of the turns running in it, on whichever replica runs them
//! (see [`crate::progress_bus`]), until the watcher leaves.
//!
//! Sessions belong to the user who started them; an admin may read, watch and delete anyone's.
//! Another user's session answers 404, as if it did not exist.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::state::AppState;
use crate::auth::Role;
use crate::store::chat::{ChatSession, ChatTurn};

use super::chat::events;
use super::error::{ApiError, ApiResult};
use super::extract::CurrentUser;
use super::page::{PageParams, Paginated};
use super::state::Product;

/// The sessions routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/chat/sessions", get(list))
        .route("/chat/sessions/{id}", get(one).delete(remove))
        .route("/chat/sessions/{id}/history", get(history))
        .route("/chat/sessions/{id}/events", get(watch))
}

/// How often an idle watcher's stream carries a keep-alive comment (proxies close silent ones).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A session as the API shows it.
#[derive(Debug, Serialize)]
pub struct SessionResponse {
    /// UUID.
    pub id: String,
    /// The connection asked.
    pub connection_id: Option<String>,
    /// The first question, shortened.
    pub title: String,
    /// The provider asked for.
    pub provider: Option<String>,
    /// Questions and answers in it.
    pub message_count: i64,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When the newest question was asked.
    pub updated_at: DateTime<Utc>,
}

impl From<ChatSession> for SessionResponse {
    fn from(s: ChatSession) -> Self {
        Self {
            id: s.id,
            connection_id: s.connection_id,
            title: s.title,
            provider: s.provider,
            message_count: s.turn_count * 2,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// One message of a conversation: a question (`user`) or its answer (`assistant`).
#[derive(Debug, Serialize)]
pub struct MessageResponse {
    /// The message id; an answer's id is what approval, edit and feedback take.
    pub id: String,
    /// The session.
    pub session_id: String,
    /// `user` or `assistant`.
    pub role: &'static str,
    /// The question, or the answer's explanation.
    pub content: String,
    /// The SQL (answers only).
    pub query_generated: Option<String>,
    /// The dialect plugin it was written for.
    pub query_dialect: Option<String>,
    /// The result as it was shown (masked).
    pub results_json: Option<Value>,
    /// Time the query took.
    pub execution_time_ms: Option<u64>,
    /// Tokens used, in and out.
    pub token_count: Option<i64>,
    /// Prompt tokens.
    pub input_tokens: Option<i64>,
    /// Completion tokens.
    pub output_tokens: Option<i64>,
    /// `executed`, `cached`, `pending_approval`, `query_only`, `error` (answers only).
    pub status: Option<String>,
    /// Whether the SQL came from the cache.
    pub cache_hit: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// `thumbs_up`, `thumbs_down` or none.
    pub feedback: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// The messages of one turn: the question, then the answer.
pub fn messages_of(t: &ChatTurn) -> [MessageResponse; 2] {
    let turn = &t.turn;
    let question = MessageResponse {
        id: t.user_message_id.clone().unwrap_or_else(|| format!("{}-question", turn.id)),
        session_id: turn.session_id.clone(),
        role: "user",
        content: turn.question.clone(),
        query_generated: None,
        query_dialect: None,
        results_json: None,
        execution_time_ms: None,
        token_count: None,
        input_tokens: None,
        output_tokens: None,
        status: None,
        cache_hit: false,
        error: None,
        feedback: None,
        created_at: turn.created_at,
    };
    let execution_time_ms = t.results.as_ref().and_then(|r| r.get("execution_time_ms")).and_then(Value::as_u64);
    let answer = MessageResponse {
        id: turn.id.clone(),
        session_id: turn.session_id.clone(),
        role: "assistant",
        content: t.explanation.clone().or_else(|| turn.description.clone()).unwrap_or_default(),
        query_generated: turn.sql.clone(),
        query_dialect: turn.dialect.clone(),
        results_json: t.results.clone(),
        execution_time_ms,
        token_count: Some(turn.input_tokens + turn.output_tokens),
        input_tokens: Some(turn.input_tokens),
        output_tokens: Some(turn.output_tokens),
        status: Some(turn.status.clone()),
        cache_hit: t.cache_hit,
        error: turn.error.clone(),
        feedback: t.feedback.clone(),
        created_at: turn.created_at,
    };
    [question, answer]
}

/// `?connection_id=` on the session list.
#[derive(Debug, Deserialize)]
struct ListFilter {
    connection_id: Option<String>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    page: PageParams,
    Query(filter): Query<ListFilter>,
) -> ApiResult<Json<Paginated<SessionResponse>>> {
    let product = state.product()?;
    let connection = filter.connection_id.as_deref().filter(|c| !c.is_empty());
    let (sessions, total) =
        product.store.chat_sessions(&current.user.id, connection, page.limit as usize, page.offset as usize).await?;
    Ok(Json(Paginated::new(sessions.into_iter().map(SessionResponse::from).collect(), total, page)))
}

async fn one(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionResponse>> {
    let session = visible_session(state.product()?, &current, &id).await?;
    Ok(Json(session.into()))
}

async fn history(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(id): Path<String>,
    page: PageParams,
) -> ApiResult<Json<Paginated<MessageResponse>>> {
    let product = state.product()?;
    let session = visible_session(product, &current, &id).await?;
    // Two messages per turn: read the turns that cover the page, then cut it out.
    let (offset, limit) = (page.offset as usize, page.limit as usize);
    let first_turn = offset / 2;
    let turns_needed = (offset % 2 + limit).div_ceil(2);
    let turns = product.store.chat_turns(&session.id, turns_needed, first_turn).await?;
    let items = turns.iter().flat_map(messages_of).skip(offset % 2).take(limit).collect();
    Ok(Json(Paginated::new(items, session.turn_count * 2, page)))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    let session = visible_session(product, &current, &id).await?;
    product.store.delete_session(&session.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /chat/sessions/{id}/events`: `watching` first, then every frame of the turns that run in
/// the session from now on (each opened by `message_started`), until the client leaves.
async fn watch(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let product = state.product()?;
    let session = visible_session(product, &current, &id).await?;
    let subscription = product.progress.subscribe(&session.id).await;
    let first = events::watching(&session.id, subscription.across_replicas()).into_event();
    let frames = futures::stream::unfold(subscription, |mut subscription| async move {
        let frame = subscription.next().await?;
        Some((Event::default().data(&*frame), subscription))
    });
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(futures::StreamExt::map(futures::StreamExt::chain(futures::stream::iter([first]), frames), Ok));
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(([("cache-control", "no-cache"), ("x-accel-buffering", "no")], sse).into_response())
}

/// The session `id` if `current` may see it (their own, or any for an admin); 404 otherwise.
pub async fn visible_session(product: &Product, current: &CurrentUser, id: &str) -> Result<ChatSession, ApiError> {
    let not_found = || ApiError::not_found("Session not found");
    let session = match product.store.chat_session(id).await {
        Ok(found) => found.ok_or_else(not_found)?,
        // An id no session can have (too long, NUL) is simply not found.
        Err(crate::store::StoreError::InvalidInput(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let owner = session.user_id.as_deref() == Some(current.user.id.as_str());
    // Sessions of the SQL Query Engine and OpenAI routes have no owner: not part of this API.
    if session.user_id.is_none() || !(owner || current.user.role == Role::Admin) {
        return Err(not_found());
    }
    Ok(session)
}
