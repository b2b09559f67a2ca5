//! `POST /v1/chat/completions`: the last user message is the question; the reply is streamed
//! by default (SQL Query Engine's default), with pipeline progress in `<think>…</think>`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::{OpenAiError, OpenAiErrorBody};
use super::format::stable_chat_id;
use super::stream::{Flavor, Reply};
use super::types::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest};
use super::{ensure_configured, start};
use crate::api::state::AppState;
use crate::api::validation::{Checked, ValidationErrorBody};

/// Answer the conversation's last user message. The session is `chat_id` when given, else
/// derived from the first user message (so every turn of one chat shares it).
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "OpenAI Compatible",
    security(("bearer" = [])),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion`; with `stream` (the default) a `text/event-stream` of \
            `chat.completion.chunk` events ending with `data: [DONE]`",
            content((ChatCompletion = "application/json"), (ChatCompletionChunk = "text/event-stream"))),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 422, description = "Invalid body, or no user message", body = ValidationErrorBody),
        (status = 500, description = "The LLM or the database is not configured", body = OpenAiErrorBody),
    )
)]
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Checked(request): Checked<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    ensure_configured(&state)?;
    let question = request.question().ok_or(OpenAiError::NoUserMessage)?;
    let chat_id = match request
        .chat_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        Some(id) => id.to_string(),
        None => {
            let texts: Vec<String> = request.user_texts().collect();
            stable_chat_id(texts.iter().map(String::as_str))
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
        }
    };
    tracing::info!(
        chat_id,
        stream = request.stream.unwrap_or(true),
        "chat/completions"
    );
    let job = start(&state, chat_id, question);
    let reply = Reply::new(Flavor::Chat, &state.settings.model_name);
    if request.stream.unwrap_or(true) {
        Ok(reply.stream(job))
    } else {
        Ok(Json(reply.chat_completion(job).await).into_response())
    }
}
