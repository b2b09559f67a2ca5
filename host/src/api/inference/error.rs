//! How the SQL Query Engine routes fail: a bad request is a 422 in FastAPI's shape; anything
//! else is SQL Query Engine's own body, `{"code": 500, "status": "[ SQL Query Engine ]: …",
//! "error": "…"}`, with HTTP status 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Route;
use crate::api::validation::Invalid;

/// SQL Query Engine's error body.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InferenceErrorBody {
    /// Always 500.
    pub code: u16,
    /// "[ SQL Query Engine ]: " and the message (the route's label for the other two routes).
    pub status: String,
    /// The message alone.
    pub error: String,
}

/// Why an `/inference` request failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The body or the query parameters are invalid (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The request could not be answered (500): missing configuration, an unreachable LLM or
    /// database, a failed plugin, …
    #[error("[ {} ]: {message}", route.label())]
    Failed {
        /// The route that failed.
        route: Route,
        /// One line saying why.
        message: String,
    },
}

impl InferenceError {
    /// `route` failed because of `error`.
    pub fn failed(route: Route, error: impl std::fmt::Display) -> Self {
        InferenceError::Failed {
            route,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for InferenceError {
    fn into_response(self) -> Response {
        match self {
            InferenceError::Invalid(e) => e.into_response(),
            InferenceError::Failed { route, message } => {
                tracing::warn!("[ {} ] request failed: {message}", route.label());
                let body = InferenceErrorBody {
                    code: 500,
                    status: format!("[ {} ]: {message}", route.label()),
                    error: message,
                };
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}
