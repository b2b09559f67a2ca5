//! The OpenAI-compatible API, so chat clients (OpenWebUI, the OpenAI SDKs, LangChain, curl) can
//! use Quarry as if it were a model: `GET /v1/models`, `POST /v1/chat/completions`,
//! `POST /v1/completions`. Every route wants a bearer key when `OPENAI_API_KEY` is set
//! ([`auth`]); the bodies and errors are SQL Query Engine's ([`types`], [`error`]); replies
//! read as [`format`] lays them out and stream as [`stream`] frames them.

pub mod auth;
pub mod chat;
pub mod completions;
pub mod error;
pub mod format;
pub mod models;
pub mod stream;
pub mod types;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Router, middleware};

use self::error::OpenAiError;
use super::job::Job;
use super::state::AppState;
use crate::pipeline::engine::{Overrides, Question};

/// The `/v1` routes, behind the API-key check.
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/models", get(models::list_models))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route_layer(middleware::from_fn_with_state(state, auth::require_api_key))
}

/// Refuse at once (500) when the LLM or the database is not configured: these routes take no
/// per-request overrides, so the server's configuration must be complete.
fn ensure_configured(state: &AppState) -> Result<(), OpenAiError> {
    let missing = state.backend.missing_configuration(&Overrides::default());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(OpenAiError::MissingConfiguration(missing))
    }
}

/// Start answering `question` in session `chat_id` with the server's defaults.
fn start(state: &AppState, chat_id: String, question: String) -> Job {
    let settings = &state.settings;
    let question = Question {
        session_id: chat_id,
        question,
        retry_count: settings.default_retry_count,
        schema_examples: settings.default_schema_examples,
        feedback_examples: settings.default_feedback_examples,
        schema_key: None,
        overrides: Overrides::default(),
        context: Default::default(),
    };
    let backend = state.backend.clone();
    Job::spawn(move |progress| backend.ask(question, progress))
}
