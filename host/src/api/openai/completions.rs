//! `POST /v1/completions` (legacy text completions): the prompt is the question, each request a
//! session of its own; not streamed unless asked (`stream: true`), as in OpenAI's API.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::{OpenAiError, OpenAiErrorBody};
use super::stream::{Flavor, Reply};
use super::types::{CompletionRequest, TextCompletion, TextCompletionChunk};
use super::{ensure_configured, start};
use crate::api::state::AppState;
use crate::api::validation::{Checked, ValidationErrorBody};

/// Answer the prompt (for a list of prompts, the first).
#[utoipa::path(
    post,
    path = "/v1/completions",
    tag = "OpenAI Compatible",
    security(("bearer" = [])),
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A `text_completion`; with `stream: true` a `text/event-stream` of \
            `text_completion` chunks ending with `data: [DONE]`",
            content((TextCompletion = "application/json"), (TextCompletionChunk = "text/event-stream"))),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrorBody),
        (status = 500, description = "The LLM or the database is not configured", body = OpenAiErrorBody),
    )
)]
pub async fn completions(
    State(state): State<Arc<AppState>>,
    Checked(request): Checked<CompletionRequest>,
) -> Result<Response, OpenAiError> {
    ensure_configured(&state)?;
    let chat_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let stream = request.stream.unwrap_or(false);
    tracing::info!(chat_id, stream, "completions");
    let job = start(&state, chat_id, request.prompt);
    let reply = Reply::new(Flavor::Text, &state.settings.model_name);
    if stream {
        Ok(reply.stream(job))
    } else {
        Ok(Json(reply.text_completion(job).await).into_response())
    }
}
