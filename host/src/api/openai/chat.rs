//! `POST /v1/chat/completions`: the last user message is the question; the reply is streamed
//! by default (SQL Query Engine's default), with pipeline progress in `<think>…</think>`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
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
    headers: HeaderMap,
    Checked(request): Checked<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    ensure_configured(&state)?;
    let stream = request.stream.unwrap_or_else(|| !accepts_only_json(&headers));
    let question = request.question().ok_or(OpenAiError::NoUserMessage)?;
    let chat_id = match request.chat_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => id.to_string(),
        None => {
            let texts: Vec<String> = request.user_texts().collect();
            stable_chat_id(texts.iter().map(String::as_str))
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
        }
    };
    tracing::info!(chat_id, stream, "chat/completions");
    let job = start(&state, chat_id, question);
    let reply = Reply::new(Flavor::Chat, &state.settings.model_name);
    if stream { Ok(reply.stream(job)) } else { Ok(Json(reply.chat_completion(job).await).into_response()) }
}

/// Whether the client said it can read only JSON. Without a `stream` field the reply streams (SQL
/// Query Engine's default), except for such clients: the OpenAI SDKs leave `stream` out when they
/// want one JSON object, and send `Accept: application/json`. curl (`*/*`) and browsers stream.
fn accepts_only_json(headers: &HeaderMap) -> bool {
    let accepted: Vec<&str> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
        .filter(|media| !media.is_empty())
        .collect();
    !accepted.is_empty() && accepted.iter().all(|media| media.eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(ACCEPT, v.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn only_a_json_only_accept_header_turns_the_default_stream_off() {
        assert!(accepts_only_json(&accept(&["application/json"])));
        assert!(accepts_only_json(&accept(&["Application/JSON; charset=utf-8"])));
        assert!(!accepts_only_json(&accept(&[])));
        assert!(!accepts_only_json(&accept(&["*/*"])));
        assert!(!accepts_only_json(&accept(&["text/event-stream"])));
        assert!(!accepts_only_json(&accept(&["application/json, text/event-stream"])));
    }
}
