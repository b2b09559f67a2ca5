//! SQL Query Engine's native routes, so its users can swap it for Quarry unchanged:
//! `POST /inference/sqlQueryEngine/{chatID}` (the full pipeline),
//! `/inference/sqlQueryGeneration/{chatID}` (generation only) and
//! `/inference/sqlQueryEvaluation/{chatID}` (run given SQL, repairing it if needed).
//!
//! Same bodies, defaults, response shapes and error bodies as SQL Query Engine ([`types`],
//! [`error`]); the same optional connection query parameters ([`connection`]).

pub mod connection;
pub mod error;
pub mod types;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};

use self::connection::ConnectionParams;
use self::error::{InferenceError, InferenceErrorBody};
use self::types::{
    EngineAgentResponse, Evaluation, EvaluationAgentResponse, Generation, GenerationAgentResponse,
    InferenceResponse, QueryEngineRequest, QueryEvaluationRequest, QueryGenerationRequest,
};
use super::job::Job;
use super::state::AppState;
use super::validation::{Checked, ValidationErrorBody};
use crate::pipeline::answer::AnswerStatus;

/// One of the three routes; names it in status lines and error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/inference/sqlQueryEngine`.
    QueryEngine,
    /// `/inference/sqlQueryGeneration`.
    Generation,
    /// `/inference/sqlQueryEvaluation`.
    Evaluation,
}

impl Route {
    /// "SQL Query Engine", "SQL Generation", "SQL Evaluation".
    pub fn label(self) -> &'static str {
        match self {
            Route::QueryEngine => "SQL Query Engine",
            Route::Generation => "SQL Generation",
            Route::Evaluation => "SQL Evaluation",
        }
    }

    /// "[ {chatID} | SQL Query Engine ]: Inference executed successfully." and the like.
    pub fn success_status(self, chat_id: &str) -> String {
        let what = match self {
            Route::QueryEngine => "Inference",
            Route::Generation => "Generation",
            Route::Evaluation => "Evaluation",
        };
        format!(
            "[ {chat_id} | {} ]: {what} executed successfully.",
            self.label()
        )
    }
}

/// The three routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/inference/sqlQueryEngine/{chatID}", post(query_engine))
        .route(
            "/inference/sqlQueryGeneration/{chatID}",
            post(query_generation),
        )
        .route(
            "/inference/sqlQueryEvaluation/{chatID}",
            post(query_evaluation),
        )
}

/// Translate a question into SQL, run it read-only and repair it until it works (or
/// `retryCount` repairs are spent). Failed attempts still answer 200: `evaluation` then holds
/// the last SQL tried and the error.
#[utoipa::path(
    post,
    path = "/inference/sqlQueryEngine/{chatID}",
    tag = "SQL Inference",
    params(("chatID" = String, Path, description = "Session id: reuse it across calls to share context."), ConnectionParams),
    request_body = QueryEngineRequest,
    responses(
        (status = 200, description = "The generated SQL, the query that ran last and its rows", body = InferenceResponse<EngineAgentResponse>),
        (status = 422, description = "Invalid body or query parameters", body = ValidationErrorBody),
        (status = 500, description = "Missing configuration, unreachable LLM or database", body = InferenceErrorBody),
    )
)]
pub async fn query_engine(
    State(state): State<Arc<AppState>>,
    Path(chat_id): Path<String>,
    connection: ConnectionParams,
    Checked(body): Checked<QueryEngineRequest>,
) -> Result<Json<InferenceResponse<EngineAgentResponse>>, InferenceError> {
    let route = Route::QueryEngine;
    let overrides = connection
        .overrides(&state.postgres_env)
        .map_err(|e| InferenceError::failed(route, e))?;
    let question = body.question(&chat_id, &state.settings, overrides);
    tracing::info!(chat_id, "sqlQueryEngine");
    let backend = state.backend.clone();
    let answer = Job::spawn(move |progress| backend.ask(question, progress))
        .answer()
        .await
        .map_err(|e| InferenceError::failed(route, e))?;
    let agent = EngineAgentResponse {
        generation: Generation::first_attempt(&answer),
        evaluation: Evaluation::from(&answer),
    };
    Ok(Json(InferenceResponse::new(
        route,
        chat_id,
        agent,
        body.extra_payload,
    )))
}

/// Translate a question into SQL without running it. SQL the dialect plugin refuses (or no SQL
/// at all) is a 500 whose message says why.
#[utoipa::path(
    post,
    path = "/inference/sqlQueryGeneration/{chatID}",
    tag = "SQL Generation",
    params(("chatID" = String, Path, description = "Session id: reuse it across calls to share context."), ConnectionParams),
    request_body = QueryGenerationRequest,
    responses(
        (status = 200, description = "The generated SQL and its plan", body = InferenceResponse<GenerationAgentResponse>),
        (status = 422, description = "Invalid body or query parameters", body = ValidationErrorBody),
        (status = 500, description = "No usable SQL, missing configuration, unreachable LLM or database", body = InferenceErrorBody),
    )
)]
pub async fn query_generation(
    State(state): State<Arc<AppState>>,
    Path(chat_id): Path<String>,
    connection: ConnectionParams,
    Checked(body): Checked<QueryGenerationRequest>,
) -> Result<Json<InferenceResponse<GenerationAgentResponse>>, InferenceError> {
    let route = Route::Generation;
    let overrides = connection
        .overrides(&state.postgres_env)
        .map_err(|e| InferenceError::failed(route, e))?;
    let question = body.question(&chat_id, &state.settings, overrides);
    tracing::info!(chat_id, "sqlQueryGeneration");
    let backend = state.backend.clone();
    let answer = Job::spawn(move |progress| backend.generate(question, progress))
        .answer()
        .await
        .map_err(|e| InferenceError::failed(route, e))?;
    if answer.status == AnswerStatus::Error {
        let why = answer
            .error
            .clone()
            .unwrap_or_else(|| "no usable SQL was generated".to_string());
        return Err(InferenceError::failed(route, why));
    }
    let agent = GenerationAgentResponse {
        generation: Generation::final_query(&answer),
    };
    Ok(Json(InferenceResponse::new(
        route,
        chat_id,
        agent,
        body.extra_payload,
    )))
}

/// Run the given SQL read-only (validated like generated SQL) and repair it if it fails.
#[utoipa::path(
    post,
    path = "/inference/sqlQueryEvaluation/{chatID}",
    tag = "SQL Evaluation",
    params(("chatID" = String, Path, description = "Session id: reuse it across calls to share context."), ConnectionParams),
    request_body = QueryEvaluationRequest,
    responses(
        (status = 200, description = "The query that ran last and its rows", body = InferenceResponse<EvaluationAgentResponse>),
        (status = 422, description = "Invalid body or query parameters", body = ValidationErrorBody),
        (status = 500, description = "Missing configuration, unreachable LLM or database", body = InferenceErrorBody),
    )
)]
pub async fn query_evaluation(
    State(state): State<Arc<AppState>>,
    Path(chat_id): Path<String>,
    connection: ConnectionParams,
    Checked(body): Checked<QueryEvaluationRequest>,
) -> Result<Json<InferenceResponse<EvaluationAgentResponse>>, InferenceError> {
    let route = Route::Evaluation;
    let overrides = connection
        .overrides(&state.postgres_env)
        .map_err(|e| InferenceError::failed(route, e))?;
    let question = body.question(&chat_id, &state.settings, overrides);
    tracing::info!(chat_id, "sqlQueryEvaluation");
    let backend = state.backend.clone();
    let (sql, description) = (body.base_query.clone(), Some(body.base_description.clone()));
    let answer = Job::spawn(move |progress| backend.evaluate(question, sql, description, progress))
        .answer()
        .await
        .map_err(|e| InferenceError::failed(route, e))?;
    let agent = EvaluationAgentResponse {
        evaluation: Evaluation::from(&answer),
    };
    Ok(Json(InferenceResponse::new(
        route,
        chat_id,
        agent,
        body.extra_payload,
    )))
}
