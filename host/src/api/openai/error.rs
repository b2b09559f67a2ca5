//! How the `/v1` routes fail, with SQL Query Engine's bodies: 401 for a bad key and 500 for
//! missing configuration, both as `{"detail": {"error": {…}}}`; 422 in FastAPI's shape for a
//! bad body. Once a reply has started streaming it cannot fail any more: errors from then on
//! are written into the reply (see [`super::stream`]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::validation::Invalid;

/// `{"detail": {"error": {…}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorBody {
    /// FastAPI's wrapper.
    pub detail: OpenAiErrorDetail,
}

/// The wrapper's content.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorDetail {
    /// OpenAI's error object.
    pub error: OpenAiErrorObject,
}

/// OpenAI's error object.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorObject {
    /// For people.
    pub message: String,
    /// `invalid_request_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Present (as `null`) on 401 only, as SQL Query Engine sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub param: Option<serde_json::Value>,
    /// `invalid_api_key` or `missing_configuration`.
    pub code: &'static str,
}

/// Why a `/v1` request was refused before any reply started.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    /// No bearer key, or not one of `OPENAI_API_KEY`'s (401).
    #[error("Invalid API key. Provide a valid key in 'Authorization: Bearer <key>'.")]
    InvalidApiKey,
    /// The LLM or the database is not configured (500).
    #[error(
        "Required environment variables not configured: {}. Set them in docker-compose.yml or the host environment.",
        .0.join(", ")
    )]
    MissingConfiguration(Vec<String>),
    /// The body is invalid (422, FastAPI's shape).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The conversation has no user message (422, `{"detail": "…"}` as SQL Query Engine sends).
    #[error("No 'user' message found in the request messages.")]
    NoUserMessage,
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, kind, param, code) = match self {
            OpenAiError::Invalid(e) => return e.into_response(),
            OpenAiError::NoUserMessage => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(serde_json::json!({ "detail": message })),
                )
                    .into_response();
            }
            OpenAiError::InvalidApiKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some(serde_json::Value::Null),
                "invalid_api_key",
            ),
            OpenAiError::MissingConfiguration(_) => {
                tracing::warn!("{message}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    None,
                    "missing_configuration",
                )
            }
        };
        let body = OpenAiErrorBody {
            detail: OpenAiErrorDetail {
                error: OpenAiErrorObject {
                    message,
                    kind,
                    param,
                    code,
                },
            },
        };
        (status, Json(body)).into_response()
    }
}
