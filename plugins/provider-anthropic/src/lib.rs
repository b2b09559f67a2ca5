//! The `anthropic` provider: Anthropic's Claude Messages API.
//!
//! - `POST {base}/v1/messages` with `x-api-key: {secret:api_key}`, `anthropic-version`,
//!   `model`, `max_tokens` (required by the API), the system prompt in the top-level `system`
//!   field, `messages` (user/assistant, consecutive turns of one role merged), `temperature`,
//!   `stop_sequences`;
//! - streamed as SSE events `message_start`, `content_block_start`, `content_block_delta`
//!   (`text_delta`, `thinking_delta`), `content_block_stop`, `message_delta` (stop reason, output
//!   tokens), `message_stop`, `ping` and `error`;
//! - `GET {base}/v1/models` lists models.
//!
//! The Messages API has no JSON mode; `json-mode` is ignored (ask for JSON in the prompt).
//! Options: `anthropic_version` (default `2023-06-01`), `anthropic_beta`, `default_max_tokens`
//! (default 4096, used when a request names no bound).

use quarry_provider_kit::config::{self, option, option_parse};
use quarry_provider_kit::http::{self, Headers};
use quarry_provider_kit::sse::SseParser;
use quarry_provider_kit::stream::Collector;
use quarry_provider_kit::{
    Completion, CompletionRequest, FinishReason, Guest, ModelInfo, PluginInfo, ProviderConfig, ProviderError, Role, Usage,
    errors, role_name,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `anthropic-version` header when the operator sets none.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// `max_tokens` when neither the request nor the options give one (the API requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The `anthropic` provider.
pub struct Anthropic;

impl Guest for Anthropic {
    fn info() -> PluginInfo {
        PluginInfo { name: "anthropic".into(), version: env!("CARGO_PKG_VERSION").into(), description: "Anthropic Claude Messages API".into() }
    }

    fn list_models(cfg: ProviderConfig) -> Result<Vec<ModelInfo>, ProviderError> {
        let list: ModelList = http::get("/v1/models?limit=1000", headers(&cfg))?.json()?;
        Ok(list.data.into_iter().map(|m| ModelInfo { id: m.id, context_window: None, owned_by: Some("anthropic".into()) }).collect())
    }

    fn complete(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let body = request_body(&cfg, &req, false)?;
        let answer: Value = http::post_json("/v1/messages", headers(&cfg), &body)?.json()?;
        parse_message(answer)
    }

    fn complete_streaming(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let body = request_body(&cfg, &req, true)?;
        let mut stream = http::post_json_streaming("/v1/messages", headers(&cfg).event_stream(), &body)?;
        let mut parser = SseParser::new();
        let mut out = Collector::streaming();
        let mut done = false;
        while !done {
            let Some(chunk) = stream.next_chunk()? else { break };
            for event in parser.feed(&chunk) {
                done |= on_event(&event.data, &mut out)?;
            }
        }
        if !done {
            if let Some(event) = parser.finish() {
                done = on_event(&event.data, &mut out)?;
            }
        }
        if !done && !out.finished() {
            return Err(ProviderError::MalformedResponse("the stream ended before `message_stop`".into()));
        }
        Ok(out.into_completion())
    }
}

quarry_provider_kit::export_provider!(Anthropic);

fn headers(cfg: &ProviderConfig) -> Headers {
    let mut h = Headers::json()
        .api_key_in("x-api-key", cfg)
        .with("anthropic-version", option(cfg, "anthropic_version").unwrap_or(DEFAULT_VERSION));
    if let Some(beta) = option(cfg, "anthropic_beta") {
        h = h.with("anthropic-beta", beta);
    }
    h
}

/// The Messages API request body.
pub fn request_body(cfg: &ProviderConfig, req: &CompletionRequest, stream: bool) -> Result<Value, ProviderError> {
    let system: Vec<&str> = req.messages.iter().filter(|m| matches!(m.role, Role::System)).map(|m| m.content.as_str()).collect();
    // The API wants alternating turns: merge consecutive messages of one role.
    let mut messages: Vec<(Role, String)> = Vec::new();
    for m in req.messages.iter().filter(|m| !matches!(m.role, Role::System)) {
        match messages.last_mut() {
            Some((role, text)) if *role == m.role => {
                text.push_str("\n\n");
                text.push_str(&m.content);
            }
            _ => messages.push((m.role, m.content.clone())),
        }
    }
    let messages: Vec<Value> = messages.into_iter().map(|(r, c)| json!({"role": role_name(r), "content": c})).collect();
    let max_tokens = req.max_tokens.or_else(|| option_parse(cfg, "default_max_tokens")).unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({"model": config::model(cfg)?, "max_tokens": max_tokens, "messages": messages});
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(t) = req.temperature {
        body["temperature"] = config::float(t);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if stream {
        body["stream"] = json!(true);
    }
    config::merge_extra(&mut body, req.extra.as_deref())?;
    Ok(body)
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<Model>,
}

#[derive(Deserialize)]
struct Model {
    id: String,
}

#[derive(Deserialize)]
struct Message {
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
struct TokenUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
}

fn finish_reason(s: &str) -> FinishReason {
    match s {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// Read a non-streamed answer.
pub fn parse_message(answer: Value) -> Result<Completion, ProviderError> {
    if answer.get("type").and_then(Value::as_str) == Some("error") {
        return Err(errors::from_stream_error(&answer));
    }
    let msg: Message = serde_json::from_value(answer).map_err(|e| errors::malformed("unexpected answer", e))?;
    let text: String = msg.content.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref()).collect();
    Ok(Completion {
        text,
        finish: msg.stop_reason.as_deref().map(finish_reason).unwrap_or(FinishReason::Stop),
        usage: msg.usage.map(|u| Usage { input_tokens: u.input_tokens.unwrap_or(0), output_tokens: u.output_tokens.unwrap_or(0) }),
        model: msg.model,
    })
}

/// Handle one SSE event's data; `true` at `message_stop`.
fn on_event(data: &str, out: &mut Collector) -> Result<bool, ProviderError> {
    if data.trim().is_empty() {
        return Ok(false);
    }
    let v: Value = serde_json::from_str(data).map_err(|e| errors::malformed("a streamed event is not JSON", e))?;
    let str_at = |path: &[&str]| -> Option<&str> {
        let mut cur = &v;
        for key in path {
            cur = cur.get(key)?;
        }
        cur.as_str()
    };
    let u32_at = |path: &[&str]| -> Option<u32> {
        let mut cur = &v;
        for key in path {
            cur = cur.get(key)?;
        }
        cur.as_u64().map(|n| n.min(u32::MAX as u64) as u32)
    };
    match str_at(&["type"]).unwrap_or("") {
        "message_start" => {
            if let Some(model) = str_at(&["message", "model"]) {
                out.model(model);
            }
            let input = u32_at(&["message", "usage", "input_tokens"]);
            if input.is_some() {
                out.usage(input, None)?;
            }
        }
        "content_block_delta" => match str_at(&["delta", "type"]) {
            Some("text_delta") => out.text(str_at(&["delta", "text"]).unwrap_or(""))?,
            Some("thinking_delta") => out.reasoning(str_at(&["delta", "thinking"]).unwrap_or(""))?,
            _ => {} // signatures, tool input: not text
        },
        "message_delta" => {
            if let Some(reason) = str_at(&["delta", "stop_reason"]) {
                out.finish(finish_reason(reason));
            }
            let output = u32_at(&["usage", "output_tokens"]);
            let input = u32_at(&["usage", "input_tokens"]);
            if output.is_some() || input.is_some() {
                out.usage(input, output)?;
            }
        }
        "message_stop" => return Ok(true),
        "error" => return Err(errors::from_stream_error(&v)),
        _ => {} // ping, content_block_start/stop, and event types added later
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_provider_kit::ChatMessage;

    #[test]
    fn system_goes_to_its_field_and_turns_alternate() {
        let cfg = ProviderConfig { model: "claude-x".into(), has_api_key: true, options: vec![] };
        let m = |role, c: &str| ChatMessage { role, content: c.into() };
        let req = CompletionRequest {
            messages: vec![m(Role::System, "sys"), m(Role::User, "a"), m(Role::User, "b"), m(Role::Assistant, "c")],
            max_tokens: None,
            temperature: None,
            json_mode: false,
            stop: vec!["END".into()],
            extra: None,
        };
        let body = request_body(&cfg, &req, false).expect("body");
        assert_eq!(body["system"], "sys");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(body["messages"], json!([{"role":"user","content":"a\n\nb"},{"role":"assistant","content":"c"}]));
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert!(body.get("stream").is_none());
    }
}
